from celery import shared_task

from sandbox import services


@shared_task(acks_late=True)
def sandbox_tick() -> None:
    """Beat (sandbox on): play calls forward and send the post-call webhooks that are due."""
    services.sandbox_tick()
