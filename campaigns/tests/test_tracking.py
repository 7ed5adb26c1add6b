"""Keeping campaigns in step with ElevenLabs: polling batches, forward-only statuses, the active list."""

import datetime as dt
import threading
import time

import pytest
import responses
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns import dispatch, inbox, tracking
from campaigns.elevenlabs import ElevenLabsClient
from campaigns.models import Call, Campaign, CampaignBatch, Recipient

from .conftest import BASE
from .factories import AgentFactory, CampaignFactory, PhoneNumberFactory, RecipientFactory

BATCHES = f"{BASE}/v1/convai/batch-calling"


def remote_detail(batch_id, *, status, recipients, dispatched=None, finished=None, retry_count=0):
    """A batch with its recipients as ElevenLabs describes it (BatchCallDetailedResponse)."""
    terminal = ("completed", "failed", "cancelled", "voicemail")
    return {
        "id": batch_id,
        "name": "Campaign [token]",
        "agent_id": "agent_abc123",
        "created_at_unix": 1785000000,
        "scheduled_time_unix": 1785000000,
        "total_calls_dispatched": len(recipients) if dispatched is None else dispatched,
        "total_calls_scheduled": len(recipients),
        "total_calls_finished": (
            sum(1 for r in recipients if r["status"] in terminal) if finished is None else finished
        ),
        "last_updated_at_unix": 1785000100,
        "status": status,
        "retry_count": retry_count,
        "telephony_call_config": {"ringing_timeout_secs": 60},
        "agent_name": "Reminder agent",
        "phone_number_id": "phnum_main",
        "phone_provider": "twilio",
        "recipients": recipients,
    }


def remote_recipient(phone_number, status, conversation_id=None):
    return {
        "id": f"rcpt_{phone_number[1:]}",
        "phone_number": phone_number,
        "status": status,
        "conversation_id": conversation_id,
        "created_at_unix": 1785000000,
        "updated_at_unix": 1785000100,
        "conversation_initiation_client_data": {"dynamic_variables": {}},
    }


def remote_batch(batch_id, *, status="pending"):
    return {
        key: value
        for key, value in remote_detail(batch_id, status=status, recipients=[]).items()
        if key != "recipients"
    }


def campaign_submitted(
    *, numbers=(), batch_ids=("btcal_1",), status=None, batch_status=None, settled=False, campaign=None, **fields
) -> Campaign:
    """A campaign ElevenLabs has accepted, one batch per id, set up through the real dispatch.

    `status` and `batch_status` then put the campaign and its batches where a test needs them;
    `settled` marks the batches as reported finished call by call (no longer followed).
    """
    campaign = campaign or CampaignFactory(**fields)
    for number in numbers:
        RecipientFactory(campaign=campaign, phone_number=number)
    with responses.RequestsMock() as http:
        for batch_id in batch_ids:
            http.post(f"{BATCHES}/submit", json=remote_batch(batch_id))
        dispatch.campaign_dispatch(
            campaign_id=campaign.pk, client=ElevenLabsClient(base_url=BASE, api_key="k", sleep=lambda s: None)
        )
    assert list(campaign.batches.order_by("part").values_list("elevenlabs_batch_call_id", flat=True)) == list(batch_ids)
    if batch_status is not None:
        campaign.batches.update(status=batch_status)
    if settled:
        campaign.batches.update(settled_at=timezone.now())
    if status is not None:
        Campaign.objects.filter(pk=campaign.pk).update(status=status)
    campaign.refresh_from_db()
    return campaign


def statuses(campaign):
    return dict(Recipient.objects.filter(campaign=campaign).values_list("phone_number", "status"))


@pytest.fixture
def client():
    return ElevenLabsClient(base_url=BASE, api_key="k", sleep=lambda seconds: None)


# --- Polling ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_polling_brings_recipients_counters_and_the_campaign_status_in_step(http, client):
    campaign = campaign_submitted(numbers=["+12125550100", "+12125550101", "+12125550102", "+12125550103"])
    assert campaign.status == Campaign.Status.PENDING
    http.get(
        f"{BATCHES}/btcal_1",
        json=remote_detail(
            "btcal_1",
            status="in_progress",
            dispatched=3,
            recipients=[
                remote_recipient("+12125550100", "completed", "conv_100"),
                remote_recipient("+12125550101", "in_progress", "conv_101"),
                remote_recipient("+12125550102", "dispatched"),
                remote_recipient("+12125550103", "pending"),
            ],
        ),
    )

    tracking.campaign_poll(campaign_id=campaign.pk, client=client)

    assert statuses(campaign) == {
        "+12125550100": "completed",
        "+12125550101": "in_progress",
        "+12125550102": "dispatched",
        "+12125550103": "pending",
    }
    conversations = dict(Recipient.objects.filter(campaign=campaign).values_list("phone_number", "conversation_id"))
    assert conversations == {
        "+12125550100": "conv_100",
        "+12125550101": "conv_101",
        "+12125550102": "",
        "+12125550103": "",
    }
    campaign.refresh_from_db()
    assert (campaign.status, campaign.calls_dispatched, campaign.calls_finished) == ("in_progress", 3, 1)
    batch = CampaignBatch.objects.get(campaign=campaign)
    assert batch.status == "in_progress"
    assert batch.polled_at is not None


