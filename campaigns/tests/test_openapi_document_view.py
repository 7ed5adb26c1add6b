"""The OpenAPI document answers every request, including the first ones a fresh process gets
all at once (a threaded gunicorn, as deployed)."""

import concurrent.futures
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_fresh_threaded_server_answers_concurrent_first_requests_for_the_document(tmp_path):
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "document-view-test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "memory://",
    }
    # drf-spectacular's first build in a process was not safe in two threads: each round is a
    # new process, whose first eight requests arrive together.
    for _ in range(3):
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "voiceable.wsgi", "--bind", f"127.0.0.1:{port}",
             "--workers", "1", "--threads", "8", "--preload"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not _listening(port):
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read()
                time.sleep(0.05)
            url = f"http://127.0.0.1:{port}/api/v1/openapi.json"
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda one: requests.get(one, timeout=60), [url] * 8))
            assert [answer.status_code for answer in answers] == [200] * 8
            assert len({answer.content for answer in answers}) == 1
        finally:
            server.terminate()
            server.wait(timeout=30)
