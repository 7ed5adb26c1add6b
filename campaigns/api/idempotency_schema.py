"""OpenAPI: the Idempotency-Key header every POST accepts, and the answers it can cause.

A postprocessing hook rather than per-view annotations: ApiView handles the header for every
POST, so every POST operation of the document declares it, including views added later.
"""

from .idempotency import HEADER, KEPT_FOR, REPLAYED_HEADER

KEPT_HOURS = int(KEPT_FOR.total_seconds() // 3600)

PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "description": (
        "Any unique string (a UUID): send the request again with the same key after a timeout or a "
        f"lost connection, and it runs once. Its answer (errors too, 5xx excepted) is kept for {KEPT_HOURS} "
        f"hours and sent again with `{REPLAYED_HEADER}: true`."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]([ -~]*[!-~])?$"},
}

ANSWERS = {
    "400": f"`{HEADER}` is not 1 to 255 printable ASCII characters.",
    "409": f"A request with this `{HEADER}` is still being processed: try again in a moment for its answer. "
    "With `details.state` `abandoned`, it stopped mid-request and may have taken effect: check, then use a new key.",
    "422": f"This `{HEADER}` was already used for a different request (method, path or body), or the input "
    "is not valid.",
}


def idempotency_key_documented(result, generator, request, public):
    for path_item in result.get("paths", {}).values():
        operation = path_item.get("post")
        if operation is None:
            continue
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("in") == "header" and p.get("name") == HEADER for p in parameters):
            parameters.append(dict(PARAMETER))
        responses = operation.setdefault("responses", {})
        for code, description in ANSWERS.items():
            # A view's own description of the code stays; the header's reason is added to it.
            answer = responses.setdefault(code, {"description": ""})
            answer["description"] = " ".join(filter(None, [answer.get("description"), description]))
        for code, answer in responses.items():
            if code.startswith("2"):
                answer.setdefault("headers", {})[REPLAYED_HEADER] = {
                    "description": "`true` when this is the kept answer to an earlier request with the same key.",
                    "schema": {"type": "string", "enum": ["true"]},
                }
    return result
