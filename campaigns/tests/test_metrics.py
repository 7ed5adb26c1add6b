"""/metrics: its token, the fleet's state read at scrape time, and ElevenLabs errors counted."""

import re
from datetime import timedelta

import pytest
import requests
import responses
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import REGISTRY

from campaigns.elevenlabs import ElevenLabsClient, ElevenLabsNotFound, ElevenLabsServerError, ElevenLabsTransportError
from campaigns.events.models import Delivery, WebhookEndpoint
from campaigns.health.models import Heartbeat
from campaigns.models import Campaign, CampaignBatch, Recipient, WebhookEvent
from campaigns.tests.factories import CampaignFactory, RecipientFactory

TOKEN = "metrics-token-0123456789"


@pytest.fixture
def scrape(client, settings):
    settings.METRICS_TOKEN = TOKEN

    def get() -> str:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain; version=")
        return response.content.decode()

    return get


def sample(text: str, line: str) -> float:
    """The value of the sample `line` (name and labels as exposed) in the exposition text."""
    match = re.search(rf"^{re.escape(line)} (\S+)$", text, re.M)
    assert match, f"{line} not in:\n{text}"
    return float(match.group(1))


def test_without_a_token_set_there_is_no_metrics_endpoint(db, client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN, "Bearer"],
)
def test_a_missing_or_wrong_token_is_refused(db, client, settings, header):
    settings.METRICS_TOKEN = TOKEN
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = client.get("/metrics", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"voiceable_" not in response.content


def test_the_right_token_gets_the_request_metrics_and_the_services_own(db, scrape):
    scrape()  # django-prometheus counts the first scrape by the time of the second
    text = scrape()
    assert (
        'django_http_requests_total_by_view_transport_method_total{method="GET",transport="http",view="metrics"}'
        in (text)
    )
    assert "# TYPE voiceable_campaigns gauge" in text
    assert "# TYPE voiceable_elevenlabs_errors_total counter" in text
    # Every status is reported, at 0 when nothing is in it: a series never vanishes.
    for status in Campaign.Status.values:
        assert sample(text, f'voiceable_campaigns{{status="{status}"}}') == 0
    assert sample(text, "voiceable_beat_heartbeat_age_seconds") == -1


def test_the_fleets_state_is_counted(db, scrape):
    now = timezone.now()
    running = CampaignFactory.create_batch(2, status=Campaign.Status.IN_PROGRESS, name="Dr Smith's patients")
    CampaignFactory(status=Campaign.Status.COMPLETED)
    RecipientFactory.create_batch(3, campaign=running[0])
    RecipientFactory(campaign=running[0], status=Recipient.Status.COMPLETED, phone_number="+12125550199")
    # Campaign 0 was submitted 7 s after it was created, campaign 1 after 3 s; campaign 1's
    # batch is the one polled longest ago (90 s), and a settled batch is not followed at all.
    Campaign.objects.filter(pk=running[0].pk).update(created_at=now - timedelta(seconds=67))
    Campaign.objects.filter(pk=running[1].pk).update(created_at=now - timedelta(seconds=203))
    batch = {"offset": 0, "size": 1}
    CampaignBatch.objects.create(
        campaign=running[0], part=1, token="t1", elevenlabs_batch_call_id="b1", **batch,
        submitted_at=now - timedelta(seconds=60), polled_at=now - timedelta(seconds=10),
    )  # fmt: skip
    CampaignBatch.objects.create(
        campaign=running[1], part=1, token="t2", elevenlabs_batch_call_id="b2", **batch,
        submitted_at=now - timedelta(seconds=200), polled_at=now - timedelta(seconds=90),
    )  # fmt: skip
    CampaignBatch.objects.create(
        campaign=running[1], part=2, token="t3", elevenlabs_batch_call_id="b3", **batch,
        submitted_at=now - timedelta(hours=3), polled_at=now - timedelta(hours=3), settled_at=now,
    )  # fmt: skip
    for digest, status in [("a", "pending"), ("b", "pending"), ("c", "applied")]:
        WebhookEvent.objects.create(digest=digest, event_type="post_call_transcription", status=status)
    WebhookEvent.objects.filter(digest="a").update(received_at=now - timedelta(seconds=300))
    endpoint = WebhookEndpoint.objects.create(user=running[0].user, url="https://hooks.example.com/a", secret="s")
    WebhookEndpoint.objects.create(user=running[0].user, url="https://hooks.example.com/b", secret="s", disabled_at=now)
    for message_id, attempts, status in [("m1", 0, "pending"), ("m2", 2, "pending"), ("m3", 5, "failed")]:
        Delivery.objects.create(
            endpoint=endpoint, message_id=message_id, event_type="campaign.updated", body="{}",
            status=status, attempts=attempts, next_attempt_at=now,
        )  # fmt: skip
    Heartbeat.objects.create(name="beat", at=now - timedelta(seconds=20))

    text = scrape()

    assert sample(text, 'voiceable_campaigns{status="in_progress"}') == 2
    assert sample(text, 'voiceable_campaigns{status="completed"}') == 1
    assert sample(text, 'voiceable_campaigns{status="pending"}') == 0
    assert sample(text, 'voiceable_recipients{status="pending"}') == 3
    assert sample(text, 'voiceable_recipients{status="completed"}') == 1
    assert sample(text, 'voiceable_recipients{status="failed"}') == 0
    assert sample(text, 'voiceable_submit_latency_seconds{stat="count"}') == 2
    assert sample(text, 'voiceable_submit_latency_seconds{stat="mean"}') == pytest.approx(5, abs=0.5)
    assert sample(text, 'voiceable_submit_latency_seconds{stat="max"}') == pytest.approx(7, abs=0.5)
    assert sample(text, "voiceable_batches_active") == 2
    assert sample(text, "voiceable_poll_lag_seconds") == pytest.approx(90, abs=5)
    assert sample(text, "voiceable_webhook_inbox_pending") == 2
    assert sample(text, "voiceable_webhook_inbox_oldest_age_seconds") == pytest.approx(300, abs=5)
    assert sample(text, "voiceable_outbound_deliveries_failing") == 1
    assert sample(text, "voiceable_outbound_endpoints_disabled") == 1
    assert sample(text, "voiceable_beat_heartbeat_age_seconds") == pytest.approx(20, abs=5)
    # Counts only: no phone number, name or address.
    assert "+1212555" not in text and "Smith" not in text and "hooks.example.com" not in text


def _scrape_queries(scrape) -> int:
    with CaptureQueriesContext(connection) as queries:
        scrape()
    return len(queries)


def test_a_scrape_costs_the_same_queries_for_1_and_for_50_campaigns(db, scrape):
    def add_campaigns(count: int):
        for campaign in CampaignFactory.create_batch(count, status=Campaign.Status.IN_PROGRESS):
            RecipientFactory.create_batch(2, campaign=campaign)
            CampaignBatch.objects.create(
                campaign=campaign, part=1, token=f"t{campaign.pk}", elevenlabs_batch_call_id=f"b{campaign.pk}",
                offset=0, size=2, submitted_at=timezone.now(),
            )  # fmt: skip

    add_campaigns(1)
    scrape()
    one = _scrape_queries(scrape)
    add_campaigns(49)
    fifty = _scrape_queries(scrape)
    assert one == fifty == 8


def errors(kind: str) -> float:
    return REGISTRY.get_sample_value("voiceable_elevenlabs_errors_total", {"kind": kind})


@responses.activate
def test_elevenlabs_errors_are_counted_by_kind_each_attempt():
    base = "https://api.example.test"
    client = ElevenLabsClient(base_url=base, api_key="k", max_retries=1, sleep=lambda seconds: None)
    url = f"{base}/v1/convai/batch-calling/batch_1"
    before = {kind: errors(kind) for kind in ("rate_limited", "server", "client", "transport")}

    responses.get(url, status=429, json={"detail": "slow down"})
    responses.get(url, status=503, json={"detail": "down"})
    with pytest.raises(ElevenLabsServerError):
        client.get_batch("batch_1")
    responses.replace(responses.GET, url, status=404, json={"detail": "no such batch"})
    with pytest.raises(ElevenLabsNotFound):
        client.get_batch("batch_1")
    responses.replace(responses.GET, url, body=requests.ConnectionError("refused"))
    with pytest.raises(ElevenLabsTransportError):
        client.get_batch("batch_1")

    assert errors("rate_limited") == before["rate_limited"] + 1
    assert errors("server") == before["server"] + 1
    assert errors("client") == before["client"] + 1
    assert errors("transport") == before["transport"] + 2  # the first try and its retry
