"""Submitting campaigns to ElevenLabs exactly once: campaigns/dispatch.py against a played ElevenLabs."""

import datetime as dt
import json
import queue

import pytest
import requests
import responses
from django.utils import timezone

from campaigns import dispatch, tracking
from campaigns.elevenlabs import ElevenLabsClient
from campaigns.models import Campaign, CampaignBatch, Recipient

from .conftest import BASE
from .factories import CampaignFactory, RecipientFactory, SuppressionFactory

pytestmark = pytest.mark.django_db

BATCHES = f"{BASE}/v1/convai/batch-calling"
SUBMIT = f"{BATCHES}/submit"
WORKSPACE = f"{BATCHES}/workspace"


def remote_batch(batch_id="btcal_1", *, name="Campaign", status="pending", **changes):
    """A batch as ElevenLabs describes it (BatchCallResponse)."""
    payload = {
        "id": batch_id,
        "name": name,
        "agent_id": "agent_abc123",
        "created_at_unix": 1785000000,
        "scheduled_time_unix": 1785000000,
        "total_calls_dispatched": 0,
        "total_calls_scheduled": 1,
        "total_calls_finished": 0,
        "last_updated_at_unix": 1785000000,
        "status": status,
        "retry_count": 0,
        "telephony_call_config": {"ringing_timeout_secs": 60},
        "agent_name": "Reminder agent",
        "phone_number_id": "phnum_main",
        "phone_provider": "twilio",
    }
    payload.update(changes)
    return payload


def workspace_page(*batches):
    return {"batch_calls": list(batches), "next_doc": None, "has_more": False}


@pytest.fixture(autouse=True)
def elevenlabs_settings(settings):
    settings.ELEVENLABS_BASE_URL = BASE
    settings.ELEVENLABS_API_KEY = "k"
    settings.DISPATCH_MAX_ATTEMPTS = 5
    settings.DISPATCH_STALE_AFTER_SECONDS = 120
    settings.DISPATCH_LOST_AFTER_SECONDS = 30
    settings.ELEVENLABS_BATCH_MAX_RECIPIENTS = 10_000
    return settings


@pytest.fixture
def client():
    return ElevenLabsClient(base_url=BASE, api_key="k", sleep=lambda seconds: None)


@pytest.fixture
def campaign(user, agent, phone_number):
    """An immediate campaign of two recipients, due now."""
    campaign = CampaignFactory(user=user, agent=agent, phone_number=phone_number, name="Spring reminders")
    RecipientFactory(campaign=campaign, phone_number="+12125550100")
    RecipientFactory(campaign=campaign, phone_number="+14155550123")
    return campaign


def submitted_bodies(http):
    return [json.loads(call.request.body) for call in http.calls if call.request.url == SUBMIT]


def requests_made(http):
    return [(call.request.method, call.request.url.split("?")[0]) for call in http.calls]


def the_batch(campaign):
    return CampaignBatch.objects.get(campaign=campaign)


def let_the_retry_wait_pass(campaign):
    """Move the batch's next attempt into the past, as the clock would."""
    CampaignBatch.objects.filter(campaign=campaign).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))


# --- The submit payload -----------------------------------------------------------------


