"""HTTP client for the ElevenLabs Agents Platform: batch calling, outbound campaigns, conversations,
agents and phone numbers.

One method per endpoint, typed errors, lenient parsing. The wire format is ElevenLabs' API
reference and the official Python SDK's models (``elevenlabs`` on PyPI). The client cannot
tell the real API from the sandbox app: both are reached through ``base_url``.

Errors are transient (``ElevenLabsError.retryable``) as ElevenLabs' own SDK classifies them:
transport errors, 408, 409, 429 and 5xx, plus 425 Too Early, which says the same. Everything
else (400, 401, 403, 404, 422, other 4xx, malformed bodies) will fail again if repeated.

Retries: GET requests are retried on every transient error, waiting as long as ``Retry-After``
asks or else backing off exponentially. POST and DELETE requests (submit, cancel, retry, pause,
resume, stop, removing a lead) never are, because one that timed out or failed with a 5xx may
still have created or changed a batch or campaign; the caller reconciles (the batch list, or an
outbound campaign's idempotency key) before sending again.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from campaigns.metrics import elevenlabs_error_counted

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (5, 30)
MAX_BACKOFF_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 60.0
AGENTS_PAGE_SIZE = 100
AUDIO_CHUNK_BYTES = 64 * 1024
_MESSAGE_LIMIT = 300

BATCH_CALLING = "/v1/convai/batch-calling"
OUTBOUND_CAMPAIGNS = "/v1/convai/outbound-campaigns/campaigns"


# --- Errors ---------------------------------------------------------------------------------


class ElevenLabsError(Exception):
    """Any failure talking to ElevenLabs.

    ``status_code`` is the HTTP status (None when no answer came back), ``message`` is
    ElevenLabs' own explanation made readable, ``detail`` the parsed ``detail`` of the error
    body and ``code`` its machine-readable status/code (e.g. ``"invalid_api_key"``).
    ``retry_after`` is the wait in seconds the answer asked for (``Retry-After`` or
    ``retry-after-ms``; a 503 may carry it as well as a 429), None when it asked for none.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        detail: object = None,
        code: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.detail = detail
        self.code = code
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later: any ``ElevenLabsTransientError``."""
        return isinstance(self, ElevenLabsTransientError)

    def __str__(self) -> str:
        if self.status_code is None:
            return self.message
        return f"ElevenLabs answered {self.status_code}: {self.message}"

    def __reduce__(self):
        # Celery pickles exceptions (task results, retries); keep every attribute across that.
        return (_restore_error, (type(self), self.__dict__.copy()))


def _restore_error(cls: type[ElevenLabsError], state: dict) -> ElevenLabsError:
    error = cls.__new__(cls)
    error.args = (state.get("message", ""),)
    error.__dict__.update(state)
    return error


class ElevenLabsTransientError(ElevenLabsError):
    """The same request may succeed later: transport errors, 408, 409, 425, 429 and 5xx.

    Raised as such for 408 Request Timeout and 425 Too Early; the other transient failures
    have their own subclasses.
    """


class ElevenLabsTransportError(ElevenLabsTransientError):
    """No usable answer (connection refused, reset, timeout): the request MAY have reached ElevenLabs."""


class ElevenLabsTimeout(ElevenLabsTransportError):
    """ElevenLabs did not answer within the configured (connect, read) timeout."""


class ElevenLabsBadResponse(ElevenLabsError):
    """A 2xx answer whose body is not JSON or does not have the documented shape."""

    def __str__(self) -> str:
        return f"ElevenLabs answered {self.status_code} with an unexpected body: {self.message}"


class ElevenLabsAuthError(ElevenLabsError):
    """401/403: the API key is missing, wrong, or lacks permission."""


class ElevenLabsNotFound(ElevenLabsError):
    """404: the batch, agent or phone number does not exist (for this key)."""


class ElevenLabsValidationError(ElevenLabsError):
    """400/422: ElevenLabs rejected the request's content."""


class ElevenLabsConflict(ElevenLabsTransientError):
    """409: the resource is in the middle of a conflicting change; the same request may pass later."""


class ElevenLabsRateLimited(ElevenLabsTransientError):
    """429: too many requests. ``retry_after`` is ElevenLabs' requested wait in seconds, if it gave one."""


class ElevenLabsServerError(ElevenLabsTransientError):
    """5xx: ElevenLabs (or a proxy in front of it) failed."""


# --- Parsed responses -----------------------------------------------------------------------


@dataclass(frozen=True)
class BatchCall:
    """A batch call (``BatchCallResponse``). Unknown fields stay in ``raw``; unknown statuses stay strings."""

    id: str
    name: str
    agent_id: str
    status: str
    phone_number_id: str | None
    created_at_unix: int | None
    scheduled_time_unix: int | None
    last_updated_at_unix: int | None
    total_calls_dispatched: int
    total_calls_scheduled: int
    total_calls_finished: int
    retry_count: int
    raw: dict


@dataclass(frozen=True)
class BatchRecipient:
    """One recipient of a batch (``OutboundCallRecipientResponseModel``)."""

    id: str
    phone_number: str | None
    status: str
    conversation_id: str | None
    updated_at_unix: int | None
    dynamic_variables: dict
    raw: dict


@dataclass(frozen=True)
class BatchCallDetail(BatchCall):
    """A batch call with all its recipients (``BatchCallDetailedResponse``)."""

    recipients: list[BatchRecipient]


