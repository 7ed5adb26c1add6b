"""Event webhooks: endpoints, the outbox of deliveries, and one attempt at sending one.

`event_emit` stores a delivery per endpoint in the caller's transaction, so an event is
sent if and only if the change it reports was committed, and queues the sending after the
commit. Workers send each delivery until it lands (at least once), with the same
`webhook-id` every time; deliveries of one endpoint that share an ordering key (a campaign)
go out one after the other.
"""

import base64
import json
import logging
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from campaigns.errors import NotFound, ValidationFailed

from . import delivery as http
from .models import Delivery, WebhookEndpoint

logger = logging.getLogger(__name__)

EVENT_TYPES = {
    "campaign.status_changed": "A campaign's status changed; data is the campaign.",
    "recipient.call_finished": "A recipient's call reached its outcome; data is the recipient and its campaign_id.",
    "suppression.added": "A number was added to the do-not-call list; data is its entry.",
}
# Sent only by the "Send test event" button, whatever events an endpoint asked for.
TEST_EVENT = "test"

# Waits after the 1st, 2nd, … failed attempt; after the last one the delivery is given up.
BACKOFF = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
SECRET_BYTES = 24


# --- Endpoints ----------------------------------------------------------------------------


def secret_generate() -> str:
    """A signing secret as Standard Webhooks writes them: whsec_ and base64 of random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def endpoint_create(*, user, url: str, events: list[str] | None = None) -> WebhookEndpoint:
    url = (url or "").strip()
    if not url:
        raise ValidationFailed("A URL is required.", field="url", details={"field": "url"})
    events = list(dict.fromkeys(events or []))
    unknown = [name for name in events if name not in EVENT_TYPES]
    if unknown:
        raise ValidationFailed(
            f"Unknown event {unknown[0]!r}; events are {', '.join(EVENT_TYPES)}.",
            field="events",
            errors=[f"Unknown event {name!r}." for name in unknown],
            details={"field": "events", "known": list(EVENT_TYPES)},
        )
    http.url_target(url)
    return WebhookEndpoint.objects.create(user=user, url=url, events=events, secret=secret_generate())


def endpoint_list(*, user):
    return WebhookEndpoint.objects.filter(user=user)


def endpoint_get(*, user, endpoint_id) -> WebhookEndpoint:
    try:
        return WebhookEndpoint.objects.get(user=user, pk=int(endpoint_id))
    except (ValueError, TypeError, WebhookEndpoint.DoesNotExist):
        raise NotFound("Webhook endpoint not found.") from None


def endpoint_delete(*, user, endpoint_id) -> WebhookEndpoint:
    """Delete one of the user's endpoints, with its deliveries; the object returned keeps its fields."""
    endpoint = endpoint_get(user=user, endpoint_id=endpoint_id)
    endpoint.delete()
    return endpoint


def deliveries_recent(*, user, limit: int = 20):
    return Delivery.objects.filter(endpoint__user=user).select_related("endpoint")[:limit]


# --- Emitting -----------------------------------------------------------------------------


def wanted(*, user, type: str) -> bool:
    """Whether any active endpoint of `user` wants `type`: emitters skip building payloads otherwise."""
    return any(endpoint.wants(type) for endpoint in WebhookEndpoint.objects.filter(user=user, disabled_at=None))