def test_the_submit_payload_names_the_batch_agent_number_and_every_recipient(http, client, user, agent, phone_number):
    # Given recipients with variables, with overrides, and with neither
    campaign = CampaignFactory(user=user, agent=agent, phone_number=phone_number, name="Spring reminders")
    ana = RecipientFactory(
        campaign=campaign,
        phone_number="+12125550100",
        variables={"first_name": "Ana", "balance": "12.50"},
        overrides={
            "language": "es",
            "first_message": "Hola Ana",
            "system_prompt": "Speak Spanish.",
            "voice_id": "voice_42",
        },
    )
    ben = RecipientFactory(campaign=campaign, phone_number="+442079460958", variables={"first_name": "Ben"})
    cleo = RecipientFactory(campaign=campaign, phone_number="+14155550123")
    dan = RecipientFactory(campaign=campaign, phone_number="+12125550199", overrides={"voice_id": "voice_7"})
    http.post(SUBMIT, json=remote_batch())

    # When the campaign is dispatched
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    # Then one batch carries the campaign's name and its token, the agent, the number and the rows
    [body] = submitted_bodies(http)
    assert http.calls[0].request.headers["xi-api-key"] == "k"
    token = the_batch(campaign).token
    assert body["call_name"] == f"Spring reminders [{token}]"
    assert body["agent_id"] == "agent_abc123"
    assert body["agent_phone_number_id"] == phone_number.elevenlabs_phone_number_id
    assert "scheduled_time_unix" not in body
    assert "timezone" not in body
    assert body["recipients"] == [
        {
            "id": str(ana.pk),
            "phone_number": "+12125550100",
            "conversation_initiation_client_data": {
                "dynamic_variables": {"first_name": "Ana", "balance": "12.50"},
                "conversation_config_override": {
                    "agent": {"language": "es", "first_message": "Hola Ana", "prompt": {"prompt": "Speak Spanish."}},
                    "tts": {"voice_id": "voice_42"},
                },
            },
        },
        {
            "id": str(ben.pk),
            "phone_number": "+442079460958",
            "conversation_initiation_client_data": {"dynamic_variables": {"first_name": "Ben"}},
        },
        {"id": str(cleo.pk), "phone_number": "+14155550123"},
        {
            "id": str(dan.pk),
            "phone_number": "+12125550199",
            "conversation_initiation_client_data": {"conversation_config_override": {"tts": {"voice_id": "voice_7"}}},
        },
    ]


def test_a_scheduled_campaign_is_submitted_when_due_without_a_time_in_the_past(http, client, user, agent, phone_number):
    # Given a campaign scheduled in Berlin time whose moment has just come
    scheduled_at = (timezone.now() - dt.timedelta(seconds=5)).replace(microsecond=0)
    campaign = CampaignFactory(
        user=user,
        agent=agent,
        phone_number=phone_number,
        status=Campaign.Status.SCHEDULED,
        send_immediately=False,
        scheduled_at=scheduled_at,
        timezone="Europe/Berlin",
    )
    RecipientFactory(campaign=campaign, phone_number="+12125550100")
    http.post(SUBMIT, json=remote_batch())

    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    # ElevenLabs starts it now: it is not told an instant that has already passed
    [body] = submitted_bodies(http)
    assert "scheduled_time_unix" not in body
    assert "timezone" not in body
    campaign.refresh_from_db()
    assert campaign.elevenlabs_batch_call_id == "btcal_1"


# --- Success ----------------------------------------------------------------------------


def test_a_submitted_campaign_stores_elevenlabs_batch_id_and_shows_it_in_the_api(http, client, api, campaign):
    http.post(SUBMIT, json=remote_batch("btcal_abc"))

    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    campaign.refresh_from_db()
    assert campaign.elevenlabs_batch_call_id == "btcal_abc"
    batch = the_batch(campaign)
    assert batch.elevenlabs_batch_call_id == "btcal_abc"
    assert batch.submitted_at is not None
    assert batch.submit_started_at is None
    data = api.get(f"/api/v1/campaigns/{campaign.pk}").json()["data"]
    assert data["elevenlabs_batch_call_id"] == "btcal_abc"
    assert data["status"] == "pending"
    assert data["error"] is None


@pytest.mark.parametrize("remote_status", ["pending", "in_progress"])
def test_the_campaign_status_follows_the_status_elevenlabs_gives_the_batch(http, client, campaign, remote_status):
    http.post(SUBMIT, json=remote_batch(status=remote_status))

    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    campaign.refresh_from_db()
    assert campaign.status == remote_status
    assert the_batch(campaign).status == remote_status


# --- Split ------------------------------------------------------------------------------


