"""One exception handler: every error the API returns comes out in the error envelope."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from campaigns.errors import ApplicationError

from .envelope import error_body

logger = logging.getLogger(__name__)

# Titles for the envelope's status.message, by HTTP code.
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Validation error",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}

# The database cannot be reached (down, restarting, connection lost) or gave up on a
# transient conflict: the client should try again, it did nothing wrong and nothing is broken.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
DATABASE_UNAVAILABLE_ERROR = "The service is temporarily unavailable. Please try again in a moment."


def _flatten(detail, prefix: str = "") -> list[str]:
    """DRF's nested error detail as readable lines: 'name: This field is required.'"""
    if isinstance(detail, dict):
        lines = []
        for key, value in detail.items():
            # A nested object's own errors keep the name of the field that holds it.
            lines.extend(_flatten(value, prefix if key == "non_field_errors" else f"{prefix}{key}: "))
        return lines
    if isinstance(detail, list):
        return [line for item in detail for line in _flatten(item, prefix)]
    return [f"{prefix}{detail}"]


def _validation_response(exc: drf.ValidationError) -> tuple[int, str, list[str], object]:
    errors = _flatten(exc.detail)
    details = exc.detail if isinstance(exc.detail, dict) else None
    return 422, errors[0] if errors else "The request is not valid.", errors, details


def exception_handler(exc, context):
    headers = {}
    if isinstance(exc, ApplicationError):
        code, error, errors, details = exc.status_code, exc.error, exc.errors, exc.details
        body = error_body(code=code, message=exc.title, error=error, errors=errors, details=details)
        return Response(body, status=code)

    if isinstance(exc, drf.ValidationError):
        code, error, errors, details = _validation_response(exc)
    elif isinstance(exc, drf.ParseError):
        code, error, errors, details = 400, f"The request body could not be read: {exc.detail}", None, None
    elif isinstance(exc, drf.APIException):
        code, details = exc.status_code, None
        error = str(exc.detail) if not isinstance(exc.detail, (list, dict)) else _flatten(exc.detail)[0]
        errors = None
        if isinstance(exc, drf.Throttled):
            error = f"Too many requests. Try again in {exc.wait:.0f} seconds." if exc.wait else error
            if exc.wait:
                headers["Retry-After"] = str(int(exc.wait))
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
    elif isinstance(exc, Http404):
        code, error, errors, details = 404, "Not found.", None, None
    elif isinstance(exc, DjangoPermissionDenied):
        code, error, errors, details = 403, "You do not have permission to do this.", None, None
    elif isinstance(exc, RequestDataTooBig):
        code, error, errors, details = 413, "The request is too large.", None, None
    elif isinstance(exc, SuspiciousOperation):
        code, error, errors, details = 400, "The request could not be processed.", None, None
    elif isinstance(exc, DATABASE_UNAVAILABLE):
        database_unavailable_log(exc)
        code, error, errors, details = 503, DATABASE_UNAVAILABLE_ERROR, None, None
    else:
        logger.exception("Unhandled error in API view", exc_info=exc)
        code, error, errors, details = 500, "Something went wrong on our side. Please try again.", None, None

    body = error_body(code=code, message=TITLES.get(code, "Error"), error=error, errors=errors, details=details)
    return Response(body, status=code, headers=headers)


def database_unavailable_log(exc: Exception) -> None:
    logger.warning("Answered 503, the database is unavailable: %s: %s", type(exc).__name__, exc)


def json_error(code: int, error: str) -> JsonResponse:
    """An error envelope outside DRF (Django's own 404/500 handlers)."""
    return JsonResponse(error_body(code=code, message=TITLES.get(code, "Error"), error=error), status=code)
