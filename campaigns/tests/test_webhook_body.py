"""Reading signed webhook bodies: any size up to the limit, with or without a Content-Length,
in bounded memory, and with the long strings (base64 audio) left out of the parsed event."""

import base64
import hashlib
import io
import json
import random
import time
import tracemalloc

import pytest
from django.test import RequestFactory

from campaigns import webhook_body
from campaigns.webhook_body import (
    CLOCK_SKEW_SECONDS,
    STRING_LIMIT,
    STRUCTURE_LIMIT,
    BodyRefused,
    SignatureError,
    read_signed_body,
)
from sandbox.signing import HEADER, sign

URL = "/webhooks/elevenlabs"
SECRET = "whsec_test_secret"
MB = 1024 * 1024
LIMITS = {"secret": SECRET, "tolerance": 30 * 60, "max_bytes": 100 * MB}
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.ELEVENLABS_WEBHOOK_SECRET = SECRET
    settings.ELEVENLABS_WEBHOOK_TOLERANCE_SECONDS = 30 * 60
    settings.ELEVENLABS_WEBHOOK_MAX_BYTES = 100 * MB
    return settings


def signature(body: bytes, *, secret: str = SECRET, age: int = 0) -> str:
    return sign(body, secret, int(time.time()) - age)


def audio_event(audio_bytes: int) -> bytes:
    """A post_call_audio event whose base64 MP3 decodes to `audio_bytes` bytes."""
    audio = base64.b64encode(b"ID3\x04" + bytes(range(256)) * (audio_bytes // 256)).decode()
    event = {
        "type": "post_call_audio",
        "event_timestamp": 1785000000,
        "data": {"agent_id": "agent_abc123", "conversation_id": "conv_100", "full_audio": audio},
    }
    return json.dumps(event).encode()


def with_length(body: bytes, header: str | None) -> dict:
    """The WSGI environ of a POST with a Content-Length."""
    headers = {HEADER: header} if header is not None else {}
    return {
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        "wsgi.input": io.BytesIO(body),
        **{f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()},
    }


def chunked(body: bytes, header: str | None, *, terminated: bool = True) -> dict:
    """The environ gunicorn builds for a chunked POST: de-chunked input, no Content-Length."""
    environ = {"CONTENT_TYPE": "application/json", "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(body)}
    if terminated:
        environ["wsgi.input_terminated"] = True
    if header is not None:
        environ["HTTP_ELEVENLABS_SIGNATURE"] = header
    return environ


def request(environ: dict):
    return RequestFactory().generic("POST", URL, **environ)


def read(environ: dict, **limits):
    return read_signed_body(request(environ), **{**LIMITS, **limits})


# --- Accepted bodies ----------------------------------------------------------------------


@pytest.mark.parametrize("framing", [with_length, chunked])
def test_a_signed_event_is_parsed_and_identified_by_the_sha256_of_its_body(framing):
    body = json.dumps({"type": "post_call_transcription", "data": {"conversation_id": "conv_1"}}).encode()

    verified = read(framing(body, signature(body)))

    assert verified.event == {"type": "post_call_transcription", "data": {"conversation_id": "conv_1"}}
    assert (verified.digest, verified.size) == (hashlib.sha256(body).hexdigest(), len(body))
    assert (verified.dropped_strings, verified.problem) == (0, "")


@pytest.mark.parametrize("framing", [with_length, chunked])
@pytest.mark.parametrize("megabytes", [3, 30])
def test_a_large_audio_event_is_accepted_with_its_audio_left_out(client, framing, megabytes):
    body = audio_event(megabytes * MB)

    verified = read(framing(body, signature(body)))
    response = client.generic("POST", URL, **framing(body, signature(body)))

    assert verified.event == {
        "type": "post_call_audio",
        "event_timestamp": 1785000000,
        "data": {"agent_id": "agent_abc123", "conversation_id": "conv_100", "full_audio": ""},
    }
    assert (verified.digest, verified.size, verified.dropped_strings) == (
        hashlib.sha256(body).hexdigest(),
        len(body),
        1,
    )
    assert response.status_code == 200


def test_a_body_of_exactly_the_limit_is_read():
    body = audio_event(MB)

    verified = read(chunked(body, signature(body)), max_bytes=len(body))

    assert verified.size == len(body)
    assert verified.event["data"]["full_audio"] == ""


def test_any_of_several_signatures_may_match():
    body = b'{"type": "post_call_transcription"}'
    timestamp = int(time.time())
    good = sign(body, SECRET, timestamp).split("v0=")[1]
    header = f"t={timestamp},v0={'0' * 64},v0={good}"

    assert read(chunked(body, header)).event == {"type": "post_call_transcription"}


def test_strings_up_to_the_limit_are_kept_and_longer_ones_dropped_wherever_they_are():
    kept, dropped = "k" * STRING_LIMIT, "d" * (STRING_LIMIT + 1)
    event = {"kept": kept, "list": [dropped, "short", {dropped: 1}], "é €😀": "é €😀"}
    body = json.dumps(event, ensure_ascii=False).encode()

    verified = read(chunked(body, signature(body)))

    assert verified.event == {"kept": kept, "list": ["", "short", {"": 1}], "é €😀": "é €😀"}
    assert verified.dropped_strings == 2


def test_a_string_is_measured_as_written_so_escapes_count():
    # Each "\\u00e9" is 6 bytes in the body for 1 character.
    body = json.dumps({"name": "é" * (STRING_LIMIT // 6 + 1)}).encode()

    verified = read(chunked(body, signature(body)))

    assert (verified.event, verified.dropped_strings) == ({"name": ""}, 1)


@pytest.mark.parametrize("escape", [b"\\\\", b'\\"', b"\\/", b"\\u00e9", b"\\n"])
@pytest.mark.parametrize("shift", [-3, -2, -1, 0, 1, 2])
def test_an_escape_cut_by_a_64_kib_read_is_still_one_escape(escape, shift):
    # The escape starts `shift` bytes away from the end of the first 64 KiB read, inside a
    # string long enough to be dropped: misreading the escape would end it somewhere else.
    prefix = b'{"audio": "'
    padding = webhook_body.CHUNK + shift - len(prefix) - 1
    text = b"a" * padding + escape + b"b" * 100
    body = prefix + text + b'", "after": "x\\"y"}'

    verified = read(chunked(body, signature(body)))

    assert (verified.event, verified.dropped_strings) == ({"audio": "", "after": 'x"y'}, 1)


def test_a_long_string_ending_in_escaped_backslashes_at_a_read_boundary_ends_where_json_says():
    # The long string's last bytes are `\\` split by the read boundary, then its closing quote.
    prefix = b'{"audio": "'
    text = b"A" * (webhook_body.CHUNK * 2 - len(prefix) - 1) + b"\\\\"
    body = prefix + text + b'", "type": "post_call_audio"}'

    verified = read(chunked(body, signature(body)))

    assert verified.event == {"audio": "", "type": "post_call_audio"}


# --- The same event as json.loads, whatever the chunk boundaries --------------------------

ALPHABET = ['"', "\\", "/", "\n", "\t", "\x01", "\x7f", "é", "€", "😀", "a", " ", "[", "]", "{", "}", ",", ":"]


def random_json(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -7, 12345678901234567890, 3.5, -1e-9])
    if kind in (2, 3, 4):
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(12)))
    if kind in (5, 6):
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {random_json(rng, 4) if rng.random() < 0.9 else "": random_json(rng, depth + 1) for _ in range(4)}


def without_long_strings(value, limit: int, ensure_ascii: bool):
    def long(text: str) -> bool:
        return len(json.dumps(text, ensure_ascii=ensure_ascii).encode()) - 2 > limit

    if isinstance(value, str):
        return "" if long(value) else value
    if isinstance(value, list):
        return [without_long_strings(item, limit, ensure_ascii) for item in value]
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            result["" if long(key) else key] = without_long_strings(item, limit, ensure_ascii)
        return result
    return value


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_random_json_is_read_as_json_loads_reads_it_whatever_the_chunk_size(monkeypatch, chunk):
    rng = random.Random(20250101 + chunk)
    monkeypatch.setattr(webhook_body, "CHUNK", chunk)
    for _ in range(300):
        value = random_json(rng)
        body = json.dumps(value, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 1])).encode()

        verified = read(chunked(body, signature(body)))

        assert (verified.event, verified.dropped_strings) == (json.loads(body), 0), body


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_random_json_loses_exactly_its_long_strings_whatever_the_chunk_size(monkeypatch, chunk):
    rng = random.Random(20250202 + chunk)
    monkeypatch.setattr(webhook_body, "CHUNK", chunk)
    monkeypatch.setattr(webhook_body, "STRING_LIMIT", 6)
    for _ in range(300):
        value = {"type": "post_call_audio", "data": random_json(rng)}
        ensure_ascii = rng.random() < 0.5
        body = json.dumps(value, ensure_ascii=ensure_ascii).encode()

        verified = read(chunked(body, signature(body)))

        assert verified.event == without_long_strings(json.loads(body), 6, ensure_ascii), body


# --- Refused signatures: 401, before the body is read when the header alone says so -------


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing or malformed"),
        ("v0=abc", "missing or malformed"),
        # Read the clock when the test runs, not when it is collected minutes earlier.
        (lambda: f"t={int(time.time()) - 31 * 60},v0={'0' * 64}", "outside the tolerance"),
        (lambda: f"t={int(time.time()) + CLOCK_SKEW_SECONDS + 60},v0={'0' * 64}", "in the future"),
        (f"t=17850000\u00b2,v0={'0' * 64}", "missing or malformed"),
        (f"t=\u0661\u0667\u0668\u0665,v0={'0' * 64}", "missing or malformed"),
        (f"t={'9' * 5000},v0={'0' * 64}", "missing or malformed"),
        (f"t=-{int(time.time())},v0={'0' * 64}", "missing or malformed"),
    ],
    ids=["missing", "malformed", "stale", "future", "superscript-digit", "arabic-digits", "5000-digits", "negative"],
)
def test_a_header_that_cannot_match_is_refused_before_the_body_is_read(header, reason):
    environ = chunked(audio_event(MB), header() if callable(header) else header)

    with pytest.raises(SignatureError, match=reason):
        read(environ)

    assert environ["wsgi.input"].tell() == 0