def test_a_campaign_larger_than_the_batch_limit_goes_out_as_several_batches_in_id_order(
    http, client, settings, user, agent, phone_number
):
    # Given a limit of 2 recipients per batch and a campaign of 5
    settings.ELEVENLABS_BATCH_MAX_RECIPIENTS = 2
    campaign = CampaignFactory(user=user, agent=agent, phone_number=phone_number)
    recipients = [RecipientFactory(campaign=campaign, phone_number=f"+1212555010{n}") for n in range(5)]
    for n in range(1, 4):
        http.post(SUBMIT, json=remote_batch(f"btcal_part{n}"))

    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    # Then three batches of 2, 2 and 1 recipients, in id order, nobody twice
    bodies = submitted_bodies(http)
    sent = [[recipient["id"] for recipient in body["recipients"]] for body in bodies]
    assert sent == [
        [str(recipients[0].pk), str(recipients[1].pk)],
        [str(recipients[2].pk), str(recipients[3].pk)],
        [str(recipients[4].pk)],
    ]
    batches = list(CampaignBatch.objects.filter(campaign=campaign).order_by("part"))
    assert [(batch.part, batch.size) for batch in batches] == [(1, 2), (2, 2), (3, 1)]
    assert [batch.elevenlabs_batch_call_id for batch in batches] == ["btcal_part1", "btcal_part2", "btcal_part3"]
    # each batch is recognisable by its own token
    assert [body["call_name"] for body in bodies] == [f"{campaign.name} [{batch.token}]" for batch in batches]
    campaign.refresh_from_db()
    assert campaign.elevenlabs_batch_call_id == "btcal_part1"


@pytest.mark.parametrize(("cap", "limits"), [(None, [None, None, None]), (5, [2, 2, 1]), (3, [1, 1, 1])])
def test_a_cap_on_calls_at_once_is_shared_between_the_batches(
    http, client, settings, user, agent, phone_number, cap, limits
):
    # Given batches of at most 2 recipients, a campaign of 5 and a cap on calls at once
    settings.ELEVENLABS_BATCH_MAX_RECIPIENTS = 2
    campaign = CampaignFactory(user=user, agent=agent, phone_number=phone_number, max_concurrent_calls=cap)
    for n in range(5):
        RecipientFactory(campaign=campaign, phone_number=f"+1212555010{n}")
    for n in range(1, 4):
        http.post(SUBMIT, json=remote_batch(f"btcal_part{n}"))

    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    # Then the three batches' limits add up to the cap (ElevenLabs runs them side by side)
    assert [body.get("target_concurrency_limit") for body in submitted_bodies(http)] == limits


def test_a_number_put_on_the_do_not_call_list_after_create_is_never_sent(http, client, user, campaign):
    # Given a campaign created before one of its numbers joined the account's list
    SuppressionFactory(user=user, phone_number="+14155550123")
    http.post(SUBMIT, json=remote_batch())

    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    # Then only the other number reaches ElevenLabs, and the listed one is recorded as left out
    assert [r["phone_number"] for body in submitted_bodies(http) for r in body["recipients"]] == ["+12125550100"]
    left_out = Recipient.objects.get(campaign=campaign, phone_number="+14155550123")
    assert (left_out.status, left_out.disposition) == ("cancelled", "suppressed")


def test_a_part_whose_every_number_joined_the_list_is_not_sent_and_the_campaign_ends(http, client, user, campaign):
    SuppressionFactory(user=user, phone_number="+12125550100")
    SuppressionFactory(user=user, phone_number="+14155550123")

    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    assert submitted_bodies(http) == []
    campaign.refresh_from_db()
    assert campaign.status == "completed"
    assert "do-not-call list" in the_batch(campaign).last_error
    assert set(campaign.recipients.values_list("status", flat=True)) == {"cancelled"}


# --- Exactly once -----------------------------------------------------------------------


def test_dispatching_a_campaign_twice_submits_it_once(http, client, campaign):
    http.post(SUBMIT, json=remote_batch())

    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    assert len(submitted_bodies(http)) == 1
    assert CampaignBatch.objects.filter(campaign=campaign).count() == 1


def test_only_the_first_claim_of_a_campaign_wins(campaign):
    assert dispatch.campaign_claim(campaign_id=campaign.pk) is True
    assert dispatch.campaign_claim(campaign_id=campaign.pk) is False

    assert CampaignBatch.objects.filter(campaign=campaign).count() == 1


