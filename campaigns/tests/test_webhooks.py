"""POST /webhooks/elevenlabs: signed post-call events recorded on the right recipient."""

import json
import time

import pytest
import responses
from elevenlabs import ElevenLabs
from elevenlabs.errors import BadRequestError

from campaigns import tracking
from campaigns.elevenlabs import ElevenLabsClient
from campaigns.models import Campaign, Recipient
from sandbox.signing import HEADER, sign

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
    """A campaign calling `numbers` in one batch ElevenLabs knows as `batch_id`."""
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
    termination_reason="Call ended by remote party",
):
    """A post_call_transcription event as ElevenLabs posts it (data shaped like GET conversation)."""
    return {
        "type": "post_call_transcription",
        "event_timestamp": int(time.time()),
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
                "termination_reason": termination_reason,
                "phone_call": {
                    "type": "twilio",
                    "direction": "outbound",
                    "phone_number_id": "phnum_main",
                    "agent_number": "+14155550100",
                    "external_number": phone_number,
                    "call_sid": "CA0123456789abcdef",
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


def initiation_failure_event(*, batch_id="btcal_1", phone_number="+12125550106", reason="busy"):
    """A call_initiation_failure event for a Twilio call, with the batch ids in the provider body."""
    return {
        "type": "call_initiation_failure",
        "event_timestamp": int(time.time()),
        "data": {
            "agent_id": "agent_abc123",
            "conversation_id": "conv_failed_106",
            "failure_reason": reason,
            "metadata": {
                "type": "twilio",
                "body": {
                    "CallSid": "CAfedcba9876543210",
                    "CallStatus": reason,
                    "To": phone_number,
                    "From": "+14155550100",
                    "Direction": "outbound-api",
                    "batch_call_id": batch_id,
                    "batch_call_recipient_id": "rcpt_2",
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
        termination_reason="Call ended: voicemail detected",
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
            termination_reason="Call ended: voicemail detected",
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
