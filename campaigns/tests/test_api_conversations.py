"""One recipient with its calls, and one call's conversation: /api/v1/campaigns/{id}/recipients/{id},
/api/v1/conversations/{conversation_id}."""

import datetime as dt

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from .conftest import BASE
from .factories import AgentFactory, CallFactory, CampaignFactory, RecipientFactory
from .test_api_create_campaign import assert_error

pytestmark = pytest.mark.django_db

STARTED = dt.datetime(2025, 3, 4, 15, 30, tzinfo=dt.UTC)
# What inbox.py keeps of each turn of a post-call webhook.
STORED_TRANSCRIPT = [
    {"role": "agent", "message": "Hi, this is Dana from Acme. Is now a good time?", "time_in_call_secs": 0},
    {"role": "user", "message": "Sure, go ahead.", "time_in_call_secs": 4},
]


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


@pytest.fixture(autouse=True)
def elevenlabs_settings(settings):
    # The view builds its client from settings: point it at the played ElevenLabs.
    settings.ELEVENLABS_BASE_URL = BASE
    settings.ELEVENLABS_API_KEY = "k"
    return settings


@pytest.fixture
def campaign(user, agent):
    return CampaignFactory(user=user, agent=agent)


def answered_call(recipient, **fields):
    """A call whose post-call webhook was recorded."""
    values = {
        "attempt": 1,
        "status": "completed",
        "call_result": "answered",
        "call_successful": "success",
        "summary": "The customer confirmed Tuesday's appointment.",
        "transcript": STORED_TRANSCRIPT,
        "duration_secs": 42,
        "started_at": STARTED,
    }
    values.update(fields)
    return CallFactory(recipient=recipient, **values)


def remote_conversation(conversation_id, **changes):
    """GET /v1/convai/conversations/{id} as ElevenLabs answers it (GetConversationResponseModel)."""
    body = {
        "agent_id": "agent_abc123",
        "agent_name": "Reminder agent",
        "status": "done",
        "user_id": None,
        "metadata": {
            "start_time_unix_secs": int(STARTED.timestamp()),
            "accepted_time_unix_secs": int(STARTED.timestamp()),
            "call_duration_secs": 37,
            "cost": 310,
            "termination_reason": "Call ended by remote party",
            "main_language": "en",
            "phone_call": {
                "direction": "outbound",
                "phone_number_id": "phnum_0001",
                "agent_number": "+14155550100",
                "external_number": "+12125550100",
                "type": "twilio",
                "stream_sid": "MZ1",
                "call_sid": "CA1",
                "call_result": "answered",
            },
            "batch_call": {"batch_call_id": "btcal_1", "batch_call_recipient_id": "rcpt_1"},
        },
        "analysis": {
            "evaluation_criteria_results": {},
            "data_collection_results": {},
            "call_successful": "success",
            "transcript_summary": "Confirmed the appointment.",
            "call_summary_title": "Appointment confirmed",
        },
        "conversation_initiation_client_data": {"dynamic_variables": {"name": "Ada"}},
        "conversation_id": conversation_id,
        "has_audio": True,
        "has_user_audio": True,
        "has_response_audio": True,
        "has_auxiliary_audio": False,
        "transcript": [
            {
                "role": "agent",
                "message": "Hello Ada, calling about your appointment.",
                "time_in_call_secs": 0,
                "tool_calls": [],
                "tool_results": [],
                "interrupted": False,
            },
            {"role": "agent", "message": None, "time_in_call_secs": 9, "tool_calls": [{"tool_name": "end_call"}]},
            {"role": "user", "message": "Yes, Tuesday works.", "time_in_call_secs": 6},
        ],
    }
    body.update(changes)
    return body


def conversation_url(conversation_id):
    return f"{BASE}/v1/convai/conversations/{conversation_id}"


# --- One recipient with its calls -----------------------------------------------------------------


