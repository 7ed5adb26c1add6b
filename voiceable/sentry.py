"""Error reporting to Sentry, only when SENTRY_DSN is set: settings imports this module then,
so without it sentry-sdk is never imported and nothing is sent anywhere."""

from __future__ import annotations

from urllib.parse import unquote_plus

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration

from voiceable.logs import PHONE_NUMBER, phone_numbers_hidden

# Headers that carry a credential: never sent, whatever sentry-sdk's own defaults are.
SECRET_HEADERS = {"x-api-key", "authorization", "cookie", "elevenlabs-signature", "xi-api-key", "webhook-signature"}
HIDDEN = "[hidden]"


def init(*, dsn: str, environment: str, release: str | None, traces_sample_rate: float) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        traces_sample_rate=traces_sample_rate,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        # No user, address, cookies or bodies: a request body may hold a recipients file or a
        # call's transcript (ElevenLabs' webhooks).
        send_default_pii=False,
        max_request_body_size="never",
        before_send=before_send,
        before_send_transaction=before_send,
    )


def before_send(event: dict, hint: dict | None = None) -> dict:
    """The event with every phone-number-like string hidden and the credential headers dropped."""
    request = event.get("request")
    if isinstance(request, dict) and isinstance(request.get("headers"), dict):
        request["headers"] = {
            name: HIDDEN if name.lower() in SECRET_HEADERS else value for name, value in request["headers"].items()
        }
    return _scrubbed(event)


def _hidden(text: str) -> str:
    hidden = phone_numbers_hidden(text)
    # A query string or URL writes a number %-encoded, its spaces as +: "to=%2B1+415+555+0123".
    decoded = unquote_plus(hidden)
    return phone_numbers_hidden(decoded) if PHONE_NUMBER.search(decoded) else hidden


def _scrubbed(value):
    if isinstance(value, str):
        return _hidden(value)
    if isinstance(value, dict):
        return {key: _scrubbed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(item) for item in value]
    return value
