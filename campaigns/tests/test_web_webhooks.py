"""The staff page /webhooks: add an endpoint (secret shown once), health, test event, deliveries, delete."""

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from campaigns.events.models import Delivery, WebhookEndpoint
from voiceable.celery import app as celery_app

from .factories import UserFactory
from .webhook_receiver import Receiver, run_queued

PAGE = "/webhooks"


@pytest.fixture
def local_network(settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_HTTP = True
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def receiver():
    started = Receiver()
    yield started
    started.stop()


def test_the_page_is_in_the_navigation(staff):
    page = staff.get(PAGE)
    assert page.status_code == 200
    assert b'href="/webhooks" aria-current="page">Webhooks</a>' in page.content
    assert b"No endpoints yet" in page.content


def test_adding_an_endpoint_shows_its_secret_once(staff, local_network, receiver):
    added = staff.post(PAGE, {"url": receiver.url(), "events": ["campaign.status_changed"]})

    assert added.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.secret.encode() in added.content
    assert "no-cache" in added["Cache-Control"] or "no-store" in added["Cache-Control"]
    assert b"It is shown only once" in added.content

    again = staff.get(PAGE)
    assert endpoint.secret.encode() not in again.content
    assert receiver.url().encode() in again.content
    assert b"Healthy" in again.content and b"campaign.status_changed" in again.content


def test_a_refused_url_is_named_next_to_the_form(staff, settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    page = staff.post(PAGE, {"url": "https://169.254.169.254/latest/meta-data/"})

    assert page.status_code == 200
    assert b"The URL https://169.254.169.254/latest/meta-data/ is refused" in page.content
    assert not WebhookEndpoint.objects.exists()


def test_send_test_event_and_see_it_in_the_last_deliveries(
    staff, local_network, receiver, broker_queue, django_capture_on_commit_callbacks
):
    staff.post(PAGE, {"url": receiver.url()})
    endpoint = WebhookEndpoint.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        answer = staff.post(f"/webhooks/{endpoint.pk}/test", follow=True)
    assert b"Test event queued" in answer.content
    assert b"Queued" in answer.content
    run_queued(broker_queue, celery_app)

    (got,) = receiver.received
    assert Webhook(endpoint.secret).verify(got.body, got.headers)["type"] == "test"
    page = staff.get(PAGE).content.decode()
    deliveries = page[page.index("Last deliveries") :]
    assert "<code>test</code>" in deliveries
    assert "<td>204</td>" in deliveries and "<td>1</td>" in deliveries
    assert "Delivered" in deliveries
    assert Delivery.objects.get().message_id in deliveries


def test_a_disabled_endpoint_says_so(staff, local_network, receiver):
    staff.post(PAGE, {"url": receiver.url()})
    WebhookEndpoint.objects.update(
        disabled_at=timezone.now(),
        failing_since=timezone.now(),
        disabled_reason="Every delivery failed for 3 days (last error: HTTP 500)",
    )
    page = staff.get(PAGE).content
    assert b"Disabled" in page and b"Every delivery failed for 3 days" in page
    assert b">Send test event<span" not in page


def test_deleting_an_endpoint(staff, local_network, receiver):
    staff.post(PAGE, {"url": receiver.url()})
    endpoint = WebhookEndpoint.objects.get()
    page = staff.post(f"/webhooks/{endpoint.pk}/delete", follow=True)
    assert b"deleted" in page.content
    assert not WebhookEndpoint.objects.exists()


def test_another_owners_endpoint_is_invisible_and_untouchable(staff, db):
    theirs = WebhookEndpoint.objects.create(
        user=UserFactory(username="mallory"), url="https://mallory.example.com/hook", secret="whsec_bWFsbG9yeQ=="
    )
    assert b"mallory.example.com" not in staff.get(PAGE).content
    staff.post(f"/webhooks/{theirs.pk}/delete")
    staff.post(f"/webhooks/{theirs.pk}/test")
    assert WebhookEndpoint.objects.filter(pk=theirs.pk).exists()
    assert not Delivery.objects.exists()


def test_the_page_has_no_inline_script_or_style(staff, local_network, receiver):
    staff.post(PAGE, {"url": receiver.url()})
    page = staff.get(PAGE).content.decode()
    assert "style=" not in page and "<style" not in page
    assert "<script>" not in page and "onclick" not in page
