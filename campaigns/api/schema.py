"""The OpenAPI document: the view that serves it, and the tweaks that make it tell the truth."""

import threading

from drf_spectacular.views import SpectacularJSONAPIView
from rest_framework.response import Response

from .pagination import MAX_PAGE_SIZE, PAGE_SIZE


class SchemaView(SpectacularJSONAPIView):
    """The document, built once per process and served from memory after that: it changes only
    with the code, and drf-spectacular's first build is not safe in two threads at once (its
    extensions load lazily, and a second thread can read one half-loaded: a 500)."""

    _lock = threading.Lock()
    _built: Response | None = None

    def _get_schema_response(self, request):
        with SchemaView._lock:
            if SchemaView._built is None:
                SchemaView._built = super()._get_schema_response(request)
            built = SchemaView._built
        return Response(built.data, headers={"Content-Disposition": built["Content-Disposition"]})


def documented_paths(endpoints):
    """Show paths as documented (`/api/v1/campaigns`): the optional trailing slash is a courtesy."""
    return [(path.rstrip("/") or path, regex, method, callback) for path, regex, method, callback in endpoints]


HTTP_METHODS = ("get", "post", "put", "patch", "delete")
STATUS = {
    "type": "object",
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
    "required": ["code", "message"],
}
PAGINATION = {
    "type": "object",
    "properties": {
        "page": {"type": "integer"},
        "page_size": {"type": "integer"},
        "total": {"type": "integer"},
        "pages": {"type": "integer"},
        "next": {"type": "string", "nullable": True},
        "previous": {"type": "string", "nullable": True},
    },
    "required": ["page", "page_size", "total", "pages", "next", "previous"],
}
ERROR_ENVELOPE = {
    "type": "object",
    "properties": {
        "status": {"$ref": "#/components/schemas/Status"},
        "error": {"type": "string", "description": "One-line summary."},
        "errors": {"type": "array", "items": {"type": "string"}, "description": "Each problem."},
        "details": {"nullable": True, "description": "More about the problem (e.g. the field)."},
    },
    "required": ["status", "error", "errors", "details"],
}
PAGE_PARAMETERS = [
    {
        "name": "page",
        "in": "query",
        "required": False,
        "description": "Which page, from 1.",
        "schema": {"type": "integer", "minimum": 1, "default": 1},
    },
    {
        "name": "page_size",
        "in": "query",
        "required": False,
        "description": f"Entries a page, at most {MAX_PAGE_SIZE}.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": PAGE_SIZE},
    },
]
# Ids in paths are whole numbers (the URL patterns take any segment, to answer 404 in the
# envelope); the others are strings: an ElevenLabs agent or conversation id, a phone number.
INTEGER_PATH_PARAMETERS = {"campaign_id", "recipient_id", "api_key_id", "endpoint_id", "erasure_id"}
# What a created thing's answer lets a client do next (OpenAPI links; generated clients and
# Schemathesis' stateful phase follow them).
CAMPAIGN_ID = {"campaign_id": "$response.body#/data/id"}
LINKS = {
    ("/api/v1/campaigns", "post", "201"): {
        "GetCampaign": ("campaigns_retrieve", CAMPAIGN_ID),
        "ListRecipients": ("campaigns_recipients_list", CAMPAIGN_ID),
        "CancelCampaign": ("campaigns_cancel_create", CAMPAIGN_ID),
        "PauseCampaign": ("campaigns_pause_create", CAMPAIGN_ID),
        "ResumeCampaign": ("campaigns_resume_create", CAMPAIGN_ID),
        "RetryCampaign": ("campaigns_retry_create", CAMPAIGN_ID),
    },
    ("/api/v1/api_keys", "post", "201"): {
        "RenameApiKey": ("api_keys_rename", {"api_key_id": "$response.body#/data/id"}),
        "RevokeApiKey": ("api_keys_revoke", {"api_key_id": "$response.body#/data/id"}),
    },
    ("/api/v1/webhook_endpoints", "post", "201"): {
        "DeleteWebhookEndpoint": ("webhook_endpoints_delete", {"endpoint_id": "$response.body#/data/id"}),
    },
    ("/api/v1/erasures", "post", "201"): {
        "GetErasure": ("erasures_retrieve", {"erasure_id": "$response.body#/data/id"}),
    },
    ("/api/v1/suppressions", "post", "201"): {
        "RemoveSuppression": ("suppressions_remove", {"phone_number": "$response.body#/data/phone_number"}),
    },
}
# A request body each operation takes, as a client would send it.
RECIPIENTS_CSV = (
    "phone_number,first_name,appointment\n+14155550123,Ada,Tuesday 10:00\n+442071838750,Alan,Friday 15:30\n"
)
REQUEST_EXAMPLES = {
    "campaigns_create": {
        "multipart/form-data": {
            "name": "March appointment reminders",
            "phone_number_id": 1,
            "agent_id": "agent_abc123",
            "recipients_file": RECIPIENTS_CSV,
            "send_immediately": False,
            "schedule_date": "2027-03-04",
            "schedule_time": "09:30:00",
            "timezone": "America/New_York",
            "calling_hours": "09:00-20:00",
            "calling_days": "mon-fri",
            "max_attempts": "3",
            "retry_delay_minutes": "60",
        }
    },
    "suppressions_add": {
        "application/json": {"phone_number": "+14155550123", "reason": "Asked not to be called again"},
        "multipart/form-data": {"file": "phone_number\n+14155550123\n+442071838750\n", "reason": "CRM opt-outs"},
    },
    "erasures_create": {"application/json": {"phone_number": "+14155550199"}},
    "api_keys_create": {"application/json": {"api_key": {"name": "CRM sync"}}},
    "api_keys_rename": {"application/json": {"api_key": {"name": "CRM sync (production)"}}},
    "webhook_endpoints_create": {
        "application/json": {
            "url": "https://crm.example.com/hooks/voiceable",
            "events": ["campaign.status_changed", "recipient.call_finished"],
        }
    },
}
# What any operation of the API can answer, besides its own statuses.
COMMON_ERRORS = {
    "401": "No API key, or a wrong or revoked one (429 past the limit of requests with a bad key).",
    "429": "Past the rate limit: `Retry-After` says when to try again.",
}


