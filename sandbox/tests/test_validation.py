import json

import pydantic
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


# --- Dynamic variables, phone numbers, time zones -------------------------------------------


class DynamicVariablesModel(pydantic.BaseModel):
    """The OpenAPI's dynamic_variables: values anyOf[string, number, integer, boolean, null]."""

    dynamic_variables: dict[str, str | float | int | bool | None]


def test_a_dynamic_variable_that_is_a_list_or_an_object_is_a_422_as_pydantic_reports_it(api):
    variables = {"first_name": "Ana", "tags": ["a", "b"], "address": {"city": "Madrid"}, "balance": 12.5}
    client_data = {"dynamic_variables": variables}

    response = api.post(
        SUBMIT,
        valid_body(recipients=[{"phone_number": "+14155550123", "conversation_initiation_client_data": client_data}]),
    )

    with pytest.raises(pydantic.ValidationError) as expected:
        DynamicVariablesModel.model_validate({"dynamic_variables": variables})
    prefix = ["body", "recipients", 0, "conversation_initiation_client_data"]
    assert errors_of(response) == [
        {**error, "loc": [*prefix, *error["loc"]]} for error in expected.value.errors(include_url=False)
    ]
    assert [error["loc"][-2:] for error in errors_of(response)][:2] == [["tags", "str"], ["tags", "float"]]
    assert not SandboxBatch.objects.exists()


def test_dynamic_variables_may_be_strings_numbers_booleans_or_null(api):
    variables = {"name": "Ana", "count": 3, "balance": 12.5, "vip": True, "note": None}

    response = api.post(
        SUBMIT,
        valid_body(
            recipients=[
                {
                    "phone_number": "+14155550123",
                    "conversation_initiation_client_data": {"dynamic_variables": variables},
                }
            ]
        ),
    )

    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "number", ["14155550123", "+1 415 555 0123", "+1-415-555-0123", "+123456", "+1234567890123456"]
)
def test_a_phone_number_that_is_not_e164_is_a_422(api, number):
    response = api.post(SUBMIT, valid_body(recipients=[{"phone_number": "+14155550123"}, {"phone_number": number}]))

    assert errors_of(response) == [
        {
            "type": "string_pattern_mismatch",
            "loc": ["body", "recipients", 1, "phone_number"],
            "msg": "String should match pattern '^\\+[0-9]{7,15}$'",
            "input": number,
            "ctx": {"pattern": "^\\+[0-9]{7,15}$"},
        }
    ]


@pytest.mark.parametrize("number", ["+1234567", "+123456789012345"])
def test_e164_numbers_of_7_to_15_digits_are_accepted(api, number):
    assert api.post(SUBMIT, valid_body(recipients=[{"phone_number": number}])).status_code == 200


def test_an_unknown_timezone_is_a_422(api):
    response = api.post(SUBMIT, valid_body(timezone="Europe/Atlantis"))

    assert errors_of(response) == [
        {
            "type": "value_error",
            "loc": ["body", "timezone"],
            "msg": "Value error, Invalid timezone: Europe/Atlantis",
            "input": "Europe/Atlantis",
            "ctx": {"error": {}},
        }
    ]


@pytest.mark.parametrize("timezone", ["Europe/Madrid", "America/New_York", "UTC"])
def test_an_iana_timezone_is_accepted(api, timezone):
    response = api.post(SUBMIT, valid_body(timezone=timezone))

    assert response.status_code == 200
    assert response.json()["timezone"] == timezone


# --- Overrides the agent allows -------------------------------------------------------------


def with_override(override: dict, agent_id: str = "agent_demo_survey") -> dict:
    return valid_body(
        agent_id=agent_id,
        recipients=[
            {"phone_number": "+14155550123"},
            {
                "phone_number": "+14155550124",
                "conversation_initiation_client_data": {"conversation_config_override": override},
            },
        ],
    )


@pytest.mark.parametrize(
    "override,field",
    [
        ({"agent": {"prompt": {"prompt": "Sell them something."}}}, "agent.prompt.prompt"),
        ({"tts": {"voice_id": "EXAVITQu4vr4xnSDxMaL"}}, "tts.voice_id"),
        ({"tts": {"speed": 1.2}}, "tts.speed"),
        ({"conversation": {"text_only": True}}, "conversation.text_only"),
    ],
)
def test_an_override_the_agent_does_not_allow_refuses_the_batch(api, override, field):
    response = api.post(SUBMIT, with_override(override))

    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail["status"] == "override_not_allowed"
    assert f"'{field}' is not allowed to be overridden" in detail["message"]
    assert "recipients[1]" in detail["message"]
    assert not SandboxBatch.objects.exists()


def test_overrides_the_agent_allows_are_accepted(api):
    override = {
        "agent": {"first_message": "Hi {{first_name}}!", "language": "es", "prompt": {"prompt": "Be brief."}},
        "tts": {"voice_id": "EXAVITQu4vr4xnSDxMaL"},
    }

    response = api.post(SUBMIT, with_override(override, agent_id="agent_demo_reminders"))

    assert response.status_code == 200, response.content


def test_a_field_sent_as_null_overrides_nothing(api):
    response = api.post(SUBMIT, with_override({"agent": {"prompt": {"prompt": None}}, "tts": {}}))

    assert response.status_code == 200, response.content


def test_refusing_overrides_can_be_turned_off(api, settings):
    settings.SANDBOX_REFUSE_OVERRIDES = False

    response = api.post(SUBMIT, with_override({"tts": {"voice_id": "EXAVITQu4vr4xnSDxMaL"}}))

    assert response.status_code == 200, response.content


def test_an_override_that_is_not_an_object_is_a_422(api):
    response = api.post(SUBMIT, with_override("agent.first_message=Hi"))

    (error,) = errors_of(response)
    assert (error["type"], error["loc"]) == (
        "model_type",
        ["body", "recipients", 1, "conversation_initiation_client_data", "conversation_config_override"],
    )