@dataclass(frozen=True)
class BatchPage:
    """One page of the workspace batch list; pass ``next_doc`` as ``last_doc`` for the next page."""

    batch_calls: list[BatchCall]
    next_doc: str | None
    has_more: bool


@dataclass(frozen=True)
class Conversation:
    """One call's conversation (``GetConversationResponseModel``), lenient like the batch parsers.

    ``status`` is the conversation's own enum (``initiated``, ``in-progress``, ``processing``,
    ``done``, ``failed``). ``call_result`` (``answered``, ``voicemail``, ``busy``, ``no_answer``,
    ``failed``) is ElevenLabs' verdict on the phone call, None when it gave none. ``transcript``
    keeps only ``role``, ``message`` and ``time_in_call_secs`` of each turn.
    """

    conversation_id: str
    agent_id: str
    status: str
    batch_call_id: str | None
    batch_call_recipient_id: str | None
    external_number: str | None
    call_result: str | None
    termination_reason: str | None
    start_time_unix_secs: int | None
    call_duration_secs: int | None
    transcript: list[dict]
    call_successful: str | None
    transcript_summary: str | None
    raw: dict


@dataclass(frozen=True)
class AudioStream:
    """A call's recording as it arrives: its media type, its size when ElevenLabs gave it, and the bytes.

    ``chunks`` reads the body as it is consumed and closes the connection when it is exhausted
    or closed (a streaming HTTP response closes it when the client goes away).
    """

    content_type: str
    content_length: int | None
    chunks: Iterator[bytes]


@dataclass(frozen=True)
class AgentSummary:
    """An agent as listed by ``GET /v1/convai/agents``."""

    agent_id: str
    name: str
    raw: dict


@dataclass(frozen=True)
class AgentDetail:
    """An agent as ``GET /v1/convai/agents/{agent_id}`` describes it (``GetAgentResponseModel``).

    ``override_permissions`` maps each override column of a recipients file (``language``,
    ``first_message``, ``system_prompt``, ``voice_id``) to whether the agent lets a call set
    it (``platform_settings.overrides.conversation_config_override``); missing or null is False.
    """

    agent_id: str
    name: str
    override_permissions: dict[str, bool]
    raw: dict


@dataclass(frozen=True)
class PhoneNumberInfo:
    """A phone number imported into ElevenLabs; ``phone_number_id`` is what submit calls ``agent_phone_number_id``."""

    phone_number_id: str
    phone_number: str
    label: str
    provider: str
    assigned_agent_id: str | None
    supports_outbound: bool  # False when ElevenLabs can only take calls on it
    raw: dict


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _object(payload: object, what: str, status_code: int) -> dict:
    if not isinstance(payload, dict):
        raise ElevenLabsBadResponse(f"{what} is not a JSON object", status_code=status_code)
    return payload


def _required_id(payload: dict, key: str, what: str, status_code: int) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise ElevenLabsBadResponse(f"{what} has no {key!r}", status_code=status_code)
    return value


def _batch_fields(payload: object, status_code: int) -> dict:
    data = _object(payload, "batch call", status_code)
    return {
        "id": _required_id(data, "id", "batch call", status_code),
        "name": _text(data.get("name")) or "",
        "agent_id": _text(data.get("agent_id")) or "",
        "status": _text(data.get("status")) or "",
        "phone_number_id": _text(data.get("phone_number_id")),
        "created_at_unix": _int(data.get("created_at_unix")),
        "scheduled_time_unix": _int(data.get("scheduled_time_unix")),
        "last_updated_at_unix": _int(data.get("last_updated_at_unix")),
        "total_calls_dispatched": _int(data.get("total_calls_dispatched")) or 0,
        "total_calls_scheduled": _int(data.get("total_calls_scheduled")) or 0,
        "total_calls_finished": _int(data.get("total_calls_finished")) or 0,
        "retry_count": _int(data.get("retry_count")) or 0,
        "raw": data,
    }


def _parse_batch(payload: object, status_code: int) -> BatchCall:
    return BatchCall(**_batch_fields(payload, status_code))


def _parse_recipient(payload: object, status_code: int) -> BatchRecipient:
    data = _object(payload, "batch recipient", status_code)
    client_data = data.get("conversation_initiation_client_data")
    variables = client_data.get("dynamic_variables") if isinstance(client_data, dict) else None
    return BatchRecipient(
        id=_text(data.get("id")) or "",
        phone_number=_text(data.get("phone_number")),
        status=_text(data.get("status")) or "",
        conversation_id=_text(data.get("conversation_id")),
        updated_at_unix=_int(data.get("updated_at_unix")),
        dynamic_variables=variables if isinstance(variables, dict) else {},
        raw=data,
    )


def _parse_batch_detail(payload: object, status_code: int) -> BatchCallDetail:
    fields = _batch_fields(payload, status_code)
    recipients = fields["raw"].get("recipients")
    # An absent list is not "no recipients": a poller would silently stop tracking the batch.
    if not isinstance(recipients, list):
        raise ElevenLabsBadResponse("batch call detail has no 'recipients' list", status_code=status_code)
    return BatchCallDetail(**fields, recipients=[_parse_recipient(item, status_code) for item in recipients])


