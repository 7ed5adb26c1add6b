"""What the ElevenLabs sandbox does: accept batch calls, play them out over time, send webhooks.

Timeline
    A batch starts at max(submission time, `scheduled_time_unix`). Recipient i (in the order
    submitted) is dispatched at start + i * SANDBOX_CALL_SPACING_SECONDS (default 0.5) and then
    moves one status every SANDBOX_STEP_SECONDS (default 2.0):

        pending -> dispatched -> initiated -> in_progress -> completed | voicemail
        pending -> dispatched -> initiated -> failed              (busy, no answer)

    ElevenLabs creates a conversation for every call it places, so every recipient gets a
    conversation_id (`conv_...`) at `initiated`, answered or not; each attempt (a retry) gets
    a new one. The batch is `pending` until its first recipient is dispatched, then
    `in_progress`, then `completed` once every recipient is in a terminal status. Statuses are
    computed from the clock on every read (`batch_advance`, including the submit's own answer,
    so an immediate batch answers `in_progress`; a small batch read late may go from `pending`
    straight to `completed`) and by `sandbox_tick`, so nothing needs to run in the background
    for the API to move forward; only webhooks need `sandbox_tick`.

Conversations (`GET /v1/convai/conversations/{id}`, `conversation_get`)
    `initiated` while the call rings, `in-progress` once answered, `processing` for half a
    step after an answered call ends (its analysis is running), then `done`; `failed` for a
    busy or unanswered call, and for a call cancelled after it was placed. Earlier attempts
    of a retried recipient stay readable. `metadata.phone_call.call_result` says how the call
    ended (`answered`, `voicemail`, `busy`, `no_answer`); `termination_reason` is free text
    that never names the outcome.

Outcome, from the last digit of the recipient's phone number
    0-5  completed, analysis call_successful "success"
    6    failed, failure_reason "busy"       (completed on a retry)
    7    failed, failure_reason "no-answer"  (completed on a retry)
    8    voicemail (call_successful "failure", call_result "voicemail")
    9    completed, analysis call_successful "failure"
    A recipient with no phone number (WhatsApp) completes successfully.

Cancel moves every recipient not yet in a terminal status to `cancelled`. Retry puts the
`failed` and `voicemail` recipients of a finished batch back to `pending` on a new timeline
that starts at the time of the retry.

Webhooks (`sandbox_tick`)
    Each recipient that ends `completed` or `voicemail` gets one `post_call_transcription`
    event once its conversation is `done` (its `data` is the conversation, as the endpoint
    above returns it) and, when SANDBOX_WEBHOOK_AUDIO is on, one `post_call_audio` event
    (SANDBOX_WEBHOOK_AUDIO_BYTES random bytes, base64, POSTed with `Transfer-Encoding:
    chunked`). Each `failed` one gets a `call_initiation_failure` event whose `metadata`
    is the provider's own report: Twilio's status-callback fields for a Twilio number
    (`"type": "twilio"`), the SIP outcome for a SIP-trunk number (`"type": "sip"`). Events are
    POSTed to SANDBOX_WEBHOOK_URL, signed with ELEVENLABS_WEBHOOK_SECRET (see
    `sandbox.signing`). An event counts as delivered after a 2xx answer; otherwise it is tried
    again on the next tick, at most three times in all, the audio apart from the rest.
"""

import logging
import math
import re
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass
from time import monotonic

from django.conf import settings
from django.db import transaction
from django.db.models import Case, CharField, Count, Exists, F, OuterRef, Q, Value, When
from django.db.models.functions import Cast, Coalesce, Concat, LPad

from sandbox import audio, delivery, validation, workspace
from sandbox.delivery import WEBHOOK_MAX_ATTEMPTS
from sandbox.errors import (
    AudioNotFound,
    ConversationNotFound,
    InvalidCursor,
    InvalidState,
    NotFound,
    OverrideNotAllowed,
)
from sandbox.models import BatchStatus, Outcome, RecipientStatus, SandboxBatch, SandboxRecipient

logger = logging.getLogger(__name__)

