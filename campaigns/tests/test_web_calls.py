"""One recipient's call on the staff pages: /campaigns/{id}/recipients/{id} (outcome, transcript,
data collected, the player) and its recording, passed on from ElevenLabs by this service.

ElevenLabs is played by the responses library, answering as its API reference documents:
`GET /v1/convai/conversations/{id}` with a GetConversationResponseModel, and
`GET /v1/convai/conversations/{id}/audio` with `audio/mpeg` bytes.
"""

import pytest
import requests

from campaigns.models import Campaign

from .conftest import BASE
from .factories import CallFactory, CampaignFactory, RecipientFactory, UserFactory
from .test_api_conversations import STARTED, STORED_TRANSCRIPT, conversation_url, remote_conversation
from .test_web_pages import text_of

pytestmark = pytest.mark.django_db

KEY = "xi-key-never-shown-7d1c"
# A few MPEG frames' worth of bytes: the proxy passes on whatever audio ElevenLabs sends.
MP3 = bytes((0xFF, 0xF3, 0x18, 0xC0)) + bytes(32)


@pytest.fixture(autouse=True)
def elevenlabs_settings(settings):
    settings.ELEVENLABS_BASE_URL = BASE
    settings.ELEVENLABS_API_KEY = KEY
    return settings


@pytest.fixture
def campaign(user, agent):
    return CampaignFactory(user=user, agent=agent, status=Campaign.Status.COMPLETED, timezone="Europe/Berlin")


@pytest.fixture
def answered(campaign):
    """A recipient whose call was answered and whose post-call webhook was recorded."""
    recipient = RecipientFactory(
        campaign=campaign, line=2, phone_number="+12125550100", status="completed", call_result="answered",
        call_successful="success", conversation_id="conv_answered", summary="Confirmed Tuesday at 10.",
    )  # fmt: skip
    CallFactory(
        recipient=recipient, attempt=1, conversation_id="conv_answered", status="completed", call_result="answered",
        call_successful="success", summary="Confirmed Tuesday at 10.", transcript=STORED_TRANSCRIPT,
        duration_secs=42, started_at=STARTED,
        data_collection={"appointment_confirmed": {"value": True, "rationale": "She said Tuesday works."}},
    )  # fmt: skip
    return recipient


def page_url(recipient) -> str:
    return f"/campaigns/{recipient.campaign_id}/recipients/{recipient.pk}"


def recording_url(recipient, call=None) -> str:
    call = call or recipient.calls.get()
    return f"{page_url(recipient)}/calls/{call.pk}/recording.mp3"


def audio_url(conversation_id: str) -> str:
    return f"{conversation_url(conversation_id)}/audio"


# --- The call page ------------------------------------------------------------------------------


def test_the_call_page_shows_the_outcome_the_transcript_the_data_and_the_player(staff, answered, http):
    response = staff.get(page_url(answered))

    assert response.status_code == 200
    text = text_of(response)
    assert "Call to +12125550100 Answered, successful" in text
    assert "Outcome Answered, successful Calls 1 Started Tue 4 Mar 2025, 15:30:00 UTC Duration 0:42" in text
    assert "Summary Confirmed Tuesday at 10." in text
    assert "Agent 0:00 Hi, this is Dana from Acme. Is now a good time?" in text
    assert "+12125550100 0:04 Sure, go ahead." in text
    assert "Data collected appointment_confirmed Yes She said Tuesday works." in text
    html = response.content.decode()
    call = answered.calls.get()
    assert f'<audio class="recording" controls preload="none" src="{recording_url(answered, call)}"' in html
    assert 'href="https://elevenlabs.io/app/conversational-ai/history/conv_answered"' in html
    assert KEY not in html
    assert not http.calls  # everything came from what the webhook stored