def _parse_conversation(payload: object, status_code: int) -> Conversation:
    data = _object(payload, "conversation", status_code)
    metadata = _dict(data.get("metadata"))
    batch_call = _dict(metadata.get("batch_call"))
    phone_call = _dict(metadata.get("phone_call"))
    analysis = _dict(data.get("analysis"))
    turns = data.get("transcript")
    return Conversation(
        conversation_id=_required_id(data, "conversation_id", "conversation", status_code),
        agent_id=_text(data.get("agent_id")) or "",
        status=_text(data.get("status")) or "",
        batch_call_id=_text(batch_call.get("batch_call_id")),
        batch_call_recipient_id=_text(batch_call.get("batch_call_recipient_id")),
        external_number=_text(phone_call.get("external_number")),
        call_result=_text(phone_call.get("call_result")),
        termination_reason=_text(metadata.get("termination_reason")),
        start_time_unix_secs=_int(metadata.get("start_time_unix_secs")),
        call_duration_secs=_int(metadata.get("call_duration_secs")),
        transcript=[
            {
                "role": _text(turn.get("role")),
                "message": _text(turn.get("message")),
                "time_in_call_secs": _int(turn.get("time_in_call_secs")),
            }
            for turn in (turns if isinstance(turns, list) else [])
            if isinstance(turn, dict)
        ],
        call_successful=_text(analysis.get("call_successful")),
        transcript_summary=_text(analysis.get("transcript_summary")),
        raw=data,
    )


def _parse_phone_number(payload: object, status_code: int) -> PhoneNumberInfo:
    data = _object(payload, "phone number", status_code)
    assigned = data.get("assigned_agent")
    return PhoneNumberInfo(
        phone_number_id=_required_id(data, "phone_number_id", "phone number", status_code),
        phone_number=_text(data.get("phone_number")) or "",
        label=_text(data.get("label")) or "",
        provider=_text(data.get("provider")) or "",
        assigned_agent_id=_text(assigned.get("agent_id")) if isinstance(assigned, dict) else None,
        # Optional in the API; absent meant true in its older OpenAPI, so only an explicit false counts.
        supports_outbound=data.get("supports_outbound") is not False,
        raw=data,
    )


# Where each recipients-file override column sits in conversation_config_override.
_OVERRIDE_PERMISSION_PATHS = {
    "language": ("agent", "language"),
    "first_message": ("agent", "first_message"),
    "system_prompt": ("agent", "prompt", "prompt"),
    "voice_id": ("tts", "voice_id"),
}


def _parse_agent(payload: object, status_code: int) -> AgentDetail:
    data = _object(payload, "agent", status_code)
    platform_settings = data.get("platform_settings")
    overrides = platform_settings.get("overrides") if isinstance(platform_settings, dict) else None
    config = overrides.get("conversation_config_override") if isinstance(overrides, dict) else None
    permissions = {}
    for column, path in _OVERRIDE_PERMISSION_PATHS.items():
        value: object = config
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        permissions[column] = value is True
    return AgentDetail(
        agent_id=_required_id(data, "agent_id", "agent", status_code),
        name=_text(data.get("name")) or "",
        override_permissions=permissions,
        raw=data,
    )


# --- Outbound campaigns -------------------------------------------------------------------


@dataclass(frozen=True)
class OutboundCampaign:
    """An outbound campaign (``CampaignResponse``). ``leads`` and ``terminal_leads`` come from ``counts``.

    ``status`` is ``active``, ``paused``, ``stopping``, ``stopped``, ``completed``, ``failed`` or
    ``attention``; an unknown one stays a string. ``policy`` is the snapshot the campaign took.
    """

    campaign_id: str
    call_name: str
    agent_id: str
    status: str
    variant: str
    agent_phone_number_id: str | None
    created_at_unix: int | None
    updated_at_unix: int | None
    scheduled_time_unix: int | None
    target_concurrency_limit: int | None
    leads: int
    terminal_leads: int
    policy: dict
    raw: dict


@dataclass(frozen=True)
class OutboundCampaignSubmission:
    """What submitting a campaign answered (``SubmitCampaignResponse``).

    ``created`` is False when ElevenLabs recognised a repeat (same ``idempotency_key``, or same
    body) and answered the campaign it had already created, placing no call.
    """

    campaign: OutboundCampaign
    created: bool
    within_calling_window: bool
    raw: dict

    @property
    def campaign_id(self) -> str:
        return self.campaign.campaign_id


@dataclass(frozen=True)
class OutboundCampaignProgress:
    """Where a campaign's leads and calls stand (``CampaignProgressResponse``).

    Leads are ``uncalled``, ``active`` (called, not finished), needing attention, or
    ``finished`` (counted by terminal disposition). ``next_call_time_unix`` is when the next call
    is due, e.g. when the next calling window opens; None when none is scheduled.
    """

    total: int
    uncalled: int
    leads_needing_attention: int
    active: int
    finished: int
    finished_by_disposition: dict[str, int]
    calls_scheduled: int
    calls_in_progress: int
    calls_awaiting_analysis: int
    next_call_time_unix: int | None
    raw: dict


@dataclass(frozen=True)
class CampaignLead:
    """One lead of a campaign (``LeadView``): a recipient and how far calling it has got.

    ``terminal_disposition`` (``completed``, ``do_not_call``, ``attempt_ceiling_reached``,
    ``removed``, ``campaign_ended``...) is None while the lead may still be called.
    """

    lead_id: str
    recipient_id: str | None
    phone_number: str | None
    user_id: str | None
    attempt_count: int
    failure_count: int
    do_not_call: bool
    terminal_disposition: str | None
    updated_at_unix: int | None
    dynamic_variables: dict
    raw: dict


