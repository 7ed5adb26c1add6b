"""Keeping campaigns and recipients in step with ElevenLabs: polls and post-call webhooks.

Statuses only move forward, with one exception: a `cancelled` we wrote ourselves when a
cancel was confirmed is a guess about calls ElevenLabs may still have been placing, so
ElevenLabs' final word (completed, failed, voicemail) replaces it. Voicemail outranks
completed: a poll's `completed` never undoes a `voicemail` ElevenLabs reported for the
same call, in whichever order they arrive. Recipients are updated in bulk: one read of
the batch's current state, then one UPDATE of every changed row, guarded by the status
(and attempt) that was read, so a late or repeated report never undoes a newer one.

A batch is followed until ElevenLabs reports it ended and every call in it finished
(`settled_at`), whatever the campaign's own status: a cancelled campaign's last calls
are recorded with their real outcome.
"""

import datetime as dt
import json
import logging
import time

from django.conf import settings
from django.db import connection
from django.db.models import Case, CharField, F, Q, Sum, Value, When
from django.utils import timezone

from campaigns import elevenlabs, sqlrows
from campaigns.events import services as events
from campaigns.models import BATCH_SENT, Call, Campaign, CampaignBatch, Recipient
from campaigns.policy import RECIPIENT_ZONE
from voiceable.logs import log_context

logger = logging.getLogger(__name__)

S = Campaign.Status
R = Recipient.Status

ACTIVE_CAMPAIGN_STATUSES = (S.SCHEDULED, S.PENDING, S.IN_PROGRESS, S.PAUSED)
CAMPAIGN_RANK = {
    S.SCHEDULED: 0,
    S.PENDING: 1,
    S.IN_PROGRESS: 2,
    # Held by the user: only an end (or a resume, which sets in_progress itself) replaces it.
    S.PAUSED: 3,
    S.CANCELLING: 3,
    S.COMPLETED: 4,
    S.FAILED: 4,
    S.CANCELLED: 4,
}
RECIPIENT_RANK = {
    R.PENDING: 0,
    R.DISPATCHED: 1,
    R.INITIATED: 2,
    R.IN_PROGRESS: 3,
    R.CANCELLED: 4,
    R.COMPLETED: 5,
    R.FAILED: 5,
    R.VOICEMAIL: 6,
}
OPEN_RECIPIENT_STATUSES = (R.PENDING, R.DISPATCHED, R.INITIATED, R.IN_PROGRESS)
TERMINAL_RECIPIENT_STATUSES = (R.COMPLETED, R.FAILED, R.CANCELLED, R.VOICEMAIL)
TERMINAL_BATCH = ("completed", "failed", "cancelled")
TERMINAL_OUTBOUND = ("completed", "failed", "stopped", "stopping")
# An outbound campaign's status in batch calling's words, for the campaign's own status.
OUTBOUND_AS_BATCH = {
    "active": "in_progress",
    "attention": "in_progress",
    # Queued calls dropped, calls under way finishing: the campaign is cancelled (and followed on).
    "stopping": "cancelled",
    "paused": "in_progress",
    "stopped": "cancelled",
    "completed": "completed",
    "failed": "failed",
}


def status_moves_forward(current: str, reported: str) -> bool:
    """Whether `reported` may replace `current` (unknown statuses never do)."""
    return RECIPIENT_RANK.get(reported, -1) > RECIPIENT_RANK.get(current, 99)


def batch_zone_filter(*, batch: CampaignBatch) -> dict:
    """The filter that picks the batch's group out of the campaign's recipients: an outbound
    campaign per recipient zone carries that zone's recipients only."""
    if not batch.timezone:
        return {}
    by_zone = Campaign.objects.filter(pk=batch.campaign_id, calling_timezone=RECIPIENT_ZONE).exists()
    return {"timezone": batch.timezone} if by_zone else {}


