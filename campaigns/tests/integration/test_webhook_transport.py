"""ElevenLabs' webhooks reach the receiver through the real web server (gunicorn), whether
they come chunked, as post-call audio does, or with a Content-Length, and whatever their size."""

import base64
import json
import time

import pytest
import requests

from sandbox.signing import HEADER, sign

SECRET = "integration-webhook-secret"  # the stack's ELEVENLABS_WEBHOOK_SECRET


@pytest.fixture
def web(stack):
    stack.web()
    return stack


def audio_event_body() -> bytes:
    """A post_call_audio event of about 3 MB: above Django's 2.5 MB in-memory limit."""
    audio = base64.b64encode(b"ID3\x04" + bytes(range(256)) * (9 * 1024 * 1024 // 4 // 256)).decode()
    event = {
        "type": "post_call_audio",
        "event_timestamp": int(time.time()),
        "data": {"agent_id": "agent_demo_reminders", "conversation_id": "conv_transport", "full_audio": audio},
    }
    return json.dumps(event).encode()


def in_pieces(body: bytes, size: int = 256 * 1024):
    """A generator body: requests sends it with Transfer-Encoding: chunked and no Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def post(web, data, signature: str) -> requests.Response:
    return requests.post(
        f"{web.url}/webhooks/elevenlabs",
        data=data,
        headers={HEADER: signature, "Content-Type": "application/json"},
        timeout=60,
    )


def test_a_chunked_3_mb_audio_event_signed_correctly_is_accepted(web):
    body = audio_event_body()
    assert len(body) > 3 * 1024 * 1024

    response = post(web, in_pieces(body), sign(body, SECRET, int(time.time())))

    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 200, response.text


def test_a_chunked_audio_event_with_a_wrong_signature_is_refused(web):
    body = audio_event_body()

    response = post(web, in_pieces(body), sign(body, "not-the-secret", int(time.time())))

    assert response.status_code == 401
    assert response.json() == {"error": "Refused: signature does not match."}


def test_a_3_mb_audio_event_with_a_content_length_is_accepted(web):
    body = audio_event_body()

    response = post(web, body, sign(body, SECRET, int(time.time())))

    assert response.request.headers["Content-Length"] == str(len(body))
    assert response.status_code == 200, response.text


def test_a_body_with_broken_chunk_framing_is_a_bad_request_not_a_server_error(web):
    import socket
    from urllib.parse import urlsplit

    address = urlsplit(web.url)
    signature = sign(b"{}", SECRET, int(time.time()))  # well formed and fresh: the body gets read
    request = (
        "POST /webhooks/elevenlabs HTTP/1.1\r\n"
        f"Host: {address.hostname}\r\n"
        f"{HEADER}: {signature}\r\n"
        "Content-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
        "not-a-chunk-size\r\n{}\r\n0\r\n\r\n"
    ).encode()
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk

    status_line = answer.split(b"\r\n", 1)[0].decode()
    assert status_line.split()[1] == "400", answer[:500]
