"""What the benchmarks share: a fresh database per run, and a child process per database so
each measurement starts from a clean interpreter."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The benchmarks run as scripts from bench/; the project's packages live one level up.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/voiceable_bench")


def database_url(database: str, workdir: Path) -> str:
    """An empty database: PostgreSQL's is dropped and created again, SQLite's is a new file."""
    if database != "postgres":
        return f"sqlite:///{workdir / f'{database}-{os.getpid()}.sqlite3'}"
    import psycopg

    server, name = POSTGRES_URL.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return POSTGRES_URL


def run_child(script: str, args: list[str], url: str) -> dict | None:
    """Run `script --child ARGS` on the database at `url`; its last stdout line is JSON."""
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "false", "SECRET_KEY": os.environ.get("SECRET_KEY", "bench")}
    child = subprocess.run(
        [sys.executable, script, "--child", *args], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if child.returncode != 0:
        print(child.stderr, file=sys.stderr)
        return None
    return json.loads(child.stdout.strip().splitlines()[-1])