def test_transcript_text_is_escaped(staff, campaign, http):
    recipient = RecipientFactory(campaign=campaign, status="completed", conversation_id="conv_x")
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    CallFactory(
        recipient=recipient, conversation_id="conv_x", status="completed", duration_secs=3,
        transcript=[{"role": "user", "message": hostile, "time_in_call_secs": 1}], summary="<b>bold</b>",
    )  # fmt: skip

    html = staff.get(page_url(recipient)).content.decode()

    assert "<script>alert" not in html and "<img src=x" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


def test_a_transcript_not_stored_yet_is_read_from_elevenlabs(staff, campaign, http):
    recipient = RecipientFactory(campaign=campaign, status="completed", conversation_id="conv_polled")
    CallFactory(recipient=recipient, conversation_id="conv_polled", status="completed")
    http.get(conversation_url("conv_polled"), json=remote_conversation("conv_polled"))

    text = text_of(staff.get(page_url(recipient)))

    assert "Read from ElevenLabs just now" in text
    assert "Agent 0:00 Hello Ada, calling about your appointment." in text
    assert "(used a tool)" in text  # a turn that only called a tool
    assert "Duration 0:37" in text and "Summary Confirmed the appointment." in text
    [call] = http.calls
    assert call.request.headers["xi-api-key"] == KEY


def test_elevenlabs_failing_leaves_the_transcript_out_with_a_message(staff, campaign, http):
    recipient = RecipientFactory(campaign=campaign, status="completed", conversation_id="conv_polled")
    CallFactory(recipient=recipient, conversation_id="conv_polled", status="completed")
    http.get(conversation_url("conv_polled"), status=503, body="Service Unavailable")

    response = staff.get(page_url(recipient))

    assert response.status_code == 200
    assert "The transcript could not be read from ElevenLabs just now" in text_of(response)


def test_a_call_that_did_not_connect_offers_no_player_and_asks_elevenlabs_nothing(staff, campaign, http):
    recipient = RecipientFactory(
        campaign=campaign, status="failed", failure_reason="busy", call_result="busy", conversation_id="conv_busy"
    )
    CallFactory(recipient=recipient, conversation_id="conv_busy", status="failed", failure_reason="busy",
                provider="twilio", provider_status="busy", provider_code="486")  # fmt: skip

    response = staff.get(page_url(recipient))

    text = text_of(response)
    assert "Call to " in text and "Outcome Busy (busy; twilio busy 486)" in text
    assert "No recording: the call did not connect." in text
    assert "<audio" not in response.content.decode()
    assert not http.calls


def test_a_recipient_not_called_yet_has_a_page_too(staff, campaign, http):
    recipient = RecipientFactory(campaign=campaign)

    text = text_of(staff.get(page_url(recipient)))

    assert "Not called yet" in text and "No call has been placed to this number yet." in text
    assert not http.calls


def test_every_attempt_can_be_shown(staff, answered, http):
    answered.attempt = 2
    answered.save()
    first = CallFactory(recipient=answered, attempt=1, conversation_id="conv_first", status="failed",
                        call_result="no_answer", failure_reason="no-answer")  # fmt: skip
    answered.calls.filter(conversation_id="conv_answered").update(attempt=2)

    latest = text_of(staff.get(page_url(answered)))
    earlier = staff.get(f"{page_url(answered)}?attempt=1")

    assert "Call 1: No answer" in latest and "Call 2: Answered, successful" in latest
    assert "Sure, go ahead." in latest
    assert "Call to +12125550100 No answer" in text_of(earlier)
    assert f"/calls/{first.pk}/recording.mp3" not in earlier.content.decode()  # it never connected
    assert staff.get(f"{page_url(answered)}?attempt=7").status_code == 404
    assert staff.get(f"{page_url(answered)}?attempt=x").status_code == 404


def test_another_users_call_page_is_not_found(staff, other_user, campaign, http):
    theirs = RecipientFactory(campaign=CampaignFactory(user=other_user), status="completed", conversation_id="conv_t")
    CallFactory(recipient=theirs, conversation_id="conv_t", transcript=STORED_TRANSCRIPT, duration_secs=4)

    assert staff.get(page_url(theirs)).status_code == 404
    # Nor through a campaign of mine.
    assert staff.get(f"/campaigns/{campaign.pk}/recipients/{theirs.pk}").status_code == 404
    assert not http.calls


