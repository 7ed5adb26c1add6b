"""Authentication, scoping, reading campaigns, and the error envelope for the framework's own errors."""

import json

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from campaigns import services
from campaigns.models import ApiKey

from .factories import AgentFactory, CampaignFactory, PhoneNumberFactory
from .test_api_create_campaign import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


def test_a_key_works_in_x_api_key_and_in_authorization_bearer(raw_api_key):
    client = APIClient()
    assert client.get("/api/v1/campaigns", HTTP_X_API_KEY=raw_api_key).status_code == 200
    assert client.get("/api/v1/campaigns", HTTP_AUTHORIZATION=f"Bearer {raw_api_key}").status_code == 200


def test_no_key_is_answered_401_in_the_envelope():
    response = APIClient().get("/api/v1/campaigns")
    assert_error(response, 401, "credentials were not provided")
    assert "Bearer" in response["WWW-Authenticate"]


@pytest.mark.parametrize("header", ["HTTP_X_API_KEY", "HTTP_AUTHORIZATION"])
def test_a_wrong_key_is_answered_401(raw_api_key, header):
    value = "vk_wrong" if header == "HTTP_X_API_KEY" else "Bearer vk_wrong"
    response = APIClient().get("/api/v1/campaigns", **{header: value})
    assert_error(response, 401, "Invalid or revoked API key")


def test_a_revoked_key_is_refused(raw_api_key):
    services.api_key_revoke(api_key=ApiKey.objects.get())
    response = APIClient().get("/api/v1/campaigns", HTTP_X_API_KEY=raw_api_key)
    assert_error(response, 401, "Invalid or revoked API key")


def test_only_a_hash_and_a_short_prefix_of_the_key_are_stored(raw_api_key):
    stored = ApiKey.objects.get()
    assert raw_api_key not in {stored.key_hash, stored.prefix, stored.name}
    assert raw_api_key.startswith(stored.prefix) and len(stored.prefix) < 16
    assert stored.key_hash == ApiKey.hash_key(raw_api_key)


def test_authenticating_costs_one_query_and_records_last_use(raw_api_key, agent, django_assert_num_queries):
    client = APIClient()
    client.get("/api/v1/agents", HTTP_X_API_KEY=raw_api_key)  # first use writes last_used_at
    assert ApiKey.objects.get().last_used_at is not None
    # key lookup, then the page's rows, which bring the total along
    with django_assert_num_queries(2):
        client.get("/api/v1/agents", HTTP_X_API_KEY=raw_api_key)


def test_the_list_shows_only_my_campaigns_newest_first(api, user, other_user):
    older = CampaignFactory(user=user, name="older")
    newer = CampaignFactory(user=user, name="newer")
    CampaignFactory(user=other_user, name="not mine")

    response = api.get("/api/v1/campaigns")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == {"code": 200, "message": "Success"}
    assert [c["id"] for c in body["data"]] == [newer.pk, older.pk]
    assert body["pagination"]["total"] == 2


def test_the_list_is_paginated(api, user):
    for _ in range(3):
        CampaignFactory(user=user)
    body = api.get("/api/v1/campaigns?page_size=2&page=2").json()
    assert len(body["data"]) == 1
    assert body["pagination"]["pages"] == 2


def test_one_campaign_has_every_documented_field(api, user):
    campaign = CampaignFactory(user=user)
    response = api.get(f"/api/v1/campaigns/{campaign.pk}")

    assert response.status_code == 200
    data = response.json()["data"]
    documented = {
        "id",
        "name",
        "status",
        "elevenlabs_batch_call_id",
        "recipients_count",
        "scheduled_at",
        "send_immediately",
        "created_at",
    }
    assert documented <= data.keys()
    assert data["id"] == campaign.pk and data["status"] == "pending"