ACTIVE_BATCH = (BatchStatus.PENDING, BatchStatus.IN_PROGRESS)
OPEN_RECIPIENT = (
    RecipientStatus.PENDING,
    RecipientStatus.DISPATCHED,
    RecipientStatus.INITIATED,
    RecipientStatus.IN_PROGRESS,
)
TERMINAL_RECIPIENT = (
    RecipientStatus.COMPLETED,
    RecipientStatus.FAILED,
    RecipientStatus.CANCELLED,
    RecipientStatus.VOICEMAIL,
)
RETRYABLE_RECIPIENT = (RecipientStatus.FAILED, RecipientStatus.VOICEMAIL)
NOTIFIED_RECIPIENT = (RecipientStatus.COMPLETED, RecipientStatus.FAILED, RecipientStatus.VOICEMAIL)
RECORDED_RECIPIENT = (RecipientStatus.COMPLETED, RecipientStatus.VOICEMAIL)
# DO_NOT_CALL only happens in outbound campaigns (`sandbox.outbound`), never in a batch.
ANSWERED = (Outcome.SUCCESS, Outcome.UNSUCCESSFUL, Outcome.VOICEMAIL, Outcome.DO_NOT_CALL)
UNANSWERED = (Outcome.BUSY, Outcome.NO_ANSWER)

RETRY_CHUNK = 2_000
# Floating-point slack when deciding whether a moment on the timeline has been reached.
_EPSILON = 1e-6


def sandbox_enabled() -> bool:
    return bool(getattr(settings, "ELEVENLABS_SANDBOX", False))


def sandbox_api_key() -> str:
    """The only key the sandbox accepts; empty (no request accepted) when settings have none."""
    return getattr(settings, "ELEVENLABS_SANDBOX_API_KEY", "") or ""


def _clock(now: float | None) -> float:
    return time.time() if now is None else now


@dataclass(frozen=True)
class Timeline:
    spacing: float
    step: float

    @classmethod
    def from_settings(cls) -> "Timeline":
        return cls(
            spacing=float(getattr(settings, "SANDBOX_CALL_SPACING_SECONDS", 0.5)),
            step=float(getattr(settings, "SANDBOX_STEP_SECONDS", 2.0)),
        )

    @property
    def processing(self) -> float:
        """How long an answered call's analysis runs after the call ends."""
        return self.step / 2

    def dispatched_at(self, batch: SandboxBatch, position: int, attempt: int | None = None) -> float:
        """When the recipient at `position` is dispatched in the current round (or on its `attempt`)."""
        start = batch.started_at
        if attempt is not None and 0 < attempt <= len(batch.round_starts):
            start = batch.round_starts[attempt - 1]
        return start + position * self.spacing

    def last_position_at_stage(self, batch: SandboxBatch, stage: int, now: float) -> int | None:
        """The highest position that has reached `stage` (0 dispatched ... 3 ended), or None."""
        elapsed = now - batch.started_at - stage * self.step + _EPSILON
        if elapsed < 0:
            return None
        if self.spacing <= 0:
            return batch.total_calls_scheduled
        return math.floor(elapsed / self.spacing)


def outcome_for(phone_number: str | None, attempt: int) -> Outcome:
    """How the call to `phone_number` ends on its `attempt`-th try (see the module docstring)."""
    digit = phone_number.strip()[-1:] if phone_number else ""
    if not digit.isdigit():
        return Outcome.SUCCESS
    if digit in "67" and attempt >= 2:
        return Outcome.SUCCESS
    return {
        "6": Outcome.BUSY,
        "7": Outcome.NO_ANSWER,
        "8": Outcome.VOICEMAIL,
        "9": Outcome.UNSUCCESSFUL,
    }.get(digit, Outcome.SUCCESS)


def conversation_id_for(recipient: SandboxRecipient, attempt: int | None = None) -> str:
    """The conversation_id of the recipient's `attempt`, by default its current one (mirrors `_conversation_id_sql`)."""
    return f"conv_{recipient.conversation_key}{recipient.attempt if attempt is None else attempt:02d}"


_CONVERSATION_ID = re.compile(r"^conv_(?P<key>[0-9a-f]{22})(?P<attempt>[0-9]{2,})$")


