"""One recipient's call as staff look at it: how it ended, what was said, what the agent collected,
and its recording, passed on from ElevenLabs so the key never leaves this service.

The transcript is the one ElevenLabs' post-call webhook stored; until that arrives it is read
from ElevenLabs (`services.conversation_get`), so a call just ended shows too. Calls that never
connected have nothing to read, and ElevenLabs is not asked about them.
"""

from dataclasses import dataclass

from campaigns import elevenlabs, selectors, services, tracking
from campaigns.errors import NotFound, UpstreamError
from campaigns.models import Call, Campaign, Recipient

# ElevenLabs' own page for a conversation, in its dashboard.
ELEVENLABS_CONVERSATION_URL = "https://elevenlabs.io/app/conversational-ai/history/{conversation_id}"
# Outcomes of a call that connected: ElevenLabs keeps a transcript and, unless the agent's
# audio saving is off, a recording.
CONNECTED = (*tracking.ANSWERED_OUTCOMES, "voicemail")
# Still going: a transcript may already be there, a recording not yet.
UNDER_WAY = ("ringing", "on_call")


class NoRecording(NotFound):
    """ElevenLabs has no recording of the call."""


@dataclass(frozen=True)
class CallView:
    campaign: Campaign
    recipient: Recipient
    calls: list[Call]  # every call placed to the recipient, first attempt first
    call: Call | None  # the one shown: the latest, or the attempt asked for
    outcome: str  # a key of tracking.OUTCOME_LABELS
    transcript: list[dict]  # {"role", "content", "timestamp"}, as the API's conversations show it
    transcript_from_elevenlabs: bool  # read just now, the post-call webhook not in yet
    transcript_error: str
    summary: str
    duration_secs: int | None
    data_collection: dict  # {id: {"value", "rationale"}}

    @property
    def outcome_label(self) -> str:
        return tracking.OUTCOME_LABELS[self.outcome]

    @property
    def connected(self) -> bool:
        return self.outcome in CONNECTED

    @property
    def under_way(self) -> bool:
        return self.outcome in UNDER_WAY

    @property
    def calls_in_words(self) -> list[tuple[Call, str]]:
        """Every call with how it ended, in the words of the outcome labels."""
        current = self.recipient.conversation_id
        return [
            (
                call,
                self.outcome_label if call.conversation_id == current else tracking.OUTCOME_LABELS[_call_outcome(call)],
            )
            for call in self.calls
        ]

    @property
    def elevenlabs_url(self) -> str:
        if self.call is None:
            return ""
        return ELEVENLABS_CONVERSATION_URL.format(conversation_id=self.call.conversation_id)


def _call_outcome(call: Call) -> str:
    return tracking.outcome_of(
        status=call.status,
        call_result=call.call_result,
        call_successful=call.call_successful,
        failure_reason=call.failure_reason,
        attempt=1,
        conversation_id="",
    )


def _recipient_outcome(recipient: Recipient) -> str:
    return tracking.outcome_of(
        status=recipient.status,
        call_result=recipient.call_result,
        call_successful=recipient.call_successful,
        failure_reason=recipient.failure_reason,
        attempt=recipient.attempt,
        conversation_id=recipient.conversation_id,
    )


def _shown_call(recipient: Recipient, calls: list[Call], attempt) -> Call | None:
    """The call of `attempt` (the latest of them if there were two), else the recipient's latest call."""
    if attempt not in (None, ""):
        try:
            wanted = int(attempt)
        except (TypeError, ValueError):
            raise NotFound(f"Call not found: recipient {recipient.pk} has no attempt {attempt}.") from None
        found = [call for call in calls if call.attempt == wanted]
        if not found:
            raise NotFound(f"Call not found: recipient {recipient.pk} has no attempt {attempt}.")
        return found[-1]
    current = [call for call in calls if call.conversation_id == recipient.conversation_id]
    return (current or calls or [None])[-1]


def call_view(*, user, campaign_id, recipient_id, attempt=None, client=None) -> CallView:
    """One recipient of one of the user's campaigns, with the call shown in full.

    Raises NotFound when the campaign is not the user's, the recipient not the campaign's, or it
    has no such attempt. ElevenLabs failing leaves the transcript out, with `transcript_error`.
    """
    campaign = selectors.campaign_get(user=user, campaign_id=campaign_id)
    recipient = selectors.recipient_get(campaign=campaign, recipient_id=recipient_id)
    calls = list(recipient.calls.all())
    call = _shown_call(recipient, calls, attempt)
    is_current = call is None or call.conversation_id == recipient.conversation_id
    outcome = _recipient_outcome(recipient) if is_current else _call_outcome(call)
    transcript, from_elevenlabs, error = [], False, ""
    summary = (recipient.summary if is_current else "") or (call.summary if call else "")
    duration = call.duration_secs if call else None
    if call is not None and (outcome in CONNECTED or outcome in UNDER_WAY):
        try:
            conversation = services.conversation_get(user=user, conversation_id=call.conversation_id, client=client)
        except NotFound as exc:
            error = exc.error
        except UpstreamError as exc:
            error = f"The transcript could not be read from ElevenLabs just now: {exc.error}"
        else:
            transcript, from_elevenlabs = conversation.transcript, conversation.from_elevenlabs
            summary = summary or conversation.summary
            duration = duration if duration is not None else conversation.duration
    return CallView(
        campaign=campaign,
        recipient=recipient,
        calls=calls,
        call=call,
        outcome=outcome,
        transcript=transcript,
        transcript_from_elevenlabs=from_elevenlabs,
        transcript_error=error,
        summary=summary,
        duration_secs=duration,
        data_collection=(call.data_collection if call and isinstance(call.data_collection, dict) else {}),
    )


def call_get(*, user, campaign_id, recipient_id, call_id) -> Call:
    """One call of a recipient of one of the user's campaigns; NotFound for anything else."""
    campaign = selectors.campaign_get(user=user, campaign_id=campaign_id)
    call = Call.objects.filter(campaign=campaign, recipient_id=recipient_id, pk=call_id).first()
    if call is None:
        raise NotFound(f"Call not found: recipient {recipient_id} of campaign {campaign.pk} has no call {call_id}.")
    return call


def call_recording(*, call: Call, client=None) -> elevenlabs.AudioStream:
    """The call's recording from ElevenLabs, to be passed on as it arrives.

    Raises NoRecording when ElevenLabs has none (the call never connected, audio saving is off
    for the agent, or its retention deleted it), UpstreamError when ElevenLabs fails.
    """
    client = client or elevenlabs.client_from_settings()
    try:
        return client.stream_conversation_audio(call.conversation_id)
    except elevenlabs.ElevenLabsNotFound:
        raise NoRecording(
            "ElevenLabs has no recording of this call. Calls that did not connect have none, nor do calls "
            "of an agent whose audio saving is off, or calls older than the workspace keeps."
        ) from None
    except elevenlabs.ElevenLabsError as exc:
        raise UpstreamError(f"The recording could not be fetched from ElevenLabs: {exc}") from None
