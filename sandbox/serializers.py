"""The sandbox's state as ElevenLabs JSON: response bodies and webhook events.

Optional fields are present with `null` when unset, as ElevenLabs' FastAPI responses are.
Webhook events carry only what ElevenLabs documents; the provider's own report in a
`call_initiation_failure` is shaped as that provider sends it.
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import json
import math
from typing import TYPE_CHECKING

from sandbox import workspace
from sandbox.models import (
    CampaignCallStatus,
    Outcome,
    SandboxBatch,
    SandboxCampaign,
    SandboxCampaignCall,
    SandboxLead,
    SandboxRecipient,
)

if TYPE_CHECKING:
    from sandbox.outbound import CallPage, CampaignPage, LeadCounts, LeadPage, Progress, Submitted, Suppressed
    from sandbox.services import Conversation


def json_bytes(payload) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def batch_to_json(batch: SandboxBatch) -> dict:
    """`BatchCallResponse`."""
    return {
        "id": batch.id,
        "phone_number_id": batch.phone_number_id,
        "phone_provider": batch.phone_provider,
        "whatsapp_params": batch.whatsapp_params,
        "name": batch.name,
        "agent_id": batch.agent_id,
        "branch_id": batch.branch_id,
        "environment": batch.environment,
        "created_at_unix": batch.created_at_unix,
        "scheduled_time_unix": batch.scheduled_time_unix,
        "timezone": batch.timezone,
        "total_calls_dispatched": batch.total_calls_dispatched,
        "total_calls_scheduled": batch.total_calls_scheduled,
        "total_calls_finished": batch.total_calls_finished,
        "last_updated_at_unix": batch.last_updated_at_unix,
        "status": batch.status,
        "retry_count": batch.retry_count,
        "telephony_call_config": batch.telephony_call_config,
        "target_concurrency_limit": batch.target_concurrency_limit,
        "agent_name": batch.agent_name,
        "branch_name": None,
    }


def recipient_to_json(recipient: SandboxRecipient) -> dict:
    """`OutboundCallRecipientResponseModel`."""
    return {
        "id": recipient.id,
        "phone_number": recipient.phone_number,
        "whatsapp_user_id": recipient.whatsapp_user_id,
        "status": recipient.status,
        "created_at_unix": recipient.created_at_unix,
        "updated_at_unix": recipient.updated_at_unix,
        "conversation_id": recipient.conversation_id,
        "conversation_initiation_client_data": recipient.client_data,
    }


def batch_detailed_to_json(batch: SandboxBatch, recipients: list[SandboxRecipient]) -> dict:
    """`BatchCallDetailedResponse`."""
    return {**batch_to_json(batch), "recipients": [recipient_to_json(recipient) for recipient in recipients]}


def batch_page_to_json(*, batch_calls: list[SandboxBatch], next_doc: str | None, has_more: bool) -> dict:
    """`WorkspaceBatchCallsResponse`."""
    return {
        "batch_calls": [batch_to_json(batch) for batch in batch_calls],
        "next_doc": next_doc,
        "has_more": has_more,
    }


def agent_page_to_json(*, agents: list[dict], next_cursor: str | None, has_more: bool) -> dict:
    """`GetAgentsPageResponseModel`."""
    return {"agents": [dict(agent) for agent in agents], "next_cursor": next_cursor, "has_more": has_more}


def agent_to_json(agent: dict) -> dict:
    """`GetAgentResponseModel`."""
    config = workspace.AGENT_CONVERSATION_CONFIGS.get(agent["agent_id"], {})
    return {
        "agent_id": agent["agent_id"],
        "name": agent["name"],
        "conversation_config": {
            "agent": {
                "first_message": config.get("first_message", ""),
                "language": "en",
                "prompt": {"prompt": config.get("prompt", "")},
            },
            "tts": {"voice_id": agent["voice_id"]},
        },
        "metadata": {
            "created_at_unix_secs": agent["created_at_unix_secs"],
            "updated_at_unix_secs": agent["updated_at_unix_secs"],
        },
        # Only the part of AgentPlatformSettingsResponseModel callers read: which overrides a call may set.
        "platform_settings": {"overrides": copy.deepcopy(workspace.AGENT_OVERRIDES[agent["agent_id"]])},
        "phone_numbers": [
            copy.deepcopy(number)
            for number in workspace.PHONE_NUMBERS
            if (number["assigned_agent"] or {}).get("agent_id") == agent["agent_id"]
        ],
        "access_info": dict(agent["access_info"]),
        "tags": list(agent["tags"]),
        "version_id": None,
        "branch_id": None,
        "main_branch_id": None,
    }


def phone_numbers_to_json(numbers: list[dict]) -> list[dict]:
    """A bare array of phone-number list items."""
    return [copy.deepcopy(number) for number in numbers]


# --- Conversations and webhook events ----------------------------------------------------

# `metadata.phone_call.type` of a conversation placed from each kind of number.
_PHONE_CALL_TYPES = {"twilio": "twilio", "sip_trunk": "sip_trunking", "exotel": "exotel"}
_CALL_RESULTS = {
    Outcome.SUCCESS: "answered",
    Outcome.UNSUCCESSFUL: "answered",
    Outcome.VOICEMAIL: "voicemail",
    Outcome.BUSY: "busy",
    Outcome.NO_ANSWER: "no_answer",
    Outcome.DO_NOT_CALL: "answered",
}
# Free text, as ElevenLabs' is: it never says how the call went (call_result does).
_TERMINATION_REASONS = {
    Outcome.SUCCESS: "Call ended by remote party",
    Outcome.UNSUCCESSFUL: "Remote party hung up",
    Outcome.VOICEMAIL: "Call ended by remote party",
    Outcome.BUSY: "Call could not be connected",
    Outcome.NO_ANSWER: "Call could not be connected",
    Outcome.DO_NOT_CALL: "Remote party hung up",
}
_TRANSCRIPTS = {
    Outcome.SUCCESS: [
        ("agent", "Hello, this is the sandbox agent calling. Do you have a moment?"),
        ("user", "Yes, go ahead."),
    ],
    Outcome.UNSUCCESSFUL: [
        ("agent", "Hello, this is the sandbox agent calling. Do you have a moment?"),
        ("user", "No, thank you. Goodbye."),
    ],
    Outcome.VOICEMAIL: [
        ("user", "Hi, you've reached my voicemail. Please leave a message after the tone."),
        ("agent", "Hello, this is a message from the sandbox agent. We'll try you again later. Goodbye."),
    ],
    Outcome.DO_NOT_CALL: [
        ("agent", "Hello, this is the sandbox agent calling. Do you have a moment?"),
        ("user", "Please take me off your list and don't call me again."),
    ],
}
_SUMMARIES = {
    Outcome.SUCCESS: "The agent reached the recipient and the call achieved its goal.",
    Outcome.UNSUCCESSFUL: "The agent reached the recipient, but the call did not achieve its goal.",
    Outcome.VOICEMAIL: "The call reached voicemail; the agent left a short message.",
    Outcome.DO_NOT_CALL: "The recipient asked not to be called again.",
}
# What a SIP trunk reports for a call that did not connect.
_SIP_FAILURES = {
    Outcome.BUSY: (486, "Busy Here"),
    Outcome.NO_ANSWER: (480, "Temporarily Unavailable"),
}


def _twilio_sid(prefix: str, seed: str) -> str:
    return prefix + hashlib.sha256(f"{prefix}:{seed}".encode()).hexdigest()[:32]


def _call_sid(provider: str | None, conversation_id: str) -> str:
    if provider == "sip_trunk":
        return "SCL_" + hashlib.sha256(f"SCL:{conversation_id}".encode()).hexdigest()[:12]
    return _twilio_sid("CA", conversation_id)


def _agent_number(batch: SandboxBatch) -> str:
    number = workspace.phone_number_find(batch.phone_number_id or "")
    return number["phone_number"] if number else ""


def _phone_call(conversation: Conversation) -> dict | None:
    """`metadata.phone_call`, in the variant of the number the call was placed from."""
    batch, recipient = conversation.batch, conversation.recipient
    if not recipient.phone_number or batch.phone_provider is None:
        return None
    provider = batch.phone_provider
    ended = conversation.status in ("processing", "done") or (
        conversation.status == "failed" and not conversation.cancelled
    )
    phone_call = {
        "type": _PHONE_CALL_TYPES.get(provider, provider),
        "direction": "outbound",
        "phone_number_id": batch.phone_number_id or "",
        "agent_number": _agent_number(batch),
        "external_number": recipient.phone_number,
        "call_result": _CALL_RESULTS[conversation.outcome] if ended else None,
        "call_sid": _call_sid(provider, conversation.conversation_id),
    }
    if provider == "sip_trunk":
        phone_call["call_id"] = None
    else:
        phone_call["stream_sid"] = _twilio_sid("MZ", conversation.conversation_id)
    return phone_call


def conversation_to_json(conversation: Conversation) -> dict:
    """`GetConversationResponseModel`: also the `data` of a `post_call_transcription` event."""
    batch, recipient, outcome, status = (
        conversation.batch,
        conversation.recipient,
        conversation.outcome,
        conversation.status,
    )
    turns = _TRANSCRIPTS.get(outcome, [])
    if status == "initiated" or status == "failed":
        turns = []
    elif status == "in-progress":
        turns = turns[:1]
    if conversation.cancelled:
        termination_reason = "Batch call cancelled"
    elif status in ("processing", "done", "failed"):
        termination_reason = _TERMINATION_REASONS[outcome]
    else:
        termination_reason = None
    done = status == "done"
    client_data = recipient.client_data or {}
    return {
        "agent_id": batch.agent_id,
        "agent_name": batch.agent_name,
        "conversation_id": conversation.conversation_id,
        "status": status,
        "user_id": client_data.get("user_id"),
        "transcript": [
            {"role": role, "message": message, "time_in_call_secs": index * max(1, conversation.duration_secs // 2)}
            for index, (role, message) in enumerate(turns)
        ],
        "metadata": {
            "start_time_unix_secs": int(conversation.started_at),
            "call_duration_secs": conversation.duration_secs,
            "termination_reason": termination_reason,
            "phone_call": _phone_call(conversation),
            "batch_call": {"batch_call_id": batch.id, "batch_call_recipient_id": recipient.id},
        },
        "analysis": (
            {
                "call_successful": "success" if outcome == Outcome.SUCCESS else "failure",
                "transcript_summary": _SUMMARIES[outcome],
                "evaluation_criteria_results": {},
                "data_collection_results": {},
            }
            if done
            else None
        ),
        "conversation_initiation_client_data": {
            **client_data,
            "dynamic_variables": client_data.get("dynamic_variables") or {},
        },
        "has_audio": done,
        "has_user_audio": done,
        "has_response_audio": done,
        "has_auxiliary_audio": False,
    }


def call_event(conversation: Conversation, *, event_timestamp: int) -> dict:
    """What ElevenLabs posts once a call has ended: its transcription, or why it never connected."""
    if conversation.status == "failed":
        return _call_initiation_failure(conversation, event_timestamp=event_timestamp)
    return {
        "type": "post_call_transcription",
        "event_timestamp": event_timestamp,
        "data": conversation_to_json(conversation),
    }


def audio_event(conversation: Conversation, *, event_timestamp: int, audio: bytes) -> dict:
    """`post_call_audio`: the call's recording, base64."""
    return {
        "type": "post_call_audio",
        "event_timestamp": event_timestamp,
        "data": {
            "agent_id": conversation.batch.agent_id,
            "conversation_id": conversation.conversation_id,
            "full_audio": base64.b64encode(audio).decode(),
        },
    }