def test_a_campaign_scheduled_in_the_future_is_neither_claimed_nor_submitted(http, client, user, agent, phone_number):
    campaign = CampaignFactory(
        user=user,
        agent=agent,
        phone_number=phone_number,
        status=Campaign.Status.SCHEDULED,
        send_immediately=False,
        scheduled_at=timezone.now() + dt.timedelta(hours=1),
    )
    RecipientFactory(campaign=campaign)

    assert dispatch.campaign_claim(campaign_id=campaign.pk) is False
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    assert len(http.calls) == 0
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.dispatch_claimed_at is None
    assert not CampaignBatch.objects.filter(campaign=campaign).exists()


def test_a_cancelled_campaign_is_not_submitted(http, client, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CANCELLED)

    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    assert len(http.calls) == 0
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    assert campaign.elevenlabs_batch_call_id is None


def test_a_campaign_cancelled_while_its_submit_is_in_flight_is_cancelled_at_elevenlabs_too(http, client, api, campaign):
    # Given the user cancels the campaign while ElevenLabs is still answering the submit
    cancel_answers = []

    def accept_after_the_user_cancelled(request):
        cancel_answers.append(api.post(f"/api/v1/campaigns/{campaign.pk}/cancel"))
        return 200, {}, json.dumps(remote_batch("btcal_late", status="in_progress"))

    http.add_callback(responses.POST, SUBMIT, callback=accept_after_the_user_cancelled)
    http.post(f"{BATCHES}/btcal_late/cancel", json=remote_batch("btcal_late", status="cancelled"))

    # When the dispatch finishes
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    # Then the cancel was accepted without claiming "no further calls" while the submit was out
    [answer] = cancel_answers
    assert answer.status_code == 202
    assert answer.json()["data"]["status"] == "cancelling"
    # and the batch ElevenLabs accepted meanwhile is cancelled there, which makes the cancel final
    assert ("POST", f"{BATCHES}/btcal_late/cancel") in requests_made(http)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    assert campaign.batches.get().cancel_confirmed_at is not None


# --- ElevenLabs says no ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (401, {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}, "Invalid API key"),
        (
            422,
            {
                "detail": [
                    {
                        "loc": ["body", "recipients", 0, "phone_number"],
                        "msg": "value is not a valid phone number",
                        "type": "value_error",
                    }
                ]
            },
            "value is not a valid phone number",
        ),
    ],
    ids=["401", "422"],
)
def test_a_campaign_elevenlabs_refuses_fails_with_its_reason_and_is_never_sent_again(
    http, client, api, campaign, status, body, message
):
    http.post(SUBMIT, status=status, json=body)

    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    # one request, no reconciliation: a refusal is definitive
    assert requests_made(http) == [("POST", SUBMIT)]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FAILED
    assert message in campaign.error
    data = api.get(f"/api/v1/campaigns/{campaign.pk}").json()["data"]
    assert data["status"] == "failed"
    assert message in data["error"]
    # and no later attempt
    later = timezone.now() + dt.timedelta(hours=1)
    assert campaign.pk not in dispatch.campaigns_due(now=later)
    assert dispatch.batches_stale(now=later) == []
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)
    assert len(http.calls) == 1


# --- Ambiguous failures: the batch may exist anyway --------------------------------------

AMBIGUOUS_FAILURES = {
    "500": {"status": 500, "json": {"detail": {"status": "internal_error", "message": "Something broke"}}},
    "timeout": {"body": requests.exceptions.ReadTimeout("read timed out")},
    "malformed 200": {"status": 200, "body": '{"id": "btcal_', "content_type": "application/json"},
}


@pytest.mark.parametrize("failure", AMBIGUOUS_FAILURES.values(), ids=AMBIGUOUS_FAILURES.keys())
def test_after_an_ambiguous_failure_the_batch_elevenlabs_created_is_adopted(http, client, campaign, failure):
    # Given the submit fails in a way that says nothing about whether ElevenLabs took it
    dispatch.campaign_claim(campaign_id=campaign.pk)
    token = the_batch(campaign).token
    http.add(responses.POST, SUBMIT, **failure)
    # and ElevenLabs' list shows the batch, recognisable by its token
    http.get(
        WORKSPACE,
        json=workspace_page(
            remote_batch("btcal_other", name="Someone else's campaign [vc-1-1-000000000000]"),
            remote_batch("btcal_ours", name=f"{campaign.name} [{token}]", status="in_progress"),
        ),
    )

    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    # Then it is adopted, without a second submit
    assert len(submitted_bodies(http)) == 1
    assert ("GET", WORKSPACE) in requests_made(http)
    campaign.refresh_from_db()
    assert campaign.elevenlabs_batch_call_id == "btcal_ours"
    assert the_batch(campaign).elevenlabs_batch_call_id == "btcal_ours"
    assert campaign.status == Campaign.Status.IN_PROGRESS


