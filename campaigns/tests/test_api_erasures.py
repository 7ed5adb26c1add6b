"""POST /api/v1/erasures: one person erased from the key's account, and what was done, read back."""

import pytest
import responses
from rest_framework.test import APIClient

from campaigns.models import Erasure, Recipient, Suppression

from .conftest import BASE
from .factories import CallFactory, CampaignFactory, RecipientFactory, SuppressionFactory
from .test_api_create_campaign import assert_error

URL = "/api/v1/erasures"
pytestmark = pytest.mark.django_db


@pytest.fixture
def elevenlabs_settings(settings):
    # The view builds its client from settings: point it at the played ElevenLabs.
    settings.ELEVENLABS_BASE_URL = BASE
    settings.ELEVENLABS_API_KEY = "k"
    return settings


@pytest.fixture
def called(user):
    """A finished campaign that called +14155550123 once."""
    campaign = CampaignFactory(user=user, status="completed")
    recipient = RecipientFactory(
        campaign=campaign, phone_number="+14155550123", variables={"first_name": "Ada"}, status="completed"
    )
    CallFactory(recipient=recipient, conversation_id="conv_ada", transcript=[{"role": "user", "message": "Hi"}])
    return recipient


def test_an_erasure_answers_201_with_what_it_did(api, user, called, http, elevenlabs_settings):
    SuppressionFactory(user=user, phone_number="+14155550123")
    http.add(responses.DELETE, f"{BASE}/v1/convai/conversations/conv_ada", status=200)

    response = api.post(URL, {"phone_number": "+1 (415) 555-0123"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"]["code"] == 201
    assert "1 recipient erased in 1 campaign" in body["status"]["message"]
    data = body["data"]
    assert {key: data[key] for key in ("recipients_erased", "campaigns_touched", "calls_erased")} == {
        "recipients_erased": 1,
        "campaigns_touched": 1,
        "calls_erased": 1,
    }
    assert data["conversations_deleted"] == 1 and data["conversations_not_deleted"] == []
    assert data["do_not_call_kept"] is True
    assert data["requested_by"].startswith("API key tests")
    assert data["created_at"].endswith("Z")
    assert "4155550123" not in response.content.decode()
    called.refresh_from_db()
    assert called.phone_number == f"erased:{called.pk}" and called.variables == {}
    assert Suppression.objects.get(user=user).erased


def test_an_erasure_reads_back_in_the_list_and_by_id(api, user, called, http, elevenlabs_settings):
    http.add(responses.DELETE, f"{BASE}/v1/convai/conversations/conv_ada", status=503, json={"detail": "down"})
    created = api.post(URL, {"phone_number": "+14155550123"}, format="json").json()["data"]

    listed = api.get(URL)
    shown = api.get(f"{URL}/{created['id']}")

    assert listed.status_code == 200 and listed.json()["data"] == [created]
    assert listed.json()["pagination"]["total"] == 1
    assert shown.status_code == 200 and shown.json()["data"] == created
    assert created["conversations_deleted"] == 0
    assert created["conversations_not_deleted"][0]["conversation_id"] == "conv_ada"


@pytest.mark.parametrize("value", ["12", "not a number", "", "+1415555012345678"])
def test_a_value_that_is_not_a_phone_number_is_refused_in_the_envelope(api, value):
    response = api.post(URL, {"phone_number": value}, format="json")

    assert_error(response, 422, "phone_number")
    assert not Erasure.objects.exists()


def test_a_missing_phone_number_is_refused(api):
    assert_error(api.post(URL, {}, format="json"), 422, "phone_number")


@pytest.mark.parametrize("method, path", [("get", URL), ("post", URL), ("get", f"{URL}/1")])
def test_every_endpoint_needs_a_key(method, path, user, called):
    missing = getattr(APIClient(), method)(path, {"phone_number": "+14155550123"}, format="json")
    wrong = getattr(APIClient(), method)(path, {"phone_number": "+14155550123"}, format="json", HTTP_X_API_KEY="vk_x")

    assert_error(missing, 401, "credentials were not provided")
    assert_error(wrong, 401, "Invalid or revoked API key")
    called.refresh_from_db()
    assert called.phone_number == "+14155550123"


def test_another_accounts_data_and_erasures_are_out_of_reach(api, other_user, http, elevenlabs_settings):
    theirs = RecipientFactory(campaign=CampaignFactory(user=other_user), phone_number="+14155550123")
    their_erasure = Erasure.objects.create(user=other_user, number_hash="0" * 64)

    response = api.post(URL, {"phone_number": "+14155550123"}, format="json")

    assert response.status_code == 201
    assert response.json()["data"]["recipients_erased"] == 0
    theirs.refresh_from_db()
    assert theirs.phone_number == "+14155550123"
    assert_error(api.get(f"{URL}/{their_erasure.pk}"), 404, "no erasure")
    assert [item["id"] for item in api.get(URL).json()["data"]] == [response.json()["data"]["id"]]


@pytest.mark.parametrize("erasure_id", ["abc", "99999999999999999999", "0"])
def test_an_unknown_erasure_id_is_404(api, erasure_id):
    assert_error(api.get(f"{URL}/{erasure_id}"), 404)


def test_a_repeat_with_the_same_idempotency_key_runs_once(api, user, called, http, elevenlabs_settings):
    http.add(responses.DELETE, f"{BASE}/v1/convai/conversations/conv_ada", status=200)

    first = api.post(URL, {"phone_number": "+14155550123"}, format="json", HTTP_IDEMPOTENCY_KEY="erase-ada")
    second = api.post(URL, {"phone_number": "+14155550123"}, format="json", HTTP_IDEMPOTENCY_KEY="erase-ada")

    assert first.status_code == second.status_code == 201
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert second.content == first.content
    assert Erasure.objects.count() == 1
    assert len(http.calls) == 1


def test_erasing_twice_without_a_key_finds_nothing_the_second_time(api, user, called, http, elevenlabs_settings):
    http.add(responses.DELETE, f"{BASE}/v1/convai/conversations/conv_ada", status=200)
    api.post(URL, {"phone_number": "+14155550123"}, format="json")

    again = api.post(URL, {"phone_number": "+14155550123"}, format="json").json()["data"]

    assert (again["recipients_erased"], again["conversations_deleted"]) == (0, 0)
    assert Recipient.objects.filter(phone_number="+14155550123").count() == 0


def test_the_openapi_document_describes_the_endpoints(api):
    document = APIClient().get("/api/v1/openapi.json").json()

    created = document["paths"]["/api/v1/erasures"]["post"]
    assert {"201", "401", "422"} <= created["responses"].keys()
    assert created["requestBody"]["content"]["application/json"]["example"] == {"phone_number": "+14155550199"}
    assert "GetErasure" in created["responses"]["201"]["links"]
    assert "404" in document["paths"]["/api/v1/erasures/{erasure_id}"]["get"]["responses"]
    entry = document["components"]["schemas"]["Erasure"]["properties"]
    assert {"recipients_erased", "conversations_not_deleted", "do_not_call_kept", "notes"} <= entry.keys()
