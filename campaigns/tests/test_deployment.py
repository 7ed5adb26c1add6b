"""docker-compose.yml, Procfile and Dockerfile cannot be started here (no Docker engine), so
each command they run is checked against the code it names."""

import importlib
import re
import shlex
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
        assert argv[1:3] == ["manage.py", "migrate"]
    else:
        pytest.fail(f"unexpected program {program!r}")


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
        assert_runs_our_code(shlex.split(command.replace("${PORT:-8000}", "8000")))


def test_the_dockerfile_installs_the_requirements_and_serves_with_gunicorn():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install -r requirements.txt" in dockerfile
    cmd = re.search(r"^CMD (.+)$", dockerfile, re.M).group(1)
    assert_runs_our_code(yaml.safe_load(cmd))


def test_every_variable_in_env_example_is_read_by_settings():
    names = re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    assert names
    for name in names:
        assert f'"{name}"' in SETTINGS_SOURCE, f"{name} is documented but not read"


def test_every_variable_settings_reads_is_in_env_example():
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', SETTINGS_SOURCE))
    assert read and read <= documented, f"undocumented: {sorted(read - documented)}"
