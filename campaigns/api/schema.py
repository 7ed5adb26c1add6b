"""OpenAPI document tweaks."""


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
# What any operation of the API can answer, besides its own statuses.
COMMON_ERRORS = {
    "401": "No API key, or a wrong or revoked one (429 past the limit of requests with a bad key).",
    "429": "Past the rate limit: `Retry-After` says when to try again.",
}


def envelope_documented(result, generator, request, public):
    """Document every answer as it is sent: 2xx JSON bodies inside the envelope (`status`, `data`,
    and `pagination` for lists), every error in the error envelope, and the errors any operation
    can answer (401, 429; 404 for a path with an id; 422 for a body)."""
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
            if method in ("post", "put", "patch") and "requestBody" in operation:
                wanted["422"] = "A field is missing or wrong; the message names it."
            for code, description in wanted.items():
                responses.setdefault(code, {"description": description, "content": error_body})
    return result


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
