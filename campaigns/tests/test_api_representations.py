"""The campaign answers are built as plain dicts (campaigns.api.representations) while the
serializers describe them to the OpenAPI document: the two must give the same JSON, field for
field and in the same order. And each endpoint runs a fixed number of queries, however many
campaigns or batches there are."""

import datetime as dt
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from campaigns import selectors
from campaigns.api import serializers
from campaigns.models import Campaign, CampaignBatch, Recipient

from .conftest import csv_file
from .factories import CampaignFactory

NOW = timezone.now().replace(microsecond=0)


def as_json(data):
    """As the client reads it, with each campaign's fields in order. (The order inside time_zones
    is the database's: PostgreSQL's jsonb keeps its own.)"""
    parsed = json.loads(JSONRenderer().render(data))
    if isinstance(parsed, list):
        return [list(item.items()) for item in parsed]
    return list(parsed.items())


def batch(campaign, part: int, **fields) -> CampaignBatch:
    return CampaignBatch.objects.create(
        campaign=campaign, part=part, offset=0, size=1, token=f"t{campaign.pk}-{part}", **fields
    )


@pytest.fixture
def campaigns(user):
    """Campaigns of every shape the representation has to get right."""
    plain = CampaignFactory(user=user, elevenlabs_batch_call_id="btcal_1", time_zones={"America/New_York": 3})
    scheduled = CampaignFactory(
        user=user,
        status=Campaign.Status.SCHEDULED,
        send_immediately=False,
        scheduled_at=NOW + dt.timedelta(days=2),
        timezone="Europe/Paris",
        duplicates_merged=2,
        invalid_rows_skipped=1,
        suppressed_count=4,
        import_errors=[{"line": 3, "phone_number": "12", "error": "Invalid phone number"}],
    )
    failed = CampaignFactory(user=user, status=Campaign.Status.FAILED, error="The agent was deleted at ElevenLabs.")
    policy = CampaignFactory(
        user=user,
        status=Campaign.Status.IN_PROGRESS,
        calling_hours="09:00-12:00,14:00-20:00",
        calling_days="mon,tue,wed,thu,fri",
        calling_timezone="recipient",
        max_attempts=3,
        retry_delay_minutes=30,
        max_concurrent_calls=5,
        calls_dispatched=7,
        calls_finished=2,
    )
    batch(policy, 2, elevenlabs_campaign_id="ocmp_b", next_call_at=NOW + dt.timedelta(hours=1))
    batch(policy, 1, elevenlabs_campaign_id="ocmp_a", next_call_at=NOW + dt.timedelta(hours=3))
    batch(policy, 3, elevenlabs_campaign_id="ocmp_c", next_call_at=NOW, settled_at=NOW)  # done: not next
    retries = CampaignFactory(user=user, max_attempts=2, calling_timezone="UTC")
    batch(retries, 1, elevenlabs_campaign_id="ocmp_r")
    Recipient.objects.create(campaign=policy, phone_number="+12125550100", line=2, status="completed")
    return [plain, scheduled, failed, policy, retries]


def test_the_list_answers_what_the_campaign_serializer_describes(api, user, campaigns):
    listed = api.get("/api/v1/campaigns").json()["data"]

    expected = serializers.CampaignSerializer(selectors.campaign_list(user=user), many=True).data
    assert as_json(listed) == as_json(expected)
    assert {row["id"] for row in listed} == {campaign.pk for campaign in campaigns}


def test_a_campaign_answers_what_the_detail_serializer_describes(api, user, campaigns):
    for campaign in campaigns:
        shown = api.get(f"/api/v1/campaigns/{campaign.pk}").json()["data"]

        expected = serializers.CampaignDetailSerializer(selectors.campaign_get(user=user, campaign_id=campaign.pk))
        assert as_json(shown) == as_json(expected.data), campaign.name


def test_the_create_answer_is_what_the_created_serializer_describes(api, user, campaign_form):
    form = campaign_form(
        recipients_file=csv_file("phone_number\n+12125550100\nnot a number\n+14155550123\n"),
        skip_invalid_rows="true",
        timezone="America/Chicago",
        calling_hours="09:00-17:00",
        max_attempts="2",
        **_later(),
    )
    created = api.post("/api/v1/campaigns", form, format="multipart").json()["data"]

    campaign = Campaign.objects.select_related("agent").get(pk=created["id"])
    assert as_json(created) == as_json(serializers.CampaignCreatedSerializer(campaign).data)
    assert created["invalid_rows"] and created["policy"]["calling_hours"] == "09:00-17:00"


