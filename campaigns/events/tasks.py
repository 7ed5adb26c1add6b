"""Thin Celery tasks for event webhooks; each is safe to run twice (deliveries are claimed)."""

from celery import shared_task

from . import services

IDEMPOTENT = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(**IDEMPOTENT)
def delivery_send(delivery_id: int) -> None:
    services.delivery_attempt(delivery_id=delivery_id)


@shared_task(**IDEMPOTENT)
def deliveries_due() -> None:
    """Beat: queue retries whose time has come, and deliveries whose message was lost."""
    for delivery_id in services.deliveries_due():
        delivery_send.delay(delivery_id)