def _call_initiation_failure(conversation: Conversation, *, event_timestamp: int) -> dict:
    busy = conversation.outcome == Outcome.BUSY
    if conversation.batch.phone_provider == "sip_trunk":
        metadata = {"type": "sip", "body": _sip_failure(conversation)}
    else:
        metadata = {"type": "twilio", "body": _twilio_status_callback(conversation)}
    return {
        "type": "call_initiation_failure",
        "event_timestamp": event_timestamp,
        "data": {
            "agent_id": conversation.batch.agent_id,
            "conversation_id": conversation.conversation_id,
            "failure_reason": "busy" if busy else "no-answer",
            "metadata": metadata,
        },
    }


def _twilio_status_callback(conversation: Conversation) -> dict:
    """The fields of Twilio's StatusCallback for an outbound call that ended busy or unanswered."""
    busy = conversation.outcome == Outcome.BUSY
    agent_number = _agent_number(conversation.batch)
    external_number = conversation.recipient.phone_number or ""
    ended_at = datetime.datetime.fromtimestamp(conversation.ended_at or conversation.started_at, datetime.UTC)
    return {
        "AccountSid": _twilio_sid("AC", "sandbox-workspace"),
        "ApiVersion": "2010-04-01",
        "CallSid": _call_sid("twilio", conversation.conversation_id),
        "CallStatus": "busy" if busy else "no-answer",
        "Called": external_number,
        "Caller": agent_number,
        "Direction": "outbound-api",
        "From": agent_number,
        "To": external_number,
        "SipResponseCode": "486" if busy else "487",
        "Duration": "0",
        "CallDuration": "0",
        "Timestamp": ended_at.strftime("%a, %d %b %Y %H:%M:%S +0000"),
        "CallbackSource": "call-progress-events",
        "SequenceNumber": "2",
    }


