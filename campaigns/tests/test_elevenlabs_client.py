"""The ElevenLabs HTTP client against a mocked remote API (no database, no network)."""

import copy
import json
import logging
import pickle
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
import responses
from elevenlabs.conversational_ai.phone_numbers import PhoneNumbersListResponseItem
from elevenlabs.types import (
    BatchCallDetailedResponse,
    BatchCallResponse,
    GetAgentResponseModel,
    GetAgentsPageResponseModel,
    GetConversationResponseModel,
    WorkspaceBatchCallsResponse,
)
from pydantic import TypeAdapter
from responses import matchers

from campaigns import elevenlabs
from campaigns.elevenlabs import (
    BatchCall,
    BatchCallDetail,
    Conversation,
    ElevenLabsAuthError,
    ElevenLabsBadResponse,
    ElevenLabsClient,
    ElevenLabsConflict,
    ElevenLabsError,
    ElevenLabsNotFound,
    ElevenLabsRateLimited,
    ElevenLabsServerError,
    ElevenLabsTimeout,
    ElevenLabsTransientError,
    ElevenLabsTransportError,
    ElevenLabsValidationError,
)

BASE = "https://api.example.test"
BATCHES = f"{BASE}/v1/convai/batch-calling"

# The create-page example response from the live API reference.
DOCS_LIVE_BATCH = {
    "id": "batchcall_1234567890abcdef",
    "name": "Customer Satisfaction Survey April 2024",
    "agent_id": "agent_9f8b7c6d5e4f3a2b1c0d",
    "created_at_unix": 1712000000,
    "scheduled_time_unix": 1712604800,
    "total_calls_dispatched": 150,
    "total_calls_scheduled": 200,
    "total_calls_finished": 140,
    "last_updated_at_unix": 1712608400,
    "status": "pending",
    "retry_count": 0,
    "telephony_call_config": {"ringing_timeout_secs": 60},
    "agent_name": "Survey Agent Alpha",
    "phone_number_id": "phone_num_1a2b3c4d",
    "phone_provider": "twilio",
}


def batch(**changes):
    payload = copy.deepcopy(DOCS_LIVE_BATCH)
    payload.update(changes)
    return payload


def recipient(**changes):
    payload = {
        "id": "rcpt_1",
        "status": "completed",
        "created_at_unix": 1712600000,
        "updated_at_unix": 1712600100,
        "phone_number": "+15551234567",
        "conversation_id": "conv_1",
        "conversation_initiation_client_data": {"dynamic_variables": {"contact_id": "42", "first_name": "Ana"}},
    }
    payload.update(changes)
    return payload


def agent(agent_id, name):
    return {
        "agent_id": agent_id,
        "name": name,
        "voice_id": "voice_1",
        "tags": [],
        "created_at_unix_secs": 1712000000,
        "updated_at_unix_secs": 1712000000,
        "access_info": {
            "is_creator": True,
            "creator_name": "Ana",
            "creator_email": "ana@example.test",
            "role": "admin",
        },
    }


PHONE_NUMBERS = [
    {
        "provider": "twilio",
        "phone_number": "+14155550100",
        "label": "Main line",
        "phone_number_id": "phnum_twilio",
        "supports_outbound": True,
        "assigned_agent": {"agent_id": "agent_a", "agent_name": "Reminder agent"},
    },
    {
        "provider": "sip_trunk",
        "phone_number": "+442079460958",
        "label": "London trunk",
        "phone_number_id": "phnum_sip",
        "livekit_stack": "standard",
        "assigned_agent": None,
    },
]


# A post-call conversation of a batch recipient, built to the SDK's GetConversationResponseModel.
CONVERSATION = {
    "agent_id": "agent_a",
    "agent_name": "Reminder agent",
    "conversation_id": "conv_1",
    "status": "done",
    "user_id": None,
    "has_audio": True,
    "has_user_audio": True,
    "has_response_audio": True,
    "has_auxiliary_audio": False,
    "transcript": [
        {
            "role": "agent",
            "message": "Hi Ana, this is a reminder about your appointment tomorrow.",
            "time_in_call_secs": 0,
            "interrupted": False,
            "conversation_turn_metrics": {"metrics": {"convai_llm_service_ttfb": {"elapsed_time": 0.31}}},
        },
        {
            "role": "user",
            "message": "Thanks, I'll be there.",
            "time_in_call_secs": 5,
            "feedback": None,
            "source_medium": "audio",
        },
        {"role": "agent", "message": None, "time_in_call_secs": 7, "tool_calls": []},
    ],
    "metadata": {
        "start_time_unix_secs": 1785000000,
        "accepted_time_unix_secs": 1785000003,
        "call_duration_secs": 42,
        "cost": 312,
        "termination_reason": "Call ended by remote party",
        "main_language": "en",
        "phone_call": {
            "type": "twilio",
            "direction": "outbound",
            "phone_number_id": "phnum_twilio",
            "agent_number": "+14155550100",
            "external_number": "+15551234567",
            "call_result": "answered",
            "stream_sid": "MZ0123",
            "call_sid": "CA0123",
        },
        "batch_call": {"batch_call_id": "btcal_1", "batch_call_recipient_id": "rcpt_1"},
    },
    "analysis": {
        "evaluation_criteria_results": {
            "confirmed": {"criteria_id": "confirmed", "result": "success", "rationale": "Ana confirmed."}
        },
        "data_collection_results": {},
        "call_successful": "success",
        "transcript_summary": "The agent reminded Ana of her appointment and she confirmed.",
        "call_summary_title": "Appointment confirmed",
    },
    "conversation_initiation_client_data": {"dynamic_variables": {"first_name": "Ana"}},
}

