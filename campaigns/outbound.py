"""Campaigns with a calling policy, run by ElevenLabs' outbound-campaigns engine.

Each part of such a campaign (campaigns.dispatch) is one ElevenLabs outbound campaign whose
policy reads the calling windows in one zone: the part's `timezone`. Its submit carries the
part's token as `idempotency_key`, so sending it again after a timeout or a dead worker
answers the campaign ElevenLabs already made (`created: false`) and places no call twice.

Following one: its status and progress, then (when the progress moved) every lead and every
call, a page at a time, each page written with one UPDATE of the recipients and one INSERT of
the calls. A lead is a recipient (its `recipient_id` is our id): its attempts, the call it is on,
when it is called next, and why it ended. A lead ElevenLabs ends as `do_not_call` (the person
asked not to be called again) puts the number on the account's do-not-call list.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from django.db import connection
from django.utils import timezone

from campaigns import elevenlabs, suppressions, tracking
from campaigns.events import services as events
from campaigns.models import Call, Campaign, CampaignBatch, Recipient, Suppression
from campaigns.policy import policy_from_campaign

logger = logging.getLogger(__name__)

R = Recipient.Status
PAGE_SIZE = 100
# ElevenLabs' campaign statuses that end it; `stopping` still finishes calls under way.
ENDED = ("completed", "stopped", "failed")
# CallView.outcome uses batch calling's recipient statuses, which are ours.
_OUTCOMES = {R.INITIATED, R.IN_PROGRESS, R.COMPLETED, R.VOICEMAIL, R.FAILED, R.CANCELLED}
# CallView.status without an outcome yet: queued (or held by an attention item) waits for its
# time; submitted is being dialled; completed awaits its analysis.
_CALL_STATUS = {"submitted": R.INITIATED, "completed": R.IN_PROGRESS, "cancelled": R.CANCELLED}


def submit_kwargs(*, batch: CampaignBatch, recipients: list[dict]) -> dict:
    """The arguments of ElevenLabsClient.submit_outbound_campaign for one part of a policy campaign."""
    campaign = batch.campaign
    policy = policy_from_campaign(campaign)
    periods = policy.calling_periods() if policy.has_hours else _ALWAYS
    return {
        "call_name": f"{campaign.name} [{batch.token}]",
        "agent_id": campaign.agent.elevenlabs_agent_id,
        "agent_phone_number_id": campaign.phone_number.elevenlabs_phone_number_id,
        "recipients": recipients,
        "idempotency_key": batch.token,
        "target_concurrency_limit": batch.concurrency_limit,
        "variant": "advanced",
        "policy": {
            "timezone": batch.timezone,
            "calling_periods": periods,
            "retry": {
                "max_total_calls": policy.max_attempts,
                "retry_delay_seconds": policy.retry_delay_minutes * 60,
                # A number the person names on the call is not one the user uploaded or checked
                # against the do-not-call list: never called.
                "max_redirects": 0,
            },
            "data_collection": {"redirect_phone_number": None},
        },
    }


_ALWAYS = [{"weekdays": [0, 1, 2, 3, 4, 5, 6], "intervals": [{"start": "00:00", "end": "24:00"}]}]


# --- Following ------------------------------------------------------------------------------


def batch_poll(*, batch: CampaignBatch, client) -> list[str]:
    """Bring the part's recipients, calls and counters in step with ElevenLabs; return the
    conversation ids learned. Raises ElevenLabsError when ElevenLabs cannot be read."""
    remote = client.get_outbound_campaign(batch.elevenlabs_campaign_id)
    progress = client.get_outbound_campaign_progress(batch.elevenlabs_campaign_id)
    signature = json.dumps([remote.status, progress.raw], sort_keys=True, default=str)
    learned: list[str] = []
    if signature != batch.progress_signature:
        learned, complete = _leads_and_calls_apply(batch=batch, client=client)
        if not complete:
            signature = ""  # something must be done again: read in full at the next poll
    now = timezone.now()
    settled = remote.status in ENDED and progress.active == 0 and progress.calls_in_progress == 0
    changes = {
        "status": remote.status[:32],
        "calls_dispatched": max(progress.total - progress.uncalled, 0),
        "calls_finished": progress.finished,
        "next_call_at": _instant(progress.next_call_time_unix),
        "progress_signature": signature,
        "polled_at": now,
        "poll_failures": 0,
    }
    if settled:
        changes["settled_at"] = now
    CampaignBatch.objects.filter(pk=batch.pk).update(**changes)
    _attention_note(campaign_id=batch.campaign_id, attention=remote.status == "attention")
    return learned


ATTENTION = (
    "ElevenLabs is holding back some calls of this campaign until an attention item is resolved "
    "(ElevenLabs dashboard, Outbound campaigns); the other calls go ahead."
)


def _attention_note(*, campaign_id: int, attention: bool) -> None:
    """Say in `error` why some calls wait while ElevenLabs reports `attention`, and unsay it after."""
    campaigns = Campaign.objects.filter(pk=campaign_id)
    if attention:
        campaigns.filter(error="").update(error=ATTENTION)
    else:
        campaigns.filter(error=ATTENTION).update(error="")


def _instant(unix: int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(unix, dt.UTC) if unix else None


def _leads_and_calls_apply(*, batch: CampaignBatch, client) -> tuple[list[str], bool]:
    """(conversation ids learned, whether everything was done: a lead that could not be removed was not)."""
    campaign = Campaign.objects.select_related("user").get(pk=batch.campaign_id)
    by_lead: dict[str, int] = {}  # lead id -> our recipient id
    complete = True
    cursor = None
    while True:
        page = client.list_campaign_leads(batch.elevenlabs_campaign_id, cursor=cursor, page_size=PAGE_SIZE)
        _leads_apply(campaign=campaign, leads=page.leads, by_lead=by_lead)
        removed = _listed_leads_remove(campaign=campaign, batch=batch, leads=page.leads, by_lead=by_lead, client=client)
        complete = complete and removed
        if not page.has_more or not page.next_cursor:
            break
        cursor = page.next_cursor

    learned: list[str] = []
    latest_seen: set[str] = set()
    cursor = None
    while True:
        page = client.list_campaign_calls(batch.elevenlabs_campaign_id, cursor=cursor, page_size=PAGE_SIZE)
        learned += _calls_apply(campaign=campaign, calls=page.calls, by_lead=by_lead, latest_seen=latest_seen)
        if not page.has_more or not page.next_cursor:
            break
        cursor = page.next_cursor
    return learned, complete


def _leads_apply(*, campaign: Campaign, leads: list, by_lead: dict[str, int]) -> None:
    """One UPDATE for a page of leads: lead id, attempts made, and why the lead ended."""
    rows = []
    for lead in leads:
        try:
            recipient_id = int(lead.recipient_id or "")
        except ValueError:
            continue  # not a lead of ours
        by_lead[lead.lead_id] = recipient_id
        # Ended before any call (removed, campaign stopped): nobody will call this recipient.
        uncalled_end = 1 if lead.terminal_disposition and lead.attempt_count == 0 else 0
        disposition = (lead.terminal_disposition or "")[:32]
        rows.append([recipient_id, lead.lead_id[:128], max(lead.attempt_count, 1), disposition, uncalled_end])
        if lead.terminal_disposition == "do_not_call" and lead.phone_number:
            _learned_do_not_call(campaign=campaign, phone_number=lead.phone_number)
    if not rows:
        return
    table = Recipient._meta.db_table
    values = tracking.json_rows_sql(("id", "lead_id", "attempts", "disposition", "uncalled_end"))
    with connection.cursor() as cursor:
        # The attempt only grows: a new attempt starts the recipient afresh (the next call's
        # outcome is not the last one's), as a retry of a batch call does.
        cursor.execute(
            f"WITH v AS MATERIALIZED ({values}) "
            f"UPDATE {table} SET elevenlabs_lead_id = v.lead_id, disposition = v.disposition, "
            f"attempt = CASE WHEN CAST(v.attempts AS integer) > {table}.attempt "
            f"THEN CAST(v.attempts AS integer) ELSE {table}.attempt END, "
            f"status = CASE WHEN CAST(v.uncalled_end AS integer) = 1 AND {table}.status IN (%s, %s) "
            f"THEN %s ELSE {table}.status END "
            f"FROM v WHERE {table}.id = CAST(v.id AS integer) AND {table}.campaign_id = %s",
            [json.dumps(rows), R.PENDING, R.DISPATCHED, R.CANCELLED, campaign.pk],
        )


def _listed_leads_remove(*, campaign: Campaign, batch: CampaignBatch, leads: list, by_lead: dict, client) -> bool:
    """Remove at ElevenLabs the leads still to be called whose number joined the do-not-call list;
    False when ElevenLabs did not take every removal."""
    open_leads = {lead.phone_number: lead for lead in leads if not lead.terminal_disposition and lead.phone_number}
    listed = suppressions.suppressed_numbers(user=campaign.user, numbers=list(open_leads))
    removed_all = True
    for number in listed:
        lead = open_leads[number]
        try:
            client.delete_campaign_lead(batch.elevenlabs_campaign_id, lead.lead_id)
        except elevenlabs.ElevenLabsError as exc:
            logger.warning("Campaign %s: removing the listed lead %s failed: %s", campaign.pk, lead.lead_id, exc)
            removed_all = False
            continue
        Recipient.objects.filter(pk=by_lead.get(lead.lead_id), campaign_id=campaign.pk).exclude(
            status__in=tracking.TERMINAL_RECIPIENT_STATUSES
        ).update(status=R.CANCELLED, disposition="suppressed", next_call_at=None, status_updated_at=timezone.now())
        logger.info("Campaign %s: lead %s removed, its number is on the do-not-call list", campaign.pk, lead.lead_id)
    return removed_all


def _learned_do_not_call(*, campaign: Campaign, phone_number: str) -> None:
    if Suppression.objects.filter(user=campaign.user, phone_number=phone_number).exists():
        return
    suppressions.suppression_add(
        user=campaign.user,
        phone_number=phone_number,
        reason=f"Asked not to be called again, on a call of campaign “{campaign.name}”",
        source=Suppression.Source.ELEVENLABS,
        campaign=campaign,
    )


def _calls_apply(*, campaign: Campaign, calls: list, by_lead: dict[str, int], latest_seen: set[str]) -> list[str]:
    """Record each placed call, and put each recipient on its lead's latest call (calls come newest first)."""
    learned = []
    updates = []
    new_calls = []
    for call in calls:
        recipient_id = by_lead.get(call.lead_id)
        if recipient_id is None:
            continue
        conversation_id = (call.conversation_id or "")[:128]
        if conversation_id:
            learned.append(conversation_id)
            new_calls.append(
                Call(
                    recipient_id=recipient_id,
                    campaign_id=campaign.pk,
                    attempt=max(call.raw.get("cold_attempt") or 1, 1),
                    conversation_id=conversation_id,
                    status=(call.outcome or call.status or "")[:16],
                    call_result=(call.call_result or "")[:16],
                )
            )
        if call.lead_id in latest_seen:
            continue
        latest_seen.add(call.lead_id)
        status = _status_of(call)
        next_call = _instant(call.scheduled_time_unix) if status == R.DISPATCHED else None
        updates.append([recipient_id, status, conversation_id, next_call.isoformat() if next_call else None])
    if new_calls:
        Call.objects.bulk_create(new_calls, ignore_conflicts=True)
    if updates:
        _recipients_on_call(campaign_id=campaign.pk, rows=updates)
    return learned


