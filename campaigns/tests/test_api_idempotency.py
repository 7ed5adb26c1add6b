"""Idempotency-Key on the API's POSTs: a retried request is answered once, and runs once."""

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from campaigns import services
from campaigns.api import idempotency
from campaigns.models import Campaign, IdempotencyRecord, Recipient, Suppression

from .conftest import csv_file
from .factories import AgentFactory, CampaignFactory, PhoneNumberFactory
from .test_api_create_campaign import assert_error
from .test_tracking import BASE, BATCHES, campaign_submitted, remote_batch

URL = "/api/v1/campaigns"
CSV = "phone_number\n+12125550100\n+14155550123\n"
pytestmark = pytest.mark.django_db


@pytest.fixture
def elevenlabs_settings(settings):
    # The views build their client from settings: point it at the played ElevenLabs.
    settings.ELEVENLABS_BASE_URL = BASE
    settings.ELEVENLABS_API_KEY = "k"
    return settings


def create(api, form, key="create-1"):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return api.post(URL, form, format="multipart", **headers)


def replayed(response):
    return response.headers.get("Idempotent-Replayed")


def scheduled_campaign(user):
    return CampaignFactory(
        user=user,
        status=Campaign.Status.SCHEDULED,
        send_immediately=False,
        scheduled_at=timezone.now() + dt.timedelta(hours=2),
    )


# --- Replays ----------------------------------------------------------------------------


def test_a_repeated_create_makes_one_campaign_and_answers_the_same_again(api, campaign_form):
    first = create(api, campaign_form())
    second = create(api, campaign_form())

    assert first.status_code == 201, first.content
    assert replayed(first) is None
    assert second.status_code == 201
    assert second.content == first.content
    assert second["Content-Type"] == "application/json"
    assert replayed(second) == "true"
    assert Campaign.objects.count() == 1
    assert Recipient.objects.count() == 3
    assert second.json()["data"]["id"] == Campaign.objects.get().pk


def test_without_the_header_a_repeated_create_makes_two_campaigns_as_before(api, campaign_form):
    first = create(api, campaign_form(), key=None)
    second = create(api, campaign_form(), key=None)

    assert (first.status_code, second.status_code) == (201, 201)
    assert replayed(second) is None
    assert Campaign.objects.count() == 2
    assert not IdempotencyRecord.objects.exists()


def test_an_error_answer_is_replayed_without_running_the_request_again(api, campaign_form, user):
    refused = create(api, campaign_form(agent_id="agent_later"))
    assert_error(refused, 404, "agent_later")

    # The agent exists now: run again, the request would succeed. A repeat under the same key
    # gets the first answer instead, and nothing is created.
    AgentFactory(user=user, elevenlabs_agent_id="agent_later")
    repeated = create(api, campaign_form(agent_id="agent_later"))

    assert repeated.status_code == 404
    assert repeated.content == refused.content
    assert replayed(repeated) == "true"
    assert not Campaign.objects.exists()


def test_a_repeated_json_post_is_replayed(api):
    body = {"phone_number": "+12125550100", "reason": "asked"}
    first = api.post("/api/v1/suppressions", body, format="json", HTTP_IDEMPOTENCY_KEY="dnc-1")
    second = api.post("/api/v1/suppressions", body, format="json", HTTP_IDEMPOTENCY_KEY="dnc-1")

    # Sent again without a key, the number would be "already on the list" (200); the replay is
    # the first answer, 201.
    assert first.status_code == 201, first.content
    assert second.status_code == 201
    assert second.content == first.content
    assert replayed(second) == "true"
    assert Suppression.objects.count() == 1


# --- The same key for another request ----------------------------------------------------


def test_the_same_key_with_another_file_is_refused_and_creates_nothing(api, campaign_form):
    create(api, campaign_form())
    other_file = campaign_form(recipients_file=csv_file("phone_number\n+12125550199\n"))

    response = create(api, other_file)

    assert_error(response, 422, "Idempotency-Key", "different request")
    assert replayed(response) is None
    assert Campaign.objects.count() == 1
    assert list(Recipient.objects.values_list("phone_number", flat=True).order_by("phone_number")) == [
        "+12125550100",
        "+14155550123",
        "+442079460958",
    ]


def test_the_same_key_with_another_form_field_is_refused(api, campaign_form):
    create(api, campaign_form())

    response = create(api, campaign_form(name="Another name"))

    assert_error(response, 422, "different request")
    assert Campaign.objects.count() == 1


