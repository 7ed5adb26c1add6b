"""The receiver for ElevenLabs post-call webhooks, signed with `ElevenLabs-Signature`."""

import logging

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from campaigns import tracking
from campaigns.models import Recipient
from campaigns.webhook_body import BodyRefused, SignatureError, read_signed_body, signature_verify

__all__ = ["SignatureError", "elevenlabs_webhook", "signature_verify"]

logger = logging.getLogger(__name__)


def _event_outcome(event: dict) -> dict | None:
    """The outcome fields a post-call event carries, or None for events we don't record."""
    data = event.get("data") or {}
    metadata = data.get("metadata") or {}
    if event.get("type") == "post_call_transcription":
        analysis = data.get("analysis") or {}
        batch_call = metadata.get("batch_call") or {}
        phone_call = metadata.get("phone_call") or {}
        voicemail = "voicemail" in str(metadata.get("termination_reason") or "").lower()
        return {
            "batch_call_id": batch_call.get("batch_call_id"),
            "phone_number": phone_call.get("external_number"),
            "conversation_id": data.get("conversation_id"),
            "status": Recipient.Status.VOICEMAIL if voicemail else Recipient.Status.COMPLETED,
            "call_successful": str(analysis.get("call_successful") or ""),
            "summary": str(analysis.get("transcript_summary") or ""),
        }
    if event.get("type") == "call_initiation_failure":
        body = metadata.get("body") or {}
        return {
            "batch_call_id": body.get("batch_call_id"),
            "phone_number": body.get("To") or body.get("to_number"),
            "conversation_id": data.get("conversation_id"),
            "status": Recipient.Status.FAILED,
            "failure_reason": str(data.get("failure_reason") or "unknown"),
        }
    return None


@csrf_exempt
@require_POST
def elevenlabs_webhook(request):
    try:
        verified = read_signed_body(
            request,
            secret=settings.ELEVENLABS_WEBHOOK_SECRET,
            tolerance=settings.ELEVENLABS_WEBHOOK_TOLERANCE_SECONDS,
            max_bytes=settings.ELEVENLABS_WEBHOOK_MAX_BYTES,
        )
    except SignatureError as exc:
        logger.warning("Refused an ElevenLabs webhook: %s", exc)
        return JsonResponse({"error": f"Refused: {exc}."}, status=401)
    except BodyRefused as exc:
        logger.warning("Refused an ElevenLabs webhook body: %s", exc.message)
        return JsonResponse({"error": exc.message}, status=exc.status_code)
    if verified.event is None:
        return JsonResponse({"error": verified.problem}, status=400)
    event = verified.event
    outcome = _event_outcome(event) if isinstance(event, dict) else None
    if outcome is None:
        return JsonResponse({"received": True, "recorded": False})
    recorded = tracking.recipient_outcome_record(**outcome)
    if not recorded:
        logger.info("Webhook %s for a call we do not know (%s)", event.get("type"), outcome.get("conversation_id"))
    return JsonResponse({"received": True, "recorded": recorded})
