"""Benchmark: staff pages of a 100,000-recipient campaign, on SQLite and PostgreSQL.

Renders each page through the whole Django stack (middleware, session login, templates) with
the test client, in-process, and prints the best-of-five server time and the query count.
Target: under 300 ms each.

    .venv/bin/python bench/pages.py                        # both databases
    .venv/bin/python bench/pages.py --databases sqlite --recipients 100000
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from common import database_url, run_child

STATUSES = ["completed", "completed", "completed", "failed", "voicemail", "in_progress", "pending"]


def measure(count: int) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceable.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from campaigns.models import Campaign, Recipient
    from campaigns.tests.factories import CampaignFactory, UserFactory

    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)
    user = UserFactory(username=f"bench{time.time_ns()}")
    campaign = CampaignFactory(user=user, recipients_count=count, status=Campaign.Status.IN_PROGRESS)
    for start in range(0, count, 10_000):
        Recipient.objects.bulk_create(
            Recipient(
                campaign=campaign,
                phone_number=f"+1212{i:07d}",
                line=i + 2,
                variables={"first_name": f"Person {i}"},
                status=STATUSES[i % len(STATUSES)],
                conversation_id=f"conv_{i}",
            )
            for i in range(start, min(start + 10_000, count))
        )
    for _ in range(20):
        CampaignFactory(user=user)

    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    pages = {
        "campaigns list": "/",
        "campaign page": f"/campaigns/{campaign.pk}",
        "recipients page 100": f"/campaigns/{campaign.pk}?page=100",
        "recipients failed": f"/campaigns/{campaign.pk}?status=failed",
        "recipients search": f"/campaigns/{campaign.pk}?q=1234",
        "progress.json": f"/campaigns/{campaign.pk}/progress.json",
    }
    results = {}
    for name, url in pages.items():
        timings = []
        for _ in range(5):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url)
                timings.append(time.perf_counter() - started)
            assert response.status_code == 200, (url, response.status_code)
        results[name] = {"ms": min(timings) * 1000, "queries": len(queries.captured_queries)}
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
    for database in args.databases.split(","):
        result = run_child(__file__, ["--recipients", str(args.recipients)], database_url(database, workdir))
        if result is None:
            return 1
        for name, figures in result.items():
            ok = figures["ms"] < 300
            failed |= not ok
            print(
                f"{database:8}  {name:20} {figures['ms']:6.1f} ms  {figures['queries']:2} queries  "
                f"{'ok' if ok else 'OVER 300 ms'}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