def test_the_same_key_on_another_path_is_refused_and_runs_nothing(api, user):
    first, second = scheduled_campaign(user), scheduled_campaign(user)
    cancelled = api.post(f"{URL}/{first.pk}/cancel", HTTP_IDEMPOTENCY_KEY="cancel-1")
    assert cancelled.status_code == 200, cancelled.content

    response = api.post(f"{URL}/{second.pk}/cancel", HTTP_IDEMPOTENCY_KEY="cancel-1")

    assert_error(response, 422, "different request")
    second.refresh_from_db()
    assert second.status == Campaign.Status.SCHEDULED


def test_the_same_key_with_another_json_body_is_refused(api):
    api.post("/api/v1/suppressions", {"phone_number": "+12125550100"}, format="json", HTTP_IDEMPOTENCY_KEY="dnc-2")

    response = api.post(
        "/api/v1/suppressions", {"phone_number": "+12125550101"}, format="json", HTTP_IDEMPOTENCY_KEY="dnc-2"
    )

    assert_error(response, 422, "different request")
    assert list(Suppression.objects.values_list("phone_number", flat=True)) == ["+12125550100"]


# --- 5xx, other users, requests still running, expiry ---------------------------------------


def test_a_5xx_answer_is_not_kept_and_the_next_attempt_runs(api, user, http, elevenlabs_settings):
    campaign = campaign_submitted(
        user=user, numbers=["+12125550100", "+12125550106"], status=Campaign.Status.COMPLETED, batch_status="completed"
    )
    Recipient.objects.filter(campaign=campaign, phone_number="+12125550106").update(status=Recipient.Status.FAILED)
    http.post(f"{BATCHES}/btcal_1/retry", status=503, body="Service Unavailable")

    failed = api.post(f"{URL}/{campaign.pk}/retry", HTTP_IDEMPOTENCY_KEY="retry-1")
    assert_error(failed, 502, "ElevenLabs")
    assert not IdempotencyRecord.objects.exists()

    retried = remote_batch("btcal_1", status="pending") | {"retry_count": 1}
    http.replace("POST", f"{BATCHES}/btcal_1/retry", json=retried)
    again = api.post(f"{URL}/{campaign.pk}/retry", HTTP_IDEMPOTENCY_KEY="retry-1")

    assert again.status_code == 200, again.content
    assert replayed(again) is None
    assert again.json()["data"]["retried_calls"] == 1
    assert [call.request.url for call in http.calls] == [f"{BATCHES}/btcal_1/retry"] * 2
    # Now kept: a third attempt is the second's answer, and ElevenLabs is not asked again.
    third = api.post(f"{URL}/{campaign.pk}/retry", HTTP_IDEMPOTENCY_KEY="retry-1")
    assert (third.status_code, replayed(third), third.content) == (200, "true", again.content)
    assert len(http.calls) == 2


def test_another_users_same_key_is_a_different_key(api, campaign_form, other_user):
    create(api, campaign_form())
    agent = AgentFactory(user=other_user, elevenlabs_agent_id="agent_other")
    number = PhoneNumberFactory(user=other_user, phone_number="+14155550199")
    other_api = APIClient()
    other_api.credentials(HTTP_X_API_KEY=services.api_key_create(user=other_user, name="other").raw_key)

    response = create(
        other_api, campaign_form(agent_id=agent.elevenlabs_agent_id, phone_number_id=str(number.pk)), key="create-1"
    )

    assert response.status_code == 201, response.content
    assert replayed(response) is None
    assert response.json()["data"]["id"] == Campaign.objects.get(user=other_user).pk
    assert Campaign.objects.count() == 2
    assert IdempotencyRecord.objects.filter(key="create-1").count() == 2


def test_a_repeat_while_the_first_still_runs_answers_409_and_runs_nothing(api, campaign_form, user):
    # The first request has claimed the key and is still running.
    first = APIRequestFactory().post(URL, campaign_form(), format="multipart")
    fingerprint = idempotency.request_fingerprint(Request(first, parsers=[MultiPartParser(), FormParser()]))
    idempotency.key_claim(user=user, key="create-1", fingerprint=fingerprint)

    response = create(api, campaign_form())

    assert_error(response, 409, "still being processed")
    assert replayed(response) is None
    assert not Campaign.objects.exists()
    assert IdempotencyRecord.objects.get().state == IdempotencyRecord.State.IN_PROGRESS


