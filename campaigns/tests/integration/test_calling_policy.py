"""Calling hours and retries with the real processes: gunicorn (API and sandbox), a Celery worker
and beat, PostgreSQL and Redis. The sandbox's campaign clock runs a minute per second from just
before a London window opens, so a test watches the window open, retries wait and calls end.
"""

import datetime as dt
import io
import time

import pytest
import requests

from campaigns import services
from campaigns.models import Campaign, CampaignBatch, Recipient, Suppression
from campaigns.tests.factories import UserFactory
from sandbox.models import SandboxCampaign, SandboxLead

from .conftest import wait_until

# Monday 1 March 2027, 08:50 in London: ten minutes (ten seconds here) before a 09:00 window.
CLOCK = {"SANDBOX_CLOCK_SPEED": "60", "SANDBOX_CLOCK_START": "2027-03-01T08:50:00+00:00"}
# Last digits pick the sandbox's outcome: 1 answered, 6 busy then answered, 7 asks not to be
# called again, 8 voicemail every time.
NUMBERS = ["+442079460951", "+442079460956", "+442079460957", "+442079460958"]


@pytest.fixture
def account(stack):
    stack.web(**CLOCK)
    user = UserFactory(username="policy")
    services.elevenlabs_sync(user=user)
    return {
        "user": user,
        "key": services.api_key_create(user=user).raw_key,
        "phone_number_id": user.phone_numbers.get(elevenlabs_phone_number_id="phnum_demo_main").pk,
    }


def create(stack, account, **fields) -> dict:
    csv = "phone_number\n" + "".join(f"{number}\n" for number in NUMBERS)
    response = requests.post(
        f"{stack.url}/api/v1/campaigns",
        headers={"X-API-Key": account["key"]},
        data={
            "name": "London mornings",
            "agent_id": "agent_demo_reminders",
            "phone_number_id": account["phone_number_id"],
            "send_immediately": "true",
            "calling_hours": "09:00-12:00",
            "calling_days": "mon-fri",
            "max_attempts": "2",
            "retry_delay_minutes": "2",
            **fields,
        },
        files={"recipients_file": ("recipients.csv", io.BytesIO(csv.encode()), "text/csv")},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def get(stack, account, campaign_id) -> dict:
    answer = requests.get(f"{stack.url}/api/v1/campaigns/{campaign_id}", headers={"X-API-Key": account["key"]})
    return answer.json()["data"]


def recipients(campaign_id) -> dict[str, Recipient]:
    return {r.phone_number: r for r in Recipient.objects.filter(campaign_id=campaign_id)}


def test_calls_wait_for_the_window_are_retried_and_end_with_every_outcome(stack, account):
    stack.worker(**CLOCK)
    stack.beat(**CLOCK)
    created = create(stack, account)

    # Sent, but nobody is called before 09:00 London time.
    wait_until(lambda: get(stack, account, created["id"])["next_call_at"], timeout=30, message="the next call is known")
    data = get(stack, account, created["id"])
    assert data["status"] == "in_progress"
    # Answers carry real time: the window opens ten campaign-clock minutes, ten seconds, from the start.
    opens = dt.datetime.fromisoformat(data["next_call_at"].replace("Z", "+00:00"))
    assert 0 < (opens - dt.datetime.now(dt.UTC)).total_seconds() <= 11
    assert len(data["elevenlabs_campaign_ids"]) == 1
    assert not any(r.conversation_id for r in recipients(created["id"]).values())
    assert SandboxCampaign.objects.get().policy["timezone"] == "Europe/London"

    wait_until(
        lambda: Campaign.objects.get(pk=created["id"]).status == "completed", timeout=120, message="it completes"
    )

    final = recipients(created["id"])
    assert {n: (r.status, r.attempt, r.disposition) for n, r in final.items()} == {
        "+442079460951": ("completed", 1, "completed"),
        "+442079460956": ("completed", 2, "completed"),  # busy, then answered on the retry
        "+442079460957": ("completed", 1, "do_not_call"),
        "+442079460958": ("voicemail", 2, "attempt_ceiling_reached"),
    }
    assert final["+442079460956"].calls.count() == 2
    assert SandboxLead.objects.get(phone_number="+442079460957").do_not_call is True
    listed = Suppression.objects.get(user=account["user"], phone_number="+442079460957")
    assert (listed.source, listed.campaign_id) == ("elevenlabs", created["id"])
    wait_until(
        lambda: Recipient.objects.get(campaign_id=created["id"], phone_number="+442079460951").call_successful,
        timeout=20,
        message="the answered call's webhook is recorded",
    )
    assert CampaignBatch.objects.get(campaign_id=created["id"]).settled_at is not None
    assert "Traceback" not in stack.log("worker") + stack.log("web")


def test_a_paused_campaign_places_no_call_through_its_window_and_finishes_after_resume(stack, account):
    stack.worker(**CLOCK)
    stack.beat(**CLOCK)
    created = create(stack, account, max_attempts="1")
    headers = {"X-API-Key": account["key"]}
    wait_until(lambda: get(stack, account, created["id"])["elevenlabs_campaign_ids"], timeout=30, message="it is sent")

    paused = requests.post(f"{stack.url}/api/v1/campaigns/{created['id']}/pause", headers=headers, timeout=30)

    assert paused.status_code == 200, paused.text
    assert paused.json()["data"]["status"] == "paused"
    # Twenty seconds here is twenty minutes on the campaign clock: the window opened meanwhile.
    wait_until(lambda: SandboxCampaign.objects.get().status == "paused", timeout=10, message="paused upstream")
    time.sleep(20)
    assert not any(r.conversation_id for r in recipients(created["id"]).values())

    resumed = requests.post(f"{stack.url}/api/v1/campaigns/{created['id']}/resume", headers=headers, timeout=30)

    assert resumed.status_code == 200, resumed.text
    wait_until(
        lambda: Campaign.objects.get(pk=created["id"]).status == "completed", timeout=120, message="it completes"
    )
    final = recipients(created["id"])
    assert all(r.conversation_id for r in final.values())
    assert all(r.calls.count() == 1 for r in final.values())