SIP_CONVERSATION_WITHOUT_ANALYSIS = {
    **CONVERSATION,
    "conversation_id": "conv_sip",
    "status": "failed",
    "transcript": [],
    "metadata": {
        "start_time_unix_secs": 1785000100,
        "call_duration_secs": 0,
        "termination_reason": None,
        "phone_call": {
            "type": "sip_trunking",
            "direction": "outbound",
            "phone_number_id": "phnum_sip",
            "agent_number": "+442079460958",
            "external_number": "+442079460000",
            "call_result": "no_answer",
            "call_id": "sip-call-1",
            "call_sid": "SCL_0123",
        },
    },
}
del SIP_CONVERSATION_WITHOUT_ANALYSIS["analysis"]


def documented_conversation(payload):
    """The payload, once the official SDK model has accepted it."""
    GetConversationResponseModel.model_validate(payload)
    return payload


@pytest.fixture
def http():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(sleeps):
    return ElevenLabsClient(base_url=BASE, api_key="k", sleep=sleeps.append)


def sent_json(call):
    return json.loads(call.request.body)


def test_fixture_payloads_are_valid_according_to_the_official_sdk_models():
    BatchCallResponse.model_validate(DOCS_LIVE_BATCH)
    BatchCallDetailedResponse.model_validate(batch(recipients=[recipient()]))
    WorkspaceBatchCallsResponse.model_validate({"batch_calls": [DOCS_LIVE_BATCH], "next_doc": None, "has_more": False})
    GetAgentsPageResponseModel.model_validate({"agents": [agent("agent_a", "A")], "has_more": False})
    TypeAdapter(list[PhoneNumbersListResponseItem]).validate_python(PHONE_NUMBERS)
    GetConversationResponseModel.model_validate(CONVERSATION)
    sip = GetConversationResponseModel.model_validate(SIP_CONVERSATION_WITHOUT_ANALYSIS)
    assert sip.metadata.phone_call.type == "sip_trunking"
    assert (sip.analysis, sip.metadata.batch_call) == (None, None)


# --- submit --------------------------------------------------------------------------------


def test_submit_sends_only_the_required_fields_when_optional_ones_are_unset(http, client):
    http.post(f"{BATCHES}/submit", json=DOCS_LIVE_BATCH)
    recipients = [{"phone_number": "+15551234567"}]

    client.submit_batch(call_name="Reminder", agent_id="agent_a", recipients=recipients)

    request = http.calls[0].request
    assert sent_json(http.calls[0]) == {"call_name": "Reminder", "agent_id": "agent_a", "recipients": recipients}
    assert request.headers["xi-api-key"] == "k"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"


def test_submit_sends_the_optional_fields_that_are_set(http, client):
    http.post(f"{BATCHES}/submit", json=DOCS_LIVE_BATCH)
    recipients = [
        {
            "id": "contact-42",
            "phone_number": "+15551234567",
            "conversation_initiation_client_data": {"dynamic_variables": {"first_name": "Ana", "balance": 12.5}},
        }
    ]

    client.submit_batch(
        call_name="Reminder",
        agent_id="agent_a",
        recipients=recipients,
        agent_phone_number_id="phnum_1",
        scheduled_time_unix=1785000000,
        timezone="Europe/Lisbon",
    )

    assert sent_json(http.calls[0]) == {
        "call_name": "Reminder",
        "agent_id": "agent_a",
        "recipients": recipients,
        "agent_phone_number_id": "phnum_1",
        "scheduled_time_unix": 1785000000,
        "timezone": "Europe/Lisbon",
    }


def test_submit_parses_the_documented_example_response(http, client):
    http.post(f"{BATCHES}/submit", json=DOCS_LIVE_BATCH)

    result = client.submit_batch(call_name="Customer Satisfaction Survey April 2024", agent_id="a", recipients=[{}])

    assert result == BatchCall(
        id="batchcall_1234567890abcdef",
        name="Customer Satisfaction Survey April 2024",
        agent_id="agent_9f8b7c6d5e4f3a2b1c0d",
        status="pending",
        phone_number_id="phone_num_1a2b3c4d",
        created_at_unix=1712000000,
        scheduled_time_unix=1712604800,
        last_updated_at_unix=1712608400,
        total_calls_dispatched=150,
        total_calls_scheduled=200,
        total_calls_finished=140,
        retry_count=0,
        raw=DOCS_LIVE_BATCH,
    )