def batch_recipients(*, batch: CampaignBatch):
    """The recipients one batch carries: the campaign's (or its zone group's) [offset, offset + size) in id
    order, or the ones a resume gave it."""
    if batch.recipient_ids is not None:
        return Recipient.objects.filter(campaign_id=batch.campaign_id, pk__in=batch.recipient_ids)
    group = Recipient.objects.filter(campaign_id=batch.campaign_id, **batch_zone_filter(batch=batch))
    ids = group.order_by("pk").values_list("pk", flat=True)
    first = ids[batch.offset : batch.offset + 1].first()
    last = ids[batch.offset + batch.size - 1 : batch.offset + batch.size].first()
    if first is None or last is None:
        return Recipient.objects.none()
    return group.filter(pk__gte=first, pk__lte=last)


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
    """Recompute a campaign's status and counters from its batches; the status only moves forward.

    The counters are always the sums of ElevenLabs' own counters over the batches. A
    campaign with a cancel request is `cancelling` until every batch is confirmed, then
    `cancelled`.
    """
    rows = list(
        CampaignBatch.objects.filter(campaign_id=campaign_id).values_list(
            "status", "elevenlabs_batch_call_id", "elevenlabs_campaign_id", "cancel_confirmed_at"
        )
    )
    batches = [
        (OUTBOUND_AS_BATCH.get(status, status) if outbound_id else status, batch_id or outbound_id, confirmed)
        for status, batch_id, outbound_id, confirmed in rows
    ]
    # Paused at ElevenLabs (from its dashboard, say), every outbound part still open: paused here too.
    open_parts = [
        status for status, batch_id, outbound_id, _ in rows if outbound_id and status not in TERMINAL_OUTBOUND
    ]
    paused_upstream = bool(open_parts) and all(status == "paused" for status in open_parts)
    cancel_requested_at = Campaign.objects.filter(pk=campaign_id).values_list("cancel_requested_at", flat=True).first()
    if not batches:
        if cancel_requested_at is not None:
            # Never claimed for sending: nothing exists at ElevenLabs to wait for.
            Campaign.objects.filter(pk=campaign_id, status=S.CANCELLING).update(
                status=S.CANCELLED, error="", updated_at=timezone.now()
            )
        return
    totals = CampaignBatch.objects.filter(campaign_id=campaign_id).aggregate(
        dispatched=Sum("calls_dispatched"), finished=Sum("calls_finished")
    )
    now = timezone.now()
    Campaign.objects.filter(pk=campaign_id).update(
        calls_dispatched=totals["dispatched"] or 0, calls_finished=totals["finished"] or 0, updated_at=now
    )
    campaigns = Campaign.objects.filter(pk=campaign_id)
    if cancel_requested_at is not None:
        new = S.CANCELLED if all(confirmed for *_, confirmed in batches) else S.CANCELLING
    else:
        # A part never sent because everyone in it is on the do-not-call list counts as done.
        done = all(batch_id or confirmed for _, batch_id, confirmed in batches)
        new = _status_from_batches([status for status, *_ in batches], done)
        if paused_upstream and new == S.IN_PROGRESS:
            new = S.PAUSED
            # Held by ElevenLabs already: a resume from here may go ahead.
            campaigns.filter(status__in=(S.PENDING, S.IN_PROGRESS)).update(paused_at=now, pause_confirmed=True)
        # A cancel committed since the read above decides the status, not this computation; a
        # paused campaign stays paused whatever its parts do (a pause cancels batch calls).
        campaigns = campaigns.filter(cancel_requested_at__isnull=True).exclude(status=S.PAUSED)
    behind = [status for status, rank in CAMPAIGN_RANK.items() if rank < CAMPAIGN_RANK[new]]
    if campaigns.filter(status__in=behind).update(status=new, updated_at=now):
        events.campaign_status_changed_by_id(campaign_id=campaign_id)


# --- Recipients in bulk --------------------------------------------------------------------


def recipients_apply(*, campaign_id: int, current, reports, ignore_conversations=frozenset(), not_before=None) -> list:
    """Apply (phone_number, status, conversation_id, updated_at_unix) reports to recipients.

    `current` is (phone_number, status, conversation_id, attempt, retried_at) as read from
    the database. Unknown statuses and backward moves are ignored, and so is a report about
    an earlier attempt (its conversation is in `ignore_conversations`, or ElevenLabs last
    changed it before the recipient was retried). Returns the conversation ids learned.
    """
    by_phone = {report[0]: report for report in reports if report[0]}
    changes = []
    learned = []
    for phone, status, conversation_id, attempt, retried_at in current:
        report = by_phone.get(phone)
        if report is None:
            continue
        _, reported, reported_conversation, updated_at_unix = report
        reported_conversation = (reported_conversation or "")[:128]
        if reported_conversation and reported_conversation in ignore_conversations:
            continue
        if retried_at is not None and updated_at_unix is not None and updated_at_unix < retried_at.timestamp():
            continue
        new_status = reported if status_moves_forward(status, reported) else status
        new_conversation = conversation_id or reported_conversation
        if new_conversation and new_conversation != conversation_id:
            learned.append(new_conversation)
        if (new_status, new_conversation) != (status, conversation_id):
            changes.append((phone, status, new_status, new_conversation, attempt))
    if changes:
        _recipients_update(campaign_id=campaign_id, changes=changes)
    if learned:
        _calls_record(campaign_id=campaign_id, conversation_ids=learned)
    return learned


