"""Request validation that fails the way ElevenLabs' FastAPI server does.

ElevenLabs validates bodies and query strings with pydantic v2 and answers 422 with
`{"detail": [{"type", "loc", "msg", "input", ["ctx"]}, ...]}`. This module checks the same
fields with the same lax coercions and produces the same error entries, without pydantic.
"""

import email.message
import functools
import itertools
import json
import re
import zoneinfo

from sandbox.errors import RequestValidationError, SandboxError

MAX_RECIPIENTS = 10_000
# E.164: a plus sign, then 7 to 15 digits.
PHONE_NUMBER_PATTERN = r"^\+[0-9]{7,15}$"
_PHONE_NUMBER = re.compile(PHONE_NUMBER_PATTERN)
# What a dynamic variable may hold (the OpenAPI's anyOf[string, number, integer, boolean, null]),
# as pydantic names the members of the union in an error's loc.
_DYNAMIC_VARIABLE_MEMBERS = (
    ("str", "string_type", "Input should be a valid string"),
    ("float", "float_type", "Input should be a valid number"),
    ("int", "int_type", "Input should be a valid integer"),
    ("bool", "bool_type", "Input should be a valid boolean"),
)

_BOOL_TRUE = {"1", "on", "t", "true", "y", "yes"}
_BOOL_FALSE = {"0", "off", "f", "false", "n", "no"}


class BodyParseError(SandboxError):
    """A JSON body that is not valid UTF-8: FastAPI answers 400 with a plain message."""

    status_code = 400

    def __init__(self):
        super().__init__("There was an error parsing the body")


def _error(type_: str, loc, msg: str, input_, ctx: dict | None = None) -> dict:
    entry = {"type": type_, "loc": list(loc), "msg": msg, "input": input_}
    if ctx is not None:
        entry["ctx"] = ctx
    return entry


def _missing(loc, input_=None) -> dict:
    return _error("missing", loc, "Field required", input_)


class _Checker:
    """Collects errors while coercing values the way pydantic's lax mode does."""

    def __init__(self):
        self.errors: list[dict] = []

    def string(self, value, loc):
        if isinstance(value, str):
            return value
        self.errors.append(_error("string_type", loc, "Input should be a valid string", value))
        return None

    def integer(self, value, loc, *, ge: int | None = None, le: int | None = None):
        number = self._integer(value, loc)
        if number is None:
            return None
        if ge is not None and number < ge:
            self.errors.append(
                _error("greater_than_equal", loc, f"Input should be greater than or equal to {ge}", value, {"ge": ge})
            )
            return None
        if le is not None and number > le:
            self.errors.append(
                _error("less_than_equal", loc, f"Input should be less than or equal to {le}", value, {"le": le})
            )
            return None
        return number

    def _integer(self, value, loc):
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            if value.is_integer():
                return int(value)
            self.errors.append(
                _error(
                    "int_from_float", loc, "Input should be a valid integer, got a number with a fractional part", value
                )
            )
            return None
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                self.errors.append(
                    _error(
                        "int_parsing",
                        loc,
                        "Input should be a valid integer, unable to parse string as an integer",
                        value,
                    )
                )
                return None
        self.errors.append(_error("int_type", loc, "Input should be a valid integer", value))
        return None

    def boolean(self, value, loc):
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _BOOL_TRUE | _BOOL_FALSE:
            return value.strip().lower() in _BOOL_TRUE
        if isinstance(value, int | str):
            self.errors.append(
                _error("bool_parsing", loc, "Input should be a valid boolean, unable to interpret input", value)
            )
        else:
            self.errors.append(_error("bool_type", loc, "Input should be a valid boolean", value))
        return None

    def pattern(self, value: str, loc, pattern: str, compiled: re.Pattern) -> str | None:
        if compiled.match(value):
            return value
        self.errors.append(
            _error(
                "string_pattern_mismatch", loc, f"String should match pattern '{pattern}'", value, {"pattern": pattern}
            )
        )
        return None

    def value_error(self, value, loc, message: str) -> None:
        """A field validator's ValueError; FastAPI renders the exception in ctx as `{}`."""
        self.errors.append(_error("value_error", loc, f"Value error, {message}", value, {"error": {}}))

    def mapping(self, value, loc):
        if isinstance(value, dict):
            return value
        self.errors.append(_error("dict_type", loc, "Input should be a valid dictionary", value))
        return None

    def model(self, value, loc, class_name: str):
        if isinstance(value, dict):
            return value
        self.errors.append(
            _error(
                "model_type",
                loc,
                f"Input should be a valid dictionary or instance of {class_name}",
                value,
                {"class_name": class_name},
            )
        )
        return None

    def enum(self, value, loc, choices: tuple[str, ...]):
        if value in choices:
            return value
        quoted = [f"'{choice}'" for choice in choices]
        expected = f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
        self.errors.append(_error("enum", loc, f"Input should be {expected}", value, {"expected": expected}))
        return None


