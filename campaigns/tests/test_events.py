"""Event webhooks as a receiving program sees them: a real HTTP server in a thread receives
each delivery and checks it with the standardwebhooks package."""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook

from campaigns.api.serializers import CampaignSerializer, RecipientSerializer
from campaigns.events import services, tasks
from campaigns.events.models import Delivery, WebhookEndpoint
from campaigns.models import Suppression
from voiceable.celery import app as celery_app

from . import webhook_receiver
from .factories import CampaignFactory, RecipientFactory, UserFactory
from .webhook_receiver import Receiver, free_port, run_queued

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def local_network(settings):
    """Receivers on this machine: plain http and loopback addresses allowed."""
    settings.OUTBOUND_WEBHOOKS_ALLOW_HTTP = True
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    settings.OUTBOUND_WEBHOOKS_RESOLVER = "campaigns.tests.webhook_receiver.resolve"


@pytest.fixture
def dns(settings):
    settings.OUTBOUND_WEBHOOKS_RESOLVER = "campaigns.tests.webhook_receiver.resolve"
    webhook_receiver.ANSWERS.clear()
    yield webhook_receiver.ANSWERS
    webhook_receiver.ANSWERS.clear()


@pytest.fixture
def receivers():
    started = []

    def start(*args, **kwargs):
        receiver = Receiver(*args, **kwargs)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture
def owner(db):
    return UserFactory(username="alice")


def work(broker_queue):
    return run_queued(broker_queue, celery_app)


def beat(broker_queue):
    """What beat does every few seconds, then the worker."""
    tasks.deliveries_due()
    return work(broker_queue)


def make_due(*deliveries):
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(next_attempt_at=timezone.now())


def verified(endpoint, received):
    return Webhook(endpoint.secret).verify(received.body, received.headers)


def test_a_campaign_event_arrives_signed_and_verifies(owner, local_network, receivers, broker_queue):
    receiver = receivers()
    endpoint = services.endpoint_create(user=owner, url=receiver.url())
    campaign = CampaignFactory(user=owner)

    services.campaign_status_changed(campaign=campaign)
    work(broker_queue)

    (got,) = receiver.received
    payload = verified(endpoint, got)
    assert payload["type"] == "campaign.status_changed"
    assert payload["data"] == json.loads(json.dumps(CampaignSerializer(campaign).data))
    assert payload["timestamp"].endswith("Z")
    assert got.headers["webhook-id"].startswith("msg_")
    assert got.headers["webhook-signature"].startswith("v1,")
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 30
    assert got.headers["Content-Type"] == "application/json"
    assert got.path == "/hook"
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 204)
    endpoint.refresh_from_db()
    assert endpoint.last_success_at is not None and endpoint.failing_since is None


def test_a_tampered_body_does_not_verify(owner, local_network, receivers, broker_queue):
    receiver = receivers()
    endpoint = services.endpoint_create(user=owner, url=receiver.url())
    services.suppression_added(suppression=Suppression.objects.create(user=owner, phone_number="+14155550100"))
    work(broker_queue)
    (got,) = receiver.received
    with pytest.raises(Exception, match="signature"):
        Webhook(endpoint.secret).verify(got.body.replace(b"+1415", b"+1416"), got.headers)
    assert verified(endpoint, got)["data"]["phone_number"] == "+14155550100"


def test_recipient_and_suppression_events_carry_what_the_api_shows(owner, local_network, receivers, broker_queue):
    receiver = receivers()
    endpoint = services.endpoint_create(user=owner, url=receiver.url())
    recipient = RecipientFactory(campaign=CampaignFactory(user=owner))
    suppression = Suppression.objects.create(user=owner, phone_number="+14155550199", reason="asked")

    services.recipient_call_finished(recipient=recipient)
    services.suppression_added(suppression=suppression)
    work(broker_queue)

    first, second = (verified(endpoint, got) for got in receiver.received)
    assert first["type"] == "recipient.call_finished"
    shown = json.loads(json.dumps(RecipientSerializer(recipient).data))
    assert first["data"] == {**shown, "campaign_id": recipient.campaign_id}
    assert second["type"] == "suppression.added"
    assert second["data"]["reason"] == "asked" and second["data"]["source"] == "api"


