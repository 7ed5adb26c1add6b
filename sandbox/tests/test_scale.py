import math

import pytest

from sandbox import outbound, services
from sandbox.models import SandboxBatch, SandboxCampaign, SandboxCampaignCall, SandboxLead, SandboxRecipient

from .clients import campaign_body

pytestmark = [pytest.mark.django_db]

SIZE = 10_000


def big_payload() -> dict:
    return {
        "call_name": "Ten thousand",
        "agent_id": "agent_demo_reminders",
        "agent_phone_number_id": "phnum_demo_main",
        "recipients": [
            {"phone_number": f"+1415{i:07d}", "conversation_initiation_client_data": {"dynamic_variables": {"n": i}}}
            for i in range(SIZE)
        ],
    }


def test_ten_thousand_recipients_are_submitted_in_bulk(api, django_assert_max_num_queries):
    payload = big_payload()

    # bulk_create: a single INSERT on PostgreSQL, batches of at most 999 parameters on SQLite;
    # then a handful of queries to store the batch and bring it up to date.
    columns = len(SandboxRecipient._meta.concrete_fields)
    with django_assert_max_num_queries(math.ceil(SIZE / (999 // columns)) + 10):
        response = api.post("/v1/convai/batch-calling/submit", payload)

    assert response.status_code == 200
    assert SandboxRecipient.objects.count() == SIZE


def test_advancing_ten_thousand_recipients_takes_a_handful_of_queries(api, clock, django_assert_max_num_queries):
    created = api.submit(recipients=big_payload()["recipients"])
    batch = SandboxBatch.objects.get(pk=created["id"])

    with django_assert_max_num_queries(10):
        services.batch_advance(batch, clock.now + SIZE * 0.5 + 10)

    assert batch.status == "completed"
    assert batch.total_calls_finished == SIZE
    assert SandboxRecipient.objects.filter(status__in=services.OPEN_RECIPIENT).count() == 0


def test_advancing_part_way_moves_each_recipient_to_its_own_stage(api, clock, django_assert_max_num_queries):
    created = api.submit(recipients=big_payload()["recipients"])
    batch = SandboxBatch.objects.get(pk=created["id"])

    with django_assert_max_num_queries(10):
        services.batch_advance(batch, clock.now + 100)

    # 100 s in: positions up to 200 dispatched, up to 196 initiated, 192 answered, 188 ended.
    assert batch.total_calls_dispatched == 201
    assert SandboxRecipient.objects.filter(status="pending").count() == SIZE - 201
    assert batch.total_calls_finished == SandboxRecipient.objects.filter(status__in=services.TERMINAL_RECIPIENT).count()


def test_a_ten_thousand_lead_campaign_read_after_it_ended_is_played_in_a_handful_of_queries(
    api, clock, django_assert_max_num_queries
):
    body = campaign_body(recipients=big_payload()["recipients"], policy={"retry": {"retry_delay_seconds": 60}})
    assert api.post("/v1/convai/outbound-campaigns/campaigns/submit", body).status_code == 201
    campaign = SandboxCampaign.objects.get()

    # Every call, retry and decision is played in memory, then written in a few batched statements:
    # the 3,000 retries (one per number ending in 6, two per 8) in INSERTs of at most 999 parameters on SQLite.
    columns = len(SandboxCampaignCall._meta.concrete_fields)
    with django_assert_max_num_queries(math.ceil(3_000 / (999 // columns)) + 15):
        outbound.campaign_advance(campaign, clock.now + SIZE * 0.5 + 3600)

    assert campaign.status == "completed"
    assert SandboxLead.objects.filter(terminal_disposition__isnull=True).count() == 0
