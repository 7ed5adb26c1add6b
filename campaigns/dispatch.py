"""Submitting campaigns to ElevenLabs, exactly once.

A campaign is claimed by one conditional UPDATE (only one worker can win it), split into
batches of at most ELEVENLABS_BATCH_MAX_RECIPIENTS, and each batch is claimed again before
it is submitted. Every batch carries a token in its call_name: a worker that died after
ElevenLabs accepted a batch but before its id was saved leaves a claim behind, and the
next attempt looks for that token in ElevenLabs' workspace list before anything is sent
again. Transient failures are retried later by the beat sweep, never by resending blindly.

Every batch of a campaign goes out whatever ElevenLabs answered for the ones before it
(`pending`, `in_progress`, even `completed`): a batch is claimable while its campaign is
claimed and no cancel was requested, not only while the campaign is `pending`. A cancel
request (see `campaigns.control`) closes that door for every batch at once; a batch whose
submit was already in flight is cancelled at ElevenLabs as soon as its id is known.
"""

import datetime as dt
import json
import logging
import secrets

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from campaigns import control, elevenlabs, outbound, suppressions, tracking
from campaigns.events import services as events
from campaigns.models import BATCH_UNSENT, RECIPIENT_ERASED_PREFIX, Campaign, CampaignBatch, Recipient
from campaigns.policy import RECIPIENT_ZONE, concurrency_share, policy_from_campaign
from voiceable.logs import log_context

logger = logging.getLogger(__name__)

# How far into the workspace's batch list (newest first) to look for a batch of ours.
RECONCILE_SCAN_LIMIT = 1_000
OVERRIDE_PATHS = {
    "language": ("agent", "language"),
    "first_message": ("agent", "first_message"),
    "system_prompt": ("agent", "prompt", "prompt"),
    "voice_id": ("tts", "voice_id"),
}


def _client(client):
    return client or elevenlabs.client_from_settings()


def campaign_claim(*, campaign_id: int, now: dt.datetime | None = None) -> bool:
    """Win the right to submit a campaign that is due, and split it into batches.

    One conditional UPDATE decides: whatever the number of workers, beat sweeps and
    immediate triggers racing, exactly one call returns True for a campaign.
    """
    now = now or timezone.now()
    with transaction.atomic():
        won = (
            Campaign.objects.filter(pk=campaign_id, dispatch_claimed_at__isnull=True)
            .filter(Q(status=Campaign.Status.PENDING) | Q(status=Campaign.Status.SCHEDULED, scheduled_at__lte=now))
            .update(dispatch_claimed_at=now, status=Campaign.Status.PENDING, updated_at=now)
        )
        if not won:
            return False
        campaign = Campaign.objects.get(pk=campaign_id)
        CampaignBatch.objects.bulk_create(_parts(campaign))
    logger.info("Claimed campaign %s for dispatch", campaign_id)
    return True


def _parts(campaign: Campaign) -> list[CampaignBatch]:
    """The campaign split into parts of at most ELEVENLABS_BATCH_MAX_RECIPIENTS, in recipient id order.

    Without a calling policy, every part is a batch call. With one, recipients are grouped by
    the zone their calling hours are read in (their own, or the one fixed for everyone) and each
    group's parts are ElevenLabs outbound campaigns whose windows are read in that zone.
    """
    limit = settings.ELEVENLABS_BATCH_MAX_RECIPIENTS
    recipients = Recipient.objects.filter(campaign_id=campaign.pk)
    policy = policy_from_campaign(campaign)
    if not policy.uses_outbound_campaigns:
        groups = [("", recipients.count())]
    elif policy.timezone != RECIPIENT_ZONE:
        # Retries without calling hours call at any hour: the zone only names the part's clock.
        groups = [(policy.timezone or campaign.timezone or "UTC", recipients.count())]
    else:
        groups = list(
            recipients.order_by("timezone").values_list("timezone").annotate(n=Count("pk")).values_list("timezone", "n")
        )
    slices = [(zone, offset, min(limit, count - offset)) for zone, count in groups for offset in range(0, count, limit)]
    return [
        CampaignBatch(
            campaign_id=campaign.pk,
            part=part,
            timezone=zone,
            offset=offset,
            size=size,
            token=f"vc-{campaign.pk}-{part}-{secrets.token_hex(6)}",
            concurrency_limit=concurrency_share(campaign.max_concurrent_calls, parts=len(slices), part=part),
        )
        for part, (zone, offset, size) in enumerate(slices, start=1)
    ]


