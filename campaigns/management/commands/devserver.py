import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from campaigns import devrun

# Time the processes have to stop after Ctrl-C, whatever still runs then is killed: an idle
# Celery worker takes 5 to 10 s (its broker polls and pool threads wake up once a second).
GRACE_SECONDS = 15
# The sandbox is served by the web process: the demo can only be set up once it answers.
WEB_START_SECONDS = 60


class Command(BaseCommand):
    help = (
        "Run the web server, a Celery worker, the sandbox's own worker (when the sandbox is on) and Celery beat "
        "together (Ctrl-C stops them all); once the web server answers, set up the demo and print how to make a "
        "first request. The workers and beat log in full to --log-dir and show only their warnings and errors here."
    )

    # Written by hand rather than with a process manager such as honcho: honcho sends SIGTERM to
    # each process's whole group (every Celery pool process then logs as killed), kills what
    # has not stopped after 5 seconds, exits 130 after a Ctrl-C (make reports an error), and
    # cannot send part of one process's output to a file and the rest to the terminal.

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")
        parser.add_argument("--no-demo", action="store_true", help="Do not set up and print the demo.")
        parser.add_argument(
            "--demo-file", type=Path, default=devrun.DEMO_FILE, help="Where the demo's key and password are kept."
        )
        parser.add_argument("--log-dir", type=Path, default=devrun.LOG_DIR, help="Where the processes log.")

    def handle(self, *args, host, port, no_demo, demo_file, log_dir, **options):
        advice = "make run PORT={port}" if "MAKELEVEL" in os.environ else "manage.py devserver --port {port}"
        problem = devrun.port_problem(host, port, advice=advice)
        if problem:
            self.stderr.write(problem)
            sys.exit(1)

        url = f"http://{devrun.address(host, port)}"
        # SITE_URL is where the sandbox sends its webhooks and where the service finds the sandbox.
        env = {**os.environ, "SITE_URL": os.environ.get("SITE_URL", url), "PYTHONUNBUFFERED": "1"}
        self._lock = threading.Lock()
        self._last_output = time.monotonic()
        self._stopping = threading.Event()
        self._hurry = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

        python = sys.executable
        celery = [python, "-m", "celery", "-A", "voiceable"]
        children = [
            devrun.Child(
                "web", [python, "manage.py", "runserver", devrun.address(host, port), "--noreload"],
                env=env, log=log_dir / "web.log", stop_signal=signal.SIGINT, say=self._say,
            ),
            devrun.Child(
                "worker", [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2"],
                env=env, log=log_dir / "worker.log", stop_signal=signal.SIGTERM, say=self._say,
                shows_out=devrun.never, shows_err=devrun.AtLeast(logging.WARNING),
            ),
            devrun.Child(
                "beat", [*celery, "beat", "--loglevel", "INFO"],
                env=env, log=log_dir / "beat.log", stop_signal=signal.SIGTERM, say=self._say,
                shows_out=devrun.never, shows_err=devrun.AtLeast(logging.WARNING),
            ),
        ]  # fmt: skip
        if settings.ELEVENLABS_SANDBOX:
            # The sandbox's queue has a worker of its own: its ticks never hold up the product's tasks.
            children.insert(
                2,
                devrun.Child(
                    "sandbox", [*celery, "worker", *devrun.SANDBOX_WORKER_ARGS],
                    env=env, log=log_dir / "sandbox.log", stop_signal=signal.SIGTERM, say=self._say,
                    shows_out=devrun.never, shows_err=devrun.AtLeast(logging.WARNING),
                ),
            )  # fmt: skip
        names = devrun.process_names([child.name for child in children])
        with devrun.OwnTerminal():
            for child in children:
                child.start()
            try:
                failed = self._serve(
                    children, url=url, env=env, demo_file=None if no_demo else demo_file, log_dir=log_dir, names=names
                )
            finally:
                if self._stopping.is_set():
                    # On a line of its own, after the terminal's ^C.
                    self._say("\nStopping (a few seconds; Ctrl-C again stops at once)...")
                killed = self._stop(children)
        if killed:
            self._say(f"Killed after {GRACE_SECONDS} s without stopping: {', '.join(killed)} (logs in {log_dir}).")
        if failed is not None:
            self._explain(failed)
            sys.exit(1)
        self._say(f"Stopped {names}.")

    def _serve(self, children, *, url, env, demo_file, log_dir, names):
        """Until Ctrl-C: None; or the process that stopped by itself."""
        deadline = time.monotonic() + WEB_START_SECONDS
        while not devrun.answers(url, timeout=1):
            stopped = next((child for child in children if not child.running()), None)
            if stopped is not None or self._stopping.wait(0.25):
                return stopped
            if time.monotonic() > deadline:
                self._say(f"The web server does not answer at {url} after {WEB_START_SECONDS} s.")
                return children[0]
        if demo_file is not None:
            banner = self._demo(url=url, env=env, demo_file=demo_file)
            # Printed last: after the request lines of the demo's set-up, not between them.
            settled = time.monotonic() + 2
            while time.monotonic() - self._last_output < 0.3 and time.monotonic() < settled:
                time.sleep(0.05)
            sandbox = settings.ELEVENLABS_SANDBOX and "ElevenLabs: the built-in sandbox (no real calls are placed).\n"
            self._say(
                f"{banner.rstrip()}\n\n{sandbox or ''}"
                f"The workers and beat log to {devrun.shown_path(log_dir)}/ "
                "(their warnings and errors show here too).\n"
                f"`make demo` prints this again; Ctrl-C stops {names}."
            )
        while not self._stopping.wait(0.5):
            stopped = next((child for child in children if not child.running()), None)
            if stopped is not None:
                return stopped
        return None

    def _demo(self, *, url, env, demo_file) -> str:
        # In a process of its own: its settings come from the same environment as the others'.
        command = [sys.executable, "manage.py", "bootstrap_demo", "--host", url, "--file", str(demo_file)]
        done = subprocess.run(
            command, cwd=devrun.ROOT, env=env, capture_output=True, text=True, timeout=120, start_new_session=True
        )
        if done.returncode != 0:
            return f"The demo could not be set up; the server runs anyway.\n{done.stderr.strip()}"
        return done.stdout

    def _stop(self, children) -> list[str]:
        """Stop every process the way it stops cleanly; kill what still runs after the grace time."""
        for child in children:
            child.stop()
        deadline = time.monotonic() + GRACE_SECONDS
        while any(child.running() for child in children) and time.monotonic() < deadline and not self._hurry:
            time.sleep(0.1)
        killed = [child.name for child in children if child.running()]
        for child in children:
            child.kill()  # also whatever a process left behind
            child.wait()
        return killed

    def _explain(self, child) -> None:
        status = child.process.returncode
        how = f"was killed by {signal.Signals(-status).name}" if status < 0 else f"exited with status {status}"
        self._say(f"\nThe {child.name} process {how}, so the others were stopped too.")
        if child.name != "web":  # the web server's output was all shown already
            self._say(f"Its last lines:\n{''.join(child.tail).rstrip()}")
        self._say(f"Its whole log: {devrun.shown_path(child.log_path)}")

    def _on_signal(self, signum, frame):
        # A second Ctrl-C does not wait for the worker's task.
        self._hurry = self._stopping.is_set()
        self._stopping.set()

    def _say(self, text: str) -> None:
        with self._lock:
            self._last_output = time.monotonic()
            try:
                self.stdout.write(text)
                self.stdout.flush()
            except BrokenPipeError:
                pass
