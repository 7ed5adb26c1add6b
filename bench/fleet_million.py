"""Benchmark: a 1,000,000-recipient campaign (100 batches of 10,000) through the sandbox, on the fleet.

The fleet of the integration tests (campaigns/tests/integration/fleet.py): two gunicorn web nodes
behind a round-robin proxy (in this process), two product workers (queue `celery`), the sandbox's
worker (queue `sandbox`) and beat, on one PostgreSQL and one Redis. The recipient limits are raised
for this run only (RECIPIENTS_MAX_PER_CAMPAIGN, RECIPIENTS_MAX_ROWS, RECIPIENTS_MAX_FILE_BYTES, the
web nodes' WEB_TIMEOUT and the proxy's), and the sandbox's timeline is scaled down (--spacing
between two calls of a batch, --step per call status; every batch plays at once).

Phases, each timed:
  create  a CSV of --recipients rows through POST /api/v1/campaigns via the proxy (API key);
          peak RSS of the web node that served it.
  submit  until every batch has an ElevenLabs batch id; then, from the sandbox's own records:
          one SandboxBatch per product batch, each number in exactly one sandbox recipient row,
          every product recipient's number among them, no retry.
  follow  until every recipient is in a final status in the product, beside the sandbox's own
          timeline (first call start to last call end).
  poll    queries and database time of one poll of a 10,000-recipient batch (every recipient
          changed), next to a 100-recipient batch of a second campaign: the count is constant.

The sandbox's webhooks are OFF by default (SANDBOX_WEBHOOK_URL empty): at about 80 a second through
the product's receiver, 1,000,000 would take hours, so the product follows by polls alone.
--webhooks keeps them on and reports how many were sent.

Peak RSS of every process (each web node and each worker with their children, beat, and this
process, which runs the proxy) is sampled from /proc every second. Exits 1 if a check fails: a
batch submitted twice or not at all, a number called twice, a recipient not final within --timeout.

    .venv/bin/python bench/fleet_million.py                                  # about 12 minutes
    .venv/bin/python bench/fleet_million.py --recipients 20000 --batch-size 200

PostgreSQL: BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/voiceable_million,
recreated). Redis: BENCH_REDIS_URL (default redis://127.0.0.1:6379/13, flushed, the broker) and the
next database (the cache, flushed).
"""

import argparse
import contextlib
import io
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, process_parents, rss_kb, tree_rss_mb
from create_campaign import numbers

POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/voiceable_million")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
SMALL = 100  # recipients of the second campaign, for the poll's query count


def _fresh_database(url: str) -> None:
    import psycopg

    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


