"""Outages degrade the service, they do not break it. A Redis (broker and rate-limit cache)
and a PostgreSQL of the test's own are stopped and restarted under real gunicorn, Celery
worker and beat:

- Redis down: the API still answers, reads and creates alike; rate limiting is off.
- PostgreSQL down: the API answers 503 in its error envelope, never a 500 page.
- PostgreSQL restarted: no request fails on the connections the restart left stale.
- After both: every campaign the API accepted is called exactly once, and the webhook
  received before the outages is recorded.

The private database is read here with plain SQL: the test's own Django connection is on
the shared test database.
"""

import io
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg
import pytest
import requests

from campaigns.models import Campaign, CampaignBatch, Recipient, WebhookEvent
from sandbox.models import SandboxBatch, SandboxRecipient
from sandbox.signing import HEADER, sign

from .conftest import ROOT, wait_until

OUTAGE_SECONDS = 10
NUMBERS = ["+12125550100", "+12125550108", "+14155550123"]
SUMMARY = "Posted before the outages."
# Enough requests at once to reach every thread of both gunicorn workers (2 x 8).
BURST = 48


@pytest.fixture
def running(private_stack):
    private_stack.env.update(
        {
            # A campaign whose queue message was lost while Redis was down is swept 3 s after
            # its creation; a submit cut short by PostgreSQL's outage is settled 6 s after it
            # started, once no request to ElevenLabs can still be in flight (1 s + 4 s).
            "DISPATCH_LOST_AFTER_SECONDS": "3",
            "DISPATCH_STALE_AFTER_SECONDS": "6",
            "ELEVENLABS_CONNECT_TIMEOUT": "1",
            "ELEVENLABS_READ_TIMEOUT": "4",
            # The sandbox sends no webhooks: the one this test posts is the only one.
            "SANDBOX_WEBHOOK_URL": "",
        }
    )
    private_stack.web()
    private_stack.worker()
    private_stack.beat()
    return private_stack


@dataclass
class Answer:
    phase: str
    request: str
    status: int
    seconds: float
    headers: dict
    body: dict | None


