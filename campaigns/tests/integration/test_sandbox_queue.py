"""The sandbox's work runs on a queue and a worker of its own: however long a tick takes, the
product's worker polls on time. Real gunicorn, workers and beat on PostgreSQL and Redis.
"""

import http.server
import threading
import time

import pytest

from campaigns.models import Campaign

from .conftest import wait_until
from .test_sending import NUMBERS, account, create_campaign  # noqa: F401 - `account` is a fixture

# Longer than the campaign takes to finish: the tick is still on its first webhook then.
HOLD_SECONDS = 8


class Holding(http.server.BaseHTTPRequestHandler):
    """A webhook receiver that takes HOLD_SECONDS to answer each event."""

    received: list

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(time.monotonic())
        time.sleep(HOLD_SECONDS)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_receiver():
    handler = type("Handler", (Holding,), {"received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/webhooks/elevenlabs", handler.received
    server.shutdown()
    server.server_close()


def test_a_sandbox_worker_busy_with_slow_webhooks_does_not_delay_the_products_polls(
    stack,
    account,  # noqa: F811
    slow_receiver,
):
    url, received = slow_receiver
    stack.worker("worker", queues="celery")
    stack.worker("sandbox", queues="sandbox", SANDBOX_WEBHOOK_URL=url, SANDBOX_WEBHOOK_CONCURRENCY=1)
    stack.beat()

    campaign = create_campaign(stack, account, "Busy sandbox")
    wait_until(lambda: received, timeout=30, message="the sandbox's tick sends its first webhook")
    wait_until(
        lambda: Campaign.objects.values_list("status", flat=True).get(pk=campaign["id"]) == "completed",
        timeout=HOLD_SECONDS,
        message="the product's polls find every call over",
    )

    # The tick was still waiting on its webhooks: the polls did not wait for it.
    assert len(received) < len(NUMBERS)
    # Which worker ran what ("Task NAME[id] received"; the banner lists every task without an id).
    assert "sandbox.tasks.sandbox_tick[" in stack.log("sandbox")
    assert "sandbox.tasks.sandbox_tick[" not in stack.log("worker")
    assert "campaigns.tasks.campaign_poll[" in stack.log("worker")
    assert "campaigns.tasks.campaign_poll[" not in stack.log("sandbox")
