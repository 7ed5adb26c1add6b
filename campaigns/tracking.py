"""Keeping campaigns and recipients in step with ElevenLabs: polls and post-call webhooks.

Statuses only move forward. Recipients are updated in bulk: one read of the batch's
current state, then one UPDATE of every changed row, guarded by the status that was read,
so a late or repeated report never undoes a newer one.
"""

import json
import logging
from collections import Counter

from django.db import connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from campaigns import elevenlabs
from campaigns.models import Campaign, CampaignBatch, Recipient

logger = logging.getLogger(__name__)

S = Campaign.Status
R = Recipient.Status

ACTIVE_CAMPAIGN_STATUSES = (S.SCHEDULED, S.PENDING, S.IN_PROGRESS)
CAMPAIGN_RANK = {S.SCHEDULED: 0, S.PENDING: 1, S.IN_PROGRESS: 2, S.COMPLETED: 3, S.FAILED: 3, S.CANCELLED: 3}
RECIPIENT_RANK = {
    R.PENDING: 0,
    R.DISPATCHED: 1,
    R.INITIATED: 2,
    R.IN_PROGRESS: 3,
    R.COMPLETED: 4,
    R.FAILED: 4,
    R.CANCELLED: 4,
    R.VOICEMAIL: 4,
}
OPEN_RECIPIENT_STATUSES = (R.PENDING, R.DISPATCHED, R.INITIATED, R.IN_PROGRESS)
TERMINAL_BATCH = ("completed", "failed", "cancelled")


# --- Campaign status from its batches ------------------------------------------------------


def _status_from_batches(statuses: list[str], all_submitted: bool) -> str:
    known = [status if status in CAMPAIGN_RANK else S.PENDING for status in statuses]
    if all_submitted and known and all(status in TERMINAL_BATCH for status in known):
        if all(status == S.CANCELLED for status in known):
            return S.CANCELLED
        return S.FAILED if S.FAILED in known else S.COMPLETED
    if any(status in (S.IN_PROGRESS, *TERMINAL_BATCH) for status in known):
        return S.IN_PROGRESS
    return S.PENDING


def campaign_refresh(*, campaign_id: int) -> None:
    """Recompute a campaign's status and counters from its batches; the status only moves forward."""
    batches = list(
        CampaignBatch.objects.filter(campaign_id=campaign_id).values_list("status", "elevenlabs_batch_call_id")
    )
    if not batches:
        return
    totals = CampaignBatch.objects.filter(campaign_id=campaign_id).aggregate(
        dispatched=Sum("calls_dispatched"), finished=Sum("calls_finished")
    )
    new = _status_from_batches([status for status, _ in batches], all(batch_id for _, batch_id in batches))
    behind = [status for status, rank in CAMPAIGN_RANK.items() if rank < CAMPAIGN_RANK[new]]
    now = timezone.now()
    Campaign.objects.filter(pk=campaign_id).update(
        calls_dispatched=totals["dispatched"] or 0, calls_finished=totals["finished"] or 0, updated_at=now
    )
    Campaign.objects.filter(pk=campaign_id, status__in=behind).update(status=new, updated_at=now)


# --- Recipients in bulk --------------------------------------------------------------------


def recipients_apply(*, campaign_id: int, current, reports) -> int:
    """Apply (phone_number, status, conversation_id) reports to recipients read as `current`.

    `current` is (phone_number, status, conversation_id) as read from the database. Unknown
    statuses and backward moves are ignored. Returns how many rows changed.
    """
    by_phone = {phone: (status, conversation_id) for phone, status, conversation_id in reports if phone}
    changes = []
    for phone, status, conversation_id in current:
        report = by_phone.get(phone)
        if report is None:
            continue
        reported, reported_conversation = report
        new_status = reported if RECIPIENT_RANK.get(reported, -1) > RECIPIENT_RANK[status] else status
        new_conversation = conversation_id or (reported_conversation or "")
        if (new_status, new_conversation) != (status, conversation_id):
            changes.append((phone, status, new_status, new_conversation))
    if changes:
        _recipients_update(campaign_id=campaign_id, changes=changes)
    return len(changes)