def json_rows_sql(columns: tuple[str, ...]) -> str:
    """A SELECT over one JSON parameter holding a list of rows (lists), one column per position."""
    if connection.vendor == "postgresql":
        rows = "jsonb_array_elements(%s::jsonb) AS e"
        field = "e->>{}"
    else:
        rows = "json_each(%s)"
        field = "json_extract(value, '$[{}]')"
    return f"SELECT {', '.join(f'{field.format(i)} AS {name}' for i, name in enumerate(columns))} FROM {rows}"


def _recipients_update(*, campaign_id: int, changes: list[tuple]) -> None:
    """One UPDATE for all rows; each changes only if its status and attempt are still the ones read.

    The rows travel as one JSON parameter: thousands of placeholders would hit SQLite's
    limit and slow PostgreSQL's planner.
    """
    table = Recipient._meta.db_table
    values = json_rows_sql(("phone_number", "old_status", "new_status", "conversation_id", "attempt"))
    with connection.cursor() as cursor:
        # MATERIALIZED: SQLite would otherwise rescan the JSON for every recipient row.
        cursor.execute(
            f"WITH v AS MATERIALIZED ({values}) "
            f"UPDATE {table} SET status = v.new_status, conversation_id = v.conversation_id, "
            f"status_updated_at = %s FROM v "
            f"WHERE {table}.campaign_id = %s AND {table}.phone_number = v.phone_number "
            f"AND {table}.status = v.old_status AND {table}.attempt = CAST(v.attempt AS integer) "
            f"RETURNING {table}.id, {table}.status",
            [json.dumps(changes), timezone.now(), campaign_id],
        )
        finished = [pk for pk, status in cursor.fetchall() if status in TERMINAL_RECIPIENT_STATUSES]
    events.recipients_call_finished(campaign_id=campaign_id, recipient_ids=finished)


def _calls_record(*, campaign_id: int, conversation_ids: list[str]) -> None:
    """One Call per newly learned conversation, for the attempt the recipient is on (one INSERT)."""
    calls = Call._meta.db_table
    recipients = Recipient._meta.db_table
    if connection.vendor == "postgresql":
        ids = "SELECT jsonb_array_elements_text(%s::jsonb)"
    else:
        ids = "SELECT value FROM json_each(%s)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {calls} (recipient_id, campaign_id, attempt, conversation_id, status, transcript) "
            f"SELECT r.id, r.campaign_id, r.attempt, r.conversation_id, r.status, '[]' FROM {recipients} r "
            f"WHERE r.campaign_id = %s AND r.conversation_id IN ({ids}) "
            "ON CONFLICT (conversation_id) DO NOTHING",
            [campaign_id, json.dumps(conversation_ids)],
        )


# --- Polling -------------------------------------------------------------------------------


def campaigns_active() -> list[int]:
    """Campaigns with a submitted batch ElevenLabs has not yet reported finished, call by call."""
    return list(
        CampaignBatch.objects.filter(BATCH_SENT, settled_at__isnull=True)
        .order_by()  # the default ordering would add `part` to the DISTINCT
        .values_list("campaign_id", flat=True)
        .distinct()
    )


