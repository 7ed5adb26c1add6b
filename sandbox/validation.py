"""Request validation that fails the way ElevenLabs' FastAPI server does.

ElevenLabs validates bodies and query strings with pydantic v2 and answers 422 with
`{"detail": [{"type", "loc", "msg", "input", ["ctx"]}, ...]}`. This module checks the same
fields with the same lax coercions and produces the same error entries, without pydantic.
"""

import email.message
import functools
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

    def done(self) -> None:
        if self._check.errors:
            raise RequestValidationError(self._check.errors)