# --- Submit a batch call ------------------------------------------------------------------

# The body's fields in the order the server declares (and so reports) them.
SUBMIT_FIELDS = (
    "call_name",
    "agent_id",
    "recipients",
    "scheduled_time_unix",
    "agent_phone_number_id",
    "whatsapp_params",
    "timezone",
    "branch_id",
    "environment",
    "telephony_call_config",
    "target_concurrency_limit",
)
_SUBMIT_REQUIRED = {"call_name", "agent_id", "recipients"}


def submit_body_parse(*, raw: bytes, content_type: str | None) -> object:
    """The request body as FastAPI sees it: parsed JSON, or the raw bytes for other content types."""
    if content_type:
        message = email.message.Message()
        message["content-type"] = content_type
        subtype = message.get_content_subtype()
        if message.get_content_maintype() != "application" or not (subtype == "json" or subtype.endswith("+json")):
            return raw
    if not raw:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [_error("json_invalid", ("body", exc.pos), "JSON decode error", {}, {"error": exc.msg})]
        ) from exc
    except UnicodeDecodeError as exc:
        raise BodyParseError() from exc


def submit_body_validate(body: object) -> dict:
    """The submit body, checked and coerced; raises RequestValidationError like ElevenLabs."""
    check = _Checker()
    clean: dict = {}
    for name in SUBMIT_FIELDS:
        loc = ("body", name)
        if body is not None and not isinstance(body, dict):
            # FastAPI looks every field up in the body: one that is not an object has none.
            check.errors.append(_missing(loc))
            continue
        value = body.get(name) if body is not None else None
        if value is None:
            if name in _SUBMIT_REQUIRED:
                check.errors.append(_missing(loc))
            clean[name] = None
            continue
        clean[name] = _submit_field(check, name, value, loc)
    if check.errors:
        raise RequestValidationError(check.errors)
    return clean


def _submit_field(check: _Checker, name: str, value, loc):
    if name in ("call_name", "agent_id", "agent_phone_number_id", "branch_id", "environment"):
        return check.string(value, loc)
    if name == "timezone":
        return _timezone(check, value, loc)
    if name in ("scheduled_time_unix", "target_concurrency_limit"):
        return check.integer(value, loc)
    if name == "recipients":
        return _recipients(check, value, loc)
    if name == "whatsapp_params":
        return _whatsapp_params(check, value, loc)
    if name == "telephony_call_config":
        return _telephony_call_config(check, value, loc)
    raise AssertionError(name)


def _recipients(check: _Checker, value, loc):
    if not isinstance(value, list):
        check.errors.append(_error("list_type", loc, "Input should be a valid list", value))
        return None
    if not value:
        check.errors.append(
            _error(
                "too_short",
                loc,
                "List should have at least 1 item after validation, not 0",
                value,
                {"field_type": "List", "min_length": 1, "actual_length": 0},
            )
        )
        return None
    if len(value) > MAX_RECIPIENTS:
        check.errors.append(
            _error(
                "too_long",
                loc,
                f"List should have at most {MAX_RECIPIENTS} items after validation, not {len(value)}",
                value,
                {"field_type": "List", "max_length": MAX_RECIPIENTS, "actual_length": len(value)},
            )
        )
        return None
    recipients = []
    for index, item in enumerate(value):
        recipients.append(_recipient(check, item, (*loc, index)))
    return recipients


