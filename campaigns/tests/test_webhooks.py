"""POST /webhooks/elevenlabs: signed post-call events recorded on the right recipient."""

import datetime as dt
import json
import time

import pytest
import responses
from django.utils import timezone
from elevenlabs import ElevenLabs
from elevenlabs.errors import BadRequestError

from campaigns import inbox, tracking
from campaigns.elevenlabs import ElevenLabsClient
from campaigns.models import Agent, Call, Campaign, Recipient, WebhookEvent
from sandbox.signing import HEADER, sign

from .factories import UserFactory
from .test_tracking import BASE, BATCHES, campaign_submitted, remote_detail, remote_recipient

URL = "/webhooks/elevenlabs"
SECRET = "whsec_test_secret"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.ELEVENLABS_WEBHOOK_SECRET = SECRET
    settings.ELEVENLABS_WEBHOOK_TOLERANCE_SECONDS = 30 * 60
    return settings


def submitted_campaign(batch_id, numbers, **fields):
    """A campaign calling `numbers` in one batch ElevenLabs knows as `batch_id`, with agent agent_abc123."""
    if "agent" not in fields:
        user = fields.setdefault("user", UserFactory())
        fields["agent"], _ = Agent.objects.get_or_create(
            user=user, elevenlabs_agent_id="agent_abc123", defaults={"name": "Reminder agent"}
        )
    return campaign_submitted(
        numbers=numbers,
        batch_ids=[batch_id],
        status=Campaign.Status.IN_PROGRESS,
        batch_status="in_progress",
        **fields,
    )


def transcription_event(
    *,
    batch_id="btcal_1",
    phone_number="+12125550100",
    conversation_id="conv_100",
    call_successful="success",
    summary="The customer confirmed the appointment.",
    call_result="answered",
    timestamp=None,
):
    """A post_call_transcription event as ElevenLabs posts it (data shaped like GET conversation)."""
    return {
        "type": "post_call_transcription",
        "event_timestamp": timestamp or int(time.time()),
        "data": {
            "agent_id": "agent_abc123",
            "conversation_id": conversation_id,
            "status": "done",
            "transcript": [
                {"role": "agent", "message": "Hello, this is your reminder.", "time_in_call_secs": 0},
                {"role": "user", "message": "Thanks, see you then.", "time_in_call_secs": 4},
            ],
            "metadata": {
                "start_time_unix_secs": int(time.time()) - 60,
                "call_duration_secs": 42,
                "termination_reason": "Call ended by remote party",
                "phone_call": {
                    "type": "twilio",
                    "direction": "outbound",
                    "phone_number_id": "phnum_main",
                    "agent_number": "+14155550100",
                    "external_number": phone_number,
                    "call_sid": "CA0123456789abcdef",
                    "call_result": call_result,
                },
                "batch_call": {"batch_call_id": batch_id, "batch_call_recipient_id": "rcpt_1"},
            },
            "analysis": {
                "call_successful": call_successful,
                "transcript_summary": summary,
                "evaluation_criteria_results": {},
                "data_collection_results": {},
            },
            "conversation_initiation_client_data": {"dynamic_variables": {"first_name": "Ana"}},
            "has_audio": True,
            "has_user_audio": True,
            "has_response_audio": True,
        },
    }


def initiation_failure_event(
    *, phone_number="+12125550106", reason="busy", conversation_id="conv_failed_106", agent_id="agent_abc123",
    timestamp=None,
):  # fmt: skip
    """A call_initiation_failure for a Twilio call: `metadata.body` is Twilio's status callback, no batch id."""
    return {
        "type": "call_initiation_failure",
        "event_timestamp": timestamp or int(time.time()),
        "data": {
            "agent_id": agent_id,
            "conversation_id": conversation_id,
            "failure_reason": reason,
            "metadata": {
                "type": "twilio",
                "body": {
                    "AccountSid": "AC0123456789abcdef0123456789abcdef",
                    "ApiVersion": "2010-04-01",
                    "CallSid": "CAfedcba9876543210",
                    "CallStatus": reason,
                    "Called": phone_number,
                    "Caller": "+14155550100",
                    "Direction": "outbound-api",
                    "From": "+14155550100",
                    "To": phone_number,
                    "SipResponseCode": "486" if reason == "busy" else "487",
                    "Timestamp": "Mon, 30 Nov 2026 10:00:00 +0000",
                    "CallbackSource": "call-progress-events",
                    "SequenceNumber": "2",
                },
            },
        },
    }


