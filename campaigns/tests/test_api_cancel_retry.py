"""POST /api/v1/campaigns/{id}/cancel and /retry, GET /api/v1/campaigns/{id}/recipients."""

import datetime as dt

import pytest
from django.utils import timezone

from campaigns import control, dispatch
from campaigns.elevenlabs import ElevenLabsClient
from campaigns.models import Campaign, Recipient

from .factories import CampaignFactory, RecipientFactory
from .test_api_create_campaign import assert_error
from .test_tracking import BASE, BATCHES, campaign_submitted, remote_batch

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def elevenlabs_settings(settings):
    # The views build their client from settings: point it at the played ElevenLabs.
    settings.ELEVENLABS_BASE_URL = BASE
    settings.ELEVENLABS_API_KEY = "k"
    settings.ELEVENLABS_BATCH_MAX_RECIPIENTS = 10_000
    return settings


@pytest.fixture
def client():
    return ElevenLabsClient(base_url=BASE, api_key="k", sleep=lambda seconds: None)


def cancel(api, campaign):
    return api.post(f"/api/v1/campaigns/{campaign.pk}/cancel")


def retry(api, campaign):
    return api.post(f"/api/v1/campaigns/{campaign.pk}/retry")


def statuses(campaign):
    return dict(Recipient.objects.filter(campaign=campaign).values_list("phone_number", "status"))


def set_statuses(campaign, **by_last_digits):
    """Put recipients where a test needs them: set_statuses(campaign, **{"0100": "completed"})."""
    for digits, status in by_last_digits.items():
        Recipient.objects.filter(campaign=campaign, phone_number__endswith=digits).update(status=status)


def requests_made(http):
    return [(call.request.method, call.request.url) for call in http.calls]


# --- Cancel -----------------------------------------------------------------------------


def scheduled_campaign(user):
    return CampaignFactory(
        user=user,
        status=Campaign.Status.SCHEDULED,
        send_immediately=False,
        scheduled_at=timezone.now() + dt.timedelta(hours=2),
    )


def pending_campaign(user):
    return CampaignFactory(user=user, status=Campaign.Status.PENDING)


@pytest.mark.parametrize("make", [scheduled_campaign, pending_campaign], ids=["scheduled", "pending-unclaimed"])
def test_cancelling_a_campaign_not_yet_sent_cancels_it_and_nothing_is_ever_sent(api, user, http, client, make):
    campaign = make(user)
    for number in ("+12125550100", "+12125550101"):
        RecipientFactory(campaign=campaign, phone_number=number)

    response = cancel(api, campaign)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == {"code": 200, "message": "Campaign cancelled"}
    assert body["data"]["id"] == campaign.pk
    assert body["data"]["status"] == "cancelled"
    assert statuses(campaign) == {"+12125550100": "cancelled", "+12125550101": "cancelled"}
    listed = api.get(f"/api/v1/campaigns/{campaign.pk}/recipients").json()["data"]
    assert {recipient["status"] for recipient in listed} == {"cancelled"}

    # a dispatch arriving later, even after the scheduled time, sends nothing
    assert campaign.pk not in dispatch.campaigns_due(now=timezone.now() + dt.timedelta(days=1))
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)
    assert len(http.calls) == 0
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    assert campaign.elevenlabs_batch_call_id is None


def test_cancelling_a_sent_campaign_cancels_its_batch_at_elevenlabs_and_its_calls_not_yet_placed(api, user, http):
    campaign = campaign_submitted(
        user=user,
        numbers=["+12125550100", "+12125550101", "+12125550102"],
        status=Campaign.Status.IN_PROGRESS,
        batch_status="in_progress",
    )
    set_statuses(campaign, **{"0100": "completed", "0101": "in_progress"})
    http.post(f"{BATCHES}/btcal_1/cancel", json=remote_batch("btcal_1", status="cancelled"))

    response = cancel(api, campaign)

    assert response.status_code == 200, response.content
    assert response.json()["status"]["message"] == "Campaign cancelled"
    assert response.json()["data"]["status"] == "cancelled"
    assert response.json()["data"]["error"] is None
    assert requests_made(http) == [("POST", f"{BATCHES}/btcal_1/cancel")]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    # The call under way is left to ElevenLabs' report of how it ended; nobody not yet called will be.
    assert statuses(campaign) == {
        "+12125550100": "completed",
        "+12125550101": "in_progress",
        "+12125550102": "cancelled",
    }
    batch = campaign.batches.get()
    assert (batch.status, batch.cancel_confirmed_at is not None, batch.settled_at) == ("cancelled", True, None)


