"""On SQLite (one writer for the whole database), a long upload never holds the write lock.

Real gunicorn on a SQLite file of its own, as `make run` and small deployments use it. One
user uploads a file that takes seconds to read and check; meanwhile another user's reads and
creates (each a write: the key's last use, the campaign) are answered at once. Before the
reader ran ahead of the transaction, they waited on the lock and answered 500 "database is
locked".
"""

import json
import os
import subprocess
import sys
import threading
import time

import pytest
import requests
from django.db import connection

from .conftest import ROOT, _answers, _free_port, wait_until

ACCOUNTS = """
import json
from campaigns import services
from campaigns.tests.factories import AgentFactory, PhoneNumberFactory, UserFactory
accounts = {}
for name in ("mallory", "alice"):
    user = UserFactory(username=name)
    accounts[name] = {
        "key": services.api_key_create(user=user).raw_key,
        "agent_id": AgentFactory(user=user).elevenlabs_agent_id,
        "phone_number_id": PhoneNumberFactory(user=user).pk,
    }
print(json.dumps(accounts))
"""


@pytest.fixture
def sqlite_web(tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("runs in the SQLite pass of the suite")
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DEBUG": "false",
        "SECRET_KEY": "sqlite-writes-test",
        "ALLOWED_HOSTS": "127.0.0.1",
        "CELERY_BROKER_URL": "memory://",
        "ELEVENLABS_SANDBOX": "false",
        "PYTHONUNBUFFERED": "1",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    made = subprocess.run(
        [*manage, "shell", "-c", ACCOUNTS], cwd=ROOT, env=env, check=True, capture_output=True, timeout=60
    )
    log = open(tmp_path / "web.log", "wb")  # noqa: SIM115 - closed below
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "voiceable.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "4", "--timeout", "120"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url), timeout=30, message="the web server answers")
        yield url, json.loads(made.stdout.decode().strip().splitlines()[-1]), tmp_path / "web.log"
    finally:
        web.terminate()
        web.wait(timeout=30)
        log.close()


def create(session, url, who, content: bytes, **fields) -> requests.Response:
    return session.post(
        f"{url}/api/v1/campaigns",
        headers={"X-API-Key": who["key"]},
        data={
            "name": "list",
            "agent_id": who["agent_id"],
            "phone_number_id": who["phone_number_id"],
            "send_immediately": "false",
            "schedule_date": "2099-01-01",
            "schedule_time": "10:00:00",
            **fields,
        },
        files={"recipients_file": ("list.csv", content)},
        timeout=120,
    )


def test_a_long_upload_never_makes_another_users_requests_wait_for_the_database(sqlite_web):
    url, accounts, log = sqlite_web
    mallory, alice = accounts["mallory"], accounts["alice"]
    # 199,999 national numbers that each need the full parse, all invalid: seconds of reading.
    slow = b"phone_number\n" + b"(000) 123-4567\n" * 199_999
    upload: dict = {}

    def send_slow() -> None:
        with requests.Session() as session:
            upload["response"] = create(session, url, mallory, slow, default_country="US")

    uploader = threading.Thread(target=send_slow)
    uploader.start()
    time.sleep(1)  # the file is on the server and being read
    timings = []
    with requests.Session() as session:
        for round_number in range(3):
            started = time.perf_counter()
            listing = session.get(f"{url}/api/v1/campaigns", headers={"X-API-Key": alice["key"]}, timeout=30)
            timings.append(("list", listing.status_code, time.perf_counter() - started))
            started = time.perf_counter()
            created = create(session, url, alice, f"phone_number\n+1415555{2671 + round_number}\n".encode())
            timings.append(("create", created.status_code, time.perf_counter() - started))
    # The neighbour was served while the long upload was still being read, not after it.
    still_reading = uploader.is_alive()
    uploader.join(timeout=120)

    assert still_reading, "the slow upload finished before the neighbour's requests: make it slower"
    assert [(kind, status) for kind, status, _ in timings] == [("list", 200), ("create", 201)] * 3
    assert max(seconds for _, _, seconds in timings) < 1, timings
    answer = upload["response"]
    assert answer.status_code == 422
    assert "199,999 invalid rows" in answer.json()["error"], answer.json()["error"]
    assert "database is locked" not in log.read_text(errors="replace")
