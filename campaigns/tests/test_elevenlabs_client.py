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
    GetAgentsPageResponseModel,
    WorkspaceBatchCallsResponse,
)
from pydantic import TypeAdapter
from responses import matchers

from campaigns import elevenlabs
from campaigns.elevenlabs import (
    BatchCall,
    BatchCallDetail,
    ElevenLabsAuthError,
    ElevenLabsBadResponse,
    ElevenLabsClient,
    ElevenLabsError,
    ElevenLabsNotFound,
    ElevenLabsRateLimited,
    ElevenLabsServerError,
    ElevenLabsTimeout,
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


def test_a_base_url_with_a_path_prefix_is_kept(http, sleeps):
    client = ElevenLabsClient(base_url="http://127.0.0.1:8000/sandbox/elevenlabs/", api_key="k", sleep=sleeps.append)
    http.get("http://127.0.0.1:8000/sandbox/elevenlabs/v1/convai/phone-numbers", json=[])

    assert client.list_phone_numbers() == []


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
    ],
    ids=["batch-without-id", "detail-without-recipients", "list-without-batch_calls", "agents", "phone-numbers"],
)
def test_a_2xx_of_the_wrong_shape_raises_bad_response(http, client, method, path, payload, invoke, complaint):
    http.add(method, f"{BASE}{path}", json=payload)
    calls = {
        "submit": lambda: client.submit_batch(call_name="c", agent_id="a", recipients=[{}]),
        "get": lambda: client.get_batch("b1"),
        "list": lambda: client.list_batches(),
        "agents": lambda: client.list_agents(),
        "phones": lambda: client.list_phone_numbers(),
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
