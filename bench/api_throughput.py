"""Benchmark: API throughput under load, as a ratio to a bare DRF view served the same way.

Seeds a PostgreSQL database (`DATABASE_URL`, default
`postgres://postgres@127.0.0.1:5432/voiceable_bench_api`, dropped and created again; its name
must contain "bench") with one account: an API key, 36 campaigns of every kind with their
recipients (one of 3,000, the others about 115 each; some with a calling policy sent as
ElevenLabs outbound campaigns), vacuumed and analyzed as autovacuum leaves a production
database. Then serves the
project with gunicorn as the Procfile does (`--config gunicorn.conf.py`: 3 workers of 4 threads, DEBUG off,
the rate-limit cache in Redis: `CACHE_URL`, default `redis://127.0.0.1:6379/9`, flushed first),
with settings `bench.api_settings`, which only add a bare DRF view (no authentication, no
throttle, no database) at /bench/bare. The per-key rate limit is raised to 10,000,000 a minute
so that the load is not answered 429; the throttle still runs on every request.

wrk then loads, with the same threads, connections and duration:
  list      GET /api/v1/campaigns                  (the first page of 50)
  detail    GET /api/v1/campaigns/{id}             (the 3,000-recipient campaign)
  create    POST /api/v1/campaigns                 (multipart, a 10-row CSV; each request
            creates a campaign scheduled in 2099: nothing is ever sent, and no worker runs)
each one between two runs against the bare view (GET /bench/bare), in rounds: bare view,
endpoint, endpoint, bare view, each for half the duration, so that both meet the same load from
the rest of the machine and the same drift of it over the round. Each endpoint run has a new API
key (the rate limit counts from zero); the campaigns a round created are deleted before the
next. Per endpoint, of the round with the median ratio: requests a second, the bare view's,
latency p50 and p99 (the worse of the two runs), the ratio; the CPU time the machine spent per
request in gunicorn, PostgreSQL and Redis (from /proc), the endpoint's and the bare view's, and
their ratio, which the machine's other load does not move; and, in process through the whole
Django stack, the queries one request runs and its CPU time (best of 5 x 20 requests, the
database's own time not included).
Targets: reads at least 0.25x the bare view, create at least 0.15x; the exit status is 1 when
one is missed, or when wrk is not installed.

    make bench
    .venv/bin/python bench/api_throughput.py --duration 8 --rounds 3 --connections 12
"""

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import ROOT

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/voiceable_bench_api"
DEFAULT_CACHE_URL = "redis://127.0.0.1:6379/9"
TARGETS = {"list": 0.25, "detail": 0.25, "create": 0.15}
RECIPIENTS = 3_000
CSV_ROWS = 10
BOUNDARY = "----voiceablebench7MA4YWxkTrZu0gW"


def database_create(url: str) -> None:
    import psycopg

    server, name = url.rsplit("/", 1)
    if "bench" not in name:
        raise SystemExit(f"DATABASE_URL names {name!r}: this benchmark drops its database, so the name must say bench.")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')


def environment(database_url: str, cache_url: str) -> dict:
    """What both this process and gunicorn run with: production settings, whatever a .env says."""
    return {
        "DJANGO_SETTINGS_MODULE": "bench.api_settings",
        "DATABASE_URL": database_url,
        "CACHE_URL": cache_url,
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key"),
        "API_RATE_LIMIT": "10000000/min",
        "CELERY_BROKER_URL": "memory://",
        # Whatever a .env holds, no real ElevenLabs account: the sandbox, with keys of its own.
        "ELEVENLABS_API_KEY": "",
        "ELEVENLABS_SANDBOX": "true",
        "SANDBOX_API_KEY": secrets.token_urlsafe(32),
        "ELEVENLABS_WEBHOOK_SECRET": secrets.token_urlsafe(32),
        "LOG_LEVEL": "WARNING",
    }


def phone_numbers(count: int) -> list[str]:
    import phonenumbers

    found = []
    for exchange in range(201, 999):
        number = f"+1212{exchange}0{len(found):03d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(number, None)):
            found.append(number)
        if len(found) == count:
            return found
    raise SystemExit("could not make enough valid numbers")