def _recipient(check: _Checker, item, loc):
    item = check.model(item, loc, "OutboundCallRecipient")
    if item is None:
        return None
    recipient = {}
    for name in ("id", "phone_number", "whatsapp_user_id"):
        value = item.get(name)
        recipient[name] = None if value is None else check.string(value, (*loc, name))
    if recipient["phone_number"] is not None:
        recipient["phone_number"] = check.pattern(
            recipient["phone_number"], (*loc, "phone_number"), PHONE_NUMBER_PATTERN, _PHONE_NUMBER
        )
    if item.get("phone_number") is None and item.get("whatsapp_user_id") is None:
        check.errors.append(_missing((*loc, "phone_number"), item))
    client_data = item.get("conversation_initiation_client_data")
    if client_data is not None:
        client_data = _client_data(check, client_data, (*loc, "conversation_initiation_client_data"))
    recipient["conversation_initiation_client_data"] = client_data
    return recipient


def _client_data(check: _Checker, value, loc):
    value = check.model(value, loc, "ConversationInitiationClientDataRequestInput")
    if value is None:
        return None
    if value.get("conversation_config_override") is not None:
        check.model(
            value["conversation_config_override"],
            (*loc, "conversation_config_override"),
            "ConversationConfigClientOverrideInput",
        )
    if value.get("dynamic_variables") is not None:
        _dynamic_variables(check, value["dynamic_variables"], (*loc, "dynamic_variables"))
    for name in ("user_id", "branch_id", "environment", "starting_workflow_node_id"):
        if value.get(name) is not None:
            check.string(value[name], (*loc, name))
    return value


def _dynamic_variables(check: _Checker, value, loc) -> None:
    """Each value a string, number, boolean or null: pydantic reports a list or an object once per member."""
    if check.mapping(value, loc) is None:
        return
    for name, item in value.items():
        if item is None or isinstance(item, str | int | float):
            continue
        for member, type_, msg in _DYNAMIC_VARIABLE_MEMBERS:
            check.errors.append(_error(type_, (*loc, name, member), msg, item))


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone(check: _Checker, value, loc):
    value = check.string(value, loc)
    if value is None:
        return None
    if value not in _timezones():
        check.value_error(value, loc, f"Invalid timezone: {value}")
        return None
    return value


def _whatsapp_params(check: _Checker, value, loc):
    value = check.model(value, loc, "BatchCallWhatsAppParams")
    if value is None:
        return None
    if value.get("whatsapp_phone_number_id") is not None:
        check.string(value["whatsapp_phone_number_id"], (*loc, "whatsapp_phone_number_id"))
    for name in (
        "whatsapp_call_permission_request_template_name",
        "whatsapp_call_permission_request_template_language_code",
    ):
        if name not in value:
            check.errors.append(_missing((*loc, name), value))
        else:
            check.string(value[name], (*loc, name))
    return value


def _telephony_call_config(check: _Checker, value, loc):
    value = check.model(value, loc, "TelephonyCallConfig")
    if value is None:
        return None
    clean = dict(value)
    if value.get("ringing_timeout_secs") is not None:
        clean["ringing_timeout_secs"] = check.integer(value["ringing_timeout_secs"], (*loc, "ringing_timeout_secs"))
    if value.get("twilio_call_recording_enabled") is not None:
        clean["twilio_call_recording_enabled"] = check.boolean(
            value["twilio_call_recording_enabled"], (*loc, "twilio_call_recording_enabled")
        )
    return clean


