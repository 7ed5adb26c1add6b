"""Thin Celery tasks: they take ids and call one service. Every task is safe to run twice."""

from celery import shared_task

from campaigns import dispatch, tracking

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
def campaigns_dispatch_due() -> None:
    """Beat: queue campaigns that are due (or whose message was lost) and settle stale submissions."""
    for campaign_id in dispatch.campaigns_due():
        campaign_dispatch.delay(campaign_id)
    for batch_id in dispatch.batches_stale():
        batch_recover.delay(batch_id)


@shared_task(**IDEMPOTENT)
def campaigns_poll_active() -> None:
    """Beat: poll every campaign with a batch still running at ElevenLabs."""
    for campaign_id in tracking.campaigns_active():
        campaign_poll.delay(campaign_id)
