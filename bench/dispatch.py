"""Benchmark: submitting and polling a 10,000-recipient campaign, on SQLite and PostgreSQL.

ElevenLabs is played by a minimal local HTTP stand-in (it reads and parses the JSON body and
answers like the real API), so the figures are our own cost plus one real round trip.

Submit: time from the claim to the stored batch id (campaign_dispatch), next to the time of
one bare HTTP round trip carrying the same payload to the same stand-in (requests, json=).
Best of three of each. Target: <= 2x.
Poll: one poll of a 10,000-recipient batch in which every recipient changed; database time
and query count, next to the query count for a 100-recipient batch. Target: <= 1 s and the
same number of queries.

    .venv/bin/python bench/dispatch.py                       # both databases
    .venv/bin/python bench/dispatch.py --databases sqlite
"""

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from common import database_url, run_child

SIZE = 10_000


class StandIn(BaseHTTPRequestHandler):
    """Answers submit with a BatchCallResponse and GET batch with every recipient completed."""

    batches: dict = {}

    def log_message(self, *args):
        pass

    def _answer(self, payload: dict):
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        submitted = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        batch_id = f"btcal_{len(self.batches) + 1}"
        self.batches[batch_id] = submitted["recipients"]
        self._answer(_batch(batch_id, submitted["call_name"], len(submitted["recipients"]), "pending"))

    def do_GET(self):
        batch_id = self.path.rsplit("/", 1)[1]
        recipients = self.batches[batch_id]
        detail = _batch(batch_id, "bench", len(recipients), "completed")
        detail["recipients"] = [
            {
                "id": f"r{i}",
                "phone_number": r["phone_number"],
                "status": "completed",
                "conversation_id": f"conv_{i}",
                "created_at_unix": 1,
                "updated_at_unix": 2,
            }
            for i, r in enumerate(recipients)
        ]
        self._answer(detail)


def _serve(port_queue) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def _batch(batch_id: str, name: str, total: int, status: str) -> dict:
    return {
        "id": batch_id, "name": name, "agent_id": "agent_bench", "agent_name": "Bench",
        "created_at_unix": 1, "scheduled_time_unix": 1, "last_updated_at_unix": 1, "status": status,
        "total_calls_dispatched": total, "total_calls_scheduled": total, "total_calls_finished": total,
        "retry_count": 0, "telephony_call_config": {}, "phone_number_id": "phnum_bench",
    }  # fmt: skip


def measure(size: int) -> dict:
    """In a child process with DATABASE_URL set."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceable.settings")
    django.setup()
    import requests
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from campaigns import dispatch, tracking
    from campaigns.elevenlabs import ElevenLabsClient
    from campaigns.models import Campaign, CampaignBatch, Recipient
    from campaigns.tests.factories import CampaignFactory

    call_command("migrate", verbosity=0)
    # The stand-in runs in a process of its own, as ElevenLabs would.
    port_queue = multiprocessing.Queue()
    stand_in = multiprocessing.Process(target=_serve, args=(port_queue,), daemon=True)
    stand_in.start()
    base = f"http://127.0.0.1:{port_queue.get(timeout=10)}"
    client = ElevenLabsClient(base_url=base, api_key="bench")

    def campaign_with(count: int) -> Campaign:
        campaign = CampaignFactory(recipients_count=count)
        Recipient.objects.bulk_create(
            Recipient(campaign=campaign, phone_number=f"+1212{i:07d}", line=i + 2, variables={"first_name": f"P{i}"})
            for i in range(count)
        )
        return campaign

    # Warm up connections and code paths.
    dispatch.campaign_dispatch(campaign_id=campaign_with(10).pk, client=client)

    submits = []
    for _ in range(3):
        campaign = campaign_with(size)
        started = time.perf_counter()
        dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)
        submits.append(time.perf_counter() - started)
        batch = CampaignBatch.objects.get(campaign=campaign)
        assert batch.elevenlabs_batch_call_id, "the batch id was not stored"
    submit_seconds = min(submits)

    payload = dispatch.batch_payload(batch=batch)
    payload["recipients"] = json.loads(payload["recipients"])
    session = requests.Session()
    round_trips = []
    for _ in range(3):
        started = time.perf_counter()
        session.post(f"{base}/v1/convai/batch-calling/submit", json=payload, timeout=60).raise_for_status()
        round_trips.append(time.perf_counter() - started)
    round_trip = min(round_trips)

    def poll(target: Campaign) -> tuple[float, int]:
        batch = CampaignBatch.objects.get(campaign=target)
        remote = client.get_batch(batch.elevenlabs_batch_call_id)  # the HTTP part, not timed
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            tracking.batch_apply(batch=batch, remote=remote)
            tracking.campaign_refresh(campaign_id=target.pk)
            elapsed = time.perf_counter() - started
        return elapsed, len(queries.captured_queries)

    small = campaign_with(100)
    dispatch.campaign_dispatch(campaign_id=small.pk, client=client)
    _, small_queries = poll(small)
    poll_seconds, poll_queries = poll(campaign)
    completed = Recipient.objects.filter(campaign=campaign, status="completed").count()
    stand_in.terminate()
    return {
        "submit": submit_seconds,
        "round_trip": round_trip,
        "poll": poll_seconds,
        "poll_queries": poll_queries,
        "poll_queries_small": small_queries,
        "completed": completed,
        "status": Campaign.objects.get(pk=campaign.pk).status,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--size", type=int, default=SIZE)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.size)))
        return 0

    failed = False
    workdir = Path(tempfile.mkdtemp(prefix="voiceable-bench-"))
    for database in args.databases.split(","):
        r = run_child(__file__, ["--size", str(args.size)], database_url(database, workdir))
        if r is None:
            return 1
        ratio = r["submit"] / r["round_trip"]
        ok = ratio <= 2 and r["poll"] <= 1 and r["poll_queries"] == r["poll_queries_small"]
        ok = ok and r["completed"] == args.size and r["status"] == "completed"
        failed |= not ok
        print(
            f"{database:8}  submit {args.size:,}: {r['submit'] * 1000:.0f} ms vs round trip "
            f"{r['round_trip'] * 1000:.0f} ms, ratio {ratio:.2f} (<= 2)  |  poll: {r['poll'] * 1000:.0f} ms "
            f"(<= 1000), {r['poll_queries']} queries (100 recipients: {r['poll_queries_small']})  "
            f"{'ok' if ok else 'OVER TARGET'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
