"""API keys over the API: /api/v1/api_keys."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from campaigns import services
from campaigns.models import ApiKey

from .test_api_create_campaign import assert_error

URL = "/api/v1/api_keys"
FIELDS = {"id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "is_active"}
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


def client_with(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw_key)
    return client


def create(api, name="CRM sync"):
    return api.post(URL, {"api_key": {"name": name}}, format="json")


# --- Listing ------------------------------------------------------------------------------------


def test_the_list_shows_my_keys_newest_first_without_any_secret(api, user, other_user, raw_api_key):
    revoked = services.api_key_revoke(api_key=services.api_key_create(user=user, name="old laptop").api_key)
    newest = services.api_key_create(user=user, name="CRM sync")
    services.api_key_create(user=other_user, name="not mine")

    response = api.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == {"code": 200, "message": "Success"}
    assert [key["name"] for key in body["data"]] == ["CRM sync", "old laptop", "tests"]
    assert all(set(key) == FIELDS for key in body["data"])
    assert body["data"][0] == {
        "id": newest.api_key.pk,
        "name": "CRM sync",
        "prefix": newest.raw_key[:11],
        "created_at": newest.api_key.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "last_used_at": None,
        "revoked_at": None,
        "is_active": True,
    }
    assert body["data"][1]["id"] == revoked.pk and body["data"][1]["is_active"] is False
    assert body["data"][1]["revoked_at"].endswith("Z")
    # The key of this very request shows its use.
    assert body["data"][2]["last_used_at"] is not None
    text = response.content.decode()
    assert newest.raw_key not in text and raw_api_key not in text and newest.api_key.key_hash not in text


def test_the_list_is_paginated_like_the_campaigns(api, user):
    for index in range(2):
        services.api_key_create(user=user, name=f"key {index}")

    body = api.get(f"{URL}?page_size=2&page=2").json()

    assert [key["name"] for key in body["data"]] == ["tests"]
    assert set(body["pagination"]) == {"page", "page_size", "total", "pages", "next", "previous"}
    assert (body["pagination"]["page"], body["pagination"]["pages"], body["pagination"]["total"]) == (2, 2, 3)


@pytest.mark.parametrize(("method", "path"), [("get", URL), ("post", URL), ("put", f"{URL}/1"), ("delete", f"{URL}/1")])
def test_every_endpoint_needs_a_key(method, path):
    response = getattr(APIClient(), method)(path, {"api_key": {"name": "x"}}, format="json")
    assert_error(response, 401, "credentials were not provided")


# --- Creating -----------------------------------------------------------------------------------


def test_creating_answers_201_with_the_key_value_once_and_the_new_key_works(api, user):
    response = create(api)

    assert response.status_code == 201
    body = response.json()
    assert body["status"]["code"] == 201 and "key_value" in body["status"]["message"]
    data = body["data"]
    assert set(data) == FIELDS | {"key_value"}
    assert data["name"] == "CRM sync" and data["is_active"] is True and data["revoked_at"] is None
    assert data["key_value"].startswith(data["prefix"]) and len(data["key_value"]) > 30

    stored = ApiKey.objects.get(pk=data["id"])
    assert stored.user == user and stored.key_hash == ApiKey.hash_key(data["key_value"])

    new_client = client_with(data["key_value"])
    assert new_client.get("/api/v1/campaigns").status_code == 200
    # Never again: not in the list, not in a rename, not in a revoke.
    listed = new_client.get(URL)
    renamed = new_client.put(f"{URL}/{data['id']}", {"api_key": {"name": "CRM"}}, format="json")
    revoked = new_client.delete(f"{URL}/{data['id']}")
    for later in (listed, renamed, revoked):
        assert later.status_code == 200
        assert "key_value" not in later.content.decode() and data["key_value"] not in later.content.decode()


def test_a_name_is_trimmed(api):
    assert create(api, name="  CRM sync  ").json()["data"]["name"] == "CRM sync"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "api_key: This field is required."),
        ({"name": "flat"}, "api_key: This field is required."),
        ({"api_key": {}}, "api_key: name: This field is required."),
        ({"api_key": {"name": ""}}, "api_key: name: This field may not be blank."),
        ({"api_key": {"name": "   "}}, "api_key: name: This field may not be blank."),
        ({"api_key": {"name": "x" * 101}}, "api_key: name: Ensure this field has no more than 100 characters."),
        ({"api_key": "CRM"}, 'api_key must be an object like {"name": "…"}, not str.'),
    ],
)
def test_a_bad_body_is_422_naming_the_field_and_creates_nothing(api, body, fragment):
    body = assert_error(api.post(URL, body, format="json"), 422, fragment)
    assert "api_key" in body["details"]
    assert ApiKey.objects.count() == 1  # the key of the request


def test_a_body_that_is_not_an_object_is_422(api):
    assert_error(api.post(URL, ["CRM"], format="json"), 422, "The body must be a JSON object")
    assert ApiKey.objects.count() == 1


def test_a_body_that_is_not_json_is_refused(api):
    assert_error(api.post(URL, "{not json", content_type="application/json"), 400, "JSON parse error")
    assert_error(api.post(URL, {"name": "form"}), 415, "multipart/form-data")
    assert ApiKey.objects.count() == 1


# --- Renaming -----------------------------------------------------------------------------------


def test_renaming_answers_200_with_the_key(api, user):
    key = services.api_key_create(user=user, name="old name").api_key

    response = api.put(f"{URL}/{key.pk}", {"api_key": {"name": "new name"}}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == {"code": 200, "message": "API key renamed"}
    assert set(body["data"]) == FIELDS and body["data"]["id"] == key.pk and body["data"]["name"] == "new name"
    assert api.get(URL).json()["data"][0]["name"] == "new name"


def test_renaming_needs_a_name(api, user):
    key = services.api_key_create(user=user, name="kept").api_key
    assert_error(api.put(f"{URL}/{key.pk}", {"api_key": {"name": ""}}, format="json"), 422, "api_key: name:")
    assert_error(api.put(f"{URL}/{key.pk}", {}, format="json"), 422, "api_key: This field is required.")
    key.refresh_from_db()
    assert key.name == "kept"


def test_another_users_key_is_answered_like_a_missing_one(api, other_user):
    theirs = services.api_key_create(user=other_user, name="theirs").api_key
    rename = {"api_key": {"name": "taken over"}}

    missing = assert_error(api.put(f"{URL}/999999", rename, format="json"), 404, "API key not found")
    hidden = assert_error(api.put(f"{URL}/{theirs.pk}", rename, format="json"), 404, "API key not found")
    assert missing["status"] == hidden["status"]
    assert_error(api.delete(f"{URL}/{theirs.pk}"), 404, f"no API key {theirs.pk} in your account")
    assert_error(api.delete(f"{URL}/not-a-number"), 404, "API key not found")

    theirs.refresh_from_db()
    assert theirs.name == "theirs" and theirs.revoked_at is None


# --- Revoking -----------------------------------------------------------------------------------


def test_revoking_answers_200_with_the_revoked_key_and_the_key_is_refused_afterwards(api, user):
    created = services.api_key_create(user=user, name="CRM sync")
    other_client = client_with(created.raw_key)
    assert other_client.get("/api/v1/campaigns").status_code == 200

    response = api.delete(f"{URL}/{created.api_key.pk}")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == {"code": 200, "message": "API key revoked"}
    assert body["data"]["id"] == created.api_key.pk
    assert body["data"]["is_active"] is False and body["data"]["revoked_at"].endswith("Z")
    assert_error(other_client.get("/api/v1/campaigns"), 401, "Invalid or revoked API key")
    # The key of the request still works, and the revoked key stays listed.
    listed = {key["id"]: key["is_active"] for key in api.get(URL).json()["data"]}
    assert listed[created.api_key.pk] is False


def test_revoking_the_key_of_the_request_is_allowed_and_says_so(api):
    own = ApiKey.objects.get()

    response = api.delete(f"{URL}/{own.pk}")

    assert response.status_code == 200
    assert "the key this request used" in response.json()["status"]["message"]
    assert response.json()["data"]["is_active"] is False
    assert_error(api.get(URL), 401, "Invalid or revoked API key")


def test_revoking_a_revoked_key_changes_nothing(api, user):
    key = services.api_key_revoke(api_key=services.api_key_create(user=user, name="gone").api_key)
    revoked_at = key.revoked_at.strftime("%Y-%m-%dT%H:%M:%SZ")

    response = api.delete(f"{URL}/{key.pk}")

    assert response.status_code == 200
    assert response.json()["status"]["message"] == "API key was already revoked"
    assert response.json()["data"]["revoked_at"] == revoked_at


def test_a_trailing_slash_is_tolerated(api, user):
    key = services.api_key_create(user=user, name="slash").api_key
    assert api.get(f"{URL}/").status_code == 200
    assert api.delete(f"{URL}/{key.pk}/").status_code == 200


# --- The OpenAPI document -----------------------------------------------------------------------


def test_the_openapi_document_describes_every_operation_and_its_errors():
    paths = APIClient().get("/api/v1/openapi.json").json()["paths"]

    def statuses(path, method):
        return set(paths[path][method]["responses"])

    assert {"200", "401", "429"} <= statuses("/api/v1/api_keys", "get")
    assert {"201", "401", "415", "422", "429"} <= statuses("/api/v1/api_keys", "post")
    assert {"200", "401", "404", "422"} <= statuses("/api/v1/api_keys/{api_key_id}", "put")
    assert {"200", "401", "404"} <= statuses("/api/v1/api_keys/{api_key_id}", "delete")
    assert "requestBody" in paths["/api/v1/api_keys"]["post"]
    assert "requestBody" in paths["/api/v1/api_keys/{api_key_id}"]["put"]


def test_a_body_whose_api_key_is_not_an_object_names_the_field(api):
    response = api.post("/api/v1/api_keys", {"api_key": "x"}, format="json")

    assert response.status_code == 422
    assert response.json()["error"].startswith("api_key: ")
