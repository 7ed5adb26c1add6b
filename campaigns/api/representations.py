"""A campaign as the API shows it, built as a plain dict.

The same fields, in the same order, with the same values as serializers.CampaignSerializer
(and its Detail and Created kinds), which still describe them to the OpenAPI document; a test
keeps the two equal. DRF's field machinery costs more than the database on a page of 50
campaigns, and these answers are read-only: nothing here checks input.
"""

import datetime as dt
import functools
from types import SimpleNamespace

from campaigns import selectors, tracking
from campaigns.models import Campaign
from campaigns.policy import POLICY_COLUMNS, policy_from_campaign

from .serializers import UTC_FORMAT


def campaign_page(rows: list[dict]) -> list[dict]:
    """Rows of selectors.campaign_api_page as the API lists them."""
    return [campaign_data(row, row["outbound"]) for row in rows]


def campaign_detail(row: dict) -> dict:
    """A row of selectors.campaign_api_row with its recipients counted by status."""
    return {
        **campaign_data(row, row["outbound"]),
        "recipients_by_status": tracking.outcome_counts(campaign_id=row["id"]),
    }


def campaign_representation(campaign: Campaign) -> dict:
    """A campaign model (from a service) as the API shows it."""
    row = {column: getattr(campaign, column) for column in selectors.CAMPAIGN_API_COLUMNS}
    for column in selectors.CAMPAIGN_API_TIMES:
        row[column] = _utc(row[column])
    row["agent_elevenlabs_id"] = campaign.agent.elevenlabs_agent_id
    # Only a campaign whose policy needs them was sent as ElevenLabs outbound campaigns (as
    # dispatch decides): the others need no query for them.
    read = hasattr(campaign, "outbound_batches") or policy_from_campaign(campaign).uses_outbound_campaigns
    outbound = [
        (batch.elevenlabs_campaign_id, _utc(batch.next_call_at), batch.settled_at is not None)
        for batch in (selectors.campaign_outbound_batches(campaign=campaign) if read else ())
    ]
    return campaign_data(row, outbound)


def campaign_created(campaign: Campaign) -> dict:
    """The create answer: the campaign and what happened to the file's rows."""
    return {**campaign_representation(campaign), "invalid_rows": campaign.import_errors}


def campaign_data(row: dict, outbound) -> dict:
    """`row` has selectors.CAMPAIGN_API_COLUMNS, its times as UTC text, and agent_elevenlabs_id;
    `outbound` is the campaign's (elevenlabs_campaign_id, next_call_at as UTC text, settled)
    in part order."""
    # UTC text to the second sorts as the times do.
    waiting = [next_call_at for _, next_call_at, settled in outbound if next_call_at and not settled]
    return {
        "id": row["id"],
        "name": row["name"],
        "status": row["status"],
        "elevenlabs_batch_call_id": row["elevenlabs_batch_call_id"],
        "recipients_count": row["recipients_count"],
        "scheduled_at": row["scheduled_at"],
        "send_immediately": row["send_immediately"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "timezone": row["timezone"],
        "agent_id": row["agent_elevenlabs_id"],
        "phone_number_id": row["phone_number_id"],
        "duplicates_merged": row["duplicates_merged"],
        "invalid_rows_skipped": row["invalid_rows_skipped"],
        "calls_dispatched": row["calls_dispatched"],
        "calls_finished": row["calls_finished"],
        "suppressed_count": row["suppressed_count"],
        "policy": dict(_policy(*(row[column] for column in POLICY_COLUMNS))),
        "time_zones": row["time_zones"],
        "elevenlabs_campaign_ids": [campaign_id for campaign_id, _, _ in outbound],
        "next_call_at": min(waiting) if waiting else None,
        "error": row["error"] or None,
    }


@functools.lru_cache(maxsize=512)
def _policy(*values) -> dict:
    # Campaigns share a handful of policies: each is parsed once per process (callers copy the dict).
    return policy_from_campaign(SimpleNamespace(**dict(zip(POLICY_COLUMNS, values, strict=True)))).as_dict()


def _utc(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime(UTC_FORMAT) if value else None