@dataclass(frozen=True)
class CampaignLeadPage:
    """One page of a campaign's leads; pass ``next_cursor`` as ``cursor`` for the next page."""

    leads: list[CampaignLead]
    next_cursor: str | None
    has_more: bool


@dataclass(frozen=True)
class CampaignCall:
    """One call of a campaign (``CallView``): a lead's first call or a retry, queued, placed or done.

    ``outcome`` (``completed``, ``voicemail``, ``failed``...), ``call_result`` (``answered``,
    ``voicemail``, ``busy``, ``no_answer``, ``failed``) and ``outcome_at_unix`` come once the call
    has ended; ``decision_disposition`` once the campaign has decided what follows it.
    """

    intent_id: str
    lead_id: str
    intent_type: str
    status: str
    phone_number: str | None
    scheduled_time_unix: int | None
    conversation_id: str | None
    outcome: str | None
    call_result: str | None
    outcome_at_unix: int | None
    decision_disposition: str | None
    raw: dict


@dataclass(frozen=True)
class CampaignCallPage:
    """One page of a campaign's calls, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    calls: list[CampaignCall]
    next_cursor: str | None
    has_more: bool


@dataclass(frozen=True)
class LeadSuppression:
    """A removed lead (``SuppressLeadResponse``): ``has_calls_in_flight`` when a placed call may still go through."""

    campaign_id: str
    lead_id: str
    has_calls_in_flight: bool


def _list_of(data: dict, key: str, what: str, status_code: int) -> list:
    items = data.get(key)
    # An absent list is not "nothing there": a poller would stop following the campaign.
    if not isinstance(items, list):
        raise ElevenLabsBadResponse(f"{what} has no {key!r} list", status_code=status_code)
    return items


def _parse_outbound_campaign(payload: object, status_code: int) -> OutboundCampaign:
    data = _object(payload, "outbound campaign", status_code)
    counts = _dict(data.get("counts"))
    channel = _dict(data.get("channel_config"))
    return OutboundCampaign(
        campaign_id=_required_id(data, "campaign_id", "outbound campaign", status_code),
        call_name=_text(data.get("call_name")) or "",
        agent_id=_text(data.get("agent_id")) or "",
        status=_text(data.get("status")) or "",
        variant=_text(data.get("variant")) or "",
        agent_phone_number_id=_text(channel.get("agent_phone_number_id")),
        created_at_unix=_int(data.get("created_at_unix")),
        updated_at_unix=_int(data.get("updated_at_unix")),
        scheduled_time_unix=_int(data.get("scheduled_time_unix")),
        target_concurrency_limit=_int(data.get("target_concurrency_limit")),
        leads=_int(counts.get("leads")) or 0,
        terminal_leads=_int(counts.get("terminal_leads")) or 0,
        policy=_dict(data.get("policy")),
        raw=data,
    )


def _parse_submission(payload: object, status_code: int) -> OutboundCampaignSubmission:
    data = _object(payload, "campaign submission", status_code)
    if not isinstance(data.get("created"), bool):
        raise ElevenLabsBadResponse("campaign submission has no 'created' flag", status_code=status_code)
    return OutboundCampaignSubmission(
        campaign=_parse_outbound_campaign(data.get("campaign"), status_code),
        created=data["created"],
        within_calling_window=data.get("within_calling_window") is True,
        raw=data,
    )


def _parse_progress(payload: object, status_code: int) -> OutboundCampaignProgress:
    data = _object(payload, "campaign progress", status_code)
    leads = data.get("leads")
    if not isinstance(leads, dict):
        raise ElevenLabsBadResponse("campaign progress has no 'leads' object", status_code=status_code)
    conversations = _dict(data.get("conversations"))
    by_disposition = _dict(leads.get("finished_by_disposition"))
    return OutboundCampaignProgress(
        total=_int(leads.get("total")) or 0,
        uncalled=_int(leads.get("uncalled")) or 0,
        leads_needing_attention=_int(leads.get("leads_needing_attention")) or 0,
        active=_int(leads.get("active")) or 0,
        finished=_int(leads.get("finished")) or 0,
        finished_by_disposition={str(key): _int(value) or 0 for key, value in by_disposition.items()},
        calls_scheduled=_int(conversations.get("scheduled")) or 0,
        calls_in_progress=_int(conversations.get("in_progress")) or 0,
        calls_awaiting_analysis=_int(conversations.get("awaiting_analysis")) or 0,
        next_call_time_unix=_int(data.get("next_call_time_unix")),
        raw=data,
    )


def _parse_lead(payload: object, status_code: int) -> CampaignLead:
    data = _object(payload, "campaign lead", status_code)
    return CampaignLead(
        lead_id=_required_id(data, "lead_id", "campaign lead", status_code),
        recipient_id=_text(data.get("recipient_id")),
        phone_number=_text(data.get("phone_number")),
        user_id=_text(data.get("user_id")),
        attempt_count=_int(data.get("attempt_count")) or 0,
        failure_count=_int(data.get("failure_count")) or 0,
        do_not_call=data.get("do_not_call") is True,
        terminal_disposition=_text(data.get("terminal_disposition")),
        updated_at_unix=_int(data.get("updated_at_unix")),
        dynamic_variables=_dict(data.get("dynamic_variables")),
        raw=data,
    )


def _parse_campaign_call(payload: object, status_code: int) -> CampaignCall:
    data = _object(payload, "campaign call", status_code)
    return CampaignCall(
        intent_id=_required_id(data, "intent_id", "campaign call", status_code),
        lead_id=_text(data.get("lead_id")) or "",
        intent_type=_text(data.get("intent_type")) or "",
        status=_text(data.get("status")) or "",
        phone_number=_text(data.get("phone_number")),
        scheduled_time_unix=_int(data.get("scheduled_time_unix")),
        conversation_id=_text(data.get("conversation_id")),
        outcome=_text(data.get("outcome")),
        call_result=_text(data.get("call_result")),
        outcome_at_unix=_int(data.get("outcome_at_unix")),
        decision_disposition=_text(data.get("decision_disposition")),
        raw=data,
    )


# --- Error bodies and Retry-After -----------------------------------------------------------


def _error_message(detail: object) -> tuple[str | None, str | None]:
    """Readable message and machine code from a ``detail`` value (FastAPI list or ElevenLabs object)."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = item.get("loc")
                where = ".".join(str(part) for part in loc) if isinstance(loc, list | tuple) else _text(loc)
                msg = _text(item.get("msg")) or _text(item.get("message")) or ""
                parts.append(f"{where}: {msg}" if where else msg)
            else:
                parts.append(str(item))
        return "; ".join(part for part in parts if part) or None, None
    if isinstance(detail, dict):
        code = _text(detail.get("status")) or _text(detail.get("code"))
        message = _text(detail.get("message")) or code
        return message, code
    if isinstance(detail, str):
        return detail, None
    return None, None