def test_a_recipient_shows_its_outcome_and_every_call(api, campaign):
    recipient = RecipientFactory(
        campaign=campaign,
        phone_number="+12125550100",
        status="completed",
        conversation_id="conv_second",
        call_successful="success",
        summary="The customer confirmed Tuesday's appointment.",
        attempt=2,
        variables={"name": "Ada"},
    )
    answered_call(recipient, attempt=2, conversation_id="conv_second")
    CallFactory(
        recipient=recipient,
        attempt=1,
        conversation_id="conv_first",
        status="failed",
        call_result="busy",
        failure_reason="busy",
    )

    response = api.get(f"/api/v1/campaigns/{campaign.pk}/recipients/{recipient.pk}")

    assert response.status_code == 200
    data = response.json()["data"]
    listed = api.get(f"/api/v1/campaigns/{campaign.pk}/recipients").json()["data"][0]
    assert {key: value for key, value in data.items() if key != "calls"} == listed
    assert data["status"] == "completed" and data["variables"] == {"name": "Ada"}
    assert [call["conversation_id"] for call in data["calls"]] == ["conv_first", "conv_second"]
    assert data["calls"][0] == {
        "attempt": 1,
        "conversation_id": "conv_first",
        "status": "failed",
        "call_result": "busy",
        "call_successful": "",
        "failure_reason": "busy",
        "summary": "",
        "duration_secs": None,
        "started_at": None,
        "transcript": [],
    }
    assert data["calls"][1] == {
        "attempt": 2,
        "conversation_id": "conv_second",
        "status": "completed",
        "call_result": "answered",
        "call_successful": "success",
        "failure_reason": "",
        "summary": "The customer confirmed Tuesday's appointment.",
        "duration_secs": 42,
        "started_at": "2025-03-04T15:30:00Z",
        "transcript": STORED_TRANSCRIPT,
    }


def test_a_recipient_not_called_yet_has_no_calls(api, campaign):
    recipient = RecipientFactory(campaign=campaign)
    data = api.get(f"/api/v1/campaigns/{campaign.pk}/recipients/{recipient.pk}").json()["data"]
    assert data["status"] == "pending" and data["calls"] == []


def test_another_users_recipient_is_answered_like_a_missing_one(api, campaign, other_user):
    theirs = RecipientFactory(campaign=CampaignFactory(user=other_user))
    of_another_campaign = RecipientFactory(campaign=CampaignFactory(user=campaign.user))

    assert_error(api.get(f"/api/v1/campaigns/{theirs.campaign_id}/recipients/{theirs.pk}"), 404, "Campaign not found")
    # A campaign of mine does not reach a recipient of another campaign, mine or not.
    missing = assert_error(api.get(f"/api/v1/campaigns/{campaign.pk}/recipients/999999"), 404, "Recipient not found")
    for recipient in (theirs, of_another_campaign):
        hidden = assert_error(
            api.get(f"/api/v1/campaigns/{campaign.pk}/recipients/{recipient.pk}"), 404, "Recipient not found"
        )
        assert hidden["status"] == missing["status"]
    assert_error(api.get(f"/api/v1/campaigns/{campaign.pk}/recipients/abc"), 404, "Recipient not found")


def test_a_recipient_needs_a_key(campaign):
    recipient = RecipientFactory(campaign=campaign)
    response = APIClient().get(f"/api/v1/campaigns/{campaign.pk}/recipients/{recipient.pk}")
    assert_error(response, 401, "credentials were not provided")


# --- A conversation ---------------------------------------------------------------------------------


def test_a_recorded_conversation_is_served_from_the_call_without_asking_elevenlabs(api, campaign, http):
    answered_call(RecipientFactory(campaign=campaign), conversation_id="conv_recorded")

    response = api.get("/api/v1/conversations/conv_recorded")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == {"code": 200, "message": "Conversation as recorded"}
    assert body["data"] == {
        "conversation_id": "conv_recorded",
        "agent_id": "agent_abc123",
        "agent_name": "Reminder agent",
        "status": "done",
        "transcript": [
            {"role": "agent", "content": "Hi, this is Dana from Acme. Is now a good time?", "timestamp": 0},
            {"role": "user", "content": "Sure, go ahead.", "timestamp": 4},
        ],
        "metadata": {"duration": 42, "summary": "The customer confirmed Tuesday's appointment."},
        "created_at": "2025-03-04T15:30:00Z",
    }
    assert len(http.calls) == 0