def _sip_failure(conversation: Conversation) -> dict:
    code, status = _SIP_FAILURES[conversation.outcome]
    return {
        "from_number": _agent_number(conversation.batch),
        "to_number": conversation.recipient.phone_number or "",
        "sip_status_code": code,
        "error_reason": f"INVITE failed: sip status: {code}: {status} (SIP {code})",
        "call_sid": _call_sid("sip_trunk", conversation.conversation_id),
        "twirp_code": "unavailable",
        "sip_status": status,
    }


# --- Outbound campaigns -------------------------------------------------------------------


def _unix(moment: float | None) -> int | None:
    """A real moment as whole unix seconds, rounded up so that a time "due at" is never early."""
    if moment is None:
        return None
    return math.ceil(moment - 1e-6)


def campaign_to_json(campaign: SandboxCampaign, counts: LeadCounts) -> dict:
    """`CampaignResponse`."""
    return {
        "campaign_id": campaign.id,
        "call_name": campaign.name,
        "agent_id": campaign.agent_id,
        "channel_config": {
            "channel": "phone",
            "agent_phone_number_id": campaign.phone_number_id,
            "mode_config": copy.deepcopy(campaign.mode_config),
        },
        "status": campaign.status,
        "policy": copy.deepcopy(campaign.policy),
        "variant": campaign.variant,
        "source": "api",
        "created_at_unix": campaign.created_at_unix,
        "scheduled_time_unix": campaign.scheduled_time_unix,
        "updated_at_unix": campaign.updated_at_unix,
        "branch_id": campaign.branch_id,
        "environment": campaign.environment,
        "target_concurrency_limit": campaign.target_concurrency_limit,
        "channel": "phone",
        "mode": "voice",
        "counts": {"leads": counts.leads, "terminal_leads": counts.terminal_leads, "open_attention": 0},
        "agent_name": campaign.agent_name,
    }