def test_when_elevenlabs_cannot_cancel_the_cancel_stands_and_the_campaign_says_so(api, user, http):
    campaign = campaign_submitted(
        user=user,
        numbers=["+12125550100", "+12125550101"],
        status=Campaign.Status.IN_PROGRESS,
        batch_status="in_progress",
    )
    set_statuses(campaign, **{"0100": "in_progress"})
    http.post(
        f"{BATCHES}/btcal_1/cancel", status=500, json={"detail": {"status": "internal_error", "message": "Try later"}}
    )

    response = cancel(api, campaign)

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"]["message"] == "Cancel accepted; waiting for ElevenLabs to confirm it"
    assert body["data"]["status"] == "cancelling"
    assert "has not confirmed it yet for 1 of 1 batch" in body["data"]["error"]
    assert "Try later" in body["data"]["error"]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLING
    # Nothing is recorded as cancelled that ElevenLabs did not confirm.
    assert statuses(campaign) == {"+12125550100": "in_progress", "+12125550101": "pending"}
    assert list(campaign.batches.values_list("status", "cancel_confirmed_at")) == [("in_progress", None)]


def test_the_worker_keeps_cancelling_until_elevenlabs_confirms(api, user, http):
    campaign = campaign_submitted(
        user=user, numbers=["+12125550100"], status=Campaign.Status.IN_PROGRESS, batch_status="in_progress"
    )
    http.post(f"{BATCHES}/btcal_1/cancel", status=503, body="Service Unavailable")
    assert cancel(api, campaign).status_code == 202
    assert campaign.pk in control.campaigns_cancelling()

    # too early: backing off, ElevenLabs is not asked again
    control.campaign_cancel_push(campaign_id=campaign.pk)
    assert len(http.calls) == 1

    http.replace("POST", f"{BATCHES}/btcal_1/cancel", json=remote_batch("btcal_1", status="cancelled"))
    control.campaign_cancel_push(campaign_id=campaign.pk, now=timezone.now() + dt.timedelta(minutes=6))

    assert len(http.calls) == 2
    campaign.refresh_from_db()
    assert (campaign.status, campaign.error) == (Campaign.Status.CANCELLED, "")
    assert campaign.pk not in control.campaigns_cancelling()
    assert statuses(campaign) == {"+12125550100": "cancelled"}
    assert api.get(f"/api/v1/campaigns/{campaign.pk}").json()["data"]["status"] == "cancelled"


def test_a_batch_elevenlabs_refuses_to_cancel_because_it_already_ended_counts_as_confirmed(api, user, http):
    campaign = campaign_submitted(
        user=user, numbers=["+12125550100"], status=Campaign.Status.IN_PROGRESS, batch_status="in_progress"
    )
    http.post(
        f"{BATCHES}/btcal_1/cancel",
        status=400,
        json={"detail": {"status": "invalid_state", "message": "Batch call btcal_1 is completed"}},
    )
    http.get(
        f"{BATCHES}/btcal_1",
        json=remote_batch("btcal_1", status="completed")
        | {"recipients": [{"id": "r1", "phone_number": "+12125550100", "status": "completed",
                           "created_at_unix": 1, "updated_at_unix": 1, "conversation_id": "conv_1"}]},
    )  # fmt: skip

    response = cancel(api, campaign)

    assert response.status_code == 200, response.content
    assert response.json()["data"]["status"] == "cancelled"
    assert list(campaign.batches.values_list("status", flat=True)) == ["completed"]


def test_cancelling_twice_is_harmless(api, user, http):
    campaign = campaign_submitted(
        user=user, numbers=["+12125550100"], status=Campaign.Status.IN_PROGRESS, batch_status="in_progress"
    )
    http.post(f"{BATCHES}/btcal_1/cancel", json=remote_batch("btcal_1", status="cancelled"))
    assert cancel(api, campaign).status_code == 200

    again = cancel(api, campaign)

    assert_error(again, 409, "cancelled")
    assert len(http.calls) == 1


@pytest.mark.parametrize("status", [Campaign.Status.COMPLETED, Campaign.Status.CANCELLED, Campaign.Status.FAILED])
def test_a_campaign_that_has_ended_cannot_be_cancelled(api, user, http, status):
    campaign = campaign_submitted(user=user, numbers=["+12125550100"], status=status, batch_status="completed")

    response = cancel(api, campaign)

    assert_error(response, 409, status.label.lower())
    assert len(http.calls) == 0
    campaign.refresh_from_db()
    assert campaign.status == status