def sip_failure_event(*, phone_number="+12125550106", conversation_id="conv_sip_106"):
    """A call_initiation_failure for a SIP-trunk call: the trunk's own fields, no batch id."""
    return {
        "type": "call_initiation_failure",
        "event_timestamp": int(time.time()),
        "data": {
            "agent_id": "agent_abc123",
            "conversation_id": conversation_id,
            "failure_reason": "busy",
            "metadata": {
                "type": "sip",
                "body": {
                    "from_number": "+13125550100",
                    "to_number": phone_number,
                    "sip_status_code": 486,
                    "error_reason": "Busy Here",
                    "call_sid": "SCL_abcdef123456",
                    "sip_status": "Busy Here",
                },
            },
        },
    }


def post_signed(client, event, *, secret=SECRET, timestamp=None, body=None):
    body = body if body is not None else json.dumps(event).encode()
    signature = sign(body, secret, timestamp if timestamp is not None else int(time.time()))
    return client.post(URL, data=body, content_type="application/json", headers={HEADER: signature})


def recipient(phone_number, campaign):
    return Recipient.objects.get(campaign=campaign, phone_number=phone_number)


def outcome(recipient):
    recipient.refresh_from_db()
    return {
        "status": recipient.status,
        "conversation_id": recipient.conversation_id,
        "call_successful": recipient.call_successful,
        "failure_reason": recipient.failure_reason,
        "summary": recipient.summary,
    }


UNTOUCHED = {"status": "pending", "conversation_id": "", "call_successful": "", "failure_reason": "", "summary": ""}


# --- Recording outcomes -----------------------------------------------------------------


def test_a_signed_transcription_records_the_outcome_on_the_recipient_of_that_batch(client):
    # Given two campaigns calling the same number
    ours = submitted_campaign("btcal_1", ["+12125550100", "+12125550101"])
    other = submitted_campaign("btcal_2", ["+12125550100"])

    response = post_signed(client, transcription_event(batch_id="btcal_1", phone_number="+12125550100"))

    assert response.status_code == 200
    assert response.json() == {"received": True, "recorded": True}
    assert outcome(recipient("+12125550100", ours)) == {
        "status": "completed",
        "conversation_id": "conv_100",
        "call_successful": "success",
        "failure_reason": "",
        "summary": "The customer confirmed the appointment.",
    }
    assert recipient("+12125550100", ours).status_updated_at is not None
    assert outcome(recipient("+12125550101", ours)) == UNTOUCHED
    assert outcome(recipient("+12125550100", other)) == UNTOUCHED


def test_a_call_that_reached_voicemail_is_recorded_as_voicemail(client):
    campaign = submitted_campaign("btcal_1", ["+12125550108"])
    event = transcription_event(
        phone_number="+12125550108",
        conversation_id="conv_108",
        call_successful="failure",
        summary="The call reached voicemail.",
        call_result="voicemail",
    )

    response = post_signed(client, event)

    assert response.status_code == 200
    assert outcome(recipient("+12125550108", campaign)) == {
        "status": "voicemail",
        "conversation_id": "conv_108",
        "call_successful": "failure",
        "failure_reason": "",
        "summary": "The call reached voicemail.",
    }


@pytest.mark.parametrize("reason", ["busy", "no-answer"])
def test_a_call_that_could_not_be_placed_is_recorded_as_failed_with_its_reason(client, reason):
    campaign = submitted_campaign("btcal_1", ["+12125550106", "+12125550107"])

    response = post_signed(client, initiation_failure_event(phone_number="+12125550106", reason=reason))

    assert response.status_code == 200
    assert response.json()["recorded"] is True
    failed = outcome(recipient("+12125550106", campaign))
    assert (failed["status"], failed["failure_reason"]) == ("failed", reason)
    assert outcome(recipient("+12125550107", campaign)) == UNTOUCHED


