"""ElevenLabsClient.stream_conversation_audio: a call's recording, passed on as it arrives.

ElevenLabs (played by the responses library) answers `GET /v1/convai/conversations/{id}/audio`
with `audio/mpeg` bytes, or an error in its usual shapes.
"""

import pytest
import requests

from campaigns import elevenlabs

from .conftest import BASE

KEY = "xi-key"
MP3 = bytes((0xFF, 0xF3, 0x18, 0xC0)) + bytes(32)


def audio_url(conversation_id: str) -> str:
    return f"{BASE}/v1/convai/conversations/{conversation_id}/audio"


@pytest.fixture
def client():
    return elevenlabs.ElevenLabsClient(base_url=BASE, api_key=KEY, sleep=lambda seconds: None)


def test_the_recording_is_read_as_it_is_consumed_with_the_key_sent(client, http):
    body = MP3 * 4000
    http.get(audio_url("conv_a"), body=body, content_type="audio/mpeg", headers={"Content-Length": str(len(body))})

    stream = client.stream_conversation_audio("conv_a", chunk_size=50_000)

    assert (stream.content_type, stream.content_length) == ("audio/mpeg", len(body))
    chunks = list(stream.chunks)
    assert len(chunks) == 3 and b"".join(chunks) == body
    [call] = http.calls
    assert (call.request.headers["xi-api-key"], call.request.headers["Accept"]) == (KEY, "audio/mpeg")


def test_only_audio_is_handed_on(client, http):
    http.get(audio_url("conv_b"), body="<html>a login page</html>", content_type="text/html")

    with pytest.raises(elevenlabs.ElevenLabsBadResponse, match="text/html"):
        client.stream_conversation_audio("conv_b")


@pytest.mark.parametrize(
    "answer,error",
    [
        ({"status": 404, "json": {"detail": {"status": "not_found", "message": "no audio"}}}, "ElevenLabsNotFound"),
        (
            {"status": 422, "json": {"detail": [{"loc": ["path", "conversation_id"], "msg": "bad", "type": "x"}]}},
            "ElevenLabsValidationError",
        ),
        ({"status": 503, "body": "Service Unavailable"}, "ElevenLabsServerError"),
        ({"body": requests.exceptions.ReadTimeout("read timed out")}, "ElevenLabsTimeout"),
    ],
)
def test_errors_are_typed_and_not_retried(client, http, answer, error):
    http.get(audio_url("conv_c"), **answer)

    with pytest.raises(getattr(elevenlabs, error)):
        client.stream_conversation_audio("conv_c")
    assert len(http.calls) == 1  # a person is waiting: pressing play asks again


class BrokenBody:
    """A response whose connection drops after the first chunk."""

    closed = False

    def iter_content(self, chunk_size):
        yield b"first"
        raise requests.exceptions.ChunkedEncodingError("connection broken")

    def close(self):
        self.closed = True


def test_a_connection_dropped_mid_way_ends_the_stream_and_is_closed():
    response = BrokenBody()

    chunks = list(elevenlabs._body_chunks(response, 1024, what="/v1/convai/conversations/conv_d/audio"))

    assert chunks == [b"first"] and response.closed


def test_a_stream_given_up_half_way_is_closed(client, http):
    http.get(audio_url("conv_e"), body=MP3 * 100, content_type="audio/mpeg")
    stream = client.stream_conversation_audio("conv_e", chunk_size=36)

    next(stream.chunks)
    stream.chunks.close()  # the browser went away

    with pytest.raises(StopIteration):
        next(stream.chunks)