def campaign_poll(*, campaign_id: int, client=None) -> bool:
    """Fetch each unsettled batch of the campaign from ElevenLabs and bring our records in step.

    One poll of a campaign at a time: beat queues one every POLL_ACTIVE_EVERY seconds, and a
    campaign of 100 batches of 10,000 takes longer than that, so a poll first takes the
    campaign's lease and one that finds it held does nothing. Batches are read least recently
    polled first, and none is started after POLL_BUDGET_SECONDS: the next poll takes the rest.

    A batch that cannot be read is counted and skipped: it never stops the others. One
    that ElevenLabs answers 404 for on BATCH_LOST_AFTER_POLLS polls in a row is no longer
    followed, with the reason kept on the batch. Returns whether this call polled.
    """
    from campaigns import inbox, outbound  # both apply outcomes through this module

    budget = settings.POLL_BUDGET_SECONDS
    started = time.monotonic()
    now = timezone.now()
    # Twice the budget: room for the batch started last. A poll cut off from the database cannot
    # give the lease back, and the next one waits this long at most.
    lease = now + dt.timedelta(seconds=2 * budget)
    free = Q(poll_lease_until__isnull=True) | Q(poll_lease_until__lte=now)
    if not Campaign.objects.filter(free, pk=campaign_id).update(poll_lease_until=lease):
        logger.debug("Campaign %s is being polled by another worker", campaign_id)
        return False
    try:
        client = client or elevenlabs.client_from_settings()
        batches = CampaignBatch.objects.filter(BATCH_SENT, campaign_id=campaign_id, settled_at__isnull=True).order_by(
            F("polled_at").asc(nulls_first=True), "part"
        )
        learned = []
        for index, batch in enumerate(batches):
            if index and time.monotonic() - started >= budget:
                logger.info(
                    "Campaign %s: poll budget spent after %s batches; the next poll goes on", campaign_id, index
                )
                break
            upstream_id = batch.elevenlabs_campaign_id or batch.elevenlabs_batch_call_id
            with log_context(campaign_id=campaign_id, batch_id=batch.pk, elevenlabs_batch_id=upstream_id):
                try:
                    if batch.elevenlabs_campaign_id:
                        learned += outbound.batch_poll(batch=batch, client=client)
                        continue
                    remote = client.get_batch(batch.elevenlabs_batch_call_id)
                except elevenlabs.ElevenLabsError as exc:
                    _poll_failed(batch=batch, exc=exc)
                    continue
                learned += batch_apply(batch=batch, remote=remote)
        campaign_refresh(campaign_id=campaign_id)
        if learned:
            # Events that arrived before we knew whose call they were can be applied now.
            inbox.events_apply_pending(conversation_ids=learned)
    finally:
        Campaign.objects.filter(pk=campaign_id, poll_lease_until=lease).update(poll_lease_until=None)
    return True


def _poll_failed(*, batch: CampaignBatch, exc: "elevenlabs.ElevenLabsError") -> None:
    failures = batch.poll_failures + 1
    changes = {"poll_failures": failures, "last_error": str(exc)[:2000]}
    if isinstance(exc, elevenlabs.ElevenLabsNotFound) and failures >= settings.BATCH_LOST_AFTER_POLLS:
        changes["settled_at"] = timezone.now()
        changes["last_error"] = (
            f"ElevenLabs answered 404 for this batch on {failures} polls in a row; it is no longer followed."
        )
        logger.error(
            "Campaign %s: %s is gone at ElevenLabs",
            batch.campaign_id,
            batch.elevenlabs_batch_call_id or batch.elevenlabs_campaign_id,
        )
    else:
        logger.warning(
            "Campaign %s: poll of %s failed: %s",
            batch.campaign_id,
            batch.elevenlabs_batch_call_id or batch.elevenlabs_campaign_id,
            exc,
        )
    CampaignBatch.objects.filter(pk=batch.pk).update(**changes)


def batch_apply(*, batch: CampaignBatch, remote) -> list[str]:
    """Bring the batch's recipients and counters in step with ElevenLabs' report of it.

    Returns the conversation ids this report taught us.
    """
    recipients = batch_recipients(batch=batch)
    if batch.superseded_at is not None:
        # A resume handed its never-dialled recipients to a new part: this one no longer speaks for them.
        recipients = recipients.exclude(retried_at__gte=batch.superseded_at)
    current = list(recipients.values_list("phone_number", "status", "conversation_id", "attempt", "retried_at"))
    earlier = frozenset()
    if any(attempt > 1 for *_, attempt, _ in current):
        earlier = frozenset(
            Call.objects.filter(recipient__in=recipients, attempt__lt=F("recipient__attempt")).values_list(
                "conversation_id", flat=True
            )
        )
    learned = recipients_apply(
        campaign_id=batch.campaign_id,
        current=current,
        reports=[(r.phone_number, r.status, r.conversation_id, r.updated_at_unix) for r in remote.recipients],
        ignore_conversations=earlier,
    )
    now = timezone.now()
    changes = {
        "status": remote.status[:32],
        "calls_dispatched": remote.total_calls_dispatched,
        "calls_finished": remote.total_calls_finished,
        "retry_count": remote.retry_count,
        "polled_at": now,
        "poll_failures": 0,
    }
    if _settled(remote, now=now):
        changes["settled_at"] = now
    CampaignBatch.objects.filter(pk=batch.pk).update(**changes)
    return learned


def _settled(remote, *, now: dt.datetime) -> bool:
    """ElevenLabs reports the batch ended and every call in it finished (or silent for hours)."""
    if remote.status not in TERMINAL_BATCH:
        return False
    if all(recipient.status in TERMINAL_RECIPIENT_STATUSES for recipient in remote.recipients):
        return True
    # No call lasts this long: a recipient ElevenLabs left open after its batch ended is final.
    quiet_since = remote.last_updated_at_unix
    return quiet_since is not None and now.timestamp() - quiet_since > settings.BATCH_FOLLOW_AFTER_END_SECONDS


