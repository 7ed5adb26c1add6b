"""The do-not-call list over the API: /api/v1/suppressions."""

import io
import json

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from campaigns.models import Suppression

from . import hostile_files
from .factories import CampaignFactory, SuppressionFactory
from .test_api_create_campaign import assert_error

URL = "/api/v1/suppressions"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


def upload(data: str | bytes, name: str = "numbers.csv") -> io.BytesIO:
    file = io.BytesIO(data.encode() if isinstance(data, str) else data)
    file.name = name
    return file


# --- Listing ------------------------------------------------------------------------------------


def test_the_list_shows_my_entries_newest_first_in_the_documented_shape(api, user, other_user):
    campaign = CampaignFactory(user=user)
    older = SuppressionFactory(user=user, phone_number="+14155552671", reason="asked by email", source="staff")
    SuppressionFactory(user=user, phone_number="+12125550100", source="elevenlabs", campaign=campaign)
    SuppressionFactory(user=other_user, phone_number="+13125550100")

    response = api.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == {"code": 200, "message": "Success"}
    assert [entry["phone_number"] for entry in body["data"]] == ["+12125550100", "+14155552671"]
    assert body["data"][0]["campaign_id"] == campaign.pk
    assert body["data"][1] == {
        "phone_number": "+14155552671",
        "erased": False,
        "reason": "asked by email",
        "source": "staff",
        "campaign_id": None,
        "created_at": older.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert body["pagination"]["total"] == 2


def test_the_list_is_paginated_like_the_campaigns(api, user):
    for index in range(3):
        SuppressionFactory(user=user, phone_number=f"+1415555267{index}")

    body = api.get(f"{URL}?page_size=2&page=2").json()

    assert len(body["data"]) == 1
    assert set(body["pagination"]) == {"page", "page_size", "total", "pages", "next", "previous"}
    assert (body["pagination"]["page"], body["pagination"]["pages"], body["pagination"]["total"]) == (2, 2, 3)
    assert body["pagination"]["next"] is None and "page_size=2" in body["pagination"]["previous"]


def test_a_page_past_the_end_is_404_in_the_envelope(api, user):
    SuppressionFactory(user=user)
    assert_error(api.get(f"{URL}?page=9"), 404)


def test_the_list_is_searched_by_digits_or_reason(api, user):
    SuppressionFactory(user=user, phone_number="+14155552671", reason="asked on the call")
    SuppressionFactory(user=user, phone_number="+442079460958", reason="complaint")

    by_digits = api.get(URL, {"search": "(415) 555"}).json()["data"]
    by_reason = api.get(URL, {"search": "complaint"}).json()["data"]

    assert [entry["phone_number"] for entry in by_digits] == ["+14155552671"]
    assert [entry["phone_number"] for entry in by_reason] == ["+442079460958"]


def test_another_accounts_numbers_are_never_listed_or_found(api, other_user):
    SuppressionFactory(user=other_user, phone_number="+14155552671", reason="secret")

    assert api.get(URL).json()["data"] == []
    assert api.get(URL, {"search": "4155552671"}).json()["data"] == []
    assert api.get(URL, {"search": "secret"}).json()["data"] == []


# --- Adding one number --------------------------------------------------------------------------


def test_adding_a_number_answers_201_with_the_entry(api, user):
    response = api.post(URL, {"phone_number": "+1 (415) 555-2671", "reason": "asked by email"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == {"code": 201, "message": "+1 415-555-2671 added to the do-not-call list"}
    assert body["data"]["phone_number"] == "+14155552671"
    assert (body["data"]["reason"], body["data"]["source"], body["data"]["campaign_id"]) == (
        "asked by email",
        "api",
        None,
    )
    assert Suppression.objects.get().user == user


def test_a_number_without_country_code_is_read_in_the_default_country(api):
    response = api.post(URL, {"phone_number": "415 555 2671", "default_country": "US"}, format="json")

    assert response.status_code == 201
    assert response.json()["data"]["phone_number"] == "+14155552671"


def test_a_number_may_be_sent_as_a_form_too(api):
    response = api.post(URL, {"phone_number": "+14155552671"}, format="multipart")

    assert response.status_code == 201
    assert Suppression.objects.get().phone_number == "+14155552671"


def test_adding_a_listed_number_answers_200_with_the_existing_entry(api, user):
    SuppressionFactory(user=user, phone_number="+14155552671", reason="first", source="staff")

    response = api.post(URL, {"phone_number": "+14155552671", "reason": "second"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["status"]["message"] == "+1 415-555-2671 was already on the do-not-call list"
    assert (body["data"]["reason"], body["data"]["source"]) == ("first", "staff")
    assert Suppression.objects.count() == 1


def test_a_number_another_account_listed_is_added_to_mine(api, user, other_user):
    SuppressionFactory(user=other_user, phone_number="+14155552671", reason="theirs")

    response = api.post(URL, {"phone_number": "+14155552671"}, format="json")

    assert response.status_code == 201
    assert response.json()["data"]["reason"] == ""
    assert Suppression.objects.filter(user=user).count() == 1


@pytest.mark.parametrize(
    "sent, field, fragment",
    [
        ({"phone_number": "4155552671"}, "phone_number", "has no country code"),
        ({"phone_number": "hello"}, "phone_number", "'hello' is not a phone number"),
        ({"phone_number": "1.41555E+10"}, "phone_number", "scientific notation"),
        ({"phone_number": "   "}, "phone_number", "phone_number"),
        ({}, "phone_number", "phone_number: This field is required."),
        ({"phone_number": "4155552671", "default_country": "XX"}, "default_country", "Unknown default_country"),
        ({"phone_number": "+14155552671", "reason": "x" * 256}, "reason", "reason: "),
    ],
)
def test_an_invalid_add_is_422_naming_the_field(api, sent, field, fragment):
    body = assert_error(api.post(URL, sent, format="json"), 422, fragment)

    assert field in " ".join([body["error"], *body["errors"], json.dumps(body["details"])])
    assert not Suppression.objects.exists()


def test_malformed_json_is_400_in_the_envelope(api):
    response = api.generic("POST", URL, "{not json", content_type="application/json")
    assert_error(response, 400, "could not be read")


# --- Importing a file ---------------------------------------------------------------------------


def test_a_file_is_imported_with_its_invalid_rows_listed(api, user):
    SuppressionFactory(user=user, phone_number="+12125550100")
    text = "phone_number,name\n+14155552671,Ada\n+12125550100,Known\n12345,Short\n+442079460958,Bo\n"

    response = api.post(URL, {"file": upload(text), "reason": "CRM export"}, format="multipart")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == {
        "code": 201,
        "message": "2 numbers added, 1 already on the list, 1 row invalid",
    }
    assert body["data"] == {
        "added": 2,
        "already_listed": 1,
        "duplicates_merged": 0,
        "invalid_rows": 1,
        "errors": [
            "Line 4: '12345' has no country code: write it as +<country code><number>, or give a default "
            "country (default_country)"
        ],
    }
    assert set(
        Suppression.objects.filter(reason="CRM export", source="api").values_list("phone_number", flat=True)
    ) == {
        "+14155552671",
        "+442079460958",
    }


def test_a_file_of_numbers_without_a_header_and_a_default_country(api):
    response = api.post(URL, {"file": upload("415 555 2671\n212-555-0100\n"), "default_country": "US"})

    assert response.status_code == 201
    assert response.json()["data"]["added"] == 2


def test_a_file_with_no_valid_number_is_422_and_stores_nothing(api):
    body = assert_error(
        api.post(URL, {"file": upload("phone_number\nhello\n")}), 422, "no valid phone numbers", "Line 2: 'hello'"
    )

    assert body["details"]["field"] == "file"
    assert not Suppression.objects.exists()


def test_an_empty_file_is_422_naming_the_problem(api):
    assert_error(api.post(URL, {"file": upload("")}), 422, "The file has no recipients: it is empty.")


def test_a_number_and_a_file_together_are_refused(api):
    body = assert_error(
        api.post(URL, {"file": upload("+14155552671\n"), "phone_number": "+14155552671"}), 422, "not both"
    )
    assert body["details"] == {"field": "file"}
    assert not Suppression.objects.exists()


@pytest.mark.parametrize("case", hostile_files.HOSTILE, ids=lambda case: case.name)
def test_a_hostile_file_is_answered_413_or_422_never_500(api, case, built):
    response = api.post(URL, {"file": upload(built(case), case.filename)}, format="multipart")

    if "invalid rows" in case.message:
        # Refused by campaigns for its invalid rows; an import skips and lists them instead.
        assert response.status_code == 201 and response.json()["data"]["invalid_rows"] == 3
        return
    body = assert_error(response, case.status, case.message)
    assert body["status"]["code"] == case.status
    assert not Suppression.objects.exists()


def test_a_request_larger_than_the_file_limit_is_refused_before_it_is_read(api, settings):
    settings.RECIPIENTS_MAX_FILE_BYTES = 100
    text = "phone_number\n" + "+14155552671\n" * 100_000  # 1.2 MB: past the limit and the overhead

    assert_error(
        api.post(URL, {"file": upload(text)}, format="multipart"), 413, "The request is 1.2 MB; files are limited to"
    )


# --- Removing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("written", ["%2B14155552671", "+14155552671", "14155552671", "%2B1%20415%20555%202671"])
def test_removing_a_listed_number_answers_204(api, user, written):
    SuppressionFactory(user=user, phone_number="+14155552671")

    response = api.delete(f"{URL}/{written}")

    assert response.status_code == 204
    assert response.content == b""
    assert not Suppression.objects.exists()


def test_removing_a_number_not_listed_is_404_in_the_envelope(api, user):
    SuppressionFactory(user=user, phone_number="+12125550100")

    assert_error(api.delete(f"{URL}/%2B14155552671"), 404, "+14155552671 is not on your do-not-call list")
    assert Suppression.objects.count() == 1


def test_another_accounts_number_is_never_removed(api, other_user):
    SuppressionFactory(user=other_user, phone_number="+14155552671")

    missing = assert_error(api.delete(f"{URL}/%2B14155550123"), 404)
    theirs = assert_error(api.delete(f"{URL}/%2B14155552671"), 404)

    assert theirs["status"] == missing["status"]
    assert Suppression.objects.filter(user=other_user).count() == 1


def test_removing_something_that_is_no_number_is_422(api):
    assert_error(api.delete(f"{URL}/hello"), 422, "is not a phone number")


def test_a_wrong_method_is_405_in_the_envelope(api):
    assert_error(api.put(URL), 405, "PUT")
    assert_error(api.get(f"{URL}/%2B14155552671"), 405, "GET")


# --- Keys, limits and documentation -------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [("get", URL), ("post", URL), ("delete", f"{URL}/%2B14155552671")],
)
def test_every_endpoint_needs_a_key(method, path, user):
    SuppressionFactory(user=user, phone_number="+14155552671")

    missing = getattr(APIClient(), method)(path)
    wrong = getattr(APIClient(), method)(path, HTTP_X_API_KEY="vk_wrong")

    assert_error(missing, 401, "credentials were not provided")
    assert_error(wrong, 401, "Invalid or revoked API key")
    assert Suppression.objects.count() == 1


def test_the_answers_carry_the_rate_limit_headers_and_429_past_it(raw_api_key, settings):
    settings.API_RATE_LIMIT = "2/min"
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw_api_key)

    first = client.post(URL, {"phone_number": "+14155552671"}, format="json")
    second = client.delete(f"{URL}/%2B14155552671")
    third = client.get(URL)

    assert first["X-RateLimit-Remaining"] == "1" and second["X-RateLimit-Remaining"] == "0"
    assert_error(third, 429, "Too many requests")


def test_the_openapi_document_describes_the_endpoints():
    schema = APIClient().get("/api/v1/openapi.json").json()

    listed = schema["paths"]["/api/v1/suppressions"]
    removed = schema["paths"]["/api/v1/suppressions/{phone_number}"]
    assert {"get", "post"} <= listed.keys() and "delete" in removed
    assert {parameter["name"] for parameter in listed["get"]["parameters"]} == {"search", "page", "page_size"}
    assert set(listed["post"]["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert {"200", "201"} <= listed["post"]["responses"].keys()
    assert "204" in removed["delete"]["responses"] and "404" in removed["delete"]["responses"]
    entry = schema["components"]["schemas"]["Suppression"]["properties"]
    assert set(entry) == {"phone_number", "erased", "reason", "source", "campaign_id", "created_at"}
