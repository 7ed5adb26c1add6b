"""The first run on a laptop: is the port free, a development `.env`, the demo's kept key and
password with the banner that shows them, and the processes `manage.py devserver` runs.

`python3 -m campaigns.devrun preflight` is the first step of `make run`, before the virtualenv
exists: this module needs nothing but the standard library.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import errno
import http.client
import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = ROOT / ".env"
DEMO_FILE = ROOT / "var" / "demo.json"
LOG_DIR = ROOT / "var" / "log"
RECIPIENTS_EXAMPLE = ROOT / "examples" / "recipients.csv"


# --- The port --------------------------------------------------------------------------------


def address(host: str, port: int | str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def port_problem(host: str, port: int | str, *, advice: str = "make run PORT={port}") -> str | None:
    """Why a web server could not serve on host:port, said so that the reader can act on it; None
    when it can. `advice` is how to choose another port ({port}: a free one nearby)."""
    port = int(port)
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        return f"Cannot serve on {address(host, port)}: {exc.strerror}."
    failure = errno.EADDRINUSE if _answers(family, sockaddr) else _bind_error(family, sockaddr)
    if failure == errno.EADDRINUSE:
        other = _free_port_after(host, port)
        return (
            f"{address(host, port)} is already in use: another server (an earlier `make run`?) is listening "
            f"there.\nStop it, or choose another port: {advice.format(port=other or port + 1)}"
        )
    if failure is not None:
        return f"Cannot serve on {address(host, port)}: {os.strerror(failure)}."
    return None


def _answers(family: int, sockaddr: tuple) -> bool:
    # A server that accepts there would get the requests even where binding succeeds (SO_REUSEPORT).
    if sockaddr[0] in ("0.0.0.0", "::"):
        sockaddr = ("127.0.0.1" if family == socket.AF_INET else "::1", *sockaddr[1:])
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(sockaddr) == 0


def _bind_error(family: int, sockaddr: tuple) -> int | None:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As the web server binds: the connections of a run just stopped (TIME_WAIT) do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(sockaddr)
        except OSError as exc:
            return exc.errno
    return None


def _free_port_after(host: str, port: int) -> int | None:
    for candidate in range(port + 1, min(port + 50, 65536)):
        family, _, _, _, sockaddr = socket.getaddrinfo(host, candidate, type=socket.SOCK_STREAM)[0]
        if not _answers(family, sockaddr) and _bind_error(family, sockaddr) is None:
            return candidate
    return None


# --- A development .env ----------------------------------------------------------------------

DEV_ENV = """\
# For local development only, written by the first `make run`: DEBUG on and a signing key made
# for this copy of the project, so that `python manage.py ...` works here. Never use it in
# production. Every setting is described in .env.example.
DEBUG=true
SECRET_KEY={secret_key}
"""


def dev_env_write(path: Path = ENV_FILE) -> bool:
    """Write a development .env at `path` unless one exists (it is never replaced); True if written."""
    try:
        # O_EXCL: an existing file, even a link, is left as it is. The key is this user's only.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(DEV_ENV.format(secret_key=secrets.token_urlsafe(50)))
    return True


# --- The demo's kept credentials and the banner ---------------------------------------------


# What the banner shows, as bootstrap_demo keeps it (with the "url" it was set up for).
DEMO_FACTS = ("username", "password", "api_key", "agent_id", "agent_name", "phone_number_id", "phone_number")


def demo_load(path: Path) -> dict:
    """What an earlier run kept at `path`; empty when there is nothing readable."""
    try:
        facts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return facts if isinstance(facts, dict) else {}


def demo_store(path: Path, facts: dict) -> None:
    """Keep `facts` at `path`, readable by this user only: they hold a superuser's password and key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(facts, file, indent=2)
        file.write("\n")
    os.replace(temporary, path)


