"""Benchmark: a 100,000-recipient campaign played by the sandbox, with the processes of production.

Real processes on PostgreSQL and Redis: gunicorn (as the Procfile runs it, --config gunicorn.conf.py:
3 workers of 4 threads; it serves the API, the webhook receiver and the sandbox), the product's worker
(two pool processes), the sandbox's own worker (queue `sandbox`) and beat. The campaign is created
through the API with the sandbox's timeline scaled down (--spacing between calls, --step per call
status), then sampled once a second until the product holds every recipient in a final status and
the sandbox has sent every webhook (or --webhook-wait seconds have passed since).

Printed: the sandbox's own call timeline (first call start to last call end, as the sandbox plays
it), the time until the product has every recipient final (target: at most 2x the timeline) and
until every webhook was sent, webhooks sent per second, the product's worst poll lag (the longest
any unfinished batch went without a poll, sampled each second; POLL_ACTIVE_EVERY plus one poll's
own time when polls run on time), and each process's peak RSS (all its processes, and a worker's
pool processes alone). Exits 1 if the 2x target is missed.

    .venv/bin/python bench/sandbox_scale.py
    .venv/bin/python bench/sandbox_scale.py --recipients 20000 --spacing 0.02

PostgreSQL: BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/voiceable_bench,
recreated). Redis: BENCH_REDIS_URL (default redis://127.0.0.1:6379/15, flushed).
"""

import argparse
import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, database_url, tree_rss_mb
from create_campaign import numbers