def test_nothing_is_read_while_no_secret_is_configured():
    body = b"{}"
    environ = chunked(body, sign(body, "", int(time.time())))

    with pytest.raises(SignatureError, match="not configured"):
        read(environ, secret="")

    assert environ["wsgi.input"].tell() == 0


@pytest.mark.parametrize("framing", [with_length, chunked])
def test_a_wrong_signature_or_an_altered_body_is_refused_with_401(client, framing):
    body = audio_event(3 * MB)
    altered = body.replace(b"conv_100", b"conv_999")

    responses = [
        client.generic("POST", URL, **framing(body, signature(body, secret="another-secret"))),
        client.generic("POST", URL, **framing(altered, signature(body))),
    ]

    assert [r.status_code for r in responses] == [401, 401]
    assert responses[0].json() == {"error": "Refused: signature does not match."}


@pytest.mark.parametrize(
    ("ahead", "status"),
    [
        (0, 200),
        (CLOCK_SKEW_SECONDS - 10, 200),
        (CLOCK_SKEW_SECONDS + 10, 401),
        (29 * 60, 401),
        (10 * 365 * 24 * 60 * 60, 401),
    ],
    ids=["now", "within-the-skew", "just-past-the-skew", "within-the-age-tolerance", "ten-years"],
)
def test_a_signature_dated_further_ahead_than_the_clock_skew_is_refused_like_a_stale_one(client, ahead, status):
    # Five minutes ahead at most (CLOCK_SKEW_SECONDS), whatever the tolerance for old signatures.
    body = json.dumps({"type": "post_call_audio", "data": {"conversation_id": "conv_1"}}).encode()

    response = client.generic("POST", URL, **with_length(body, signature(body, age=-ahead)))

    assert response.status_code == status
    if status == 401:
        assert response.json() == {"error": "Refused: signature timestamp is in the future."}