# --- Overrides the agent allows ---------------------------------------------------------


def override_fields_refused(override: dict, allowed: dict, prefix: str = "") -> list[str]:
    """The dotted paths set in `override` that the agent's `allowed` tree does not mark True.

    `allowed` mirrors `platform_settings.overrides.conversation_config_override`, e.g.
    `{"agent": {"first_message": True, "prompt": {"prompt": False}}, "tts": {"voice_id": False}}`;
    a field it does not mention is not overridable. A field sent as null overrides nothing.
    """
    refused = []
    for name, value in override.items():
        path = f"{prefix}{name}"
        permission = allowed.get(name)
        if value is None:
            continue
        if isinstance(value, dict):
            nested = permission if isinstance(permission, dict) else {}
            refused.extend(override_fields_refused(value, nested, f"{path}."))
        elif permission is not True:
            refused.append(path)
    return refused


# --- Submit an outbound campaign ----------------------------------------------------------

CAMPAIGN_FIELDS = (
    "call_name",
    "agent_id",
    "recipients",
    "scheduled_time_unix",
    "timezone",
    "branch_id",
    "environment",
    "target_concurrency_limit",
    "idempotency_key",
    "policy",
    "variant",
    "channel_config",
)
_CAMPAIGN_REQUIRED = {"call_name", "agent_id", "recipients", "channel_config"}
CAMPAIGN_VARIANTS = ("simple", "advanced")
_CHANNELS = ("phone", "whatsapp")
INTERVAL_PLACEMENTS = ("start", "random", "rotate")
_RETRY_FIELDS = (
    "retry_delay_seconds",
    "max_short_retries",
    "max_total_calls",
    "max_callbacks",
    "max_redirects",
    "interval_placement",
    "rotate_step_seconds",
    "max_consecutive_failures_per_number",
)
# The least each retry setting may be: a lead gets at least its first call.
_RETRY_MINIMUM = {"max_total_calls": 1}
_DATA_COLLECTION_FIELDS = ("callback_time", "redirect_phone_number", "stop")
_FOLLOWUP_CONTEXT_FIELDS = ("call_type", "previous_conversation_id", "previous_summary", "previous_transcript")
# "HH:MM" from 00:00 to 23:59, or 24:00 for midnight at the end of the day.
CLOCK_TIME_PATTERN = r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"
_CLOCK_TIME = re.compile(CLOCK_TIME_PATTERN)


def clock_minutes(value: str) -> int:
    """Minutes since midnight of an "HH:MM" calling-window bound."""
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def campaign_body_validate(body: object) -> dict:
    """The outbound campaign submit body, checked and coerced; raises RequestValidationError like ElevenLabs."""
    check = _Checker()
    clean: dict = {}
    for name in CAMPAIGN_FIELDS:
        loc = ("body", name)
        if body is not None and not isinstance(body, dict):
            check.errors.append(_missing(loc))
            continue
        value = body.get(name) if body is not None else None
        if value is None:
            if name in _CAMPAIGN_REQUIRED:
                check.errors.append(_missing(loc))
            clean[name] = None
            continue
        clean[name] = _campaign_field(check, name, value, loc)
    if not check.errors and clean["variant"] == "simple" and clean["policy"] is not None:
        # A model validator of the whole body: pydantic reports it at the body itself.
        check.value_error(body, ("body",), "a simple campaign cannot take a policy")
    if check.errors:
        raise RequestValidationError(check.errors)
    return clean


def _campaign_field(check: _Checker, name: str, value, loc):
    if name in ("call_name", "agent_id", "branch_id", "environment", "idempotency_key"):
        return check.string(value, loc)
    if name == "timezone":
        return _timezone(check, value, loc)
    if name == "scheduled_time_unix":
        return check.integer(value, loc)
    if name == "target_concurrency_limit":
        return check.integer(value, loc, ge=1)
    if name == "recipients":
        return _campaign_recipients(check, value, loc)
    if name == "channel_config":
        return _channel_config(check, value, loc)
    if name == "policy":
        return _policy(check, value, loc)
    if name == "variant":
        return check.enum(value, loc, CAMPAIGN_VARIANTS)
    raise AssertionError(name)


