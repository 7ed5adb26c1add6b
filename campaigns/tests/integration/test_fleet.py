"""The service as a fleet: two web nodes behind a round-robin balancer, two workers, a sandbox
worker and beat, on one PostgreSQL and one Redis (docker-compose.scale.yml on one machine).
Every request goes through the balancer, the sandbox's own API calls and webhooks included.

The journey: staff sign-in valid on both nodes, a preview on one node turned into a campaign
on the other, API creates, a cancel, event webhooks, the per-key rate limit counted once
between the nodes; then one web node and one worker are killed mid-campaign, and every
recipient is still followed to the end and called exactly once. Beside it: two beats run by
mistake send nothing twice.
"""

import collections
import io
import re
import time

import pytest
import redis
import requests

from campaigns import services
from campaigns.events.models import Delivery
from campaigns.models import Campaign, CampaignBatch, Recipient
from campaigns.tests.factories import UserFactory
from campaigns.tracking import TERMINAL_RECIPIENT_STATUSES
from sandbox.models import SandboxBatch, SandboxRecipient

from .conftest import BROKER_DB, REDIS_HOST, REDIS_PORT, wait_until
from .fleet import WebhookReceiver, fleet_start

PASSWORD = "correct horse battery"
RATE_LIMIT = 40
# The cache the rate limits are counted in: the Redis database after the broker's.
CACHE_DB = BROKER_DB + 1
FINAL_CAMPAIGN = ("completed", "cancelled")
FLEET_ENV = {
    "CACHE_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{CACHE_DB}",
    "API_RATE_LIMIT": f"{RATE_LIMIT}/min",
    "ELEVENLABS_BATCH_MAX_RECIPIENTS": 10,
    # Calls that take a few seconds, so that a campaign is still calling when a node dies.
    "SANDBOX_CALL_SPACING_SECONDS": 0.2,
    "SANDBOX_STEP_SECONDS": 0.5,
    # ElevenLabs stores a batch, then takes a second to answer: a campaign of several batches
    # is still being submitted when its worker is killed.
    "SANDBOX_SUBMIT_DELAY_SECONDS": 1,
    # Recovery within the test's time: a lost message or a submit cut short is taken up in seconds.
    "DISPATCH_LOST_AFTER_SECONDS": 3,
    "DISPATCH_STALE_AFTER_SECONDS": 5,
    "ELEVENLABS_READ_TIMEOUT": 10,
    "WEBHOOK_INBOX_EVERY": 2,
    "OUTBOUND_WEBHOOKS_SWEEP_EVERY": 1,
    # A delivery held by the killed worker is free again after this (above the 3 + 10 s timeouts).
    "OUTBOUND_WEBHOOKS_CLAIM_SECONDS": 15,
    # The receiver is a local address on plain HTTP.
    "OUTBOUND_WEBHOOKS_ALLOW_HTTP": "true",
    "OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
}


def numbers(start: int, count: int) -> list[str]:
    return [f"+1212555{n:04d}" for n in range(start, start + count)]


def csv_of(phones: list[str]) -> bytes:
    return ("phone_number,first_name\n" + "".join(f"{p},Person {i}\n" for i, p in enumerate(phones))).encode()


@pytest.fixture
def fleet(stack, settings):
    redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=CACHE_DB).flushdb()
    running = fleet_start(stack, **FLEET_ENV)
    # The web nodes check passwords with the production hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    # This process reads the sandbox through the balancer too.
    settings.ELEVENLABS_BASE_URL = f"{running.url}/sandbox/elevenlabs"
    yield running
    stack.stop_all()
    running.proxy.stop()


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.stop()


def account(fleet, username: str) -> dict:
    user = UserFactory(username=username)
    services.elevenlabs_sync(user=user)
    return {
        "user": user,
        "key": services.api_key_create(user=user).raw_key,
        "agent_id": "agent_demo_reminders",
        "phone_number_id": str(user.phone_numbers.get(elevenlabs_phone_number_id="phnum_demo_main").pk),
    }