def _sendable_campaigns():
    """Campaigns whose remaining batches may still be submitted: claimed, running, no cancel asked."""
    return Campaign.objects.filter(
        status__in=(Campaign.Status.PENDING, Campaign.Status.IN_PROGRESS),
        dispatch_claimed_at__isnull=False,
        cancel_requested_at__isnull=True,
    ).values("pk")


def campaign_dispatch(*, campaign_id: int, client=None) -> None:
    """Claim the campaign if it is due and unclaimed, then submit every batch this worker can claim."""
    with log_context(campaign_id=campaign_id):
        campaign_claim(campaign_id=campaign_id)
        waiting = CampaignBatch.objects.filter(BATCH_UNSENT, campaign_id=campaign_id)
        for batch_id in waiting.values_list("pk", flat=True):
            with log_context(batch_id=batch_id):
                batch_submit(batch_id=batch_id, client=client)


def batch_submit(*, batch_id: int, client=None) -> None:
    """Submit one batch, if this worker can claim it. Safe to call any number of times."""
    now = timezone.now()
    # The batch's own columns are in the UPDATE's WHERE, so PostgreSQL re-checks them on a
    # row a concurrent claim or cancel just changed; a join would turn them into a
    # subquery read from the statement's snapshot, and two workers could both win.
    claimed = (
        CampaignBatch.objects.filter(
            BATCH_UNSENT,
            pk=batch_id,
            submit_started_at__isnull=True,
            cancel_confirmed_at__isnull=True,
            campaign_id__in=_sendable_campaigns(),
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(submit_started_at=now, submit_attempts=F("submit_attempts") + 1)
    )
    if not claimed:
        return
    batch = CampaignBatch.objects.select_related("campaign__agent", "campaign__phone_number").get(pk=batch_id)
    client = _client(client)
    if batch.timezone:
        _outbound_submit(batch, client=client, now=now)
        return

    if batch.submit_attempts > 1:
        # An earlier attempt may have reached ElevenLabs: look before sending again.
        try:
            remote = batch_find_remote(batch=batch, client=client)
        except elevenlabs.ElevenLabsError as exc:
            _attempt_failed(batch, f"Could not check ElevenLabs for an earlier submission: {exc}", now=now)
            return
        if remote is not None:
            _batch_submitted(batch, remote, client=client)
            return

    payload = batch_payload(batch=batch)
    if payload["recipients"] == b"[]":
        _batch_skipped(batch)
        return
    try:
        remote = client.submit_batch(**payload)
    except elevenlabs.ElevenLabsError as exc:
        _submit_failed(batch, exc, client=client, now=now)
        return
    _batch_submitted(batch, remote, client=client)


def batch_payload(*, batch: CampaignBatch) -> dict:
    """The submit body for one batch; `recipients` comes pre-encoded as a JSON array (bytes)."""
    campaign = batch.campaign
    payload = {
        "call_name": f"{campaign.name} [{batch.token}]",
        "agent_id": campaign.agent.elevenlabs_agent_id,
        "agent_phone_number_id": campaign.phone_number.elevenlabs_phone_number_id,
        "recipients": _recipients_json(batch),
    }
    if batch.concurrency_limit is not None:
        payload["target_concurrency_limit"] = batch.concurrency_limit
    # No scheduled_time_unix: campaigns are held here and claimed only once due, so their
    # instant is already past, and ElevenLabs is never told a time in the past.
    return payload


def _recipients_json(batch: CampaignBatch) -> bytes:
    """The batch's recipients as ElevenLabs' JSON, built from the stored JSON text.

    The variables are already JSON in the database: splicing that text in, rather than
    decoding and re-encoding 10,000 objects, keeps a submit close to the cost of its upload.
    """
    meta = Recipient._meta
    if batch.recipient_ids is not None:
        rows = list(
            Recipient.objects.filter(campaign_id=batch.campaign_id, pk__in=batch.recipient_ids)
            .order_by("pk")
            .values_list("pk", "phone_number", "variables", "overrides")
        )
        # The ORM decodes JSON columns; the splice below wants their text.
        rows = [(pk, phone, json.dumps(variables), json.dumps(overrides)) for pk, phone, variables, overrides in rows]
        return _recipients_encode(_unsuppressed(batch, rows))
    zone = tracking.batch_zone_filter(batch=batch).get("timezone")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, phone_number, variables, overrides FROM {meta.db_table} "
            f"WHERE campaign_id = %s {'AND timezone = %s ' if zone else ''}ORDER BY id LIMIT %s OFFSET %s",
            [batch.campaign_id, *([zone] if zone else []), batch.size, batch.offset],
        )
        rows = cursor.fetchall()
    return _recipients_encode(_unsuppressed(batch, rows))