def _list(check: _Checker, value, loc, *, min_length: int | None = None, max_length: int | None = None):
    if not isinstance(value, list):
        check.errors.append(_error("list_type", loc, "Input should be a valid list", value))
        return None
    if min_length is not None and len(value) < min_length:
        check.errors.append(
            _error(
                "too_short",
                loc,
                f"List should have at least {min_length} item after validation, not {len(value)}",
                value,
                {"field_type": "List", "min_length": min_length, "actual_length": len(value)},
            )
        )
        return None
    if max_length is not None and len(value) > max_length:
        check.errors.append(
            _error(
                "too_long",
                loc,
                f"List should have at most {max_length} items after validation, not {len(value)}",
                value,
                {"field_type": "List", "max_length": max_length, "actual_length": len(value)},
            )
        )
        return None
    return value


def _campaign_recipients(check: _Checker, value, loc):
    value = _list(check, value, loc, min_length=1, max_length=MAX_RECIPIENTS)
    if value is None:
        return None
    return [_campaign_recipient(check, item, (*loc, index)) for index, item in enumerate(value)]


def _campaign_recipient(check: _Checker, item, loc):
    item = check.model(item, loc, "SubmitCampaignRecipient")
    if item is None:
        return None
    recipient = {}
    for name in ("id", "phone_number", "whatsapp_user_id"):
        value = item.get(name)
        recipient[name] = None if value is None else check.string(value, (*loc, name))
    if recipient["phone_number"] is not None:
        recipient["phone_number"] = check.pattern(
            recipient["phone_number"], (*loc, "phone_number"), PHONE_NUMBER_PATTERN, _PHONE_NUMBER
        )
    if item.get("phone_number") is None and item.get("whatsapp_user_id") is None:
        check.errors.append(_missing((*loc, "phone_number"), item))
    numbers = item.get("phone_numbers")
    if numbers is not None:
        numbers = _list(check, numbers, (*loc, "phone_numbers"))
        if numbers is not None:
            for index, number in enumerate(numbers):
                number_loc = (*loc, "phone_numbers", index)
                if check.string(number, number_loc) is not None:
                    check.pattern(number, number_loc, PHONE_NUMBER_PATTERN, _PHONE_NUMBER)
    recipient["phone_numbers"] = numbers
    client_data = item.get("conversation_initiation_client_data")
    if client_data is not None:
        client_data = _client_data(check, client_data, (*loc, "conversation_initiation_client_data"))
    recipient["conversation_initiation_client_data"] = client_data
    return recipient


def _channel_config(check: _Checker, value, loc):
    """A union tagged by `channel`: pydantic puts the tag in the loc of a variant's errors."""
    if not isinstance(value, dict):
        check.errors.append(
            _error(
                "model_attributes_type",
                loc,
                "Input should be a valid dictionary or object to extract fields from",
                value,
            )
        )
        return None
    if "channel" not in value:
        check.errors.append(
            _error(
                "union_tag_not_found",
                loc,
                "Unable to extract tag using discriminator 'channel'",
                value,
                {"discriminator": "'channel'"},
            )
        )
        return None
    channel = value["channel"]
    if channel not in _CHANNELS:
        expected = ", ".join(f"'{tag}'" for tag in _CHANNELS)
        check.errors.append(
            _error(
                "union_tag_invalid",
                loc,
                f"Input tag '{channel}' found using 'channel' does not match any of the expected tags: {expected}",
                value,
                {"discriminator": "'channel'", "tag": str(channel), "expected_tags": expected},
            )
        )
        return None
    loc = (*loc, channel)
    number_field = "agent_phone_number_id" if channel == "phone" else "whatsapp_phone_number_id"
    clean = {"channel": channel, number_field: None, "mode_config": None}
    if value.get(number_field) is None:
        check.errors.append(_missing((*loc, number_field), value))
    else:
        clean[number_field] = check.string(value[number_field], (*loc, number_field))
    mode_config = value.get("mode_config")
    if channel == "phone" and mode_config is not None:
        clean["mode_config"] = _phone_voice_config(check, mode_config, (*loc, "mode_config"))
    elif channel == "whatsapp":
        if mode_config is None:
            check.errors.append(_missing((*loc, "mode_config"), value))
        else:
            clean["mode_config"] = check.mapping(mode_config, (*loc, "mode_config"))
    return clean


