"""What a user asks of a campaign that is out at ElevenLabs: cancel it, retry its failed calls.

Cancel is a promise that no further call is placed, so it is kept in two steps:

1. The request. One UPDATE marks the campaign `cancelling` and stamps `cancel_requested_at`;
   from that commit on no batch can be claimed or submitted (see `dispatch.batch_submit`).
   Batches that were never sent are cancelled here: nothing exists at ElevenLabs.
2. The confirmation. Every batch that exists at ElevenLabs is cancelled there, one by one;
   a batch counts as cancelled only once ElevenLabs confirmed it (or reports it already
   ended). A batch whose submit was in flight is cancelled by the worker that saves its id.
   What ElevenLabs refuses or cannot be reached for is retried by the beat sweep, with
   backoff, until confirmed; until then the campaign stays `cancelling` and says why.

The campaign becomes `cancelled` when nothing is left unconfirmed. Its batches are still
polled until ElevenLabs reports every call finished, so a call that was under way when the
cancel arrived is recorded with its real outcome.
"""

import datetime as dt
import logging
import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from campaigns import elevenlabs, outbound, tracking
from campaigns.errors import Conflict, UpstreamError
from campaigns.events import services as events
from campaigns.models import BATCH_SENT, BATCH_UNSENT, Campaign, CampaignBatch, Recipient
from campaigns.policy import concurrency_share

logger = logging.getLogger(__name__)

S = Campaign.Status
R = Recipient.Status
RETRYABLE_RECIPIENT_STATUSES = (R.FAILED, R.VOICEMAIL)
# Waits between attempts to cancel a batch ElevenLabs has not confirmed: growing with the time
# since the cancel was asked for, from 5 s to 5 min.
CANCEL_BACKOFF_MIN_SECONDS = 5
CANCEL_BACKOFF_MAX_SECONDS = 300


def _client(client):
    return client or elevenlabs.client_from_settings()


# --- Cancel --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CancelResult:
    campaign: Campaign
    unconfirmed_batches: int  # batches ElevenLabs has not confirmed yet (0: nothing more will be called)


def campaign_cancel(*, campaign: Campaign, client=None) -> CancelResult:
    """Accept a cancel, then cancel every batch at ElevenLabs that can be reached now.

    Raises Conflict when the campaign has already ended. ElevenLabs failing is not an
    error of the request: the cancel stands, the campaign stays `cancelling` with the
    reason in `error`, and the worker keeps trying until ElevenLabs confirms.
    """
    now = timezone.now()
    with transaction.atomic():
        accepted = Campaign.objects.filter(pk=campaign.pk, status__in=tracking.ACTIVE_CAMPAIGN_STATUSES).update(
            status=S.CANCELLING, cancel_requested_at=now, updated_at=now
        )
        if not accepted:
            campaign.refresh_from_db()
            if campaign.status != S.CANCELLING:
                raise Conflict(
                    f"The campaign is {campaign.get_status_display().lower()}; "
                    "only an active campaign can be cancelled."
                )
        if accepted:
            events.campaign_status_changed_by_id(campaign_id=campaign.pk)
        if not CampaignBatch.objects.filter(campaign_id=campaign.pk).exists():
            # Never claimed for sending: no call exists anywhere, so nobody will be called.
            Recipient.objects.filter(campaign_id=campaign.pk, status=R.PENDING).update(
                status=R.CANCELLED, status_updated_at=now
            )
    unconfirmed = campaign_cancel_push(campaign_id=campaign.pk, client=client)
    campaign.refresh_from_db()
    return CancelResult(campaign=campaign, unconfirmed_batches=unconfirmed)


