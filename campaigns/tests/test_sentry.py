"""Error reporting: off unless SENTRY_DSN is set; when on, what reaches Sentry is scrubbed.

Sentry is played by a real local HTTP server: the service runs in a process of its own with
SENTRY_DSN pointing at it, and the test reads the envelopes that arrive."""

import gzip
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# In the service's process: a request whose view raises, with a key in both credential headers.
FAILING_REQUEST = """
import os, sentry_sdk, wsgiref.util
os.environ["ALLOWED_HOSTS"] = "testserver"
from django.test import override_settings
from voiceable.wsgi import application
environ = {
    "PATH_INFO": "/fails", "QUERY_STRING": "to=%2B1+415+555+0123", "HTTP_HOST": "testserver",
    "HTTP_X_API_KEY": "vk_secret_key_value", "HTTP_AUTHORIZATION": "Bearer vk_secret_key_value",
}
wsgiref.util.setup_testing_defaults(environ)
statuses = []
with override_settings(ROOT_URLCONF="campaigns.tests.sentry_urls"):
    b"".join(application(environ, lambda status, headers, *exc: statuses.append(status)))
print(statuses[0].split()[0])
sentry_sdk.flush(timeout=10)
"""


@pytest.fixture
def sentry_server():
    arrived = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            arrived.append((self.path, self.headers, body.decode("utf-8", "replace")))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://publickey@127.0.0.1:{server.server_address[1]}/1", arrived
    server.shutdown()
    server.server_close()


def run_service(script: str, **env) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "voiceable.settings",
        "SECRET_KEY": "x",
        "DEBUG": "false",
        "CELERY_BROKER_URL": "memory://",
        **env,
    }
    if "SENTRY_DSN" not in env:
        environment.pop("SENTRY_DSN", None)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def test_an_error_in_a_view_reaches_sentry_scrubbed(sentry_server):
    dsn, arrived = sentry_server
    done = run_service(FAILING_REQUEST, SENTRY_DSN=dsn, SENTRY_ENVIRONMENT="staging", SENTRY_RELEASE="1.2.3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "500"

    events = [body for path, _, body in arrived if path == "/api/1/envelope/" and '"type":"event"' in body]
    assert len(events) == 1, arrived
    envelope = events[0]
    event = json.loads(envelope.splitlines()[-1])
    assert event["environment"] == "staging" and event["release"] == "1.2.3"
    (error,) = event["exception"]["values"]
    assert error["type"] == "RuntimeError"
    assert error["value"] == "could not call [phone number]"
    assert event["request"]["url"].endswith("/fails")
    # The key is in neither header, nor anywhere else; nor is the number, in any form.
    for secret in ("vk_secret_key_value", "4155550123", "415 555 0123", "415+555+0123", "415%20555%200123"):
        assert secret not in envelope
    assert "user" not in event or "ip_address" not in event["user"]


def test_without_a_dsn_sentry_is_not_even_imported(sentry_server):
    _, arrived = sentry_server
    script = "import sys, django; django.setup(); print('sentry_sdk' in sys.modules)"
    done = run_service(script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
    assert arrived == []


def test_scrubbing_hides_numbers_everywhere_and_the_credential_headers():
    from voiceable import sentry

    event = {
        "request": {"headers": {"X-Api-Key": "vk_1", "Authorization": "Bearer vk_1", "Accept": "*/*"}},
        "breadcrumbs": {"values": [{"message": "calling +442079460958"}]},
        "extra": {"rows": ["+1 (212) 555-0100", 3]},
    }
    scrubbed = sentry.before_send(event, {})
    assert scrubbed["request"]["headers"] == {"X-Api-Key": "[hidden]", "Authorization": "[hidden]", "Accept": "*/*"}
    assert scrubbed["breadcrumbs"]["values"][0]["message"] == "calling [phone number]"
    assert scrubbed["extra"]["rows"] == ["[phone number]", 3]