def _phone_voice_config(check: _Checker, value, loc):
    value = check.model(value, loc, "PhoneVoiceConfigInput")
    if value is None:
        return None
    clean = {}
    if value.get("ringing_timeout_secs") is not None:
        clean["ringing_timeout_secs"] = check.integer(value["ringing_timeout_secs"], (*loc, "ringing_timeout_secs"))
    if value.get("twilio_call_recording_enabled") is not None:
        clean["twilio_call_recording_enabled"] = check.boolean(
            value["twilio_call_recording_enabled"], (*loc, "twilio_call_recording_enabled")
        )
    if value.get("twilio_machine_detection") is not None:
        clean["twilio_machine_detection"] = check.model(
            value["twilio_machine_detection"], (*loc, "twilio_machine_detection"), "TwilioMachineDetectionConfig"
        )
    if value.get("mode") is not None:
        clean["mode"] = check.enum(value["mode"], (*loc, "mode"), ("voice",))
    return clean


def _policy(check: _Checker, value, loc):
    """`PolicyConfigInput`: only the sections sent; the campaign fills the rest from the workspace's."""
    value = check.model(value, loc, "PolicyConfigInput")
    if value is None:
        return None
    clean = {}
    if value.get("timezone") is not None:
        clean["timezone"] = _timezone(check, value["timezone"], (*loc, "timezone"))
    if value.get("retry") is not None:
        clean["retry"] = _retry_policy(check, value["retry"], (*loc, "retry"))
    if value.get("calling_periods") is not None:
        clean["calling_periods"] = _calling_periods(check, value["calling_periods"], (*loc, "calling_periods"))
    if value.get("data_collection") is not None:
        clean["data_collection"] = _data_collection(check, value["data_collection"], (*loc, "data_collection"))
    if value.get("followup_context") is not None:
        section = check.model(value["followup_context"], (*loc, "followup_context"), "FollowupContextPolicy")
        if section is not None:
            clean["followup_context"] = {
                name: check.boolean(section[name], (*loc, "followup_context", name))
                for name in _FOLLOWUP_CONTEXT_FIELDS
                if section.get(name) is not None
            }
    return clean


def _retry_policy(check: _Checker, value, loc):
    value = check.model(value, loc, "RetryPolicy")
    if value is None:
        return None
    clean = {}
    for name in _RETRY_FIELDS:
        if value.get(name) is None:
            continue
        if name == "interval_placement":
            clean[name] = check.enum(value[name], (*loc, name), INTERVAL_PLACEMENTS)
        else:
            clean[name] = check.integer(value[name], (*loc, name), ge=_RETRY_MINIMUM.get(name, 0))
    return clean


def _calling_periods(check: _Checker, value, loc):
    value = _list(check, value, loc)
    if value is None:
        return None
    periods = []
    for index, item in enumerate(value):
        period_loc = (*loc, index)
        item = check.model(item, period_loc, "CallingPeriod")
        if item is None:
            continue
        period = {"weekdays": _weekdays(check, item, period_loc), "intervals": _intervals(check, item, period_loc)}
        periods.append(period)
    if not check.errors:
        _overlaps_check(check, periods, value, loc)
    return periods