@pytest.mark.parametrize("failure", AMBIGUOUS_FAILURES.values(), ids=AMBIGUOUS_FAILURES.keys())
def test_after_an_ambiguous_failure_with_no_batch_at_elevenlabs_the_campaign_waits_for_a_later_attempt(
    http, client, campaign, failure
):
    http.add(responses.POST, SUBMIT, **failure)
    http.get(WORKSPACE, json=workspace_page(remote_batch("btcal_other", name="Another campaign [vc-9-1-abc]")))
    before = timezone.now()

    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    assert requests_made(http) == [("POST", SUBMIT), ("GET", WORKSPACE)]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PENDING
    assert campaign.elevenlabs_batch_call_id is None
    assert campaign.error == ""
    batch = the_batch(campaign)
    assert batch.submit_started_at is None
    assert batch.next_attempt_at > before
    assert batch.last_error
    # not due yet, due once the wait is over
    assert campaign.pk not in dispatch.campaigns_due(now=before)
    assert campaign.pk in dispatch.campaigns_due(now=timezone.now() + dt.timedelta(minutes=10))


def test_the_next_attempt_adopts_a_batch_that_appeared_in_the_list_meanwhile(http, client, campaign):
    # Given a first attempt that failed and found nothing in the list
    http.post(SUBMIT, status=503, body="upstream connect error")
    http.get(WORKSPACE, json=workspace_page())
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)
    token = the_batch(campaign).token
    # and the batch shows up in ElevenLabs' list afterwards
    http.get(WORKSPACE, json=workspace_page(remote_batch("btcal_late", name=f"{campaign.name} [{token}]")))
    let_the_retry_wait_pass(campaign)

    # When the next attempt runs
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    # Then it looks before sending, and adopts instead of submitting again
    assert requests_made(http) == [("POST", SUBMIT), ("GET", WORKSPACE), ("GET", WORKSPACE)]
    campaign.refresh_from_db()
    assert campaign.elevenlabs_batch_call_id == "btcal_late"


def test_the_next_attempt_submits_again_only_after_checking_the_list(http, client, campaign):
    http.post(SUBMIT, status=500, json={"detail": "Internal Server Error"})
    http.post(SUBMIT, json=remote_batch("btcal_second"))
    http.get(WORKSPACE, json=workspace_page())
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)
    let_the_retry_wait_pass(campaign)

    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    assert requests_made(http) == [("POST", SUBMIT), ("GET", WORKSPACE), ("GET", WORKSPACE), ("POST", SUBMIT)]
    campaign.refresh_from_db()
    assert campaign.elevenlabs_batch_call_id == "btcal_second"
    assert the_batch(campaign).submit_attempts == 2


def test_an_attempt_before_the_retry_wait_is_over_sends_nothing(http, client, campaign):
    http.post(SUBMIT, status=500, json={"detail": "Internal Server Error"})
    http.get(WORKSPACE, json=workspace_page())
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    assert requests_made(http) == [("POST", SUBMIT), ("GET", WORKSPACE)]


def test_when_the_check_after_a_failed_submit_fails_too_the_claim_is_kept_for_the_stale_sweep(
    http, client, campaign, settings
):
    http.post(SUBMIT, status=502, body="Bad gateway")
    http.get(WORKSPACE, status=503, body="Service unavailable")

    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    batch = the_batch(campaign)
    assert batch.submit_started_at is not None
    later = timezone.now() + dt.timedelta(seconds=settings.DISPATCH_STALE_AFTER_SECONDS + 1)
    assert dispatch.batches_stale(now=later) == [batch.pk]
    # nobody resubmits blindly in the meantime
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)
    assert len(submitted_bodies(http)) == 1


