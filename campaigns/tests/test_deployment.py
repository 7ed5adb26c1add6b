"""docker-compose.yml, docker-compose.scale.yml, the Procfile and the Dockerfile cannot be
started here (no Docker engine), so each command they run is checked against the code it
names, each setting they pass against settings.py and the README, and the balancer's config
against what the app expects of a proxy. test_fleet.py runs the same processes for real."""

import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands
from django.urls import resolve

from voiceable.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_SOURCE = (ROOT / "voiceable" / "settings.py").read_text()


class Reset(list):
    """A value an override file replaces rather than extends (`ports: !reset []`)."""


class ComposeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, plus Compose's `!reset` (an override file clearing a base value)."""


ComposeLoader.add_constructor("!reset", lambda loader, node: Reset(loader.construct_sequence(node)))


def compose(name: str = "docker-compose.yml") -> dict:
    return yaml.load((ROOT / name).read_text(), Loader=ComposeLoader)


def scale() -> dict:
    return compose("docker-compose.scale.yml")


def procfile() -> dict[str, str]:
    return dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines())


def words(command) -> list[str]:
    return command if isinstance(command, list) else shlex.split(command)


# The services that run this code (the others are images: PostgreSQL, Redis, HAProxy).
APP_SERVICES = ["migrate", "web", "worker", "beat", "sandbox-worker"]
# Compose service -> the Procfile line it runs the same command as.
SAME_AS_PROCFILE = {"web": "web", "worker": "worker", "beat": "beat", "sandbox-worker": "sandbox"}
GUNICORN = ["gunicorn", "voiceable.wsgi", "--config", "gunicorn.conf.py"]


def celery_queues() -> set[str]:
    """The queues tasks are sent to: the default one, those routed to, and the sandbox's."""
    routes = celery_app.conf.task_routes or {}
    routed = {route["queue"] for route in (routes.values() if isinstance(routes, dict) else []) if "queue" in route}
    return {celery_app.conf.task_default_queue, "sandbox", *routed}


def assert_runs_our_code(argv: list[str]):
    """gunicorn must name an importable WSGI app and our config; celery our app, a real
    subcommand and queues tasks are sent to; manage.py a command that exists."""
    if argv[:2] == ["sh", "-c"]:
        for part in argv[2].split("&&"):
            assert_runs_our_code(shlex.split(part.replace("exec ", "")))
        return
    program = argv[0]
    if program == "gunicorn":
        module, _, attribute = argv[1].partition(":")
        assert callable(getattr(importlib.import_module(module), attribute or "application"))
        assert argv[2:] == ["--config", "gunicorn.conf.py"], "every option is in gunicorn.conf.py"
    elif program == "celery":
        assert argv[1:3] == ["-A", "voiceable"]
        assert argv[3] in {"worker", "beat"}
        assert importlib.import_module("voiceable").celery_app is celery_app
        if "-Q" in argv:
            queues = argv[argv.index("-Q") + 1].split(",")
            assert set(queues) <= celery_queues(), queues
    elif program == "python":
        assert argv[1] == "manage.py"
        assert argv[2] in get_commands(), f"manage.py has no command {argv[2]!r}"
    else:
        pytest.fail(f"unexpected program {program!r}")


def gunicorn_settings(**env) -> dict:
    """What gunicorn.conf.py sets, read in a fresh interpreter with the given environment."""
    probe = (
        "import json, runpy; ns = runpy.run_path('gunicorn.conf.py'); "
        "print(json.dumps({k: ns[k] for k in ('bind', 'workers', 'threads', 'timeout', 'accesslog')}))"
    )
    base = {"PATH": os.environ.get("PATH", ""), "SECRET_KEY": "x", "CELERY_BROKER_URL": "memory://"}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_deployment_path_serves_with_the_same_gunicorn_command():
    dockerfile = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD "))
    found = {
        "Procfile": shlex.split(procfile()["web"]),
        "Dockerfile": json.loads(dockerfile.removeprefix("CMD ")),
        "docker-compose.yml": words(compose()["services"]["web"]["command"]),
    }
    assert found == dict.fromkeys(found, GUNICORN)


