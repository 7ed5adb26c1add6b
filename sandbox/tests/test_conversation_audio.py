"""GET /v1/convai/conversations/{conversation_id}/audio: the call's recording, `audio/mpeg`."""

import pytest

from sandbox import audio, services
from sandbox.models import SandboxRecipient

from .clients import CampaignClient, ElevenLabsClient

pytestmark = [pytest.mark.django_db]

CONVERSATIONS = "/v1/convai/conversations"
# MPEG-2 Layer III bit rates (kbit/s) and sample rates (Hz) by their index in the frame header.
BIT_RATES = (None, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
SAMPLE_RATES = (22_050, 24_000, 16_000)


def mp3_frames(body: bytes) -> list[tuple[int, int, int]]:
    """(bit rate, sample rate, channels) of each frame, reading the headers as a player does."""
    frames, at = [], 0
    while at < len(body):
        header = int.from_bytes(body[at : at + 4], "big")
        assert header >> 21 == 0x7FF, f"no frame sync at byte {at}"
        version, layer = (header >> 19) & 0b11, (header >> 17) & 0b11
        assert (version, layer) == (0b10, 0b01), "not MPEG-2 Layer III"
        bit_rate = BIT_RATES[(header >> 12) & 0b1111] * 1000
        sample_rate = SAMPLE_RATES[(header >> 10) & 0b11]
        padding = (header >> 9) & 1
        channels = 1 if (header >> 6) & 0b11 == 0b11 else 2
        frames.append((bit_rate, sample_rate, channels))
        at += 72 * bit_rate // sample_rate + padding
    assert at == len(body), "the last frame is cut short"
    return frames


def placed_call(api, clock, number: str, seconds: float = 60) -> str:
    created = api.submit(numbers=[number])
    clock.advance(seconds)
    return api.batch(created["id"])["recipients"][0]["conversation_id"]


def test_an_answered_call_has_an_mp3_as_long_as_the_call(api, clock):
    conversation_id = placed_call(api, clock, "+14155550120")
    conversation = api.get(f"{CONVERSATIONS}/{conversation_id}").json()

    response = api.get(f"{CONVERSATIONS}/{conversation_id}/audio")

    assert response.status_code == 200
    assert response["Content-Type"] == "audio/mpeg"
    assert conversation["has_audio"] is True
    frames = mp3_frames(response.content)
    assert set(frames) == {(8000, 16_000, 1)}
    seconds = len(frames) * 576 / 16_000
    assert seconds == pytest.approx(conversation["metadata"]["call_duration_secs"], abs=0.05)
    assert len(response.content) < 1200 * conversation["metadata"]["call_duration_secs"]  # about 1 KB a second


def test_a_voicemail_is_recorded_too(api, clock):
    response = api.get(f"{CONVERSATIONS}/{placed_call(api, clock, '+14155550128')}/audio")

    assert response.status_code == 200 and mp3_frames(response.content)


@pytest.mark.parametrize("number", ["+14155550126", "+14155550127"])  # busy, no answer
def test_a_call_that_never_connected_has_no_audio(api, clock, number):
    conversation_id = placed_call(api, clock, number)

    response = api.get(f"{CONVERSATIONS}/{conversation_id}/audio")

    assert api.get(f"{CONVERSATIONS}/{conversation_id}").json()["has_audio"] is False
    assert response.status_code == 404
    assert response.json() == {
        "detail": {"status": "not_found", "message": f"Conversation {conversation_id} has no audio"}
    }


def test_a_call_under_way_or_being_analysed_has_no_audio_yet(api, clock):
    created = api.submit(numbers=["+14155550120"])
    started = clock.now
    clock.now = started + 2.1
    conversation_id = api.batch(created["id"])["recipients"][0]["conversation_id"]

    answers = {}
    for offset in (2.1, 4.1, 6.1, 7.1):  # initiated, in progress, processing, done
        clock.now = started + offset
        answers[offset] = api.get(f"{CONVERSATIONS}/{conversation_id}/audio").status_code

    assert answers == {2.1: 404, 4.1: 404, 6.1: 404, 7.1: 200}


def test_an_unknown_conversation_is_not_found(api):
    response = api.get(f"{CONVERSATIONS}/conv_missing/audio")

    assert response.status_code == 404
    assert response.json() == {
        "detail": {"status": "conversation_not_found", "message": "Conversation conv_missing not found"}
    }


def test_a_call_not_yet_placed_has_no_audio(api, clock):
    created = api.submit(numbers=["+14155550120", "+14155550121"])
    pending = SandboxRecipient.objects.get(batch_id=created["id"], position=1)

    assert api.get(f"{CONVERSATIONS}/{services.conversation_id_for(pending)}/audio").status_code == 404


def test_an_outbound_campaign_call_has_its_recording(db, clock):
    api = CampaignClient()
    campaign_id = api.submit_campaign(["+14155550120"])["campaign"]["campaign_id"]
    clock.advance(60)
    (call,) = api.calls(campaign_id)["calls"]

    response = api.get(f"{CONVERSATIONS}/{call['conversation_id']}/audio")

    assert response.status_code == 200 and response["Content-Type"] == "audio/mpeg"
    assert mp3_frames(response.content)


def test_the_audio_needs_the_key_and_honours_injected_faults(api, clock, settings):
    conversation_id = placed_call(api, clock, "+14155550120")
    settings.SANDBOX_FAULTS = "conversation_audio=503:1"

    wrong_key = ElevenLabsClient(api_key="wrong").get(f"{CONVERSATIONS}/{conversation_id}/audio")
    faulted = api.get(f"{CONVERSATIONS}/{conversation_id}/audio")
    then = api.get(f"{CONVERSATIONS}/{conversation_id}/audio")

    assert wrong_key.status_code == 401
    assert wrong_key.json() == {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}
    assert (faulted.status_code, faulted.content) == (503, b"Service Unavailable")
    assert then.status_code == 200
    assert api.post(f"{CONVERSATIONS}/{conversation_id}/audio").status_code == 405


def test_a_recording_is_one_frame_at_least_and_ten_minutes_at_most():
    assert len(audio.silent_mp3(0)) == 36
    assert len(audio.silent_mp3(10_000)) == len(audio.silent_mp3(audio.MAX_SECONDS))
    assert len(audio.silent_mp3(audio.MAX_SECONDS)) < 700_000