def test_a_batch_with_unknown_fields_and_an_unknown_status_is_parsed_leniently(http, client):
    payload = batch(status="paused_for_review", brand_new_field={"x": 1}, target_concurrency_limit=5)
    for key in ("phone_number_id", "total_calls_finished", "retry_count"):
        del payload[key]
    http.post(f"{BATCHES}/submit", json=payload)

    result = client.submit_batch(call_name="c", agent_id="a", recipients=[{}])

    assert result.status == "paused_for_review"
    assert result.phone_number_id is None
    assert (result.total_calls_finished, result.retry_count) == (0, 0)
    assert result.raw["brand_new_field"] == {"x": 1}


# --- reads ---------------------------------------------------------------------------------


def test_get_batch_returns_every_recipient_and_keeps_an_unknown_recipient_status(http, client):
    payload = batch(
        status="in_progress",
        recipients=[
            recipient(),
            recipient(
                id="rcpt_2",
                status="ringing_on_mars",
                phone_number="+15557654321",
                conversation_id=None,
                conversation_initiation_client_data=None,
            ),
        ],
    )
    http.get(f"{BATCHES}/batchcall_1234567890abcdef", json=payload)

    result = client.get_batch("batchcall_1234567890abcdef")

    assert isinstance(result, BatchCallDetail)
    assert result.status == "in_progress"
    first, second = result.recipients
    assert (first.id, first.status, first.phone_number, first.conversation_id) == (
        "rcpt_1",
        "completed",
        "+15551234567",
        "conv_1",
    )
    assert first.updated_at_unix == 1712600100
    assert first.dynamic_variables == {"contact_id": "42", "first_name": "Ana"}
    assert (second.status, second.conversation_id, second.dynamic_variables) == ("ringing_on_mars", None, {})


def test_iter_batches_follows_next_doc_until_has_more_is_false(http, client):
    http.get(
        f"{BATCHES}/workspace",
        match=[matchers.query_param_matcher({"limit": "2", "agent_id": "agent_a"})],
        json={"batch_calls": [batch(id="b1"), batch(id="b2")], "next_doc": "doc_2", "has_more": True},
    )
    http.get(
        f"{BATCHES}/workspace",
        match=[matchers.query_param_matcher({"limit": "2", "agent_id": "agent_a", "last_doc": "doc_2"})],
        json={"batch_calls": [batch(id="b3")], "next_doc": None, "has_more": False},
    )

    ids = [item.id for item in client.iter_batches(agent_id="agent_a", limit=2)]

    assert ids == ["b1", "b2", "b3"]


def test_list_batches_sends_the_default_limit_and_reports_the_cursor(http, client):
    http.get(
        f"{BATCHES}/workspace",
        match=[matchers.query_param_matcher({"limit": "100"})],
        json={"batch_calls": [DOCS_LIVE_BATCH], "next_doc": "bc_next", "has_more": True},
    )

    page = client.list_batches()

    assert [item.id for item in page.batch_calls] == ["batchcall_1234567890abcdef"]
    assert (page.next_doc, page.has_more) == ("bc_next", True)


def test_list_agents_follows_the_cursor_across_pages(http, client):
    http.get(
        f"{BASE}/v1/convai/agents",
        match=[matchers.query_param_matcher({"page_size": "100"})],
        json={"agents": [agent("agent_a", "Reminders")], "next_cursor": "cur_2", "has_more": True},
    )
    http.get(
        f"{BASE}/v1/convai/agents",
        match=[matchers.query_param_matcher({"page_size": "100", "cursor": "cur_2"})],
        json={"agents": [agent("agent_b", "Surveys")], "next_cursor": None, "has_more": False},
    )

    agents = client.list_agents()

    assert [(item.agent_id, item.name) for item in agents] == [("agent_a", "Reminders"), ("agent_b", "Surveys")]
    assert agents[0].raw["voice_id"] == "voice_1"


def test_list_phone_numbers_reads_the_bare_array(http, client):
    http.get(f"{BASE}/v1/convai/phone-numbers", json=PHONE_NUMBERS)

    numbers = client.list_phone_numbers()

    assert [(n.phone_number_id, n.phone_number, n.label, n.provider, n.assigned_agent_id) for n in numbers] == [
        ("phnum_twilio", "+14155550100", "Main line", "twilio", "agent_a"),
        ("phnum_sip", "+442079460958", "London trunk", "sip_trunk", None),
    ]


def test_a_phone_number_places_calls_unless_elevenlabs_says_it_is_inbound_only(http, client):
    inbound_only = {
        "provider": "twilio",
        "phone_number": "+14155550199",
        "label": "Support",
        "phone_number_id": "phnum_inbound",
        "supports_inbound": True,
        "supports_outbound": False,
        "assigned_agent": None,
    }
    TypeAdapter(list[PhoneNumbersListResponseItem]).validate_python([inbound_only])
    http.get(f"{BASE}/v1/convai/phone-numbers", json=[*PHONE_NUMBERS, inbound_only])

    numbers = client.list_phone_numbers()

    # explicitly true, absent (true by ElevenLabs' older default), explicitly false
    assert [(n.phone_number_id, n.supports_outbound) for n in numbers] == [
        ("phnum_twilio", True),
        ("phnum_sip", True),
        ("phnum_inbound", False),
    ]


