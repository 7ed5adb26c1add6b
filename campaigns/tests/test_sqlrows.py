"""The reads written out in SQL (campaigns.sqlrows) give what the ORM gives, on SQLite and on
PostgreSQL alike, and on PostgreSQL they are prepared once per connection."""

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns import selectors, services, sqlrows
from campaigns.errors import NotFound
from campaigns.models import Agent, ApiKey, Campaign, PhoneNumber

from .factories import AgentFactory, CampaignFactory, PhoneNumberFactory, SuppressionFactory, UserFactory


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


def test_an_agent_and_a_phone_number_are_what_the_orm_loads(user):
    agent = AgentFactory(user=user, override_permissions={"first_message": True, "language": False})
    number = PhoneNumberFactory(user=user, supports_outbound=False)

    by_elevenlabs_id = selectors.agent_get(user=user, agent_id=f"  {agent.elevenlabs_agent_id} ")
    by_local_id = selectors.agent_get(user=user, agent_id=agent.pk)
    found_number = selectors.phone_number_get(user=user, phone_number_id=str(number.pk))

    expected = model_fields(Agent.objects.get(pk=agent.pk))
    assert model_fields(by_elevenlabs_id) == model_fields(by_local_id) == expected
    assert expected["override_permissions"] == {"first_message": True, "language": False}
    assert model_fields(found_number) == model_fields(PhoneNumber.objects.get(pk=number.pk))
    found_number.label = "Front desk"
    found_number.save(update_fields=["label"])
    assert PhoneNumber.objects.get(pk=number.pk).label == "Front desk"


def test_another_accounts_agent_and_number_are_not_found(user):
    other = UserFactory(username="other")
    theirs, their_number = AgentFactory(user=other), PhoneNumberFactory(user=other)

    for agent_id in (theirs.elevenlabs_agent_id, theirs.pk):
        with pytest.raises(NotFound):
            selectors.agent_get(user=user, agent_id=agent_id)
    with pytest.raises(NotFound):
        selectors.phone_number_get(user=user, phone_number_id=their_number.pk)


def test_a_creates_references_are_read_at_once_and_none_when_not_in_the_account(user):
    agent, number = AgentFactory(user=user), PhoneNumberFactory(user=user)
    other = UserFactory(username="other")
    SuppressionFactory(user=other)

    found = selectors.account_references(user=user, agent_id=agent.elevenlabs_agent_id, phone_number_id=number.pk)
    assert (found.agent, found.phone_number, found.has_suppressions) == (agent, number, False)
    assert model_fields(found.agent) == model_fields(Agent.objects.get(pk=agent.pk))

    SuppressionFactory(user=user)
    missing = selectors.account_references(user=user, agent_id="agent_nope", phone_number_id=10**30)
    assert (missing.agent, missing.phone_number, missing.has_suppressions) == (None, None, True)
    theirs = selectors.account_references(user=other, agent_id=agent.pk, phone_number_id=number.pk)
    assert (theirs.agent, theirs.phone_number, theirs.has_suppressions) == (None, None, True)


def test_a_campaign_inserted_written_out_stores_what_the_orm_stores(user):
    agent, number = AgentFactory(user=user), PhoneNumberFactory(user=user)
    scheduled_at = timezone.now() + dt.timedelta(days=2, microseconds=17)

    def campaign() -> Campaign:
        return Campaign(
            user=user,
            name="Renewals — März",
            agent=agent,
            phone_number=number,
            status=Campaign.Status.SCHEDULED,
            send_immediately=False,
            scheduled_at=scheduled_at,
            timezone="Europe/Berlin",
            recipients_count=3,
            suppressed_count=1,
            time_zones={"Europe/Berlin": 2, "America/New_York": 1},
            calling_hours="09:00-12:00",
            calling_days="mon,tue",
            calling_timezone="recipient",
            max_attempts=3,
            retry_delay_minutes=30,
            duplicates_merged=2,
            import_errors=[{"line": 4, "message": "Not a phone number: 'n/a'"}],
        )

    written = campaign()
    before = timezone.now()
    sqlrows.insert(written)
    by_orm = campaign()
    by_orm.save()

    assert written.pk and written.pk != by_orm.pk and written._state.adding is False
    stored = Campaign.objects.get(pk=written.pk)
    assert before <= stored.created_at <= stored.updated_at <= timezone.now()
    differ = {"id", "created_at", "updated_at"}

    def same(instance) -> dict:
        return {name: value for name, value in model_fields(instance).items() if name not in differ}

    assert same(stored) == same(Campaign.objects.get(pk=by_orm.pk)) == same(written)


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


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_postgresql_prepares_the_reads_every_create_makes(api, campaign_form):
    for _ in range(6):
        assert api.post("/api/v1/campaigns", campaign_form(), format="multipart").status_code == 201

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [statement for (statement,) in cursor.fetchall()]
    sql, _ = selectors._account_references_sql("postgresql")
    assert any(statement.startswith(sql.split("%s")[0]) for statement in prepared)


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


def connection_terminated() -> None:
    """PostgreSQL ends this process's connection, as a restart or a failover would."""
    import psycopg

    pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a server that ends connections")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/api/v1/campaigns", "/api/v1/agents"])
def test_a_connection_the_database_ended_between_requests_costs_the_next_request_nothing(api, user, path):
    CampaignFactory(user=user, name="Still here")
    assert api.get(path).status_code == 200

    connection_terminated()
    # What Django does as each request starts: the connection will be checked before its reuse.
    connection.close_if_unusable_or_obsolete()
    answer = api.get(path)

    assert answer.status_code == 200
    if path == "/api/v1/campaigns":
        assert [campaign["name"] for campaign in answer.json()["data"]] == ["Still here"]
    assert api.get(path).status_code == 200