@pytest.mark.django_db
def test_a_finished_batch_completes_the_campaign(http, client):
    campaign = campaign_submitted(numbers=["+12125550100", "+12125550106", "+12125550108"], batch_status="in_progress")
    http.get(
        f"{BATCHES}/btcal_1",
        json=remote_detail(
            "btcal_1",
            status="completed",
            recipients=[
                remote_recipient("+12125550100", "completed", "conv_100"),
                remote_recipient("+12125550106", "failed"),
                remote_recipient("+12125550108", "voicemail", "conv_108"),
            ],
        ),
    )

    tracking.campaign_poll(campaign_id=campaign.pk, client=client)

    campaign.refresh_from_db()
    assert (campaign.status, campaign.calls_dispatched, campaign.calls_finished) == ("completed", 3, 3)
    assert statuses(campaign) == {"+12125550100": "completed", "+12125550106": "failed", "+12125550108": "voicemail"}


@pytest.mark.django_db
def test_an_unknown_recipient_status_is_ignored_without_error(http, client):
    campaign = campaign_submitted(numbers=["+12125550100", "+12125550101"])
    http.get(
        f"{BATCHES}/btcal_1",
        json=remote_detail(
            "btcal_1",
            status="in_progress",
            recipients=[
                remote_recipient("+12125550100", "ringing_on_mars", "conv_100"),
                remote_recipient("+12125550101", "completed", "conv_101"),
            ],
        ),
    )

    tracking.campaign_poll(campaign_id=campaign.pk, client=client)

    assert statuses(campaign) == {"+12125550100": "pending", "+12125550101": "completed"}


@pytest.mark.django_db
def test_a_batch_reported_finished_call_by_call_is_not_fetched_again(http, client):
    campaign = campaign_submitted(
        numbers=["+12125550100"], status=Campaign.Status.COMPLETED, batch_status="completed", settled=True
    )

    tracking.campaign_poll(campaign_id=campaign.pk, client=client)

    assert len(http.calls) == 0


@pytest.mark.django_db
def test_an_ended_batch_is_followed_until_every_call_in_it_has_ended(http, client):
    # ElevenLabs reports the batch cancelled while one call is still under way
    campaign = campaign_submitted(numbers=["+12125550100", "+12125550101"], batch_status="in_progress")
    still_talking = [
        remote_recipient("+12125550100", "in_progress", "conv_100"),
        remote_recipient("+12125550101", "cancelled"),
    ]
    report = remote_detail("btcal_1", status="cancelled", recipients=still_talking)
    report["last_updated_at_unix"] = int(timezone.now().timestamp())
    http.get(f"{BATCHES}/btcal_1", json=report)

    tracking.campaign_poll(campaign_id=campaign.pk, client=client)

    assert campaign.pk in tracking.campaigns_active()
    # the call ends: ElevenLabs' next report settles the batch
    ended = [remote_recipient("+12125550100", "completed", "conv_100"), remote_recipient("+12125550101", "cancelled")]
    http.replace("GET", f"{BATCHES}/btcal_1", json=remote_detail("btcal_1", status="cancelled", recipients=ended))

    tracking.campaign_poll(campaign_id=campaign.pk, client=client)

    assert statuses(campaign) == {"+12125550100": "completed", "+12125550101": "cancelled"}
    assert campaign.pk not in tracking.campaigns_active()
    assert campaign.batches.get().settled_at is not None


# --- Forward only -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_completed_recipient_is_not_moved_back_by_a_late_report(http, client):
    campaign = campaign_submitted(numbers=["+12125550100"], batch_status="in_progress")
    Recipient.objects.filter(campaign=campaign).update(status=Recipient.Status.COMPLETED, conversation_id="conv_100")
    http.get(
        f"{BATCHES}/btcal_1",
        json=remote_detail(
            "btcal_1", status="in_progress", recipients=[remote_recipient("+12125550100", "in_progress", "conv_100")]
        ),
    )

    tracking.campaign_poll(campaign_id=campaign.pk, client=client)

    recipient = Recipient.objects.get(campaign=campaign)
    assert (recipient.status, recipient.conversation_id) == ("completed", "conv_100")