def seed() -> dict:
    """One account with realistic data; the key, the big campaign's id and the create form's ids."""
    import datetime as dt

    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from campaigns import services
    from campaigns.models import Campaign, CampaignBatch, Recipient
    from campaigns.tests.factories import AgentFactory, CampaignFactory, PhoneNumberFactory, UserFactory

    call_command("migrate", verbosity=0)
    cache.clear()
    user = UserFactory(username="bench")
    agents = [AgentFactory(user=user) for _ in range(3)]
    numbers = [PhoneNumberFactory(user=user) for _ in range(2)]
    raw_key = services.api_key_create(user=user, name="bench").raw_key
    now = timezone.now()
    statuses = list(Campaign.Status.values)
    recipient_statuses = list(Recipient.Status.values)
    for i in range(35):
        policy = i % 3 == 0
        campaign = CampaignFactory(
            user=user,
            agent=agents[i % len(agents)],
            phone_number=numbers[i % len(numbers)],
            status=statuses[i % len(statuses)],
            recipients_count=100 + i,
            calls_dispatched=50 + i,
            calls_finished=40 + i,
            elevenlabs_batch_call_id=f"btcal_{i:04d}" if not policy else None,
            time_zones={"America/New_York": 60 + i, "America/Chicago": 40},
            calling_hours="09:00-12:00,14:00-20:00" if policy else "",
            calling_days="mon,tue,wed,thu,fri" if policy else "",
            calling_timezone="recipient" if policy else "",
            max_attempts=3 if policy else 1,
            error="The agent was deleted at ElevenLabs." if i % 7 == 0 else "",
        )
        if policy:
            for part in (1, 2):
                CampaignBatch.objects.create(
                    campaign=campaign,
                    part=part,
                    offset=(part - 1) * 50,
                    size=50,
                    token=secrets.token_hex(16),
                    elevenlabs_campaign_id=f"ocmp_{i:04d}_{part}",
                    next_call_at=now + dt.timedelta(hours=part),
                )
        # The recipients its count says it has: the table holds many campaigns, as in production.
        Recipient.objects.bulk_create(
            Recipient(
                campaign=campaign,
                phone_number=f"+1313{i:03d}{n:04d}",
                line=n + 2,
                status=recipient_statuses[n % len(recipient_statuses)],
            )
            for n in range(campaign.recipients_count)
        )
    big = CampaignFactory(
        user=user, agent=agents[0], phone_number=numbers[0], status=Campaign.Status.IN_PROGRESS,
        recipients_count=RECIPIENTS, elevenlabs_batch_call_id="btcal_big",
    )  # fmt: skip
    Recipient.objects.bulk_create(
        Recipient(
            campaign=big,
            phone_number=f"+1212{i:07d}",
            line=i + 2,
            variables={"first_name": f"Person {i}"},
            status=recipient_statuses[i % len(recipient_statuses)],
        )
        for i in range(RECIPIENTS)
    )
    # Where autovacuum leaves a production database within a minute of a bulk write: without
    # statistics the planner guesses 2 rows for the 3,000 and counts them with a sort.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return {
        "key": raw_key,
        "campaign_id": big.pk,
        "agent_id": agents[0].elevenlabs_agent_id,
        "phone_number_id": numbers[0].pk,
    }


def multipart_body(seeded: dict) -> bytes:
    rows = "phone_number,first_name\r\n" + "".join(
        f"{number},Person {i}\r\n" for i, number in enumerate(phone_numbers(CSV_ROWS))
    )
    fields = {
        "name": "Bench create",
        "agent_id": seeded["agent_id"],
        "phone_number_id": str(seeded["phone_number_id"]),
        # Scheduled far ahead: the campaign waits in the database and is never sent.
        "send_immediately": "false",
        "schedule_date": "2099-12-31",
        "schedule_time": "09:00",
        "timezone": "UTC",
    }
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="recipients_file"; filename="people.csv"\r\n'
        f"Content-Type: text/csv\r\n\r\n{rows}\r\n"
    )
    parts.append(f"--{BOUNDARY}--\r\n")
    return "".join(parts).encode()