@pytest.mark.parametrize(
    "event",
    [transcription_event(), initiation_failure_event(phone_number="+12125550100")],
    ids=["post_call_transcription", "call_initiation_failure"],
)
def test_the_same_event_twice_leaves_the_same_state(client, event):
    campaign = submitted_campaign("btcal_1", ["+12125550100"])

    first = post_signed(client, event)
    after_first = outcome(recipient("+12125550100", campaign))
    second = post_signed(client, event)

    assert (first.status_code, second.status_code) == (200, 200)
    assert outcome(recipient("+12125550100", campaign)) == after_first
    assert Recipient.objects.filter(campaign=campaign).count() == 1


def test_a_poll_that_still_sees_the_call_running_does_not_undo_the_recorded_outcome(client):
    campaign = submitted_campaign("btcal_1", ["+12125550100"])
    post_signed(client, transcription_event())

    with responses.RequestsMock() as http:
        http.get(
            f"{BATCHES}/btcal_1",
            json=remote_detail(
                "btcal_1",
                status="in_progress",
                recipients=[remote_recipient("+12125550100", "in_progress", "conv_100")],
            ),
        )
        tracking.campaign_poll(
            campaign_id=campaign.pk, client=ElevenLabsClient(base_url=BASE, api_key="k", sleep=lambda s: None)
        )

    assert outcome(recipient("+12125550100", campaign))["status"] == "completed"


# --- Refused ----------------------------------------------------------------------------


def unsigned(client, event):
    return client.post(URL, data=json.dumps(event), content_type="application/json")


def wrong_signature(client, event):
    return post_signed(client, event, secret="not-the-secret")


def stale_timestamp(client, event):
    return post_signed(client, event, timestamp=int(time.time()) - 31 * 60)


def body_altered_after_signing(client, event):
    body = json.dumps(event).encode()
    signature = sign(body, SECRET, int(time.time()))
    altered = body.replace(b'"success"', b'"failure"')
    assert altered != body
    return client.post(URL, data=altered, content_type="application/json", headers={HEADER: signature})


def malformed_header(client, event):
    body = json.dumps(event).encode()
    return client.post(URL, data=body, content_type="application/json", headers={HEADER: "v0=abc"})


@pytest.mark.parametrize(
    "send",
    [unsigned, wrong_signature, stale_timestamp, body_altered_after_signing, malformed_header],
    ids=lambda send: send.__name__,
)
def test_an_event_without_a_valid_signature_is_refused_and_nothing_recorded(client, send):
    campaign = submitted_campaign("btcal_1", ["+12125550100"])

    response = send(client, transcription_event())

    assert response.status_code == 401
    assert outcome(recipient("+12125550100", campaign)) == UNTOUCHED


def test_every_event_is_refused_while_no_secret_is_configured(client, settings):
    campaign = submitted_campaign("btcal_1", ["+12125550100"])
    settings.ELEVENLABS_WEBHOOK_SECRET = ""

    response = post_signed(client, transcription_event(), secret="")

    assert response.status_code == 401
    assert outcome(recipient("+12125550100", campaign)) == UNTOUCHED


def test_a_signature_within_the_tolerance_is_accepted(client):
    campaign = submitted_campaign("btcal_1", ["+12125550100"])

    response = post_signed(client, transcription_event(), timestamp=int(time.time()) - 29 * 60)

    assert response.status_code == 200
    assert outcome(recipient("+12125550100", campaign))["status"] == "completed"


# --- Accepted, not recorded -------------------------------------------------------------


def test_an_event_for_a_call_we_do_not_know_is_acknowledged_but_not_recorded(client):
    campaign = submitted_campaign("btcal_1", ["+12125550100"])

    response = post_signed(
        client, transcription_event(batch_id="btcal_unknown", phone_number="+19995550100", conversation_id="conv_x")
    )

    assert response.status_code == 200
    assert response.json() == {"received": True, "recorded": False}
    assert outcome(recipient("+12125550100", campaign)) == UNTOUCHED


def test_a_post_call_audio_event_is_accepted_and_ignored(client):
    campaign = submitted_campaign("btcal_1", ["+12125550100"])
    Recipient.objects.filter(campaign=campaign).update(conversation_id="conv_100")
    event = {
        "type": "post_call_audio",
        "event_timestamp": int(time.time()),
        "data": {"agent_id": "agent_abc123", "conversation_id": "conv_100", "full_audio": "SUQzBAAAAAAAI1RTU0UAAAA="},
    }

    response = post_signed(client, event)

    assert response.status_code == 200
    assert response.json()["recorded"] is False
    assert outcome(recipient("+12125550100", campaign)) == {**UNTOUCHED, "conversation_id": "conv_100"}