@dataclass
class Api:
    """The API as a client sees it, every answer kept with the phase it came in."""

    url: str
    key: str
    agent_id: str
    phone_number_id: int
    phase: str = "before"
    answers: list[Answer] = field(default_factory=list)

    def _call(self, method: str, path: str, **kwargs) -> Answer:
        started = time.monotonic()
        response = requests.request(method, f"{self.url}{path}", headers={"X-API-Key": self.key}, timeout=30, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = None
        seconds = time.monotonic() - started
        answer = Answer(self.phase, f"{method} {path}", response.status_code, seconds, response.headers, body)
        self.answers.append(answer)
        return answer

    def campaigns(self) -> Answer:
        return self._call("GET", "/api/v1/campaigns")

    def campaign(self, campaign_id: int) -> Answer:
        return self._call("GET", f"/api/v1/campaigns/{campaign_id}")

    def create(self, name: str) -> Answer:
        csv = "phone_number,first_name\n" + "".join(f"{n},Person {i}\n" for i, n in enumerate(NUMBERS))
        form = {
            "name": name,
            "agent_id": self.agent_id,
            "phone_number_id": self.phone_number_id,
            "send_immediately": "true",
        }
        files = {"recipients_file": ("recipients.csv", io.BytesIO(csv.encode()), "text/csv")}
        return self._call("POST", "/api/v1/campaigns", data=form, files=files)

    def burst(self) -> list[Answer]:
        with ThreadPoolExecutor(max_workers=16) as pool:
            return list(pool.map(lambda _: self.campaigns(), range(BURST)))

    def keep_asking(self, seconds: float, *, campaign_id: int):
        """Read the list and one campaign every 0.3 s, and create a campaign every few seconds."""
        deadline, round_ = time.monotonic() + seconds, 0
        while time.monotonic() < deadline:
            self.campaigns()
            self.campaign(campaign_id)
            if round_ % 8 == 0:
                self.create(f"{self.phase} {round_}")
            round_ += 1
            time.sleep(0.3)

    def in_phase(self, phase: str) -> list[Answer]:
        return [a for a in self.answers if a.phase == phase]

    def created(self) -> list[int]:
        return [a.body["data"]["id"] for a in self.answers if a.request.startswith("POST") and a.status == 201]


def manage(stack, *args: str) -> str:
    command = [sys.executable, "manage.py", *args]
    done = subprocess.run(command, cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def sql(database_url: str, query: str, *params) -> list[tuple]:
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        return conn.execute(query, params).fetchall()


def campaign_status(database_url: str, campaign_id: int) -> str:
    return sql(database_url, f"SELECT status FROM {Campaign._meta.db_table} WHERE id = %s", campaign_id)[0][0]


def batches_at_elevenlabs(database_url: str, campaign_id: int) -> int:
    """The sandbox's batches named after one of the campaign's batch tokens, as in test_sending."""
    query = (
        f"SELECT count(*) FROM {SandboxBatch._meta.db_table} s JOIN {CampaignBatch._meta.db_table} b"
        " ON right(s.name, length(b.token) + 2) = '[' || b.token || ']' WHERE b.campaign_id = %s"
    )
    return sql(database_url, query, campaign_id)[0][0]


def batch_call_id(database_url: str, campaign_id: int) -> str | None:
    query = (
        f"SELECT elevenlabs_batch_call_id FROM {CampaignBatch._meta.db_table}"
        " WHERE campaign_id = %s AND elevenlabs_batch_call_id IS NOT NULL"
    )
    rows = sql(database_url, query, campaign_id)
    return rows[0][0] if rows else None


def post_call_event(database_url: str, *, batch_id: str, phone_number: str, agent_id: str) -> bytes:
    """ElevenLabs' post_call_transcription for the call to `phone_number` in the batch."""
    query = (
        f"SELECT conversation_key, attempt FROM {SandboxRecipient._meta.db_table}"
        " WHERE batch_id = %s AND phone_number = %s"
    )
    ((key, attempt),) = sql(database_url, query, batch_id, phone_number)
    now = int(time.time())
    event = {
        "type": "post_call_transcription",
        "event_timestamp": now,
        "data": {
            "agent_id": agent_id,
            "conversation_id": f"conv_{key}{attempt:02d}",
            "status": "done",
            "transcript": [{"role": "agent", "message": "Hello!", "time_in_call_secs": 0}],
            "metadata": {
                "start_time_unix_secs": now - 20,
                "call_duration_secs": 20,
                "phone_call": {"type": "twilio", "external_number": phone_number, "call_result": "answered"},
                "batch_call": {"batch_call_id": batch_id},
            },
            "analysis": {"call_successful": "success", "transcript_summary": SUMMARY},
        },
    }
    return json.dumps(event).encode()


def outage(api: Api, phase: str, server, *, campaign_id: int):
    api.phase = phase
    server.stop()
    try:
        api.keep_asking(OUTAGE_SECONDS, campaign_id=campaign_id)
    finally:
        server.start()


def requests_and_statuses(answers: list[Answer]) -> set[tuple[str, int]]:
    return {(a.request.split()[0], a.status) for a in answers}


def test_redis_and_postgresql_outages_lose_no_campaign_and_no_webhook_and_answer_no_500(
    running, private_redis, private_postgres
):
    stack, db = running, private_postgres.url
    demo = json.loads(manage(stack, "bootstrap_demo", "--json"))
    api = Api(stack.url, demo["api_key"], demo["agent_id"], demo["phone_number_id"])

    # Given a campaign being called, and ElevenLabs' webhook about one of its calls received
    first = api.create("Before")
    assert first.status == 201, first.body
    first_id = first.body["data"]["id"]
    batch_id = wait_until(lambda: batch_call_id(db, first_id), timeout=30, message="the first batch is submitted")
    body = post_call_event(db, batch_id=batch_id, phone_number=NUMBERS[0], agent_id=demo["agent_id"])
    signature = sign(body, stack.env["ELEVENLABS_WEBHOOK_SECRET"], int(time.time()))
    webhook = requests.post(
        f"{stack.url}/webhooks/elevenlabs",
        data=body,
        headers={HEADER: signature, "Content-Type": "application/json"},
        timeout=30,
    )
    assert webhook.status_code == 200, webhook.text

    # When Redis, the broker and the rate-limit cache, is down for a while
    outage(api, "redis down", private_redis, campaign_id=first_id)

    # Then reads and creates went on, quickly, without rate limiting (and without its headers)
    during = api.in_phase("redis down")
    assert requests_and_statuses(during) == {("GET", 200), ("POST", 201)}, [(a.request, a.status) for a in during]
    assert not any("X-RateLimit-Limit" in a.headers for a in during)
    assert max(a.seconds for a in during) < 2

    # When PostgreSQL is down for a while
    outage(api, "postgres down", private_postgres, campaign_id=first_id)

    # Then every request was told to come back later, in the API's envelope
    during = api.in_phase("postgres down")
    assert requests_and_statuses(during) == {("GET", 503), ("POST", 503)}, [(a.request, a.status) for a in during]
    for answer in during:
        assert answer.body["status"] == {"code": 503, "message": "Service unavailable"}
        assert "temporarily unavailable" in answer.body["error"]

    # When every web thread holds a database connection and PostgreSQL restarts unnoticed
    api.phase = "after"
    api.burst()
    private_postgres.stop()
    private_postgres.start()
    api.burst()
    api.create("After")

    # Then nothing fails on a stale connection, and rate limiting is back
    after = api.in_phase("after")
    assert [a.status for a in after] == [200] * (2 * BURST) + [201], [(a.request, a.status, a.body) for a in after]
    assert all("X-RateLimit-Limit" in a.headers for a in after)

    # And every campaign the API accepted is called to the end, exactly once
    created = api.created()
    assert len(created) >= 4  # before, during the Redis outage, after
    for campaign_id in created:
        wait_until(
            lambda campaign_id=campaign_id: campaign_status(db, campaign_id) == "completed",
            timeout=60,
            message=f"campaign {campaign_id} completes",
        )
    time.sleep(2)  # let any late duplicate land before counting
    assert {c: batches_at_elevenlabs(db, c) for c in created} == dict.fromkeys(created, 1)

    # And the webhook received before the outages is recorded on its call
    recorded = sql(
        db,
        f"SELECT e.status, r.summary, r.call_successful FROM {WebhookEvent._meta.db_table} e"
        f" JOIN {Recipient._meta.db_table} r ON r.campaign_id = %s AND r.phone_number = %s",
        first_id,
        NUMBERS[0],
    )
    assert recorded == [(WebhookEvent.Status.APPLIED, SUMMARY, "success")]