def agent_detail(agent_id="agent_a", name="Reminders", **changes):
    """An agent as GET /v1/convai/agents/{agent_id} describes it (GetAgentResponseModel)."""
    payload = {
        "agent_id": agent_id,
        "name": name,
        "conversation_config": {"agent": {"first_message": "Hi {{first_name}}", "language": "en"}},
        "metadata": {"created_at_unix_secs": 1767225600, "updated_at_unix_secs": 1767225600},
    }
    payload.update(changes)
    return payload


def test_get_agent_reads_which_overrides_a_call_may_set(http, client):
    payload = agent_detail(
        platform_settings={
            "overrides": {
                "conversation_config_override": {
                    "agent": {"first_message": True, "language": False, "prompt": {"prompt": True}},
                    "tts": {"voice_id": None},
                },
                "custom_llm_extra_body": False,
            },
            "some_future_setting": {"x": 1},
        }
    )
    GetAgentResponseModel.model_validate(payload)
    http.get(f"{BASE}/v1/convai/agents/agent_a", json=payload)

    agent = client.get_agent("agent_a")

    assert (agent.agent_id, agent.name) == ("agent_a", "Reminders")
    assert agent.override_permissions == {
        "language": False,
        "first_message": True,
        "system_prompt": True,
        "voice_id": False,
    }
    assert agent.raw == payload


@pytest.mark.parametrize(
    "platform_settings",
    [None, {}, {"overrides": None}, {"overrides": {"conversation_config_override": None}}, {"overrides": "odd"}],
)
def test_an_agent_without_override_settings_allows_none(http, client, platform_settings):
    payload = agent_detail(platform_settings=platform_settings)
    http.get(f"{BASE}/v1/convai/agents/agent_a", json=payload)

    agent = client.get_agent("agent_a")

    assert agent.override_permissions == {
        "language": False,
        "first_message": False,
        "system_prompt": False,
        "voice_id": False,
    }


def test_get_agent_is_retried_like_the_other_reads(http, client, sleeps):
    http.get(f"{BASE}/v1/convai/agents/agent%2Fa", status=503, json={"detail": "busy"})
    http.get(f"{BASE}/v1/convai/agents/agent%2Fa", json=agent_detail("agent/a"))

    assert client.get_agent("agent/a").agent_id == "agent/a"
    assert sleeps == [0.5]


def test_get_agent_of_an_unknown_id_raises_not_found(http, client, sleeps):
    http.get(
        f"{BASE}/v1/convai/agents/agent_x",
        status=404,
        json={"detail": {"status": "not_found", "message": "Agent agent_x not found"}},
    )

    with pytest.raises(ElevenLabsNotFound, match="Agent agent_x not found"):
        client.get_agent("agent_x")
    assert sleeps == []


def test_a_base_url_with_a_path_prefix_is_kept(http, sleeps):
    client = ElevenLabsClient(base_url="http://127.0.0.1:8000/sandbox/elevenlabs/", api_key="k", sleep=sleeps.append)
    http.get("http://127.0.0.1:8000/sandbox/elevenlabs/v1/convai/phone-numbers", json=[])

    assert client.list_phone_numbers() == []


def test_get_conversation_reads_the_batch_recipient_call_result_transcript_and_analysis(http, client):
    http.get(f"{BASE}/v1/convai/conversations/conv_1", json=documented_conversation(CONVERSATION))

    result = client.get_conversation("conv_1")

    assert result == Conversation(
        conversation_id="conv_1",
        agent_id="agent_a",
        status="done",
        batch_call_id="btcal_1",
        batch_call_recipient_id="rcpt_1",
        external_number="+15551234567",
        call_result="answered",
        termination_reason="Call ended by remote party",
        start_time_unix_secs=1785000000,
        call_duration_secs=42,
        transcript=[
            {
                "role": "agent",
                "message": "Hi Ana, this is a reminder about your appointment tomorrow.",
                "time_in_call_secs": 0,
            },
            {"role": "user", "message": "Thanks, I'll be there.", "time_in_call_secs": 5},
            {"role": "agent", "message": None, "time_in_call_secs": 7},
        ],
        call_successful="success",
        transcript_summary="The agent reminded Ana of her appointment and she confirmed.",
        raw=CONVERSATION,
    )


def test_get_conversation_reads_a_sip_trunking_call_without_analysis_or_batch_call(http, client):
    http.get(
        f"{BASE}/v1/convai/conversations/conv_sip",
        json=documented_conversation(SIP_CONVERSATION_WITHOUT_ANALYSIS),
    )

    result = client.get_conversation("conv_sip")

    assert (result.status, result.external_number, result.call_result) == ("failed", "+442079460000", "no_answer")
    assert (result.batch_call_id, result.batch_call_recipient_id) == (None, None)
    assert (result.call_successful, result.transcript_summary, result.termination_reason) == (None, None, None)
    assert (result.start_time_unix_secs, result.call_duration_secs, result.transcript) == (1785000100, 0, [])