def _http_error(response: requests.Response) -> ElevenLabsError:
    status = response.status_code
    detail: object = None
    message: str | None = None
    code: str | None = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = body.get("detail")
        message, code = _error_message(detail)
        if message is None:
            message = _text(body.get("message"))
    if not message:
        message = response.text.strip()[:_MESSAGE_LIMIT] or response.reason or "no explanation given"

    kwargs: dict[str, Any] = {
        "status_code": status,
        "detail": detail,
        "code": code,
        "retry_after": _retry_after(response.headers),
    }
    if status in (401, 403):
        return ElevenLabsAuthError(message, **kwargs)
    if status == 404:
        return ElevenLabsNotFound(message, **kwargs)
    if status in (400, 422):
        return ElevenLabsValidationError(message, **kwargs)
    if status == 409:
        return ElevenLabsConflict(message, **kwargs)
    if status == 429:
        return ElevenLabsRateLimited(message, **kwargs)
    if 500 <= status < 600:
        return ElevenLabsServerError(message, **kwargs)
    if status in (408, 425):
        return ElevenLabsTransientError(message, **kwargs)
    if 300 <= status < 400:
        message = f"redirected to {response.headers.get('Location', 'an unknown location')}"
    return ElevenLabsError(message, **kwargs)


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date), if present."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            value = float(milliseconds) / 1000
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return max(value, 0.0)
    header = headers.get("Retry-After")
    if not header:
        return None
    try:
        value = float(header)
    except ValueError:
        try:
            when = parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max((when - datetime.now(UTC)).total_seconds(), 0.0)
    return max(value, 0.0) if math.isfinite(value) else None


def _describe_timeout(timeout: Any) -> str:
    if isinstance(timeout, tuple | list) and len(timeout) == 2:
        return f"connect {timeout[0]} s, read {timeout[1]} s"
    return f"{timeout} s"


# --- Client ---------------------------------------------------------------------------------