def shown_path(path: Path) -> str:
    """`path` as the project's README names it when it lies in the project, else in full."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def demo_banner(facts: dict, *, url: str, kept_in: Path | None = None) -> str:
    """What a first request needs; the curl line works from any folder (the file's path is absolute)."""
    kept = f"   (kept in {shown_path(kept_in)}: the same on every run)" if kept_in else ""
    curl = (
        f'curl -X POST "{url}/api/v1/campaigns" \\\n'
        f'  -H "X-API-Key: {facts["api_key"]}" \\\n'
        '  -F "name=My first campaign" \\\n'
        f'  -F "phone_number_id={facts["phone_number_id"]}" \\\n'
        f'  -F "agent_id={facts["agent_id"]}" \\\n'
        f'  -F "recipients_file=@{RECIPIENTS_EXAMPLE}" \\\n'
        '  -F "send_immediately=true"'
    )
    return (
        "\nVoiceable Campaigns is ready.\n\n"
        f"  Sign in:      {url}/   user {facts['username']}   password {facts['password']}   (admin: {url}/admin/)\n"
        f"  API key:      {facts['api_key']}{kept}\n"
        f"  Agent:        {facts['agent_name']} (agent_id {facts['agent_id']})\n"
        f"  Phone number: {facts['phone_number']} (phone_number_id {facts['phone_number_id']})\n"
        f"  API docs:     {url}/api/v1/docs\n\n"
        f"Create a campaign:\n\n{curl}\n"
    )


def answers(url: str, *, timeout: float = 2.0) -> bool:
    """Whether an HTTP server answers at `url` (any status counts)."""
    scheme, _, rest = url.partition("://")
    connection_class = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    connection = connection_class(rest.split("/", 1)[0], timeout=timeout)
    try:
        connection.request("HEAD", "/")
        connection.getresponse()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return True


# --- The processes of devserver ---------------------------------------------------------------

# The start of a log record, in Celery's format ("[2026-01-01 12:00:00,000: WARNING/MainProcess]")
# or the one of settings.LOGGING ("2026-01-01 12:00:00,000 WARNING name").
_RECORD = re.compile(r"^\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[,.]\d+:? (?P<level>[A-Z]+)\b")
_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
# Warnings that say nothing wrong: Kombu's about the filesystem broker's URL, which has no host.
_HARMLESS = ("No hostname was supplied. Reverting to default 'localhost'",)


class AtLeast:
    """Which lines of a Celery process's log (its stderr) reach the terminal: records at `level` or
    above and the lines that continue them (a traceback). Lines before the first record stay in
    the log file; should the process die, devserver shows its last lines."""

    def __init__(self, level: int):
        self.level = level
        self.showing = False

    def __call__(self, line: str) -> bool:
        record = _RECORD.match(line)
        if record:
            level = _LEVELS.get(record["level"], logging.WARNING)
            self.showing = level >= self.level and not harmless(line)
        return self.showing


def harmless(line: str) -> bool:
    return any(text in line for text in _HARMLESS)


def never(line: str) -> bool:
    return False


def unless_harmless(line: str) -> bool:
    return not harmless(line)


class Child:
    """One process of devserver. All its output goes to its log file, and to the terminal the
    lines of its stdout and stderr that `shows_out` and `shows_err` pick (Celery prints its banner
    on stdout and logs on stderr).

    It runs in a process group of its own: a Ctrl-C in the terminal does not reach it, devserver
    stops it the way it stops cleanly, `stop_signal` to its main process only (a Celery worker then
    stops its own pool, rather than log each pool process as killed by a signal)."""

    def __init__(
        self,
        name: str,
        command: list[str],
        *,
        env: dict,
        log: Path,
        stop_signal: int,
        say: Callable[[str], None],
        shows_out: Callable[[str], bool] = unless_harmless,
        shows_err: Callable[[str], bool] = unless_harmless,
    ):
        self.name, self.command, self.env, self.log_path = name, command, env, log
        self.stop_signal, self.say, self.shows_out, self.shows_err = stop_signal, say, shows_out, shows_err
        self.quiet = False
        self.tail: collections.deque[str] = collections.deque(maxlen=15)
        self.process: subprocess.Popen | None = None
        self._log = None
        self._log_lock = threading.Lock()
        self._relays: list[threading.Thread] = []

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.log_path.exists():
            self.log_path.replace(self.log_path.with_name(self.log_path.name + ".1"))  # the run before
        self._log = open(self.log_path, "w", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed in wait()
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, errors="replace", bufsize=1, start_new_session=True,
        )  # fmt: skip
        for stream, shows in ((self.process.stdout, self.shows_out), (self.process.stderr, self.shows_err)):
            relay = threading.Thread(target=self._relay, args=(stream, shows), name=self.name, daemon=True)
            relay.start()
            self._relays.append(relay)

    def _relay(self, stream, shows: Callable[[str], bool]) -> None:
        for line in stream:
            with self._log_lock:
                self._log.write(line)
                self.tail.append(line)
            if shows(line) and not self.quiet:
                self.say(f"{self.name:<6} | {line.rstrip()}")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        self.quiet = True
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, self.stop_signal)

    def kill(self) -> None:
        """SIGKILL to its whole group: the process and whatever it started that is still there."""
        self.quiet = True
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def wait(self) -> int:
        """Its exit status, once its output is all in the log file."""
        status = self.process.wait()
        for relay in self._relays:
            relay.join(timeout=2)
        with self._log_lock:
            self._log.close()
        return status