# --- A retried call ---------------------------------------------------------------------


def test_a_retried_call_is_linked_to_its_new_conversation(client, api, settings, user):
    # Given a call that reached voicemail, then retried through the API
    campaign = submitted_campaign("btcal_1", ["+12125550108"], user=user)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.COMPLETED)
    campaign.batches.update(status="completed")
    post_signed(
        client,
        transcription_event(
            phone_number="+12125550108",
            conversation_id="conv_first",
            call_successful="failure",
            summary="Voicemail.",
            call_result="voicemail",
        ),
    )
    settings.ELEVENLABS_BASE_URL = BASE
    settings.ELEVENLABS_API_KEY = "k"
    with responses.RequestsMock() as http:
        http.post(
            f"{BATCHES}/btcal_1/retry",
            json={"id": "btcal_1", "name": "x", "agent_id": "agent_abc123", "status": "pending", "retry_count": 1},
        )
        assert api.post(f"/api/v1/campaigns/{campaign.pk}/retry").status_code == 200

    # When the second call is answered
    post_signed(
        client,
        transcription_event(
            phone_number="+12125550108", conversation_id="conv_second", summary="The customer confirmed."
        ),
    )

    # Then the recipient shows the second call's outcome and conversation
    assert outcome(recipient("+12125550108", campaign)) == {
        "status": "completed",
        "conversation_id": "conv_second",
        "call_successful": "success",
        "failure_reason": "",
        "summary": "The customer confirmed.",
    }


# --- The official SDK agrees with our signature format ----------------------------------


def sdk_accepts(body: bytes, header: str, secret: str) -> bool:
    try:
        ElevenLabs(api_key="unused").webhooks.construct_event(rawBody=body.decode(), sig_header=header, secret=secret)
    except BadRequestError:
        return False
    return True


def test_the_official_sdk_verifies_a_signature_made_by_the_sandbox_and_reads_the_event():
    event = transcription_event()
    body = json.dumps(event).encode()
    header = sign(body, SECRET, int(time.time()))

    parsed = ElevenLabs(api_key="unused").webhooks.construct_event(
        rawBody=body.decode(), sig_header=header, secret=SECRET
    )

    assert parsed == event


@pytest.mark.parametrize(
    ("secret_used", "age_seconds", "alter"),
    [
        (SECRET, 0, False),
        (SECRET, 29 * 60, False),
        ("another-secret", 0, False),
        (SECRET, 31 * 60, False),
        (SECRET, 0, True),
    ],
    ids=["valid", "old-but-within-tolerance", "wrong-secret", "too-old", "altered-body"],
)
def test_our_receiver_and_the_official_sdk_agree_on_which_signatures_are_valid(client, secret_used, age_seconds, alter):
    submitted_campaign("btcal_1", ["+12125550100"])
    body = json.dumps(transcription_event()).encode()
    header = sign(body, secret_used, int(time.time()) - age_seconds)
    if alter:
        body = body.replace(b"conv_100", b"conv_999")

    response = client.post(URL, data=body, content_type="application/json", headers={HEADER: header})

    assert (response.status_code == 200) is sdk_accepts(body, header, SECRET)


# --- The inbox: documented shapes, before and after the poll ---------------------------


def poll(campaign, *recipients, status="in_progress"):
    """One poll of the campaign's batch btcal_1, ElevenLabs reporting `recipients`."""
    with responses.RequestsMock() as http:
        http.get(f"{BATCHES}/btcal_1", json=remote_detail("btcal_1", status=status, recipients=list(recipients)))
        tracking.campaign_poll(
            campaign_id=campaign.pk, client=ElevenLabsClient(base_url=BASE, api_key="k", sleep=lambda s: None)
        )


def api_recipient(api, campaign, phone_number):
    listed = api.get(f"/api/v1/campaigns/{campaign.pk}/recipients", {"search": phone_number}).json()["data"]
    [found] = [item for item in listed if item["phone_number"] == phone_number]
    return found