def outcome_counts(*, campaign_id: int) -> dict[str, int]:
    """Recipients per call status, every status present (zeros included). Read on every API
    answer about a campaign: written out and prepared (campaigns.sqlrows); COUNT(*), which the
    (campaign_id, status) index answers alone."""
    status, campaign = (sqlrows.column(Recipient, name, "r") for name in ("status", "campaign"))
    sql = f"SELECT {status}, COUNT(*) FROM {sqlrows.table(Recipient)} r WHERE {campaign} = %s GROUP BY {status}"
    counts = dict(sqlrows.fetch(sql, [campaign_id], (Recipient._meta.get_field("status"), None)))
    return {status: counts.get(status, 0) for status in R.values}


# --- Outcomes in words ---------------------------------------------------------------------

# Where each recipient stands, in the words people use: still in the pipeline, or how its latest
# call finished. Derived from what polls and webhooks store: the status, ElevenLabs' call_result
# and failure_reason, the agent's call_successful verdict, and the attempt.
PIPELINE_OUTCOMES = {
    "pending": "Not called yet",
    "queued": "Queued",
    "waiting_retry": "Waiting for a retry",
    "ringing": "Ringing",
    "on_call": "On the call",
}
FINISHED_OUTCOMES = {
    "answered_successful": "Answered, successful",
    "answered_unsuccessful": "Answered, not successful",
    # Answered, without the agent's verdict: "unknown", or the post-call webhook not in yet.
    "answered": "Answered, not evaluated",
    "voicemail": "Voicemail",
    "busy": "Busy",
    "no_answer": "No answer",
    "failed": "Failed",
    "cancelled": "Cancelled",
}
OUTCOME_LABELS = {**PIPELINE_OUTCOMES, **FINISHED_OUTCOMES}
ANSWERED_OUTCOMES = ("answered_successful", "answered_unsuccessful", "answered")
# Calls placed that ended: what an answer rate is out of (a cancelled call was never placed).
PLACED_OUTCOMES = (*ANSWERED_OUTCOMES, "voicemail", "busy", "no_answer", "failed")

_BUSY = Q(failure_reason="busy") | Q(call_result="busy")
_NO_ANSWER = Q(failure_reason="no-answer") | Q(call_result="no_answer")
# Back in the queue after a call: a retry (batch calling), or the next call of a lead (outbound).
_AFTER_A_CALL = Q(attempt__gt=1) | ~Q(conversation_id="")


def outcome_of(*, status: str, call_result: str, call_successful: str, failure_reason: str,
               attempt: int, conversation_id: str) -> str:  # fmt: skip
    """The key of OUTCOME_LABELS for one recipient; `outcome_case()` is the same rule in SQL."""
    if status == R.CANCELLED:
        return "cancelled"
    if status == R.VOICEMAIL:
        return "voicemail"
    if status == R.FAILED:
        if "busy" in (failure_reason, call_result):
            return "busy"
        if failure_reason == "no-answer" or call_result == "no_answer":
            return "no_answer"
        return "failed"
    if status == R.COMPLETED:
        return {"success": "answered_successful", "failure": "answered_unsuccessful"}.get(call_successful, "answered")
    if status in (R.PENDING, R.DISPATCHED) and (attempt > 1 or conversation_id):
        return "waiting_retry"
    return {R.PENDING: "pending", R.DISPATCHED: "queued", R.INITIATED: "ringing"}.get(status, "on_call")


def outcome_case() -> Case:
    """`outcome_of` as a database expression, for counting recipients by outcome in one query."""
    return Case(
        When(status=R.CANCELLED, then=Value("cancelled")),
        When(status=R.VOICEMAIL, then=Value("voicemail")),
        When(Q(status=R.FAILED) & _BUSY, then=Value("busy")),
        When(Q(status=R.FAILED) & _NO_ANSWER, then=Value("no_answer")),
        When(status=R.FAILED, then=Value("failed")),
        When(status=R.COMPLETED, call_successful="success", then=Value("answered_successful")),
        When(status=R.COMPLETED, call_successful="failure", then=Value("answered_unsuccessful")),
        When(status=R.COMPLETED, then=Value("answered")),
        When(Q(status__in=(R.PENDING, R.DISPATCHED)) & _AFTER_A_CALL, then=Value("waiting_retry")),
        When(status=R.PENDING, then=Value("pending")),
        When(status=R.DISPATCHED, then=Value("queued")),
        When(status=R.INITIATED, then=Value("ringing")),
        default=Value("on_call"),
        output_field=CharField(),
    )