def campaign_cancel_push(*, campaign_id: int, client=None, now: dt.datetime | None = None) -> int:
    """Bring a cancel-requested campaign's batches to cancelled; return how many are still unconfirmed.

    Safe to run any number of times, by any number of workers: a batch cancelled twice is
    confirmed by the second attempt's read of it.
    """
    now = now or timezone.now()
    requested_at = Campaign.objects.filter(pk=campaign_id).values_list("cancel_requested_at", flat=True).first()
    if requested_at is None:
        return 0
    _unsent_batches_cancel(campaign_id=campaign_id, now=now)
    due = CampaignBatch.objects.filter(BATCH_SENT, campaign_id=campaign_id, cancel_confirmed_at__isnull=True).exclude(
        next_attempt_at__gt=now
    )
    problems = []
    for batch in due:
        try:
            batch_cancel_remote(batch=batch, client=_client(client))
        except elevenlabs.ElevenLabsError as exc:
            problems.append(str(exc))
            waited = (now - requested_at).total_seconds()
            wait = min(CANCEL_BACKOFF_MAX_SECONDS, max(CANCEL_BACKOFF_MIN_SECONDS, waited))
            CampaignBatch.objects.filter(pk=batch.pk).update(
                last_error=f"Cancel not confirmed by ElevenLabs: {exc}"[:2000],
                next_attempt_at=now + dt.timedelta(seconds=wait),
            )
            logger.warning("Campaign %s: cancel of %s failed: %s", campaign_id, _upstream_id(batch), exc)
    unconfirmed = CampaignBatch.objects.filter(campaign_id=campaign_id, cancel_confirmed_at__isnull=True).count()
    if unconfirmed:
        total = CampaignBatch.objects.filter(campaign_id=campaign_id).count()
        reason = problems[0] if problems else "a submit to ElevenLabs is still in flight"
        error = (
            f"Cancel accepted, but ElevenLabs has not confirmed it yet for {unconfirmed} of {total} "
            f"batch{'es' if total != 1 else ''} ({reason}). It is retried automatically; calls may "
            "still be placed until it is confirmed."
        )
    else:
        error = ""
    Campaign.objects.filter(pk=campaign_id, status__in=(S.CANCELLING, S.CANCELLED)).update(
        error=error[:2000], updated_at=now
    )
    tracking.campaign_refresh(campaign_id=campaign_id)
    return unconfirmed


def _unsent_batches_cancel(*, campaign_id: int, now: dt.datetime) -> None:
    """Batches never sent and not being sent: cancelled here, with their recipients."""
    unsent = list(
        CampaignBatch.objects.filter(
            BATCH_UNSENT,
            campaign_id=campaign_id,
            submit_started_at__isnull=True,
            cancel_confirmed_at__isnull=True,
        )
    )
    for batch in unsent:
        # Conditional on the claim columns: a worker that claimed it meanwhile keeps it (and
        # cancels it at ElevenLabs once submitted).
        with transaction.atomic():
            if CampaignBatch.objects.filter(BATCH_UNSENT, pk=batch.pk, submit_started_at__isnull=True).update(
                status="cancelled", cancel_confirmed_at=now, settled_at=now, next_attempt_at=None
            ):
                tracking.batch_recipients(batch=batch).filter(status=R.PENDING).update(
                    status=R.CANCELLED, status_updated_at=now
                )


def batch_cancel_remote(*, batch: CampaignBatch, client, keep_waiting: bool = False) -> None:
    """Cancel one submitted batch at ElevenLabs and record it once ElevenLabs confirmed.

    A refusal is checked against the batch itself: a batch that has already ended (or was
    cancelled by a concurrent attempt) counts as confirmed. Raises ElevenLabsError otherwise.
    An outbound campaign is stopped: queued calls and retries are dropped, calls under way end.
    `keep_waiting` (a pause) leaves the recipients not yet called as they are, for the resume.
    """
    if batch.elevenlabs_campaign_id:
        status = outbound.batch_stop(batch=batch, client=client)
        # Recipients waiting for a retry will not get it either.
        _cancel_confirmed(batch, status=status, waiting=(R.PENDING, R.DISPATCHED))
        return
    try:
        remote = client.cancel_batch(batch.elevenlabs_batch_call_id)
    except elevenlabs.ElevenLabsError as exc:
        if exc.retryable:
            raise
        try:
            remote = client.get_batch(batch.elevenlabs_batch_call_id)
        except elevenlabs.ElevenLabsError:
            raise exc from None
        if remote.status not in tracking.TERMINAL_BATCH:
            raise
    _cancel_confirmed(
        batch,
        status=remote.status,
        waiting=() if keep_waiting else (R.PENDING,),
        calls_dispatched=remote.total_calls_dispatched,
        calls_finished=remote.total_calls_finished,
    )


def _upstream_id(batch: CampaignBatch) -> str:
    return batch.elevenlabs_batch_call_id or batch.elevenlabs_campaign_id or f"part {batch.part}"