def test_a_twilio_failure_without_batch_ids_is_matched_by_the_called_number_before_any_poll(client, api, user):
    campaign = submitted_campaign("btcal_1", ["+12125550106", "+12125550107"], user=user)

    response = post_signed(client, initiation_failure_event(phone_number="+12125550106", reason="busy"))

    assert response.json() == {"received": True, "recorded": True}
    shown = api_recipient(api, campaign, "+12125550106")
    assert (shown["status"], shown["failure_reason"], shown["conversation_id"]) == ("failed", "busy", "conv_failed_106")
    call = Call.objects.get(conversation_id="conv_failed_106")
    assert (call.attempt, call.provider, call.provider_status, call.provider_code) == (1, "twilio", "busy", "486")
    assert api_recipient(api, campaign, "+12125550107")["status"] == "pending"


def test_a_sip_failure_keeps_the_trunks_own_code(client, api, user):
    campaign = submitted_campaign("btcal_1", ["+12125550106"], user=user)

    response = post_signed(client, sip_failure_event())

    assert response.json()["recorded"] is True
    assert api_recipient(api, campaign, "+12125550106")["failure_reason"] == "busy"
    call = Call.objects.get(conversation_id="conv_sip_106")
    assert (call.provider, call.provider_status, call.provider_code) == ("sip", "Busy Here", "486")


def test_a_failure_that_cannot_be_told_apart_waits_in_the_inbox_until_the_poll_learns_its_conversation(client, user):
    # Given two running campaigns of the same agent calling the same number
    first = submitted_campaign("btcal_1", ["+12125550106"], user=user)
    second = submitted_campaign("btcal_2", ["+12125550106"], user=user, agent=first.agent)

    response = post_signed(client, initiation_failure_event(phone_number="+12125550106"))

    # Then it is acknowledged, kept, and recorded nowhere yet
    assert response.status_code == 200
    assert response.json()["recorded"] is False
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.PENDING
    assert "several campaigns" in event.note
    assert {recipient("+12125550106", first).status, recipient("+12125550106", second).status} == {"pending"}

    # When the poll of the first campaign learns that conversation
    poll(first, remote_recipient("+12125550106", "initiated", "conv_failed_106"))

    # Then the waiting event is applied to that campaign's recipient only
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.APPLIED
    assert outcome(recipient("+12125550106", first))["failure_reason"] == "busy"
    assert recipient("+12125550106", first).status == "failed"
    assert recipient("+12125550106", second).status == "pending"


def test_an_event_nobody_can_match_is_kept_and_looked_up_at_elevenlabs(client, user):
    # Given a transcription without the batch fields we could match on, for a conversation no poll knows
    campaign = submitted_campaign("btcal_1", ["+12125550100"], user=user)
    event = transcription_event(conversation_id="conv_unknown")
    del event["data"]["metadata"]["batch_call"]
    del event["data"]["metadata"]["phone_call"]
    assert post_signed(client, event).json()["recorded"] is False

    # When the inbox sweep asks ElevenLabs about the conversation
    conversation = {
        "agent_id": "agent_abc123",
        "conversation_id": "conv_unknown",
        "status": "done",
        "transcript": [],
        "metadata": {
            "start_time_unix_secs": 1785000000,
            "call_duration_secs": 30,
            "batch_call": {"batch_call_id": "btcal_1", "batch_call_recipient_id": "rcpt_1"},
            "phone_call": {
                "type": "twilio",
                "direction": "outbound",
                "phone_number_id": "phnum_main",
                "agent_number": "+14155550100",
                "external_number": "+12125550100",
                "call_sid": "CA0123",
            },
        },
        "has_audio": False,
        "has_user_audio": False,
        "has_response_audio": False,
    }
    with responses.RequestsMock() as http:
        http.get(f"{BASE}/v1/convai/conversations/conv_unknown", json=conversation)
        applied = inbox.events_look_up(
            client=ElevenLabsClient(base_url=BASE, api_key="k", sleep=lambda s: None),
            now=timezone.now() + dt.timedelta(minutes=5),
        )

    assert applied == 1
    assert outcome(recipient("+12125550100", campaign))["conversation_id"] == "conv_unknown"
    assert recipient("+12125550100", campaign).status == "completed"


def test_an_event_unmatched_for_a_day_is_listed_in_the_admin(client, admin_client):
    post_signed(client, transcription_event(batch_id="btcal_unknown", conversation_id="conv_nobody"))
    WebhookEvent.objects.update(received_at=timezone.now() - dt.timedelta(days=2))

    page = admin_client.get("/admin/campaigns/webhookevent/", {"waiting": "day"})

    assert page.status_code == 200
    assert "conv_nobody" in page.content.decode()


