from django.conf import settings
from django.db import models
from django.db.models import Q


class WebhookEndpoint(models.Model):
    """A URL a user's program wants events at, with the secret its deliveries are signed with."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    # Event types sent here; empty means every event.
    events = models.JSONField(default=list, blank=True)
    # Kept as written: signing needs it; it is shown once, when the endpoint is added.
    secret = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    # First failure since the last success; cleared by a success.
    failing_since = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return self.url

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events


class Delivery(models.Model):
    """One event for one endpoint: stored with the change it reports (outbox), sent until it lands."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Delivered"
        FAILED = "failed", "Gave up"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    # The webhook-id header: one per event, the same on every retry so receivers can deduplicate.
    message_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=64)
    # The exact body signed and sent, so every retry sends the same bytes.
    body = models.TextField()
    # Deliveries of one endpoint sharing a key are sent one after the other, oldest first.
    ordering_key = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # A worker sending it holds it until then; a worker that died lets it go when it passes.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "message_id"], name="events_delivery_one_per_message"),
        ]
        indexes = [
            models.Index(
                fields=["status", "next_attempt_at"],
                name="events_delivery_due",
                condition=Q(status="pending"),
            ),
            models.Index(fields=["endpoint", "ordering_key", "id"], name="events_delivery_order"),
        ]

    def __str__(self):
        return f"{self.event_type} {self.message_id} → {self.endpoint_id}"
