"""The receiver for ElevenLabs post-call webhooks, signed with `ElevenLabs-Signature`.

Every correctly signed event is answered 200 once it is stored in the inbox (see
`campaigns.inbox`), including types we do not record (audio, telemetry): ElevenLabs
disables a webhook that keeps failing, which would stop the events we do need. Only a bad
signature gets 401.
"""

import logging

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from campaigns import inbox
from campaigns.models import WebhookEvent
from campaigns.webhook_body import BodyRefused, SignatureError, read_signed_body, signature_verify

__all__ = ["SignatureError", "elevenlabs_webhook", "signature_verify"]

logger = logging.getLogger(__name__)


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
    if not isinstance(verified.event, dict):
        return JsonResponse({"error": "The body is not an ElevenLabs event (a JSON object)."}, status=400)
    # Stored before anything else: ElevenLabs does not send an event again once we said 200.
    event = inbox.event_store(payload=verified.event, digest=verified.digest, size=verified.size)
    recorded = event.status == WebhookEvent.Status.APPLIED
    if event.status == WebhookEvent.Status.PENDING:
        try:
            recorded = inbox.event_apply(event_id=event.pk)
        except Exception:
            # Kept in the inbox: the sweep applies it later. The event itself is safe.
            logger.exception("Could not apply webhook event %s now; it stays in the inbox", event.pk)
            recorded = False
        if not recorded:
            logger.info("Webhook %s for a call we cannot match yet (%s)", event.event_type, event.conversation_id)
    return JsonResponse({"received": True, "recorded": recorded})