def _conversation_id_sql():
    return Concat(
        Value("conv_"),
        F("conversation_key"),
        LPad(Cast("attempt", output_field=CharField()), 2, Value("0")),
        output_field=CharField(),
    )


# --- Batch calls --------------------------------------------------------------------------


@transaction.atomic
def batch_submit(*, payload: dict, now: float | None = None) -> SandboxBatch:
    """Create a batch call from a validated submit body (see `validation.submit_body_validate`).

    Refuses overrides the agent does not allow (unless SANDBOX_REFUSE_OVERRIDES is off). The
    batch is returned as stored; `batch_advance` brings it to the moment of answering.
    """
    now = _clock(now)
    agent = workspace.agent_find(payload["agent_id"])
    if agent is None:
        raise NotFound(f"Agent {payload['agent_id']} not found")
    phone_number = _batch_phone_number(payload, agent)
    if getattr(settings, "SANDBOX_REFUSE_OVERRIDES", True):
        _overrides_check(payload["recipients"], agent)
    scheduled = payload.get("scheduled_time_unix")
    now_unix = int(now)
    started_at = max(now, float(scheduled)) if scheduled is not None else now
    telephony_call_config = {
        "ringing_timeout_secs": 60,
        "twilio_call_recording_enabled": False,
        "twilio_machine_detection": None,
        **(payload.get("telephony_call_config") or {}),
    }
    batch = SandboxBatch.objects.create(
        id=f"btcal_{secrets.token_hex(12)}",
        name=payload["call_name"],
        agent_id=agent["agent_id"],
        agent_name=agent["name"],
        phone_number_id=phone_number["phone_number_id"] if phone_number else None,
        phone_provider=phone_number["provider"] if phone_number else None,
        status=BatchStatus.PENDING,
        created_at=now,
        created_at_unix=now_unix,
        scheduled_time_unix=scheduled if scheduled is not None else now_unix,
        timezone=payload.get("timezone"),
        branch_id=payload.get("branch_id"),
        environment=payload.get("environment"),
        telephony_call_config=telephony_call_config,
        whatsapp_params=payload.get("whatsapp_params"),
        target_concurrency_limit=payload.get("target_concurrency_limit"),
        total_calls_scheduled=len(payload["recipients"]),
        started_at=started_at,
        round_starts=[started_at],
        last_updated_at_unix=now_unix,
    )
    SandboxRecipient.objects.bulk_create(
        SandboxRecipient(
            id=f"rcpt_{secrets.token_hex(12)}",
            batch_id=batch.pk,
            position=position,
            phone_number=recipient["phone_number"],
            whatsapp_user_id=recipient["whatsapp_user_id"],
            external_id=recipient["id"],
            client_data=recipient["conversation_initiation_client_data"],
            status=RecipientStatus.PENDING,
            outcome=outcome_for(recipient["phone_number"], 1),
            attempt=1,
            conversation_key=secrets.token_hex(11),
            created_at_unix=now_unix,
            updated_at_unix=now_unix,
        )
        for position, recipient in enumerate(payload["recipients"])
    )
    return batch


def _overrides_check(recipients: list[dict], agent: dict) -> None:
    """Refuse the batch when a recipient overrides a field the agent's security settings lock."""
    permissions = workspace.AGENT_OVERRIDES.get(agent["agent_id"], {})
    allowed = permissions.get("conversation_config_override") or {}
    for index, recipient in enumerate(recipients):
        override = (recipient["conversation_initiation_client_data"] or {}).get("conversation_config_override")
        refused = validation.override_fields_refused(override or {}, allowed)
        if refused:
            raise OverrideNotAllowed(
                f"recipients[{index}]: conversation_config_override field '{refused[0]}' is not allowed to be "
                f"overridden for agent {agent['agent_id']}; allow it in the agent's security settings"
            )


