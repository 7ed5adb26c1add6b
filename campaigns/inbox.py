"""The webhook inbox: every verified ElevenLabs event is stored, then applied to the call it is about.

ElevenLabs does not resend an event we answered 200, so nothing verified may be dropped.
An event is stored first (once: the same body twice is one row), then matched to a
recipient and recorded on that call (`Call`, one per conversation) and, when it is about
the recipient's latest attempt, on the recipient. An event that cannot be matched yet
(ElevenLabs' webhook may arrive before our poll has learned the conversation id) stays
pending; it is applied as soon as a poll learns the conversation, or after ElevenLabs
was asked about the conversation (`GET /v1/convai/conversations/{id}`).

Matching, in order: the conversation id (a call or recipient we know); for a
transcription, `metadata.batch_call.batch_call_id` and the called number; for a
`call_initiation_failure` (its `metadata.body` is the telephony provider's own payload,
with no batch id), the called number among the recipients of that agent's batches still
being followed, when exactly one recipient fits.
"""

import datetime as dt
import json
import logging
import math
import re
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from campaigns import elevenlabs, tracking
from campaigns.events import services as events
from campaigns.models import BATCH_SENT, Call, CampaignBatch, Recipient, WebhookEvent

logger = logging.getLogger(__name__)

R = Recipient.Status
E = WebhookEvent.Status

RECORDED_TYPES = ("post_call_transcription", "call_initiation_failure")
MAX_TRANSCRIPT_TURNS = 2_000
MAX_TURN_CHARS = 10_000
# An agent collects a handful of items; these bound what a hostile or broken body can store.
MAX_DATA_ITEMS = 100
MAX_DATA_VALUE_CHARS = 10_000
MAX_RATIONALE_CHARS = 2_000
# Ask ElevenLabs about a conversation once its event has waited this long for a poll.
LOOKUP_AFTER_SECONDS = 60
SWEEP_BATCH = 500
# call_result (metadata.phone_call) -> (recipient status, failure_reason)
CALL_RESULTS = {
    "answered": (R.COMPLETED, ""),
    "voicemail": (R.VOICEMAIL, ""),
    "busy": (R.FAILED, "busy"),
    "no_answer": (R.FAILED, "no-answer"),
    "failed": (R.FAILED, "unknown"),
}
# failure_reason of call_initiation_failure -> call_result
FAILURE_RESULTS = {"busy": "busy", "no-answer": "no_answer"}
ONE_SECOND = dt.timedelta(seconds=1)
_DIGITS = re.compile(r"\+?\d{5,15}")
# What no column takes: NUL (PostgreSQL refuses it) and lone surrogates (JSON's "\ud800" is no UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Largest value of a PositiveIntegerField on every database.
_POSITIVE_INT_MAX = 2_147_483_647


# --- Reading an event ----------------------------------------------------------------------


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _storable(text: str) -> str:
    if not _UNSTORABLE.search(text):
        return text
    return _UNSTORABLE.sub(lambda found: "" if found.group() == "\x00" else "\ufffd", text)


def _text(value, limit: int) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return _storable(str(value))[:limit]


def _int(value) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return int(value)
    except (OverflowError, ValueError):
        return None


def _count(value) -> int | None:
    """A whole number a PositiveIntegerField holds, or None."""
    number = _int(value)
    return number if number is not None and 0 <= number <= _POSITIVE_INT_MAX else None


def _instant(value) -> dt.datetime | None:
    seconds = _int(value)
    if seconds is None or not 0 <= seconds < 32_503_680_000:  # before the year 3000
        return None
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def _phone(value) -> str:
    """The E.164 number in a provider's field (`+14155550123`, `14155550123`, `sip:+1415…@host`)."""
    match = _DIGITS.search(_text(value, 200))
    if not match:
        return ""
    number = match.group()
    return number if number.startswith("+") else f"+{number}"