def test_only_active_endpoints_asking_for_the_event_get_it(owner, local_network, receivers, broker_queue):
    everything, campaigns_only, suppressions_only, disabled = (receivers() for _ in range(4))
    services.endpoint_create(user=owner, url=everything.url())
    services.endpoint_create(user=owner, url=campaigns_only.url(), events=["campaign.status_changed"])
    services.endpoint_create(user=owner, url=suppressions_only.url(), events=["suppression.added"])
    off = services.endpoint_create(user=owner, url=disabled.url())
    WebhookEndpoint.objects.filter(pk=off.pk).update(disabled_at=timezone.now())
    someone_else = receivers()
    services.endpoint_create(user=UserFactory(username="mallory"), url=someone_else.url())

    services.campaign_status_changed(campaign=CampaignFactory(user=owner))
    work(broker_queue)

    counts = [len(r.received) for r in (everything, campaigns_only, suppressions_only, disabled, someone_else)]
    assert counts == [1, 1, 0, 0, 0]


def test_an_event_is_stored_with_the_change_it_reports_or_not_at_all(owner, local_network, receivers, broker_queue):
    receiver = receivers()
    services.endpoint_create(user=owner, url=receiver.url())
    campaign = CampaignFactory(user=owner)

    with pytest.raises(RuntimeError), transaction.atomic():
        services.campaign_status_changed(campaign=campaign)
        raise RuntimeError("the change failed")

    assert not Delivery.objects.exists()
    assert work(broker_queue) == []
    assert receiver.received == []


def test_a_receiver_down_then_up_gets_the_same_webhook_id(owner, local_network, receivers, broker_queue):
    port = free_port()
    endpoint = services.endpoint_create(user=owner, url=f"http://127.0.0.1:{port}/hook")
    services.campaign_status_changed(campaign=CampaignFactory(user=owner))
    work(broker_queue)

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
    assert "refused" in delivery.last_error.lower()
    assert beat(broker_queue) == []  # the retry is not due yet

    receiver = receivers(port)
    make_due(delivery)
    beat(broker_queue)

    (got,) = receiver.received
    assert got.headers["webhook-id"] == delivery.message_id
    verified(endpoint, got)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)


def test_retries_back_off_then_give_up_with_one_webhook_id(owner, local_network, receivers, broker_queue):
    receiver = receivers(status=500)
    services.endpoint_create(user=owner, url=receiver.url())
    services.campaign_status_changed(campaign=CampaignFactory(user=owner))
    work(broker_queue)

    waits = []
    delivery = Delivery.objects.get()
    while delivery.status == "pending":
        waits.append(delivery.next_attempt_at - delivery.last_attempt_at)
        make_due(delivery)
        beat(broker_queue)
        delivery.refresh_from_db()

    expected = [timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30)]
    expected += [timedelta(hours=2), timedelta(hours=5), timedelta(hours=10)]
    assert [round(wait.total_seconds()) for wait in waits] == [wait.total_seconds() for wait in expected]
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 7, 500)
    assert len(receiver.received) == 7
    assert {got.headers["webhook-id"] for got in receiver.received} == {delivery.message_id}


def test_an_endpoint_failing_for_three_days_is_disabled(owner, local_network, receivers, broker_queue):
    receiver = receivers(status=503)
    endpoint = services.endpoint_create(user=owner, url=receiver.url())
    campaign = CampaignFactory(user=owner)
    services.campaign_status_changed(campaign=campaign)
    work(broker_queue)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None and endpoint.disabled_at is None

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=2, hours=23))
    make_due(Delivery.objects.get())
    beat(broker_queue)
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is None

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=3, minutes=1))
    make_due(Delivery.objects.get())
    beat(broker_queue)

    endpoint.refresh_from_db()
    assert endpoint.disabled_at is not None
    assert "3 days" in endpoint.disabled_reason and "HTTP 503" in endpoint.disabled_reason
    assert Delivery.objects.get().status == "failed"
    assert services.campaign_status_changed(campaign=campaign) == []
    sent = len(receiver.received)
    beat(broker_queue)
    assert len(receiver.received) == sent == 3