def _batch_phone_number(payload: dict, agent: dict) -> dict | None:
    """The number the calls are placed from: the one asked for, else the agent's own, else the first."""
    phone_number_id = payload.get("agent_phone_number_id")
    if phone_number_id is not None:
        phone_number = workspace.phone_number_find(phone_number_id)
        if phone_number is None:
            raise NotFound(f"Phone number {phone_number_id} not found")
        return phone_number
    if payload.get("whatsapp_params") is not None:
        return None
    assigned = [
        number
        for number in workspace.PHONE_NUMBERS
        if (number["assigned_agent"] or {}).get("agent_id") == agent["agent_id"]
    ]
    return (assigned or workspace.PHONE_NUMBERS)[0]


def batch_advance(batch: SandboxBatch, now: float | None = None) -> SandboxBatch:
    """Bring the batch and its recipients to where the timeline says they are at `now`.

    A handful of UPDATEs whatever the number of recipients: each moves every recipient
    that has reached one stage of the timeline, most advanced stage first, so that a row
    changes at most once.
    """
    if batch.status not in ACTIVE_BATCH:
        return batch
    now = _clock(now)
    timeline = Timeline.from_settings()
    if timeline.last_position_at_stage(batch, 0, now) is None:
        return batch
    now_unix = int(now)
    conversation_id = Coalesce(F("conversation_id"), _conversation_id_sql())
    moves = [
        # (stage reached, recipients concerned, changes)
        (
            3,
            Q(outcome__in=ANSWERED, status__in=OPEN_RECIPIENT),
            {
                "status": Case(
                    When(outcome=Outcome.VOICEMAIL, then=Value(RecipientStatus.VOICEMAIL)),
                    default=Value(RecipientStatus.COMPLETED),
                    output_field=CharField(),
                ),
                "conversation_id": conversation_id,
            },
        ),
        (
            2,
            Q(outcome__in=UNANSWERED, status__in=OPEN_RECIPIENT),
            {"status": RecipientStatus.FAILED, "conversation_id": conversation_id},
        ),
        (
            2,
            Q(
                outcome__in=ANSWERED,
                status__in=(RecipientStatus.PENDING, RecipientStatus.DISPATCHED, RecipientStatus.INITIATED),
            ),
            {"status": RecipientStatus.IN_PROGRESS, "conversation_id": conversation_id},
        ),
        (
            1,
            Q(status__in=(RecipientStatus.PENDING, RecipientStatus.DISPATCHED)),
            {"status": RecipientStatus.INITIATED, "conversation_id": conversation_id},
        ),
        (0, Q(status=RecipientStatus.PENDING), {"status": RecipientStatus.DISPATCHED}),
    ]
    with transaction.atomic():
        changed = 0
        for stage, which, changes in moves:
            last_position = timeline.last_position_at_stage(batch, stage, now)
            if last_position is None:
                continue
            changed += SandboxRecipient.objects.filter(which, batch=batch, position__lte=last_position).update(
                dispatched=True, updated_at_unix=now_unix, **changes
            )
        if changed:
            _batch_totals_save(batch, now_unix)
    return batch


def _batch_totals_save(batch: SandboxBatch, now_unix: int, *, status: str | None = None) -> None:
    """Recount the batch's totals from its recipients and derive its status (unless given).

    The write only lands if nobody changed the batch's status meanwhile (a cancel racing
    with a read, say); the batch is then reloaded instead.
    """
    counts = SandboxRecipient.objects.filter(batch=batch).aggregate(
        n_scheduled=Count("pk"),
        n_dispatched=Count("pk", filter=Q(dispatched=True)),
        n_finished=Count("pk", filter=Q(dispatched=True, status__in=TERMINAL_RECIPIENT)),
        n_open=Count("pk", filter=Q(status__in=OPEN_RECIPIENT)),
    )
    if status is None:
        if counts["n_open"] == 0:
            status = BatchStatus.COMPLETED
        elif counts["n_dispatched"]:
            status = BatchStatus.IN_PROGRESS
        else:
            status = BatchStatus.PENDING
    changes = {
        "status": status,
        "total_calls_scheduled": counts["n_scheduled"],
        "total_calls_dispatched": counts["n_dispatched"],
        "total_calls_finished": counts["n_finished"],
        "last_updated_at_unix": now_unix,
        "started_at": batch.started_at,
        "round_starts": batch.round_starts,
        "retry_count": batch.retry_count,
    }
    if SandboxBatch.objects.filter(pk=batch.pk, status=batch.status).update(**changes):
        for name, value in changes.items():
            setattr(batch, name, value)
    else:
        batch.refresh_from_db()