def test_the_clock_skew_allowed_is_five_minutes():
    assert CLOCK_SKEW_SECONDS == 5 * 60


@pytest.mark.parametrize("timestamp", ["1785000000\u00b2", "9" * 5000, "\u0661\u0667"])
def test_a_timestamp_int_cannot_read_is_a_401_not_a_server_error(client, timestamp):
    body = b"{}"

    response = client.generic("POST", URL, **with_length(body, f"t={timestamp},v0={'0' * 64}"))

    assert response.status_code == 401


# --- Refused bodies: 411, 413, 400 --------------------------------------------------------


def test_a_content_length_above_the_limit_is_refused_with_413_before_reading(client, settings):
    settings.ELEVENLABS_WEBHOOK_MAX_BYTES = MB
    body = audio_event(2 * MB)
    environ = with_length(body, signature(body))

    response = client.generic("POST", URL, **environ)

    assert response.status_code == 413
    assert response.json() == {"error": "The body is larger than the 1 MB this endpoint accepts."}
    assert environ["wsgi.input"].tell() == 0


def test_a_chunked_body_above_the_limit_is_refused_with_413_as_soon_as_it_passes_it(client, settings):
    settings.ELEVENLABS_WEBHOOK_MAX_BYTES = MB
    body = audio_event(20 * MB)
    environ = chunked(body, signature(body))

    response = client.generic("POST", URL, **environ)

    assert response.status_code == 413
    assert "larger than the 1 MB" in response.json()["error"]
    assert environ["wsgi.input"].tell() == MB + 1


