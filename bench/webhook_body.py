"""Benchmark: reading a 100 MB signed post_call_audio webhook that arrives chunked.

The body (a base64 recording) is written to a file first and served as the de-chunked
`wsgi.input` gunicorn would hand over, so the reader is measured, not the generator:
signature, SHA-256, spooling, and parsing with the audio left out. Four runs give the
growth of the process's resident peak (ru_maxrss, with the kernel's high-water mark reset
before each run) and, the first one left out as it warms the caches, the best time; one
more run under tracemalloc gives the peak of Python allocations.

    make bench
    .venv/bin/python bench/webhook_body.py --megabytes 100

Targets: peak Python allocation < 10 MB; well under 1 s per 10 MB.
"""

import argparse
import base64
import hashlib
import hmac
import itertools
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import common  # noqa: F401 - puts the project's packages on sys.path

MB = 1024 * 1024
SECRET = "bench-webhook-secret"


def body_write(path: Path, size: int) -> tuple[str, int]:
    """A post_call_audio event of exactly `size` bytes at `path`; its SHA-256 and the signing time."""
    head = (
        b'{"type": "post_call_audio", "event_timestamp": 1785000000, "data": {"agent_id": "agent_bench", '
        b'"conversation_id": "conv_bench", "full_audio": "'
    )
    tail = b'"}}'
    piece = base64.b64encode(os.urandom(3 * MB // 4))
    sha = hashlib.sha256()
    with path.open("wb") as out:
        for part in itertools.chain([head], _audio(piece, size - len(head) - len(tail)), [tail]):
            sha.update(part)
            out.write(part)
    return sha.hexdigest(), int(time.time())


def _audio(piece: bytes, size: int):
    while size > 0:
        yield piece[:size]
        size -= len(piece)


def header_sign(path: Path, timestamp: int) -> str:
    mac = hmac.new(SECRET.encode(), f"{timestamp}.".encode(), hashlib.sha256)
    with path.open("rb") as body:
        while chunk := body.read(MB):
            mac.update(chunk)
    return f"t={timestamp},v0={mac.hexdigest()}"


def request_chunked(header: str, stream):
    from django.core.handlers.wsgi import WSGIRequest
    from django.test import RequestFactory

    environ = RequestFactory()._base_environ(
        PATH_INFO="/webhooks/elevenlabs",
        REQUEST_METHOD="POST",
        CONTENT_TYPE="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
        HTTP_ELEVENLABS_SIGNATURE=header,
        **{"wsgi.input": stream, "wsgi.input_terminated": True},
    )
    return WSGIRequest(environ)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=100)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceable.settings")
    os.environ.setdefault("SECRET_KEY", "bench")
    import django

    django.setup()
    from campaigns.webhook_body import read_signed_body

    size = args.megabytes * MB
    workdir = Path(tempfile.mkdtemp(prefix="voiceable-bench-"))
    path = workdir / "post_call_audio.json"
    digest, timestamp = body_write(path, size)
    header = header_sign(path, timestamp)
    limits = {"secret": SECRET, "tolerance": 30 * 60, "max_bytes": size}

    def read_once():
        with path.open("rb") as stream:
            verified = read_signed_body(request_chunked(header, stream), **limits)
        assert verified.digest == digest and verified.size == size, "the body read is not the body sent"
        assert verified.dropped_strings == 1 and verified.event["data"]["full_audio"] == "", verified.problem
        return verified

    runs = []
    for _ in range(4):  # the first one, cold, counts for memory only
        Path("/proc/self/clear_refs").write_text("5")  # reset the resident high-water mark
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        read_once()
        elapsed = time.perf_counter() - started
        runs.append((elapsed, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024))
    tracemalloc.start()
    read_once()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    path.unlink()

    seconds = min(elapsed for elapsed, _ in runs[1:])
    per_10_mb = seconds / (size / (10 * MB))
    rss_growth = max(growth for _, growth in runs)
    ok = traced_peak < 10 * MB and per_10_mb < 1.0
    print(
        f"{args.megabytes} MB chunked audio event  {seconds:.2f} s ({per_10_mb:.3f} s per 10 MB, "
        f"{size / MB / seconds:.0f} MB/s)  peak Python allocation {traced_peak / MB:.1f} MB (< 10)  "
        f"ru_maxrss +{rss_growth:.1f} MB  {'ok' if ok else 'OVER TARGET'}\n"
        f"          (each run: {', '.join(f'{elapsed:.2f}' for elapsed, _ in runs)} s)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
