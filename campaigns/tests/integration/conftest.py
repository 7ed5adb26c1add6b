"""Real processes for integration tests: gunicorn (API + sandbox), Celery workers and beat,
on the real PostgreSQL test database and a real Redis broker.
"""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import redis
import requests
from celery import Celery
from django.db import connection

ROOT = Path(__file__).resolve().parents[3]
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
SANDBOX_KEY = "integration-sandbox-key-0123456789abcdef"
# A Redis database of its own, flushed before each test; INTEGRATION_REDIS_DB lets two runs
# on one machine keep apart.
BROKER_DB = int(os.environ.get("INTEGRATION_REDIS_DB", "11"))


def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], object], *, timeout: float, message: str, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"Timed out after {timeout:.0f} s waiting until {message}")


@dataclass
class Stack:
    """The service's processes, started on demand and stopped at the end of the test."""

    env: dict
    tmp: Path
    url: str
    broker_url: str
    processes: dict = field(default_factory=dict)

    def start(self, name: str, *command: str, **env_overrides) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**self.env, **{k: str(v) for k, v in env_overrides.items()}},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill reaches prefork children too
        )
        self.processes[name] = process
        return process

    def web(self, name: str = "web", url: str | None = None, **env):
        """Start gunicorn on the stack's URL, or as another web server `name` on `url`."""
        url = url or self.url
        # The command every deployment runs (Procfile, Dockerfile, compose), on the given address.
        self.start(
            name,
            sys.executable, "-m", "gunicorn", "voiceable.wsgi", "--config", "gunicorn.conf.py",
            "--bind", url.removeprefix("http://"),
            **{"WEB_CONCURRENCY": 2, "WEB_THREADS": 8, "WEB_TIMEOUT": 60, **env},
        )  # fmt: skip
        wait_until(lambda: _answers(url), timeout=30, message=f"the web server {name} answers")

    def free_url(self) -> str:
        """A URL on a free local port, for a web server besides the stack's own."""
        return f"http://127.0.0.1:{_free_port()}"

    def worker(self, name: str = "worker", *, queues: str = "celery,sandbox", concurrency: int = 2, **env):
        """A worker of the product's queue and, unless `queues` says otherwise, the sandbox's."""
        process = self.start(
            name,
            sys.executable, "-m", "celery", "-A", "voiceable", "worker", "--loglevel", "INFO",
            "--concurrency", str(concurrency), "--hostname", f"{name}@%h", "--without-gossip", "--without-mingle",
            "--queues", queues,
            **env,
        )  # fmt: skip
        wait_until(lambda: " ready." in self.log(name), timeout=30, message=f"{name} is ready")
        return process

    def beat(self, name: str = "beat", **env):
        self.start(
            name,
            sys.executable, "-m", "celery", "-A", "voiceable", "beat", "--loglevel", "INFO",
            "--schedule", str(self.tmp / f"{name}-schedule"),
            **env,
        )  # fmt: skip

    def kill(self, name: str, sig=signal.SIGKILL):
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def stop_all(self):
        for name in list(self.processes):
            self.kill(name, signal.SIGTERM if name.startswith("web") else signal.SIGKILL)

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def send(self, task: str, *args):
        """Publish a task to the broker the workers read, as another process would."""
        app = Celery("integration-tests", broker=self.broker_url)
        with app.connection_for_write() as conn:
            app.send_task(task, args=list(args), connection=conn)


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/api/v1/openapi.json", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def stack(transactional_db, tmp_path, settings):
    if connection.vendor != "postgresql":
        pytest.skip("integration tests run against PostgreSQL (set DATABASE_URL)")
    try:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=BROKER_DB, socket_timeout=2).flushdb()
    except redis.RedisError as exc:
        pytest.skip(f"integration tests need Redis at {REDIS_HOST}:{REDIS_PORT}: {exc}")

    db = connection.settings_dict
    url = f"http://127.0.0.1:{_free_port()}"
    broker_url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{BROKER_DB}"
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = stack_env(database_url=database_url, url=url, broker_url=broker_url)
    # This process talks to the same sandbox, through the web server it starts.
    settings.ELEVENLABS_SANDBOX = True
    settings.ELEVENLABS_SANDBOX_API_KEY = settings.ELEVENLABS_API_KEY = SANDBOX_KEY
    settings.ELEVENLABS_BASE_URL = f"{url}/sandbox/elevenlabs"
    running = Stack(env=env, tmp=tmp_path, url=url, broker_url=broker_url)
    yield running
    running.stop_all()