def batch_get(*, batch_id: str, now: float | None = None) -> SandboxBatch:
    """The batch as it stands at `now`."""
    batch = SandboxBatch.objects.filter(pk=batch_id).first()
    if batch is None:
        raise NotFound(f"Batch call {batch_id} not found")
    return batch_advance(batch, now)


def batch_recipients(*, batch: SandboxBatch) -> list[SandboxRecipient]:
    return list(SandboxRecipient.objects.filter(batch=batch).order_by("position"))


@dataclass(frozen=True)
class BatchPage:
    batch_calls: list[SandboxBatch]
    next_doc: str | None
    has_more: bool


def batch_list(
    *, limit: int = 100, last_doc: str | None = None, agent_id: str | None = None, now: float | None = None
) -> BatchPage:
    """The workspace's batch calls, newest first, `limit` at a time after the batch `last_doc`."""
    batches = SandboxBatch.objects.order_by("-created_at", "-id")
    if agent_id:
        batches = batches.filter(agent_id=agent_id)
    if last_doc:
        anchor = SandboxBatch.objects.filter(pk=last_doc).values("created_at", "id").first()
        if anchor is None:
            raise NotFound(f"Batch call {last_doc} not found")
        batches = batches.filter(
            Q(created_at__lt=anchor["created_at"]) | Q(created_at=anchor["created_at"], id__lt=anchor["id"])
        )
    page = list(batches[: limit + 1])
    has_more = len(page) > limit
    page = page[:limit]
    now = _clock(now)
    for batch in page:
        batch_advance(batch, now)
    return BatchPage(batch_calls=page, next_doc=page[-1].id if has_more and page else None, has_more=has_more)


def _batch_for_update(batch_id: str) -> SandboxBatch:
    batch = SandboxBatch.objects.select_for_update().filter(pk=batch_id).first()
    if batch is None:
        raise NotFound(f"Batch call {batch_id} not found")
    return batch


@transaction.atomic
def batch_cancel(*, batch_id: str, now: float | None = None) -> SandboxBatch:
    """Cancel a pending or running batch: every recipient not yet finished becomes `cancelled`."""
    now = _clock(now)
    batch = batch_advance(_batch_for_update(batch_id), now)
    if batch.status not in ACTIVE_BATCH:
        raise InvalidState(f"Batch call {batch_id} is {batch.status} and can no longer be cancelled")
    now_unix = int(now)
    SandboxRecipient.objects.filter(batch=batch, status__in=OPEN_RECIPIENT).update(
        status=RecipientStatus.CANCELLED, updated_at_unix=now_unix
    )
    _batch_totals_save(batch, now_unix, status=BatchStatus.CANCELLED)
    return batch


@transaction.atomic
def batch_retry(*, batch_id: str, now: float | None = None) -> SandboxBatch:
    """Call the failed and voicemail recipients of a finished batch again, from `now` on."""
    now = _clock(now)
    batch = batch_advance(_batch_for_update(batch_id), now)
    if batch.status != BatchStatus.COMPLETED:
        raise InvalidState(f"Batch call {batch_id} is {batch.status}; only a finished batch call can be retried")
    rows = list(
        SandboxRecipient.objects.filter(batch=batch, status__in=RETRYABLE_RECIPIENT).values_list(
            "pk", "phone_number", "attempt", "position"
        )
    )
    if not rows:
        raise InvalidState(f"Batch call {batch_id} has no failed or unanswered recipients to retry")
    by_outcome: dict[Outcome, list[str]] = defaultdict(list)
    for pk, phone_number, attempt, _position in rows:
        by_outcome[outcome_for(phone_number, attempt + 1)].append(pk)
    now_unix = int(now)
    for outcome, pks in by_outcome.items():
        for start in range(0, len(pks), RETRY_CHUNK):
            SandboxRecipient.objects.filter(pk__in=pks[start : start + RETRY_CHUNK]).update(
                status=RecipientStatus.PENDING,
                outcome=outcome,
                attempt=F("attempt") + 1,
                conversation_id=None,
                dispatched=False,
                webhook_sent=False,
                webhook_attempts=0,
                audio_sent=False,
                audio_attempts=0,
                updated_at_unix=now_unix,
            )
    # The new round keeps the recipients' order and spacing; its first call goes out now.
    first_position = min(position for *_, position in rows)
    batch.started_at = now - first_position * Timeline.from_settings().spacing
    batch.round_starts = [*batch.round_starts, batch.started_at]
    batch.retry_count += 1
    _batch_totals_save(batch, now_unix, status=BatchStatus.IN_PROGRESS)
    return batch


