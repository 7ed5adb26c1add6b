"""Benchmark: a 100,000-recipient campaign exported as CSV and as .xlsx, on SQLite and PostgreSQL.

Each export goes through the whole Django stack with the test client, in-process, and is read
to its last byte. Recipients have one call, or two (a retry), each with a summary and three
data-collection items. For each export it prints the server time (best of two), the peak of
Python's allocations while serving it (one more run, under tracemalloc), the growth of the
process's resident peak (the kernel's high-water mark reset first), the query count and the
size. Next to them, the same rows written by openpyxl's write-only mode, the other library that
streams rows to disk, for the choice of XlsxWriter to be checked again.
Targets: peak allocation <= 50 MB; the .xlsx under 30 s, gunicorn's default worker timeout.

    .venv/bin/python bench/export.py                        # both databases
    .venv/bin/python bench/export.py --databases sqlite --recipients 300000
"""

import argparse
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from common import database_url, run_child

TARGET_MEMORY_MB = 50
TARGET_XLSX_SECONDS = 30
ROUNDS = 2
STATUSES = ["completed", "completed", "completed", "failed", "voicemail", "in_progress", "pending"]
SUMMARY = (
    "The agent reminded {name} of the appointment on Tuesday at 10am; they confirmed, asked "
    'whether parking is free ("yes, level -1"), and said they might bring a relative, e.g. 2 people.'
)


def campaign_make(count: int):
    from campaigns.models import Call, Campaign, Recipient
    from campaigns.tests.factories import CampaignFactory, UserFactory

    user = UserFactory(username=f"bench{time.time_ns()}")
    campaign = CampaignFactory(user=user, recipients_count=count, status=Campaign.Status.COMPLETED)
    for start in range(0, count, 10_000):
        numbers = range(start, min(start + 10_000, count))
        recipients = Recipient.objects.bulk_create(
            Recipient(
                campaign=campaign,
                phone_number=f"+1212{i:07d}",
                line=i + 2,
                variables={"first_name": f"Person {i}", "account": f"{i:08d}"},
                status=STATUSES[i % len(STATUSES)],
                conversation_id=f"conv_{i}_2" if i % 4 == 0 else f"conv_{i}_1",
                attempt=2 if i % 4 == 0 else 1,
            )
            for i in numbers
        )
        calls = []
        for i, recipient in zip(numbers, recipients, strict=True):
            if STATUSES[i % len(STATUSES)] == "pending":
                continue
            for attempt in (1, 2) if i % 4 == 0 else (1,):
                answered = attempt == 2 or i % 4 != 0
                calls.append(
                    Call(
                        recipient=recipient,
                        campaign=campaign,
                        attempt=attempt,
                        conversation_id=f"conv_{i}_{attempt}",
                        status="completed" if answered else "failed",
                        call_result="answered" if answered else "no_answer",
                        duration_secs=30 + i % 200 if answered else 0,
                        summary=SUMMARY.format(name=f"Person {i}") if answered else "",
                        data_collection={
                            "appointment_confirmed": {"value": i % 3 != 0, "rationale": "They said yes."},
                            "party_size": {"value": 1 + i % 3, "rationale": "Counted from the call."},
                            "notes": {"value": f"=Ask about parking {i}", "rationale": ""},
                        }
                        if answered
                        else {},
                        transcript=[{"role": "agent", "message": "Hello", "time_in_call_secs": 0}],
                    )
                )
        Call.objects.bulk_create(calls)
    return user, campaign


def openpyxl_write_only(header: list[str], rows) -> int:
    """The same rows written by openpyxl's write-only mode (text cells typed as text, as ours are);
    returns the file's size."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    from campaigns.web.exports import _NUMBER_COLUMNS, cell_text

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Recipients")
    numbers = [name in _NUMBER_COLUMNS for name in header]

    def text_cell(value):
        # openpyxl reads a string starting with = as a formula and refuses control characters.
        cell = WriteOnlyCell(sheet, ILLEGAL_CHARACTERS_RE.sub("", cell_text(value)))
        cell.data_type = "s"
        return cell

    sheet.append([text_cell(name) for name in header])
    for row in rows:
        sheet.append(
            [
                value if numbers[index] and isinstance(value, int) else text_cell(value)
                for index, value in enumerate(row)
            ]
        )
    with tempfile.TemporaryFile() as out:
        workbook.save(out)
        return out.tell()


def status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return 0.0


def measured(run) -> dict:
    """Time, peak memory growth and query count of `run()`, which returns a size in bytes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # Reset the kernel's high-water mark so the peak seen is this run's own.
    Path("/proc/self/clear_refs").write_text("5")
    rss_before = status_mb("VmRSS")
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        size = run()
        elapsed = time.perf_counter() - started
    return {
        "seconds": elapsed,
        "peak_growth_mb": status_mb("VmHWM") - rss_before,
        "queries": len(queries.captured_queries),
        "mb": size / 1_048_576,
    }


def measure(count: int) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceable.settings")
    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from campaigns import selectors

    call_command("migrate", verbosity=0)
    user, campaign = campaign_make(count)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)

    def download(url):
        def run():
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            return sum(len(chunk) for chunk in response.streaming_content)

        return run

    def alternative():
        header, rows = selectors.recipient_export(campaign=campaign)
        return openpyxl_write_only(header, rows)

    exports = {
        "CSV": download(f"/campaigns/{campaign.pk}/export.csv"),
        ".xlsx (XlsxWriter)": download(f"/campaigns/{campaign.pk}/export.xlsx"),
        ".xlsx (openpyxl write-only)": alternative,
    }
    results = {}
    for name, run in exports.items():
        runs = [measured(run) for _ in range(ROUNDS)]
        best = min(runs, key=lambda figures: figures["seconds"])
        tracemalloc.start()
        run()
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        results[name] = {
            **best,
            "peak_growth_mb": max(figures["peak_growth_mb"] for figures in runs),
            "traced_peak_mb": traced_peak / 1_048_576,
        }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.recipients)))
        return 0

    failed = False
    workdir = Path(tempfile.mkdtemp(prefix="voiceable-bench-"))
    print(f"{args.recipients:,} recipients, best of {ROUNDS}")
    for database in args.databases.split(","):
        result = run_child(__file__, ["--recipients", str(args.recipients)], database_url(database, workdir))
        if result is None:
            return 1
        for name, figures in result.items():
            ok = figures["traced_peak_mb"] <= TARGET_MEMORY_MB
            if name == ".xlsx (XlsxWriter)":
                ok = ok and figures["seconds"] <= TARGET_XLSX_SECONDS
            failed |= not ok
            print(
                f"{database:8}  {name:28} {figures['seconds']:6.2f} s  "
                f"peak allocation {figures['traced_peak_mb']:5.1f} MB  RSS +{figures['peak_growth_mb']:5.1f} MB  "
                f"{figures['queries']:3} queries  {figures['mb']:5.1f} MB  {'ok' if ok else 'OVER TARGET'}"
            )
    print(f"\ntargets: peak allocation <= {TARGET_MEMORY_MB} MB; the .xlsx under {TARGET_XLSX_SECONDS} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