def _cancel_confirmed(batch: CampaignBatch, *, status: str, waiting=(R.PENDING,), **counters) -> None:
    now = timezone.now()
    with transaction.atomic():
        confirmed = CampaignBatch.objects.filter(pk=batch.pk, cancel_confirmed_at__isnull=True).update(
            cancel_confirmed_at=now, status=status[:32], next_attempt_at=None, last_error="", **counters
        )
        if confirmed and waiting:
            # Calls not yet placed will not be. Calls under way are left as they are: the
            # poll records how each ended, and may replace this guess with a real outcome.
            tracking.batch_recipients(batch=batch).filter(status__in=waiting).update(
                status=R.CANCELLED, status_updated_at=now
            )
    logger.info("Campaign %s: %s cancelled at ElevenLabs", batch.campaign_id, _upstream_id(batch))


def campaigns_cancelling() -> list[int]:
    """Campaigns whose cancel is not yet confirmed for every batch (the beat sweep's work list)."""
    return list(Campaign.objects.filter(status=S.CANCELLING).values_list("pk", flat=True))


# --- Retry ---------------------------------------------------------------------------------


@dataclass
class BatchRetry:
    part: int
    elevenlabs_batch_call_id: str
    retried_calls: int = 0
    error: str | None = None


@dataclass(frozen=True)
class RetryResult:
    campaign: Campaign
    retried_calls: int
    batches: list[BatchRetry] = field(default_factory=list)

    @property
    def failed_batches(self) -> list[BatchRetry]:
        return [batch for batch in self.batches if batch.error]


def campaign_retry(*, campaign: Campaign, client=None) -> RetryResult:
    """Call the failed and unanswered recipients again, batch by batch.

    Only finished batches with something to retry are asked; one refusal does not stop
    the others, and the result says what happened to each. Raises Conflict when nothing
    can be retried, UpstreamError when ElevenLabs refused every batch.
    """
    if campaign.status not in (S.IN_PROGRESS, S.COMPLETED):
        raise Conflict(
            f"The campaign is {campaign.get_status_display().lower()}; only a campaign that is calling "
            "or completed can retry calls."
        )
    candidates = []
    for batch in campaign.batches.filter(elevenlabs_batch_call_id__isnull=False, status__in=tracking.TERMINAL_BATCH):
        retryable = tracking.batch_recipients(batch=batch).filter(status__in=RETRYABLE_RECIPIENT_STATUSES)
        if retryable.exists():
            candidates.append((batch, retryable))
    if not candidates:
        raise Conflict("There are no failed or unanswered calls to retry once the batch has finished.")

    client = _client(client)
    results = []
    for batch, retryable in candidates:
        result = BatchRetry(part=batch.part, elevenlabs_batch_call_id=batch.elevenlabs_batch_call_id)
        results.append(result)
        try:
            remote = client.retry_batch(batch.elevenlabs_batch_call_id)
        except elevenlabs.ElevenLabsError as exc:
            result.error = str(exc)
            logger.warning(
                "Campaign %s: retry of batch %s failed: %s", campaign.pk, batch.elevenlabs_batch_call_id, exc
            )
            continue
        now = timezone.now()
        with transaction.atomic():
            CampaignBatch.objects.filter(pk=batch.pk).update(
                status=remote.status[:32], retry_count=remote.retry_count, settled_at=None, poll_failures=0
            )
            # The one move back: these people are called again, in a new conversation. The
            # earlier call keeps its own record (Call); the recipient shows the new attempt.
            result.retried_calls = _recipients_retry(retryable, now=now)
    retried = sum(result.retried_calls for result in results)
    failed = [result for result in results if result.error]
    if len(failed) == len(results):
        raise UpstreamError(
            f"ElevenLabs could not retry the calls: {failed[0].error}",
            errors=[f"Batch {result.elevenlabs_batch_call_id}: {result.error}" for result in failed],
            details={"batches": [vars(result) for result in results]},
        )
    Campaign.objects.filter(pk=campaign.pk).update(status=S.IN_PROGRESS, error="", updated_at=timezone.now())
    campaign.refresh_from_db()
    return RetryResult(campaign=campaign, retried_calls=retried, batches=results)