def _clean(value):
    """The payload as stored: text without NUL or lone surrogates, and no NaN or infinity
    (JSON has none; Python's reader takes them, PostgreSQL's jsonb and SQLite's JSON do not)."""
    if isinstance(value, str):
        return _storable(value)
    if isinstance(value, dict):
        return {_storable(str(key)): _clean(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class Outcome:
    """What one event says about one call."""

    kind: str
    conversation_id: str
    agent_id: str
    phone_number: str
    batch_call_id: str
    status: str
    occurred_at: dt.datetime | None
    call_result: str = ""
    call_successful: str = ""
    failure_reason: str = ""
    summary: str = ""
    provider: str = ""
    provider_status: str = ""
    provider_code: str = ""
    transcript: list | None = None
    data_collection: dict | None = None
    duration_secs: int | None = None
    started_at: dt.datetime | None = None


def event_outcome(payload: dict) -> Outcome | None:
    """The call outcome an event carries, or None for a type we do not record."""
    kind = _text(payload.get("type"), 64)
    if kind not in RECORDED_TYPES:
        return None
    data = _dict(payload.get("data"))
    metadata = _dict(data.get("metadata"))
    common = {
        "kind": kind,
        "conversation_id": _text(data.get("conversation_id"), 128),
        "agent_id": _text(data.get("agent_id"), 128),
        "occurred_at": _instant(payload.get("event_timestamp")),
    }
    if kind == "post_call_transcription":
        phone_call = _dict(metadata.get("phone_call"))
        analysis = _dict(data.get("analysis"))
        call_result = _text(phone_call.get("call_result"), 16)
        status, failure_reason = CALL_RESULTS.get(call_result, (R.COMPLETED, ""))
        return Outcome(
            **common,
            phone_number=_phone(phone_call.get("external_number")),
            batch_call_id=_text(_dict(metadata.get("batch_call")).get("batch_call_id"), 128),
            status=status,
            call_result=call_result,
            call_successful=_text(analysis.get("call_successful"), 16),
            failure_reason=failure_reason,
            summary=_text(analysis.get("transcript_summary"), 20_000),
            provider=_text(phone_call.get("type"), 16),
            transcript=_transcript(data.get("transcript")),
            data_collection=data_collection_results(analysis.get("data_collection_results")),
            duration_secs=_count(metadata.get("call_duration_secs")),
            started_at=_instant(metadata.get("start_time_unix_secs")),
        )
    body = _dict(metadata.get("body"))
    provider = _text(metadata.get("type"), 16)
    failure_reason = _text(data.get("failure_reason"), 64) or "unknown"
    if provider == "sip":
        phone = _phone(body.get("to_number"))
        provider_status = _text(body.get("sip_status") or body.get("error_reason"), 64)
        provider_code = _text(body.get("sip_status_code"), 16)
    else:  # Twilio's status-callback fields
        phone = _phone(body.get("To") or body.get("Called"))
        provider_status = _text(body.get("CallStatus"), 64)
        provider_code = _text(body.get("SipResponseCode"), 16)
    return Outcome(
        **common,
        phone_number=phone,
        batch_call_id="",
        status=R.FAILED,
        call_result=FAILURE_RESULTS.get(failure_reason, "failed"),
        failure_reason=failure_reason,
        provider=provider,
        provider_status=provider_status,
        provider_code=provider_code,
    )


def _transcript(turns) -> list | None:
    if not isinstance(turns, list):
        return None
    kept = []
    for turn in turns[:MAX_TRANSCRIPT_TURNS]:
        if isinstance(turn, dict):
            kept.append(
                {
                    "role": _text(turn.get("role"), 32),
                    "message": _text(turn.get("message"), MAX_TURN_CHARS),
                    "time_in_call_secs": _int(turn.get("time_in_call_secs")),
                }
            )
    return kept


def data_collection_results(results) -> dict:
    """analysis.data_collection_results ({id: {data_collection_id, value, rationale}}) as a call
    keeps it: {id: {"value": ..., "rationale": "..."}}."""
    kept = {}
    for key, result in list(_dict(results).items())[:MAX_DATA_ITEMS]:
        item_id = _text(key, 128).strip()
        if item_id:
            result = _dict(result)
            kept[item_id] = {
                "value": _data_value(result.get("value")),
                "rationale": _text(result.get("rationale"), MAX_RATIONALE_CHARS),
            }
    return kept


def _data_value(value):
    """A collected value as JSON keeps it everywhere: a string, a boolean, a number or null."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) < 2**53:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return _storable(value)[:MAX_DATA_VALUE_CHARS]
    # A larger integer (not exact in every JSON reader), or an object or list of a schema we do not know.
    text = value if isinstance(value, int) else json.dumps(_clean(value), ensure_ascii=False)
    return _storable(str(text))[:MAX_DATA_VALUE_CHARS]


# --- Storing -------------------------------------------------------------------------------


def event_store(*, payload: dict, digest: str, size: int) -> WebhookEvent:
    """Store a verified event once (by the digest of its body) and return its row."""
    data = _dict(payload.get("data"))
    kind = _text(payload.get("type"), 64)
    event, _ = WebhookEvent.objects.get_or_create(
        digest=digest,
        defaults={
            "event_type": kind or "(none)",
            "event_timestamp": _instant(payload.get("event_timestamp")),
            "conversation_id": _text(data.get("conversation_id"), 128),
            "agent_id": _text(data.get("agent_id"), 128),
            "payload": _clean(payload),
            "body_bytes": size,
            "status": E.PENDING if kind in RECORDED_TYPES else E.IGNORED,
            "note": "" if kind in RECORDED_TYPES else f"Events of type “{kind}” are acknowledged, not recorded.",
        },
    )
    return event


# --- Applying ------------------------------------------------------------------------------


def event_apply(*, event_id: int, batch_call_id: str = "", phone_number: str = "") -> bool:
    """Apply a pending event to the call it is about; returns whether it is applied now.

    `batch_call_id` and `phone_number` are what ElevenLabs told about the conversation
    when it was looked up. An event that cannot be matched stays pending with a note.
    """
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().filter(pk=event_id).first()
        if event is None or event.status != E.PENDING:
            return event is not None and event.status == E.APPLIED
        outcome = event_outcome(event.payload)
        if outcome is None:
            WebhookEvent.objects.filter(pk=event.pk).update(status=E.IGNORED)
            return False
        outcome.batch_call_id = outcome.batch_call_id or batch_call_id
        outcome.phone_number = outcome.phone_number or phone_number
        recipient, note = _recipient_match(outcome)
        if recipient is None:
            WebhookEvent.objects.filter(pk=event.pk).update(attempts=F("attempts") + 1, note=note)
            return False
        call = _outcome_record(outcome, recipient_id=recipient.pk)
        WebhookEvent.objects.filter(pk=event.pk).update(
            status=E.APPLIED, applied_at=timezone.now(), call=call, note="", attempts=F("attempts") + 1
        )
    return True


def _recipient_match(outcome: Outcome) -> tuple[Recipient | None, str]:
    conversation_id = outcome.conversation_id
    if conversation_id:
        # Every conversation a poll or an event has taught us has its Call (indexed by id).
        call = Call.objects.filter(conversation_id=conversation_id).select_related("recipient").first()
        if call is not None:
            return call.recipient, ""
    if not outcome.phone_number:
        return None, "No conversation we know, and no called number to match it by."
    if outcome.batch_call_id:
        # A batch call's id, or an outbound campaign's (its calls' events name it in the same place).
        campaign_id = (
            CampaignBatch.objects.filter(
                Q(elevenlabs_batch_call_id=outcome.batch_call_id) | Q(elevenlabs_campaign_id=outcome.batch_call_id)
            )
            .values_list("campaign_id", flat=True)
            .first()
        )
        if campaign_id is not None:
            recipient = Recipient.objects.filter(campaign_id=campaign_id, phone_number=outcome.phone_number).first()
            if recipient is not None:
                return recipient, ""
        return None, f"Batch {outcome.batch_call_id} has no recipient {outcome.phone_number} here (yet)."
    # A provider's failure payload has no batch id: the number among the calls still followed.
    followed = CampaignBatch.objects.filter(BATCH_SENT, settled_at__isnull=True)
    candidates = Recipient.objects.filter(
        phone_number=outcome.phone_number, campaign_id__in=followed.values("campaign_id")
    )
    if outcome.agent_id:
        candidates = candidates.filter(campaign__agent__elevenlabs_agent_id=outcome.agent_id)
    if conversation_id:
        # A recipient already on another conversation is not the one this call was for.
        candidates = candidates.filter(conversation_id__in=("", conversation_id))
    found = list(candidates[:2])
    if len(found) == 1:
        return found[0], ""
    if found:
        return None, f"{outcome.phone_number} is being called by several campaigns of this agent: waiting for a poll."
    return None, f"No campaign being followed calls {outcome.phone_number} with agent {outcome.agent_id or '?'}."


def _outcome_record(outcome: Outcome, *, recipient_id: int) -> Call | None:
    """Record the outcome on its call and, if it is about the latest attempt, on the recipient."""
    recipient = _recipient_locked(recipient_id)
    call = None
    if outcome.conversation_id:
        call, _ = Call.objects.get_or_create(
            conversation_id=outcome.conversation_id,
            defaults={
                "recipient_id": recipient.pk,
                "campaign_id": recipient.campaign_id,
                "attempt": _attempt_of(recipient, outcome),
            },
        )
        _call_update(call, outcome)
    if call is not None and call.attempt != recipient.attempt:
        logger.info("Event about attempt %s of recipient %s recorded on its call only", call.attempt, recipient.pk)
        return call
    changed = []
    if tracking.status_moves_forward(recipient.status, outcome.status):
        recipient.status = outcome.status
        changed.append("status")
    if outcome.conversation_id and not recipient.conversation_id:
        recipient.conversation_id = outcome.conversation_id
        changed.append("conversation_id")
    for name in ("call_result", "call_successful", "failure_reason", "summary"):
        value = getattr(outcome, name)
        if value and value != getattr(recipient, name):
            # Voicemail decided by the call's own result is never turned back into completed.
            if name == "call_result" and recipient.status == R.VOICEMAIL and value == "answered":
                continue
            setattr(recipient, name, value)
            changed.append(name)
    if changed:
        recipient.status_updated_at = timezone.now()
        recipient.save(update_fields=[*changed, "status_updated_at"])
        if "status" in changed and recipient.status in tracking.TERMINAL_RECIPIENT_STATUSES:
            events.recipients_call_finished(campaign_id=recipient.campaign_id, recipient_ids=[recipient.pk])
    return call


def _recipient_locked(recipient_id: int) -> Recipient:
    """The recipient, locked until the transaction ends against other writers of its columns.

    FOR NO KEY UPDATE, not FOR UPDATE: a poll inserting the calls it learned checks their
    recipients with FOR KEY SHARE, which FOR UPDATE would block. Holding that lock while
    inserting this event's call, which the poll may be inserting too, deadlocked the two.
    """
    return Recipient.objects.select_for_update(no_key=True).get(pk=recipient_id)


def _attempt_of(recipient: Recipient, outcome: Outcome) -> int:
    """The attempt a conversation we have not seen before belongs to."""
    if recipient.conversation_id == outcome.conversation_id:
        return recipient.attempt
    # event_timestamp has whole seconds: only a whole second before the retry is surely earlier.
    if recipient.retried_at and outcome.occurred_at and outcome.occurred_at + ONE_SECOND <= recipient.retried_at:
        # It happened before the recipient was retried: about an earlier call.
        return max(1, recipient.attempt - 1)
    return recipient.attempt


def _call_update(call: Call, outcome: Outcome) -> None:
    changed = []
    if not call.status or tracking.status_moves_forward(call.status, outcome.status):
        call.status = outcome.status
        changed.append("status")
    for name in (
        "call_result",
        "call_successful",
        "failure_reason",
        "summary",
        "provider",
        "provider_status",
        "provider_code",
        "duration_secs",
        "started_at",
    ):
        value = getattr(outcome, name)
        if value not in ("", None) and value != getattr(call, name):
            setattr(call, name, value)
            changed.append(name)
    if outcome.transcript:
        call.transcript = outcome.transcript
        changed.append("transcript")
    if outcome.data_collection and outcome.data_collection != call.data_collection:
        call.data_collection = outcome.data_collection
        changed.append("data_collection")
    if changed:
        call.save(update_fields=[*changed, "updated_at"])


# --- Pending events ------------------------------------------------------------------------


def events_apply_pending(*, conversation_ids=None, limit: int = SWEEP_BATCH) -> int:
    """Apply pending events (only those about `conversation_ids`, if given); returns how many applied."""
    pending = WebhookEvent.objects.filter(status=E.PENDING).order_by("received_at", "pk")
    if conversation_ids is not None:
        # One JSON parameter, however many conversations a poll just learned (a first poll
        # of a 10,000-call batch learns them all): no giant IN list, one query.
        wanted = json.dumps(sorted({cid for cid in conversation_ids if cid}))
        if connection.vendor == "postgresql":
            ids = RawSQL("SELECT jsonb_array_elements_text(%s::jsonb)", [wanted])
        else:
            ids = RawSQL("SELECT value FROM json_each(%s)", [wanted])
        pending = pending.filter(conversation_id__in=ids)
    event_ids = list(pending.values_list("pk", flat=True)[:limit])
    applied = 0
    for event_id in event_ids:
        try:
            applied += event_apply(event_id=event_id)
        except Exception:
            # One bad event must not hold up the others; it stays pending for the next sweep.
            logger.exception("Could not apply webhook event %s", event_id)
    return applied


def events_look_up(*, client=None, now: dt.datetime | None = None, limit: int = 50) -> int:
    """Ask ElevenLabs about the conversations of events still unmatched after a while.

    Each event is looked up once; it stays pending afterwards if even ElevenLabs' answer
    does not tell whose call it was (a later poll may still). Returns how many applied.
    """
    now = now or timezone.now()
    waiting = (
        WebhookEvent.objects.filter(
            status=E.PENDING,
            looked_up_at__isnull=True,
            received_at__lte=now - dt.timedelta(seconds=LOOKUP_AFTER_SECONDS),
        )
        .exclude(conversation_id="")
        .order_by("received_at", "pk")[:limit]
    )
    applied = 0
    for event in waiting:
        if not WebhookEvent.objects.filter(pk=event.pk, looked_up_at__isnull=True).update(looked_up_at=now):
            continue  # another sweep took it
        try:
            conversation = (client or elevenlabs.client_from_settings()).get_conversation(event.conversation_id)
        except elevenlabs.ElevenLabsError as exc:
            WebhookEvent.objects.filter(pk=event.pk).update(note=f"Looking the conversation up failed: {exc}"[:2000])
            if exc.retryable:
                WebhookEvent.objects.filter(pk=event.pk).update(looked_up_at=None)
            continue
        applied += event_apply(
            event_id=event.pk,
            batch_call_id=conversation.batch_call_id or "",
            phone_number=_phone(conversation.external_number),
        )
    return applied
