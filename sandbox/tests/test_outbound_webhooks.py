"""Outbound campaigns' webhooks and injected faults."""

import pytest
import requests
from elevenlabs import ElevenLabs
from elevenlabs.types import CampaignResponse, GetConversationResponseModel

from sandbox import services

from .clients import CAMPAIGNS, CampaignClient, campaign_body
from .sdk import assert_documented
from .test_webhooks import SECRET, WEBHOOK_URL, Receiver

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def api(db, clock):
    return CampaignClient()


@pytest.fixture
def webhooks(monkeypatch, settings):
    settings.SANDBOX_WEBHOOK_URL = WEBHOOK_URL
    settings.ELEVENLABS_WEBHOOK_SECRET = SECRET
    fake = Receiver()
    monkeypatch.setattr(requests.Session, "post", lambda session, url, **kwargs: fake.post(session, url, **kwargs))
    return fake


def test_each_campaign_call_gets_its_signed_webhook_in_the_batch_shapes(api, clock, webhooks):
    campaign_id = api.submit_campaign(
        ["+14155550120", "+14155550126"],
        recipients=[
            {
                "phone_number": "+14155550120",
                "conversation_initiation_client_data": {"dynamic_variables": {"contact_ref": "c1"}},
            },
            {"phone_number": "+14155550126"},
        ],
        policy={"retry": {"retry_delay_seconds": 60}},
    )["campaign"]["campaign_id"]

    clock.advance(30)
    first = services.sandbox_tick()
    clock.advance(600)
    second = services.sandbox_tick()
    again = services.sandbox_tick()

    assert (first.webhooks_sent, second.webhooks_sent, again.webhooks_sent) == (2, 1, 0)
    for call in webhooks.calls:
        header = call["headers"]["ElevenLabs-Signature"]
        assert ElevenLabs(api_key="x").webhooks.construct_event(call["body"].decode(), header, SECRET)
    # The first tick sends the busy call's failure and the answered call's transcription (at once,
    # in no particular order); the second, the retried call's.
    *first_two, retried = webhooks.events()
    busy, answered = sorted(first_two, key=lambda event: event["type"])
    assert [event["type"] for event in (busy, answered, retried)] == [
        "call_initiation_failure",
        "post_call_transcription",
        "post_call_transcription",
    ]
    data = assert_documented(GetConversationResponseModel, answered["data"])
    assert data.metadata.batch_call.batch_call_id == campaign_id
    assert data.conversation_initiation_client_data.dynamic_variables == {"contact_ref": "c1"}
    assert busy["data"]["failure_reason"] == "busy"
    assert busy["data"]["metadata"]["type"] == "twilio"
    # The webhooks name the conversations the calls list shows.
    calls = api.calls(campaign_id)["calls"]
    assert {call["conversation_id"] for call in calls} == {
        answered["data"]["conversation_id"],
        busy["data"]["conversation_id"],
        retried["data"]["conversation_id"],
    }


def test_audio_is_sent_for_answered_campaign_calls(api, clock, webhooks, settings):
    settings.SANDBOX_WEBHOOK_AUDIO = True
    settings.SANDBOX_WEBHOOK_AUDIO_BYTES = 128
    api.submit_campaign(["+14155550120"], policy={"retry": {"max_total_calls": 1}})

    clock.advance(60)
    services.sandbox_tick()

    assert [event["type"] for event in webhooks.events()] == ["post_call_transcription", "post_call_audio"]


@pytest.mark.parametrize(
    ("rule", "method", "path"),
    [
        ("campaign_get=503:1", "get", "{id}"),
        ("campaign_progress=429:1", "get", "{id}/progress"),
        ("campaign_leads=502:1", "get", "{id}/leads"),
        ("campaign_calls=500:1", "get", "{id}/calls"),
        ("campaign_list=429:1", "get", ""),
        ("campaign_pause=503:1", "post", "{id}/pause"),
    ],
)
def test_each_campaign_endpoint_can_be_made_to_fail(api, settings, rule, method, path):
    campaign_id = api.submit_campaign()["campaign"]["campaign_id"]
    settings.SANDBOX_FAULTS = rule
    url = f"{CAMPAIGNS}/{path.format(id=campaign_id)}".rstrip("/")

    answers = [getattr(api, method)(url) for _ in range(2)]

    status = int(rule.split("=")[1].split(":")[0])
    assert [answer.status_code for answer in answers] == [status, 200]
    if status == 429:
        assert answers[0]["Retry-After"] == "1"


def test_a_faulted_submit_stores_no_campaign(api, settings):
    settings.SANDBOX_FAULTS = "campaign_submit=503:1"

    failed = api.post(f"{CAMPAIGNS}/submit", campaign_body())
    created = api.post(f"{CAMPAIGNS}/submit", campaign_body())

    assert failed.status_code == 503
    assert created.status_code == 201
    assert_documented(CampaignResponse, created.json()["campaign"])
    assert api.campaign(created.json()["campaign"]["campaign_id"])["counts"]["leads"] == 1