def test_gunicorn_takes_its_port_workers_threads_and_timeout_from_the_settings():
    # Threaded workers with a long timeout: a sync worker silent for 30 s is killed, and a large
    # campaign's .xlsx export takes longer than that to write.
    assert gunicorn_settings() == {
        "bind": "0.0.0.0:8000", "workers": 3, "threads": 4, "timeout": 120, "accesslog": "-",
    }  # fmt: skip
    assert gunicorn_settings(PORT="5000", WEB_CONCURRENCY="7", WEB_THREADS="2", WEB_TIMEOUT="300") == {
        "bind": "0.0.0.0:5000", "workers": 7, "threads": 2, "timeout": 300, "accesslog": "-",
    }  # fmt: skip


def test_compose_has_the_services():
    assert set(compose()["services"]) == {"postgres", "redis", *APP_SERVICES}
    assert set(scale()["services"]) == {"web", "worker", "beat", "sandbox-worker", "lb"}


@pytest.mark.parametrize("service", APP_SERVICES)
def test_each_compose_service_runs_a_command_of_this_code(service):
    assert_runs_our_code(words(compose()["services"][service]["command"]))


@pytest.mark.parametrize("service", list(SAME_AS_PROCFILE))
def test_each_compose_process_runs_what_the_procfile_runs(service):
    line = SAME_AS_PROCFILE[service]
    assert words(compose()["services"][service]["command"]) == shlex.split(procfile()[line])


def test_the_sandbox_worker_reads_only_the_sandbox_queue_and_starts_only_with_its_profile():
    service = compose()["services"]["sandbox-worker"]
    assert service["profiles"] == ["sandbox"]
    command = words(service["command"])
    assert command[command.index("-Q") + 1] == "sandbox"
    assert "-Q" not in words(compose()["services"]["worker"]["command"])


def test_migrations_run_once_before_web_worker_and_beat_start():
    services = {**compose()["services"]}
    migrating = [name for name in APP_SERVICES if "migrate" in words(services[name]["command"])]
    assert migrating == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat", "sandbox-worker"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    for name in scale()["services"]:
        assert "command" not in scale()["services"][name] or name == "lb"
    assert [name for name, command in procfile().items() if "migrate" in command] == ["release"]


