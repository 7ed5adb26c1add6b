"""Only the calls the user asked for, and records that end equal to ElevenLabs' own.

Real gunicorn, Celery worker and beat, Redis and PostgreSQL; the sandbox plays ElevenLabs,
slowed down where a test needs a submit in flight or calls still under way.
"""

import signal
import time

import requests

from campaigns.models import Campaign, CampaignBatch, Recipient
from sandbox.models import SandboxBatch, SandboxRecipient

from .conftest import wait_until
from .test_sending import account, create_campaign  # noqa: F401 - `account` is a fixture


def sandbox_batches(campaign_id) -> list[SandboxBatch]:
    tokens = list(CampaignBatch.objects.filter(campaign_id=campaign_id).values_list("token", flat=True))
    return [
        batch for batch in SandboxBatch.objects.order_by("created_at") if batch.name.rsplit("[", 1)[-1][:-1] in tokens
    ]


def elevenlabs_statuses(campaign_id) -> dict[str, str]:
    batches = sandbox_batches(campaign_id)
    return dict(SandboxRecipient.objects.filter(batch__in=batches).values_list("phone_number", "status"))


def our_statuses(campaign_id) -> dict[str, str]:
    return dict(Recipient.objects.filter(campaign_id=campaign_id).values_list("phone_number", "status"))


def settled(campaign_id) -> bool:
    return not CampaignBatch.objects.filter(
        campaign_id=campaign_id, elevenlabs_batch_call_id__isnull=False, settled_at__isnull=True
    ).exists()


def assert_counters_are_the_sums_of_elevenlabs_batches(stack, account, campaign_id):  # noqa: F811
    batches = sandbox_batches(campaign_id)
    shown = requests.get(
        f"{stack.url}/api/v1/campaigns/{campaign_id}", headers={"X-API-Key": account["key"]}, timeout=10
    ).json()["data"]
    assert shown["calls_dispatched"] == sum(batch.total_calls_dispatched for batch in batches)
    assert shown["calls_finished"] == sum(batch.total_calls_finished for batch in batches)
    return shown


def test_a_four_part_campaign_submits_four_batches_when_elevenlabs_answers_in_progress(stack, account):  # noqa: F811
    # ElevenLabs starts calling the moment a batch arrives, so each submit answers in_progress.
    stack.env["ELEVENLABS_BATCH_MAX_RECIPIENTS"] = "5"
    stack.worker()
    stack.beat()
    numbers = [f"+1212555{n:04d}" for n in range(300, 320)]

    campaign = create_campaign(stack, account, "Four parts", numbers=numbers)

    wait_until(lambda: settled(campaign["id"]) and Campaign.objects.get(pk=campaign["id"]).status == "completed",
               timeout=120, message="the campaign completes and every batch settles")  # fmt: skip
    batches = sandbox_batches(campaign["id"])
    assert len(batches) == 4
    called = list(SandboxRecipient.objects.filter(batch__in=batches).values_list("phone_number", flat=True))
    assert sorted(called) == sorted(numbers)  # each person in exactly one batch
    assert our_statuses(campaign["id"]) == elevenlabs_statuses(campaign["id"])
    shown = assert_counters_are_the_sums_of_elevenlabs_batches(stack, account, campaign["id"])
    assert (shown["status"], shown["calls_finished"]) == ("completed", 20)