def test_cancel_answers_what_the_campaign_serializer_describes(api, user):
    campaign = CampaignFactory(user=user, status=Campaign.Status.SCHEDULED, send_immediately=False, scheduled_at=NOW)

    answered = api.post(f"/api/v1/campaigns/{campaign.pk}/cancel").json()["data"]

    expected = serializers.CampaignSerializer(selectors.campaign_get(user=user, campaign_id=campaign.pk)).data
    assert answered["status"] == "cancelled"
    assert as_json(answered) == as_json(expected)


# --- Queries per request -----------------------------------------------------------------


def test_the_list_runs_the_same_queries_for_2_or_40_campaigns(api, user, campaigns, django_assert_num_queries):
    api.get("/api/v1/campaigns")  # the key's first use writes last_used_at
    # the key; the page with its total and its campaigns' outbound campaigns
    with django_assert_num_queries(2):
        api.get("/api/v1/campaigns")
    for _ in range(35):
        CampaignFactory(user=user)
    with django_assert_num_queries(2):
        assert len(api.get("/api/v1/campaigns").json()["data"]) == 40


def test_campaigns_with_several_outbound_campaigns_fill_their_pages_exactly(api, user):
    """The page's campaigns are joined to their batches: three batches each must not make a page
    of two hold fewer campaigns, or any campaign show up twice or on no page."""
    made = []
    for i in range(5):
        campaign = CampaignFactory(user=user, max_attempts=2, calling_timezone="UTC")
        for part in (1, 2, 3):
            batch(campaign, part, elevenlabs_campaign_id=f"ocmp_{i}_{part}")
        made.append(campaign)

    pages = [api.get(f"/api/v1/campaigns?page={number}&page_size=2").json() for number in (1, 2, 3)]

    assert [len(page["data"]) for page in pages] == [2, 2, 1]
    assert {page["pagination"]["total"] for page in pages} == {5}
    listed = [item for page in pages for item in page["data"]]
    assert [item["id"] for item in listed] == [campaign.pk for campaign in reversed(made)]
    for item in listed:
        i = made.index(Campaign.objects.get(pk=item["id"]))
        assert item["elevenlabs_campaign_ids"] == [f"ocmp_{i}_1", f"ocmp_{i}_2", f"ocmp_{i}_3"]
    past = api.get("/api/v1/campaigns?page=4&page_size=2")
    assert past.status_code == 404
    assert past.json()["error"] == "There is no page 4: the last page is 3."


def test_another_accounts_campaigns_are_neither_listed_nor_counted(api, user, campaigns):
    CampaignFactory.create_batch(3)  # other users'

    answer = api.get("/api/v1/campaigns").json()

    assert answer["pagination"]["total"] == len(campaigns)
    assert {item["id"] for item in answer["data"]} == {campaign.pk for campaign in campaigns}


def test_a_campaign_costs_three_queries_with_or_without_outbound_campaigns(api, campaigns, django_assert_num_queries):
    plain, policy = campaigns[0], campaigns[3]
    api.get(f"/api/v1/campaigns/{plain.pk}")
    for campaign in (plain, policy):
        # the key; the campaign with its outbound campaigns; its recipients by status
        with django_assert_num_queries(3):
            api.get(f"/api/v1/campaigns/{campaign.pk}")


def test_creating_runs_the_same_queries_for_3_or_100_rows(api, campaign_form, django_assert_num_queries):
    api.get("/api/v1/campaigns")  # the key's first use writes last_used_at
    with CaptureQueriesContext(connection) as small:
        assert api.post("/api/v1/campaigns", campaign_form(**_later()), format="multipart").status_code == 201
    numbers = "\n".join(f"+1212555{i:04d}" for i in range(100))
    larger = campaign_form(recipients_file=csv_file(f"phone_number\n{numbers}\n"), **_later())
    with django_assert_num_queries(len(small)):
        assert api.post("/api/v1/campaigns", larger, format="multipart").status_code == 201


def _later() -> dict:
    """Scheduled, not sent: the answer is the create's alone."""
    day = (NOW + dt.timedelta(days=3)).date().isoformat()
    return {"send_immediately": "false", "schedule_date": day, "schedule_time": "09:00"}
