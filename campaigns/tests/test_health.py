"""/healthz and /readyz, with each dependency really broken through settings."""

import socket
import time
from datetime import timedelta

import pytest
from django.core.files.storage import Storage
from django.db import connection
from django.utils import timezone

from campaigns import tasks
from campaigns.health.models import Heartbeat


class BrokenStorage(Storage):
    """Storage whose backend cannot be reached, as S3 answers when its credentials are wrong."""

    def exists(self, name):
        raise OSError("storage backend unreachable")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nothing listens there


@pytest.fixture
def ready(db, settings, tmp_path):
    settings.WEB_UPLOADS_DIR = tmp_path
    settings.BEAT_HEARTBEAT_MAX_AGE_SECONDS = 120
    tasks.beat_heartbeat()


def test_healthz_answers_in_the_envelope_without_touching_the_database(db, client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": {"code": 200, "message": "Alive"}, "data": {"alive": True}}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_answers_with_the_database_out_of_reach(client):
    # No `db` fixture: any query would raise.
    assert client.get("/healthz").status_code == 200


def test_healthz_answers_get_only(client):
    assert client.post("/healthz").status_code == 405


def test_readyz_reports_every_check_passed_with_its_duration(client, ready):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == {"code": 200, "message": "Ready"}
    checks = body["data"]["checks"]
    assert set(checks) == {"database", "cache", "broker", "storage", "beat"}
    assert all(check["ok"] and check["duration_ms"] >= 0 for check in checks.values())


def test_readyz_needs_no_session_and_no_csrf_token(ready):
    from django.test import Client

    assert Client(enforce_csrf_checks=True).get("/readyz").status_code == 200


def assert_not_ready(client, *names):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == {"code": 503, "message": "Service Unavailable"}
    assert body["error"] == f"Not ready: {', '.join(names)}."
    failed = {name for name, check in body["details"]["checks"].items() if not check["ok"]}
    assert failed == set(names)
    return body


def test_a_broker_nobody_listens_on_fails_readyz_within_two_seconds(client, ready, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    started = time.monotonic()
    body = assert_not_ready(client, "broker")
    assert time.monotonic() - started < 2
    # The kind of failure only: the broker's address stays in the log.
    assert body["errors"] == ["broker: OperationalError"]
    assert "127.0.0.1" not in str(body)


def test_a_broker_that_accepts_and_never_answers_fails_readyz_within_two_seconds(client, ready, settings):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the connections; nothing ever answers
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        started = time.monotonic()
        assert_not_ready(client, "broker")
        assert time.monotonic() - started < 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a database server that hangs")
def test_a_database_that_accepts_and_never_answers_fails_readyz_within_three_seconds(
    client, ready, monkeypatch, transactional_db
):
    real = connection.get_connection_params()
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the connections; nothing ever answers
        port = silent.getsockname()[1]
        monkeypatch.setattr(connection, "get_connection_params", lambda: {**real, "host": "127.0.0.1", "port": port})
        started = time.monotonic()
        body = assert_not_ready(client, "database", "beat")
        assert time.monotonic() - started < 3
    # Beat's heartbeat is in the database: it is not read again, and says why.
    assert body["details"]["checks"]["beat"]["error"] == "the database, where its heartbeat is, cannot be read"
    assert body["errors"][0] == "database: ConnectionTimeout"


def test_a_cache_that_cannot_be_reached_fails_readyz(client, ready, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
        }
    }
    assert_not_ready(client, "cache")


def test_storage_that_raises_fails_readyz(client, ready, settings):
    settings.STORAGES = {**settings.STORAGES, "uploads": {"BACKEND": f"{__name__}.BrokenStorage"}}
    assert assert_not_ready(client, "storage")["errors"] == ["storage: OSError"]


def test_no_heartbeat_from_beat_fails_readyz(client, ready):
    Heartbeat.objects.all().delete()
    assert assert_not_ready(client, "beat")["errors"] == ["beat: no heartbeat from beat yet"]


def test_a_heartbeat_older_than_the_setting_fails_readyz(client, ready, settings):
    Heartbeat.objects.update(at=timezone.now() - timedelta(seconds=121))
    assert assert_not_ready(client, "beat")["errors"] == ["beat: last heartbeat from beat 121 s ago"]
    settings.BEAT_HEARTBEAT_MAX_AGE_SECONDS = 300
    assert client.get("/readyz").status_code == 200


def test_the_heartbeat_task_moves_the_heartbeat_on(ready):
    Heartbeat.objects.update(at=timezone.now() - timedelta(hours=1))
    tasks.beat_heartbeat()
    assert timezone.now() - Heartbeat.objects.get(name="beat").at < timedelta(seconds=5)


def test_beat_runs_the_heartbeat_often_enough_and_drops_a_late_one(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["beat-heartbeat"]
    assert entry["task"] == "campaigns.tasks.beat_heartbeat"
    assert entry["schedule"] < settings.BEAT_HEARTBEAT_MAX_AGE_SECONDS
    assert entry["options"]["expires"] <= entry["schedule"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_over_plain_http_are_not_redirected_to_https(client, ready, settings, path):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get(path).status_code == 200
    assert client.get("/metrics").status_code == 301


def test_the_probes_and_metrics_stay_out_of_the_api_document(db, client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert paths and all(path.startswith("/api/v1/") for path in paths)
    assert not {"/healthz", "/readyz", "/metrics"} & set(paths)
