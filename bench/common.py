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


def process_parents() -> dict[int, int]:
    """Every process's parent, from /proc: {pid: ppid}."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mb(root: int, parents: dict[int, int] | None = None) -> tuple[float, float]:
    """RSS of `root` with every process below it, and of those below it alone (a worker's pool)."""
    parents = process_parents() if parents is None else parents
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    below = sum(rss_kb(pid) for pid in tree - {root})
    return (below + rss_kb(root)) / 1024, below / 1024
