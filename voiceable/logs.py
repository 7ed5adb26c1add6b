"""Logs an operator can search: one JSON object per line, with what the line is about.

The context (the request, the Celery task, the campaign and batch at hand) lives in
contextvars: the request id middleware, Celery's task signals and `log_context()` set it, and
every record logged meanwhile carries it, whichever module logged it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import traceback
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

# Fields a record may carry, in the order they are written.
CONTEXT_FIELDS = (
    "request_id",
    "task",
    "task_id",
    "campaign_id",
    "batch_id",
    "elevenlabs_batch_id",
    "upstream_request_id",
)

_context: contextvars.ContextVar[dict] = contextvars.ContextVar("log_context", default={})  # noqa: B039 - never mutated


def context() -> dict:
    """The fields every record logged now carries."""
    return _context.get()


def context_push(**fields) -> contextvars.Token:
    """Add `fields` (None values are left out) to the context; `context_pop(token)` undoes it."""
    known = {name: value for name, value in fields.items() if value is not None}
    return _context.set({**_context.get(), **known})


def context_pop(token: contextvars.Token) -> None:
    _context.reset(token)


@contextlib.contextmanager
def log_context(**fields) -> Iterator[None]:
    """Within the block, every record carries `fields` too: `with log_context(campaign_id=7): ...`."""
    token = context_push(**fields)
    try:
        yield
    finally:
        context_pop(token)


# --- What is never logged ------------------------------------------------------------------

# A phone number as a person or a file writes it: a + or 00 and 8 to 15 digits, maybe grouped by
# spaces, dots, dashes or brackets. Ids (numbers, uuids, ElevenLabs' ids) never start with +.
PHONE_NUMBER = re.compile(r"(?<![\w+])(?:\+|00)[1-9](?:[\s.()-]{0,2}\d){7,14}(?!\d)")
PHONE_NUMBER_HIDDEN = "[phone number]"


def phone_numbers_hidden(text: str) -> str:
    return PHONE_NUMBER.sub(PHONE_NUMBER_HIDDEN, text)


# --- The JSON formatter ----------------------------------------------------------------------


def _utc(created: float) -> str:
    return datetime.fromtimestamp(created, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: timestamp (UTC, ISO 8601), level, logger,
    message, the context fields that are known, and an exception's type and traceback.

    Written here rather than taken from a library: it is a few lines, and the fields, their
    names and the scrubbing of phone numbers are exactly what the README promises.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": phone_numbers_hidden(record.getMessage()),
        }
        fields = context()
        if "request_id" not in fields:
            # Django logs an error answer (django.request) once the middleware is done; the
            # record carries the request, and the request its id.
            request_id = getattr(getattr(record, "request", None), "request_id", None)
            fields = {**fields, "request_id": request_id} if isinstance(request_id, str) else fields
        for name in CONTEXT_FIELDS:
            # A field passed with `extra=` wins over the context's.
            value = getattr(record, name, None)
            if value is None:
                value = fields.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            kind, error, trace = record.exc_info
            qualified = f"{kind.__module__}.{kind.__qualname__}"
            entry["exc_type"] = kind.__name__ if kind.__module__ == "builtins" else qualified
            entry["exc_message"] = phone_numbers_hidden(str(error))
            entry["traceback"] = phone_numbers_hidden("".join(traceback.format_exception(kind, error, trace)))
        elif record.exc_text:
            entry["traceback"] = phone_numbers_hidden(record.exc_text)
        if record.stack_info:
            entry["stack"] = record.stack_info
        # ensure_ascii off: a message stays searchable as written; json escapes every newline.
        return json.dumps(entry, ensure_ascii=False, default=str)


# --- Request ids -----------------------------------------------------------------------------

REQUEST_ID_HEADER = "X-Request-ID"
# What a proxy or a client may send as a request id: a short token, no spaces nor control
# characters (it is written into every log line and echoed in a header).
REQUEST_ID = re.compile(r"[A-Za-z0-9._~:/+=@-]{1,128}")


def request_id_accepted(value: str | None) -> str | None:
    """`value` when it is a sane request id, else None."""
    if value and REQUEST_ID.fullmatch(value):
        return value
    return None


class RequestIdMiddleware:
    """Every request gets an id: the incoming X-Request-ID when it is a sane token, else a new
    one. It is in the context of every record logged while the request is served, and sent
    back in the answer's X-Request-ID, so a client can quote it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_accepted(request.headers.get(REQUEST_ID_HEADER)) or uuid.uuid4().hex
        request.request_id = request_id
        token = context_push(request_id=request_id)
        try:
            response = self.get_response(request)
        finally:
            context_pop(token)
        response[REQUEST_ID_HEADER] = request_id
        return response