def campaign_submit_to_json(submitted: Submitted, counts: LeadCounts) -> dict:
    """`SubmitCampaignResponse`."""
    return {
        "campaign": campaign_to_json(submitted.campaign, counts),
        "created": submitted.created,
        "within_calling_window": submitted.within_calling_window,
    }


def campaign_page_to_json(page: CampaignPage, counts: dict[str, LeadCounts]) -> dict:
    """`CampaignPageResponse`."""
    return {
        "campaigns": [campaign_to_json(campaign, counts[campaign.pk]) for campaign in page.campaigns],
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
    }


def campaign_progress_to_json(progress: Progress) -> dict:
    """`CampaignProgressResponse`."""
    return {
        "leads": {
            "total": progress.total,
            "uncalled": progress.uncalled,
            "leads_needing_attention": 0,
            "active": progress.active,
            "finished": progress.finished,
            "finished_by_disposition": dict(progress.finished_by_disposition),
        },
        "conversations": {
            "scheduled": progress.scheduled,
            "scheduled_by_type": dict(progress.scheduled_by_type),
            "awaiting_permission": 0,
            "in_progress": progress.in_progress,
            "awaiting_analysis": progress.awaiting_analysis,
        },
        "next_call_time_unix": _unix(progress.next_call_time),
    }