@pytest.mark.parametrize("order", ["poll-first", "webhook-first"])
def test_voicemail_from_call_result_and_from_the_poll_end_as_voicemail_in_any_order(client, user, order):
    campaign = submitted_campaign("btcal_1", ["+12125550108"], user=user)
    event = transcription_event(phone_number="+12125550108", conversation_id="conv_108", call_result="voicemail")
    steps = {
        "poll": lambda: poll(campaign, remote_recipient("+12125550108", "voicemail", "conv_108"), status="completed"),
        "webhook": lambda: post_signed(client, event),
    }
    for step in order.split("-")[0], ("webhook" if order.startswith("poll") else "poll"):
        steps[step]()

    assert recipient("+12125550108", campaign).status == "voicemail"
    assert recipient("+12125550108", campaign).call_result == "voicemail"


def test_a_poll_that_reports_completed_never_undoes_a_voicemail(client, user):
    campaign = submitted_campaign("btcal_1", ["+12125550108"], user=user)
    post_signed(
        client, transcription_event(phone_number="+12125550108", conversation_id="conv_108", call_result="voicemail")
    )

    poll(campaign, remote_recipient("+12125550108", "completed", "conv_108"), status="completed")

    assert recipient("+12125550108", campaign).status == "voicemail"


@pytest.mark.parametrize(("call_result", "reason"), [("busy", "busy"), ("no_answer", "no-answer")])
def test_a_transcription_whose_call_result_is_unanswered_records_a_failed_call(client, user, call_result, reason):
    campaign = submitted_campaign("btcal_1", ["+12125550107"], user=user)

    post_signed(
        client, transcription_event(phone_number="+12125550107", conversation_id="c107", call_result=call_result)
    )

    shown = outcome(recipient("+12125550107", campaign))
    assert (shown["status"], shown["failure_reason"]) == ("failed", reason)


def test_the_transcript_is_kept_on_the_call(client, user):
    submitted_campaign("btcal_1", ["+12125550100"], user=user)

    post_signed(client, transcription_event())

    call = Call.objects.get(conversation_id="conv_100")
    assert call.transcript == [
        {"role": "agent", "message": "Hello, this is your reminder.", "time_in_call_secs": 0},
        {"role": "user", "message": "Thanks, see you then.", "time_in_call_secs": 4},
    ]
    assert (call.call_result, call.duration_secs, call.status) == ("answered", 42, "completed")


def test_the_same_event_delivered_twice_is_stored_once(client, user):
    submitted_campaign("btcal_1", ["+12125550100"], user=user)
    event = transcription_event()

    post_signed(client, event)
    post_signed(client, event)

    assert WebhookEvent.objects.count() == 1
    assert Call.objects.count() == 1


def test_a_late_failure_of_the_first_attempt_never_overwrites_the_second(client, api, user, settings):
    # Given a busy first call (learned by the poll), then retried: the second call is answered
    campaign = submitted_campaign("btcal_1", ["+12125550106"], user=user)
    poll(campaign, remote_recipient("+12125550106", "failed", "conv_first"), status="completed")
    settings.ELEVENLABS_BASE_URL = BASE
    settings.ELEVENLABS_API_KEY = "k"
    with responses.RequestsMock() as http:
        http.post(f"{BATCHES}/btcal_1/retry", json={"id": "btcal_1", "status": "in_progress", "retry_count": 1})
        assert api.post(f"/api/v1/campaigns/{campaign.pk}/retry").status_code == 200
    post_signed(client, transcription_event(phone_number="+12125550106", conversation_id="conv_second"))

    # When the first call's failure arrives late (replayed), and a stale poll still shows it
    retried_at = recipient("+12125550106", campaign).retried_at
    late = initiation_failure_event(
        phone_number="+12125550106", conversation_id="conv_first", timestamp=int(retried_at.timestamp()) - 60
    )
    assert post_signed(client, late).status_code == 200
    poll(campaign, remote_recipient("+12125550106", "failed", "conv_first"), status="completed")

    # Then the recipient shows the second call; the first keeps its own record
    shown = api_recipient(api, campaign, "+12125550106")
    assert (shown["status"], shown["conversation_id"], shown["failure_reason"]) == ("completed", "conv_second", "")
    first = Call.objects.get(conversation_id="conv_first")
    assert (first.attempt, first.status, first.failure_reason) == (1, "failed", "busy")
    assert Call.objects.get(conversation_id="conv_second").attempt == 2