def stack_env(*, database_url: str, url: str, broker_url: str) -> dict:
    """The environment of the stack's processes (also for scripts that start a Stack themselves)."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": broker_url,
        "DEBUG": "false",
        "SECRET_KEY": "integration-tests",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SITE_URL": url,
        "ELEVENLABS_SANDBOX": "true",
        "ELEVENLABS_API_KEY": "",
        # Outside DEBUG the sandbox runs only with a key of the deployment's own.
        "SANDBOX_API_KEY": SANDBOX_KEY,
        "ELEVENLABS_WEBHOOK_SECRET": "integration-webhook-secret",
        "SANDBOX_CALL_SPACING_SECONDS": "0.05",
        "SANDBOX_STEP_SECONDS": "0.3",
        "SANDBOX_TICK_EVERY": "0.5",
        "DISPATCH_DUE_EVERY": "1",
        "POLL_ACTIVE_EVERY": "1",
        # A poll cut off by an outage holds its campaign for twice this long.
        "POLL_BUDGET_SECONDS": "5",
        "PYTHONUNBUFFERED": "1",
    }


@dataclass
class PrivateRedis:
    """A Redis server of the test's own, without persistence: a restart loses what it held."""

    port: int
    log: Path
    process: subprocess.Popen | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self):
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        log = open(self.log, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self.answers, timeout=10, message="the private Redis answers")

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def answers(self) -> bool:
        try:
            return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5).ping()
        except redis.RedisError:
            return False


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of the test's own, in a directory the `postgres` OS user owns
    (PostgreSQL refuses to run as root, so under root its programs run as that user)."""

    bin: Path
    root: Path
    port: int
    database: str = "voiceable"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.database}"

    def run(self, program: str, *args: str):
        command = [str(self.bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode:
            raise AssertionError(f"{program} {' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    def create(self):
        self.run("initdb", "-D", str(self.root / "data"), "-U", "postgres", "--auth=trust", "--no-sync")
        self.start()
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')

    def start(self):
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self.run("pg_ctl", "-D", str(self.root / "data"), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: str = "fast"):
        self.run("pg_ctl", "-D", str(self.root / "data"), "-m", mode, "-w", "stop")


def _postgres_bin() -> Path | None:
    """The newest installed PostgreSQL server's programs (initdb, pg_ctl), if any."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture
def private_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("this test starts a Redis server of its own: redis-server is not installed")
    server = PrivateRedis(port=_free_port(), log=tmp_path / "private-redis.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_postgres():
    programs = _postgres_bin()
    if programs is None or not (programs / "pg_ctl").exists():
        pytest.skip("this test starts a PostgreSQL server of its own: initdb and pg_ctl are not installed")
    # Not under pytest's tmp_path, which only root can enter.
    root = Path(tempfile.mkdtemp(prefix="voiceable-postgres-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            pytest.skip("PostgreSQL will not run as root, and there is no `postgres` OS user to run it as")
        os.chown(root, owner.pw_uid, owner.pw_gid)
    server = PrivatePostgres(bin=programs, root=root, port=_free_port())
    try:
        server.create()
        yield server
    finally:
        with contextlib.suppress(AssertionError):
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def private_stack(stack, private_redis, private_postgres):
    """The stack on a Redis (broker and cache) and a PostgreSQL of its own, which the test may
    stop and restart; the database is migrated, and nothing is running yet."""
    stack.broker_url = private_redis.url(0)
    stack.env.update(
        {
            "DATABASE_URL": private_postgres.url,
            "CELERY_BROKER_URL": stack.broker_url,
            "CACHE_URL": private_redis.url(1),
            "CONN_MAX_AGE": "60",  # production's persistent connections, which a restart leaves stale
        }
    )
    migrate = [sys.executable, "manage.py", "migrate", "--noinput"]
    done = subprocess.run(migrate, cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    yield stack
    stack.stop_all()  # before the servers they use stop
