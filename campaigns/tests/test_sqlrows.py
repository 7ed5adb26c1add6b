"""The reads written out in SQL (campaigns.sqlrows) give what the ORM gives, on SQLite and on
PostgreSQL alike, and on PostgreSQL they are prepared once per connection."""

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns import selectors, services
from campaigns.models import ApiKey

from .factories import CampaignFactory, UserFactory


def model_fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def test_the_key_and_its_user_are_what_the_orm_loads(user):
    user.last_login = timezone.now() - dt.timedelta(days=1, microseconds=17)
    user.first_name = "Ada"
    user.save()
    created = services.api_key_create(user=user, name="CRM sync")
    ApiKey.objects.filter(pk=created.api_key.pk).update(last_used_at=timezone.now() - dt.timedelta(hours=2))

    found = selectors.api_key_active(key_hash=ApiKey.hash_key(created.raw_key))

    expected = ApiKey.objects.select_related("user").get(pk=created.api_key.pk)
    assert model_fields(found) == model_fields(expected)
    assert model_fields(found.user) == model_fields(expected.user)
    assert found._state.adding is False and found.user._state.adding is False
    # A model loaded from the database: saving it updates its row rather than adding one.
    found.name = "Renamed"
    found.save(update_fields=["name"])
    assert ApiKey.objects.get(pk=found.pk).name == "Renamed"


def test_no_key_is_found_once_revoked_or_its_user_deactivated(user):
    revoked = services.api_key_create(user=user, name="revoked")
    services.api_key_revoke(api_key=revoked.api_key)
    other = UserFactory(username="left")
    theirs = services.api_key_create(user=other, name="theirs")
    other.is_active = False
    other.save()

    assert selectors.api_key_active(key_hash=ApiKey.hash_key(revoked.raw_key)) is None
    assert selectors.api_key_active(key_hash=ApiKey.hash_key(theirs.raw_key)) is None
    assert selectors.api_key_active(key_hash=ApiKey.hash_key("vk_never_made")) is None
    answer = APIClient().get("/api/v1/campaigns", HTTP_X_API_KEY=theirs.raw_key)
    assert answer.status_code == 401


def test_a_page_of_campaigns_carries_the_columns_the_orm_reads(user):
    CampaignFactory(user=user, time_zones={"Europe/Paris": 2, "America/New_York": 1}, send_immediately=False)
    CampaignFactory(user=user, error="The agent was deleted at ElevenLabs.", scheduled_at=timezone.now())

    page, total = selectors.campaign_api_page(user=user, offset=0, limit=50)

    expected = selectors.campaign_list(user=user).values(*selectors.CAMPAIGN_API_COLUMNS)
    assert total == 2
    for row, orm in zip(page, expected, strict=True):
        for column in selectors.CAMPAIGN_API_COLUMNS:
            value = orm[column]
            if column in selectors.CAMPAIGN_API_TIMES:  # as the API writes times
                value = value and value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            assert row[column] == value, column


def test_a_page_past_the_last_counts_the_campaigns_apart(user):
    CampaignFactory.create_batch(3, user=user)

    assert selectors.campaign_api_page(user=user, offset=2, limit=2)[1] == 3
    assert selectors.campaign_api_page(user=user, offset=10, limit=2) == ([], 3)
    assert selectors.campaign_api_page(user=UserFactory(), offset=0, limit=2) == ([], 0)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_postgresql_prepares_the_key_and_page_reads_once_per_connection(api, user):
    CampaignFactory(user=user)
    for _ in range(7):
        assert api.get("/api/v1/campaigns").status_code == 200

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [statement for (statement,) in cursor.fetchall()]
    page_sql, _ = selectors._campaign_api_sql("postgresql", False)
    key_sql, _ = selectors._api_key_sql("postgresql")
    # psycopg sends $1, $2… where the query has %s.
    assert any(statement.startswith(page_sql.split("%s")[0]) for statement in prepared)
    assert any(statement.startswith(key_sql.split("%s")[0]) for statement in prepared)


@pytest.mark.parametrize("campaign_id", ["99999999999999999999", str(2**63), "0", "-1", "abc"])
def test_a_campaign_id_that_is_no_id_a_database_holds_is_not_found(api, campaign_id):
    answer = api.get(f"/api/v1/campaigns/{campaign_id}")

    assert answer.status_code == 404
    assert answer.json()["error"] == f"Campaign not found: there is no campaign {campaign_id} in your account."


def test_a_page_number_past_any_integer_is_not_found_and_names_the_last_page(api, user):
    CampaignFactory.create_batch(3, user=user)

    answer = api.get(f"/api/v1/campaigns?page={10**30}&page_size=2")

    assert answer.status_code == 404
    assert answer.json()["error"] == f"There is no page {10**30}: the last page is 2."