class Sampler:
    """Peak RSS of each process of the stack (with its children) and of this process, once a
    second, overall and per phase; and the longest the product's queue got."""

    def __init__(self, stack, broker):
        self.stack, self.broker = stack, broker
        self.phase = "start"
        self.peaks: dict[str, float] = {}
        self.pool_peaks: dict[str, float] = {}
        self.phase_peaks: dict[tuple[str, str], float] = {}
        self.queue_peak = 0
        self.dead: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()

    def sample(self):
        parents = process_parents()
        rows = {"bench (proxy)": (rss_kb(os.getpid()) / 1024, 0.0)}
        for name, process in list(self.stack.processes.items()):
            if process.poll() is not None and name not in self.dead:
                self.dead.append(name)
            rows[name] = tree_rss_mb(process.pid, parents)
        for name, (whole, pool) in rows.items():
            self.peaks[name] = max(self.peaks.get(name, 0.0), whole)
            self.pool_peaks[name] = max(self.pool_peaks.get(name, 0.0), pool)
            key = (self.phase, name)
            self.phase_peaks[key] = max(self.phase_peaks.get(key, 0.0), whole)
        # A sample missed is no reason to stop the run.
        with contextlib.suppress(Exception):
            self.queue_peak = max(self.queue_peak, self.broker.llen("celery"))

    def _run(self):
        while not self._stop.wait(1):
            self.sample()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=10_000, help="ELEVENLABS_BATCH_MAX_RECIPIENTS")
    parser.add_argument("--spacing", type=float, default=0.03, help="SANDBOX_CALL_SPACING_SECONDS")
    parser.add_argument("--step", type=float, default=2.0, help="SANDBOX_STEP_SECONDS")
    parser.add_argument("--poll-every", type=float, default=10.0, help="POLL_ACTIVE_EVERY (production's default)")
    parser.add_argument("--webhooks", action="store_true", help="keep the sandbox's webhooks on")
    parser.add_argument("--timeout", type=float, default=2400, help="give up a phase after this many seconds")
    args = parser.parse_args()
    batches_expected = math.ceil(args.recipients / args.batch_size)

    workdir = Path(tempfile.mkdtemp(prefix="voiceable-bench-million-"))
    sys.path.insert(0, str(ROOT))
    import redis

    from campaigns.tests.integration.conftest import SANDBOX_KEY, Stack, stack_env
    from campaigns.tests.integration.fleet import fleet_start

    broker = redis.Redis.from_url(REDIS_URL)
    cache_url = REDIS_URL.rsplit("/", 1)[0] + f"/{int(REDIS_URL.rsplit('/', 1)[1]) + 1}"
    broker.flushdb()
    redis.Redis.from_url(cache_url).flushdb()
    started_setup = time.monotonic()
    _fresh_database(POSTGRES_URL)
    env = stack_env(database_url=POSTGRES_URL, url="http://127.0.0.1:1", broker_url=REDIS_URL)
    raised = {
        "CACHE_URL": cache_url,
        "ELEVENLABS_BATCH_MAX_RECIPIENTS": str(args.batch_size),
        "RECIPIENTS_MAX_PER_CAMPAIGN": str(args.recipients),
        "RECIPIENTS_MAX_ROWS": str(args.recipients + 1),  # the header line counts
        "RECIPIENTS_MAX_FILE_BYTES": str(max(20 * 1024 * 1024, 64 * args.recipients)),
        "SANDBOX_CALL_SPACING_SECONDS": str(args.spacing),
        "SANDBOX_STEP_SECONDS": str(args.step),
        "SANDBOX_TICK_EVERY": "2",
        "POLL_ACTIVE_EVERY": str(args.poll_every),
        "DISPATCH_DUE_EVERY": "5",
        "ELEVENLABS_READ_TIMEOUT": "120",
    }
    if not args.webhooks:
        raised["SANDBOX_WEBHOOK_URL"] = ""  # polls alone
    env.update(raised)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    os.environ.update({k: v for k, v in env.items() if k not in ("SITE_URL",)})
    os.environ["DJANGO_SETTINGS_MODULE"] = "voiceable.settings"
    import django

    django.setup()
    import requests
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.db.models import Count, Max, Min
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from campaigns import elevenlabs, services, tracking
    from campaigns.models import BATCH_SENT, CampaignBatch, Recipient
    from sandbox.models import SandboxBatch, SandboxRecipient

    stack = Stack(env=env, tmp=workdir, url="", broker_url=REDIS_URL)
    fleet = fleet_start(stack, web_env={"WEB_TIMEOUT": 1800}, proxy_timeout=1800)
    sampler = Sampler(stack, broker).start()
    stack.worker("worker-1", queues="celery")
    stack.worker("worker-2", queues="celery")
    stack.worker("sandbox", queues="sandbox", concurrency=1)  # as production runs it (campaigns.devrun)
    stack.beat()
    setup_seconds = time.monotonic() - started_setup
    print(f"Fleet up in {setup_seconds:.0f} s (logs in {workdir}); proxy {fleet.url}", flush=True)

    settings.ELEVENLABS_BASE_URL = f"{fleet.url}/sandbox/elevenlabs"
    settings.ELEVENLABS_API_KEY = SANDBOX_KEY
    user = get_user_model().objects.create_user(username="bench", password="bench-password-0123")
    services.elevenlabs_sync(user=user)
    key = services.api_key_create(user=user).raw_key
    phone = user.phone_numbers.get(elevenlabs_phone_number_id="phnum_demo_main")
    FINAL = tracking.TERMINAL_RECIPIENT_STATUSES
    failures: list[str] = []
    rows: list[tuple[str, str]] = []

    def create(name: str, phones: list[str]) -> tuple[int, float, str]:
        body = "phone_number,first_name\n" + "".join(f"{n},Person {i}\n" for i, n in enumerate(phones))
        began = time.monotonic()
        response = requests.post(
            f"{fleet.url}/api/v1/campaigns",
            headers={"X-API-Key": key},
            data={
                "name": name,
                "agent_id": "agent_demo_reminders",
                "phone_number_id": phone.pk,
                "send_immediately": "true",
            },
            files={"recipients_file": ("recipients.csv", io.BytesIO(body.encode()), "text/csv")},
            timeout=1800,
        )
        seconds = time.monotonic() - began
        if response.status_code != 201:
            raise SystemExit(f"create answered {response.status_code}: {response.text[:2000]}")
        node = fleet.proxy.nodes_serving("POST", "/api/v1/campaigns")[-1]
        return response.json()["data"]["id"], seconds, node

    def wait(what: str, condition, report) -> float | None:
        began = time.monotonic()
        last = 0.0
        while time.monotonic() - began < args.timeout:
            if sampler.dead:
                raise SystemExit(f"{sampler.dead} exited; see {workdir}")
            if condition():
                return time.monotonic() - began
            if time.monotonic() - last >= 15:
                last = time.monotonic()
                print(f"  {what}, {time.monotonic() - began:5.0f} s: {report()}", flush=True)
            time.sleep(2)
        failures.append(f"{what}: not within {args.timeout:.0f} s ({report()})")
        return None

    try:
        phones = numbers(args.recipients + SMALL)
        big_phones, small_phones = phones[: args.recipients], phones[args.recipients :]
        del phones

        # --- create
        sampler.phase = "create"
        campaign_id, create_seconds, create_node = create("A million", big_phones)
        del big_phones
        sampler.sample()
        print(f"Created campaign {campaign_id} in {create_seconds:.0f} s on {create_node}", flush=True)
        rows.append(
            (f"create: {args.recipients:,} rows through the proxy (served by {create_node})", f"{create_seconds:.0f} s")
        )
        rows.append(
            (f"create: peak RSS of {create_node} during it", f"{sampler.phase_peaks[('create', create_node)]:.0f} MB")
        )

        # --- submit
        sampler.phase = "submit"
        ours = CampaignBatch.objects.filter(campaign_id=campaign_id)

        def submitted() -> int:
            return ours.filter(elevenlabs_batch_call_id__isnull=False).exclude(elevenlabs_batch_call_id="").count()

        submit_seconds = wait(
            "submit", lambda: submitted() == batches_expected, lambda: f"{submitted()} of {batches_expected} batches"
        )
        if submit_seconds is not None:
            rows.append(
                (
                    f"submit: all {batches_expected} batches have an ElevenLabs id, after the create",
                    f"{submit_seconds:.0f} s",
                )
            )
        remote_ids = list(ours.values_list("elevenlabs_batch_call_id", flat=True))
        sandbox_batches = SandboxBatch.objects.filter(pk__in=remote_ids)
        sandbox_rows = SandboxRecipient.objects.filter(batch_id__in=remote_ids)
        checks = {
            "product batches": ours.count(),
            "sandbox batches for them": sandbox_batches.count(),
            "sandbox batches in all (one campaign so far)": SandboxBatch.objects.count(),
            "sandbox recipient rows": sandbox_rows.count(),
            "numbers in more than one row": sandbox_rows.values("phone_number")
            .annotate(n=Count("pk"))
            .filter(n__gt=1)
            .count(),
        }
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM campaigns_recipient r WHERE r.campaign_id = %s AND NOT EXISTS "
                "(SELECT 1 FROM sandbox_sandboxrecipient s WHERE s.phone_number = r.phone_number)",
                [campaign_id],
            )
            checks["product recipients whose number the sandbox never got"] = cursor.fetchone()[0]
        for label, value in checks.items():
            rows.append((f"submit check: {label}", f"{value:,}"))
        if not (
            checks["product batches"]
            == checks["sandbox batches for them"]
            == checks["sandbox batches in all (one campaign so far)"]
            == batches_expected
        ):
            failures.append(f"batches: {checks}")
        if checks["sandbox recipient rows"] != args.recipients or checks["numbers in more than one row"]:
            failures.append(f"a number submitted twice or not at all: {checks}")
        if checks["product recipients whose number the sandbox never got"]:
            failures.append(f"numbers never submitted: {checks}")

        # --- follow
        sampler.phase = "follow"
        recipients = Recipient.objects.filter(campaign_id=campaign_id)
        worst_lag = 0.0

        def followed() -> bool:
            nonlocal worst_lag
            now = timezone.now()
            for polled_at, submitted_at in ours.filter(BATCH_SENT, settled_at__isnull=True).values_list(
                "polled_at", "submitted_at"
            ):
                since = polled_at or submitted_at
                if since is not None:
                    worst_lag = max(worst_lag, (now - since).total_seconds())
            return recipients.filter(status__in=FINAL).count() == args.recipients

        def follow_report() -> str:
            final = recipients.filter(status__in=FINAL).count()
            settled = ours.filter(settled_at__isnull=False).count()
            return (
                f"{final:,} final, {settled} batches settled, worst poll lag {worst_lag:.0f} s, "
                f"queue {broker.llen('celery')}, RSS " + ", ".join(f"{n} {mb:.0f}" for n, mb in sampler.peaks.items())
            )

        follow_seconds = wait("follow", followed, follow_report)
        followed_at = time.time()
        spans = sandbox_batches.aggregate(first=Min("started_at"), last=Max("started_at"))
        last_end = max(
            start + (size - 1) * args.spacing + 3 * args.step
            for start, size in sandbox_batches.values_list("started_at", "total_calls_scheduled")
        )
        timeline = last_end - spans["first"]
        rows.append(("sandbox timeline: first call start to last call end", f"{timeline:.0f} s"))
        rows.append(("  of which first to last batch start (the submits)", f"{spans['last'] - spans['first']:.0f} s"))
        if follow_seconds is not None:
            rows.append(("follow: every recipient final, after every batch was submitted", f"{follow_seconds:.0f} s"))
            rows.append(
                ("follow: every recipient final, from the first call start", f"{followed_at - spans['first']:.0f} s")
            )
            rows.append(("  after the sandbox's last call ended", f"{followed_at - last_end:.0f} s"))
        rows.append((f"follow: worst poll lag (POLL_ACTIVE_EVERY {args.poll_every:g} s)", f"{worst_lag:.0f} s"))
        rows.append(("follow: longest the product's queue `celery` got", f"{sampler.queue_peak:,} messages"))
        statuses = dict(recipients.values_list("status").annotate(n=Count("pk")).order_by())
        rows.append(("recipients by status", ", ".join(f"{s} {n:,}" for s, n in sorted(statuses.items()))))
        retried = sandbox_batches.aggregate(r=Max("retry_count"))["r"] or 0
        again = sandbox_rows.filter(attempt__gt=1).count()
        rows.append(("sandbox: batch retries, recipients called more than once", f"{retried}, {again:,}"))
        if retried or again:
            failures.append(f"called more than once: {retried} retries, {again:,} recipients")
        sent = sandbox_rows.filter(webhook_sent=True).count()
        rows.append(("sandbox webhooks", f"{sent:,} sent" if args.webhooks else "off (followed by polls alone)"))

        # --- poll: queries of one poll of a 10,000-recipient batch, and of a 100-recipient one
        sampler.phase = "poll"
        small_id, _, _ = create("A hundred", small_phones)
        small = Recipient.objects.filter(campaign_id=small_id)
        wait(
            "small campaign",
            lambda: small.filter(status__in=FINAL).count() == SMALL,
            lambda: f"{small.filter(status__in=FINAL).count()} final",
        )
        client = elevenlabs.client_from_settings()

        def measure(batch: CampaignBatch) -> tuple[int, int, float, float]:
            """One poll of the batch with every recipient changed (set back to in_progress first,
            rolled back after): its recipients, queries, database seconds and the GET's seconds."""
            began = time.perf_counter()
            remote = client.get_batch(batch.elevenlabs_batch_call_id)
            fetched = time.perf_counter() - began
            with transaction.atomic():
                size = tracking.batch_recipients(batch=batch).update(status=Recipient.Status.IN_PROGRESS)
                with CaptureQueriesContext(connection) as queries:
                    began = time.perf_counter()
                    tracking.batch_apply(batch=batch, remote=remote)
                    seconds = time.perf_counter() - began
                changed = tracking.batch_recipients(batch=batch).filter(status__in=FINAL).count()
                assert changed == size, f"{changed} of {size} recipients moved on"
                transaction.set_rollback(True)
            return size, len(queries.captured_queries), seconds, fetched

        big_batch = ours.order_by("part").first()
        small_batch = CampaignBatch.objects.get(campaign_id=small_id)
        for batch in (big_batch, small_batch):
            size, queries, seconds, fetched = measure(batch)
            rows.append(
                (
                    f"poll of a {size:,}-recipient batch, every recipient changed",
                    f"{queries} queries, {seconds:.2f} s in the database, GET {fetched:.2f} s",
                )
            )
        big_queries = rows[-2][1].split()[0]
        if big_queries != rows[-1][1].split()[0]:
            failures.append(f"queries per poll grow with the batch: {rows[-2]} vs {rows[-1]}")
    finally:
        sampler.sample()
        sampler.stop()
        stack.stop_all()
        fleet.proxy.stop()

    # How long the product's polls took, and how many their time limit cut short (the workers' logs).
    worker_logs = "".join(stack.log(name) for name in ("worker-1", "worker-2"))
    polls = sorted(float(s) for s in re.findall(r"campaign_poll\[[^]]*\] succeeded in ([0-9.]+)s", worker_logs))
    cut_short = len(re.findall(r"campaign_poll\[[^]]*\] raised unexpected: SoftTimeLimitExceeded", worker_logs))
    if polls:
        rows.append(
            (
                "campaign_poll tasks: done, the longest | cut short by the time limit",
                f"{len(polls)}, {polls[-1]:.0f} s | {cut_short}",
            )
        )
    for name in sampler.peaks:
        pool = sampler.pool_peaks[name]
        rows.append(
            (f"peak RSS {name}: all its processes | its children", f"{sampler.peaks[name]:.0f} MB | {pool:.0f} MB")
        )
    width = max(len(label) for label, _ in rows)
    load = os.getloadavg()
    print(
        f"\n{args.recipients:,} recipients in batches of {args.batch_size:,}, spacing {args.spacing:g} s, "
        f"step {args.step:g} s, {os.cpu_count()} CPUs, load average now {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    for failure in failures:
        print(f"FAILED: {failure}")
    print("ok" if not failures else "FAILED")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
