"""docker-compose.yml, Procfile and Dockerfile cannot be started here (no Docker engine), so
each command they run is checked against the code it names."""

import importlib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from voiceable.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_SOURCE = (ROOT / "voiceable" / "settings.py").read_text()


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def words(command) -> list[str]:
    return command if isinstance(command, list) else shlex.split(command)


def assert_runs_our_code(argv: list[str]):
    """gunicorn must name an importable WSGI app; celery must name our app and a real subcommand."""
    if argv[:2] == ["sh", "-c"]:
        for part in argv[2].split("&&"):
            assert_runs_our_code(shlex.split(part.replace("exec ", "")))
        return
    program = argv[0]
    if program == "gunicorn":
        module, _, attribute = argv[1].partition(":")
        assert callable(getattr(importlib.import_module(module), attribute or "application"))
    elif program == "celery":
        assert argv[1:3] == ["-A", "voiceable"]
        assert argv[3] in {"worker", "beat"}
        assert importlib.import_module("voiceable").celery_app is celery_app
    elif program == "python":
        assert argv[1] == "manage.py" and argv[2] in {"migrate", "collectstatic"}
    else:
        pytest.fail(f"unexpected program {program!r}")


def _gunicorn_options(argv: list[str]) -> dict[str, str]:
    if argv[:2] == ["sh", "-c"]:
        argv = shlex.split(argv[2].split("exec ", 1)[1])
    start = argv.index("gunicorn")
    options = argv[start + 2 :]
    return {name: value for name, value in zip(options[::2], options[1::2], strict=False) if name != "--bind"}


def test_every_deployment_path_serves_with_the_same_gunicorn_options():
    # Threaded workers with a long timeout: a sync worker silent for 30 s is killed, and a large
    # campaign's .xlsx export takes longer than that to write.
    procfile = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    dockerfile = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD "))
    found = {
        "Procfile": _gunicorn_options(shlex.split(procfile.removeprefix("web:"))),
        "Dockerfile": _gunicorn_options(json.loads(dockerfile.removeprefix("CMD "))),
        "docker-compose.yml": _gunicorn_options(words(compose()["services"]["web"]["command"])),
    }
    assert found["Procfile"] == found["Dockerfile"] == found["docker-compose.yml"], found
    assert int(found["Procfile"]["--threads"]) > 1 and int(found["Procfile"]["--timeout"]) >= 120


def test_compose_has_the_five_services():
    assert set(compose()["services"]) == {"postgres", "redis", "web", "worker", "beat"}


@pytest.mark.parametrize("service", ["web", "worker", "beat"])
def test_each_compose_service_runs_a_command_of_this_code(service):
    assert_runs_our_code(words(compose()["services"][service]["command"]))


def test_the_app_services_read_only_settings_that_exist_and_reach_postgres_and_redis():
    env = compose()["services"]["web"]["environment"]
    for name in env:
        assert re.search(rf'"{name}"', SETTINGS_SOURCE), f"{name} is not read by settings.py"
    assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:" in env["DATABASE_URL"]
    assert env["CELERY_BROKER_URL"].startswith("redis://redis:")
    assert compose()["services"]["worker"]["environment"] == env


def test_the_beat_schedule_only_names_registered_tasks():
    celery_app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in celery_app.tasks


def test_procfile_processes_run_our_code():
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        assert name in {"release", "web", "worker", "beat"}
        for part in command.replace("${PORT:-8000}", "8000").split("&&"):
            assert_runs_our_code(shlex.split(part))


def test_the_dockerfile_installs_the_requirements_and_serves_with_gunicorn():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install -r requirements.txt" in dockerfile
    cmd = re.search(r"^CMD (.+)$", dockerfile, re.M).group(1)
    assert_runs_our_code(yaml.safe_load(cmd))


# Without collected static files (and their manifest) every page answers 500.
COLLECTSTATIC = ["python", "manage.py", "collectstatic", "--noinput"]


def test_the_procfile_release_step_migrates_then_collects_static_files():
    release = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines())["release"]
    steps = [shlex.split(part) for part in release.split("&&")]
    assert steps == [["python", "manage.py", "migrate", "--noinput"], COLLECTSTATIC]


def test_the_image_compose_serves_collects_static_files_at_build_and_nothing_hides_them():
    dockerfile = (ROOT / "Dockerfile").read_text()
    run = re.search(r"^RUN (.*manage\.py collectstatic.*)$", dockerfile, re.M).group(1)
    assert shlex.split(run)[-4:] == COLLECTSTATIC
    assert dockerfile.index("COPY . .") < dockerfile.index(run) < dockerfile.index("CMD ")
    web = compose()["services"]["web"]
    assert web["build"] == "." and "volumes" not in web


def test_the_dockerfile_collectstatic_step_runs_with_only_what_it_sets():
    # The build has no configuration but the placeholder key the Dockerfile sets.
    env = {"PATH": os.environ.get("PATH", ""), "SECRET_KEY": "collectstatic-only"}
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--dry-run"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_every_variable_in_env_example_is_read_by_settings():
    names = re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    assert names
    for name in names:
        assert f'"{name}"' in SETTINGS_SOURCE, f"{name} is documented but not read"


def test_every_variable_settings_reads_is_in_env_example():
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', SETTINGS_SOURCE))
    assert read and read <= documented, f"undocumented: {sorted(read - documented)}"


