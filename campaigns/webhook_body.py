"""Reading a signed ElevenLabs webhook body in bounded memory, whatever its size or framing.

Post-call audio events arrive chunked (no Content-Length) and carry the whole MP3 as one
base64 string, up to 100 MB. The body is streamed once: through the HMAC and a SHA-256,
into a spooled temporary file. Only when the signature matches is it parsed, and then
through a filter that copies the JSON but leaves out every very long string, so the event
we keep is small whatever the recording weighs.
"""

import hashlib
import hmac
import json
import re
import tempfile
import time
from dataclasses import dataclass

CHUNK = 64 * 1024
SPOOL_IN_MEMORY = 1024 * 1024
STRING_LIMIT = 64 * 1024  # longer strings (base64 audio) are replaced by ""
STRUCTURE_LIMIT = 16 * 1024 * 1024  # the event without its long strings
DEPTH_LIMIT = 200
# How far ahead of our clock a signature timestamp may be (clocks drift). ElevenLabs signs as
# it sends; a timestamp further ahead would keep a captured request replayable for longer.
CLOCK_SKEW_SECONDS = 5 * 60

_BRACKET_RUNS = re.compile(rb"[\[{]+|[\]}]+")
# A unix timestamp in ASCII digits (str.isdigit also takes "²" and "٣", which int() refuses,
# and a few thousand digits make int() raise).
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class SignatureError(Exception):
    pass


class BodyRefused(Exception):
    """A body we will not read; `status_code` is the HTTP status to answer with."""

    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass(frozen=True)
class VerifiedBody:
    event: object | None
    digest: str
    size: int
    dropped_strings: int
    problem: str


def _signature_parse(*, header: str, secret: str, tolerance: int, now: float | None) -> tuple[str, list[str]]:
    """The timestamp and the v0 signatures of the header, once the timestamp is within tolerance.

    `tolerance` is how old a signature may be; it may be ahead of our clock by at most
    CLOCK_SKEW_SECONDS.
    """
    if not secret:
        raise SignatureError("webhook secret is not configured")
    items = [item.strip().split("=", 1) for item in header.split(",") if "=" in item]
    timestamp = next((value for key, value in items if key == "t"), "")
    signatures = [value for key, value in items if key == "v0"]
    if not _TIMESTAMP.fullmatch(timestamp) or not signatures:
        raise SignatureError("missing or malformed ElevenLabs-Signature header")
    age = (time.time() if now is None else now) - int(timestamp)
    if age > tolerance:
        raise SignatureError("signature timestamp is outside the tolerance")
    if age < -CLOCK_SKEW_SECONDS:
        raise SignatureError("signature timestamp is in the future")
    return timestamp, signatures


def _signature_match(expected: str, signatures: list[str]) -> None:
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureError("signature does not match")


def signature_verify(*, body: bytes, header: str, secret: str, tolerance: int, now: float | None = None) -> None:
    """Check `t=<unix>,v0=<hex HMAC-SHA256(secret, "t.body")>`; raise SignatureError saying why not."""
    timestamp, signatures = _signature_parse(header=header, secret=secret, tolerance=tolerance, now=now)
    _signature_match(hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest(), signatures)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"


def _body_chunks(request, *, max_bytes: int):
    """The raw body in chunks of at most CHUNK bytes, from a Content-Length or a de-chunked stream."""
    meta = request.META
    length = meta.get("CONTENT_LENGTH") or ""
    if length:
        if not length.isdigit():
            raise BodyRefused(400, "The Content-Length header is not a number of bytes.")
        expected = int(length)
        if expected > max_bytes:
            raise BodyRefused(413, f"The body is larger than the {_megabytes(max_bytes)} this endpoint accepts.")
        # request.read, not request.body: the latter holds it all and applies DATA_UPLOAD_MAX_MEMORY_SIZE.
        read, remaining = request.read, expected
        while remaining:
            chunk = read(min(CHUNK, remaining))
            if not chunk:
                read_bytes = expected - remaining
                raise BodyRefused(
                    400, f"The body ended after {read_bytes} of the {expected} bytes its Content-Length announced."
                )
            remaining -= len(chunk)
            yield chunk
        return
    if meta.get("wsgi.input_terminated"):
        # The server (gunicorn) de-chunks the body and signals its end with an empty read.
        read, total = meta["wsgi.input"].read, 0
        while chunk := read(min(CHUNK, max_bytes + 1 - total)):  # one byte past the limit is enough to refuse
            total += len(chunk)
            if total > max_bytes:
                raise BodyRefused(413, f"The body is larger than the {_megabytes(max_bytes)} this endpoint accepts.")
            yield chunk
        return
    if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
        raise BodyRefused(
            411,
            "The body was sent chunked (no Content-Length) and this server cannot read chunked bodies; "
            "run it behind gunicorn, or send a Content-Length.",
        )


def _backslashes_before(chunk: bytes, end: int, start: int) -> int:
    count = end
    while count > start and chunk[count - 1] == 0x5C:
        count -= 1
    return end - count