class ElevenLabsClient:
    """Talks to the ElevenLabs API (or the sandbox) with one pooled session.

    ``base_url`` may carry a path prefix (``http://host/sandbox/elevenlabs``). ``sleep`` is
    injectable so tests can record retry waits instead of sleeping.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        backoff: float = 0.5,
        session: requests.Session | None = None,
        sleep: Callable[[float], object] = time.sleep,
    ):
        if not base_url:
            raise ValueError("base_url is required")
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self.base_url = base_url.rstrip("/")
        self.timeout = tuple(timeout) if isinstance(timeout, list) else timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self._api_key = api_key
        self._sleep = sleep
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self.session = session

    def __repr__(self) -> str:
        return f"<ElevenLabsClient {self.base_url}>"

    # Batch calling

    def submit_batch(
        self,
        *,
        call_name: str,
        agent_id: str,
        recipients: list[dict] | bytes,
        agent_phone_number_id: str | None = None,
        scheduled_time_unix: int | None = None,
        timezone: str | None = None,
        target_concurrency_limit: int | None = None,
    ) -> BatchCall:
        """Create a batch call (``POST /submit``). Never retried: on any error, reconcile before resubmitting."""
        body: dict[str, Any] = {"call_name": call_name, "agent_id": agent_id}
        optional = {
            "agent_phone_number_id": agent_phone_number_id,
            "scheduled_time_unix": scheduled_time_unix,
            "timezone": timezone,
            "target_concurrency_limit": target_concurrency_limit,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        if isinstance(recipients, bytes):
            # Already a JSON array: spliced in as it is rather than decoded and encoded again.
            encoded = json.dumps(body)[:-1].encode() + b', "recipients": ' + recipients + b"}"
        else:
            encoded = json.dumps({**body, "recipients": list(recipients)}).encode()
        response = self._request("POST", f"{BATCH_CALLING}/submit", body=encoded)
        return _parse_batch(self._json(response), response.status_code)

    def get_batch(self, batch_id: str) -> BatchCallDetail:
        """Fetch a batch call with every recipient's status and conversation id."""
        response = self._request("GET", f"{BATCH_CALLING}/{_segment(batch_id)}")
        return _parse_batch_detail(self._json(response), response.status_code)

    def list_batches(self, *, limit: int = 100, last_doc: str | None = None, agent_id: str | None = None) -> BatchPage:
        """Fetch one page of the workspace's batch calls."""
        params: dict[str, Any] = {"limit": limit}
        if last_doc is not None:
            params["last_doc"] = last_doc
        if agent_id is not None:
            params["agent_id"] = agent_id
        response = self._request("GET", f"{BATCH_CALLING}/workspace", params=params)
        data = _object(self._json(response), "batch list", response.status_code)
        items = data.get("batch_calls")
        if not isinstance(items, list):
            raise ElevenLabsBadResponse("batch list has no 'batch_calls' list", status_code=response.status_code)
        return BatchPage(
            batch_calls=[_parse_batch(item, response.status_code) for item in items],
            next_doc=_text(data.get("next_doc")),
            has_more=data.get("has_more") is True,
        )

    def iter_batches(self, *, agent_id: str | None = None, limit: int = 100) -> Iterator[BatchCall]:
        """Yield every batch call of the workspace, page after page."""
        last_doc: str | None = None
        while True:
            page = self.list_batches(limit=limit, last_doc=last_doc, agent_id=agent_id)
            yield from page.batch_calls
            if not page.has_more or not page.next_doc:
                return
            if page.next_doc == last_doc:
                # The same cursor twice would loop forever.
                raise ElevenLabsBadResponse("batch list returned the same next_doc twice", status_code=200)
            last_doc = page.next_doc

    def cancel_batch(self, batch_id: str) -> BatchCall:
        """Cancel a batch call; ElevenLabs sets its pending recipients to cancelled. Never retried."""
        response = self._request("POST", f"{BATCH_CALLING}/{_segment(batch_id)}/cancel")
        return _parse_batch(self._json(response), response.status_code)

    def retry_batch(self, batch_id: str) -> BatchCall:
        """Call a batch's failed and no-response recipients again. Never retried."""
        response = self._request("POST", f"{BATCH_CALLING}/{_segment(batch_id)}/retry")
        return _parse_batch(self._json(response), response.status_code)

    def delete_batch(self, batch_id: str) -> None:
        """Delete a batch call and its recipient records for good (its conversations stay in
        ElevenLabs' history). Raises ElevenLabsNotFound when it is gone already. Not retried here:
        the retention sweep tries again on its next run."""
        self._request("DELETE", f"{BATCH_CALLING}/{_segment(batch_id)}")

    # Conversations

    def delete_conversation(self, conversation_id: str) -> None:
        """Delete one call's conversation (transcript, analysis, recording). Raises ElevenLabsNotFound
        when it is gone already. Not retried: an erasure reports what it could not delete."""
        self._request("DELETE", f"/v1/convai/conversations/{_segment(conversation_id)}")

    def get_conversation(self, conversation_id: str) -> Conversation:
        """Fetch one call's conversation: its batch recipient, call result, transcript and analysis."""
        response = self._request("GET", f"/v1/convai/conversations/{_segment(conversation_id)}")
        return _parse_conversation(self._json(response), response.status_code)

    def stream_conversation_audio(self, conversation_id: str, *, chunk_size: int = AUDIO_CHUNK_BYTES) -> AudioStream:
        """The call's recording (``GET /conversations/{id}/audio``, MP3), read as it is passed on.

        Raises ElevenLabsNotFound when ElevenLabs has no audio for the conversation, and
        ElevenLabsBadResponse for an answer that is not audio. Not retried: a person is waiting
        for it, and pressing play again asks again.
        """
        path = f"/v1/convai/conversations/{_segment(conversation_id)}/audio"
        response = self._request("GET", path, accept="audio/mpeg", stream=True, retry=False)
        content_type = response.headers.get("Content-Type", "audio/mpeg").split(";")[0].strip().lower()
        if not content_type.startswith("audio/"):
            # Never handed on as it is: whatever it holds would be served from our own site.
            response.close()
            raise ElevenLabsBadResponse(f"audio answered as {content_type!r}", status_code=response.status_code)
        length = response.headers.get("Content-Length", "")
        return AudioStream(
            content_type=content_type,
            content_length=int(length) if length.isdigit() else None,
            chunks=_body_chunks(response, chunk_size, what=path),
        )

    # Agents and phone numbers

    def list_agents(self) -> list[AgentSummary]:
        """Every agent visible to the API key, following the cursor across pages."""
        agents: list[AgentSummary] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"page_size": AGENTS_PAGE_SIZE}
            if cursor is not None:
                params["cursor"] = cursor
            response = self._request("GET", "/v1/convai/agents", params=params)
            data = _object(self._json(response), "agents page", response.status_code)
            items = data.get("agents")
            if not isinstance(items, list):
                raise ElevenLabsBadResponse("agents page has no 'agents' list", status_code=response.status_code)
            for item in items:
                agent = _object(item, "agent", response.status_code)
                agents.append(
                    AgentSummary(
                        agent_id=_required_id(agent, "agent_id", "agent", response.status_code),
                        name=_text(agent.get("name")) or "",
                        raw=agent,
                    )
                )
            next_cursor = _text(data.get("next_cursor"))
            if data.get("has_more") is not True or not next_cursor:
                return agents
            if next_cursor == cursor:
                raise ElevenLabsBadResponse("agents page returned the same next_cursor twice", status_code=200)
            cursor = next_cursor

    def get_agent(self, agent_id: str) -> AgentDetail:
        """One agent's settings, among them which per-call overrides it accepts."""
        response = self._request("GET", f"/v1/convai/agents/{_segment(agent_id)}")
        return _parse_agent(self._json(response), response.status_code)

    def list_phone_numbers(self) -> list[PhoneNumberInfo]:
        """Every phone number imported into the workspace (one bare, unpaginated JSON array)."""
        response = self._request("GET", "/v1/convai/phone-numbers")
        payload = self._json(response)
        if not isinstance(payload, list):
            raise ElevenLabsBadResponse("phone number list is not a JSON array", status_code=response.status_code)
        return [_parse_phone_number(item, response.status_code) for item in payload]

    # Outbound campaigns

    def submit_outbound_campaign(
        self,
        *,
        call_name: str,
        agent_id: str,
        agent_phone_number_id: str,
        recipients: list[dict],
        scheduled_time_unix: int | None = None,
        timezone: str | None = None,
        target_concurrency_limit: int | None = None,
        idempotency_key: str | None = None,
        policy: dict | None = None,
        variant: str | None = None,
    ) -> OutboundCampaignSubmission:
        """Create an outbound campaign (``POST /campaigns/submit``); each recipient becomes a lead.

        ``recipients`` are ``SubmitCampaignRecipient`` objects (``phone_number``, ``id``,
        ``conversation_initiation_client_data``); ``policy`` a ``PolicyConfigInput`` (timezone,
        calling_periods, retry...). Never retried here like every POST; with an
        ``idempotency_key`` the caller may send it again safely: a repeat answers the campaign
        already created, with ``created`` False.
        """
        body: dict[str, Any] = {
            "call_name": call_name,
            "agent_id": agent_id,
            "recipients": list(recipients),
            "channel_config": {"channel": "phone", "agent_phone_number_id": agent_phone_number_id},
        }
        optional = {
            "scheduled_time_unix": scheduled_time_unix,
            "timezone": timezone,
            "target_concurrency_limit": target_concurrency_limit,
            "idempotency_key": idempotency_key,
            "policy": policy,
            "variant": variant,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        response = self._request("POST", f"{OUTBOUND_CAMPAIGNS}/submit", body=json.dumps(body).encode())
        return _parse_submission(self._json(response), response.status_code)

    def get_outbound_campaign(self, campaign_id: str) -> OutboundCampaign:
        """One outbound campaign: its status, policy snapshot and lead counts."""
        response = self._request("GET", f"{OUTBOUND_CAMPAIGNS}/{_segment(campaign_id)}")
        return _parse_outbound_campaign(self._json(response), response.status_code)

    def get_outbound_campaign_progress(self, campaign_id: str) -> OutboundCampaignProgress:
        """Where a campaign's leads and calls stand, and when its next call is due."""
        response = self._request("GET", f"{OUTBOUND_CAMPAIGNS}/{_segment(campaign_id)}/progress")
        return _parse_progress(self._json(response), response.status_code)

    def list_campaign_leads(
        self,
        campaign_id: str,
        *,
        cursor: str | None = None,
        page_size: int | None = None,
        status: str | None = None,
        search: str | None = None,
        dispositions: list[str] | None = None,
    ) -> CampaignLeadPage:
        """One page of a campaign's leads. ``status`` is ``in_progress`` or ``finished``."""
        params: dict[str, Any] = {"cursor": cursor, "page_size": page_size, "status": status, "search": search}
        params = {key: value for key, value in params.items() if value is not None}
        if dispositions:
            params["disposition"] = list(dispositions)
        response = self._request("GET", f"{OUTBOUND_CAMPAIGNS}/{_segment(campaign_id)}/leads", params=params)
        data = _object(self._json(response), "campaign leads page", response.status_code)
        items = _list_of(data, "leads", "campaign leads page", response.status_code)
        return CampaignLeadPage(
            leads=[_parse_lead(item, response.status_code) for item in items],
            next_cursor=_text(data.get("next_cursor")),
            has_more=data.get("has_more") is True,
        )

    def list_campaign_calls(
        self,
        campaign_id: str,
        *,
        cursor: str | None = None,
        page_size: int | None = None,
        lead_id: str | None = None,
        status: str | None = None,
    ) -> CampaignCallPage:
        """One page of a campaign's calls, newest first; ``lead_id`` keeps one lead's."""
        params: dict[str, Any] = {"cursor": cursor, "page_size": page_size, "lead_id": lead_id, "status": status}
        params = {key: value for key, value in params.items() if value is not None}
        response = self._request("GET", f"{OUTBOUND_CAMPAIGNS}/{_segment(campaign_id)}/calls", params=params)
        data = _object(self._json(response), "campaign calls page", response.status_code)
        items = _list_of(data, "calls", "campaign calls page", response.status_code)
        return CampaignCallPage(
            calls=[_parse_campaign_call(item, response.status_code) for item in items],
            next_cursor=_text(data.get("next_cursor")),
            has_more=data.get("has_more") is True,
        )

    def pause_outbound_campaign(self, campaign_id: str) -> OutboundCampaign:
        """No new calls until resumed; calls under way carry on. Never retried."""
        return self._campaign_action(campaign_id, "pause")

    def resume_outbound_campaign(self, campaign_id: str) -> OutboundCampaign:
        """Let a paused campaign call again. Never retried."""
        return self._campaign_action(campaign_id, "resume")

    def stop_outbound_campaign(self, campaign_id: str) -> OutboundCampaign:
        """Stop for good: status ``stopping`` while placed calls finish, then ``stopped``. Never retried."""
        return self._campaign_action(campaign_id, "stop")

    def delete_campaign_lead(self, campaign_id: str, lead_id: str) -> LeadSuppression:
        """Remove a lead so it is never called again (200, or 202 when a placed call may still go through)."""
        response = self._request("DELETE", f"{OUTBOUND_CAMPAIGNS}/{_segment(campaign_id)}/leads/{_segment(lead_id)}")
        data = _object(self._json(response), "lead removal", response.status_code)
        return LeadSuppression(
            campaign_id=_text(data.get("campaign_id")) or campaign_id,
            lead_id=_text(data.get("lead_id")) or lead_id,
            has_calls_in_flight=data.get("has_calls_in_flight") is True,
        )

    def _campaign_action(self, campaign_id: str, action: str) -> OutboundCampaign:
        response = self._request("POST", f"{OUTBOUND_CAMPAIGNS}/{_segment(campaign_id)}/{action}")
        return _parse_outbound_campaign(self._json(response), response.status_code)

    # Transport

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: bytes | None = None,
        accept: str = "application/json",
        stream: bool = False,
        retry: bool = True,
    ) -> requests.Response:
        # Only reads are safe to repeat; a repeated POST could create a second batch.
        attempts = 1 + (self.max_retries if method == "GET" and retry else 0)
        headers = {"xi-api-key": self._api_key, "Accept": accept}
        if body is not None:
            headers["Content-Type"] = "application/json"
        url = self.base_url + path
        attempt = 0
        while True:
            cause: Exception | None = None
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    data=body,
                    headers=headers,
                    timeout=self.timeout,
                    # requests would resend xi-api-key to any host a redirect points at.
                    allow_redirects=False,
                    stream=stream,
                )
            except requests.Timeout as exc:
                cause = exc
                error: ElevenLabsError = ElevenLabsTimeout(
                    f"ElevenLabs did not answer {method} {path} in time ({_describe_timeout(self.timeout)}); "
                    "the request may have reached it"
                )
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                cause = exc
                error = ElevenLabsTransportError(
                    f"Could not talk to ElevenLabs for {method} {path} ({str(exc)[:_MESSAGE_LIMIT]}); "
                    "the request may have reached it"
                )
            except requests.RequestException as exc:
                raise elevenlabs_error_counted(
                    ElevenLabsError(f"Could not send {method} {path} to ElevenLabs: {exc}")
                ) from exc
            else:
                if 200 <= response.status_code < 300:
                    return response
                error = _http_error(response)
            # Every failed attempt counts, retried or not: a run of 429s shows even when retries win.
            elevenlabs_error_counted(error)

            if not error.retryable or attempt + 1 >= attempts:
                raise error from cause
            if error.retry_after is not None:
                wait = min(error.retry_after, MAX_RETRY_AFTER_SECONDS)
            else:
                wait = min(self.backoff * 2**attempt, MAX_BACKOFF_SECONDS)
            logger.warning(
                "ElevenLabs %s %s failed (%s); retry %d of %d in %.1f s",
                method,
                path,
                error.status_code if error.status_code is not None else type(error).__name__,
                attempt + 1,
                attempts - 1,
                wait,
            )
            self._sleep(wait)
            attempt += 1

    @staticmethod
    def _json(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            snippet = response.text.strip()[:_MESSAGE_LIMIT] or "(empty body)"
            raise elevenlabs_error_counted(
                ElevenLabsBadResponse(f"body is not JSON: {snippet}", status_code=response.status_code)
            ) from None


def _body_chunks(response: requests.Response, chunk_size: int, *, what: str) -> Iterator[bytes]:
    """The body as it arrives; the connection goes back to the pool (or is closed) however it ends."""
    try:
        yield from response.iter_content(chunk_size)
    except (requests.RequestException, OSError) as exc:
        # The status line went out long ago: all that is left is to stop, and say why.
        logger.warning("ElevenLabs GET %s stopped mid-way: %s", what, exc)
    finally:
        response.close()


def _segment(value: str) -> str:
    # Ids are opaque; quoting keeps a stray "/" or "?" from changing the endpoint.
    return quote(str(value), safe="")


# --- Per-process client ---------------------------------------------------------------------

_cache_lock = threading.Lock()
_cached: tuple[tuple, ElevenLabsClient] | None = None


def client_from_settings() -> ElevenLabsClient:
    """The process-wide client for ``settings.ELEVENLABS_BASE_URL`` / ``ELEVENLABS_API_KEY``.

    Built once per process so connections are pooled; rebuilt when those settings change
    (tests override them) or after a fork, since a pooled socket must not be shared between
    worker processes.
    """
    global _cached
    timeout = getattr(settings, "ELEVENLABS_TIMEOUT_SECONDS", DEFAULT_TIMEOUT)
    if isinstance(timeout, list):
        timeout = tuple(timeout)
    key = (os.getpid(), settings.ELEVENLABS_BASE_URL, settings.ELEVENLABS_API_KEY, timeout)
    with _cache_lock:
        if _cached is None or _cached[0] != key:
            client = ElevenLabsClient(
                base_url=settings.ELEVENLABS_BASE_URL,
                api_key=settings.ELEVENLABS_API_KEY,
                timeout=timeout,
            )
            _cached = (key, client)
        return _cached[1]