def test_a_conversation_with_unknown_values_and_missing_parts_is_parsed_leniently(http, client):
    payload = documented_conversation(
        {
            "conversation_id": "conv_odd",
            "agent_id": "agent_a",
            "status": "teleporting",
            "has_audio": False,
            "has_user_audio": False,
            "has_response_audio": False,
            "has_auxiliary_audio": False,
            "metadata": {
                "start_time_unix_secs": 1785000000,
                "call_duration_secs": 3,
                "phone_call": {
                    "type": "twilio",
                    "direction": "outbound",
                    "phone_number_id": "phnum_twilio",
                    "agent_number": "+14155550100",
                    "external_number": "+15551234567",
                    "call_result": "answered_by_a_parrot",
                    "stream_sid": "MZ1",
                    "call_sid": "CA1",
                },
            },
            "analysis": {"call_successful": "maybe", "transcript_summary": ""},
            "transcript": [{"role": "narrator", "time_in_call_secs": 1}],
        }
    )
    payload["transcript"].insert(0, "not a turn")
    http.get(f"{BASE}/v1/convai/conversations/conv_odd", json=payload)

    result = client.get_conversation("conv_odd")

    assert (result.status, result.call_result, result.call_successful) == (
        "teleporting",
        "answered_by_a_parrot",
        "maybe",
    )
    assert result.transcript == [{"role": "narrator", "message": None, "time_in_call_secs": 1}]


def test_get_conversation_of_an_unknown_id_raises_not_found(http, client, sleeps):
    http.get(
        f"{BASE}/v1/convai/conversations/conv%2Fnope",
        status=404,
        json={"detail": {"status": "conversation_not_found", "message": "Conversation not found"}},
    )

    with pytest.raises(ElevenLabsNotFound, match="Conversation not found"):
        client.get_conversation("conv/nope")

    assert (len(http.calls), sleeps) == (1, [])


def test_batch_ids_are_quoted_into_a_single_path_segment(http, client):
    http.post(f"{BATCHES}/odd%2Fid%3Fx/cancel", json=batch(id="odd/id?x", status="cancelled"))

    assert client.cancel_batch("odd/id?x").status == "cancelled"


# --- error bodies --------------------------------------------------------------------------


def test_a_401_with_an_object_detail_raises_an_auth_error_with_elevenlabs_message_and_code(http, client):
    http.get(
        f"{BASE}/v1/convai/phone-numbers",
        status=401,
        json={"detail": {"status": "invalid_api_key", "message": "Invalid API key"}},
    )

    with pytest.raises(ElevenLabsAuthError) as caught:
        client.list_phone_numbers()

    error = caught.value
    assert (error.status_code, error.message, error.code) == (401, "Invalid API key", "invalid_api_key")
    assert str(error) == "ElevenLabs answered 401: Invalid API key"
    assert error.retryable is False
    assert len(http.calls) == 1


def test_a_422_with_a_list_detail_raises_a_validation_error_naming_each_field(http, client):
    detail = [
        {"loc": ["body", "recipients", 0, "phone_number"], "msg": "value is not a valid phone number", "type": "x"},
        {"loc": ["body", "agent_id"], "msg": "Field required", "type": "missing"},
    ]
    http.post(f"{BATCHES}/submit", status=422, json={"detail": detail})

    with pytest.raises(ElevenLabsValidationError) as caught:
        client.submit_batch(call_name="c", agent_id="a", recipients=[{"phone_number": "nope"}])

    assert caught.value.message == (
        "body.recipients.0.phone_number: value is not a valid phone number; body.agent_id: Field required"
    )
    assert caught.value.detail == detail
    assert caught.value.code is None


def test_a_404_raises_not_found_without_retrying(http, client, sleeps):
    http.get(f"{BATCHES}/missing", status=404, json={"detail": {"status": "not_found", "message": "Batch not found"}})

    with pytest.raises(ElevenLabsNotFound, match="Batch not found"):
        client.get_batch("missing")

    assert len(http.calls) == 1
    assert sleeps == []


def test_an_html_502_raises_a_server_error_carrying_the_page_text(http, sleeps):
    client = ElevenLabsClient(base_url=BASE, api_key="k", max_retries=0, sleep=sleeps.append)
    html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    http.get(f"{BASE}/v1/convai/phone-numbers", status=502, body=html, content_type="text/html")

    with pytest.raises(ElevenLabsServerError) as caught:
        client.list_phone_numbers()

    assert caught.value.message == html
    assert caught.value.detail is None
    assert caught.value.retryable is True


# --- transient and permanent failures -----------------------------------------------------

# Transient as ElevenLabs' own SDK retries them (408, 409, 429, 5xx), plus 425 Too Early.
STATUSES = {
    408: (ElevenLabsTransientError, True),
    409: (ElevenLabsConflict, True),
    425: (ElevenLabsTransientError, True),
    429: (ElevenLabsRateLimited, True),
    500: (ElevenLabsServerError, True),
    502: (ElevenLabsServerError, True),
    503: (ElevenLabsServerError, True),
    400: (ElevenLabsValidationError, False),
    401: (ElevenLabsAuthError, False),
    403: (ElevenLabsAuthError, False),
    404: (ElevenLabsNotFound, False),
    405: (ElevenLabsError, False),
    422: (ElevenLabsValidationError, False),
}


