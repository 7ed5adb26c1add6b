import os
import sys
import threading
import time

import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from honcho.manager import Manager


class Command(BaseCommand):
    help = (
        "Run the web server, a Celery worker and Celery beat together (one Ctrl-C stops all); "
        "once the web server answers, bootstrap the demo and print how to make a first request."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")
        parser.add_argument("--no-demo", action="store_true", help="Do not run bootstrap_demo.")

    def handle(self, *args, host, port, no_demo, **options):
        python = sys.executable
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        manager = Manager()
        manager.add_process("web", f"{python} manage.py runserver {host}:{port} --noreload", env=env)
        manager.add_process(
            "worker", f"{python} -m celery -A voiceable worker --loglevel INFO --concurrency 2", env=env
        )
        manager.add_process("beat", f"{python} -m celery -A voiceable beat --loglevel INFO", env=env)
        if not no_demo:
            base = f"http://{host}:{port}"
            threading.Thread(target=self._demo_when_ready, args=(base,), daemon=True).start()
        manager.loop()
        sys.exit(manager.returncode)

    def _demo_when_ready(self, base: str) -> None:
        # The sandbox is served by the web process, so the demo can only sync once it answers.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(f"{base}/admin/login/", timeout=2)
                break
            except requests.RequestException:
                time.sleep(0.5)
        try:
            call_command("bootstrap_demo", host=base, stdout=self.stdout)
        except CommandError as exc:
            self.stderr.write(f"bootstrap_demo failed: {exc}")
        if settings.ELEVENLABS_SANDBOX:
            self.stdout.write("ElevenLabs: the built-in sandbox (no real calls are placed).\n")
