"""The campaign page as data: the progress, the outcomes, the actions and the recipients shown.

The page renders it once, and its progress.json sends it again every few seconds for the
script to put in place; both come from here, so a refreshed row reads as a reloaded one would.
Everything is worded and formatted here (in the campaign's or the person's time zone), and the
script only sets text, classes and attributes.
"""

from django.urls import reverse
from django.utils import dateformat

from campaigns import control, selectors, tracking
from campaigns.models import Campaign, Recipient
from campaigns.policy import policy_from_campaign
from campaigns.templatetags.web_extras import in_zone

RETRYABLE_RECIPIENT_STATUSES = (Recipient.Status.FAILED, Recipient.Status.VOICEMAIL)
SUMMARY_CHARS = 100
# Why ElevenLabs stopped calling a person (a lead's disposition), or ours for a listed number.
DISPOSITIONS = {
    "completed": "Reached",
    "attempt_ceiling_reached": "All attempts used",
    "do_not_call": "Asked not to be called",
    "suppressed": "On the do-not-call list",
    "campaign_ended": "Campaign ended",
    "removed": "Taken off the campaign",
}


def percent(part: int, whole: int) -> int | None:
    return round(100 * part / whole) if whole else None


def rate_text(part: int, whole: int) -> str:
    """A rate as people read it: "67%", or a dash while there is nothing to count yet."""
    value = percent(part, whole)
    return "\N{EM DASH}" if value is None else f"{value}%"


def rates(by_outcome: dict[str, int]) -> dict:
    """Answer rate (answered of the calls placed that ended) and success rate (successful of the answered)."""
    answered = sum(by_outcome.get(key, 0) for key in tracking.ANSWERED_OUTCOMES)
    placed = sum(by_outcome.get(key, 0) for key in tracking.PLACED_OUTCOMES)
    successful = by_outcome.get("answered_successful", 0)
    return {
        "answer": rate_text(answered, placed),
        "success": rate_text(successful, answered),
        "answered": answered,
        "placed_finished": placed,
        "successful": successful,
    }


def outcome_groups(by_outcome: dict[str, int]) -> dict:
    """The outcome chart: what is still in the pipeline, and how the finished calls ended."""
    total = sum(by_outcome.values())

    def rows(labels: dict[str, str]) -> list[dict]:
        return [
            {
                "key": key,
                "label": label,
                "count": by_outcome.get(key, 0),
                "pct": percent(by_outcome.get(key, 0), total) or 0,
            }
            for key, label in labels.items()
        ]

    return {
        "pipeline": rows(tracking.PIPELINE_OUTCOMES),
        "finished": rows(tracking.FINISHED_OUTCOMES),
        "pipeline_total": sum(by_outcome.get(key, 0) for key in tracking.PIPELINE_OUTCOMES),
        "finished_total": sum(by_outcome.get(key, 0) for key in tracking.FINISHED_OUTCOMES),
    }


def actions(campaign: Campaign, by_status: dict[str, int]) -> list[str]:
    """The buttons the campaign offers now, in page order."""
    offered = []
    if campaign.status in (Campaign.Status.IN_PROGRESS, Campaign.Status.COMPLETED) and any(
        by_status.get(status) for status in RETRYABLE_RECIPIENT_STATUSES
    ):
        offered.append("retry")
    if campaign.status in control.PAUSABLE and campaign.cancel_requested_at is None:
        offered.append("pause")
    if campaign.status == Campaign.Status.PAUSED:
        offered.append("resume")
    if campaign.status in tracking.ACTIVE_CAMPAIGN_STATUSES:
        offered.append("cancel")
    return offered


def progress(campaign: Campaign, counts: selectors.RecipientCounts) -> dict:
    """The progress region, the outcome chart, the rates, the batches and the buttons."""
    data = {
        "id": campaign.pk,
        "status": campaign.status,
        "status_display": campaign.get_status_display(),
        "final": selectors.campaign_is_final(campaign=campaign),
        "recipients_count": campaign.recipients_count,
        "calls_dispatched": campaign.calls_dispatched,
        "calls_finished": campaign.calls_finished,
        "percent": min(100, percent(campaign.calls_finished, campaign.recipients_count) or 0),
        "counts": counts.by_status,
        "error": campaign.error,
        "outcomes": outcome_groups(counts.by_outcome),
        "rates": rates(counts.by_outcome),
        "batch_ids": selectors.campaign_batch_ids(campaign=campaign),
        "actions": actions(campaign, counts.by_status),
        # What the failure and paused notices say: the page swaps them in when it changes.
        "notices_key": "|".join(
            (campaign.status, campaign.paused_at.isoformat() if campaign.paused_at else "", campaign.error)
        ),
    }
    # With calling hours or retries, people's time zones decide when they are called: the page
    # follows each zone and the next call. Other campaigns call everyone at once.
    if policy_from_campaign(campaign).uses_outbound_campaigns:
        next_call_at = selectors.campaign_next_call_at(campaign=campaign)
        data["next_call_at"] = next_call_at.isoformat() if next_call_at else None
        data["zones"] = counts.zones
    return data


def _when(value, zone: str, pattern: str) -> str:
    return dateformat.format(in_zone(value, zone), pattern) if value else ""


def short_id(value: str) -> str:
    """A long id as its start and end (`conv_01jx…f3d1`): enough to tell calls apart on one line."""
    return value if len(value) <= 16 else f"{value[:9]}\N{HORIZONTAL ELLIPSIS}{value[-4:]}"


def recipient_row(recipient: Recipient, *, campaign: Campaign) -> dict:
    """One row of the recipients table."""
    outcome = tracking.outcome_of(
        status=recipient.status,
        call_result=recipient.call_result,
        call_successful=recipient.call_successful,
        failure_reason=recipient.failure_reason,
        attempt=recipient.attempt,
        conversation_id=recipient.conversation_id,
    )
    summary = " ".join(recipient.summary.split())
    if len(summary) > SUMMARY_CHARS:
        summary = summary[: SUMMARY_CHARS - 1].rstrip() + "\N{HORIZONTAL ELLIPSIS}"
    not_called = recipient.status == Recipient.Status.PENDING and not recipient.conversation_id
    next_call = recipient.next_call_at
    return {
        "id": recipient.pk,
        "line": recipient.line,
        "phone_number": recipient.phone_number,
        "url": reverse("web:call_detail", args=[campaign.pk, recipient.pk]),
        "status": recipient.status,
        "outcome": outcome,
        "outcome_label": tracking.OUTCOME_LABELS[outcome],
        "summary": summary,
        "attempts": 0 if not_called else recipient.attempt,
        "next_call_at": next_call.isoformat() if next_call else None,
        "next_call": _when(next_call, recipient.timezone, "D j M, H:i T"),
        "next_call_utc": _when(next_call, "UTC", "D j M, H:i T"),
        "disposition": DISPOSITIONS.get(recipient.disposition, recipient.disposition),
        "updated_at": recipient.status_updated_at.isoformat() if recipient.status_updated_at else None,
        "updated": _when(recipient.status_updated_at, campaign.timezone, "j M, H:i"),
        "conversation_id": recipient.conversation_id,
        "conversation_short": short_id(recipient.conversation_id),
    }