def test_each_row_of_the_campaign_page_links_to_its_call(staff, answered):
    html = staff.get(f"/campaigns/{answered.campaign_id}").content.decode()

    assert f'<a href="{page_url(answered)}" title="See the call to +12125550100">' in html


# --- The recording --------------------------------------------------------------------------------


def test_the_recording_is_streamed_from_elevenlabs_with_the_key_kept_here(staff, answered, http):
    body = MP3 * 5000  # 180 KB: several chunks
    http.get(
        audio_url("conv_answered"), body=body, content_type="audio/mpeg", headers={"Content-Length": str(len(body))}
    )

    response = staff.get(recording_url(answered))

    assert response.status_code == 200
    assert response.streaming
    chunks = list(response.streaming_content)
    assert b"".join(chunks) == body and len(chunks) > 1  # passed on as it arrives, not read whole first
    assert response["Content-Type"] == "audio/mpeg"
    assert response["Content-Length"] == str(len(body))
    assert "no-store" in response["Cache-Control"]
    [upstream] = http.calls
    assert upstream.request.headers["xi-api-key"] == KEY
    assert upstream.request.headers["Accept"] == "audio/mpeg"
    assert KEY not in str(response.headers) and KEY.encode() not in body


def test_elevenlabs_without_a_recording_is_our_clear_404(staff, answered, http):
    http.get(
        audio_url("conv_answered"), status=404,
        json={"detail": {"status": "not_found", "message": "Conversation conv_answered has no audio"}},
    )  # fmt: skip

    response = staff.get(recording_url(answered))

    assert response.status_code == 404
    text = text_of(response)
    assert "No recording ElevenLabs has no recording of this call." in text
    assert KEY not in response.content.decode()


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 503, "body": "Service Unavailable"},
        {"status": 500, "json": {"detail": {"status": "internal_error", "message": "Try later"}}},
        {"body": requests.exceptions.ReadTimeout("read timed out")},
        {"body": requests.exceptions.ConnectionError("connection refused")},
        {"status": 200, "body": "<html>login</html>", "content_type": "text/html"},  # never served from here
    ],
)
def test_elevenlabs_failing_is_a_502_page(staff, answered, http, answer):
    http.get(audio_url("conv_answered"), **answer)

    response = staff.get(recording_url(answered))

    assert response.status_code == 502
    assert response["Content-Type"].startswith("text/html")
    assert "The recording could not be fetched" in text_of(response)
    assert "<html>login" not in response.content.decode() and KEY not in response.content.decode()
    assert len(http.calls) == 1  # a person is waiting: asked once, not retried


def test_another_users_recording_is_not_found_and_elevenlabs_is_not_asked(staff, other_user, answered, http):
    theirs = RecipientFactory(campaign=CampaignFactory(user=other_user), status="completed", conversation_id="conv_t")
    call = CallFactory(recipient=theirs, conversation_id="conv_t")
    another = RecipientFactory(campaign=answered.campaign)

    urls = [
        f"/campaigns/{theirs.campaign_id}/recipients/{theirs.pk}/calls/{call.pk}/recording.mp3",
        # their call through my campaign, and my call through another of my recipients
        f"/campaigns/{answered.campaign_id}/recipients/{theirs.pk}/calls/{call.pk}/recording.mp3",
        f"/campaigns/{answered.campaign_id}/recipients/{another.pk}/calls/{answered.calls.get().pk}/recording.mp3",
    ]

    assert [staff.get(url).status_code for url in urls] == [404, 404, 404]
    assert not http.calls


def test_the_recording_is_for_signed_in_staff_only(client, answered, http):
    url = recording_url(answered)

    assert client.get(url).status_code == 302  # to the sign-in page
    client.force_login(UserFactory(username="not-staff", is_staff=False))
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 405
    assert not http.calls