def test_the_compose_file_has_no_built_in_sandbox_key_or_webhook_secret():
    env = compose()["services"]["web"]["environment"]
    assert env["ELEVENLABS_SANDBOX"] == "${ELEVENLABS_SANDBOX:-false}"
    assert env["SANDBOX_API_KEY"] == "${SANDBOX_API_KEY:-}"
    assert env["ELEVENLABS_WEBHOOK_SECRET"] == "${ELEVENLABS_WEBHOOK_SECRET:-}"


# --- Starting with the sandbox ----------------------------------------------------------

SANDBOX_KEY = "k" * 32
OWN_SECRET = "whsec_" + "s" * 32
# Sets Django up, then asks the sandbox for its agents with the old constant key and the own one.
PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client

def status(key):
    return Client().get("/sandbox/elevenlabs/v1/convai/agents", headers={"xi-api-key": key}).status_code

print(json.dumps({
    "sandbox": settings.ELEVENLABS_SANDBOX,
    "key": settings.ELEVENLABS_SANDBOX_API_KEY,
    "service_uses_the_sandbox_key": settings.ELEVENLABS_API_KEY == settings.ELEVENLABS_SANDBOX_API_KEY,
    "webhook_secret": settings.ELEVENLABS_WEBHOOK_SECRET,
    "old_constant_key": status("sandbox"),
    "own_key": status(settings.ELEVENLABS_SANDBOX_API_KEY),
}))
"""


def start(tmp_path, **variables) -> subprocess.CompletedProcess:
    """Start Django in a fresh interpreter whose environment holds only what is given here."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "voiceable.settings",
        "SECRET_KEY": "x",
        "DEBUG": "false",
        "CELERY_BROKER_URL": "memory://",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "ALLOWED_HOSTS": "testserver",
        "ELEVENLABS_API_KEY": "",
        **variables,
    }
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def started(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def refusal(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured" in result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_with_debug_off_the_sandbox_without_its_key_and_secret_refuses_to_start_saying_what_to_set(tmp_path):
    result = start(tmp_path, ELEVENLABS_SANDBOX="true", SANDBOX_API_KEY="", ELEVENLABS_WEBHOOK_SECRET="")

    message = refusal(result)
    assert "The ElevenLabs sandbox is on (ELEVENLABS_SANDBOX) with DEBUG off: set SANDBOX_API_KEY to a random key" in (
        message
    )
    assert "at least 32 characters and ELEVENLABS_WEBHOOK_SECRET to a secret of your own" in message
    assert "never for real data" in message


@pytest.mark.parametrize(
    ("key", "secret", "named", "not_named"),
    [
        ("k" * 31, OWN_SECRET, "SANDBOX_API_KEY", "ELEVENLABS_WEBHOOK_SECRET"),
        ("sandbox", OWN_SECRET, "SANDBOX_API_KEY", "ELEVENLABS_WEBHOOK_SECRET"),
        (SANDBOX_KEY, "", "ELEVENLABS_WEBHOOK_SECRET", "SANDBOX_API_KEY"),
        (SANDBOX_KEY, "sandbox-webhook-secret", "ELEVENLABS_WEBHOOK_SECRET", "SANDBOX_API_KEY"),
    ],
    ids=["short-key", "old-constant-key", "no-secret", "readme-default-secret"],
)
def test_with_debug_off_the_sandbox_refuses_a_short_or_known_key_or_secret(tmp_path, key, secret, named, not_named):
    result = start(tmp_path, ELEVENLABS_SANDBOX="true", SANDBOX_API_KEY=key, ELEVENLABS_WEBHOOK_SECRET=secret)

    message = refusal(result)
    assert f"set {named} to" in message
    assert not_named not in message


def test_with_its_own_key_and_secret_the_sandbox_starts_and_the_old_constant_key_gets_401(tmp_path):
    result = start(
        tmp_path, ELEVENLABS_SANDBOX="true", SANDBOX_API_KEY=SANDBOX_KEY, ELEVENLABS_WEBHOOK_SECRET=OWN_SECRET
    )

    shown = started(result)
    assert (shown["sandbox"], shown["key"], shown["webhook_secret"]) == (True, SANDBOX_KEY, OWN_SECRET)
    assert shown["service_uses_the_sandbox_key"]
    assert (shown["old_constant_key"], shown["own_key"]) == (401, 200)


def test_in_development_the_sandbox_needs_nothing_set(tmp_path):
    result = start(tmp_path, DEBUG="true")

    shown = started(result)
    assert (shown["sandbox"], shown["key"], shown["webhook_secret"]) == (True, "sandbox", "sandbox-webhook-secret")
    assert shown["service_uses_the_sandbox_key"]
    assert shown["own_key"] == 200


def test_with_debug_off_and_the_sandbox_off_nothing_about_it_is_required_and_it_answers_404(tmp_path):
    result = start(tmp_path, SANDBOX_API_KEY="", ELEVENLABS_WEBHOOK_SECRET="")

    shown = started(result)
    assert shown["sandbox"] is False
    assert shown["key"] not in ("", "sandbox") and len(shown["key"]) >= 32
    assert (shown["old_constant_key"], shown["own_key"], shown["webhook_secret"]) == (404, 404, "")
