"""The tick at scale: its own queue, one tick at a time, due events a chunk at a time, sent concurrently."""

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sandbox import delivery, services
from sandbox.models import SandboxRecipient, SandboxTickLease
from voiceable.celery import app

pytestmark = [pytest.mark.django_db]


def queue_of(task: str) -> str:
    return app.amqp.router.route({}, task)["queue"].name


def test_sandbox_tasks_go_to_the_sandbox_queue_and_the_products_stay_on_the_default_one():
    assert queue_of("sandbox.tasks.sandbox_tick") == "sandbox"
    for task in (
        "campaigns.tasks.campaigns_poll_active",
        "campaigns.tasks.campaign_poll",
        "campaigns.tasks.campaign_dispatch",
        "campaigns.tasks.webhook_events_sweep",
    ):
        assert queue_of(task) == "celery"


def test_with_the_sandbox_on_beat_ticks_and_a_queued_tick_expires_when_the_next_one_is_due():
    env = {
        **os.environ,
        "DEBUG": "true",
        "ELEVENLABS_SANDBOX": "true",
        "ELEVENLABS_API_KEY": "",
        "SANDBOX_TICK_EVERY": "3",
    }
    code = "import django, json; django.setup(); from django.conf import settings; "
    code += "print(json.dumps(settings.CELERY_BEAT_SCHEDULE['sandbox-tick']))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=60)

    entry = json.loads(done.stdout.strip().splitlines()[-1])
    assert entry == {"task": "sandbox.tasks.sandbox_tick", "schedule": 3.0, "options": {"expires": 3.0}}


# --- A receiver on a real socket ---------------------------------------------------------


