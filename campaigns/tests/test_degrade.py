"""Degrade, don't fail: a rate-limit cache that is down or stuck lets API requests through
(quickly, without X-RateLimit-* headers), and a database that is down answers 503, not 500.
"""

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import InterfaceError, OperationalError
from django.test import RequestFactory

from campaigns.api import cache_outage
from campaigns.api.exceptions import exception_handler
from campaigns.api.handlers import server_error

ROOT = Path(__file__).resolve().parents[2]
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def settings_for(**env) -> dict:
    """CACHES and DATABASES as voiceable/settings.py builds them from these variables."""
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps({'CACHES': settings.CACHES, 'DATABASES': settings.DATABASES}, default=str))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "voiceable.settings",
        "SECRET_KEY": "x",
        "DEBUG": "false",
        "ELEVENLABS_SANDBOX": "false",
        **env,
    }
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def hung_port():
    """A server that accepts connections and never answers, like a Redis that hangs."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield server.getsockname()[1]


@pytest.fixture(autouse=True)
def _no_warning_yet(monkeypatch):
    monkeypatch.setattr(cache_outage, "_warned_at", {})


def use_redis_cache(settings, port: int):
    """The cache settings production gets from CACHE_URL=redis://…, pointed at `port`."""
    settings.CACHES = settings_for(CACHE_URL=f"redis://127.0.0.1:{port}/1")["CACHES"]


@pytest.mark.django_db
def test_with_the_rate_limit_cache_down_reads_answer_without_rate_limit_headers(api, settings):
    use_redis_cache(settings, closed_port())

    response = api.get("/api/v1/campaigns")

    assert response.status_code == 200, response.content
    assert not any(header in response for header in RATE_LIMIT_HEADERS)


@pytest.mark.django_db
def test_with_the_rate_limit_cache_down_a_campaign_is_still_created(api, campaign_form, settings):
    use_redis_cache(settings, closed_port())

    response = api.post("/api/v1/campaigns", campaign_form(), format="multipart")

    assert response.status_code == 201, response.content


@pytest.mark.django_db
def test_a_hung_rate_limit_cache_costs_a_fraction_of_a_second(api, settings, hung_port):
    use_redis_cache(settings, hung_port)

    started = time.monotonic()
    response = api.get("/api/v1/campaigns")

    assert response.status_code == 200
    assert time.monotonic() - started < 1
    assert not any(header in response for header in RATE_LIMIT_HEADERS)


@pytest.mark.django_db
def test_the_cache_being_down_is_logged_once_a_minute_not_per_request(api, settings, caplog):
    use_redis_cache(settings, closed_port())

    with caplog.at_level(logging.WARNING, logger="campaigns.api.cache_outage"):
        for _ in range(3):
            assert api.get("/api/v1/campaigns").status_code == 200
        assert len(caplog.records) == 1
        assert "rate limiting is off" in caplog.records[0].getMessage()

        for what in cache_outage._warned_at:  # a minute later
            cache_outage._warned_at[what] -= cache_outage.WARN_EVERY_SECONDS
        api.get("/api/v1/campaigns")
        assert len(caplog.records) == 2


@pytest.mark.django_db
def test_rate_limiting_resumes_with_its_headers_once_the_cache_is_back(api, settings):
    use_redis_cache(settings, closed_port())
    assert "X-RateLimit-Limit" not in api.get("/api/v1/campaigns")

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    assert "X-RateLimit-Limit" in api.get("/api/v1/campaigns")


def test_a_redis_cache_is_configured_to_give_up_quickly():
    options = settings_for(CACHE_URL="redis://127.0.0.1:6379/1")["CACHES"]["default"]["OPTIONS"]
    assert 0 < options["socket_connect_timeout"] <= 0.5
    assert 0 < options["socket_timeout"] <= 0.5


def test_a_persistent_database_connection_is_checked_before_it_is_reused():
    database = settings_for(DATABASE_URL="postgres://voiceable@db.example:5432/voiceable")["DATABASES"]["default"]
    assert database["CONN_MAX_AGE"] > 0
    assert database["CONN_HEALTH_CHECKS"] is True


def test_postgresql_connections_give_up_connecting_after_a_setting():
    database = settings_for(DATABASE_URL="postgres://voiceable@db.example:5432/voiceable")["DATABASES"]["default"]
    assert database["OPTIONS"]["connect_timeout"] == 5
    tight = settings_for(DATABASE_URL="postgres://voiceable@db.example:5432/voiceable", DATABASE_CONNECT_TIMEOUT="2")
    assert tight["DATABASES"]["default"]["OPTIONS"]["connect_timeout"] == 2


@pytest.mark.parametrize(
    "exc",
    [
        OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused'),
        OperationalError("terminating connection due to administrator command"),
        InterfaceError("connection already closed"),
    ],
)
def test_a_database_outage_in_an_api_view_is_a_503_in_the_envelope(exc):
    response = exception_handler(exc, {})

    assert response.status_code == 503
    assert response.data["status"] == {"code": 503, "message": "Service unavailable"}
    assert "temporarily unavailable" in response.data["error"]


def answer_while_handling(exc: Exception, path: str):
    """What Django's 500 handler answers while it handles `exc` for a request to `path`."""
    try:
        raise exc
    except Exception:
        return server_error(RequestFactory().get(path))


def test_a_database_outage_outside_the_views_is_a_503_too():
    response = answer_while_handling(OperationalError("connection refused"), "/api/v1/campaigns")

    assert response.status_code == 503
    body = json.loads(response.content)
    assert body["status"] == {"code": 503, "message": "Service unavailable"}
    assert "temporarily unavailable" in body["error"]
    assert answer_while_handling(OperationalError("connection refused"), "/campaigns/").status_code == 503


def test_other_errors_outside_the_views_are_still_a_500():
    response = answer_while_handling(ValueError("a bug"), "/api/v1/campaigns")

    assert response.status_code == 500
    assert json.loads(response.content)["status"]["code"] == 500