def _recipients_retry(recipients, *, now) -> int:
    return recipients.update(
        status=R.PENDING,
        attempt=F("attempt") + 1,
        retried_at=now,
        conversation_id="",
        call_successful="",
        call_result="",
        failure_reason="",
        summary="",
        status_updated_at=now,
    )


# --- Pause and resume ----------------------------------------------------------------------
#
# A pause holds every call not yet placed; a resume calls each person who was never dialled,
# once. Parts not yet sent simply wait (nothing is submitted while paused). Parts at ElevenLabs:
# an outbound campaign is paused and resumed there, its leads kept by ElevenLabs; a batch call
# cannot be paused, so it is cancelled (calls under way finish), and the resume sends the
# people it never dialled as new parts. A resume waits until ElevenLabs confirmed the pause of
# every part (`pause_confirmed`): a part whose submit is still in flight could otherwise call
# someone the resume also sends.

PAUSABLE = (S.SCHEDULED, S.PENDING, S.IN_PROGRESS)


def campaign_pause(*, campaign: Campaign, client=None) -> Campaign:
    """Hold the campaign; raises Conflict when it is not running or waiting to run."""
    now = timezone.now()
    held = Campaign.objects.filter(pk=campaign.pk, status__in=PAUSABLE, cancel_requested_at__isnull=True).update(
        status=S.PAUSED, paused_at=now, pause_confirmed=False, updated_at=now
    )
    campaign.refresh_from_db()
    if not held:
        if campaign.status == S.PAUSED:
            return campaign  # already paused: the same answer again
        raise Conflict(
            f"The campaign is {campaign.get_status_display().lower()}; only an active campaign can be paused."
        )
    events.campaign_status_changed_by_id(campaign_id=campaign.pk)
    campaign_pause_push(campaign_id=campaign.pk, client=client)
    campaign.refresh_from_db()
    return campaign


def campaign_pause_push(*, campaign_id: int, client=None) -> bool:
    """Hold every sent part of a paused campaign at ElevenLabs; whether all of them are held now.

    Safe to repeat (the beat sweep does until it is confirmed); does nothing unless the campaign
    is paused.
    """
    campaign = Campaign.objects.filter(pk=campaign_id, status=S.PAUSED).first()
    if campaign is None:
        return False
    problems = []
    open_parts = CampaignBatch.objects.filter(BATCH_SENT, campaign_id=campaign_id, cancel_confirmed_at__isnull=True)
    for batch in open_parts.exclude(status__in=("paused", *tracking.TERMINAL_OUTBOUND)):
        try:
            if batch.elevenlabs_campaign_id:
                remote = _client(client).pause_outbound_campaign(batch.elevenlabs_campaign_id)
                CampaignBatch.objects.filter(pk=batch.pk).update(status=remote.status[:32], last_error="")
            elif batch.status not in tracking.TERMINAL_BATCH:
                batch_cancel_remote(batch=batch, client=_client(client), keep_waiting=True)
        except elevenlabs.ElevenLabsError as exc:
            problems.append(f"{_upstream_id(batch)}: {exc}")
            logger.warning("Campaign %s: pause of %s failed: %s", campaign_id, _upstream_id(batch), exc)
    in_flight = CampaignBatch.objects.filter(BATCH_UNSENT, campaign_id=campaign_id, submit_started_at__isnull=False)
    held = not problems and not in_flight.exists()
    error = (
        ""
        if held
        else (
            "Paused here, but ElevenLabs has not confirmed it for every part yet "
            f"({problems[0] if problems else 'a submit is still in flight'}). It is retried automatically; "
            "calls may still be placed until it is confirmed."
        )
    )
    Campaign.objects.filter(pk=campaign_id, status=S.PAUSED).update(pause_confirmed=held, error=error[:2000])
    return held


def campaigns_pausing() -> list[int]:
    """Paused campaigns whose pause ElevenLabs has not confirmed for every part (the beat sweep's work list)."""
    return list(Campaign.objects.filter(status=S.PAUSED, pause_confirmed=False).values_list("pk", flat=True))