def test_a_repeat_of_a_request_whose_process_stopped_says_so_and_still_runs_nothing(api, campaign_form, user):
    # The first request claimed the key, then its process was killed: the claim stays in progress.
    first = APIRequestFactory().post(URL, campaign_form(), format="multipart")
    fingerprint = idempotency.request_fingerprint(Request(first, parsers=[MultiPartParser(), FormParser()]))
    idempotency.key_claim(user=user, key="create-1", fingerprint=fingerprint)
    IdempotencyRecord.objects.update(created_at=timezone.now() - dt.timedelta(minutes=11))

    response = create(api, campaign_form())

    # It may have created the campaign before it stopped: running it again could call everyone
    # twice, so it is not run; the client learns what to check instead of "try again in a moment".
    body = assert_error(response, 409, "did not finish", "GET /api/v1/campaigns", "new key")
    assert body["details"] == {"header": "Idempotency-Key", "state": "abandoned"}
    assert not Campaign.objects.exists()
    assert IdempotencyRecord.objects.get().state == IdempotencyRecord.State.IN_PROGRESS


def test_a_key_is_free_again_after_24_hours(api, campaign_form):
    first = create(api, campaign_form())
    a_day_ago = timezone.now() - dt.timedelta(hours=24, seconds=1)
    IdempotencyRecord.objects.update(created_at=a_day_ago, expires_at=a_day_ago + dt.timedelta(hours=24))

    again = create(api, campaign_form())

    assert again.status_code == 201, again.content
    assert replayed(again) is None
    assert again.json()["data"]["id"] != first.json()["data"]["id"]
    assert Campaign.objects.count() == 2
    assert IdempotencyRecord.objects.get().expires_at > timezone.now() + dt.timedelta(hours=23)


def test_just_before_24_hours_the_answer_is_still_replayed(api, campaign_form):
    create(api, campaign_form())
    almost_a_day_ago = timezone.now() - dt.timedelta(hours=23, minutes=59)
    IdempotencyRecord.objects.update(created_at=almost_a_day_ago, expires_at=almost_a_day_ago + dt.timedelta(hours=24))

    again = create(api, campaign_form())

    assert replayed(again) == "true"
    assert Campaign.objects.count() == 1


def test_the_sweep_deletes_expired_records_only(api, campaign_form):
    create(api, campaign_form(), key="old")
    create(api, campaign_form(), key="new")
    IdempotencyRecord.objects.filter(key="old").update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    assert idempotency.records_sweep() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


# --- The key itself --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["", "k" * 256, "clé", "tab\tin", " leading-space"], ids=["empty", "too-long", "non-ascii", "tab", "space"]
)
def test_a_malformed_key_is_refused_and_nothing_runs(api, campaign_form, key):
    response = create(api, campaign_form(), key=key)

    assert_error(response, 400, "Idempotency-Key", "printable ASCII")
    assert not Campaign.objects.exists()
    assert not IdempotencyRecord.objects.exists()


def test_a_key_of_255_printable_characters_is_accepted(api, campaign_form):
    key = ("a-Z_0 9~!" * 30)[:255]

    first = create(api, campaign_form(), key=key)
    second = create(api, campaign_form(), key=key)

    assert first.status_code == 201, first.content
    assert replayed(second) == "true"


def test_the_openapi_document_declares_the_header_and_its_answers_on_every_post():
    schema = APIClient().get("/api/v1/openapi.json").json()

    posts = {path: item["post"] for path, item in schema["paths"].items() if "post" in item}
    assert "/api/v1/campaigns" in posts and "/api/v1/campaigns/{campaign_id}/cancel" in posts
    for path, operation in posts.items():
        headers = [p for p in operation["parameters"] if p["in"] == "header" and p["name"] == "Idempotency-Key"]
        assert len(headers) == 1, path
        assert headers[0]["required"] is False
        assert {"409", "422"} <= set(operation["responses"]), path
    for path, item in schema["paths"].items():
        for method in set(item) - {"post"}:
            assert "Idempotency-Key" not in [p["name"] for p in item[method].get("parameters", [])], (method, path)


# --- Two at once (PostgreSQL) ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_creates_with_one_key_at_the_same_moment_make_one_campaign(raw_api_key, campaign_form):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions are tested on PostgreSQL (set DATABASE_URL)")
    forms = [campaign_form(), campaign_form()]
    start = threading.Barrier(2)
    responses = []

    def send(form):
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=raw_api_key)
        start.wait()
        try:
            responses.append(create(client, form, key="together"))
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(form,)) for form in forms]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(responses) == 2
    ran = [response for response in responses if response.status_code == 201 and replayed(response) is None]
    others = [response for response in responses if response not in ran]
    assert len(ran) == 1 and len(others) == 1
    other = others[0]
    assert other.status_code == 409 or (replayed(other) == "true" and other.content == ran[0].content)
    assert Campaign.objects.count() == 1
    assert Recipient.objects.count() == 3