def test_a_success_ends_the_failing_spell(owner, local_network, receivers, broker_queue):
    receiver = receivers(status=500)
    endpoint = services.endpoint_create(user=owner, url=receiver.url())
    services.campaign_status_changed(campaign=CampaignFactory(user=owner))
    work(broker_queue)
    receiver.status = 200
    make_due(Delivery.objects.get())
    beat(broker_queue)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None and endpoint.last_error == ""
    assert endpoint.last_success_at > endpoint.last_failure_at


def test_events_of_one_campaign_arrive_in_order(owner, local_network, receivers, broker_queue):
    receiver = receivers(status=500)
    endpoint = services.endpoint_create(user=owner, url=receiver.url())
    first_campaign, other_campaign = CampaignFactory(user=owner), CampaignFactory(user=owner)
    (a1,) = services.campaign_status_changed(campaign=first_campaign)
    (a2,) = services.recipient_call_finished(recipient=RecipientFactory(campaign=first_campaign))
    (a3,) = services.campaign_status_changed(campaign=first_campaign)
    (b1,) = services.campaign_status_changed(campaign=other_campaign)
    work(broker_queue)

    # a1 failed: a2 and a3 wait behind it; the other campaign's event is not held up.
    ids = [got.headers["webhook-id"] for got in receiver.received]
    assert ids == [a1.message_id, b1.message_id]

    receiver.status = 204
    Delivery.objects.update(next_attempt_at=timezone.now())
    beat(broker_queue)

    ids = [got.headers["webhook-id"] for got in receiver.received]
    first_campaign_ids = [i for i in ids if i in {a1.message_id, a2.message_id, a3.message_id}]
    assert first_campaign_ids == [a1.message_id, a1.message_id, a2.message_id, a3.message_id]
    assert ids.count(b1.message_id) == 2
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    assert verified(endpoint, receiver.received[-1])["type"] == "campaign.status_changed"


def test_a_redirect_is_not_followed(owner, local_network, receivers, broker_queue):
    elsewhere = receivers()
    redirecting = receivers(status=302, location=elsewhere.url("/stolen"))
    services.endpoint_create(user=owner, url=redirecting.url())
    services.campaign_status_changed(campaign=CampaignFactory(user=owner))
    work(broker_queue)

    assert len(redirecting.received) == 1
    assert elsewhere.received == []
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.last_status_code) == ("pending", 302)
    assert "redirect" in delivery.last_error


def test_a_slow_receiver_times_out_without_holding_up_another_endpoint(owner, local_network, receivers, settings):
    settings.OUTBOUND_WEBHOOKS_READ_TIMEOUT = 1
    slow, fast = receivers(delay=4), receivers()
    services.endpoint_create(user=owner, url=slow.url())
    services.endpoint_create(user=owner, url=fast.url())
    services.campaign_status_changed(campaign=CampaignFactory(user=owner))
    to_slow = Delivery.objects.get(endpoint__url=slow.url())
    to_fast = Delivery.objects.get(endpoint__url=fast.url())

    def send_slow():
        try:
            tasks.delivery_send(to_slow.pk)
        finally:
            connection.close()

    started = time.monotonic()
    worker = threading.Thread(target=send_slow)
    worker.start()
    while not slow.received and time.monotonic() - started < 5:
        time.sleep(0.02)
    tasks.delivery_send(to_fast.pk)  # another worker, while the slow one is still waiting
    assert len(fast.received) == 1 and worker.is_alive()
    worker.join(10)
    elapsed = time.monotonic() - started

    assert elapsed < 3, "the read timeout did not cut the slow receiver off"
    to_slow.refresh_from_db()
    to_fast.refresh_from_db()
    assert to_fast.status == "succeeded"
    assert (to_slow.status, to_slow.attempts, to_slow.last_status_code) == ("pending", 1, None)
    assert "timed out" in to_slow.last_error