# Dynamic variables ElevenLabs treats as secrets: never shown back.
SECRET_VARIABLE_PREFIX = "secret__"
REDACTED = "[REDACTED]"


def _overrides(client_data: dict) -> dict:
    """`FlattenedConfigOverrides`: the four per-call overrides, wherever they sit in the override tree."""
    override = client_data.get("conversation_config_override") or {}
    agent = override.get("agent") or {}
    return {
        "language": agent.get("language"),
        "first_message": agent.get("first_message"),
        "prompt": (agent.get("prompt") or {}).get("prompt"),
        "voice_id": (override.get("tts") or {}).get("voice_id"),
    }


def lead_to_json(lead: SandboxLead) -> dict:
    """`LeadView` (and `LeadDetailResponse`, which has the same fields)."""
    client_data = lead.client_data or {}
    variables = client_data.get("dynamic_variables") or {}
    return {
        "lead_id": lead.id,
        "recipient_id": lead.external_id,
        "phone_number": lead.phone_number,
        "phone_numbers": [lead.phone_number, *lead.phone_numbers] if lead.phone_numbers else None,
        "phone_numbers_index": 0,
        "user_id": client_data.get("user_id") or lead.phone_number,
        "attempt_count": lead.attempt_count,
        "failure_count": lead.failure_count,
        "callback_count": 0,
        "redirect_count": 0,
        "do_not_call": lead.do_not_call,
        "terminal_disposition": lead.terminal_disposition,
        "created_at_unix": lead.created_at_unix,
        "updated_at_unix": lead.updated_at_unix,
        "dynamic_variables": {
            name: REDACTED if name.startswith(SECRET_VARIABLE_PREFIX) else value for name, value in variables.items()
        },
        "overrides": _overrides(client_data),
        "delivery": None,
    }


def lead_page_to_json(page: LeadPage) -> dict:
    """`CampaignLeadsResponse`."""
    return {
        "leads": [lead_to_json(lead) for lead in page.leads],
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
    }


def suppressed_to_json(suppressed: Suppressed) -> dict:
    """`SuppressLeadResponse`."""
    return {
        "campaign_id": suppressed.campaign_id,
        "lead_id": suppressed.lead_id,
        "has_calls_in_flight": suppressed.has_calls_in_flight,
    }


# A campaign call's final dialing status (`BatchCallRecipientStatus`), by outcome.
_CALL_OUTCOMES = {
    Outcome.SUCCESS: "completed",
    Outcome.UNSUCCESSFUL: "completed",
    Outcome.DO_NOT_CALL: "completed",
    Outcome.VOICEMAIL: "voicemail",
    Outcome.BUSY: "failed",
    Outcome.NO_ANSWER: "failed",
}


def call_to_json(call: SandboxCampaignCall, conversation_id: str | None) -> dict:
    """`CallView`."""
    ended = call.status == CampaignCallStatus.COMPLETED
    outcome = Outcome(call.outcome)
    return {
        "intent_id": call.id,
        "lead_id": call.lead_id,
        "intent_type": "initial" if call.number == 1 else "retry",
        "cold_attempt": call.number,
        "status": call.status,
        "phone_number": call.lead.phone_number,
        "scheduled_time_unix": _unix(call.scheduled_at),
        "conversation_id": conversation_id,
        "outcome": _CALL_OUTCOMES[outcome] if ended else None,
        "call_result": _CALL_RESULTS[outcome] if ended else None,
        "outcome_at_unix": _unix(call.ended_at) if ended else None,
        "decision_disposition": call.decision,
        "collected_dynamic_variables": None,
        "delivery": None,
    }


def call_page_to_json(page: CallPage, conversation_ids: dict[str, str | None]) -> dict:
    """`CampaignCallsResponse`."""
    return {
        "calls": [call_to_json(call, conversation_ids[call.pk]) for call in page.calls],
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
    }
