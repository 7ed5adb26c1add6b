"""Campaigns leave the building: real web server, Celery worker and beat, Redis and PostgreSQL,
with the sandbox playing ElevenLabs. Each exactly-once test counts the batches ElevenLabs holds.
"""

import datetime as dt
import io
import signal
import subprocess
import time

import pytest
import requests
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, CampaignBatch, Recipient
from campaigns.tests.factories import UserFactory
from sandbox.models import SandboxBatch

from .conftest import wait_until

# Last digits pick the sandbox's outcome: 0-5 success, 6 busy, 7 no answer, 8 voicemail, 9 unsuccessful.
NUMBERS = ["+12125550100", "+12125550106", "+12125550107", "+12125550108", "+12125550109", "+14155550123"]


@pytest.fixture
def account(stack):
    stack.web()
    user = UserFactory(username="integration")
    services.elevenlabs_sync(user=user)
    return {
        "user": user,
        "key": services.api_key_create(user=user).raw_key,
        "agent_id": "agent_demo_reminders",
        "phone_number_id": user.phone_numbers.get(elevenlabs_phone_number_id="phnum_demo_main").pk,
    }


def create_campaign(stack, account, name, numbers=NUMBERS, **fields) -> dict:
    csv = "phone_number,first_name\n" + "".join(f"{n},Person {i}\n" for i, n in enumerate(numbers))
    response = requests.post(
        f"{stack.url}/api/v1/campaigns",
        headers={"X-API-Key": account["key"]},
        data={
            "name": name,
            "agent_id": account["agent_id"],
            "phone_number_id": account["phone_number_id"],
            "send_immediately": "true",
            **fields,
        },
        files={"recipients_file": ("recipients.csv", io.BytesIO(csv.encode()), "text/csv")},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def campaign_status(campaign_id) -> str:
    return Campaign.objects.values_list("status", flat=True).get(pk=campaign_id)


def batches_at_elevenlabs(campaign_id) -> int:
    tokens = CampaignBatch.objects.filter(campaign_id=campaign_id).values_list("token", flat=True)
    return sum(SandboxBatch.objects.filter(name__endswith=f"[{token}]").count() for token in tokens)


def assert_every_outcome_stored(campaign_id):
    outcomes = {r.phone_number: r for r in Recipient.objects.filter(campaign_id=campaign_id)}
    assert {p: r.status for p, r in outcomes.items()} == {
        "+12125550100": "completed",
        "+12125550106": "failed",
        "+12125550107": "failed",
        "+12125550108": "voicemail",
        "+12125550109": "completed",
        "+14155550123": "completed",
    }
    wait_until(
        lambda: all(r.call_successful or r.failure_reason for r in Recipient.objects.filter(campaign_id=campaign_id)),
        timeout=20,
        message="every webhook outcome is recorded",
    )
    outcomes = {r.phone_number: r for r in Recipient.objects.filter(campaign_id=campaign_id)}
    assert outcomes["+12125550100"].call_successful == "success"
    assert outcomes["+12125550109"].call_successful == "failure"
    assert outcomes["+12125550106"].failure_reason == "busy"
    assert outcomes["+12125550107"].failure_reason == "no-answer"
    assert outcomes["+12125550108"].summary
    assert all(r.conversation_id for r in outcomes.values() if r.status != "failed")


def test_an_immediate_and_a_scheduled_campaign_are_called_to_completion(stack, account):
    stack.worker()
    stack.beat()
    at = timezone.now() + dt.timedelta(seconds=6)
    now = create_campaign(stack, account, "Now")
    later = create_campaign(
        stack,
        account,
        "Later",
        send_immediately="false",
        schedule_date=at.date().isoformat(),
        schedule_time=at.strftime("%H:%M:%S"),
    )
    assert later["status"] == "scheduled"

    wait_until(lambda: campaign_status(now["id"]) == "completed", timeout=90, message="the immediate one completes")
    assert campaign_status(later["id"]) in ("scheduled", "pending", "in_progress", "completed")
    wait_until(lambda: campaign_status(later["id"]) == "completed", timeout=90, message="the scheduled one completes")

    scheduled = Campaign.objects.get(pk=later["id"])
    submitted_at = CampaignBatch.objects.get(campaign=scheduled).submitted_at
    assert scheduled.scheduled_at <= submitted_at <= scheduled.scheduled_at + dt.timedelta(seconds=15)
    for campaign_id in (now["id"], later["id"]):
        assert batches_at_elevenlabs(campaign_id) == 1
        assert_every_outcome_stored(campaign_id)
    api = requests.get(f"{stack.url}/api/v1/campaigns/{now['id']}", headers={"X-API-Key": account["key"]}).json()
    assert api["data"]["status"] == "completed"
    assert api["data"]["elevenlabs_batch_call_id"] == SandboxBatch.objects.get(name__startswith="Now").id


def test_racing_workers_and_repeated_triggers_submit_a_campaign_once(stack, account):
    # Given a large campaign split into batches, and no worker yet to take the on-commit message
    campaign = create_campaign(stack, account, "Race", numbers=[f"+1212555{n:04d}" for n in range(200, 260)])
    stack.env["ELEVENLABS_BATCH_MAX_RECIPIENTS"] = "25"
    # When two workers start and the dispatch is triggered ten more times at once
    stack.worker("worker-a")
    stack.worker("worker-b")
    for _ in range(10):
        stack.send("campaigns.tasks.campaign_dispatch", campaign["id"])
    # Then each of its three batches exists exactly once at ElevenLabs
    wait_until(
        lambda: (
            CampaignBatch.objects.filter(campaign_id=campaign["id"], elevenlabs_batch_call_id__isnull=False).count()
            == 3
        ),
        timeout=60,
        message="three batches are stored",
    )
    time.sleep(2)  # let any late duplicate land before counting
    assert batches_at_elevenlabs(campaign["id"]) == 3
    assert SandboxBatch.objects.count() == 3


def test_beat_and_an_immediate_trigger_overlapping_submit_once(stack, account):
    stack.worker()
    stack.beat(DISPATCH_LOST_AFTER_SECONDS=0)  # beat sweeps the campaign as soon as it exists
    at = timezone.now() + dt.timedelta(seconds=3)
    campaign = create_campaign(
        stack,
        account,
        "Overlap",
        send_immediately="false",
        schedule_date=at.date().isoformat(),
        schedule_time=at.strftime("%H:%M:%S"),
    )
    while timezone.now() < at + dt.timedelta(seconds=2):
        stack.send("campaigns.tasks.campaign_dispatch", campaign["id"])
        time.sleep(0.1)
    wait_until(lambda: campaign_status(campaign["id"]) == "completed", timeout=60, message="the campaign completes")
    assert batches_at_elevenlabs(campaign["id"]) == 1


def test_a_worker_killed_after_elevenlabs_accepted_the_batch_does_not_cause_a_second_one(stack, account):
    # ElevenLabs stores the batch, then takes 8 s to answer: the worker is killed while waiting.
    stack.kill("web", signal.SIGTERM)
    stack.web(SANDBOX_SUBMIT_DELAY_SECONDS=8)
    fast_recovery = {"DISPATCH_STALE_AFTER_SECONDS": 4, "ELEVENLABS_READ_TIMEOUT": 20}
    stack.worker(**fast_recovery)
    campaign = create_campaign(stack, account, "Killed")
    wait_until(lambda: SandboxBatch.objects.exists(), timeout=30, message="ElevenLabs holds the batch")
    assert CampaignBatch.objects.get(campaign_id=campaign["id"]).elevenlabs_batch_call_id is None
    stack.kill("worker")  # SIGKILL, children included

    # A new worker and beat find the orphaned submission and adopt ElevenLabs' batch.
    stack.worker("worker-2", **fast_recovery)
    stack.beat(**fast_recovery)
    wait_until(lambda: campaign_status(campaign["id"]) == "completed", timeout=90, message="the campaign completes")
    assert batches_at_elevenlabs(campaign["id"]) == 1
    batch = CampaignBatch.objects.get(campaign_id=campaign["id"])
    assert batch.elevenlabs_batch_call_id == SandboxBatch.objects.get().id


def test_a_message_lost_in_a_broker_restart_is_sent_once_by_the_sweep(stack, account, tmp_path):
    # A broker of its own, without persistence, so a restart loses what it held.
    port = 6391
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    broker = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        stack.broker_url = stack.env["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{port}/0"
        # The web server publishes the dispatch message to this broker on commit...
        stack.kill("web", signal.SIGTERM)
        stack.web()
        campaign = create_campaign(stack, account, "Lost")
        # ...which restarts before any worker took it.
        broker.terminate()
        broker.wait(timeout=10)
        broker = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        stack.worker(DISPATCH_LOST_AFTER_SECONDS=3)
        stack.beat(DISPATCH_LOST_AFTER_SECONDS=3)
        wait_until(lambda: campaign_status(campaign["id"]) == "completed", timeout=90, message="it completes")
        assert batches_at_elevenlabs(campaign["id"]) == 1
    finally:
        stack.stop_all()
        broker.terminate()
        broker.wait(timeout=10)