# The sandbox's worker (after `celery -A voiceable worker`): its queue only, one process, as the
# README's "Running in production" gives it. A tick runs alone anyway (sandbox.delivery).
SANDBOX_WORKER_ARGS = ("--queues", "sandbox", "--concurrency", "1", "--hostname", "sandbox@%h", "--loglevel", "INFO")

_PROCESS_NAMES = {"web": "the web server", "worker": "the worker", "sandbox": "the sandbox worker", "beat": "beat"}


def process_names(names: list[str]) -> str:
    """The processes, as a sentence says them: "the web server, the worker and beat"."""
    said = [_PROCESS_NAMES.get(name, name) for name in names]
    return said[0] if len(said) == 1 else f"{', '.join(said[:-1])} and {said[-1]}"


class OwnTerminal:
    """While in this block, a Ctrl-C in the terminal reaches this process only, not the `make` that
    started it: make, interrupted, exits 130 however cleanly everything stopped. A job-control
    shell does the same for each job: a process group of its own, made the terminal's foreground.
    Nothing changes without a terminal, or when this process is not in its foreground."""

    def __enter__(self):
        self._tty = self._before = None
        # Setting the foreground from the background sends SIGTTOU, which would stop this process.
        # Ctrl-Z would stop this group alone and leave make waiting: it does nothing instead.
        self._handlers = {signal.SIGTTOU: signal.SIG_IGN, signal.SIGTSTP: signal.SIG_IGN}
        with contextlib.suppress(OSError):
            self._tty = os.open("/dev/tty", os.O_RDWR)
            if os.tcgetpgrp(self._tty) == os.getpgrp():
                self._handlers = {sig: signal.signal(sig, handler) for sig, handler in self._handlers.items()}
                self._before = os.getpgrp()
                os.setpgid(0, 0)
                os.tcsetpgrp(self._tty, os.getpgrp())
        return self

    def __exit__(self, *exc_info):
        if self._before is not None:
            with contextlib.suppress(OSError):
                os.tcsetpgrp(self._tty, self._before)
            for sig, handler in self._handlers.items():
                signal.signal(sig, handler)
        if self._tty is not None:
            os.close(self._tty)


# --- Command line ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m campaigns.devrun")
    commands = parser.add_subparsers(dest="command", required=True)
    preflight = commands.add_parser(
        "preflight", help="Before `make run` starts anything: stop if the port is taken, else write .env if none."
    )
    preflight.add_argument("--host", default="127.0.0.1")
    preflight.add_argument("--port", default="8000")
    preflight.add_argument("--env-file", type=Path, default=ENV_FILE)
    args = parser.parse_args(argv)

    problem = port_problem(args.host, args.port)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    if dev_env_write(args.env_file):
        print(
            f"Wrote {shown_path(args.env_file)} for local development (DEBUG on, a new SECRET_KEY): "
            "python manage.py commands work in this folder now."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