class Receiver(http.server.BaseHTTPRequestHandler):
    """Records each event, answers after `delay` seconds, and 500 to the conversations in `failing`
    the first time it sees them; counts how many requests it serves at once."""

    events: list
    failing: set
    delay: float
    lock: threading.Lock
    in_flight: list  # [now, most]

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        event = json.loads(body)
        with self.lock:
            self.in_flight[0] += 1
            self.in_flight[1] = max(self.in_flight[1], self.in_flight[0])
        time.sleep(self.delay)
        conversation_id = event["data"]["conversation_id"]
        with self.lock:
            self.in_flight[0] -= 1
            failing = conversation_id in self.failing
            self.failing.discard(conversation_id)
            self.events.append(event)
        self.send_response(500 if failing else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(settings):
    handler = type(
        "Handler",
        (Receiver,),
        {"events": [], "failing": set(), "delay": 0.0, "lock": threading.Lock(), "in_flight": [0, 0]},
    )
    # A listen backlog for every thread of the pool (socketserver's default, 5, drops connections).
    server_class = type("Server", (http.server.ThreadingHTTPServer,), {"request_queue_size": 64})
    server = server_class(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SANDBOX_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/webhooks/elevenlabs"
    yield handler
    server.shutdown()
    server.server_close()


def finished(api, clock, count: int, *, batches: int = 1) -> list[str]:
    """`batches` batches of `count` recipients each, every call over; their ids."""
    created = [api.submit(numbers=[f"+1415{batch:03d}{i:04d}" for i in range(count)])["id"] for batch in range(batches)]
    clock.advance(count * 0.5 + 60)
    return created


def sent_per_conversation(receiver) -> Counter:
    return Counter(event["data"]["conversation_id"] for event in receiver.events)


# --- Chunks --------------------------------------------------------------------------------


def test_a_tick_sends_every_due_event_once_across_chunk_and_batch_boundaries(api, clock, receiver, monkeypatch):
    monkeypatch.setattr(delivery, "DUE_CHUNK", 7)
    finished(api, clock, 40, batches=3)

    with CaptureQueriesContext(connection) as queries:
        result = services.sandbox_tick()

    assert result.webhooks_sent == 120
    counts = sent_per_conversation(receiver)
    assert len(counts) == 120 and set(counts.values()) == {1}
    assert SandboxRecipient.objects.filter(webhook_sent=True, webhook_attempts=1).count() == 120
    # Never more than a chunk of recipients read at once.
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT "sandbox_sandboxrecipient"')]
    assert reads and all(sql.endswith("LIMIT 7") for sql in reads)


def test_the_queries_of_a_tick_grow_with_the_chunks_not_with_each_recipient(
    api, clock, receiver, django_assert_max_num_queries
):
    finished(api, clock, 1_200)

    # Per chunk of 500: one read; per slice of concurrency x 4 (32): one claim and one mark.
    slices = -(-1_200 // (delivery.concurrency() * delivery.SLICE_ROUNDS))
    with django_assert_max_num_queries(2 * slices + 3 + 25):
        result = services.sandbox_tick()

    assert result.webhooks_sent == 1_200
    assert len(sent_per_conversation(receiver)) == 1_200


def test_calls_still_being_analysed_are_left_for_a_later_tick(api, clock, receiver, monkeypatch):
    monkeypatch.setattr(delivery, "DUE_CHUNK", 3)
    api.submit(numbers=[f"+14155550{i:02d}0" for i in range(10)])
    # At 7.5 s: positions 0 and 1 have ended (6 s after their dispatch) and been analysed (a further 1 s).
    clock.advance(7.5)

    first = services.sandbox_tick()
    clock.advance(60)
    second = services.sandbox_tick()

    assert (first.webhooks_sent, second.webhooks_sent) == (2, 8)
    assert set(sent_per_conversation(receiver).values()) == {1}


# --- Concurrency ---------------------------------------------------------------------------


def test_webhooks_go_out_several_at_once(api, clock, receiver, settings):
    settings.SANDBOX_WEBHOOK_CONCURRENCY = 4
    receiver.delay = 0.2
    finished(api, clock, 12)

    started = time.monotonic()
    result = services.sandbox_tick()
    elapsed = time.monotonic() - started

    assert result.webhooks_sent == 12
    assert receiver.in_flight[1] == 4
    # One at a time would take 12 x 0.2 = 2.4 s.
    assert elapsed < 1.6


def test_a_failed_delivery_among_concurrent_ones_is_retried_on_the_next_tick_and_sent_once(
    api, clock, receiver, settings
):
    (batch_id,) = finished(api, clock, 20)
    failing = {recipient["conversation_id"] for recipient in api.batch(batch_id)["recipients"][:5]}
    receiver.failing.update(failing)

    first = services.sandbox_tick()
    second = services.sandbox_tick()
    third = services.sandbox_tick()

    assert [(r.webhooks_sent, r.webhooks_failed) for r in (first, second, third)] == [(15, 5), (5, 0), (0, 0)]
    counts = sent_per_conversation(receiver)
    assert {conversation: counts[conversation] for conversation in failing} == dict.fromkeys(failing, 2)
    assert SandboxRecipient.objects.filter(webhook_sent=True).count() == 20


def test_a_tick_out_of_time_claims_nothing_more_and_the_next_one_goes_on(api, clock, receiver, settings):
    settings.SANDBOX_WEBHOOK_CONCURRENCY = 1
    settings.SANDBOX_TICK_BUDGET_SECONDS = 0.5
    receiver.delay = 0.1
    finished(api, clock, 30)

    first = services.sandbox_tick()
    settings.SANDBOX_TICK_BUDGET_SECONDS = 60
    second = services.sandbox_tick()

    # Slices of 4 (one thread, four rounds): the first tick stops at the first slice boundary past 0.5 s.
    assert 4 <= first.webhooks_sent < 30 and first.webhooks_sent % 4 == 0
    assert first.webhooks_sent + second.webhooks_sent == 30
    assert set(sent_per_conversation(receiver).values()) == {1}
    assert SandboxRecipient.objects.filter(webhook_attempts=1).count() == 30


# --- One tick at a time --------------------------------------------------------------------


def test_a_tick_that_finds_another_running_does_nothing(api, clock, receiver):
    finished(api, clock, 5)

    with delivery.tick_lease() as held:
        assert held
        during = services.sandbox_tick()
    after = services.sandbox_tick()

    assert during == services.TickResult(skipped=True)
    assert after.webhooks_sent == 5
    assert len(receiver.events) == 5


def test_a_lease_left_by_a_tick_that_died_runs_out(api, clock, receiver):
    finished(api, clock, 5)
    SandboxTickLease.objects.create(pk=1, holder="dead", expires_at=time.time() + 3600)
    assert services.sandbox_tick().skipped

    SandboxTickLease.objects.filter(pk=1).update(expires_at=time.time() - 1)

    assert services.sandbox_tick().webhooks_sent == 5


def test_events_read_by_two_ticks_at_once_are_sent_by_one_only(api, clock, receiver):
    # Should two ticks ever overlap (a lease run out under a stalled tick), both read the same due
    # events; the claim lets one of them send each.
    (batch_id,) = finished(api, clock, 10)
    api.batch(batch_id)  # brings the calls to their end
    now = clock.now
    read_twice = [list(services._deliveries_due(kind=services._CALL_EVENT, now=now)) for _ in range(2)]
    columns = delivery.Columns(SandboxRecipient, "webhook_sent", "webhook_attempts")
    outcomes = [delivery.Outcome(), delivery.Outcome()]

    for due, outcome in zip(read_twice, outcomes, strict=True):
        sender = delivery.Sender(url=django_settings.SANDBOX_WEBHOOK_URL, secret="whsec_sandbox_test")
        try:
            delivery.deliver(
                columns=columns, due=iter(due), sender=sender, audio=False, deadline=float("inf"), outcome=outcome
            )
        finally:
            sender.close()

    assert [outcome.sent for outcome in outcomes] == [10, 0]
    assert set(sent_per_conversation(receiver).values()) == {1}
    assert len(receiver.events) == 10


@pytest.mark.django_db(transaction=True)
def test_two_ticks_started_together_never_send_an_event_twice(api, clock, receiver):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's shared in-memory test database locks whole tables between threads")
    receiver.delay = 0.05
    finished(api, clock, 30)
    results = []

    def tick():
        try:
            results.append(services.sandbox_tick())
        finally:
            connection.close()

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(result.webhooks_sent for result in results) == [0, 30]
    assert [result.skipped for result in results].count(True) == 1
    assert set(sent_per_conversation(receiver).values()) == {1}