def test_a_campaign_rate_limited_on_every_attempt_fails_after_the_last_attempt(http, client, settings, campaign):
    settings.DISPATCH_MAX_ATTEMPTS = 3
    http.post(
        SUBMIT,
        status=429,
        json={"detail": {"status": "too_many_concurrent_requests", "message": "Too many concurrent requests"}},
    )
    http.get(WORKSPACE, json=workspace_page())

    for attempt in range(1, 4):
        dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)
        campaign.refresh_from_db()
        expected = Campaign.Status.FAILED if attempt == 3 else Campaign.Status.PENDING
        assert campaign.status == expected, f"after attempt {attempt}"
        let_the_retry_wait_pass(campaign)

    assert len(submitted_bodies(http)) == 3
    assert "Too many concurrent requests" in campaign.error
    assert campaign.pk not in dispatch.campaigns_due(now=timezone.now() + dt.timedelta(hours=1))
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)
    assert len(submitted_bodies(http)) == 3


# --- A worker that stopped mid-submit ---------------------------------------------------


def leave_a_claim_behind(campaign, *, age_seconds):
    """What a worker killed during its submit leaves: a claimed batch, an attempt counted, no id."""
    dispatch.campaign_claim(campaign_id=campaign.pk)
    CampaignBatch.objects.filter(campaign=campaign).update(
        submit_started_at=timezone.now() - dt.timedelta(seconds=age_seconds), submit_attempts=1
    )
    return the_batch(campaign)


def test_a_claim_older_than_the_stale_limit_without_a_batch_id_is_listed_as_stale(campaign, settings):
    batch = leave_a_claim_behind(campaign, age_seconds=settings.DISPATCH_STALE_AFTER_SECONDS + 5)

    assert dispatch.batches_stale() == [batch.pk]


def test_recovering_a_stale_claim_adopts_the_batch_elevenlabs_accepted_without_submitting(
    http, client, campaign, settings
):
    batch = leave_a_claim_behind(campaign, age_seconds=settings.DISPATCH_STALE_AFTER_SECONDS + 5)
    http.get(WORKSPACE, json=workspace_page(remote_batch("btcal_found", name=f"{campaign.name} [{batch.token}]")))

    dispatch.batch_recover(batch_id=batch.pk, client=client)

    assert submitted_bodies(http) == []
    batch.refresh_from_db()
    campaign.refresh_from_db()
    assert batch.elevenlabs_batch_call_id == "btcal_found"
    assert campaign.elevenlabs_batch_call_id == "btcal_found"
    assert dispatch.batches_stale() == []
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)
    assert submitted_bodies(http) == []


def test_recovering_a_stale_claim_with_nothing_at_elevenlabs_frees_it_for_exactly_one_submit(
    http, client, campaign, settings
):
    batch = leave_a_claim_behind(campaign, age_seconds=settings.DISPATCH_STALE_AFTER_SECONDS + 5)
    http.get(WORKSPACE, json=workspace_page())
    http.post(SUBMIT, json=remote_batch("btcal_new"))

    dispatch.batch_recover(batch_id=batch.pk, client=client)

    assert submitted_bodies(http) == []
    batch.refresh_from_db()
    assert batch.submit_started_at is None
    assert batch.elevenlabs_batch_call_id is None
    assert campaign.pk in dispatch.campaigns_due()

    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    assert len(submitted_bodies(http)) == 1
    campaign.refresh_from_db()
    assert campaign.elevenlabs_batch_call_id == "btcal_new"


def test_a_fresh_claim_is_left_alone(http, client, campaign):
    batch = leave_a_claim_behind(campaign, age_seconds=5)
    started = batch.submit_started_at

    assert dispatch.batches_stale() == []
    dispatch.batch_recover(batch_id=batch.pk, client=client)
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    assert len(http.calls) == 0
    batch.refresh_from_db()
    assert batch.submit_started_at == started


# --- The beat sweep's work list ---------------------------------------------------------


