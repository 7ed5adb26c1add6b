"""Logs an operator can search: JSON lines with their context, request ids, and no phone numbers."""

import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from campaigns import tasks
from campaigns.models import Agent, Campaign, PhoneNumber
from campaigns.tests.conftest import csv_file
from voiceable import logs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_lines():
    """What the root logger writes in JSON mode, as the lines it wrote."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def format_one(record: logging.LogRecord) -> str:
    return logs.JsonFormatter().format(record)


def record(message, *args, exc_info=None, **extra):
    made = logging.LogRecord("campaigns.dispatch", logging.WARNING, __file__, 1, message, args, exc_info)
    made.__dict__.update(extra)
    return made


# --- The formatter ---------------------------------------------------------------------------


def test_a_record_is_one_line_of_json_with_its_fields():
    line = format_one(record("Campaign %s part %s\nsubmitted", 7, 2))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "campaigns.dispatch"
    assert entry["message"] == "Campaign 7 part 2\nsubmitted"
    assert entry["timestamp"].endswith("Z") and "T" in entry["timestamp"]
    assert set(entry) == {"timestamp", "level", "logger", "message"}


def test_the_context_and_an_exception_are_fields():
    try:
        raise ValueError("bad value")
    except ValueError:
        failure = sys.exc_info()
    with logs.log_context(campaign_id=7, batch_id=12), logs.log_context(task="campaigns.tasks.campaign_poll"):
        entry = json.loads(format_one(record("failed", exc_info=failure)))
    assert entry["campaign_id"] == 7
    assert entry["batch_id"] == 12
    assert entry["task"] == "campaigns.tasks.campaign_poll"
    assert entry["exc_type"] == "ValueError"
    assert entry["exc_message"] == "bad value"
    assert entry["traceback"].startswith("Traceback (most recent call last)")
    assert "raise ValueError" in entry["traceback"]
    # Out of the block, the context is gone.
    assert "campaign_id" not in json.loads(format_one(record("later")))


def test_a_phone_number_in_a_message_or_an_error_is_hidden():
    try:
        raise RuntimeError("invalid number +1 (415) 555-0123")
    except RuntimeError:
        failure = sys.exc_info()
    entry = json.loads(format_one(record("calling %s and 0044 20 7946 0958", "+14155550123", exc_info=failure)))
    text = json.dumps(entry)
    for digits in ("4155550123", "5550123", "2079460958", "7946 0958"):
        assert digits not in text
    assert entry["message"] == "calling [phone number] and [phone number]"
    # Ids and counts are not numbers to hide.
    assert json.loads(format_one(record("batch 12345678901 of 1000000 rows")))["message"] == (
        "batch 12345678901 of 1000000 rows"
    )


# --- Request ids -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_sane_incoming_request_id_is_echoed_and_on_every_line(json_lines):
    answer = Client().get("/api/v1/campaigns", HTTP_X_REQUEST_ID="edge-4f1c:17")
    assert answer["X-Request-ID"] == "edge-4f1c:17"
    lines = [line for line in json_lines() if line["logger"] == "django.request"]
    assert lines and all(line["request_id"] == "edge-4f1c:17" for line in lines)


@pytest.mark.django_db
def test_without_one_a_request_id_is_made():
    first = Client().get("/api/v1/campaigns")["X-Request-ID"]
    second = Client().get("/api/v1/campaigns")["X-Request-ID"]
    assert len(first) == 32 and first != second


@pytest.mark.django_db
@pytest.mark.parametrize("sent", ["a" * 129, "two words", "line\nbreak", "tab\there", "bell\x07", "é", ""])
def test_an_insane_request_id_is_replaced(sent):
    answer = Client().get("/api/v1/campaigns", HTTP_X_REQUEST_ID=sent)
    assert answer["X-Request-ID"] != sent
    assert logs.REQUEST_ID.fullmatch(answer["X-Request-ID"])


# --- Celery tasks ----------------------------------------------------------------------------


def test_a_task_logs_its_name_id_and_campaign(json_lines, monkeypatch):
    # Whatever the service logs while the task runs; the context is the task's.
    monkeypatch.setattr(
        tasks.tracking, "campaign_poll", lambda campaign_id: logging.getLogger("campaigns.tracking").info("polled")
    )
    tasks.campaign_poll.apply(args=[41], task_id="task-1")
    logging.getLogger("campaigns.tests").info("after the task")
    lines = json_lines()
    during = [line for line in lines if line.get("task_id") == "task-1"]
    assert during, lines
    assert all(line["task"] == "campaigns.tasks.campaign_poll" for line in during)
    assert all(line["campaign_id"] == 41 for line in during)
    assert any(line["message"] == "polled" for line in during)
    assert "task" not in lines[-1] and "campaign_id" not in lines[-1]


def test_a_worker_and_beat_in_json_mode_log_json_lines(tmp_path):
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "x", "LOG_FORMAT": "json", "CELERY_BROKER_URL": "memory://"}
    script = (
        "import logging; from voiceable.celery import app; app.loader.init_worker(); app.log.setup(loglevel='INFO');"
        "logging.getLogger('celery.worker').warning('ready to work')"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    entry = json.loads(done.stdout.strip().splitlines()[-1])
    assert entry["message"] == "ready to work" and entry["logger"] == "celery.worker"


def test_with_debug_on_logs_stay_text_as_make_run_shows_them(tmp_path):
    env = {**os.environ, "DEBUG": "true", "SECRET_KEY": "x", "CELERY_BROKER_URL": "memory://"}
    env.pop("LOG_FORMAT", None)
    script = (
        "import django, logging; django.setup(); from django.conf import settings; print(settings.LOG_FORMAT);"
        "from voiceable.celery import app; app.loader.init_worker(); app.log.setup(loglevel='INFO');"
        "logging.getLogger('celery.worker').warning('as before')"
    )
    env["DJANGO_SETTINGS_MODULE"] = "voiceable.settings"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "text"
    # Celery's own format, which devserver's filter reads ("[date: WARNING/MainProcess] ...").
    line = next(line for line in done.stderr.splitlines() if "as before" in line)
    assert line.startswith("[") and "WARNING/MainProcess] as before" in line
    from campaigns import devrun

    assert devrun.AtLeast(logging.WARNING)(line)


# --- No phone numbers --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_campaign_called_through_the_sandbox_logs_no_phone_number(
    sandbox_live, user, api, settings, json_lines, caplog
):
    settings.SANDBOX_STEP_SECONDS = 0.05
    settings.SANDBOX_CALL_SPACING_SECONDS = 0
    caplog.set_level(logging.DEBUG)
    call_command("sync_elevenlabs", user.username, stdout=io.StringIO())
    agent = Agent.objects.get(user=user, elevenlabs_agent_id="agent_demo_reminders")
    number = PhoneNumber.objects.filter(user=user, supports_outbound=True).first()
    recipients = ["+12125550100", "+14155550123", "+442079460958"]
    form = {
        "name": "Logs",
        "phone_number_id": str(number.pk),
        "agent_id": agent.elevenlabs_agent_id,
        "recipients_file": csv_file("phone_number,first_name\n" + "".join(f"{r},Ann\n" for r in recipients)),
        "send_immediately": "true",
    }
    answer = api.post("/api/v1/campaigns", form, format="multipart")
    assert answer.status_code == 201, answer.content
    campaign_id = answer.json()["data"]["id"]
    tasks.campaign_dispatch.apply(args=[campaign_id])
    deadline = time.monotonic() + 20
    while Campaign.objects.get(pk=campaign_id).status != "completed" and time.monotonic() < deadline:
        time.sleep(0.2)
        tasks.campaign_poll.apply(args=[campaign_id])
    assert Campaign.objects.get(pk=campaign_id).status == "completed"

    written = "\n".join(json.dumps(line) for line in json_lines())
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f'"campaign_id": {campaign_id}' in written
    for phone in [*recipients, number.phone_number]:
        digits = phone.removeprefix("+")
        assert digits not in written
        assert digits not in logged, "logged at the source, before any scrubbing"