@pytest.mark.parametrize(
    "event",
    [
        {"type": "post_call_transcription", "event_timestamp": "soon", "data": "not an object"},
        {"type": "post_call_transcription", "data": {"conversation_id": ["x"], "metadata": [1, 2]}},
        {"type": "call_initiation_failure", "data": {"metadata": {"type": "sip", "body": "x" * 100}}},
        {"type": "post_call_transcription", "data": {
            "conversation_id": "c\x00x",
            "analysis": {"transcript_summary": "a" * 100_000, "call_successful": "s" * 500},
        }},
        {"type": 42},
        {"type": "post_call_transcription_otel", "data": {}},
    ],
    ids=["data-not-object", "wrong-types", "body-not-object", "nul-and-long-values", "type-not-text", "otel"],
)  # fmt: skip
def test_a_signed_event_of_any_shape_is_answered_200_and_kept(client, event):
    response = post_signed(client, event)

    assert response.status_code == 200
    assert WebhookEvent.objects.count() == 1


# --- Total over its input: any signed body is 200 (kept) or 400, never a server error -------


def raw_event(event_timestamp="1785000000", data=None, kind='"post_call_transcription"') -> bytes:
    """A signed body written by hand, so it can hold what json.dumps would not write."""
    return f'{{"type": {kind}, "event_timestamp": {event_timestamp}, "data": {data or "{}"}}}'.encode()


def assert_storable(value):
    """What PostgreSQL's jsonb takes: finite numbers, no NUL, no lone surrogate."""
    text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    assert "\x00" not in text
    text.encode("utf-8")


@pytest.mark.parametrize(
    "body",
    [
        raw_event(str(10**30)),
        raw_event("-5"),
        raw_event("1785000000.75"),
        raw_event('"NaN"'),
        raw_event('"Infinity"'),
        raw_event('"1e999"'),
        raw_event("NaN"),
        raw_event("-Infinity"),
        raw_event("1e999"),
        raw_event("9" * 4000),
        raw_event(data=json.dumps({"conversation_id": "c" * 10_000, "agent_id": "a" * 10_000})),
        raw_event(data=json.dumps({"conversation_id": "conv_1", "agent_id": 12345})),
        raw_event(data=json.dumps({"conversation_id": "conv_1", "agent_id": {"id": "agent_abc123"}})),
        raw_event(data=json.dumps({"agent_id": True, "conversation_id": 1.5})),
        raw_event(kind='"call_initiation_failure"', data=json.dumps({"metadata": {"type": "sip", "body": [1, 2]}})),
        raw_event(kind='"call_initiation_failure"', data=json.dumps({"metadata": {"type": "twilio", "body": None}})),
        raw_event(kind='"call_initiation_failure"', data=json.dumps({"metadata": {"body": {"To": "+1" * 5000}}})),
        raw_event(data=json.dumps({"transcript": [{"role": "user", "message": "hi"}] * 100_000})),
        raw_event(data=json.dumps({"transcript": {"role": "user"}})),
        raw_event(data=json.dumps({"transcript": ["turn", None, 3, [1]]})),
        raw_event(kind=json.dumps("t\x00ype" * 100), data=json.dumps({"con\x00versation_id": "x\x00y", "\x00": 1})),
        raw_event(data='{"conversation_id": "conv_\\ud800", "agent_id": "\\udfff", "\\ud83d": "lone"}'),
        raw_event(kind='"post_call_transcription\\u0000"', data='{"metadata": {"phone_call": NaN}}'),
        raw_event(kind="null"),
        raw_event(kind='["post_call_transcription"]'),
        b'{"type": "post_call_transcription", "data": {"metadata": {"call_duration_secs": 1e999}}}',
    ],
    ids=[
        "timestamp-huge", "timestamp-negative", "timestamp-float", "timestamp-NaN-string",
        "timestamp-Infinity-string", "timestamp-1e999-string", "timestamp-NaN", "timestamp-minus-Infinity",
        "timestamp-1e999", "timestamp-4000-digits", "ids-10000-chars", "agent-id-number", "agent-id-object",
        "ids-bool-and-float", "failure-body-list", "failure-body-null", "failure-number-10000-chars",
        "transcript-100000-turns", "transcript-object", "transcript-not-turns", "nul-in-keys-and-type",
        "lone-surrogates", "nul-escape-in-type-and-nan-object", "type-null", "type-list", "duration-infinite",
    ],
)  # fmt: skip
def test_a_signed_event_of_any_other_shape_is_answered_200_and_kept_within_its_columns(client, body):
    response = post_signed(client, None, body=body)

    assert response.status_code == 200, response.content
    event = WebhookEvent.objects.get()
    assert len(event.event_type) <= 64
    assert len(event.conversation_id) <= 128 and len(event.agent_id) <= 128
    assert "\x00" not in event.event_type + event.conversation_id + event.agent_id
    assert_storable(event.payload)