# --- Retry ------------------------------------------------------------------------------


def test_retrying_asks_elevenlabs_once_per_batch_and_puts_failed_calls_back_to_pending(api, user, http, settings):
    # Given a completed campaign sent as two batches, with a busy call and a voicemail
    settings.ELEVENLABS_BATCH_MAX_RECIPIENTS = 2
    campaign = campaign_submitted(
        user=user,
        numbers=["+12125550100", "+12125550106", "+12125550108", "+12125550101"],
        batch_ids=["btcal_1", "btcal_2"],
        status=Campaign.Status.COMPLETED,
        batch_status="completed",
    )
    set_statuses(campaign, **{"0100": "completed", "0106": "failed", "0108": "voicemail", "0101": "completed"})
    Recipient.objects.filter(campaign=campaign, phone_number="+12125550106").update(failure_reason="busy")
    for batch_id in ("btcal_1", "btcal_2"):
        http.post(f"{BATCHES}/{batch_id}/retry", json=remote_batch(batch_id, status="pending") | {"retry_count": 1})

    response = retry(api, campaign)

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["retried_calls"] == 2
    assert data["status"] == "in_progress"
    assert sorted(requests_made(http)) == [("POST", f"{BATCHES}/btcal_1/retry"), ("POST", f"{BATCHES}/btcal_2/retry")]
    assert statuses(campaign) == {
        "+12125550100": "completed",
        "+12125550106": "pending",
        "+12125550108": "pending",
        "+12125550101": "completed",
    }
    assert Recipient.objects.get(campaign=campaign, phone_number="+12125550106").failure_reason == ""
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.IN_PROGRESS


def test_retry_asks_only_the_batches_with_calls_to_retry_and_one_refusal_does_not_stop_the_others(
    api, user, http, settings
):
    # Given three finished batches: nothing to retry in the first, a busy call in each other
    settings.ELEVENLABS_BATCH_MAX_RECIPIENTS = 1
    campaign = campaign_submitted(
        user=user,
        numbers=["+12125550100", "+12125550106", "+12125550107"],
        batch_ids=["btcal_1", "btcal_2", "btcal_3"],
        status=Campaign.Status.COMPLETED,
        batch_status="completed",
    )
    set_statuses(campaign, **{"0100": "completed", "0106": "failed", "0107": "failed"})
    http.post(f"{BATCHES}/btcal_2/retry", status=422, json={"detail": [{"loc": ["path"], "msg": "nope", "type": "x"}]})
    http.post(f"{BATCHES}/btcal_3/retry", json=remote_batch("btcal_3", status="in_progress") | {"retry_count": 1})

    response = retry(api, campaign)

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["retried_calls"] == 1
    assert data["batches"] == [
        {
            "part": 2,
            "elevenlabs_batch_call_id": "btcal_2",
            "retried_calls": 0,
            "error": "ElevenLabs answered 422: path: nope",
        },
        {"part": 3, "elevenlabs_batch_call_id": "btcal_3", "retried_calls": 1, "error": None},
    ]
    assert sorted(requests_made(http)) == [("POST", f"{BATCHES}/btcal_2/retry"), ("POST", f"{BATCHES}/btcal_3/retry")]
    assert statuses(campaign) == {"+12125550100": "completed", "+12125550106": "failed", "+12125550107": "pending"}
    retried = Recipient.objects.get(campaign=campaign, phone_number="+12125550107")
    assert (retried.attempt, retried.retried_at is not None) == (2, True)
    # the retried batch is followed again until ElevenLabs reports it finished
    assert list(campaign.batches.order_by("part").values_list("status", "settled_at")) == [
        ("completed", None),
        ("completed", None),
        ("in_progress", None),
    ]


def test_a_campaign_with_nothing_to_retry_answers_409(api, user, http):
    campaign = campaign_submitted(
        user=user, numbers=["+12125550100"], status=Campaign.Status.COMPLETED, batch_status="completed"
    )
    set_statuses(campaign, **{"0100": "completed"})

    response = retry(api, campaign)

    assert_error(response, 409, "no failed or unanswered calls")
    assert len(http.calls) == 0


def test_a_scheduled_campaign_cannot_be_retried(api, user, http):
    campaign = scheduled_campaign(user)
    RecipientFactory(campaign=campaign, status=Recipient.Status.FAILED)

    response = retry(api, campaign)

    assert_error(response, 409, "scheduled")
    assert len(http.calls) == 0
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED


