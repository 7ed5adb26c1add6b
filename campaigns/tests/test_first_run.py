"""`make run` from a fresh clone: the port is checked first, a development .env is written once,
the demo's key and password survive restarts, and Ctrl-C stops everything quietly."""

import io
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import environ
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from campaigns import devrun, services
from campaigns.models import ApiKey

ROOT = devrun.ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def preflight(port: int, env_file) -> subprocess.CompletedProcess:
    # As the Makefile runs it: before the virtualenv exists, so nothing but the standard library.
    command = [sys.executable, "-m", "campaigns.devrun", "preflight", "--port", str(port), "--env-file", str(env_file)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30)


# --- The port ------------------------------------------------------------------------------


@pytest.mark.parametrize("listening", [True, False], ids=["a-server-listens", "only-bound"])
def test_a_taken_port_stops_make_run_before_anything_with_how_to_choose_another(tmp_path, listening):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        if listening:
            taken.listen()
        port = taken.getsockname()[1]

        result = preflight(port, tmp_path / ".env")

    assert result.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert "choose another port: make run PORT=" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / ".env").exists()  # nothing else was done


def test_the_suggested_port_is_a_free_one():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        problem = devrun.port_problem("127.0.0.1", port)

    suggested = int(problem.rsplit("PORT=", 1)[1])
    assert suggested > port
    assert devrun.port_problem("127.0.0.1", suggested) is None


def test_a_free_port_lets_make_run_go_on(tmp_path):
    result = preflight(free_port(), tmp_path / ".env")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_devserver_on_a_taken_port_says_so_and_starts_nothing(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "manage.py", "devserver", "--port", str(port), "--log-dir", str(tmp_path / "log")],
            cwd=ROOT, env=_devserver_env(tmp_path, port), capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    assert result.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert "choose another port: manage.py devserver --port " in result.stderr
    assert not (tmp_path / "log").exists()


# --- The development .env ------------------------------------------------------------------


def test_the_first_run_writes_a_development_env_once_and_never_replaces_it(tmp_path):
    env_file = tmp_path / ".env"

    first = preflight(free_port(), env_file)
    written = env_file.read_text()
    second = preflight(free_port(), env_file)

    assert first.returncode == second.returncode == 0
    assert "for local development" in first.stdout and second.stdout == ""
    assert env_file.read_text() == written
    assert "local development only" in written
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    # What settings will read from it (settings.py reads .env beside manage.py the same way).
    read: dict = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(environ.Env, "ENVIRON", read)
        environ.Env.read_env(env_file)
    assert read["DEBUG"] == "true"
    assert len(read["SECRET_KEY"]) >= 50


def test_a_development_env_gets_a_key_of_its_own(tmp_path):
    devrun.dev_env_write(tmp_path / "one")
    devrun.dev_env_write(tmp_path / "two")
    assert (tmp_path / "one").read_text() != (tmp_path / "two").read_text()