def test_two_workers_never_send_one_delivery_at_once(owner, local_network, receivers):
    if connection.vendor != "postgresql":
        # The SQLite test database is shared in memory: a second writer fails at once ("table is
        # locked") instead of waiting, which is not what workers meet on a file or on PostgreSQL.
        pytest.skip("concurrent workers are tested on PostgreSQL (set DATABASE_URL)")
    receiver = receivers(delay=0.5)
    services.endpoint_create(user=owner, url=receiver.url())
    (delivery,) = services.campaign_status_changed(campaign=CampaignFactory(user=owner))

    def worker():
        try:
            tasks.delivery_send(delivery.pk)
        finally:
            connection.close()

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(10)

    assert len(receiver.received) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)


def test_a_delivery_held_by_a_worker_that_died_is_sent_once_its_claim_lapses(owner, local_network, receivers):
    receiver = receivers()
    services.endpoint_create(user=owner, url=receiver.url())
    (delivery,) = services.campaign_status_changed(campaign=CampaignFactory(user=owner))
    Delivery.objects.filter(pk=delivery.pk).update(claimed_until=timezone.now() + timedelta(seconds=60))

    assert services.deliveries_due() == []
    tasks.delivery_send(delivery.pk)
    assert receiver.received == []

    Delivery.objects.filter(pk=delivery.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert services.deliveries_due() == [delivery.pk]
    tasks.delivery_send(delivery.pk)
    assert len(receiver.received) == 1


def test_a_worker_holds_a_delivery_it_sends_for_the_claim_setting(owner, local_network, receivers, settings):
    settings.OUTBOUND_WEBHOOKS_CLAIM_SECONDS = 30
    receiver = receivers(delay=1.5)
    services.endpoint_create(user=owner, url=receiver.url())
    (delivery,) = services.campaign_status_changed(campaign=CampaignFactory(user=owner))
    started = timezone.now()

    def worker():
        try:
            tasks.delivery_send(delivery.pk)
        finally:
            connection.close()

    sending = threading.Thread(target=worker)
    sending.start()
    time.sleep(0.5)
    # While it is out, no sweep hands it to another worker; had this worker died, it would be
    # free again 30 s after it was claimed.
    assert services.deliveries_due() == []
    held_until = Delivery.objects.get(pk=delivery.pk).claimed_until
    assert started + timedelta(seconds=30) <= held_until <= timezone.now() + timedelta(seconds=30)
    sending.join(10)
    assert len(receiver.received) == 1


# --- Server-side request forgery at send time ---------------------------------------------------


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(owner, local_network, dns, receivers):
    receiver = receivers()
    dns["receiver.example.test"] = ["127.0.0.1"]
    endpoint = services.endpoint_create(user=owner, url=receiver.url(host="receiver.example.test"))
    services.endpoint_send_test(endpoint=endpoint)
    tasks.delivery_send(Delivery.objects.get().pk)

    (got,) = receiver.received
    assert got.headers["Host"] == f"receiver.example.test:{receiver.port}"
    assert verified(endpoint, got)["type"] == "test"


def test_a_name_that_turns_private_after_registration_is_refused_at_send_time(owner, settings, dns, receivers):
    settings.OUTBOUND_WEBHOOKS_ALLOW_HTTP = True
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    receiver = receivers()
    dns["rebind.example.test"] = ["93.184.216.34"]
    endpoint = services.endpoint_create(user=owner, url=receiver.url(host="rebind.example.test"))
    dns["rebind.example.test"] = ["127.0.0.1"]  # the name now points inside our network

    services.endpoint_send_test(endpoint=endpoint)
    tasks.delivery_send(Delivery.objects.get().pk)

    assert receiver.received == []
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 1
    assert "refused" in delivery.last_error and "127.0.0.1" in delivery.last_error


def test_the_beat_schedule_sends_due_deliveries():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["outbound-webhooks-due"]
    assert entry["task"] == "campaigns.events.tasks.deliveries_due"
