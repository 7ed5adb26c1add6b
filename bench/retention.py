"""Benchmark: the retention sweep erasing a finished 1,000,000-recipient campaign.

Every recipient has a number and two variables; every other one a call with a summary, a
transcript and collected data, and an inbox event about it. The campaign has no batch call (a
batch's delete at ElevenLabs is one request, whatever its size). It prints the erase's time,
query count, the peak of Python's allocations (tracemalloc) and the growth of the process's
resident peak. Target: memory that does not grow with the campaign (at most 50 MB), and a
query count that grows by a few statements per 10,000 recipients, never per recipient.

    .venv/bin/python bench/retention.py                       # both databases
    .venv/bin/python bench/retention.py --databases postgres --recipients 200000
"""

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from common import database_url, run_child

TARGET_MEMORY_MB = 50
CHUNK = 10_000
TRANSCRIPT = [
    {"role": "agent", "message": "Hello, this is the clinic calling about Tuesday.", "time_in_call_secs": 0},
    {"role": "user", "message": "Yes, Tuesday at ten works for me.", "time_in_call_secs": 4},
]


def campaign_make(count: int):
    from django.utils import timezone

    from campaigns.models import Call, Campaign, Recipient, WebhookEvent
    from campaigns.tests.factories import CampaignFactory, UserFactory

    user = UserFactory(username=f"bench{time.time_ns()}")
    campaign = CampaignFactory(user=user, recipients_count=count, status=Campaign.Status.COMPLETED)
    for start in range(0, count, CHUNK):
        numbers = range(start, min(start + CHUNK, count))
        recipients = Recipient.objects.bulk_create(
            Recipient(
                campaign=campaign,
                phone_number=f"+1212{i:07d}",
                line=i + 2,
                variables={"first_name": f"Person {i}", "account": f"{i:08d}"},
                status="completed",
                summary="Confirmed Tuesday.",
                conversation_id=f"conv_{i}" if i % 2 == 0 else "",
            )
            for i in numbers
        )
        Call.objects.bulk_create(
            Call(
                recipient=recipient,
                campaign=campaign,
                attempt=1,
                conversation_id=f"conv_{i}",
                status="done",
                call_result="answered",
                summary="Confirmed Tuesday.",
                transcript=TRANSCRIPT,
                data_collection={"confirmed": {"value": True, "rationale": "They said yes."}},
            )
            for i, recipient in zip(numbers, recipients, strict=True)
            if i % 2 == 0
        )
        WebhookEvent.objects.bulk_create(
            WebhookEvent(
                digest=f"{i:064d}",
                event_type="post_call_transcription",
                conversation_id=f"conv_{i}",
                payload={"data": {"transcript": TRANSCRIPT}},
                status="applied",
            )
            for i in numbers
            if i % 2 == 0
        )
    Campaign.objects.filter(pk=campaign.pk).update(updated_at=timezone.now() - dt.timedelta(days=60))
    return campaign


def status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return 0.0


def measure(count: int) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceable.settings")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from campaigns import lifecycle
    from campaigns.models import Recipient

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    campaign = campaign_make(count)
    made = time.perf_counter() - started
    settings.PERSONAL_DATA_RETENTION_DAYS = 30

    Path("/proc/self/clear_refs").write_text("5")
    rss_before = status_mb("VmRSS")
    tracemalloc.start()
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        done = lifecycle.campaign_personal_data_erase(campaign_id=campaign.pk)
        elapsed = time.perf_counter() - started
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    left = Recipient.objects.filter(campaign=campaign).exclude(phone_number__startswith="erased:").count()
    return {
        "made_seconds": made,
        "done": done and left == 0,
        "seconds": elapsed,
        "queries": len(queries.captured_queries),
        "traced_peak_mb": traced_peak / 1_048_576,
        "peak_growth_mb": status_mb("VmHWM") - rss_before,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.recipients)))
        return 0

    failed = False
    with tempfile.TemporaryDirectory() as workdir:
        for database in args.databases.split(","):
            url = database_url(database, Path(workdir))
            result = run_child(__file__, ["--recipients", str(args.recipients)], url)
            if result is None:
                failed = True
                continue
            ok = result["done"] and result["traced_peak_mb"] <= TARGET_MEMORY_MB
            failed |= not ok
            print(
                f"{database:>8}  {args.recipients:,} recipients erased in {result['seconds']:.1f} s, "
                f"{result['queries']} queries, Python peak {result['traced_peak_mb']:.1f} MB, "
                f"resident growth {result['peak_growth_mb']:.1f} MB "
                f"(made in {result['made_seconds']:.0f} s)  {'ok' if ok else 'MISSED'}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