@pytest.mark.django_db
def test_a_completed_campaign_is_not_moved_back_to_in_progress():
    # Given a campaign that has completed, and a batch whose last known status is behind it
    campaign = campaign_submitted(
        numbers=["+12125550100"], status=Campaign.Status.COMPLETED, batch_status="in_progress"
    )

    tracking.campaign_refresh(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED


@pytest.mark.django_db
def test_a_cancelled_campaign_stays_cancelled_when_its_batch_reports_progress(http, client):
    campaign = campaign_submitted(numbers=["+12125550100"], status=Campaign.Status.CANCELLED, batch_status="pending")
    http.get(
        f"{BATCHES}/btcal_1",
        json=remote_detail("btcal_1", status="in_progress", recipients=[remote_recipient("+12125550100", "initiated")]),
    )

    tracking.campaign_poll(campaign_id=campaign.pk, client=client)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED


# --- In bulk ----------------------------------------------------------------------------


def poll_queries(http, client, size, batch_id):
    numbers = [f"+1212555{n:04d}" for n in range(size)]
    campaign = CampaignFactory()
    Recipient.objects.bulk_create(
        RecipientFactory.build(campaign=campaign, phone_number=number, line=line)
        for line, number in enumerate(numbers, start=2)
    )
    campaign_submitted(campaign=campaign, batch_ids=[batch_id], batch_status="in_progress")
    http.get(
        f"{BATCHES}/{batch_id}",
        json=remote_detail(
            batch_id,
            status="completed",
            recipients=[remote_recipient(number, "completed", f"conv_{number[1:]}") for number in numbers],
        ),
    )
    with CaptureQueriesContext(connection) as queries:
        tracking.campaign_poll(campaign_id=campaign.pk, client=client)
    assert set(statuses(campaign).values()) == {"completed"}
    assert Recipient.objects.filter(campaign=campaign, conversation_id="").count() == 0
    return len(queries)


@pytest.mark.django_db
def test_polling_2000_recipients_runs_as_many_queries_as_polling_20(http, client):
    small = poll_queries(http, client, 20, "btcal_small")
    large = poll_queries(http, client, 2_000, "btcal_large")

    assert large == small


# --- The active list --------------------------------------------------------------------


@pytest.mark.django_db
def test_campaigns_active_lists_campaigns_with_a_submitted_batch_not_yet_settled(settings):
    running = campaign_submitted(numbers=["+12125550100"], batch_ids=["btcal_running"], batch_status="in_progress")
    waiting_at_elevenlabs = campaign_submitted(numbers=["+12125550100"], batch_ids=["btcal_waiting"])
    finished = campaign_submitted(
        numbers=["+12125550100"],
        batch_ids=["btcal_done"],
        batch_status="completed",
        status=Campaign.Status.COMPLETED,
        settled=True,
    )
    # cancelled here, but ElevenLabs has not yet reported how its last calls ended
    cancelled = campaign_submitted(
        numbers=["+12125550100"],
        batch_ids=["btcal_cancel"],
        batch_status="cancelled",
        status=Campaign.Status.CANCELLED,
    )
    not_submitted = CampaignFactory()
    RecipientFactory(campaign=not_submitted)
    dispatch.campaign_claim(campaign_id=not_submitted.pk)
    # a campaign sent as three batches: the first has finished, two are still running
    settings.ELEVENLABS_BATCH_MAX_RECIPIENTS = 1
    split = campaign_submitted(
        numbers=["+12125550100", "+12125550101", "+12125550102"],
        batch_ids=["btcal_split1", "btcal_split2", "btcal_split3"],
    )
    split.batches.filter(part=1).update(status="completed")

    active = tracking.campaigns_active()

    assert sorted(active) == sorted([running.pk, waiting_at_elevenlabs.pk, cancelled.pk, split.pk])
    assert finished.pk not in active
    assert not_submitted.pk not in active


# --- End to end against the sandbox -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_campaign_dispatched_to_the_sandbox_ends_with_each_call_outcome(sandbox_live, settings, user):
    # Given the sandbox plays calls quickly and a campaign to numbers ending 0, 6 and 8
    settings.SANDBOX_CALL_SPACING_SECONDS = 0
    settings.SANDBOX_STEP_SECONDS = 0.05
    agent = AgentFactory(user=user, elevenlabs_agent_id="agent_demo_reminders")
    phone_number = PhoneNumberFactory(user=user, elevenlabs_phone_number_id="phnum_demo_main")
    campaign = CampaignFactory(user=user, agent=agent, phone_number=phone_number, name="Sandbox run")
    for number in ("+12125550100", "+12125550106", "+12125550108"):
        RecipientFactory(campaign=campaign, phone_number=number)

    # When it is dispatched over HTTP and polled once the calls have played out
    sandbox = ElevenLabsClient(base_url=settings.ELEVENLABS_BASE_URL, api_key=settings.ELEVENLABS_API_KEY)
    try:
        dispatch.campaign_dispatch(campaign_id=campaign.pk, client=sandbox)
        campaign.refresh_from_db()
        assert campaign.elevenlabs_batch_call_id
        time.sleep(0.5)
        tracking.campaign_poll(campaign_id=campaign.pk, client=sandbox)
    finally:
        # no idle keep-alive connection left for the live server's thread to wait on
        sandbox.session.close()

    # Then each recipient has the outcome its number stands for, and the campaign is completed
    assert statuses(campaign) == {"+12125550100": "completed", "+12125550106": "failed", "+12125550108": "voicemail"}
    answered = Recipient.objects.get(campaign=campaign, phone_number="+12125550100")
    assert answered.conversation_id
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert (campaign.calls_dispatched, campaign.calls_finished) == (3, 3)
    assert tracking.campaigns_active() == []


@pytest.mark.django_db
def test_a_poll_reads_the_least_recently_polled_batches_first(http, client, settings):
    # A poll cut short by its time limit must not leave the same last batches unread every time.
    settings.ELEVENLABS_BATCH_MAX_RECIPIENTS = 1
    numbers = ["+12125550100", "+12125550101", "+12125550102"]
    ids = ["btcal_a", "btcal_b", "btcal_c"]
    campaign = campaign_submitted(numbers=numbers, batch_ids=ids, batch_status="in_progress")
    now = timezone.now()
    campaign.batches.filter(part=1).update(polled_at=now)
    campaign.batches.filter(part=2).update(polled_at=now - dt.timedelta(minutes=5))
    for batch_id, number in zip(ids, numbers, strict=True):
        http.get(
            f"{BATCHES}/{batch_id}",
            json=remote_detail(batch_id, status="in_progress", recipients=[remote_recipient(number, "in_progress")]),
        )

    tracking.campaign_poll(campaign_id=campaign.pk, client=client)

    # never polled, then polled 5 minutes ago, then just now
    assert [call.request.url.rsplit("/", 1)[1] for call in http.calls] == ["btcal_c", "btcal_b", "btcal_a"]


# --- Upstream trouble never stops the others ------------------------------------------------


@pytest.mark.django_db
def test_a_batch_answering_404_on_every_poll_is_marked_and_does_not_stop_the_others(http, client, settings):
    settings.ELEVENLABS_BATCH_MAX_RECIPIENTS = 1
    settings.BATCH_LOST_AFTER_POLLS = 3
    campaign = campaign_submitted(numbers=["+12125550100", "+12125550101"], batch_ids=["btcal_gone", "btcal_ok"])
    http.get(f"{BATCHES}/btcal_gone", status=404, json={"detail": {"status": "not_found", "message": "Not found"}})
    http.get(
        f"{BATCHES}/btcal_ok",
        json=remote_detail(
            "btcal_ok", status="in_progress", recipients=[remote_recipient("+12125550101", "in_progress")]
        ),
    )

    for _ in range(3):
        tracking.campaign_poll(campaign_id=campaign.pk, client=client)

    gone, ok = campaign.batches.order_by("part")
    assert (gone.poll_failures, gone.settled_at is not None) == (3, True)
    assert "404 for this batch on 3 polls in a row" in gone.last_error
    assert (ok.status, ok.poll_failures, ok.settled_at) == ("in_progress", 0, None)
    assert statuses(campaign)["+12125550101"] == "in_progress"
    assert campaign.pk in tracking.campaigns_active()  # the healthy batch is still followed


@pytest.mark.django_db
def test_an_unknown_and_long_status_from_elevenlabs_never_breaks_a_poll(http, client):
    campaign = campaign_submitted(numbers=["+12125550100"])
    strange = "waiting_for_carrier_capacity_in_region_" + "x" * 40
    http.get(
        f"{BATCHES}/btcal_1",
        json=remote_detail("btcal_1", status=strange, recipients=[remote_recipient("+12125550100", strange)]),
    )

    tracking.campaign_poll(campaign_id=campaign.pk, client=client)

    batch = campaign.batches.get()
    assert batch.status == strange[:32]
    assert statuses(campaign) == {"+12125550100": "pending"}
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PENDING


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: SQLite locks the whole database")
def test_a_webhook_holding_its_recipient_does_not_block_a_poll_recording_that_recipients_call():
    """A post-call webhook locks its recipient while it records the call; a poll that learned
    the same conversation inserts its Call meanwhile. The poll must not wait for the webhook's
    lock: the webhook in turn waits for the poll's insert of that conversation (a deadlock)."""
    campaign = CampaignFactory(status=Campaign.Status.IN_PROGRESS)
    recipient = RecipientFactory(campaign=campaign, status="in_progress", conversation_id="conv_both")
    locked, release, failures = threading.Event(), threading.Event(), []

    def webhook():
        try:
            with transaction.atomic():
                inbox._recipient_locked(recipient.pk)
                locked.set()
                release.wait(10)
        except Exception as exc:
            failures.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=webhook)
    thread.start()
    try:
        assert locked.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '3s'")
        tracking._calls_record(campaign_id=campaign.pk, conversation_ids=["conv_both"])
        assert Call.objects.filter(conversation_id="conv_both", recipient=recipient).exists()
    finally:
        release.set()
        thread.join()
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
    assert failures == []