def _weekdays(check: _Checker, item: dict, loc):
    if "weekdays" not in item:
        check.errors.append(_missing((*loc, "weekdays"), item))
        return None
    weekdays = _list(check, item["weekdays"], (*loc, "weekdays"))
    if weekdays is None:
        return None
    clean = []
    for index, day in enumerate(weekdays):
        clean.append(check.integer(day, (*loc, "weekdays", index), ge=0, le=6))
    return clean


def _intervals(check: _Checker, item: dict, loc):
    if "intervals" not in item:
        check.errors.append(_missing((*loc, "intervals"), item))
        return None
    intervals = _list(check, item["intervals"], (*loc, "intervals"))
    if intervals is None:
        return None
    clean = []
    for index, interval in enumerate(intervals):
        interval_loc = (*loc, "intervals", index)
        interval = check.model(interval, interval_loc, "CallingIntervalPolicy")
        if interval is None:
            continue
        bounds = {}
        for name in ("start", "end"):
            if name not in interval:
                check.errors.append(_missing((*interval_loc, name), interval))
                continue
            text = check.string(interval[name], (*interval_loc, name))
            if text is not None:
                bounds[name] = check.pattern(text, (*interval_loc, name), CLOCK_TIME_PATTERN, _CLOCK_TIME)
        if bounds.get("start") and bounds.get("end"):
            if clock_minutes(bounds["start"]) >= clock_minutes(bounds["end"]):
                check.value_error(interval, interval_loc, "an interval must end after it starts")
            clean.append(bounds)
    return clean


def _overlaps_check(check: _Checker, periods: list[dict], value, loc) -> None:
    """Windows may not overlap on any day, within a period or across periods."""
    by_day: dict[int, list[tuple[int, int]]] = {}
    for period in periods:
        for day in set(period["weekdays"]):
            for interval in period["intervals"]:
                by_day.setdefault(day, []).append((clock_minutes(interval["start"]), clock_minutes(interval["end"])))
    for day, spans in sorted(by_day.items()):
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            if start < end:
                check.value_error(value, loc, f"calling windows overlap on weekday {day}")
                return


def _data_collection(check: _Checker, value, loc):
    """Each item an item ID, or null to turn it off: a field sent as null is kept, unlike elsewhere."""
    value = check.model(value, loc, "DataCollectionConfig")
    if value is None:
        return None
    clean = {}
    for name in _DATA_COLLECTION_FIELDS:
        if name in value:
            clean[name] = None if value[name] is None else check.string(value[name], (*loc, name))
    if value.get("mappings") is not None:
        mappings = check.mapping(value["mappings"], (*loc, "mappings"))
        if mappings is not None:
            for key, item in mappings.items():
                check.string(item, (*loc, "mappings", key))
            clean["mappings"] = mappings
    return clean


# --- Query strings ------------------------------------------------------------------------


class QueryParams:
    """Reads query parameters; `done()` raises every error found at once, as FastAPI does."""

    def __init__(self, query):
        self._query = query
        self._check = _Checker()

    def string(self, name: str) -> str | None:
        return self._query.get(name)

    def integer(self, name: str, *, default: int, ge: int | None = None, le: int | None = None) -> int:
        if name not in self._query:
            return default
        value = self._check.integer(self._query[name], ("query", name), ge=ge, le=le)
        return default if value is None else value

    def boolean(self, name: str) -> bool | None:
        if name not in self._query:
            return None
        return self._check.boolean(self._query[name], ("query", name))

    def enum(self, name: str, choices: tuple[str, ...]) -> str | None:
        if name not in self._query:
            return None
        return self._check.enum(self._query[name], ("query", name), choices)

    def enum_list(self, name: str, choices: tuple[str, ...]) -> list[str] | None:
        """A parameter that may repeat (`?status=a&status=b`); pydantic locates errors by index."""
        if name not in self._query:
            return None
        values = self._query.getlist(name)
        return [self._check.enum(value, ("query", name, index), choices) for index, value in enumerate(values)]

    def done(self) -> None:
        if self._check.errors:
            raise RequestValidationError(self._check.errors)