@pytest.mark.parametrize("status", STATUSES)
def test_each_status_is_classified_as_transient_or_permanent(http, sleeps, status):
    client = ElevenLabsClient(base_url=BASE, api_key="k", max_retries=0, sleep=sleeps.append)
    error_class, transient = STATUSES[status]
    http.get(f"{BASE}/v1/convai/phone-numbers", status=status, json={"detail": {"status": "x", "message": "no"}})

    with pytest.raises(error_class) as caught:
        client.list_phone_numbers()

    error = caught.value
    assert type(error) is error_class
    assert error.retryable is transient
    assert isinstance(error, ElevenLabsTransientError) is transient
    assert (error.status_code, error.message, error.retry_after) == (status, "no", None)


@pytest.mark.parametrize("status", [408, 409, 425])
def test_a_get_is_retried_on_a_transient_4xx_then_succeeds(http, client, sleeps, status):
    http.get(f"{BASE}/v1/convai/phone-numbers", status=status, json={"detail": "not now"})
    http.get(f"{BASE}/v1/convai/phone-numbers", json=PHONE_NUMBERS)

    assert len(client.list_phone_numbers()) == 2
    assert len(http.calls) == 2
    assert sleeps == [0.5]


@pytest.mark.parametrize("status", [409, 425])
def test_a_get_gives_up_on_a_transient_4xx_once_retries_are_used_up(http, client, sleeps, status):
    error_class, _ = STATUSES[status]
    http.get(f"{BATCHES}/b1", status=status, json={"detail": {"status": "busy", "message": "try later"}})

    with pytest.raises(error_class, match=f"ElevenLabs answered {status}: try later"):
        client.get_batch("b1")

    assert len(http.calls) == 1 + client.max_retries
    assert sleeps == [0.5, 1.0, 2.0]


def test_a_get_answered_503_waits_as_long_as_retry_after_says(http, client, sleeps):
    http.get(f"{BASE}/v1/convai/phone-numbers", status=503, headers={"Retry-After": "4"})
    http.get(f"{BASE}/v1/convai/phone-numbers", status=503, headers={"retry-after-ms": "250"})
    http.get(f"{BASE}/v1/convai/phone-numbers", status=503)
    http.get(f"{BASE}/v1/convai/phone-numbers", json=[])

    assert client.list_phone_numbers() == []
    assert sleeps == [4.0, 0.25, 2.0]


@pytest.mark.parametrize("status", [409, 503])
def test_the_error_raised_carries_the_wait_the_answer_asked_for(http, sleeps, status):
    client = ElevenLabsClient(base_url=BASE, api_key="k", max_retries=0, sleep=sleeps.append)
    http.get(f"{BATCHES}/b1", status=status, headers={"Retry-After": "12"})

    with pytest.raises(ElevenLabsTransientError) as caught:
        client.get_batch("b1")

    assert caught.value.retry_after == 12.0


def test_transport_errors_and_bad_bodies_carry_no_retry_after(http, sleeps):
    client = ElevenLabsClient(base_url=BASE, api_key="k", max_retries=0, sleep=sleeps.append)
    http.get(f"{BATCHES}/b1", body=requests.ConnectionError("Connection reset by peer"))
    http.get(f"{BATCHES}/b2", body="<html>", headers={"Retry-After": "5"})

    with pytest.raises(ElevenLabsTransportError) as transport:
        client.get_batch("b1")
    with pytest.raises(ElevenLabsBadResponse) as bad:
        client.get_batch("b2")

    assert (transport.value.retryable, transport.value.retry_after) == (True, None)
    assert (bad.value.retryable, bad.value.retry_after) == (False, None)


# --- retries of safe (GET) calls -----------------------------------------------------------


def test_a_get_answered_429_waits_as_long_as_retry_after_says_then_succeeds(http, client, sleeps):
    http.get(f"{BASE}/v1/convai/phone-numbers", status=429, headers={"Retry-After": "7"}, json={"detail": "slow"})
    http.get(f"{BASE}/v1/convai/phone-numbers", json=PHONE_NUMBERS)

    numbers = client.list_phone_numbers()

    assert len(numbers) == 2
    assert sleeps == [7.0]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "600"}, 60.0),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5),
        ({"Retry-After": "soon"}, 0.5),
    ],
    ids=["capped-at-60s", "milliseconds-win", "unparseable-falls-back-to-backoff"],
)
def test_the_retry_wait_follows_the_retry_after_headers(http, client, sleeps, headers, expected):
    http.get(f"{BASE}/v1/convai/phone-numbers", status=429, headers=headers)
    http.get(f"{BASE}/v1/convai/phone-numbers", json=[])

    client.list_phone_numbers()

    assert sleeps == [expected]


def test_a_retry_after_http_date_is_waited_until(http, client, sleeps):
    in_ten_seconds = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    http.get(f"{BASE}/v1/convai/phone-numbers", status=503, headers={"Retry-After": in_ten_seconds})
    http.get(f"{BASE}/v1/convai/phone-numbers", json=[])

    client.list_phone_numbers()

    assert 8 <= sleeps[0] <= 10


def test_a_get_succeeds_after_two_server_errors_with_exponential_backoff(http, client, sleeps):
    for _ in range(2):
        http.get(f"{BATCHES}/b1", status=500, json={"detail": {"status": "internal", "message": "boom"}})
    http.get(f"{BATCHES}/b1", json=batch(id="b1", recipients=[]))

    assert client.get_batch("b1").id == "b1"
    assert len(http.calls) == 3
    assert sleeps == [0.5, 1.0]


