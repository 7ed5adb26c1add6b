import json

import pytest
from elevenlabs.types import HttpValidationError

from sandbox.models import SandboxBatch

pytestmark = [pytest.mark.django_db]

SUBMIT = "/v1/convai/batch-calling/submit"


def errors_of(response) -> list[dict]:
    """The 422's error list, checked against the SDK's `HTTPValidationError` model."""
    assert response.status_code == 422, response.content
    HttpValidationError.model_validate(response.json())
    return response.json()["detail"]


def valid_body(**changes) -> dict:
    body = {
        "call_name": "Reminders",
        "agent_id": "agent_demo_reminders",
        "recipients": [{"phone_number": "+14155550123"}],
    }
    body.update(changes)
    return {name: value for name, value in body.items() if value is not ...}


def test_a_missing_call_name_is_a_422_naming_the_field(api):
    response = api.post(SUBMIT, valid_body(call_name=...))

    assert errors_of(response) == [
        {"type": "missing", "loc": ["body", "call_name"], "msg": "Field required", "input": None}
    ]
    assert not SandboxBatch.objects.exists()


def test_every_missing_required_field_is_reported(api):
    response = api.post(SUBMIT, {})

    assert [error["loc"] for error in errors_of(response)] == [
        ["body", "call_name"],
        ["body", "agent_id"],
        ["body", "recipients"],
    ]


def test_more_than_10000_recipients_is_a_422_too_long(api):
    body = json.dumps(valid_body(recipients=[{"phone_number": "+14155550123"}] * 10_001))

    response = api.post_raw(SUBMIT, body)

    (error,) = errors_of(response)
    assert error["type"] == "too_long"
    assert error["loc"] == ["body", "recipients"]
    assert error["msg"] == "List should have at most 10000 items after validation, not 10001"
    assert error["ctx"] == {"field_type": "List", "max_length": 10000, "actual_length": 10001}


def test_exactly_10000_recipients_are_accepted(api):
    response = api.post(SUBMIT, valid_body(recipients=[{"phone_number": "+14155550123"}] * 10_000))

    assert response.status_code == 200
    assert response.json()["total_calls_scheduled"] == 10_000


def test_an_empty_recipient_list_is_a_422_too_short(api):
    response = api.post(SUBMIT, valid_body(recipients=[]))

    assert errors_of(response) == [
        {
            "type": "too_short",
            "loc": ["body", "recipients"],
            "msg": "List should have at least 1 item after validation, not 0",
            "input": [],
            "ctx": {"field_type": "List", "min_length": 1, "actual_length": 0},
        }
    ]


def test_a_recipient_without_a_phone_number_is_a_422_at_its_index(api):
    recipients = [{"phone_number": "+14155550123"}, {"id": "contact-2"}]

    response = api.post(SUBMIT, valid_body(recipients=recipients))

    assert errors_of(response) == [
        {
            "type": "missing",
            "loc": ["body", "recipients", 1, "phone_number"],
            "msg": "Field required",
            "input": {"id": "contact-2"},
        }
    ]


def test_a_whatsapp_recipient_needs_no_phone_number(api):
    response = api.post(SUBMIT, valid_body(recipients=[{"whatsapp_user_id": "wa_123"}]))

    assert response.status_code == 200


def test_wrong_types_are_reported_like_pydantic(api):
    body = valid_body(
        call_name=5,
        recipients=[
            "+14155550123",
            {"phone_number": 14155550123},
            {"phone_number": "+14155550123", "conversation_initiation_client_data": {"dynamic_variables": [1]}},
        ],
        scheduled_time_unix="soon",
        telephony_call_config={"ringing_timeout_secs": 1.5},
    )

    response = api.post(SUBMIT, body)

    errors = errors_of(response)
    assert [(error["type"], error["loc"]) for error in errors] == [
        ("string_type", ["body", "call_name"]),
        ("model_type", ["body", "recipients", 0]),
        ("string_type", ["body", "recipients", 1, "phone_number"]),
        ("dict_type", ["body", "recipients", 2, "conversation_initiation_client_data", "dynamic_variables"]),
        ("int_parsing", ["body", "scheduled_time_unix"]),
        ("int_from_float", ["body", "telephony_call_config", "ringing_timeout_secs"]),
    ]
    assert errors[1]["msg"] == "Input should be a valid dictionary or instance of OutboundCallRecipient"


def test_numbers_sent_as_strings_are_accepted_as_pydantic_does(api, clock):
    response = api.post(SUBMIT, valid_body(scheduled_time_unix=str(int(clock.now) + 60)))

    assert response.status_code == 200
    assert response.json()["scheduled_time_unix"] == int(clock.now) + 60


def test_a_body_that_is_not_json_is_a_422_json_invalid(api):
    response = api.post_raw(SUBMIT, "{not json")

    assert errors_of(response) == [
        {
            "type": "json_invalid",
            "loc": ["body", 1],
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": "Expecting property name enclosed in double quotes"},
        }
    ]


def test_a_body_that_is_not_an_object_has_every_field_missing(api):
    response = api.post_raw(SUBMIT, "[1, 2]")

    errors = errors_of(response)
    assert {error["type"] for error in errors} == {"missing"}
    assert errors[0]["loc"] == ["body", "call_name"]


@pytest.mark.parametrize(
    "path,params,loc,error_type",
    [
        ("/v1/convai/batch-calling/workspace", {"limit": "many"}, ["query", "limit"], "int_parsing"),
        ("/v1/convai/agents", {"page_size": "101"}, ["query", "page_size"], "less_than_equal"),
        ("/v1/convai/agents", {"page_size": "0"}, ["query", "page_size"], "greater_than_equal"),
        ("/v1/convai/agents", {"sort_direction": "up"}, ["query", "sort_direction"], "enum"),
    ],
)
def test_invalid_query_parameters_are_a_422(api, path, params, loc, error_type):
    response = api.get(path, params)

    (error,) = errors_of(response)
    assert (error["loc"], error["type"]) == (loc, error_type)


def test_a_form_encoded_body_is_not_read_as_json(api):
    response = api.post_raw(SUBMIT, "call_name=Reminders", content_type="application/x-www-form-urlencoded")

    assert errors_of(response)[0] == {
        "type": "missing",
        "loc": ["body", "call_name"],
        "msg": "Field required",
        "input": None,
    }