def envelope_documented(result, generator, request, public):
    """Document every answer as it is sent: 2xx JSON bodies inside the envelope (`status`, `data`,
    and `pagination` for lists), every error in the error envelope, and the errors any operation
    can answer (401, 429; 404 for a path with an id or a page past the last; 422 for a body or a
    query). One key is enough: `X-API-Key` or `Authorization: Bearer`, either of the two."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update({"Status": STATUS, "Pagination": PAGINATION, "ErrorEnvelope": ERROR_ENVELOPE})
    error_body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    for path, item in result.get("paths", {}).items():
        if not path.startswith("/api/v1/") or path.endswith(("/openapi.json", "/docs")):
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            _security_alternatives(operation)
            for media_type, example in REQUEST_EXAMPLES.get(operation.get("operationId"), {}).items():
                operation["requestBody"]["content"][media_type]["example"] = example
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter["name"] in INTEGER_PATH_PARAMETERS:
                    parameter["schema"] = {"type": "integer", "minimum": 1}
            responses = operation.setdefault("responses", {})
            for code, response in responses.items():
                content = response.get("content", {})
                if code.startswith("2"):
                    for body in content.values():
                        body["schema"] = _enveloped(body.get("schema"), listing=method == "get")
                elif code[0] in "45":
                    response["content"] = error_body
            wanted = dict(COMMON_ERRORS)
            if "{" in path:
                wanted["404"] = "Nothing of yours has this id (another user's answers the same)."
            if _paginated(responses):
                names = {parameter["name"] for parameter in PAGE_PARAMETERS}
                others = [p for p in operation.get("parameters", []) if p.get("name") not in names]
                operation["parameters"] = [*others, *PAGE_PARAMETERS]
                wanted["404"] = " ".join(filter(None, [wanted.get("404"), "A page past the last one."]))
            if any(parameter.get("in") == "query" for parameter in operation.get("parameters", [])):
                wanted["422"] = "A query parameter is wrong; the message names it."
            if method in ("post", "put", "patch") and "requestBody" in operation:
                wanted["400"] = "The body could not be read: not JSON, or a broken multipart form."
                wanted["415"] = "The body is not of a type this operation reads (see its request body)."
                wanted["422"] = "A field is missing or wrong; the message names it."
            for code, description in wanted.items():
                responses.setdefault(code, {"description": description, "content": error_body})
    _links_documented(result)
    return result


def _links_documented(result) -> None:
    operation_ids = {
        operation.get("operationId")
        for item in result.get("paths", {}).values()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }
    for (path, method, code), links in LINKS.items():
        response = result["paths"][path][method]["responses"][code]
        for name, (operation_id, parameters) in links.items():
            if operation_id not in operation_ids:
                raise ValueError(f"Link {name} names no operation: {operation_id}")
            response.setdefault("links", {})[name] = {"operationId": operation_id, "parameters": parameters}


# Text fields refuse NUL characters, and trim spaces before checking a required one is not empty.
NO_NUL = "^[^\\u0000]*$"
NOT_BLANK = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"


def text_fields_documented(result, generator, request, public):
    """Say in every request body what the API checks of its text fields: no NUL, and for a
    required one, more than spaces."""
    for name, schema in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request"):
            for field in schema.get("properties", {}).values():
                _text_pattern(field.get("items", field) if field.get("type") == "array" else field)
    return result


def _text_pattern(field) -> None:
    if field.get("type") != "string" or "format" in field or "enum" in field or "pattern" in field:
        return
    field["pattern"] = NOT_BLANK if field.get("minLength", 0) >= 1 else NO_NUL


def _security_alternatives(operation) -> None:
    # drf-spectacular lists one authentication class's schemes in one requirement, which means
    # "all of them"; a key in either header is enough, so each scheme is its own requirement.
    operation["security"] = [
        {name: scopes} for requirement in operation.get("security", []) for name, scopes in requirement.items()
    ]


def _paginated(responses) -> bool:
    for body in responses.get("200", {}).get("content", {}).values():
        if "pagination" in (body.get("schema") or {}).get("properties", {}):
            return True
    return False


def _enveloped(schema, *, listing: bool):
    if not schema or _is_envelope(schema):
        return schema
    wrapped = {
        "type": "object",
        "properties": {"status": {"$ref": "#/components/schemas/Status"}, "data": schema},
        "required": ["status", "data"],
    }
    if listing and schema.get("type") == "array":
        wrapped["properties"]["pagination"] = {"$ref": "#/components/schemas/Pagination"}
        wrapped["required"].append("pagination")
    return wrapped


def _is_envelope(schema) -> bool:
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    return properties.get("status", {}).get("$ref") == "#/components/schemas/Status"
