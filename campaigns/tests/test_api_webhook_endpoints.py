"""POST/GET/DELETE /api/v1/webhook_endpoints: registration, the secret shown once, refused URLs."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from campaigns import services as campaign_services
from campaigns.events.models import WebhookEndpoint

from . import webhook_receiver
from .factories import UserFactory

URL = "/api/v1/webhook_endpoints"


@pytest.fixture(autouse=True)
def dns(settings):
    """Names resolve only as the tests say: the internet is not reachable here."""
    settings.OUTBOUND_WEBHOOKS_RESOLVER = "campaigns.tests.webhook_receiver.resolve"
    settings.OUTBOUND_WEBHOOKS_ALLOW_HTTP = False
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    webhook_receiver.ANSWERS.clear()
    webhook_receiver.ANSWERS.update(
        {
            "hooks.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
            "internal.example.com": ["10.0.0.7"],
            "mixed.example.com": ["93.184.216.34", "192.168.1.20"],
            "v6-private.example.com": ["fd00::1"],
        }
    )
    yield
    webhook_receiver.ANSWERS.clear()


def test_adding_an_endpoint_answers_its_secret_once(api):
    fields = {"url": "https://hooks.example.com/voiceable", "events": ["suppression.added"]}
    answer = api.post(URL, fields, format="json")

    assert answer.status_code == 201, answer.json()
    data = answer.json()["data"]
    assert data["url"] == "https://hooks.example.com/voiceable"
    assert data["events"] == ["suppression.added"]
    assert data["secret"].startswith("whsec_")
    Webhook(data["secret"])  # a secret the standardwebhooks package reads
    assert (data["disabled"], data["failing_since"], data["last_success_at"]) == (False, None, None)

    listed = api.get(URL).json()
    assert [item["id"] for item in listed["data"]] == [data["id"]]
    assert "secret" not in listed["data"][0]
    assert data["secret"] not in str(listed)


def test_events_left_out_means_every_event(api):
    answer = api.post(URL, {"url": "https://hooks.example.com/all"}, format="json")
    assert answer.status_code == 201
    assert answer.json()["data"]["events"] == []


def test_an_unknown_event_is_a_422(api):
    answer = api.post(URL, {"url": "https://hooks.example.com/x", "events": ["campaign.exploded"]}, format="json")
    assert answer.status_code == 422
    assert "campaign.exploded" in answer.json()["error"]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/plain-http",
        "ftp://hooks.example.com/x",
        "https://127.0.0.1/hook",
        "https://127.1.2.3:8443/hook",
        "https://10.1.2.3/hook",
        "https://172.16.0.1/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
        "https://100.64.0.1/hook",
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://internal.example.com/hook",
        "https://mixed.example.com/hook",
        "https://v6-private.example.com/hook",
        "https://nowhere.example.com/hook",
        "https://user:pass@hooks.example.com/hook",
    ],
)
def test_urls_that_could_reach_inside_are_refused_naming_the_url(api, url):
    answer = api.post(URL, {"url": url}, format="json")

    assert answer.status_code == 422, answer.json()
    body = answer.json()
    assert url in body["error"] and "refused" in body["error"]
    assert body["details"]["field"] == "url"
    assert not WebhookEndpoint.objects.exists()


def test_private_addresses_and_http_are_accepted_when_the_settings_allow_them(api, settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_HTTP = True
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    for url in ("http://127.0.0.1:9000/hook", "https://internal.example.com/hook", "https://[::1]/hook"):
        assert api.post(URL, {"url": url}, format="json").status_code == 201, url


def test_the_list_shows_delivery_health_and_is_paginated(api, user):
    for n in range(3):
        api.post(URL, {"url": f"https://hooks.example.com/{n}"}, format="json")
    failing = WebhookEndpoint.objects.get(url="https://hooks.example.com/1")
    since = timezone.now()
    WebhookEndpoint.objects.filter(pk=failing.pk).update(
        failing_since=since, last_failure_at=since, last_error="HTTP 500", disabled_at=since, disabled_reason="x"
    )

    page = api.get(URL, {"page_size": 2}).json()
    assert page["pagination"]["total"] == 3 and page["pagination"]["pages"] == 2
    everything = api.get(URL).json()["data"]
    shown = next(item for item in everything if item["id"] == failing.pk)
    assert shown["disabled"] is True and shown["last_error"] == "HTTP 500"
    assert shown["failing_since"].endswith("Z") and shown["disabled_at"].endswith("Z")


def test_deleting_an_endpoint(api):
    endpoint_id = api.post(URL, {"url": "https://hooks.example.com/x"}, format="json").json()["data"]["id"]
    assert api.delete(f"{URL}/{endpoint_id}").status_code == 204
    assert api.get(URL).json()["data"] == []
    assert api.delete(f"{URL}/{endpoint_id}").status_code == 404


def test_another_owners_endpoint_is_invisible(api, db):
    mallory = UserFactory(username="mallory")
    theirs = WebhookEndpoint.objects.create(user=mallory, url="https://hooks.example.com/m", secret="whsec_x")
    other = APIClient()
    other.credentials(HTTP_X_API_KEY=campaign_services.api_key_create(user=mallory, name="m").raw_key)

    assert api.get(URL).json()["data"] == []
    answer = api.delete(f"{URL}/{theirs.pk}")
    assert answer.status_code == 404
    assert answer.json()["status"]["code"] == 404
    assert WebhookEndpoint.objects.filter(pk=theirs.pk).exists()
    assert [item["id"] for item in other.get(URL).json()["data"]] == [theirs.pk]


def test_without_a_key_the_answer_is_401(client, db):
    assert client.get(URL).status_code == 401