def _recipients_encode(rows: list[tuple]) -> bytes:
    items = []
    for pk, phone_number, variables, overrides in rows:
        client_data = []
        if variables not in ("{}", None):
            client_data.append(f'"dynamic_variables":{variables}')
        if overrides not in ("{}", None):
            config = _override_config(json.loads(overrides))
            client_data.append(f'"conversation_config_override":{json.dumps(config)}')
        extra = f',"conversation_initiation_client_data":{{{",".join(client_data)}}}' if client_data else ""
        # Ids are integers and numbers are E.164 (digits and "+"): nothing to escape.
        items.append(f'{{"id":"{pk}","phone_number":"{phone_number}"{extra}}}')
    return f"[{','.join(items)}]".encode()


def _unsuppressed(batch: CampaignBatch, rows: list[tuple]) -> list[tuple]:
    """The rows whose number is not on the account's do-not-call list now; the others are marked
    cancelled (disposition `suppressed`) and never sent: the list may have grown since create.
    An erased recipient (campaigns.lifecycle) has no number left to send: it is left out too."""
    rows = [row for row in rows if not row[1].startswith(RECIPIENT_ERASED_PREFIX)]
    listed = suppressions.suppressed_numbers(user=batch.campaign.user, numbers=[row[1] for row in rows])
    if not listed:
        return rows
    Recipient.objects.filter(
        campaign_id=batch.campaign_id, phone_number__in=listed, status=Recipient.Status.PENDING
    ).update(status=Recipient.Status.CANCELLED, disposition="suppressed", status_updated_at=timezone.now())
    logger.info(
        "Campaign %s part %s: %s numbers left out, on the do-not-call list", batch.campaign_id, batch.part, len(listed)
    )
    return [row for row in rows if row[1] not in listed]


def _override_config(overrides: dict) -> dict:
    """language/first_message/system_prompt/voice_id as ElevenLabs' conversation_config_override."""
    config: dict = {}
    for column, value in overrides.items():
        *parents, leaf = OVERRIDE_PATHS[column]
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return config


def batch_find_remote(*, batch: CampaignBatch, client) -> "elevenlabs.BatchCall | None":
    """Our batch in ElevenLabs' workspace list, recognised by the token in its name."""
    marker = f"[{batch.token}]"
    agent_id = batch.campaign.agent.elevenlabs_agent_id
    for seen, remote in enumerate(client.iter_batches(agent_id=agent_id)):
        if remote.name.endswith(marker):
            return remote
        if seen >= RECONCILE_SCAN_LIMIT:
            break
    return None


def _batch_submitted(batch: CampaignBatch, remote, *, client) -> None:
    now = timezone.now()
    with transaction.atomic():
        saved = CampaignBatch.objects.filter(BATCH_UNSENT, pk=batch.pk).update(
            elevenlabs_batch_call_id=remote.id,
            status=remote.status,
            submitted_at=now,
            submit_started_at=None,
            next_attempt_at=None,
            last_error="",
            calls_dispatched=remote.total_calls_dispatched,
            calls_finished=remote.total_calls_finished,
        )
        if saved and batch.part == 1:
            Campaign.objects.filter(pk=batch.campaign_id).update(elevenlabs_batch_call_id=remote.id, updated_at=now)
    if not saved:
        return
    logger.info("Campaign %s part %s submitted as %s", batch.campaign_id, batch.part, remote.id)
    # Read only after the id is committed: a cancel that committed its request before this
    # read is seen here, and one that commits after it sees this batch's id. Either way
    # somebody cancels the batch at ElevenLabs.
    if Campaign.objects.filter(pk=batch.campaign_id, cancel_requested_at__isnull=False).exists():
        control.campaign_cancel_push(campaign_id=batch.campaign_id, client=client)
        return
    # The same for a pause: the batch is held (cancelled, its unreached people kept for the resume).
    control.campaign_pause_push(campaign_id=batch.campaign_id, client=client)
    tracking.campaign_refresh(campaign_id=batch.campaign_id)