def _recipients_update(*, campaign_id: int, changes: list[tuple[str, str, str, str]]) -> None:
    """One UPDATE for all rows; each changes only if its status is still the one read.

    The rows travel as one JSON parameter: thousands of placeholders would hit SQLite's
    limit and slow PostgreSQL's planner.
    """
    table = Recipient._meta.db_table
    if connection.vendor == "postgresql":
        rows = "jsonb_array_elements(%s::jsonb) AS e"
        field = "e->>{}"
    else:
        rows = "json_each(%s)"
        field = "json_extract(value, '$[{}]')"
    columns = ", ".join(
        f"{field.format(i)} AS {name}"
        for i, name in enumerate(("phone_number", "old_status", "new_status", "conversation_id"))
    )
    with connection.cursor() as cursor:
        # MATERIALIZED: SQLite would otherwise rescan the JSON for every recipient row.
        cursor.execute(
            f"WITH v AS MATERIALIZED (SELECT {columns} FROM {rows}) "
            f"UPDATE {table} SET status = v.new_status, conversation_id = v.conversation_id, "
            f"status_updated_at = %s FROM v "
            f"WHERE {table}.campaign_id = %s AND {table}.phone_number = v.phone_number "
            f"AND {table}.status = v.old_status",
            [json.dumps(changes), timezone.now(), campaign_id],
        )


# --- Polling -------------------------------------------------------------------------------


def campaigns_active() -> list[int]:
    """Campaigns with a submitted batch that has not reached a final status."""
    return list(
        CampaignBatch.objects.filter(
            elevenlabs_batch_call_id__isnull=False, campaign__status__in=ACTIVE_CAMPAIGN_STATUSES
        )
        .exclude(status__in=TERMINAL_BATCH)
        .order_by()  # the default ordering would add `part` to the DISTINCT
        .values_list("campaign_id", flat=True)
        .distinct()
    )


def campaign_poll(*, campaign_id: int, client=None) -> None:
    """Fetch each active batch of the campaign from ElevenLabs and bring our records in step."""
    client = client or elevenlabs.client_from_settings()
    batches = CampaignBatch.objects.filter(campaign_id=campaign_id, elevenlabs_batch_call_id__isnull=False).exclude(
        status__in=TERMINAL_BATCH
    )
    for batch in batches:
        remote = client.get_batch(batch.elevenlabs_batch_call_id)
        batch_apply(batch=batch, remote=remote)
    campaign_refresh(campaign_id=campaign_id)


def batch_apply(*, batch: CampaignBatch, remote) -> None:
    """Bring the batch's recipients and counters in step with ElevenLabs' report of it."""
    current = (
        Recipient.objects.filter(campaign_id=batch.campaign_id)
        .order_by("pk")
        .values_list("phone_number", "status", "conversation_id")[batch.offset : batch.offset + batch.size]
    )
    recipients_apply(
        campaign_id=batch.campaign_id,
        current=current,
        reports=[(r.phone_number, r.status, r.conversation_id) for r in remote.recipients],
    )
    CampaignBatch.objects.filter(pk=batch.pk).update(
        status=remote.status,
        calls_dispatched=remote.total_calls_dispatched,
        calls_finished=remote.total_calls_finished,
        retry_count=remote.retry_count,
        polled_at=timezone.now(),
    )


# --- Outcomes ------------------------------------------------------------------------------


def recipient_outcome_record(
    *,
    batch_call_id: str | None,
    phone_number: str | None,
    conversation_id: str | None,
    status: str,
    call_successful: str = "",
    failure_reason: str = "",
    summary: str = "",
) -> bool:
    """Record one call's outcome from a webhook. Idempotent; returns whether a recipient matched."""
    recipients = Recipient.objects.none()
    if batch_call_id and phone_number:
        campaign_id = (
            CampaignBatch.objects.filter(elevenlabs_batch_call_id=batch_call_id)
            .values_list("campaign_id", flat=True)
            .first()
        )
        if campaign_id:
            recipients = Recipient.objects.filter(campaign_id=campaign_id, phone_number=phone_number)
    if not recipients.exists() and conversation_id:
        recipients = Recipient.objects.filter(conversation_id=conversation_id)
    recipient = recipients.first()
    if recipient is None:
        return False
    with transaction.atomic():
        recipient = Recipient.objects.select_for_update().get(pk=recipient.pk)
        if RECIPIENT_RANK.get(status, -1) >= RECIPIENT_RANK[recipient.status]:
            recipient.status = status
        recipient.conversation_id = recipient.conversation_id or (conversation_id or "")
        recipient.call_successful = call_successful or recipient.call_successful
        recipient.failure_reason = failure_reason or recipient.failure_reason
        recipient.summary = summary or recipient.summary
        recipient.status_updated_at = timezone.now()
        recipient.save()
    return True


def outcome_counts(*, campaign_id: int) -> dict[str, int]:
    """Recipients per call status, every status present (zeros included)."""
    counts = Counter(
        dict(
            Recipient.objects.filter(campaign_id=campaign_id)
            .values_list("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        )
    )
    return {status: counts.get(status, 0) for status in R.values}