def test_a_conversation_not_recorded_yet_is_fetched_from_elevenlabs(api, campaign, http):
    # A poll learned the conversation; its post-call webhook has not arrived.
    CallFactory(recipient=RecipientFactory(campaign=campaign), conversation_id="conv_polled", status="in_progress")
    http.get(conversation_url("conv_polled"), json=remote_conversation("conv_polled"))

    response = api.get("/api/v1/conversations/conv_polled")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == {"code": 200, "message": "Conversation from ElevenLabs"}
    assert body["data"] == {
        "conversation_id": "conv_polled",
        "agent_id": "agent_abc123",
        "agent_name": "Reminder agent",
        "status": "done",
        "transcript": [
            {"role": "agent", "content": "Hello Ada, calling about your appointment.", "timestamp": 0},
            {"role": "agent", "content": "", "timestamp": 9},
            {"role": "user", "content": "Yes, Tuesday works.", "timestamp": 6},
        ],
        "metadata": {"duration": 37, "summary": "Confirmed the appointment."},
        "created_at": "2025-03-04T15:30:00Z",
    }
    assert [call.request.headers["xi-api-key"] for call in http.calls] == ["k"]


def test_a_conversation_still_going_is_shown_as_elevenlabs_has_it(api, campaign, http):
    CallFactory(recipient=RecipientFactory(campaign=campaign), conversation_id="conv_live")
    live = remote_conversation("conv_live", status="in-progress", analysis=None)
    live["metadata"]["call_duration_secs"] = 0
    http.get(conversation_url("conv_live"), json=live)

    data = api.get("/api/v1/conversations/conv_live").json()["data"]

    assert data["status"] == "in-progress"
    assert data["metadata"] == {"duration": 0, "summary": ""}


def test_another_users_conversation_is_404_without_asking_elevenlabs(api, other_user, http):
    theirs = CampaignFactory(user=other_user, agent=AgentFactory(user=other_user))
    CallFactory(recipient=RecipientFactory(campaign=theirs), conversation_id="conv_theirs")
    answered_call(RecipientFactory(campaign=theirs), conversation_id="conv_theirs_recorded")

    missing = assert_error(api.get("/api/v1/conversations/conv_unknown"), 404, "Conversation not found")
    for conversation_id in ("conv_theirs", "conv_theirs_recorded"):
        hidden = assert_error(api.get(f"/api/v1/conversations/{conversation_id}"), 404, "Conversation not found")
        assert hidden["status"] == missing["status"]
    assert len(http.calls) == 0


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        ({"status": 401, "json": {"detail": {"status": "invalid_api_key", "message": "Bad key"}}}, "Bad key"),
        ({"status": 200, "body": "<html>maintenance</html>"}, "unexpected body"),
        ({"status": 200, "json": {"status": "done"}}, "no 'conversation_id'"),
    ],
)
def test_elevenlabs_failing_is_502_in_the_envelope(api, campaign, http, answer, fragment):
    CallFactory(recipient=RecipientFactory(campaign=campaign), conversation_id="conv_polled")
    http.get(conversation_url("conv_polled"), **answer)

    body = assert_error(api.get("/api/v1/conversations/conv_polled"), 502, "conv_polled", fragment)
    assert body["status"] == {"code": 502, "message": "Bad gateway"}


def test_a_conversation_elevenlabs_no_longer_has_is_404(api, campaign, http):
    CallFactory(recipient=RecipientFactory(campaign=campaign), conversation_id="conv_deleted")
    http.get(conversation_url("conv_deleted"), status=404, json={"detail": "Conversation not found"})

    assert_error(api.get("/api/v1/conversations/conv_deleted"), 404, "ElevenLabs has no conversation 'conv_deleted'")


def test_a_conversation_needs_a_key():
    assert_error(APIClient().get("/api/v1/conversations/conv_x"), 401, "credentials were not provided")


def test_the_openapi_document_describes_both_operations_and_their_errors():
    paths = APIClient().get("/api/v1/openapi.json").json()["paths"]

    recipient = paths["/api/v1/campaigns/{campaign_id}/recipients/{recipient_id}"]["get"]["responses"]
    conversation = paths["/api/v1/conversations/{conversation_id}"]["get"]["responses"]
    assert {"200", "401", "404"} <= set(recipient)
    assert {"200", "401", "404", "502"} <= set(conversation)