def batch_delete(*, batch_id: str) -> None:
    """Delete the batch and its recipients."""
    deleted, _ = SandboxBatch.objects.filter(pk=batch_id).delete()
    if not deleted:
        raise NotFound(f"Batch call {batch_id} not found")


# --- Agents and phone numbers -------------------------------------------------------------


@dataclass(frozen=True)
class AgentPage:
    agents: list[dict]
    next_cursor: str | None
    has_more: bool


def agent_list(
    *,
    page_size: int = 30,
    cursor: str | None = None,
    search: str | None = None,
    archived: bool | None = None,
    sort_by: str | None = None,
    sort_direction: str | None = None,
) -> AgentPage:
    """The workspace's agents, `page_size` at a time; `cursor` is the last agent_id of the previous page."""
    agents = list(workspace.AGENTS)
    if search:
        agents = [agent for agent in agents if search.lower() in agent["name"].lower()]
    if archived is not None:
        agents = [agent for agent in agents if bool(agent.get("archived")) == archived]
    key = "name" if sort_by == "name" else "created_at_unix_secs"
    agents.sort(key=lambda agent: (agent[key], agent["agent_id"]), reverse=sort_direction != "asc")
    start = 0
    if cursor:
        ids = [agent["agent_id"] for agent in agents]
        if cursor not in ids:
            raise InvalidCursor(f"Invalid cursor {cursor}")
        start = ids.index(cursor) + 1
    page = agents[start : start + page_size]
    has_more = start + page_size < len(agents)
    return AgentPage(agents=page, next_cursor=page[-1]["agent_id"] if has_more else None, has_more=has_more)


def agent_get(*, agent_id: str) -> dict:
    agent = workspace.agent_find(agent_id)
    if agent is None:
        raise NotFound(f"Agent {agent_id} not found")
    return agent


def phone_number_list(*, provider: str | None = None, agent_id: str | None = None) -> list[dict]:
    numbers = workspace.PHONE_NUMBERS
    if provider:
        numbers = [number for number in numbers if number["provider"] == provider]
    if agent_id:
        numbers = [number for number in numbers if (number["assigned_agent"] or {}).get("agent_id") == agent_id]
    return list(numbers)


# --- Conversations ----------------------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    """One call the sandbox has placed: a recipient's `attempt`, as it stands at some moment."""

    conversation_id: str
    batch: SandboxBatch
    recipient: SandboxRecipient
    attempt: int
    outcome: Outcome
    # initiated | in-progress | processing | done | failed, as ElevenLabs spells them.
    status: str
    cancelled: bool
    # When the call was placed, when it ended (None while it goes on), and how long it lasted.
    started_at: float
    ended_at: float | None
    duration_secs: int