class _LongStringFilter:
    """Copies JSON, replacing each string longer than STRING_LIMIT bytes (as written) by "".

    It only looks for quotes and counts the backslashes before them, so a long string is
    crossed with bytes.find; escapes are copied verbatim and UTF-8 passes through untouched.
    """

    def __init__(self):
        self.output = bytearray()
        self.dropped = 0
        self.problem = ""
        self._in_string = False
        self._escaped = False  # the next byte of the string is escaped (a backslash ended the last chunk)
        self._string = bytearray()
        self._string_size = 0
        self._depth = 0

    def feed(self, chunk: bytes) -> bool:
        """Take the next chunk; False once the output is refused (see `problem`)."""
        pos, size = 0, len(chunk)
        while pos < size and not self.problem:
            pos = self._string_feed(chunk, pos) if self._in_string else self._structure_feed(chunk, pos)
        return not self.problem

    def finish(self) -> bytearray:
        if self._in_string and self._string_size <= STRING_LIMIT:
            self.output += self._string  # unterminated: json.loads reports it
        return self.output

    def _structure_feed(self, chunk: bytes, pos: int) -> int:
        quote = chunk.find(b'"', pos)
        end = len(chunk) if quote == -1 else quote + 1
        for run in _BRACKET_RUNS.finditer(chunk, pos, end):
            opened = run.end() - run.start()
            self._depth += opened if run.group()[0] in b"[{" else -opened
            if self._depth > DEPTH_LIMIT:
                self.problem = f"The body nests deeper than {DEPTH_LIMIT} levels."
                return end
        self._append(chunk[pos:end])
        if quote != -1:
            self._in_string, self._escaped = True, False
            self._string.clear()
            self._string_size = 0
        return end

    def _string_feed(self, chunk: bytes, pos: int) -> int:
        search = pos
        while True:
            quote = chunk.find(b'"', search)
            end = len(chunk) if quote == -1 else quote
            run = _backslashes_before(chunk, end, pos)
            if run == end - pos and self._escaped:
                run -= 1  # the first byte here is escaped by the backslash that ended the last chunk
            if quote == -1:
                self._string_take(chunk, pos, end)
                self._escaped = run % 2 == 1
                return end
            if run % 2 == 0:
                break
            search = quote + 1  # an escaped quote belongs to the string
        self._string_take(chunk, pos, quote)
        if self._string_size > STRING_LIMIT:
            self.dropped += 1
        else:
            self._append(self._string)
        self._string.clear()
        self._in_string = False
        self._append(b'"')
        return quote + 1

    def _string_take(self, chunk: bytes, start: int, end: int) -> None:
        self._string_size += end - start
        if self._string_size <= STRING_LIMIT:
            self._string += chunk[start:end]
        elif self._string:
            self._string = bytearray()

    def _append(self, data) -> None:
        self.output += data
        if len(self.output) > STRUCTURE_LIMIT:
            self.problem = (
                f"The body is larger than {_megabytes(STRUCTURE_LIMIT)} even without its long strings; "
                "it is not an event we read."
            )


def _event_parse(stream) -> tuple[object | None, int, str]:
    """The event in `stream` without its long strings, how many were dropped, and the problem if any."""
    strings = _LongStringFilter()
    while (chunk := stream.read(CHUNK)) and strings.feed(chunk):
        pass
    if strings.problem:
        return None, strings.dropped, strings.problem
    try:
        event = json.loads(strings.finish())
    except (ValueError, RecursionError):
        return None, strings.dropped, "The body is not JSON."
    if event is None:
        return None, strings.dropped, "The body is JSON null, not an event."
    return event, strings.dropped, ""


def read_signed_body(request, *, secret: str, tolerance: int, max_bytes: int, now: float | None = None) -> VerifiedBody:
    """Read the body of a webhook request, verify its `ElevenLabs-Signature`, and parse it.

    Raises SignatureError (the header is checked before any byte is read, the HMAC once the
    last one is) or BodyRefused; a signed body that is not a readable event comes back with
    `event=None` and the reason in `problem`.
    """
    timestamp, signatures = _signature_parse(
        header=request.headers.get("ElevenLabs-Signature", ""), secret=secret, tolerance=tolerance, now=now
    )
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode(), hashlib.sha256)
    sha = hashlib.sha256()
    size = 0
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        try:
            for chunk in _body_chunks(request, max_bytes=max_bytes):
                mac.update(chunk)
                sha.update(chunk)
                spool.write(chunk)
                size += len(chunk)
        except BodyRefused:
            raise
        except Exception as exc:
            # The server's own reader fails in its own ways on a broken body (gunicorn raises
            # InvalidChunkSize, ChunkMissingTerminator, NoMoreData): all are the sender's fault.
            raise BodyRefused(400, "The body could not be read to its end.") from exc
        _signature_match(mac.hexdigest(), signatures)
        spool.seek(0)
        event, dropped, problem = _event_parse(spool)
    return VerifiedBody(event=event, digest=sha.hexdigest(), size=size, dropped_strings=dropped, problem=problem)
