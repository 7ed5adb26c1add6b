"""The sandbox's state as ElevenLabs JSON: response bodies and webhook events.

Optional fields are present with `null` when unset, as ElevenLabs' FastAPI responses are.
"""

import copy
import hashlib
import json

from sandbox import workspace
from sandbox.models import Outcome, RecipientStatus, SandboxBatch, SandboxRecipient


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


# --- Webhook events -----------------------------------------------------------------------


def _twilio_sid(prefix: str, seed: str) -> str:
    return prefix + hashlib.sha256(f"{prefix}:{seed}".encode()).hexdigest()[:32]


def _agent_number(batch: SandboxBatch) -> str:
    number = workspace.phone_number_find(batch.phone_number_id or "")
    return number["phone_number"] if number else ""


def webhook_event(
    *,
    recipient: SandboxRecipient,
    batch: SandboxBatch,
    conversation_id: str,
    event_timestamp: int,
    started_at: float,
    duration_secs: int,
) -> dict:
    """The event ElevenLabs posts when the recipient's call has ended (see `sandbox.services`)."""
    if recipient.status == RecipientStatus.FAILED:
        return _call_initiation_failure(
            recipient=recipient, batch=batch, conversation_id=conversation_id, event_timestamp=event_timestamp
        )
    return _post_call_transcription(
        recipient=recipient,
        batch=batch,
        conversation_id=conversation_id,
        event_timestamp=event_timestamp,
        started_at=started_at,
        duration_secs=duration_secs,
    )


def _post_call_transcription(
    *,
    recipient: SandboxRecipient,
    batch: SandboxBatch,
    conversation_id: str,
    event_timestamp: int,
    started_at: float,
    duration_secs: int,
) -> dict:
    voicemail = recipient.status == RecipientStatus.VOICEMAIL
    if voicemail:
        transcript = [
            ("user", "Hi, you've reached my voicemail. Please leave a message after the tone."),
            ("agent", "Hello, this is a message from the sandbox agent. We'll try you again later. Goodbye."),
        ]
        termination_reason = "Call ended: voicemail detected"
        summary = "The call reached voicemail; the agent left a short message."
    else:
        transcript = [
            ("agent", "Hello, this is the sandbox agent calling. Do you have a moment?"),
            ("user", "Yes, go ahead." if recipient.outcome == Outcome.SUCCESS else "No, thank you. Goodbye."),
        ]
        termination_reason = "Call ended by remote party"
        summary = (
            "The agent reached the recipient and the call achieved its goal."
            if recipient.outcome == Outcome.SUCCESS
            else "The agent reached the recipient, but the call did not achieve its goal."
        )
    client_data = recipient.client_data or {}
    metadata = {
        "start_time_unix_secs": int(started_at),
        "call_duration_secs": duration_secs,
        "termination_reason": termination_reason,
        "batch_call": {"batch_call_id": batch.id, "batch_call_recipient_id": recipient.id},
    }
    if recipient.phone_number:
        metadata["phone_call"] = {
            "type": "twilio",
            "direction": "outbound",
            "phone_number_id": batch.phone_number_id or "",
            "agent_number": _agent_number(batch),
            "external_number": recipient.phone_number,
            "call_sid": _twilio_sid("CA", conversation_id),
            "stream_sid": _twilio_sid("MZ", conversation_id),
        }
    return {
        "type": "post_call_transcription",
        "event_timestamp": event_timestamp,
        "data": {
            "agent_id": batch.agent_id,
            "agent_name": batch.agent_name,
            "conversation_id": conversation_id,
            "status": "done",
            "user_id": client_data.get("user_id"),
            "transcript": [
                {"role": role, "message": message, "time_in_call_secs": index * max(1, duration_secs // 2)}
                for index, (role, message) in enumerate(transcript)
            ],
            "metadata": metadata,
            "analysis": {
                "call_successful": "success" if recipient.outcome == Outcome.SUCCESS else "failure",
                "transcript_summary": summary,
                "evaluation_criteria_results": {},
                "data_collection_results": {},
            },
            "conversation_initiation_client_data": {
                **client_data,
                "dynamic_variables": client_data.get("dynamic_variables") or {},
            },
            "has_audio": False,
            "has_user_audio": False,
            "has_response_audio": False,
            "has_auxiliary_audio": False,
        },
    }


def _call_initiation_failure(
    *, recipient: SandboxRecipient, batch: SandboxBatch, conversation_id: str, event_timestamp: int
) -> dict:
    busy = recipient.outcome == Outcome.BUSY
    call_status = "busy" if busy else "no-answer"
    return {
        "type": "call_initiation_failure",
        "event_timestamp": event_timestamp,
        "data": {
            "agent_id": batch.agent_id,
            "conversation_id": conversation_id,
            "failure_reason": call_status,
            "metadata": {
                "type": "twilio",
                "body": {
                    "CallSid": _twilio_sid("CA", conversation_id),
                    "CallStatus": call_status,
                    "SipResponseCode": "486" if busy else "487",
                    "Direction": "outbound-api",
                    "To": recipient.phone_number or "",
                    "From": _agent_number(batch),
                    # Not Twilio fields: lets the receiver find the recipient without a conversation.
                    "batch_call_id": batch.id,
                    "batch_call_recipient_id": recipient.id,
                },
            },
        },
    }