def test_a_ten_part_campaign_cancelled_while_a_submit_is_in_flight_ends_with_nothing_left_calling(stack, account):  # noqa: F811
    # Given ElevenLabs takes a second to answer each submit and calls that last a while
    # (every process advances the sandbox's calls, so every process gets the slow timeline)
    stack.kill("web", signal.SIGTERM)
    stack.env.update(SANDBOX_STEP_SECONDS="4", SANDBOX_CALL_SPACING_SECONDS="0.5", ELEVENLABS_BATCH_MAX_RECIPIENTS="3")
    stack.web(SANDBOX_SUBMIT_DELAY_SECONDS=1.5)
    stack.worker()
    stack.beat()
    numbers = [f"+1212555{n:04d}" for n in range(400, 430)]
    campaign = create_campaign(stack, account, "Ten parts", numbers=numbers)

    # When the user cancels while the third batch is stored at ElevenLabs but its answer is on its way
    wait_until(lambda: len(sandbox_batches(campaign["id"])) >= 3, timeout=60, message="three batches reach ElevenLabs")
    answer = requests.post(
        f"{stack.url}/api/v1/campaigns/{campaign['id']}/cancel", headers={"X-API-Key": account["key"]}, timeout=30
    )
    cancelled_at = time.time()

    # Then the cancel is accepted without promising what it cannot yet
    assert answer.status_code in (200, 202), answer.text
    if answer.status_code == 202:
        assert answer.json()["data"]["status"] == "cancelling"
    wait_until(lambda: Campaign.objects.get(pk=campaign["id"]).status == "cancelled", timeout=60,
               message="ElevenLabs confirms the cancel of every batch")  # fmt: skip
    # and no batch reached ElevenLabs after the cancel; every one that did is cancelled there
    batches = sandbox_batches(campaign["id"])
    assert 3 <= len(batches) < 10
    assert all(batch.created_at <= cancelled_at for batch in batches)
    assert {batch.status for batch in batches} == {"cancelled"}
    time.sleep(3)  # a straggler submit would land here
    assert len(sandbox_batches(campaign["id"])) == len(batches)
    # and the records converge on ElevenLabs' own, call by call
    wait_until(lambda: settled(campaign["id"]), timeout=60, message="every batch is followed to its end")
    ours = our_statuses(campaign["id"])
    theirs = elevenlabs_statuses(campaign["id"])
    assert {phone: ours[phone] for phone in theirs} == theirs
    never_sent = set(numbers) - set(theirs)
    assert never_sent and {ours[phone] for phone in never_sent} == {"cancelled"}
    assert_counters_are_the_sums_of_elevenlabs_batches(stack, account, campaign["id"])


def test_a_create_while_the_broker_is_down_answers_201_and_is_sent_once_by_the_sweep(stack, account):  # noqa: F811
    # Given a web server whose broker cannot be reached
    stack.kill("web", signal.SIGTERM)
    stack.web(CELERY_BROKER_URL="redis://127.0.0.1:9/0")

    started = time.monotonic()
    campaign = create_campaign(stack, account, "Broker down")  # asserts the 201

    assert time.monotonic() - started < 30
    assert Campaign.objects.filter(pk=campaign["id"]).count() == 1
    # When workers and beat run on the real broker, the sweep sends it, once
    stack.worker(DISPATCH_LOST_AFTER_SECONDS=2)
    stack.beat(DISPATCH_LOST_AFTER_SECONDS=2)
    wait_until(lambda: Campaign.objects.get(pk=campaign["id"]).status == "completed", timeout=90,
               message="the swept campaign completes")  # fmt: skip
    assert len(sandbox_batches(campaign["id"])) == 1


def test_rate_limits_and_outages_at_elevenlabs_end_with_one_batch_and_a_confirmed_cancel(stack, account):  # noqa: F811
    # Given an ElevenLabs that rate-limits the first submit and fails the first two cancels
    stack.kill("web", signal.SIGTERM)
    stack.env.update(SANDBOX_STEP_SECONDS="4", SANDBOX_CALL_SPACING_SECONDS="0.5")
    stack.web(SANDBOX_FAULTS="submit=429:1,cancel=503:2")
    stack.worker(DISPATCH_LOST_AFTER_SECONDS=2)
    stack.beat(DISPATCH_LOST_AFTER_SECONDS=2)
    numbers = [f"+1212555{n:04d}" for n in range(500, 510)]

    # When a campaign is created, and cancelled once it is calling
    campaign = create_campaign(stack, account, "Bumpy", numbers=numbers)
    wait_until(
        lambda: len(sandbox_batches(campaign["id"])) == 1, timeout=60, message="the batch goes out after the 429"
    )
    answer = requests.post(
        f"{stack.url}/api/v1/campaigns/{campaign['id']}/cancel", headers={"X-API-Key": account["key"]}, timeout=30
    )

    # Then the cancel is accepted but not claimed done, and the worker gets it confirmed
    assert answer.status_code == 202, answer.text
    assert answer.json()["data"]["status"] == "cancelling"
    assert "503" in answer.json()["data"]["error"]
    wait_until(lambda: Campaign.objects.get(pk=campaign["id"]).status == "cancelled", timeout=60,
               message="the worker's retried cancel is confirmed")  # fmt: skip
    assert [batch.status for batch in sandbox_batches(campaign["id"])] == ["cancelled"]
    assert Campaign.objects.get(pk=campaign["id"]).error == ""
    wait_until(lambda: settled(campaign["id"]), timeout=60, message="the batch is followed to its end")
    assert our_statuses(campaign["id"]) == elevenlabs_statuses(campaign["id"])