def test_a_get_raises_the_server_error_once_retries_are_used_up(http, client, sleeps):
    http.get(f"{BATCHES}/b1", status=500, json={"detail": {"status": "internal", "message": "boom"}})

    with pytest.raises(ElevenLabsServerError, match="ElevenLabs answered 500: boom"):
        client.get_batch("b1")

    assert len(http.calls) == 1 + client.max_retries
    assert sleeps == [0.5, 1.0, 2.0]


def test_the_backoff_is_capped_at_30_seconds(http, sleeps):
    client = ElevenLabsClient(base_url=BASE, api_key="k", max_retries=3, backoff=20, sleep=sleeps.append)
    http.get(f"{BASE}/v1/convai/phone-numbers", status=503)

    with pytest.raises(ElevenLabsServerError):
        client.list_phone_numbers()

    assert sleeps == [20, 30, 30]


def test_a_get_that_times_out_every_time_raises_a_retryable_timeout(http, sleeps):
    client = ElevenLabsClient(base_url=BASE, api_key="k", max_retries=1, sleep=sleeps.append)
    http.get(f"{BASE}/v1/convai/agents", body=requests.exceptions.ReadTimeout("read timed out"))

    with pytest.raises(ElevenLabsTimeout) as caught:
        client.list_agents()

    assert isinstance(caught.value, ElevenLabsTransportError)
    assert caught.value.retryable is True
    assert caught.value.status_code is None
    assert "may have reached" in str(caught.value)
    assert len(http.calls) == 2


def test_a_refused_connection_on_get_is_retried_and_logged_without_the_api_key(http, sleeps, caplog):
    client = ElevenLabsClient(base_url=BASE, api_key="secret-key-123", sleep=sleeps.append)
    http.get(f"{BASE}/v1/convai/phone-numbers", body=requests.ConnectionError("Connection refused"))
    http.get(f"{BASE}/v1/convai/phone-numbers", json=[])

    with caplog.at_level(logging.WARNING, logger="campaigns.elevenlabs"):
        assert client.list_phone_numbers() == []

    assert sleeps == [0.5]
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "GET /v1/convai/phone-numbers" in record.getMessage()
    assert "0.5 s" in record.getMessage()
    assert "secret-key-123" not in caplog.text


# --- POST calls are never retried ----------------------------------------------------------

POST_CALLS = {
    "submit": ("submit", lambda c: c.submit_batch(call_name="c", agent_id="a", recipients=[{}])),
    "cancel": ("b1/cancel", lambda c: c.cancel_batch("b1")),
    "retry": ("b1/retry", lambda c: c.retry_batch("b1")),
}
FAILURES = {
    "500": (ElevenLabsServerError, {"status": 500, "json": {"detail": "boom"}}),
    "429": (ElevenLabsRateLimited, {"status": 429, "headers": {"Retry-After": "7"}, "json": {"detail": "slow"}}),
    "timeout": (ElevenLabsTimeout, {"body": requests.exceptions.ReadTimeout("read timed out")}),
}


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("call", POST_CALLS)
def test_post_calls_are_never_retried(http, client, sleeps, call, failure):
    path, invoke = POST_CALLS[call]
    error_class, response = FAILURES[failure]
    http.post(f"{BATCHES}/{path}", **response)

    with pytest.raises(error_class) as caught:
        invoke(client)

    assert len(http.calls) == 1
    assert sleeps == []
    assert caught.value.retryable is True


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("call", POST_CALLS)
def test_post_calls_are_never_retried_whatever_the_status(http, client, sleeps, call, status):
    path, invoke = POST_CALLS[call]
    error_class, transient = STATUSES[status]
    http.post(f"{BATCHES}/{path}", status=status, headers={"Retry-After": "1"}, json={"detail": "no"})

    with pytest.raises(error_class) as caught:
        invoke(client)

    assert len(http.calls) == 1
    assert sleeps == []
    assert caught.value.retryable is transient


def test_submit_is_never_retried_after_a_server_error(http, client):
    http.post(f"{BATCHES}/submit", status=500, json={"detail": "boom"})
    http.post(f"{BATCHES}/submit", json=DOCS_LIVE_BATCH)

    with pytest.raises(ElevenLabsServerError):
        client.submit_batch(call_name="c", agent_id="a", recipients=[{}])

    assert len(http.calls) == 1
    http.reset()  # the success was registered only to prove it is never asked for


def test_a_429_tells_the_caller_how_long_to_wait(http, client):
    http.post(f"{BATCHES}/submit", status=429, headers={"Retry-After": "7"}, json={"detail": "slow"})

    with pytest.raises(ElevenLabsRateLimited) as caught:
        client.submit_batch(call_name="c", agent_id="a", recipients=[{}])

    assert caught.value.retry_after == 7.0


def test_redirects_are_not_followed_so_the_key_never_leaves_the_configured_host(http, client):
    http.get(f"{BATCHES}/b1", status=302, headers={"Location": "https://elsewhere.test/steal"})

    with pytest.raises(ElevenLabsError, match=r"redirected to https://elsewhere\.test/steal"):
        client.get_batch("b1")

    assert [call.request.url for call in http.calls] == [f"{BATCHES}/b1"]