from campaigns.devrun import SANDBOX_WORKER_ARGS

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
SANDBOX_KEY = "bench-sandbox-key-0123456789abcdef0123"
FINAL = ("completed", "failed", "cancelled", "voicemail")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    def __init__(self, env: dict, logs: Path):
        self.env, self.logs, self.running = env, logs, {}

    def start(self, name: str, *command: str) -> None:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.running[name] = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def stop(self) -> None:
        for process in self.running.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--spacing", type=float, default=0.03, help="SANDBOX_CALL_SPACING_SECONDS")
    parser.add_argument("--step", type=float, default=2.0, help="SANDBOX_STEP_SECONDS")
    parser.add_argument("--timeout", type=float, default=1800, help="give up after this many seconds")
    parser.add_argument(
        "--webhook-wait",
        type=float,
        default=2400,
        help="once the product has every recipient final, wait at most this long for the rest of the webhooks",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="voiceable-bench-sandbox-"))
    url = f"http://127.0.0.1:{_free_port()}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url("postgres", workdir),
        "CELERY_BROKER_URL": REDIS_URL,
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SITE_URL": url,
        "ELEVENLABS_SANDBOX": "true",
        "ELEVENLABS_API_KEY": "",
        "SANDBOX_API_KEY": SANDBOX_KEY,
        "ELEVENLABS_WEBHOOK_SECRET": "bench-webhook-secret",
        "SANDBOX_CALL_SPACING_SECONDS": str(args.spacing),
        "SANDBOX_STEP_SECONDS": str(args.step),
        "CELERY_BEAT_SCHEDULE_FILENAME": str(workdir / "celerybeat-schedule"),
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update({k: v for k, v in env.items() if k != "PYTHONUNBUFFERED"})
    os.environ["DJANGO_SETTINGS_MODULE"] = "voiceable.settings"
    import django
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    django.setup()
    import requests
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db.models import Max, Min
    from django.utils import timezone

    from campaigns import services
    from campaigns.models import BATCH_SENT, Campaign, CampaignBatch, Recipient
    from sandbox.models import SandboxBatch, SandboxRecipient

    poll_every = settings.POLL_ACTIVE_EVERY
    processes = Processes(env, workdir)
    celery = (sys.executable, "-m", "celery", "-A", "voiceable")
    processes.start(
        "web", sys.executable, "-m", "gunicorn", "voiceable.wsgi", "--config", "gunicorn.conf.py",
        "--bind", url.removeprefix("http://"),
    )  # fmt: skip
    processes.start("worker", *celery, "worker", "--loglevel", "INFO", "--concurrency", "2", "--hostname", "worker@%h")
    processes.start("sandbox", *celery, "worker", *SANDBOX_WORKER_ARGS)
    processes.start("beat", *celery, "beat", "--loglevel", "INFO")
    peaks = dict.fromkeys(processes.running, 0.0)
    pool_peaks = dict.fromkeys(processes.running, 0.0)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{url}/api/v1/openapi.json", timeout=2).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        settings.ELEVENLABS_BASE_URL = f"{url}/sandbox/elevenlabs"
        settings.ELEVENLABS_API_KEY = SANDBOX_KEY
        user = get_user_model().objects.create_user(username="bench", password="bench-password-0123")
        services.elevenlabs_sync(user=user)
        key = services.api_key_create(user=user).raw_key
        phone = user.phone_numbers.get(elevenlabs_phone_number_id="phnum_demo_main")
        csv = "phone_number,first_name\n" + "".join(f"{n},Person {i}\n" for i, n in enumerate(numbers(args.recipients)))
        response = requests.post(
            f"{url}/api/v1/campaigns",
            headers={"X-API-Key": key},
            data={
                "name": "Sandbox at scale",
                "agent_id": "agent_demo_reminders",
                "phone_number_id": phone.pk,
                "send_immediately": "true",
            },
            files={"recipients_file": ("recipients.csv", io.BytesIO(csv.encode()), "text/csv")},
            timeout=600,
        )
        response.raise_for_status()
        campaign_id = response.json()["data"]["id"]
        print(f"Campaign {campaign_id}: {args.recipients:,} recipients; logs in {workdir}", flush=True)

        started = time.monotonic()
        worst_lag = 0.0
        lags: list[float] = []
        followed_at = webhooks_done_at = first_webhook_at = None
        sent = 0
        sent_at = 0.0
        last_print = 0.0
        while time.monotonic() - started < args.timeout:
            time.sleep(1)
            for name, process in processes.running.items():
                whole, pool = tree_rss_mb(process.pid)
                peaks[name], pool_peaks[name] = max(peaks[name], whole), max(pool_peaks[name], pool)
                if process.poll() is not None:
                    raise RuntimeError(f"The {name} process exited; see {workdir / (name + '.log')}")
            now_real = time.time()
            now = timezone.now()
            lag = None
            for polled_at, submitted_at in CampaignBatch.objects.filter(
                BATCH_SENT, campaign_id=campaign_id, settled_at__isnull=True
            ).values_list("polled_at", "submitted_at"):
                since = polled_at or submitted_at
                if since is not None:
                    lag = max(lag or 0.0, (now - since).total_seconds())
            if lag is not None:
                lags.append(lag)
                worst_lag = max(worst_lag, lag)
            final = Recipient.objects.filter(campaign_id=campaign_id, status__in=FINAL).count()
            sent = SandboxRecipient.objects.filter(webhook_sent=True).count()
            sent_at = now_real
            if sent and first_webhook_at is None:
                first_webhook_at = now_real
            if followed_at is None and final == args.recipients:
                followed_at = now_real
            if webhooks_done_at is None and sent == args.recipients:
                webhooks_done_at = now_real
            if time.monotonic() - last_print >= 15:
                last_print = time.monotonic()
                print(
                    f"  {time.monotonic() - started:5.0f} s: {final:,} final, {sent:,} webhooks sent, "
                    f"worst poll lag {worst_lag:.0f} s, RSS "
                    + ", ".join(f"{name} {mb:.0f} MB" for name, mb in peaks.items()),
                    flush=True,
                )
            if followed_at is not None and (webhooks_done_at is not None or now_real - followed_at > args.webhook_wait):
                break
    finally:
        processes.stop()

    spans = SandboxBatch.objects.aggregate(first=Min("started_at"), last=Max("started_at"))
    sizes = SandboxBatch.objects.values_list("started_at", "total_calls_scheduled")
    # The last call of each batch ends three steps after it is dispatched (answered calls; failed ones a step sooner).
    last_end = max(start + (size - 1) * args.spacing + 3 * args.step for start, size in sizes)
    first_start = spans["first"]
    timeline = last_end - first_start
    status = Campaign.objects.values_list("status", flat=True).get(pk=campaign_id)
    rows = [("sandbox timeline (first call start to last call end)", f"{timeline:.0f} s")]
    ok = followed_at is not None
    if followed_at is not None:
        followed = followed_at - first_start
        ok = followed <= 2 * timeline
        rows.append(("product: every recipient final, from first call start", f"{followed:.0f} s"))
        rows.append(("  ratio to the timeline (target <= 2)", f"{followed / timeline:.2f}"))
    else:
        rows.append(("product: every recipient final", f"not within {args.timeout:.0f} s"))
    if webhooks_done_at is not None:
        rows.append(("sandbox: every webhook sent, from first call start", f"{webhooks_done_at - first_start:.0f} s"))
        rows.append(("webhooks sent per second", f"{args.recipients / (webhooks_done_at - first_webhook_at):.0f}"))
    elif first_webhook_at is not None and sent_at > first_webhook_at:
        rows.append(("sandbox: webhooks sent when the run ended", f"{sent:,} of {args.recipients:,}"))
        rows.append(("webhooks sent per second", f"{sent / (sent_at - first_webhook_at):.0f}"))
    lags.sort()
    rows.append((f"poll lag, worst (POLL_ACTIVE_EVERY {poll_every:g} s)", f"{worst_lag:.0f} s"))
    if lags:
        median, p95 = lags[len(lags) // 2], lags[min(len(lags) - 1, int(len(lags) * 0.95))]
        rows.append(("poll lag, median and 95th percentile of the samples", f"{median:.0f} s, {p95:.0f} s"))
    for name, mb in peaks.items():
        rows.append((f"peak RSS {name}: all its processes | its children", f"{mb:.0f} MB | {pool_peaks[name]:.0f} MB"))
    rows.append(("campaign status", status))
    width = max(len(label) for label, _ in rows)
    print(f"\n{args.recipients:,} recipients, spacing {args.spacing:g} s, step {args.step:g} s, {os.cpu_count()} CPUs")
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    print("ok" if ok else "OVER TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