def _outbound_submit(batch: CampaignBatch, *, client, now) -> None:
    """Submit one part of a policy campaign as an ElevenLabs outbound campaign.

    Its token is the idempotency key: after a timeout, a 5xx or a worker that died, sending it
    again answers the campaign ElevenLabs already made, so no lookup is needed first.
    """
    recipients = json.loads(_recipients_json(batch))
    if not recipients:
        _batch_skipped(batch)
        return
    try:
        submission = client.submit_outbound_campaign(**outbound.submit_kwargs(batch=batch, recipients=recipients))
    except elevenlabs.ElevenLabsError as exc:
        if not (exc.retryable or isinstance(exc, elevenlabs.ElevenLabsBadResponse)):
            campaign_fail(campaign_id=batch.campaign_id, reason=f"ElevenLabs refused the campaign: {exc}")
            _release(batch, error=str(exc), next_attempt_at=None)
            return
        _attempt_failed(batch, str(exc), now=now, retry_after=exc.retry_after)
        return
    remote = submission.campaign
    with transaction.atomic():
        saved = CampaignBatch.objects.filter(BATCH_UNSENT, pk=batch.pk).update(
            elevenlabs_campaign_id=remote.campaign_id,
            status=remote.status[:32],
            submitted_at=timezone.now(),
            submit_started_at=None,
            next_attempt_at=None,
            last_error="",
        )
    if not saved:
        return
    logger.info(
        "Campaign %s part %s submitted as outbound campaign %s (%s, %s)",
        batch.campaign_id,
        batch.part,
        remote.campaign_id,
        batch.timezone,
        "new" if submission.created else "already there",
    )
    # As for a batch: a cancel committed before this read is seen here; one after it sees the id.
    if Campaign.objects.filter(pk=batch.campaign_id, cancel_requested_at__isnull=False).exists():
        control.campaign_cancel_push(campaign_id=batch.campaign_id, client=client)
        return
    control.campaign_pause_push(campaign_id=batch.campaign_id, client=client)
    tracking.campaign_refresh(campaign_id=batch.campaign_id)


def _batch_skipped(batch: CampaignBatch) -> None:
    """Every number of the part joined the do-not-call list since create: nothing to send."""
    now = timezone.now()
    CampaignBatch.objects.filter(BATCH_UNSENT, pk=batch.pk).update(
        status="completed",
        submit_started_at=None,
        next_attempt_at=None,
        cancel_confirmed_at=now,
        settled_at=now,
        last_error="Every number of this part is on the do-not-call list: nothing was sent.",
    )
    tracking.campaign_refresh(campaign_id=batch.campaign_id)


def _submit_failed(batch: CampaignBatch, exc: "elevenlabs.ElevenLabsError", *, client, now) -> None:
    if not (exc.retryable or isinstance(exc, elevenlabs.ElevenLabsBadResponse)):
        # ElevenLabs said no (bad key, invalid payload, unknown agent): sending again won't help.
        campaign_fail(campaign_id=batch.campaign_id, reason=f"ElevenLabs refused the campaign: {exc}")
        _release(batch, error=str(exc), next_attempt_at=None)
        return
    # The request may have created the batch anyway (timeout, 5xx): look before retrying.
    try:
        remote = batch_find_remote(batch=batch, client=client)
    except elevenlabs.ElevenLabsError:
        logger.warning(
            "Campaign %s part %s: submit failed (%s) and the check failed too", batch.campaign_id, batch.part, exc
        )
        return  # keep the claim: the stale-claim sweep reconciles before any resubmission
    if remote is not None:
        _batch_submitted(batch, remote, client=client)
        return
    _attempt_failed(batch, str(exc), now=now, retry_after=exc.retry_after)


def _attempt_failed(batch: CampaignBatch, error: str, *, now, retry_after: float | None = None) -> None:
    attempts = batch.submit_attempts
    if attempts >= settings.DISPATCH_MAX_ATTEMPTS:
        campaign_fail(
            campaign_id=batch.campaign_id,
            reason=f"ElevenLabs could not take the campaign after {attempts} attempts: {error}",
        )
        _release(batch, error=error, next_attempt_at=None)
        return
    wait = dt.timedelta(seconds=max(min(300, 5 * 2 ** (attempts - 1)), min(retry_after or 0, 3600)))
    logger.warning(
        "Campaign %s part %s: attempt %s failed (%s); next in %s", batch.campaign_id, batch.part, attempts, error, wait
    )
    _release(batch, error=error, next_attempt_at=now + wait)


