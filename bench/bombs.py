"""Benchmark: each hostile file of campaigns/tests/hostile_files.py sent to POST /api/v1/campaigns.

For each file it prints the answer, the request's server time until the refusal and the growth
of the process's peak memory while handling it. Each file is sent from a child process of its
own, so no memory freed by an earlier one hides the next one's (the WSGI application handling
a pre-encoded request, as in bench/create_campaign.py).

    make bench
    .venv/bin/python bench/bombs.py --databases sqlite,postgres

Targets: every file answered with its expected 413 or 422 within 2 s and 100 MB of growth.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from common import database_url, run_child

TARGET_SECONDS = 2.0
TARGET_MEMORY_MB = 100


def measure(index: int) -> dict:
    """Runs in a child process with DATABASE_URL set: send one hostile file."""
    from create_campaign import Api, status_mb

    from campaigns.tests.hostile_files import HOSTILE

    case = HOSTILE[index]
    api = Api()
    api.create(b"phone_number\n+12125550100\n", "warm.csv", "warm-up")
    content = case.build()
    body = api.body(content, case.filename, case.name)
    del content
    Path("/proc/self/clear_refs").write_text("5")
    rss_before = status_mb("VmRSS")
    seconds, status, answer = api.send(body)
    return {
        "name": case.name,
        "bytes": len(body),
        "expected": case.status,
        "status": status,
        "message_ok": case.message in " ".join([answer.get("error", ""), *answer.get("errors", [])]),
        "error": answer.get("error", ""),
        "seconds": seconds,
        "peak_growth_mb": status_mb("VmHWM") - rss_before,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", default="sqlite")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child)))
        return 0
    from campaigns.tests.hostile_files import HOSTILE

    workdir = Path(tempfile.mkdtemp(prefix="voiceable-bombs-"))
    failed = False
    for database in args.databases.split(","):
        url = database_url(database, workdir)
        print(f"\n{database}: {'hostile file':52} {'upload':>8}  HTTP  {'refused in':>10}  {'peak memory':>11}")
        for index in range(len(HOSTILE)):
            result = run_child(__file__, [str(index)], url)
            if result is None:
                return 1
            ok = (
                result["status"] == result["expected"]
                and result["message_ok"]
                and result["seconds"] <= TARGET_SECONDS
                and result["peak_growth_mb"] <= TARGET_MEMORY_MB
            )
            failed |= not ok
            print(
                f"  {result['name'][:60]:60} {result['bytes'] / 1_048_576:6.1f}MB  {result['status']}  "
                f"{result['seconds']:9.2f}s  {result['peak_growth_mb']:9.0f}MB  {'ok' if ok else 'OVER TARGET'}"
            )
            if not ok:
                print(f"      expected {result['expected']}; answered: {result['error'][:200]}")
    print(f"\ntargets: the expected 413 or 422, within {TARGET_SECONDS:.0f} s and {TARGET_MEMORY_MB} MB of growth")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