def in_process(seeded: dict, body: bytes) -> dict:
    """Each endpoint through the whole Django stack in this process: the queries one request runs,
    and its CPU time here (best of 5 x 20 requests; the database's own time is not in it)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from campaigns.models import Campaign

    client = Client(HTTP_HOST="localhost", HTTP_X_API_KEY=seeded["key"])
    requests = {
        "bare": lambda: client.get("/bench/bare"),
        "list": lambda: client.get("/api/v1/campaigns"),
        "detail": lambda: client.get(f"/api/v1/campaigns/{seeded['campaign_id']}"),
        "create": lambda: client.post(
            "/api/v1/campaigns", data=body, content_type=f"multipart/form-data; boundary={BOUNDARY}"
        ),
    }
    measured = {}
    for name, send in requests.items():
        send()  # the first use of the key writes last_used_at
        with CaptureQueriesContext(connection) as queries:
            response = send()
        assert response.status_code in (200, 201), (name, response.status_code, response.content[:500])
        count = len(queries.captured_queries)  # now: the next request clears the log
        best = float("inf")
        for _ in range(5):
            started = time.process_time()
            for _ in range(20):
                send()
            best = min(best, (time.process_time() - started) / 20)
        measured[name] = {"queries": count, "cpu_ms": best * 1000}
    Campaign.objects.filter(name="Bench create").delete()
    return measured


def gunicorn_start(env: dict, port: int) -> subprocess.Popen:
    # The Procfile's web command (workers, threads and timeout from gunicorn.conf.py), on a port of its own.
    command = [
        str(Path(sys.executable).with_name("gunicorn")), "voiceable.wsgi", "--config", "gunicorn.conf.py",
        "--bind", f"127.0.0.1:{port}",
    ]  # fmt: skip
    server = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn stopped: {server.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/bare", timeout=1) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer within 30 s")


def milliseconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}[unit]


def cpu_used(server_pid: int) -> dict[int, tuple[str, float]]:
    """Per process of gunicorn (the server's process group), PostgreSQL and Redis, its kind and
    the CPU time (ms) it used so far, from /proc ({} without it): what a request costs the
    machine, whatever else runs on it."""
    used: dict[int, tuple[str, float]] = {}
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 10
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == server_pid:  # the process group: gunicorn's arbiter and workers
            kind = "gunicorn"
        elif command.startswith("postgres"):
            kind = "postgres"
        elif "redis-server" in command:
            kind = "redis"
        else:
            continue
        used[int(entry.name)] = (kind, (int(fields[11]) + int(fields[12])) * tick_ms)
    return used


def cpu_delta(start: dict, end: dict) -> dict[str, float]:
    """CPU ms per kind of process between two cpu_used: a process that started meanwhile counts
    from zero; one that ended (a database connection closed) is left out, not subtracted."""
    spent: dict[str, float] = {}
    for pid, (kind, ms) in end.items():
        before = start.get(pid)
        spent[kind] = spent.get(kind, 0) + ms - (before[1] if before and before[0] == kind else 0)
    return spent


def cpu_add(one: dict, other: dict) -> dict:
    return {kind: one.get(kind, 0) + other.get(kind, 0) for kind in one.keys() | other.keys()}


def wrk(url: str, *, key: str | None, script: Path | None, args, duration: int) -> dict:
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration}s", "--latency"]
    if key:
        command += ["-H", f"X-API-Key: {key}"]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx or 3xx responses" in output:
        raise SystemExit(f"wrk saw failed requests on {url}:\n{output}")
    # wrk gives up on a request after 2 s: counted, not fatal (a loaded machine answers late).
    timeouts = re.search(r"timeout (\d+)", output)
    try:
        return {
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            "requests": int(re.search(r"(\d+) requests in", output).group(1)),
            "p50": milliseconds(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1)),
            "p99": milliseconds(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1)),
            "timeouts": int(timeouts.group(1)) if timeouts else 0,
        }
    except AttributeError:
        raise SystemExit(f"Could not read wrk's output for {url}:\n{output}") from None


def lua_script(body: bytes, directory: Path) -> Path:
    # wrk sends the same body each time. Every byte but plain ASCII as a \ddd escape: a Lua long
    # string would turn the multipart CRLFs into LFs.
    literal = "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\{b:03d}" for b in body)
    script = directory / "create.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f'wrk.headers["Content-Type"] = "multipart/form-data; boundary={BOUNDARY}"\n'
        f'wrk.body = "{literal}"\n'
    )
    return script


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of runs per endpoint; the median counts")
    parser.add_argument("--connections", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: `sudo apt-get install wrk` (Debian, Ubuntu) or `brew install wrk`.")
        return 1

    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    env = environment(database_url, os.environ.get("BENCH_CACHE_URL", DEFAULT_CACHE_URL))
    database_create(database_url)
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from campaigns import services
    from campaigns.models import Campaign

    seeded = seed()
    user = get_user_model().objects.get(username="bench")
    body = multipart_body(seeded)
    measured = in_process(seeded, body)

    base = f"http://127.0.0.1:{args.port}"
    bare_url = f"{base}/bench/bare"
    endpoints = {
        "list": (f"{base}/api/v1/campaigns", None),
        "detail": (f"{base}/api/v1/campaigns/{seeded['campaign_id']}", None),
        "create": (f"{base}/api/v1/campaigns", "create"),
    }
    server = gunicorn_start(env, args.port)
    runs: dict[str, list[dict]] = {name: [] for name in endpoints}
    try:
        with tempfile.TemporaryDirectory() as directory:
            script = lua_script(body, Path(directory))
            for _ in range(args.rounds):
                for name, (url, kind) in endpoints.items():
                    # bare, endpoint, endpoint, bare: each half of the time, so that the load the
                    # rest of the machine puts on both, and its drift over the round, is the same.
                    half = max(args.duration // 2, 1)
                    before = cpu_used(server.pid)
                    bare = [wrk(bare_url, key=None, script=None, args=args, duration=half)]
                    middle = cpu_used(server.pid)
                    run = []
                    for _ in range(2):
                        # A key of its own for each run: the rate limit's count starts from zero,
                        # as for a client that keeps within its limit.
                        key = services.api_key_create(user=user, name=name).raw_key
                        run.append(wrk(url, key=key, script=script if kind else None, args=args, duration=half))
                    after = cpu_used(server.pid)
                    bare.append(wrk(bare_url, key=None, script=None, args=args, duration=half))
                    last = cpu_used(server.pid)
                    bare_rps = sum(one["rps"] for one in bare) / 2
                    rps = sum(one["rps"] for one in run) / 2
                    requests, bare_requests = sum(one["requests"] for one in run), sum(one["requests"] for one in bare)
                    bare_cpu = cpu_add(cpu_delta(before, middle), cpu_delta(after, last))
                    runs[name].append(
                        {
                            "rps": rps,
                            "p50": max(one["p50"] for one in run),
                            "p99": max(one["p99"] for one in run),
                            "timeouts": sum(one["timeouts"] for one in run),
                            "bare_rps": bare_rps,
                            "ratio": rps / bare_rps,
                            "cpu_ms": {kind: ms / requests for kind, ms in cpu_delta(middle, after).items()},
                            "bare_cpu_ms": {kind: ms / bare_requests for kind, ms in bare_cpu.items()},
                        }
                    )
                Campaign.objects.filter(name="Bench create").delete()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    print(
        f"wrk -t{args.threads} -c{args.connections} against gunicorn --config gunicorn.conf.py; per endpoint and "
        f"round: bare view, endpoint, endpoint, bare view, {max(args.duration // 2, 1)} s each; "
        f"the median of {args.rounds} rounds"
    )
    header = f"{'endpoint':<8} {'req/s':>8} {'bare':>8} {'p50 ms':>8} {'p99 ms':>8} {'x bare':>7} {'target':>7}"
    print(f"{header} {'queries':>8} {'in-proc ms':>10} {'machine ms':>10} {'bare ms':>8} {'CPU x':>6} {'timeouts':>8}")
    missed, medians = [], {}
    for name, pairs in runs.items():
        median = sorted(pairs, key=lambda pair: pair["ratio"])[len(pairs) // 2]
        medians[name] = median
        target = TARGETS[name]
        if median["ratio"] < target:
            missed.append(name)
        machine, bare_machine = sum(median["cpu_ms"].values()), sum(median["bare_cpu_ms"].values())
        print(
            f"{name:<8} {median['rps']:>8.0f} {median['bare_rps']:>8.0f} {median['p50']:>8.2f} {median['p99']:>8.2f} "
            f"{median['ratio']:>7.3f} {target:>7.2f} {measured[name]['queries']:>8} "
            f"{measured[name]['cpu_ms']:>10.2f} {machine:>10.2f} {bare_machine:>8.2f} "
            f"{bare_machine / machine if machine else 0:>6.3f} {median['timeouts']:>8}"
        )
    print(f"bare view in process: {measured['bare']['cpu_ms']:.2f} ms CPU a request")
    for name, median in medians.items():
        spent = ", ".join(f"{kind} {ms:.2f}" for kind, ms in sorted(median["cpu_ms"].items()))
        print(f"CPU ms a request, {name}: {spent} (bare view: gunicorn {median['bare_cpu_ms'].get('gunicorn', 0):.2f})")
    print(json.dumps({"median": medians, "runs": runs, "in_process": measured}))
    if missed:
        print(f"Target missed: {', '.join(missed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