# --- malformed 2xx answers -----------------------------------------------------------------


def test_a_200_with_malformed_json_raises_bad_response(http, client):
    http.get(f"{BATCHES}/b1", body='{"id": "b1", ', content_type="application/json")

    with pytest.raises(ElevenLabsBadResponse) as caught:
        client.get_batch("b1")

    assert str(caught.value).startswith("ElevenLabs answered 200 with an unexpected body: body is not JSON")
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("method", "path", "payload", "invoke", "complaint"),
    [
        ("POST", "/v1/convai/batch-calling/submit", {"name": "no id"}, "submit", "has no 'id'"),
        ("GET", "/v1/convai/batch-calling/b1", batch(id="b1"), "get", "no 'recipients' list"),
        ("GET", "/v1/convai/batch-calling/workspace", {"items": []}, "list", "no 'batch_calls' list"),
        ("GET", "/v1/convai/agents", {"has_more": False}, "agents", "no 'agents' list"),
        ("GET", "/v1/convai/phone-numbers", {"phone_numbers": []}, "phones", "not a JSON array"),
        ("GET", "/v1/convai/conversations/c1", {"agent_id": "a"}, "conversation", "no 'conversation_id'"),
        ("GET", "/v1/convai/conversations/c1", [CONVERSATION], "conversation", "not a JSON object"),
    ],
    ids=[
        "batch-without-id",
        "detail-without-recipients",
        "list-without-batch_calls",
        "agents",
        "phone-numbers",
        "conversation-without-id",
        "conversation-not-an-object",
    ],
)
def test_a_2xx_of_the_wrong_shape_raises_bad_response(http, client, method, path, payload, invoke, complaint):
    http.add(method, f"{BASE}{path}", json=payload)
    calls = {
        "submit": lambda: client.submit_batch(call_name="c", agent_id="a", recipients=[{}]),
        "get": lambda: client.get_batch("b1"),
        "list": lambda: client.list_batches(),
        "agents": lambda: client.list_agents(),
        "phones": lambda: client.list_phone_numbers(),
        "conversation": lambda: client.get_conversation("c1"),
    }

    with pytest.raises(ElevenLabsBadResponse, match=complaint):
        calls[invoke]()


def test_errors_survive_pickling_with_their_details():
    error = ElevenLabsRateLimited("slow down", status_code=429, detail={"status": "rate"}, code="rate", retry_after=3.0)

    restored = pickle.loads(pickle.dumps(error))

    assert type(restored) is ElevenLabsRateLimited
    assert (restored.message, restored.status_code, restored.code, restored.retry_after) == (
        "slow down",
        429,
        "rate",
        3.0,
    )
    assert str(restored) == "ElevenLabs answered 429: slow down"


def test_a_conflict_survives_pickling_with_its_wait():
    error = ElevenLabsConflict("busy", status_code=409, retry_after=2.0)

    restored = pickle.loads(pickle.dumps(error))

    assert type(restored) is ElevenLabsConflict
    assert (restored.status_code, restored.retry_after, restored.retryable) == (409, 2.0, True)


# --- the per-process client ----------------------------------------------------------------


def test_client_from_settings_is_shared_until_the_settings_change(settings):
    settings.ELEVENLABS_BASE_URL = "https://api.one.test"
    settings.ELEVENLABS_API_KEY = "key-one"

    first = elevenlabs.client_from_settings()
    assert elevenlabs.client_from_settings() is first
    assert first.base_url == "https://api.one.test"

    settings.ELEVENLABS_BASE_URL = "http://127.0.0.1:8000/sandbox/elevenlabs"
    second = elevenlabs.client_from_settings()

    assert second is not first
    assert second.base_url == "http://127.0.0.1:8000/sandbox/elevenlabs"
    assert second.timeout == (5, 30)


# --- Deleting (retention and erasure) --------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [("delete_batch", "/v1/convai/batch-calling/btc_1"), ("delete_conversation", "/v1/convai/conversations/conv_1")],
)
def test_a_delete_answered_200_with_no_body_succeeds(http, client, method, path):
    http.add(responses.DELETE, f"{BASE}{path}", status=200, body=b"")

    assert getattr(client, method)(path.rsplit("/", 1)[1]) is None
    assert http.calls[0].request.headers["xi-api-key"] == "k"


@pytest.mark.parametrize("method", ["delete_batch", "delete_conversation"])
def test_a_delete_of_something_gone_raises_not_found_and_a_5xx_is_not_retried(http, client, sleeps, method):
    url = f"{BASE}/v1/convai/{'batch-calling' if method == 'delete_batch' else 'conversations'}/x_1"
    http.add(responses.DELETE, url, status=404, json={"detail": "Not Found"})
    http.add(responses.DELETE, url, status=503, json={"detail": "down"})

    with pytest.raises(ElevenLabsNotFound):
        getattr(client, method)("x_1")
    with pytest.raises(ElevenLabsServerError):
        getattr(client, method)("x_1")
    assert len(http.calls) == 2 and sleeps == []