def test_another_users_campaign_is_answered_like_a_missing_one(api, other_user):
    theirs = CampaignFactory(user=other_user)
    missing = assert_error(api.get("/api/v1/campaigns/999999"), 404, "Campaign not found")
    hidden = assert_error(api.get(f"/api/v1/campaigns/{theirs.pk}"), 404, "Campaign not found")
    assert missing["status"] == hidden["status"]


def test_an_agent_is_found_by_elevenlabs_id_or_numeric_id(api, user, other_user):
    agent = AgentFactory(user=user, elevenlabs_agent_id="agent_xyz")
    theirs = AgentFactory(user=other_user)
    assert api.get("/api/v1/agents/agent_xyz").json()["data"]["id"] == agent.pk
    assert api.get(f"/api/v1/agents/{agent.pk}").json()["data"]["agent_id"] == "agent_xyz"
    assert_error(api.get(f"/api/v1/agents/{theirs.pk}"), 404, "Agent not found")


def test_phone_numbers_are_listed(api, phone_number):
    data = api.get("/api/v1/phone_numbers").json()["data"]
    assert [(n["id"], n["phone_number"]) for n in data] == [(phone_number.pk, "+14155550100")]


def test_phone_numbers_say_whether_a_campaign_can_call_from_them(api, user, phone_number):
    inbound = PhoneNumberFactory(user=user, label="zz inbound", supports_outbound=False)

    data = api.get("/api/v1/phone_numbers").json()["data"]

    assert [(n["id"], n["supports_outbound"]) for n in data] == [(phone_number.pk, True), (inbound.pk, False)]


def test_an_unknown_path_under_api_answers_json_404(api):
    assert_error(api.get("/api/v1/nothing-here"), 404, "/api/v1/nothing-here")
    assert_error(APIClient().post("/api/v2/campaigns"), 404, "/api/v2/campaigns")


def test_a_wrong_method_answers_405_in_the_envelope(api):
    assert_error(api.put("/api/v1/campaigns"), 405, "PUT")
    assert_error(api.delete("/api/v1/campaigns/1"), 405, "DELETE")


def test_responses_carry_rate_limit_headers_and_429_past_the_limit(raw_api_key, settings):
    settings.API_RATE_LIMIT = "2/min"
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw_api_key)

    first = client.get("/api/v1/campaigns")
    assert (first["X-RateLimit-Limit"], first["X-RateLimit-Remaining"]) == ("2", "1")
    assert int(first["X-RateLimit-Reset"]) > 0
    assert client.get("/api/v1/campaigns")["X-RateLimit-Remaining"] == "0"

    third = client.get("/api/v1/campaigns")
    assert_error(third, 429, "Too many requests")
    assert third["X-RateLimit-Remaining"] == "0"
    assert int(third["Retry-After"]) > 0


def test_the_openapi_document_describes_the_create_endpoint():
    response = APIClient().get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert "json" in response["Content-Type"]
    schema = json.loads(response.content)
    assert "post" in schema["paths"]["/api/v1/campaigns"]