def conversation_build(
    *, recipient: SandboxRecipient, batch: SandboxBatch, attempt: int, now: float
) -> Conversation | None:
    """The conversation of the recipient's `attempt` at `now`, or None if that call was never placed.

    The recipient must be up to date (`batch_advance`). Earlier attempts have ended with the
    outcome `outcome_for` gives them.
    """
    timeline = Timeline.from_settings()
    placed_at = timeline.dispatched_at(batch, recipient.position, attempt) + timeline.step
    cancelled = False
    if attempt < recipient.attempt:
        outcome = Outcome(outcome_for(recipient.phone_number, attempt))
        status = "done" if outcome in ANSWERED else "failed"
    else:
        outcome = Outcome(recipient.outcome)
        status = {
            RecipientStatus.INITIATED: "initiated",
            RecipientStatus.IN_PROGRESS: "in-progress",
            RecipientStatus.COMPLETED: "done",
            RecipientStatus.VOICEMAIL: "done",
            RecipientStatus.FAILED: "failed",
            RecipientStatus.CANCELLED: "failed",
        }.get(recipient.status)
        if status is None or recipient.conversation_id is None:
            return None
        cancelled = recipient.status == RecipientStatus.CANCELLED
        if status == "done" and now < placed_at + 2 * timeline.step + timeline.processing - _EPSILON:
            status = "processing"
    ended_at = None
    duration = 0
    if status in ("done", "processing"):
        ended_at = placed_at + 2 * timeline.step
        duration = max(1, round(2 * timeline.step))
    elif status == "in-progress":
        duration = max(0, int(now - placed_at))
    elif status == "failed":
        # Busy and unanswered calls fail one step after they were placed; cancelled ones at the cancel.
        ended_at = recipient.updated_at_unix if cancelled else placed_at + timeline.step
    return Conversation(
        conversation_id=conversation_id_for(recipient, attempt),
        batch=batch,
        recipient=recipient,
        attempt=attempt,
        outcome=outcome,
        status=status,
        cancelled=cancelled,
        started_at=placed_at,
        ended_at=ended_at,
        duration_secs=duration,
    )


def conversation_get(*, conversation_id: str, now: float | None = None) -> Conversation:
    """A conversation of any attempt of any recipient, as it stands at `now`."""
    match = _CONVERSATION_ID.match(conversation_id)
    if match is None:
        raise ConversationNotFound(conversation_id)
    now = _clock(now)
    recipient = SandboxRecipient.objects.filter(conversation_key=match["key"]).select_related("batch").first()
    if recipient is None:
        # Not a batch recipient's: perhaps a call of an outbound campaign.
        from sandbox import outbound

        return outbound.conversation_get(
            key=match["key"], number=int(match["attempt"]), conversation_id=conversation_id, now=now
        )
    if not 1 <= int(match["attempt"]) <= recipient.attempt:
        raise ConversationNotFound(conversation_id)
    batch = batch_advance(recipient.batch, now)
    recipient = SandboxRecipient.objects.get(pk=recipient.pk)
    conversation = conversation_build(recipient=recipient, batch=batch, attempt=int(match["attempt"]), now=now)
    if conversation is None:
        raise ConversationNotFound(conversation_id)
    return conversation


def conversation_audio(*, conversation: Conversation) -> bytes:
    """The recording of a call that ended and was analysed (`has_audio`): silence as long as the call.

    A call that never connected, or has not been analysed yet, has none: AudioNotFound.
    """
    if conversation.status != "done":
        raise AudioNotFound(conversation.conversation_id)
    return audio.silent_mp3(conversation.duration_secs)


# --- Webhooks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TickResult:
    batches_advanced: int = 0
    webhooks_sent: int = 0
    webhooks_failed: int = 0
    campaigns_advanced: int = 0
    # Another tick was running: this one did nothing.
    skipped: bool = False


@dataclass(frozen=True)
class _Delivery:
    """One kind of event per attempt, and the recipient columns that track its delivery."""

    statuses: tuple
    sent: str
    attempts: str
    audio: bool


_CALL_EVENT = _Delivery(statuses=NOTIFIED_RECIPIENT, sent="webhook_sent", attempts="webhook_attempts", audio=False)
_AUDIO_EVENT = _Delivery(statuses=RECORDED_RECIPIENT, sent="audio_sent", attempts="audio_attempts", audio=True)


def sandbox_tick(now: float | None = None) -> TickResult:
    """Advance every active batch and open outbound campaign, then send the webhooks of calls that have ended.

    One tick at a time (`delivery.tick_lease`): a tick that finds another running does
    nothing. The events due are read a chunk at a time and sent SANDBOX_WEBHOOK_CONCURRENCY
    at once, each claimed with a conditional UPDATE before it is sent, until none is left or
    SANDBOX_TICK_BUDGET_SECONDS have passed. No transaction is held while a webhook is in
    flight (the receiver may write to the same database).
    """
    from sandbox import outbound

    if not sandbox_enabled():
        return TickResult()
    with delivery.tick_lease() as held:
        if not held:
            return TickResult(skipped=True)
        return _tick(_clock(now), outbound)