def test_campaigns_due_lists_a_scheduled_campaign_whose_time_has_come(user, agent, phone_number):
    campaign = CampaignFactory(
        user=user,
        agent=agent,
        phone_number=phone_number,
        status=Campaign.Status.SCHEDULED,
        send_immediately=False,
        scheduled_at=timezone.now() + dt.timedelta(minutes=5),
    )

    assert campaign.pk not in dispatch.campaigns_due()
    assert campaign.pk in dispatch.campaigns_due(now=timezone.now() + dt.timedelta(minutes=6))


def test_campaigns_due_lists_an_immediate_campaign_whose_message_was_lost(campaign):
    # created just now: its on-commit message is on its way
    assert campaign.pk not in dispatch.campaigns_due()
    # unclaimed for over 30 s: the message never arrived
    assert campaign.pk in dispatch.campaigns_due(now=timezone.now() + dt.timedelta(seconds=31))


def test_campaigns_due_does_not_list_a_claimed_or_ended_campaign(user, agent, phone_number, campaign):
    dispatch.campaign_claim(campaign_id=campaign.pk)
    ended = [
        CampaignFactory(user=user, agent=agent, phone_number=phone_number, status=status)
        for status in (Campaign.Status.COMPLETED, Campaign.Status.FAILED, Campaign.Status.CANCELLED)
    ]
    CampaignBatch.objects.filter(campaign=campaign).update(submit_started_at=timezone.now())

    due = dispatch.campaigns_due(now=timezone.now() + dt.timedelta(minutes=5))

    assert campaign.pk not in due
    assert not {c.pk for c in ended} & set(due)


def test_campaigns_due_lists_a_claimed_campaign_whose_batches_were_never_attempted(campaign):
    # Given a worker that claimed the campaign and stopped before submitting any batch
    assert dispatch.campaign_claim(campaign_id=campaign.pk)
    batch = the_batch(campaign)
    assert (batch.submit_started_at, batch.next_attempt_at, batch.elevenlabs_batch_call_id) == (None, None, None)

    # Then a later sweep picks it up again
    later = timezone.now() + dt.timedelta(minutes=5)
    assert campaign.pk in dispatch.campaigns_due(now=later)


# --- Queued on commit -------------------------------------------------------------------