# --- One poll of a campaign at a time, within a budget -------------------------------------


@pytest.mark.django_db
def test_a_poll_finding_the_campaign_polled_by_another_worker_does_nothing(http, client):
    campaign = campaign_submitted(numbers=["+12125550100"], batch_status="in_progress")
    held = timezone.now() + dt.timedelta(minutes=2)
    Campaign.objects.filter(pk=campaign.pk).update(poll_lease_until=held)

    tracking.campaign_poll(campaign_id=campaign.pk, client=client)

    assert len(http.calls) == 0  # ElevenLabs is not asked twice at once about the same batches
    campaign.refresh_from_db()
    assert campaign.poll_lease_until == held  # and the other worker's lease is left alone


@pytest.mark.django_db
def test_a_lease_left_by_a_poll_that_died_is_taken_once_it_runs_out_and_a_poll_gives_it_back(http, client):
    campaign = campaign_submitted(numbers=["+12125550100"], batch_ids=("btcal_1",), batch_status="in_progress")
    Campaign.objects.filter(pk=campaign.pk).update(poll_lease_until=timezone.now() - dt.timedelta(seconds=1))
    http.get(
        f"{BATCHES}/btcal_1",
        json=remote_detail("btcal_1", status="in_progress", recipients=[remote_recipient("+12125550100", "completed")]),
    )

    tracking.campaign_poll(campaign_id=campaign.pk, client=client)

    assert len(http.calls) == 1
    campaign.refresh_from_db()
    assert campaign.poll_lease_until is None
    assert campaign.recipients.get().status == "completed"