def campaign_resume(*, campaign: Campaign, client=None) -> Campaign:
    """Call again everyone a pause held; raises Conflict when the campaign is not paused (or not yet held)."""
    if campaign.status != S.PAUSED:
        raise Conflict(
            f"The campaign is {campaign.get_status_display().lower()}; only a paused campaign can be resumed."
        )
    if not campaign.pause_confirmed and not campaign_pause_push(campaign_id=campaign.pk, client=client):
        campaign.refresh_from_db()
        raise Conflict(
            "The pause is not confirmed by ElevenLabs for every part yet, so the campaign cannot be resumed "
            f"without risking a second call. {campaign.error} Try again in a minute."
        )
    now = timezone.now()
    with transaction.atomic():
        status = _resumed_status(campaign)
        # One conditional UPDATE: of two resumes at once, one makes the new parts.
        if not Campaign.objects.filter(pk=campaign.pk, status=S.PAUSED, pause_confirmed=True).update(
            status=status, paused_at=None, pause_confirmed=False, error="", updated_at=now
        ):
            campaign.refresh_from_db()
            raise Conflict(f"The campaign is {campaign.get_status_display().lower()}; it was resumed already.")
        _parts_resend(campaign, now=now)
        events.campaign_status_changed_by_id(campaign_id=campaign.pk)
    failed = []
    for batch in CampaignBatch.objects.filter(
        campaign_id=campaign.pk, elevenlabs_campaign_id__isnull=False, cancel_confirmed_at__isnull=True, status="paused"
    ):
        try:
            remote = _client(client).resume_outbound_campaign(batch.elevenlabs_campaign_id)
            CampaignBatch.objects.filter(pk=batch.pk).update(status=remote.status[:32], last_error="")
        except elevenlabs.ElevenLabsError as exc:
            failed.append(f"{batch.elevenlabs_campaign_id}: {exc}")
            CampaignBatch.objects.filter(pk=batch.pk).update(last_error=f"Resume failed: {exc}"[:2000])
    if failed:
        Campaign.objects.filter(pk=campaign.pk).update(
            error=f"Resumed, but ElevenLabs did not take the resume of {failed[0]}. Resume again to retry."[:2000]
        )
    if CampaignBatch.objects.filter(BATCH_UNSENT, campaign_id=campaign.pk).exists():
        transaction.on_commit(lambda: _dispatch_queue(campaign.pk))
    campaign.refresh_from_db()
    return campaign


def _resumed_status(campaign: Campaign) -> str:
    if campaign.dispatch_claimed_at is None:
        return S.SCHEDULED if not campaign.send_immediately else S.PENDING
    return S.IN_PROGRESS


def _parts_resend(campaign: Campaign, *, now) -> None:
    """New parts for the never-dialled recipients of the batch calls the pause cancelled."""
    stopped = CampaignBatch.objects.filter(
        campaign_id=campaign.pk,
        elevenlabs_batch_call_id__isnull=False,
        cancel_confirmed_at__isnull=False,
        superseded_at__isnull=True,
    )
    waiting = []
    for batch in stopped:
        waiting += list(
            tracking.batch_recipients(batch=batch)
            .filter(status__in=(R.PENDING, R.CANCELLED), conversation_id="", disposition="")
            .values_list("pk", flat=True)
        )
    stopped.update(superseded_at=now)
    if not waiting:
        return
    waiting.sort()
    # Shield the recipients from late reports of the stopped batches (see tracking.batch_apply).
    Recipient.objects.filter(pk__in=waiting).update(status=R.PENDING, retried_at=now, status_updated_at=now)
    limit = settings.ELEVENLABS_BATCH_MAX_RECIPIENTS
    last = CampaignBatch.objects.filter(campaign_id=campaign.pk).order_by("-part").values_list("part", flat=True)[0]
    chunks = [waiting[start : start + limit] for start in range(0, len(waiting), limit)]
    CampaignBatch.objects.bulk_create(
        CampaignBatch(
            campaign_id=campaign.pk,
            part=last + number,
            offset=0,
            size=len(ids),
            recipient_ids=ids,
            token=f"vc-{campaign.pk}-{last + number}-{secrets.token_hex(6)}",
            concurrency_limit=concurrency_share(campaign.max_concurrent_calls, parts=len(chunks), part=number),
        )
        for number, ids in enumerate(chunks, start=1)
    )


def _dispatch_queue(campaign_id: int) -> None:
    from campaigns import services  # services imports this module

    services._dispatch_queue(campaign_id)