def test_an_env_of_ones_own_is_left_as_it_is(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=false\nSECRET_KEY=mine\n")

    assert devrun.dev_env_write(env_file) is False
    assert env_file.read_text() == "DEBUG=false\nSECRET_KEY=mine\n"


def test_the_env_file_stays_out_of_git_and_out_of_the_docker_image():
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


# --- The demo survives restarts ------------------------------------------------------------


def bootstrap(*args) -> str:
    out = io.StringIO()
    call_command("bootstrap_demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def demo_file(tmp_path, monkeypatch):
    # Also the default, so that nothing here can touch the project's own var/demo.json.
    path = tmp_path / "var" / "demo.json"
    monkeypatch.setattr(devrun, "DEMO_FILE", path)
    return path


@pytest.mark.django_db(transaction=True)
def test_a_restart_prints_the_same_key_and_password_and_both_still_work(sandbox_live, demo_file):
    first = json.loads(bootstrap("--json", "--file", str(demo_file)))
    browser = Client()
    signed_in = browser.post("/accounts/login/", {"username": first["username"], "password": first["password"]})
    assert signed_in.status_code == 302 and browser.get("/").status_code == 200

    second = json.loads(bootstrap("--json", "--file", str(demo_file)))

    assert (second["api_key"], second["password"]) == (first["api_key"], first["password"])
    assert APIClient().get("/api/v1/agents", HTTP_X_API_KEY=second["api_key"]).status_code == 200
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 1
    # The password was not set again, so the browser is still signed in.
    assert browser.get("/").status_code == 200
    kept = json.loads(demo_file.read_text())
    assert (kept["api_key"], kept["password"]) == (first["api_key"], first["password"])
    assert stat.S_IMODE(demo_file.stat().st_mode) == 0o600


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("lost", ["deleted", "revoked"])
def test_a_kept_key_that_no_longer_works_is_replaced_and_the_new_one_kept(sandbox_live, demo_file, lost):
    first = json.loads(bootstrap("--json", "--file", str(demo_file)))
    key = ApiKey.objects.get(revoked_at__isnull=True)
    if lost == "deleted":  # a new database, as after deleting db.sqlite3
        key.delete()
    else:
        services.api_key_revoke(api_key=key)

    second = json.loads(bootstrap("--json", "--file", str(demo_file)))

    assert second["api_key"] != first["api_key"]
    assert second["password"] == first["password"]
    assert json.loads(demo_file.read_text())["api_key"] == second["api_key"]
    assert APIClient().get("/api/v1/agents", HTTP_X_API_KEY=second["api_key"]).status_code == 200
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_password_changed_since_is_set_back_to_the_printed_one(sandbox_live, demo_file):
    first = json.loads(bootstrap("--json", "--file", str(demo_file)))
    demo = get_user_model().objects.get(username=first["username"])
    demo.set_password("something else")
    demo.save()

    bootstrap("--json", "--file", str(demo_file))

    demo.refresh_from_db()
    assert demo.check_password(first["password"])


@pytest.mark.django_db(transaction=True)
def test_with_debug_on_the_demo_is_kept_in_var_by_default(sandbox_live, demo_file, settings):
    settings.DEBUG = True
    first = bootstrap()

    assert demo_file.exists()
    assert "(kept in" in first
    assert json.loads(demo_file.read_text())["api_key"] in bootstrap()


@pytest.mark.django_db(transaction=True)
def test_with_debug_off_nothing_is_kept_unless_asked(sandbox_live, demo_file):
    bootstrap("--json")
    assert not demo_file.parent.exists()


@pytest.mark.django_db(transaction=True)
def test_show_prints_the_kept_demo_without_asking_elevenlabs(sandbox_live, demo_file, settings):
    first = json.loads(bootstrap("--json", "--file", str(demo_file)))
    settings.ELEVENLABS_BASE_URL = "http://127.0.0.1:9/nowhere"
    closed = f"http://127.0.0.1:{free_port()}"

    shown = bootstrap("--show", "--file", str(demo_file), "--host", closed)

    assert "Voiceable Campaigns is ready." in shown
    assert first["api_key"] in shown and first["password"] in shown
    assert f"Nothing answers at {closed} now: start the service with `make run PORT=" in shown


@pytest.mark.django_db(transaction=True)
def test_show_with_no_demo_yet_and_no_server_says_to_start_make_run(demo_file):
    closed = free_port()

    with pytest.raises(CommandError, match=rf"No demo to show yet .*`make run PORT={closed}` sets one up"):
        bootstrap("--show", "--file", str(demo_file), "--host", f"http://127.0.0.1:{closed}")
    assert not demo_file.exists()


@pytest.mark.django_db(transaction=True)
def test_the_curl_line_works_from_any_folder(sandbox_live, demo_file):
    output = bootstrap("--file", str(demo_file))

    path = ROOT / "examples" / "recipients.csv"
    assert f'-F "recipients_file=@{path}"' in output
    assert path.is_absolute() and path.exists()


# --- devserver: the banner last, and a quiet Ctrl-C ------------------------------------------


def test_only_warnings_and_errors_of_the_worker_reach_the_terminal():
    shows = devrun.AtLeast(logging.WARNING)
    lines = {
        "Please specify a different user using the --uid option.": False,  # before any record
        "[2026-01-01 12:00:00,000: INFO/MainProcess] Task sandbox.tasks.sandbox_tick received": False,
        "[2026-01-01 12:00:00,100: WARNING/MainProcess] No hostname was supplied. Reverting to default 'localhost'": (
            False  # Kombu's, about the filesystem broker's URL
        ),
        "[2026-01-01 12:00:01,000: ERROR/ForkPoolWorker-1] Task campaigns.tasks.campaign_dispatch raised": True,
        "Traceback (most recent call last):": True,
        '  File "campaigns/dispatch.py", line 1, in dispatch': True,
        "ValueError: no": True,
        "2026-01-01 12:00:02,000 INFO campaigns.dispatch sent": False,
        "2026-01-01 12:00:03,000 WARNING campaigns.dispatch slow": True,
    }
    assert {line: shows(line) for line in lines} == lines


def _devserver_env(tmp_path, port: int) -> dict:
    # Not under make (as `make test` runs this), where devserver's advice names `make run`.
    outside_make = {name: value for name, value in os.environ.items() if name not in ("MAKELEVEL", "MAKEFLAGS")}
    return {
        **outside_make,
        "DEBUG": "true",
        "SECRET_KEY": "devserver-test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "BROKER_FILESYSTEM_DIR": str(tmp_path / "broker"),
        "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "celerybeat-schedule"),
        "WEB_UPLOADS_DIR": str(tmp_path / "uploads"),
        "SITE_URL": f"http://127.0.0.1:{port}",
        "ELEVENLABS_API_KEY": "",
        "PYTHONUNBUFFERED": "1",
    }


def test_devserver_prints_the_banner_last_and_stops_on_ctrl_c_quietly_with_status_0(tmp_path):
    port = free_port()
    env = _devserver_env(tmp_path, port)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    command = [
        sys.executable, "manage.py", "devserver", "--port", str(port),
        "--demo-file", str(tmp_path / "demo.json"), "--log-dir", str(tmp_path / "log"),
    ]  # fmt: skip
    # A session of its own: no terminal, as under CI, and the test's Ctrl-C reaches devserver alone.
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(server.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any("Ctrl-C stops" in line for line in lines):
            assert server.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        reader.join(timeout=5)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    output = "".join(lines)

    assert server.returncode == 0, output
    assert "ERROR" not in output and "Traceback" not in output, output
    # The sandbox is on (no ElevenLabs key): its queue has a worker of its own.
    assert output.rstrip().endswith("Stopped the web server, the worker, the sandbox worker and beat."), output
    kept = json.loads((tmp_path / "demo.json").read_text())
    banner = output[output.index("Voiceable Campaigns is ready.") :]
    assert kept["api_key"] in banner and f"http://127.0.0.1:{port}/api/v1/campaigns" in banner
    # The worker's and beat's INFO lines went to their files, not to the terminal.
    assert "INFO/" not in output
    assert "celery@" in (tmp_path / "log" / "worker.log").read_text()
    assert "beat: Starting..." in (tmp_path / "log" / "beat.log").read_text()
    sandbox_log = (tmp_path / "log" / "sandbox.log").read_text()
    assert "sandbox@" in sandbox_log and ".> sandbox " in sandbox_log