@pytest.mark.django_db
def test_a_poll_that_fails_gives_the_lease_back(http, client, monkeypatch):
    campaign = campaign_submitted(numbers=["+12125550100"], batch_status="in_progress")
    http.get(f"{BATCHES}/btcal_1", json=remote_detail("btcal_1", status="in_progress", recipients=[]))

    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(tracking, "campaign_refresh", broken)
    with pytest.raises(RuntimeError):
        tracking.campaign_poll(campaign_id=campaign.pk, client=client)

    campaign.refresh_from_db()
    assert campaign.poll_lease_until is None  # the next poll need not wait for the lease to run out


@pytest.mark.django_db
def test_a_poll_whose_budget_is_spent_leaves_the_other_batches_to_the_next_poll(http, client, settings):
    settings.ELEVENLABS_BATCH_MAX_RECIPIENTS = 1
    settings.POLL_BUDGET_SECONDS = 0  # spent as soon as the first batch is read
    numbers = ["+12125550100", "+12125550101", "+12125550102"]
    ids = ["btcal_a", "btcal_b", "btcal_c"]
    campaign = campaign_submitted(numbers=numbers, batch_ids=ids, batch_status="in_progress")
    for batch_id, number in zip(ids, numbers, strict=True):
        http.get(
            f"{BATCHES}/{batch_id}",
            json=remote_detail(batch_id, status="in_progress", recipients=[remote_recipient(number, "completed")]),
        )

    read = []
    for _ in ids:
        tracking.campaign_poll(campaign_id=campaign.pk, client=client)
        read.append([call.request.url.rsplit("/", 1)[1] for call in http.calls][len(read) :])

    assert read == [["btcal_a"], ["btcal_b"], ["btcal_c"]]  # one batch each, every batch in turn
    assert sorted(campaign.recipients.values_list("status", flat=True)) == ["completed"] * 3