@pytest.mark.parametrize(
    "body",
    [raw_event("9" * 5000), raw_event(data='{"a": ' + "[" * 300 + "]" * 300 + "}"), b"NaN", b"[1, 2]", b'"text"'],
    ids=["number-of-5000-digits", "nested-300-deep", "nan", "list", "string"],
)
def test_a_signed_body_that_is_no_event_at_all_is_a_400(client, body):
    response = post_signed(client, None, body=body)

    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("metadata", "shown"),
    [
        ({"call_duration_secs": 10**12, "start_time_unix_secs": 10**12}, (None, None)),
        ({"call_duration_secs": -42, "start_time_unix_secs": -1}, (None, None)),
        ({"call_duration_secs": 42.9, "start_time_unix_secs": "1785000000"}, (42, None)),
        ({"call_duration_secs": "42", "start_time_unix_secs": 1785000000.5}, (None, 1785000000)),
    ],
    ids=["huge", "negative", "float-and-string", "string-and-float"],
)
def test_numbers_a_column_cannot_hold_are_left_out_and_the_event_still_applied(client, user, metadata, shown):
    submitted_campaign("btcal_1", ["+12125550100"], user=user)
    event = transcription_event()
    event["data"]["metadata"].update(metadata)
    event["data"]["transcript"][0]["time_in_call_secs"] = 10**30

    assert post_signed(client, event).status_code == 200

    call = Call.objects.get(conversation_id="conv_100")
    started = int(call.started_at.timestamp()) if call.started_at else None
    assert (call.duration_secs, started) == shown
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.APPLIED


def test_a_transcript_of_100000_turns_is_kept_to_its_first_2000_on_the_call(client, user):
    submitted_campaign("btcal_1", ["+12125550100"], user=user)
    event = transcription_event()
    event["data"]["transcript"] = [
        {"role": "user", "message": f"turn {n}", "time_in_call_secs": n} for n in range(100_000)
    ]

    assert post_signed(client, event).status_code == 200

    transcript = Call.objects.get(conversation_id="conv_100").transcript
    assert len(transcript) == inbox.MAX_TRANSCRIPT_TURNS
    assert transcript[-1] == {"role": "user", "message": "turn 1999", "time_in_call_secs": 1999}


def test_values_longer_than_their_columns_are_cut_on_the_call_and_the_recipient(client, user):
    campaign = submitted_campaign("btcal_1", ["+12125550100"], user=user)
    event = transcription_event(call_successful="s" * 500, call_result="r" * 500, summary="w" * 100_000)
    event["data"]["metadata"]["phone_call"]["type"] = "t" * 500

    assert post_signed(client, event).status_code == 200

    call = Call.objects.get(conversation_id="conv_100")
    assert (len(call.call_successful), len(call.call_result), len(call.provider)) == (16, 16, 16)
    assert len(recipient("+12125550100", campaign).call_successful) == 16


def test_a_conversation_id_of_10000_characters_is_matched_by_its_first_128(client, user):
    long_id = "conv_" + "x" * 9_995
    submitted_campaign("btcal_1", ["+12125550100"], user=user)

    assert post_signed(client, transcription_event(conversation_id=long_id)).status_code == 200
    assert post_signed(client, transcription_event(conversation_id=long_id, summary="Again.")).status_code == 200

    assert list(Call.objects.values_list("conversation_id", flat=True)) == [long_id[:128]]
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {WebhookEvent.Status.APPLIED}