def event_emit(*, user, type: str, data: dict, ordering_key=None) -> list[Delivery]:
    """Store one delivery per active endpoint of `user` that wants `type`, in the caller's
    transaction, and queue their sending once it commits. `ordering_key` (e.g. a campaign)
    keeps the deliveries sharing it in order, per endpoint."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    endpoints = [
        endpoint for endpoint in WebhookEndpoint.objects.filter(user=user, disabled_at=None) if endpoint.wants(type)
    ]
    return _store(endpoints, type=type, data=data, ordering_key=ordering_key)


def endpoint_send_test(*, endpoint: WebhookEndpoint) -> Delivery:
    data = {"endpoint_id": endpoint.pk, "message": "A test event from Voiceable Campaigns."}
    return _store([endpoint], type=TEST_EVENT, data=data, ordering_key=None)[0]


def _store(endpoints, *, type: str, data: dict, ordering_key) -> list[Delivery]:
    if not endpoints:
        return []
    now = timezone.now()
    body = json.dumps(
        {"type": type, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": data},
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
    )
    message_id = f"msg_{uuid.uuid4().hex}"
    key = "" if ordering_key is None else str(ordering_key)[:100]
    deliveries = [
        Delivery.objects.create(
            endpoint=endpoint, message_id=message_id, event_type=type, body=body, ordering_key=key, next_attempt_at=now
        )
        for endpoint in endpoints
    ]
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: _queue(ids))
    return deliveries


def _queue(delivery_ids) -> None:
    """Queue sending after the commit; a broker that is down only delays it to the beat sweep."""
    from . import tasks

    for delivery_id in delivery_ids:
        try:
            tasks.delivery_send.delay(delivery_id)
        except Exception:
            logger.warning("Could not queue delivery %s; the beat sweep will send it", delivery_id, exc_info=True)


# Shapes of the events' data, as the API shows each thing. Imported late: the modules that
# report these events are imported by the serializers' own imports.


def campaign_status_changed(*, campaign) -> list[Delivery]:
    from campaigns.api.serializers import CampaignSerializer

    return event_emit(
        user=campaign.user,
        type="campaign.status_changed",
        data=CampaignSerializer(campaign).data,
        ordering_key=f"campaign:{campaign.pk}",
    )


def recipient_call_finished(*, recipient) -> list[Delivery]:
    from campaigns.api.serializers import RecipientSerializer

    campaign = recipient.campaign
    return event_emit(
        user=campaign.user,
        type="recipient.call_finished",
        data={**RecipientSerializer(recipient).data, "campaign_id": campaign.pk},
        ordering_key=f"campaign:{campaign.pk}",
    )


def campaign_status_changed_by_id(*, campaign_id: int) -> list[Delivery]:
    """campaign.status_changed for a campaign whose status an UPDATE just moved."""
    from campaigns.models import Campaign

    campaign = Campaign.objects.select_related("user", "agent").filter(pk=campaign_id).first()
    return campaign_status_changed(campaign=campaign) if campaign is not None else []


def recipients_call_finished(*, campaign_id: int, recipient_ids) -> int:
    """recipient.call_finished for many recipients of one campaign at once (a poll's worth): the
    endpoints are read once, the recipients in one query, the deliveries written in bulk."""
    from campaigns.api.serializers import RecipientSerializer
    from campaigns.models import Campaign, Recipient

    ids = list(recipient_ids)
    if not ids:
        return 0
    type = "recipient.call_finished"
    # One query: the campaign owner's endpoints, through the campaign.
    owners = Campaign.objects.filter(pk=campaign_id).values("user_id")
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(user_id__in=owners, disabled_at=None)
        if endpoint.wants(type)
    ]
    if not endpoints:
        return 0
    now = timezone.now()
    stamp = now.isoformat().replace("+00:00", "Z")
    key = f"campaign:{campaign_id}"
    deliveries = []
    for recipient in Recipient.objects.filter(campaign_id=campaign_id, pk__in=ids).order_by("pk"):
        body = json.dumps(
            {
                "type": type,
                "timestamp": stamp,
                "data": {**RecipientSerializer(recipient).data, "campaign_id": campaign_id},
            },
            cls=DjangoJSONEncoder,
            separators=(",", ":"),
        )
        message_id = f"msg_{uuid.uuid4().hex}"
        deliveries += [
            Delivery(
                endpoint=endpoint,
                message_id=message_id,
                event_type=type,
                body=body,
                ordering_key=key,
                next_attempt_at=now,
            )
            for endpoint in endpoints
        ]
    created = Delivery.objects.bulk_create(deliveries, batch_size=1_000)
    ids_created = [delivery.pk for delivery in created]
    transaction.on_commit(lambda: _queue(ids_created))
    return len(created)


def suppression_added(*, suppression) -> list[Delivery]:
    from campaigns.api.suppressions import SuppressionSerializer

    return event_emit(user=suppression.user, type="suppression.added", data=SuppressionSerializer(suppression).data)


# --- Sending ------------------------------------------------------------------------------


def _earlier_pending():
    """An older delivery still pending for the same endpoint and ordering key."""
    return Delivery.objects.filter(
        endpoint=OuterRef("endpoint"),
        ordering_key=OuterRef("ordering_key"),
        status=Delivery.Status.PENDING,
        pk__lt=OuterRef("pk"),
    ).exclude(ordering_key="")


def deliveries_due(*, limit: int = 500) -> list[int]:
    """Pending deliveries whose time has come, not held by a worker, first in their order."""
    now = timezone.now()
    return list(
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now, endpoint__disabled_at=None)
        .filter(Q(claimed_until=None) | Q(claimed_until__lt=now))
        .exclude(Exists(_earlier_pending()))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def _claim(delivery_id: int, now) -> bool:
    # One UPDATE decides: of two workers given the same id, only one changes the row.
    return bool(
        Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now)
        .filter(Q(claimed_until=None) | Q(claimed_until__lt=now))
        .update(claimed_until=now + timedelta(seconds=settings.OUTBOUND_WEBHOOKS_CLAIM_SECONDS))
    )


def delivery_attempt(*, delivery_id: int) -> Delivery | None:
    """Send a due delivery once, if no other worker holds it; record the outcome and the next try.

    No transaction is open while the request is out: a slow receiver holds no database lock.
    """
    if not _claim(delivery_id, timezone.now()):
        return None
    item = Delivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = item.endpoint
    if endpoint.disabled_at is not None:
        Delivery.objects.filter(pk=item.pk).update(
            status=Delivery.Status.FAILED, claimed_until=None, last_error="The endpoint is disabled."
        )
        return None
    if item.ordering_key and Delivery.objects.filter(pk=item.pk).filter(Exists(_earlier_pending())).exists():
        # An older event of the same campaign goes first; it queues this one when it is done.
        Delivery.objects.filter(pk=item.pk).update(claimed_until=None)
        return None

    sent_at = timezone.now()
    headers = http.signed_headers(secret=endpoint.secret, message_id=item.message_id, body=item.body, at=sent_at)
    outcome = http.post(url=endpoint.url, body=item.body, headers=headers)
    return _record(item, outcome, sent_at)


def _record(item: Delivery, outcome: "http.Outcome", sent_at) -> Delivery:
    now = timezone.now()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=item.endpoint_id)
        item.attempts += 1
        item.last_attempt_at = sent_at
        item.last_status_code = outcome.status_code
        item.last_error = outcome.error[:500]
        item.claimed_until = None
        if outcome.ok:
            item.status = Delivery.Status.SUCCEEDED
            item.delivered_at = now
            endpoint.last_success_at = now
            endpoint.failing_since = None
            endpoint.last_error = ""
        else:
            if item.attempts >= MAX_ATTEMPTS:
                item.status = Delivery.Status.FAILED
            else:
                item.next_attempt_at = now + BACKOFF[item.attempts - 1]
            endpoint.last_failure_at = now
            endpoint.failing_since = endpoint.failing_since or now
            endpoint.last_error = item.last_error
        item.save()
        disable_after = timedelta(days=settings.OUTBOUND_WEBHOOKS_DISABLE_AFTER_DAYS)
        if not outcome.ok and endpoint.disabled_at is None and now - endpoint.failing_since >= disable_after:
            endpoint.disabled_at = now
            endpoint.disabled_reason = (
                f"Every delivery failed for {settings.OUTBOUND_WEBHOOKS_DISABLE_AFTER_DAYS} days "
                f"(last error: {item.last_error})"
            )[:255]
            endpoint.deliveries.filter(status=Delivery.Status.PENDING).update(
                status=Delivery.Status.FAILED, claimed_until=None, last_error="The endpoint was disabled."
            )
            logger.warning("Webhook endpoint %s disabled: failing since %s", endpoint.pk, endpoint.failing_since)
        endpoint.save()
        if item.status != Delivery.Status.PENDING and item.ordering_key:
            following = (
                endpoint.deliveries.filter(
                    ordering_key=item.ordering_key, status=Delivery.Status.PENDING, next_attempt_at__lte=now
                )
                .order_by("pk")
                .values_list("pk", flat=True)[:1]
            )
            if following:
                next_ids = list(following)
                transaction.on_commit(lambda: _queue(next_ids))
    return item