def test_a_chunked_body_the_server_cannot_de_chunk_is_refused_with_411_saying_what_to_do(client):
    body = audio_event(MB)

    response = client.generic("POST", URL, **chunked(body, signature(body), terminated=False))

    assert response.status_code == 411
    assert "cannot read chunked bodies; run it behind gunicorn" in response.json()["error"]


def test_a_body_shorter_than_its_content_length_is_a_bad_request_not_a_bad_signature():
    body = b'{"type": "post_call_audio"}'
    environ = {**with_length(body, signature(body)), "CONTENT_LENGTH": str(len(body) + 10)}

    with pytest.raises(BodyRefused) as refused:
        read(environ)

    assert refused.value.status_code == 400
    announced = len(body) + 10
    assert (
        refused.value.message
        == f"The body ended after {len(body)} of the {announced} bytes its Content-Length announced."
    )


def test_a_signed_body_that_is_not_json_is_a_bad_request(client):
    body = b"this is not json"

    response = client.generic("POST", URL, **chunked(body, signature(body)))

    assert response.status_code == 400
    assert response.json() == {"error": "The body is not JSON."}


@pytest.mark.parametrize("framing", [with_length, chunked])
def test_a_signed_body_nested_200000_deep_is_a_bad_request_not_a_server_error(client, framing):
    body = b"[" * 200_000 + b"]" * 200_000

    response = client.generic("POST", URL, **framing(body, signature(body)))

    assert response.status_code == 400
    assert response.json() == {"error": "The body nests deeper than 200 levels."}


def test_nesting_up_to_200_levels_is_read():
    body = b"[" * 200 + b"]" * 200

    assert read(chunked(body, signature(body))).problem == ""


def test_a_structure_too_big_even_without_its_long_strings_is_not_parsed():
    body = b"[" + b"0," * (STRUCTURE_LIMIT // 2) + b"0]"

    verified = read(chunked(body, signature(body)))

    assert verified.event is None
    assert verified.problem.startswith("The body is larger than 16 MB even without its long strings")
    assert verified.digest == hashlib.sha256(body).hexdigest()


# --- Memory -------------------------------------------------------------------------------


def test_reading_a_30_mb_audio_event_allocates_less_than_8_mb():
    body = audio_event(30 * MB)
    environ = chunked(body, signature(body))
    factory_request = request(environ)

    tracemalloc.start()
    try:
        verified = read_signed_body(factory_request, **LIMITS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert verified.size == len(body) > 40 * MB
    assert peak < 8 * MB, f"peak Python allocation {peak / MB:.1f} MB"