def _tick(now: float, outbound) -> TickResult:
    deadline = monotonic() + delivery.budget_seconds()
    active = list(SandboxBatch.objects.filter(status__in=ACTIVE_BATCH))
    for batch in active:
        batch_advance(batch, now)
    campaigns = outbound.campaigns_advance(now)
    url = getattr(settings, "SANDBOX_WEBHOOK_URL", "")
    if not url:
        return TickResult(batches_advanced=len(active), campaigns_advanced=campaigns)
    kinds = [_CALL_EVENT]
    if getattr(settings, "SANDBOX_WEBHOOK_AUDIO", False):
        kinds.append(_AUDIO_EVENT)
    outcome = delivery.Outcome()
    sender = delivery.Sender(url=url, secret=getattr(settings, "ELEVENLABS_WEBHOOK_SECRET", ""))
    try:
        for kind in kinds:
            sources = (
                (delivery.Columns(SandboxRecipient, kind.sent, kind.attempts), _deliveries_due(kind=kind, now=now)),
                (outbound.delivery_columns(audio=kind.audio), outbound.deliveries_due(audio=kind.audio, now=now)),
            )
            for columns, due in sources:
                delivery.deliver(
                    columns=columns, due=due, sender=sender, audio=kind.audio, deadline=deadline, outcome=outcome
                )
    finally:
        sender.close()
    if outcome.out_of_time:
        logger.info("Sandbox tick out of time after %s webhooks; the next tick sends the rest", outcome.sent)
    return TickResult(
        batches_advanced=len(active),
        webhooks_sent=outcome.sent,
        webhooks_failed=outcome.failed,
        campaigns_advanced=campaigns,
    )


def _deliveries_due(*, kind: _Delivery, now: float):
    """The due events of one kind, as lists of at most DUE_CHUNK, batch by batch in position order.

    Keyset pagination on (batch, position): never more than one chunk of recipients in memory.
    Calls still being analysed are passed over; a later tick finds them.
    """
    due = SandboxRecipient.objects.filter(
        status__in=kind.statuses,
        **{kind.sent: False, f"{kind.attempts}__lt": WEBHOOK_MAX_ATTEMPTS},
    )
    # Few batches have events due at once, and each is one small row.
    batches = list(SandboxBatch.objects.filter(Exists(due.filter(batch=OuterRef("pk")))).order_by("created_at", "id"))
    for batch in batches:
        after = -1
        while True:
            chunk = list(due.filter(batch=batch, position__gt=after).order_by("position")[: delivery.DUE_CHUNK])
            if not chunk:
                break
            after = chunk[-1].position
            rows = []
            for recipient in chunk:
                conversation = conversation_build(recipient=recipient, batch=batch, attempt=recipient.attempt, now=now)
                if conversation is None or conversation.status not in ("done", "failed"):
                    continue  # ElevenLabs posts once the analysis is done
                rows.append(
                    delivery.Due(
                        pk=recipient.pk,
                        attempts=getattr(recipient, kind.attempts),
                        attempt=recipient.attempt,
                        conversation=conversation,
                    )
                )
            if rows:
                yield rows


# --- Deleting a conversation ----------------------------------------------------------------


def conversation_deleted(*, conversation_id: str) -> bool:
    from sandbox.models import SandboxDeletedConversation

    return SandboxDeletedConversation.objects.filter(conversation_id=conversation_id).exists()


def conversation_delete(*, conversation_id: str, now: float | None = None) -> None:
    """Delete a conversation (its transcript and recording): one that never was, or was deleted
    already, is ConversationNotFound."""
    from sandbox.models import SandboxDeletedConversation

    if conversation_deleted(conversation_id=conversation_id):
        raise ConversationNotFound(conversation_id)
    conversation_get(conversation_id=conversation_id, now=now)
    SandboxDeletedConversation.objects.get_or_create(conversation_id=conversation_id)