def api_create(fleet, who: dict, name: str, phones: list[str]) -> int:
    response = requests.post(
        f"{fleet.url}/api/v1/campaigns",
        headers={"X-API-Key": who["key"]},
        data={
            "name": name,
            "agent_id": who["agent_id"],
            "phone_number_id": who["phone_number_id"],
            "send_immediately": "true",
        },
        files={"recipients_file": ("recipients.csv", io.BytesIO(csv_of(phones)), "text/csv")},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def register_endpoint(fleet, who: dict, receiver: WebhookReceiver):
    response = requests.post(
        f"{fleet.url}/api/v1/webhook_endpoints",
        headers={"X-API-Key": who["key"]},
        json={"url": receiver.url},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    receiver.secret = response.json()["data"]["secret"]


def csrf_token(response) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text)
    assert match, response.text[:500]
    return match.group(1)


def sandbox_batches(campaign_id) -> list[SandboxBatch]:
    tokens = set(CampaignBatch.objects.filter(campaign_id=campaign_id).values_list("token", flat=True))
    return [batch for batch in SandboxBatch.objects.all() if batch.name.rsplit("[", 1)[-1][:-1] in tokens]


def called(campaign_id) -> list[str]:
    """Every call ElevenLabs holds for the campaign: one row per number per batch it was sent in."""
    return list(
        SandboxRecipient.objects.filter(batch__in=sandbox_batches(campaign_id)).values_list("phone_number", flat=True)
    )


def finished(campaign_id) -> bool:
    campaign = Campaign.objects.get(pk=campaign_id)
    open_batches = CampaignBatch.objects.filter(
        campaign_id=campaign_id, elevenlabs_batch_call_id__isnull=False, settled_at__isnull=True
    )
    open_recipients = Recipient.objects.filter(campaign_id=campaign_id).exclude(status__in=TERMINAL_RECIPIENT_STATUSES)
    return campaign.status in FINAL_CAMPAIGN and not open_batches.exists() and not open_recipients.exists()


def deliveries_done() -> bool:
    return not Delivery.objects.exclude(status=Delivery.Status.SUCCEEDED).exists()


def wait_for_every_delivery():
    try:
        wait_until(deliveries_done, timeout=60, message="every event is delivered")
    except AssertionError as exc:
        waiting = Delivery.objects.exclude(status=Delivery.Status.SUCCEEDED).values(
            "event_type", "status", "attempts", "claimed_until", "last_error"
        )
        raise AssertionError(f"{exc}: {list(waiting)[:5]}") from None


def assert_called_exactly_once(campaign_id, phones: list[str]):
    calls = called(campaign_id)
    assert sorted(calls) == sorted(phones), collections.Counter(calls).most_common(3)
    # One batch at ElevenLabs per batch of ours, and no call retried by it.
    ours = CampaignBatch.objects.filter(campaign_id=campaign_id, elevenlabs_batch_call_id__isnull=False)
    assert (
        len(sandbox_batches(campaign_id))
        == ours.count()
        == CampaignBatch.objects.filter(campaign_id=campaign_id).count()
    )
    assert set(ours.values_list("elevenlabs_batch_call_id", flat=True)) == {b.id for b in sandbox_batches(campaign_id)}
    assert not SandboxRecipient.objects.filter(batch__in=sandbox_batches(campaign_id), attempt__gt=1).exists()


def assert_records_match_elevenlabs(campaign_id):
    theirs = dict(
        SandboxRecipient.objects.filter(batch__in=sandbox_batches(campaign_id)).values_list("phone_number", "status")
    )
    ours = dict(Recipient.objects.filter(campaign_id=campaign_id).values_list("phone_number", "status"))
    assert {phone: ours[phone] for phone in theirs} == theirs


def assert_each_event_delivered_once(receiver: WebhookReceiver):
    ids = receiver.ids()
    assert receiver.refused == 0
    twice = [message_id for message_id, count in collections.Counter(ids).items() if count > 1]
    assert not twice, f"delivered more than once: {twice}"
    assert set(ids) == set(Delivery.objects.values_list("message_id", flat=True))
    # One event per call that reached its outcome, never two for one call (the poll and the
    # webhook both see it). A call cancelled with its campaign may end without one.
    told = collections.Counter(item.data["id"] for item in receiver.received if item.type == "recipient.call_finished")
    assert set(told.values()) == {1}
    answered = set(
        Recipient.objects.filter(status__in=("completed", "failed", "voicemail")).values_list("pk", flat=True)
    )
    ended = set(Recipient.objects.filter(status__in=TERMINAL_RECIPIENT_STATUSES).values_list("pk", flat=True))
    assert answered <= set(told) <= ended


def test_two_web_nodes_two_workers_and_beat_run_the_whole_journey_and_survive_losing_a_node_and_a_worker(
    fleet, receiver, stack
):
    proxy = fleet.proxy
    staff = account(fleet, "staff")
    staff["user"].set_password(PASSWORD)
    staff["user"].save()
    register_endpoint(fleet, staff, receiver)

    # Staff sign in through the balancer; the session is good on both nodes.
    browser = requests.Session()
    sign_in_page = browser.get(f"{fleet.url}/accounts/login/", timeout=30)
    signed_in = browser.post(
        f"{fleet.url}/accounts/login/",
        data={"username": "staff", "password": PASSWORD, "csrfmiddlewaretoken": csrf_token(sign_in_page)},
        timeout=30,
    )
    assert signed_in.status_code == 200 and signed_in.url == f"{fleet.url}/", signed_in.url
    for _ in range(2):
        assert browser.get(f"{fleet.url}/campaigns/new", timeout=30).status_code == 200
    assert set(proxy.nodes_serving("GET", "/campaigns/new", 200)) == {"web-1", "web-2"}

    # A preview on one node becomes a campaign on the other (the upload is in the shared storage).
    form = {
        "name": "Staff",
        "agent_id": staff["agent_id"],
        "phone_number_id": staff["phone_number_id"],
        "default_country": "",
        "when": "now",
        "timezone": "UTC",
    }
    staff_phones = numbers(100, 6)
    page = browser.get(f"{fleet.url}/campaigns/new", timeout=30)
    preview = browser.post(
        f"{fleet.url}/campaigns/new",
        data={**form, "action": "preview", "csrfmiddlewaretoken": csrf_token(page)},
        files={"recipients_file": ("people.csv", io.BytesIO(csv_of(staff_phones)), "text/csv")},
        timeout=60,
    )
    assert preview.status_code == 200
    token = re.search(r'name="upload_token" value="([^"]+)"', preview.text).group(1)
    previewed_on = proxy.nodes_serving("POST", "/campaigns/new")[-1]
    while proxy.peek() == previewed_on:  # nothing else goes through the balancer yet
        requests.get(f"{fleet.url}/healthz", timeout=10)
    created = browser.post(
        f"{fleet.url}/campaigns/new",
        data={**form, "action": "create", "upload_token": token, "csrfmiddlewaretoken": csrf_token(preview)},
        allow_redirects=False,
        timeout=60,
    )
    assert created.status_code == 302, created.text[:500]
    created_on = proxy.nodes_serving("POST", "/campaigns/new")[-1]
    assert {previewed_on, created_on} == {"web-1", "web-2"}
    staff_campaign = int(created.headers["Location"].rsplit("/", 1)[-1])
    assert Recipient.objects.filter(campaign_id=staff_campaign).count() == 6

    # The per-key rate limit is one count between the nodes.
    limited = account(fleet, "limited")
    answers = [
        requests.get(f"{fleet.url}/api/v1/campaigns", headers={"X-API-Key": limited["key"]}, timeout=30)
        for _ in range(RATE_LIMIT + 2)
    ]
    assert [a.status_code for a in answers] == [200] * RATE_LIMIT + [429] * 2
    assert set(proxy.nodes_serving("GET", "/api/v1/campaigns", 200)) == {"web-1", "web-2"}

    # Workers (product queue, and the sandbox's), and one beat.
    stack.worker("worker-1", queues="celery")
    stack.worker("worker-2", queues="celery")
    stack.worker("sandbox-worker", queues="sandbox")
    stack.beat()

    # An API create, and one cancelled while it calls: nothing of it is called after the cancel.
    api_phones = numbers(200, 12)
    api_campaign = api_create(fleet, staff, "API", api_phones)
    cancel_phones = numbers(300, 30)
    cancelled_campaign = api_create(fleet, staff, "Cancelled", cancel_phones)
    wait_until(lambda: sandbox_batches(cancelled_campaign), timeout=60, message="the campaign to cancel is calling")
    answer = requests.post(
        f"{fleet.url}/api/v1/campaigns/{cancelled_campaign}/cancel", headers={"X-API-Key": staff["key"]}, timeout=30
    )
    assert answer.status_code in (200, 202), answer.text
    wait_until(lambda: Campaign.objects.get(pk=cancelled_campaign).status == "cancelled", timeout=60,
               message="ElevenLabs confirms the cancel")  # fmt: skip
    dispatched_at_cancel = set(
        SandboxRecipient.objects.filter(batch__in=sandbox_batches(cancelled_campaign), dispatched=True).values_list(
            "phone_number", flat=True
        )
    )

    # A campaign of four batches, killed under way: the worker submitting it, and a web node.
    survivor_phones = numbers(400, 40)
    survivor_campaign = api_create(fleet, staff, "Survivors", survivor_phones)
    claimed = f'"message": "Claimed campaign {survivor_campaign} for dispatch"'
    submitting = wait_until(
        lambda: next((name for name in ("worker-1", "worker-2") if claimed in stack.log(name)), None),
        timeout=60,
        message="a worker claims the campaign",
    )
    wait_until(lambda: sandbox_batches(survivor_campaign), timeout=60, message="its first batch reaches ElevenLabs")
    killed_at = len(proxy.served)
    stack.kill("web-2")
    stack.kill(submitting)
    # The kill came before every batch was out: what was left is for beat's sweeps to find.
    assert len(sandbox_batches(survivor_campaign)) < 4

    for campaign_id in (staff_campaign, api_campaign, cancelled_campaign, survivor_campaign):
        wait_until(lambda c=campaign_id: finished(c), timeout=120, message=f"campaign {campaign_id} ends")
    wait_for_every_delivery()
    time.sleep(3)  # a late duplicate (a second submit, a second delivery) would land here

    for campaign_id, phones in ((staff_campaign, staff_phones), (api_campaign, api_phones),
                                (survivor_campaign, survivor_phones)):  # fmt: skip
        assert Campaign.objects.get(pk=campaign_id).status == "completed"
        assert_called_exactly_once(campaign_id, phones)
        assert_records_match_elevenlabs(campaign_id)
    # The cancelled campaign: batches sent before the cancel, each once, all cancelled there,
    # and nobody dialled who had not been when the cancel was confirmed.
    cancelled_calls = called(cancelled_campaign)
    assert len(cancelled_calls) == len(set(cancelled_calls))
    assert {batch.status for batch in sandbox_batches(cancelled_campaign)} == {"cancelled"}
    dispatched_now = set(
        SandboxRecipient.objects.filter(batch__in=sandbox_batches(cancelled_campaign), dispatched=True).values_list(
            "phone_number", flat=True
        )
    )
    assert dispatched_now == dispatched_at_cancel
    never_called = set(cancel_phones) - dispatched_now
    assert never_called
    assert set(
        Recipient.objects.filter(campaign_id=cancelled_campaign, phone_number__in=never_called).values_list(
            "status", flat=True
        )
    ) == {"cancelled"}
    assert_records_match_elevenlabs(cancelled_campaign)

    # ElevenLabs' (the sandbox's) webhooks came through the balancer too.
    assert proxy.nodes_serving("POST", "/webhooks/elevenlabs", 200)
    # After the kill, the surviving node served everything.
    assert {s.node for s in proxy.served[killed_at:] if s.status != 502} == {"web-1"}
    assert_each_event_delivered_once(receiver)


def test_two_beats_by_mistake_submit_each_batch_once_call_each_person_once_and_send_each_event_once(
    fleet, receiver, stack
):
    who = account(fleet, "twobeats")
    register_endpoint(fleet, who, receiver)
    stack.worker("worker-1", queues="celery")
    stack.worker("worker-2", queues="celery")
    stack.worker("sandbox-worker", queues="sandbox")
    # Two beats on one broker and database, each with its own schedule file.
    stack.beat("beat-1")
    stack.beat("beat-2")
    wait_until(lambda: "Sending due task" in stack.log("beat-2"), timeout=30, message="the second beat runs")
    campaigns = {api_create(fleet, who, f"Twice {n}", numbers(500 + 100 * n, 25)): numbers(500 + 100 * n, 25)
                 for n in range(2)}  # fmt: skip

    for campaign_id in campaigns:
        wait_until(lambda c=campaign_id: finished(c), timeout=120, message=f"campaign {campaign_id} completes")
    wait_for_every_delivery()
    time.sleep(3)  # a second send would land here

    assert "Sending due task" in stack.log("beat-1")
    for campaign_id, phones in campaigns.items():
        assert Campaign.objects.get(pk=campaign_id).status == "completed"
        assert_called_exactly_once(campaign_id, phones)
        assert_records_match_elevenlabs(campaign_id)
    assert_each_event_delivered_once(receiver)
    # Each campaign told its changes once: pending -> in_progress -> completed, no repeat.
    for campaign_id in campaigns:
        statuses = [
            item.data["status"]
            for item in receiver.received
            if item.type == "campaign.status_changed" and item.data["id"] == campaign_id
        ]
        assert len(statuses) == len(set(statuses)), statuses