def test_the_openapi_document_describes_every_answer_in_its_envelope(api, campaign_form):
    schema = APIClient().get("/api/v1/openapi.json").json()
    components = schema["components"]["schemas"]

    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "delete"):
                continue
            responses = operation["responses"]
            assert {"401", "429"} <= responses.keys(), (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            for code, response in responses.items():
                for body in response.get("content", {}).values():
                    documented = body["schema"]
                    if code.startswith("2"):
                        assert documented["properties"]["status"] == {"$ref": "#/components/schemas/Status"}, path
                        assert "data" in documented["properties"], (method, path, code)
                    else:
                        assert documented == {"$ref": "#/components/schemas/ErrorEnvelope"}, (method, path, code)

    # Real answers carry exactly the documented top-level fields.
    api.post("/api/v1/campaigns", campaign_form(), format="multipart")
    listed = api.get("/api/v1/campaigns").json()
    documented = schema["paths"]["/api/v1/campaigns"]["get"]["responses"]["200"]["content"]["application/json"]
    assert set(listed) == set(documented["schema"]["properties"]) == {"status", "data", "pagination"}
    assert set(listed["pagination"]) == set(components["Pagination"]["properties"])
    missing = api.get("/api/v1/campaigns/999999").json()
    assert set(missing) == set(components["ErrorEnvelope"]["properties"])


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("page=abc", "page: A valid integer is required."),
        ("page=0", "page: Ensure this value is greater than or equal to 1."),
        ("page_size=0", "page_size: Ensure this value is greater than or equal to 1."),
        ("page_size=501", "page_size: Ensure this value is less than or equal to 500."),
        ("page_size=", "page_size: A valid integer is required."),
    ],
)
def test_a_wrong_page_is_a_422_not_silently_the_first_page(api, user, query, fragment):
    CampaignFactory(user=user)
    body = assert_error(api.get(f"/api/v1/campaigns?{query}"), 422, fragment)
    assert body["details"].keys() == {query.split("=")[0]}


def test_a_page_past_the_last_is_a_404_that_says_where_the_last_is(api, user):
    for _ in range(3):
        CampaignFactory(user=user)
    assert_error(api.get("/api/v1/campaigns?page_size=2&page=3"), 404, "There is no page 3: the last page is 2.")
    # No campaigns at all is one empty page, not a 404.
    assert api.get("/api/v1/suppressions").json()["pagination"] == {
        "page": 1,
        "page_size": 50,
        "total": 0,
        "pages": 1,
        "next": None,
        "previous": None,
    }


@pytest.mark.parametrize("path", ["/api/v1/campaigns", "/api/v1/agents", "/api/v1/api_keys"])
def test_a_page_too_far_for_the_database_to_count_to_is_the_same_404(api, user, path):
    CampaignFactory(user=user)
    huge = 20663068797561577293217792
    assert_error(api.get(f"{path}?page={huge}"), 404, f"There is no page {huge}: the last page is 1.")


def test_the_openapi_document_says_either_key_header_is_enough_and_documents_paging():
    schema = APIClient().get("/api/v1/openapi.json").json()
    for item in schema["paths"].values():
        for method, operation in item.items():
            if method in ("get", "post", "put", "delete"):
                # Two requirements (either one), not one requirement naming both (both at once).
                assert operation["security"] == [{"ApiKeyHeader": []}, {"BearerKey": []}]
    listing = schema["paths"]["/api/v1/campaigns"]["get"]
    page_size = next(p for p in listing["parameters"] if p["name"] == "page_size")
    assert page_size["schema"] == {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}
    assert {"404", "422"} <= listing["responses"].keys()
    created = schema["paths"]["/api/v1/campaigns"]["post"]["responses"]["201"]
    assert created["links"]["GetCampaign"]["parameters"] == {"campaign_id": "$response.body#/data/id"}
    upload = schema["components"]["schemas"]["CampaignCreateRequest"]["properties"]["recipients_file"]
    assert upload == {"type": "string", "format": "binary"}


def test_a_recipient_filter_sent_empty_is_refused_not_ignored(api, user):
    campaign = CampaignFactory(user=user)
    assert_error(api.get(f"/api/v1/campaigns/{campaign.pk}/recipients?status="), 422, "status")


@pytest.mark.parametrize("body", ["null", "[]", '"text"', "7"])
def test_a_json_body_that_is_not_an_object_is_a_422(api, body):
    response = api.post("/api/v1/suppressions", body, content_type="application/json")
    assert_error(response, 422)


@pytest.mark.parametrize("name", [7, True, None, ["CRM"], {"x": 1}])
def test_a_text_field_sent_as_another_json_type_is_refused(api, name):
    response = api.post("/api/v1/api_keys", {"api_key": {"name": name}}, format="json")
    assert_error(response, 422, "api_key: name:")
    assert ApiKey.objects.count() == 1