def _release(batch: CampaignBatch, *, error: str, next_attempt_at) -> None:
    CampaignBatch.objects.filter(BATCH_UNSENT, pk=batch.pk).update(
        submit_started_at=None, last_error=error[:2000], next_attempt_at=next_attempt_at
    )


def campaign_fail(*, campaign_id: int, reason: str) -> None:
    """Mark a campaign failed with a reason the API shows, unless it already ended."""
    if Campaign.objects.filter(pk=campaign_id, status__in=tracking.ACTIVE_CAMPAIGN_STATUSES).update(
        status=Campaign.Status.FAILED, error=reason[:2000], updated_at=timezone.now()
    ):
        events.campaign_status_changed_by_id(campaign_id=campaign_id)
    logger.warning("Campaign %s failed: %s", campaign_id, reason)


def batch_recover(*, batch_id: int, client=None) -> None:
    """Settle a batch whose submitting worker vanished: adopt ElevenLabs' batch or free the claim."""
    stale_before = timezone.now() - dt.timedelta(seconds=settings.DISPATCH_STALE_AFTER_SECONDS)
    batch = (
        CampaignBatch.objects.select_related("campaign__agent")
        .filter(BATCH_UNSENT, pk=batch_id, submit_started_at__lt=stale_before)
        .first()
    )
    if batch is None:
        return
    if batch.timezone:
        # An outbound campaign is sent again with the same idempotency key: ElevenLabs answers
        # the campaign the vanished worker's submit made, if it made one.
        _release(batch, error="The submitting worker stopped; sent again.", next_attempt_at=timezone.now())
        return
    # Take over the stale claim; a concurrent recoverer loses this UPDATE.
    if not CampaignBatch.objects.filter(pk=batch.pk, submit_started_at=batch.submit_started_at).update(
        submit_started_at=timezone.now()
    ):
        return
    client = _client(client)
    try:
        remote = batch_find_remote(batch=batch, client=client)
    except elevenlabs.ElevenLabsError as exc:
        logger.warning("Campaign %s part %s: reconciliation failed: %s", batch.campaign_id, batch.part, exc)
        return  # still claimed: tried again once it is stale again
    if remote is not None:
        _batch_submitted(batch, remote, client=client)
    else:
        _release(
            batch,
            error="The submitting worker stopped before ElevenLabs accepted the batch.",
            next_attempt_at=timezone.now(),
        )


def campaigns_due(*, now: dt.datetime | None = None) -> list[int]:
    """Campaigns a dispatch should be queued for now (the beat sweep's work list)."""
    now = now or timezone.now()
    lost_after = now - dt.timedelta(seconds=settings.DISPATCH_LOST_AFTER_SECONDS)
    due = Campaign.objects.filter(
        # scheduled and due
        Q(status=Campaign.Status.SCHEDULED, scheduled_at__lte=now, dispatch_claimed_at__isnull=True)
        # immediate, but its on-commit message never arrived (broker down at the time)
        | Q(status=Campaign.Status.PENDING, dispatch_claimed_at__isnull=True, created_at__lte=lost_after)
        # claimed, with a batch waiting for its next attempt, or never tried (the task that
        # claimed it stopped early)
        | Q(
            Q(batches__next_attempt_at__lte=now)
            | Q(batches__next_attempt_at__isnull=True, dispatch_claimed_at__lte=lost_after),
            status__in=(Campaign.Status.PENDING, Campaign.Status.IN_PROGRESS),
            cancel_requested_at__isnull=True,
            batches__elevenlabs_batch_call_id__isnull=True,
            batches__elevenlabs_campaign_id__isnull=True,
            batches__submit_started_at__isnull=True,
            batches__cancel_confirmed_at__isnull=True,
        )
    )
    return list(due.order_by().values_list("pk", flat=True).distinct())


def batches_stale(*, now: dt.datetime | None = None) -> list[int]:
    now = now or timezone.now()
    stale_before = now - dt.timedelta(seconds=settings.DISPATCH_STALE_AFTER_SECONDS)
    return list(
        CampaignBatch.objects.filter(BATCH_UNSENT, submit_started_at__lt=stale_before).values_list("pk", flat=True)
    )
