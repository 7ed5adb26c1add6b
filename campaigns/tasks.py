"""Thin Celery tasks: they take ids and call one service. Every task is safe to run twice."""

from celery import shared_task

from campaigns import control, dispatch, inbox, lifecycle, tracking
from campaigns.api import idempotency
from campaigns.health import checks as health
from campaigns.web import uploads

# acks_late: a task lost with its worker is delivered again; the claims make that harmless.
IDEMPOTENT = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(**IDEMPOTENT)
def campaign_dispatch(campaign_id: int) -> None:
    dispatch.campaign_dispatch(campaign_id=campaign_id)


@shared_task(**IDEMPOTENT)
def batch_recover(batch_id: int) -> None:
    dispatch.batch_recover(batch_id=batch_id)


@shared_task(**IDEMPOTENT)
def campaign_poll(campaign_id: int) -> None:
    tracking.campaign_poll(campaign_id=campaign_id)


@shared_task(**IDEMPOTENT)
def campaign_cancel_push(campaign_id: int) -> None:
    control.campaign_cancel_push(campaign_id=campaign_id)


@shared_task(**IDEMPOTENT)
def campaign_pause_push(campaign_id: int) -> None:
    control.campaign_pause_push(campaign_id=campaign_id)


@shared_task(**IDEMPOTENT)
def campaigns_dispatch_due() -> None:
    """Beat: queue due campaigns (or those whose message was lost), settle stale submits, push cancels and pauses."""
    for campaign_id in dispatch.campaigns_due():
        campaign_dispatch.delay(campaign_id)
    for batch_id in dispatch.batches_stale():
        batch_recover.delay(batch_id)
    for campaign_id in control.campaigns_cancelling():
        campaign_cancel_push.delay(campaign_id)
    for campaign_id in control.campaigns_pausing():
        campaign_pause_push.delay(campaign_id)


@shared_task(**IDEMPOTENT)
def campaigns_poll_active() -> None:
    """Beat: poll every campaign with a batch ElevenLabs has not yet reported finished."""
    for campaign_id in tracking.campaigns_active():
        campaign_poll.delay(campaign_id)


@shared_task(**IDEMPOTENT)
def webhook_events_sweep() -> None:
    """Beat: apply inbox events still waiting, and ask ElevenLabs about the calls they describe."""
    inbox.events_apply_pending()
    inbox.events_look_up()


@shared_task(**IDEMPOTENT)
def uploads_sweep() -> None:
    """Beat: delete the staff form's kept uploads whose day is over (abandoned previews, crashes)."""
    uploads.uploads_sweep()


@shared_task(**IDEMPOTENT)
def idempotency_records_sweep() -> None:
    """Beat: delete Idempotency-Key records whose 24 hours are over."""
    idempotency.records_sweep()


@shared_task(**IDEMPOTENT)
def campaign_personal_data_erase(campaign_id: int) -> None:
    lifecycle.campaign_personal_data_erase(campaign_id=campaign_id)


@shared_task(**IDEMPOTENT)
def personal_data_sweep() -> None:
    """Beat: erase the personal data of campaigns past PERSONAL_DATA_RETENTION_DAYS (off when 0)."""
    for campaign_id in lifecycle.campaigns_due_for_erasure():
        campaign_personal_data_erase.delay(campaign_id)


@shared_task
def beat_heartbeat() -> None:
    """Beat: record that beat, the broker and a worker are running (/readyz reads it)."""
    health.heartbeat_record()