def test_creating_an_immediate_campaign_queues_its_dispatch_once_committed(
    api, campaign_form, broker_queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/campaigns", campaign_form(), format="multipart")
        assert response.status_code == 201, response.content
        campaign_id = response.json()["data"]["id"]
        # nothing leaves before the commit
        with pytest.raises(queue.Empty):
            broker_queue.get(block=False)

    message = broker_queue.get(timeout=1)
    message.ack()
    assert message.headers["task"] == "campaigns.tasks.campaign_dispatch"
    assert message.headers["argsrepr"] == f"({campaign_id},)"
    args, kwargs, _ = message.decode()
    assert (args, kwargs) == ([campaign_id], {})
    with pytest.raises(queue.Empty):
        broker_queue.get(block=False)


def test_creating_a_scheduled_campaign_queues_nothing(
    api, campaign_form, broker_queue, django_capture_on_commit_callbacks
):
    form = campaign_form(send_immediately="false", schedule_date="2099-02-01", schedule_time="10:00")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/campaigns", form, format="multipart")
    assert response.status_code == 201, response.content

    with pytest.raises(queue.Empty):
        broker_queue.get(timeout=0.2)


# --- Every part goes out, whatever ElevenLabs answers for the ones before ------------------


def split_campaign(user, agent, phone_number, settings, *, parts: int) -> Campaign:
    settings.ELEVENLABS_BATCH_MAX_RECIPIENTS = 20
    campaign = CampaignFactory(user=user, agent=agent, phone_number=phone_number)
    for index in range(parts * 20):
        RecipientFactory(campaign=campaign, phone_number=f"+1212555{index:04d}")
    return campaign


@pytest.mark.parametrize("first_answer", ["pending", "in_progress", "completed"])
def test_every_part_is_submitted_once_whatever_status_elevenlabs_answers(
    http, client, user, agent, phone_number, settings, first_answer
):
    # Given 60 recipients split into 3 batches, and ElevenLabs answering each submit with a
    # status that moves the campaign on (the call list starts at once; a tiny one may be done)
    campaign = split_campaign(user, agent, phone_number, settings, parts=3)
    answers = iter(f"btcal_{part}" for part in range(1, 4))

    def accept(request):
        return 200, {}, json.dumps(remote_batch(next(answers), status=first_answer, total_calls_dispatched=20))

    http.add_callback(responses.POST, SUBMIT, callback=accept)

    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    bodies = submitted_bodies(http)
    assert len(bodies) == 3
    numbers = [recipient["phone_number"] for body in bodies for recipient in body["recipients"]]
    assert len(numbers) == len(set(numbers)) == 60  # each recipient in exactly one batch
    campaign.refresh_from_db()
    assert campaign.batches.filter(elevenlabs_batch_call_id__isnull=True).count() == 0
    # the campaign follows its batches: completed only once every part is out and done
    assert (
        campaign.status == {"pending": "pending", "in_progress": "in_progress", "completed": "completed"}[first_answer]
    )
    assert campaign.calls_dispatched == 60


def test_a_worker_lost_between_parts_leaves_the_rest_to_the_sweep_even_once_calling(
    http, client, user, agent, phone_number, settings
):
    # Given part 1 went out (ElevenLabs answered in_progress) and the worker died before part 2
    campaign = split_campaign(user, agent, phone_number, settings, parts=2)
    http.post(SUBMIT, json=remote_batch("btcal_1", status="in_progress"))
    dispatch.campaign_claim(campaign_id=campaign.pk)
    first, second = campaign.batches.order_by("part")
    dispatch.batch_submit(batch_id=first.pk, client=client)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.IN_PROGRESS

    # When the sweep runs after the lost-message delay
    later = timezone.now() + dt.timedelta(seconds=settings.DISPATCH_LOST_AFTER_SECONDS + 1)
    assert dispatch.campaigns_due(now=later) == [campaign.pk]
    http.replace(responses.POST, SUBMIT, json=remote_batch("btcal_2", status="in_progress"))
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    # Then part 2 is submitted, once, and nothing is due any more
    assert len(submitted_bodies(http)) == 2
    second.refresh_from_db()
    assert second.elevenlabs_batch_call_id == "btcal_2"
    assert dispatch.campaigns_due(now=later) == []


def test_no_part_is_submitted_after_a_cancel_was_accepted(http, client, api, user, agent, phone_number, settings):
    # Given part 1 is out and the user cancels before part 2 is claimed
    campaign = split_campaign(user, agent, phone_number, settings, parts=2)
    http.post(SUBMIT, json=remote_batch("btcal_1", status="in_progress"))
    http.post(f"{BATCHES}/btcal_1/cancel", json=remote_batch("btcal_1", status="cancelled"))
    dispatch.campaign_claim(campaign_id=campaign.pk)
    first, second = campaign.batches.order_by("part")
    dispatch.batch_submit(batch_id=first.pk, client=client)

    assert api.post(f"/api/v1/campaigns/{campaign.pk}/cancel").status_code == 200

    # When every way of sending runs again
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)
    dispatch.batch_submit(batch_id=second.pk, client=client)

    # Then part 2 never reached ElevenLabs, and is recorded as cancelled with its recipients
    assert len(submitted_bodies(http)) == 1
    second.refresh_from_db()
    assert (second.elevenlabs_batch_call_id, second.status) == (None, "cancelled")
    assert dispatch.campaigns_due(now=timezone.now() + dt.timedelta(days=1)) == []
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    assert set(tracking.batch_recipients(batch=second).values_list("status", flat=True)) == {"cancelled"}


def test_a_submit_answered_429_waits_at_least_as_long_as_elevenlabs_asked(http, client, campaign):
    http.post(
        SUBMIT,
        status=429,
        headers={"Retry-After": "120"},
        json={"detail": {"status": "rate_limit_exceeded", "message": "Too many requests"}},
    )
    http.get(WORKSPACE, json=workspace_page())

    before = timezone.now()
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    batch = campaign.batches.get()
    assert batch.elevenlabs_batch_call_id is None
    assert batch.next_attempt_at >= before + dt.timedelta(seconds=120)
    assert "Too many requests" in batch.last_error
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PENDING
