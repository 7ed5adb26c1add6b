"""The receiver for ElevenLabs post-call webhooks, signed with `ElevenLabs-Signature`."""

import hashlib
import hmac
import json
import logging
import time

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from campaigns import tracking
from campaigns.models import Recipient

logger = logging.getLogger(__name__)


class SignatureError(Exception):
    pass


def signature_verify(*, body: bytes, header: str, secret: str, tolerance: int, now: float | None = None) -> None:
    """Check `t=<unix>,v0=<hex HMAC-SHA256(secret, "t.body")>`; raise SignatureError saying why not."""
    if not secret:
        raise SignatureError("webhook secret is not configured")
    items = [item.strip().split("=", 1) for item in header.split(",") if "=" in item]
    timestamp = next((value for key, value in items if key == "t"), "")
    signatures = [value for key, value in items if key == "v0"]
    if not timestamp.isdigit() or not signatures:
        raise SignatureError("missing or malformed ElevenLabs-Signature header")
    if abs((now or time.time()) - int(timestamp)) > tolerance:
        raise SignatureError("signature timestamp is outside the tolerance")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureError("signature does not match")


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
    body = request.body
    try:
        signature_verify(
            body=body,
            header=request.headers.get("ElevenLabs-Signature", ""),
            secret=settings.ELEVENLABS_WEBHOOK_SECRET,
            tolerance=settings.ELEVENLABS_WEBHOOK_TOLERANCE_SECONDS,
        )
    except SignatureError as exc:
        logger.warning("Refused an ElevenLabs webhook: %s", exc)
        return JsonResponse({"error": f"Refused: {exc}."}, status=401)
    try:
        event = json.loads(body)
    except ValueError:
        return JsonResponse({"error": "The body is not JSON."}, status=400)
    outcome = _event_outcome(event) if isinstance(event, dict) else None
    if outcome is None:
        return JsonResponse({"received": True, "recorded": False})
    recorded = tracking.recipient_outcome_record(**outcome)
    if not recorded:
        logger.info("Webhook %s for a call we do not know (%s)", event.get("type"), outcome.get("conversation_id"))
    return JsonResponse({"received": True, "recorded": recorded})