def _status_of(call) -> str:
    """What the recipient is doing, by the latest call of its lead."""
    if call.outcome in _OUTCOMES:
        return call.outcome
    return _CALL_STATUS.get(call.status, R.DISPATCHED)


def _recipients_on_call(*, campaign_id: int, rows: list[list]) -> None:
    """One UPDATE: status, conversation and next call of each recipient, from its latest call.

    A finished lead keeps its final status; a recipient waiting for its next call is
    `dispatched` with `next_call_at`, its last outcome still in its call records.
    """
    table = Recipient._meta.db_table
    values = tracking.json_rows_sql(("id", "status", "conversation_id", "next_call_at"))
    next_call = "CAST(v.next_call_at AS timestamptz)" if connection.vendor == "postgresql" else "v.next_call_at"
    ranks = list(tracking.RECIPIENT_RANK.items())
    rank = "CASE {} " + " ".join("WHEN %s THEN %s" for _ in ranks) + " ELSE -1 END"
    rank_params = [value for pair in ranks for value in pair]
    with connection.cursor() as cursor:
        # On the same conversation the status only moves forward (a webhook's voicemail is not
        # undone by the poll's completed); a new conversation is a new call and starts afresh.
        cursor.execute(
            f"WITH v AS MATERIALIZED ({values}) "
            f"UPDATE {table} SET status = v.status, "
            f"conversation_id = CASE WHEN v.conversation_id <> '' THEN v.conversation_id "
            f"ELSE {table}.conversation_id END, "
            f"next_call_at = {next_call}, status_updated_at = %s "
            f"FROM v WHERE {table}.id = CAST(v.id AS integer) AND {table}.campaign_id = %s "
            f"AND ({table}.status <> v.status OR {table}.conversation_id <> v.conversation_id) "
            f"AND NOT ({table}.conversation_id = v.conversation_id "
            f"AND {rank.format(table + '.status')} > {rank.format('v.status')}) "
            f"RETURNING {table}.id, {table}.status",
            [json.dumps(rows), timezone.now(), campaign_id, *rank_params, *rank_params],
        )
        finished = [pk for pk, status in cursor.fetchall() if status in tracking.TERMINAL_RECIPIENT_STATUSES]
    events.recipients_call_finished(campaign_id=campaign_id, recipient_ids=finished)


# --- Stop, pause, resume, remove a lead -----------------------------------------------------


def batch_stop(*, batch: CampaignBatch, client) -> str:
    """Stop the part at ElevenLabs (queued calls cancelled, calls under way finish); its status."""
    try:
        remote = client.stop_outbound_campaign(batch.elevenlabs_campaign_id)
    except elevenlabs.ElevenLabsError as exc:
        if exc.retryable:
            raise
        remote = client.get_outbound_campaign(batch.elevenlabs_campaign_id)
        if remote.status not in (*ENDED, "stopping"):
            raise exc from None
    return remote.status


def lead_remove(*, recipient: Recipient, batch: CampaignBatch, client) -> bool:
    """Remove a recipient's lead so it is never called again; whether a placed call may still go through."""
    result = client.delete_campaign_lead(batch.elevenlabs_campaign_id, recipient.elevenlabs_lead_id)
    return result.has_calls_in_flight