def test_when_elevenlabs_cannot_retry_the_answer_is_502_and_nothing_changes(api, user, http):
    campaign = campaign_submitted(
        user=user, numbers=["+12125550100", "+12125550106"], status=Campaign.Status.COMPLETED, batch_status="completed"
    )
    set_statuses(campaign, **{"0100": "completed", "0106": "failed"})
    http.post(f"{BATCHES}/btcal_1/retry", status=503, body="Service Unavailable")

    response = retry(api, campaign)

    assert_error(response, 502, "ElevenLabs")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert statuses(campaign) == {"+12125550100": "completed", "+12125550106": "failed"}
    assert list(campaign.batches.values_list("status", "retry_count")) == [("completed", 0)]


# --- Someone else's campaign ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix"), [("post", "cancel"), ("post", "retry"), ("get", "recipients")], ids=lambda v: v
)
def test_another_users_campaign_is_not_found(api, other_user, http, method, suffix):
    campaign = campaign_submitted(
        user=other_user,
        numbers=["+12125550100", "+12125550106"],
        status=Campaign.Status.COMPLETED,
        batch_status="completed",
    )
    set_statuses(campaign, **{"0106": "failed"})

    response = getattr(api, method)(f"/api/v1/campaigns/{campaign.pk}/{suffix}")

    assert_error(response, 404, "Campaign not found")
    assert len(http.calls) == 0
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert statuses(campaign) == {"+12125550100": "pending", "+12125550106": "failed"}


# --- Recipients -------------------------------------------------------------------------


@pytest.fixture
def recipients_campaign(user):
    campaign = CampaignFactory(user=user, status=Campaign.Status.COMPLETED)
    RecipientFactory(
        campaign=campaign,
        phone_number="+12125550100",
        status=Recipient.Status.COMPLETED,
        conversation_id="conv_100",
        call_successful="success",
        summary="Confirmed the appointment.",
    )
    RecipientFactory(campaign=campaign, phone_number="+12125550106", status="failed", failure_reason="busy")
    RecipientFactory(campaign=campaign, phone_number="+442079460958", status="failed", failure_reason="no-answer")
    RecipientFactory(campaign=campaign, phone_number="+14155550123", status="voicemail", conversation_id="conv_123")
    RecipientFactory(campaign=campaign, phone_number="+33612345678", status="completed", conversation_id="conv_678")
    return campaign


def recipients(api, campaign, **params):
    return api.get(f"/api/v1/campaigns/{campaign.pk}/recipients", params)


def test_the_recipients_list_shows_each_calls_outcome(api, recipients_campaign):
    response = recipients(api, recipients_campaign)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"]["code"] == 200
    first = body["data"][0]
    assert first["phone_number"] == "+12125550100"
    assert first["status"] == "completed"
    assert first["conversation_id"] == "conv_100"
    assert first["call_successful"] == "success"
    assert first["failure_reason"] == ""
    assert first["summary"] == "Confirmed the appointment."
    busy = body["data"][1]
    assert (busy["status"], busy["failure_reason"]) == ("failed", "busy")


def test_the_recipients_list_is_paginated(api, recipients_campaign):
    first = recipients(api, recipients_campaign, page_size=2).json()
    last = recipients(api, recipients_campaign, page_size=2, page=3).json()

    assert [r["phone_number"] for r in first["data"]] == ["+12125550100", "+12125550106"]
    assert first["pagination"]["total"] == 5
    assert first["pagination"]["pages"] == 3
    assert first["pagination"]["page_size"] == 2
    assert [r["phone_number"] for r in last["data"]] == ["+33612345678"]


def test_the_recipients_list_can_show_one_call_status(api, recipients_campaign):
    body = recipients(api, recipients_campaign, status="failed").json()

    assert [(r["phone_number"], r["failure_reason"]) for r in body["data"]] == [
        ("+12125550106", "busy"),
        ("+442079460958", "no-answer"),
    ]
    assert body["pagination"]["total"] == 2


def test_the_recipients_list_can_be_searched_by_digits(api, recipients_campaign):
    plain = recipients(api, recipients_campaign, search="555").json()["data"]
    formatted = recipients(api, recipients_campaign, search="(212) 555-01").json()["data"]

    assert [r["phone_number"] for r in plain] == ["+12125550100", "+12125550106", "+14155550123"]
    assert [r["phone_number"] for r in formatted] == ["+12125550100", "+12125550106"]


def test_an_unknown_status_filter_is_a_422(api, recipients_campaign):
    response = recipients(api, recipients_campaign, status="exploded")

    assert_error(response, 422, "status")