def documented_settings() -> set[str]:
    """The variables named in the first column of the README's settings table."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    return {
        name
        for row in table.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split(" | ")[0])
    }


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.scale.yml"])
def test_every_variable_the_compose_files_pass_is_read_by_settings_and_documented(name):
    documented = documented_settings()
    for service, spec in compose(name)["services"].items():
        if service in ("postgres", "redis", "lb"):
            continue
        for variable in spec.get("environment", {}):
            assert f'"{variable}"' in SETTINGS_SOURCE, f"{service}: {variable} is not read by settings.py"
            assert variable in documented, f"{service}: {variable} is not in the README's settings table"


def test_the_app_services_reach_postgres_and_redis_with_one_environment():
    env = compose()["services"]["web"]["environment"]
    assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:" in env["DATABASE_URL"]
    assert env["CELERY_BROKER_URL"].startswith("redis://redis:")
    assert env["CACHE_URL"].startswith("redis://redis:")
    for service in APP_SERVICES:
        assert compose()["services"][service]["environment"] == env


def test_the_scaled_web_publishes_no_port_and_the_balancer_takes_it():
    services = scale()["services"]
    assert isinstance(services["web"]["ports"], Reset) and services["web"]["ports"] == []
    assert services["lb"]["ports"] == compose()["services"]["web"]["ports"]
    # The sandbox's webhooks go through the balancer, which must be an allowed host.
    for service in ("web", "worker", "beat", "sandbox-worker"):
        env = services[service]["environment"]
        assert env["SITE_URL"] == "${SITE_URL:-http://lb:8000}"
        assert "lb" in env["ALLOWED_HOSTS"].removesuffix("}").split(",")


def haproxy_config() -> dict[str, list[str]]:
    """deploy/haproxy.cfg as {section header: its directives}, comments left out."""
    sections: dict[str, list[str]] = {}
    current = None
    for raw in (ROOT / "deploy" / "haproxy.cfg").read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line:
            continue
        if not raw[0].isspace():
            current = line
            sections[current] = []
        else:
            sections[current].append(line.strip())
    return sections


def test_the_balancer_round_robins_over_every_web_container_answering_its_health_check():
    lb = scale()["services"]["lb"]
    assert lb["image"].startswith("haproxy:")
    assert "./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in lb["volumes"]
    config = haproxy_config()
    backend = config["backend web"]
    assert "balance roundrobin" in backend
    server = next(line.split() for line in backend if line.startswith("server-template "))
    assert server[3] == "web:8000" and "check" in server
    resolvers = server[server.index("resolvers") + 1]
    assert f"resolvers {resolvers}" in config and "parse-resolv-conf" in config[f"resolvers {resolvers}"]
    check = next(line.split() for line in backend if line.startswith("http-check send"))
    path = check[check.index("uri") + 1]
    assert path in ("/healthz", "/readyz") and resolve(path)
    assert check[check.index("Host") + 1] in compose()["services"]["web"]["environment"]["ALLOWED_HOSTS"]
    # What the app reads behind a proxy (campaigns/client_ip.py, BEHIND_HTTPS_PROXY).
    assert "option forwardfor" in config["defaults"]
    frontend = config["frontend http"]
    assert any(line.startswith("http-request set-header X-Forwarded-Proto https") for line in frontend)
    timeouts = {line.split()[1]: line.split()[2] for line in config["defaults"] if line.startswith("timeout ")}
    assert int(timeouts["server"].removesuffix("s")) > gunicorn_settings()["timeout"]


def test_haproxy_accepts_the_balancer_config():
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed: only the reading of its config above is checked")
    done = subprocess.run(
        ["haproxy", "-c", "-f", str(ROOT / "deploy" / "haproxy.cfg")], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_beat_schedule_only_names_registered_tasks():
    celery_app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in celery_app.tasks


def test_procfile_processes_run_our_code():
    for name, command in procfile().items():
        assert name in {"release", "web", "worker", "beat", "sandbox"}
        for part in command.split("&&"):
            assert_runs_our_code(shlex.split(part))


def test_the_dockerfile_installs_the_requirements_and_serves_with_gunicorn():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install -r requirements.txt" in dockerfile
    cmd = re.search(r"^CMD (.+)$", dockerfile, re.M).group(1)
    assert_runs_our_code(yaml.safe_load(cmd))


# Without collected static files (and their manifest) every page answers 500.
COLLECTSTATIC = ["python", "manage.py", "collectstatic", "--noinput"]


def test_the_procfile_release_step_migrates_then_collects_static_files():
    steps = [shlex.split(part) for part in procfile()["release"].split("&&")]
    assert steps == [["python", "manage.py", "migrate", "--noinput"], COLLECTSTATIC]


def test_the_image_compose_serves_collects_static_files_at_build_and_nothing_hides_them():
    dockerfile = (ROOT / "Dockerfile").read_text()
    run = re.search(r"^RUN (.*manage\.py collectstatic.*)$", dockerfile, re.M).group(1)
    assert shlex.split(run)[-4:] == COLLECTSTATIC
    assert dockerfile.index("COPY . .") < dockerfile.index(run) < dockerfile.index("CMD ")
    web = compose()["services"]["web"]
    assert web["build"] == "."
    mounted = [volume.split(":")[1] for volume in web.get("volumes", [])]
    assert mounted == ["/app/var/uploads"]


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
from django.core.management import get_commands
from django.urls import resolve
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
