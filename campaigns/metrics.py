"""The service's own Prometheus metrics.

The state of campaigns, recipients, batches and inboxes is read from the database when
/metrics is scraped, a few aggregate queries whatever their size, so every web process
reports the same numbers. ElevenLabs errors are counted where the client raises them: a
counter lives in the process that counted, so /metrics shows those of the web process that
answers the scrape, not the workers' (README, Health and metrics).
"""

from datetime import timedelta

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily

# Imported by the ElevenLabs client, so nothing here may import models at module level.
ELEVENLABS_ERRORS = Counter(
    "voiceable_elevenlabs_errors",
    "Failed ElevenLabs requests by kind, retried attempts included (this process only).",
    ["kind"],
)
ELEVENLABS_ERROR_KINDS = ("transport", "timeout", "rate_limited", "server", "client", "bad_response", "other")
for _kind in ELEVENLABS_ERROR_KINDS:
    ELEVENLABS_ERRORS.labels(kind=_kind)  # every kind shows from the first scrape, at 0

# Campaigns whose first part was submitted this recently make the submit latency.
SUBMIT_LATENCY_WINDOW = timedelta(hours=1)


def elevenlabs_error_kind(error: Exception) -> str:
    from campaigns import elevenlabs

    if isinstance(error, elevenlabs.ElevenLabsTimeout):
        return "timeout"
    if isinstance(error, elevenlabs.ElevenLabsTransportError):
        return "transport"
    if isinstance(error, elevenlabs.ElevenLabsRateLimited):
        return "rate_limited"
    if isinstance(error, elevenlabs.ElevenLabsBadResponse):
        return "bad_response"
    status = getattr(error, "status_code", None)
    if status is not None and 500 <= status < 600:
        return "server"
    if status is not None and 400 <= status < 500:
        return "client"
    return "other"


def elevenlabs_error_counted(error: Exception) -> Exception:
    """Count the error by kind and hand it back, for `raise elevenlabs_error_counted(...)`."""
    ELEVENLABS_ERRORS.labels(kind=elevenlabs_error_kind(error)).inc()
    return error


def _by_status(name: str, documentation: str, choices, rows) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["status"])
    counts = dict.fromkeys(choices.values, 0)
    for status, count in rows:
        counts[status] = counts.get(status, 0) + count
    for status, count in counts.items():
        family.add_metric([status], count)
    return family


def _seconds(delta) -> float:
    return 0.0 if delta is None else max(delta.total_seconds(), 0.0)


class ServiceCollector:
    """Reads the fleet's state at scrape time: eight queries, however many rows there are."""

    def describe(self):
        # Registering must not query the database (it happens at start-up, before migrations).
        return []

    def collect(self):
        from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Min
        from django.db.models.functions import Coalesce
        from django.utils import timezone

        from campaigns.events.models import Delivery, WebhookEndpoint
        from campaigns.health.checks import BEAT
        from campaigns.health.models import Heartbeat
        from campaigns.models import BATCH_SENT, Campaign, CampaignBatch, Recipient, WebhookEvent

        now = timezone.now()

        rows = Campaign.objects.order_by().values_list("status").annotate(n=Count("id"))
        yield _by_status("voiceable_campaigns", "Campaigns by status.", Campaign.Status, rows)

        rows = Recipient.objects.order_by().values_list("status").annotate(n=Count("id"))
        yield _by_status("voiceable_recipients", "Recipients by status.", Recipient.Status, rows)

        # From when the campaign was due (its schedule, else its creation) to its first part's submit.
        latency = ExpressionWrapper(
            F("submitted_at") - Coalesce("campaign__scheduled_at", "campaign__created_at"),
            output_field=DurationField(),
        )
        submits = (
            CampaignBatch.objects.filter(part=1, submitted_at__gte=now - SUBMIT_LATENCY_WINDOW)
            .annotate(latency=latency)
            .aggregate(n=Count("id"), longest=Max("latency"), durations=_sum_duration("latency"))
        )
        count = submits["n"]
        family = GaugeMetricFamily(
            "voiceable_submit_latency_seconds",
            "Seconds from a campaign being due to its first part's submit, over campaigns submitted in the last hour.",
            labels=["stat"],
        )
        family.add_metric(["count"], count)
        family.add_metric(["mean"], _seconds(submits["durations"]) / count if count else 0.0)
        family.add_metric(["max"], _seconds(submits["longest"]))
        yield family

        oldest = CampaignBatch.objects.filter(BATCH_SENT, settled_at__isnull=True).aggregate(
            n=Count("id"), at=Min(Coalesce("polled_at", "submitted_at"))
        )
        yield GaugeMetricFamily(
            "voiceable_batches_active", "Submitted batches ElevenLabs has not reported finished.", value=oldest["n"]
        )
        yield GaugeMetricFamily(
            "voiceable_poll_lag_seconds",
            "Seconds since the active batch polled longest ago was last polled (or submitted); 0 when none.",
            value=_seconds(now - oldest["at"] if oldest["at"] else None),
        )

        inbox = WebhookEvent.objects.filter(status=WebhookEvent.Status.PENDING).aggregate(
            n=Count("id"), oldest=Min("received_at")
        )
        yield GaugeMetricFamily(
            "voiceable_webhook_inbox_pending", "ElevenLabs webhook events waiting to be applied.", value=inbox["n"]
        )
        yield GaugeMetricFamily(
            "voiceable_webhook_inbox_oldest_age_seconds",
            "Age of the oldest webhook event waiting to be applied; 0 when none.",
            value=_seconds(now - inbox["oldest"] if inbox["oldest"] else None),
        )

        failing = Delivery.objects.filter(status=Delivery.Status.PENDING, attempts__gt=0).count()
        yield GaugeMetricFamily(
            "voiceable_outbound_deliveries_failing",
            "Outbound webhook deliveries waiting for a retry after at least one failed attempt.",
            value=failing,
        )
        yield GaugeMetricFamily(
            "voiceable_outbound_endpoints_disabled",
            "Outbound webhook endpoints disabled after failing too long.",
            value=WebhookEndpoint.objects.filter(disabled_at__isnull=False).count(),
        )

        at = Heartbeat.objects.filter(name=BEAT).values_list("at", flat=True).first()
        yield GaugeMetricFamily(
            "voiceable_beat_heartbeat_age_seconds",
            "Seconds since beat's heartbeat task last ran; -1 when it never has.",
            value=_seconds(now - at) if at else -1.0,
        )


def _sum_duration(field: str):
    from django.db.models import DurationField, Sum

    return Sum(field, output_field=DurationField())


_registered = False


def register_collector() -> None:
    """Once per process (the app's ready() may run again in tests)."""
    global _registered
    if not _registered:
        REGISTRY.register(ServiceCollector())
        _registered = True
