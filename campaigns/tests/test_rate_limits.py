"""API rate limits count once for every web process: the default cache is one they all share
(a database table, or Redis through CACHE_URL), `check --deploy` warns of one that is not, and
the database cache failing lets requests through like Redis being down.
"""

import contextlib
import importlib
import json
import logging
import os
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.checks import Tags, run_checks
from django.db import connection
from rest_framework.test import APIClient

from campaigns.api import cache_outage

from .test_api_create_campaign import assert_error

ROOT = Path(__file__).resolve().parents[2]
LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
DUMMY = "django.core.cache.backends.dummy.DummyCache"
DATABASE = "django.core.cache.backends.db.DatabaseCache"
REDIS = "django.core.cache.backends.redis.RedisCache"
TABLE = importlib.import_module("campaigns.migrations.0010_rate_limit_cache_table").TABLE
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def run_with(*args: str, **variables) -> subprocess.CompletedProcess:
    """Run Python in a fresh interpreter whose environment holds only what is given here."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "voiceable.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CELERY_BROKER_URL": "memory://",
        **variables,
    }
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def default_cache(**variables) -> dict:
    """settings.CACHES["default"] as voiceable/settings.py builds it from these variables."""
    probe = "import json, django; django.setup(); from django.conf import settings; print(json.dumps(settings.CACHES))"
    done = run_with("-c", probe, **variables)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])["default"]


# --- The default cache ---------------------------------------------------------------------


def test_with_debug_off_and_no_cache_url_the_cache_is_the_table_the_migration_creates():
    assert default_cache(DEBUG="false") == {
        "BACKEND": DATABASE,
        "LOCATION": TABLE,
        "OPTIONS": {"MAX_ENTRIES": 10_000},
    }


def test_with_debug_on_make_run_keeps_its_single_process_memory_cache():
    assert default_cache(DEBUG="true")["BACKEND"] == LOCMEM


def test_cache_url_wins_over_the_default():
    redis_cache = default_cache(DEBUG="false", CACHE_URL="redis://127.0.0.1:6379/1")
    assert (redis_cache["BACKEND"], redis_cache["LOCATION"]) == (REDIS, "redis://127.0.0.1:6379/1")
    assert redis_cache["OPTIONS"] == {"socket_connect_timeout": 0.25, "socket_timeout": 0.25}
    assert default_cache(DEBUG="false", CACHE_URL="locmemcache://")["BACKEND"] == LOCMEM


def test_migrating_creates_the_cache_table_whatever_cache_the_migrating_process_uses(tmp_path):
    database = tmp_path / "db.sqlite3"
    migrate = ("manage.py", "migrate", "--noinput", "--verbosity", "0")

    done = run_with(*migrate, DEBUG="true", DATABASE_URL=f"sqlite:///{database}")  # a memory cache

    assert done.returncode == 0, done.stderr
    with contextlib.closing(sqlite3.connect(database)) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert TABLE in tables


# --- check --deploy ------------------------------------------------------------------------


def cache_warnings(*, deploy: bool = True) -> list[str]:
    messages = run_checks(tags=[Tags.caches], include_deployment_checks=deploy)
    return [message.id for message in messages if message.id.startswith("campaigns.")]


@pytest.mark.parametrize("backend", [LOCMEM, DUMMY])
def test_check_deploy_warns_of_a_per_process_cache_with_debug_off(settings, backend):
    settings.DEBUG = False
    settings.CACHES = {"default": {"BACKEND": backend}}

    assert cache_warnings() == ["campaigns.W001"]
    assert cache_warnings(deploy=False) == []


@pytest.mark.parametrize(
    "cache_settings",
    [
        {"BACKEND": DATABASE, "LOCATION": TABLE},
        {"BACKEND": REDIS, "LOCATION": "redis://127.0.0.1:6379/1"},
    ],
    ids=["database", "redis"],
)
def test_check_deploy_accepts_a_shared_cache(settings, cache_settings):
    settings.DEBUG = False
    settings.CACHES = {"default": cache_settings}

    assert cache_warnings() == []


def test_check_deploy_lets_debug_keep_its_memory_cache(settings):
    settings.DEBUG = True
    settings.CACHES = {"default": {"BACKEND": LOCMEM}}

    assert cache_warnings() == []


def test_check_deploy_fails_on_a_memory_cache_and_passes_on_the_default():
    command = ("manage.py", "check", "--deploy", "--fail-level", "WARNING")
    production = {"DEBUG": "false", "ALLOWED_HOSTS": "campaigns.example.com", "BEHIND_HTTPS_PROXY": "true"}

    memory = run_with(*command, **production, CACHE_URL="locmemcache://")
    default = run_with(*command, **production)

    assert memory.returncode != 0
    assert "campaigns.W001" in memory.stderr and "CACHE_URL" in memory.stderr
    assert default.returncode == 0, default.stderr


# --- The throttles on the database cache ---------------------------------------------------


@pytest.fixture
def limit_of_three(settings):
    settings.API_RATE_LIMIT = "3/min"


@pytest.mark.django_db
def test_on_the_database_cache_a_key_gets_its_limit_then_429(settings, raw_api_key, limit_of_three):
    settings.CACHES = {"default": {"BACKEND": DATABASE, "LOCATION": TABLE}}
    cache.clear()
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw_api_key)

    answers = [client.get("/api/v1/campaigns") for _ in range(4)]

    assert [answer.status_code for answer in answers[:3]] == [200, 200, 200]
    assert [answer["X-RateLimit-Remaining"] for answer in answers[:3]] == ["2", "1", "0"]
    assert_error(answers[3], 429, "Too many requests")
    assert int(answers[3]["Retry-After"]) > 0
    with connection.cursor() as cursor:  # counted in the table, where every process reads it
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(TABLE)}")
        assert cursor.fetchone()[0] == 1


@pytest.fixture
def broken_database_cache(settings, monkeypatch):
    """The database cache on a table that is not there: every read of it fails."""
    monkeypatch.setattr(cache_outage, "_warned_at", {})
    settings.CACHES = {"default": {"BACKEND": DATABASE, "LOCATION": "no_such_cache_table"}}


def outage_warnings(caplog) -> list[str]:
    return [
        record.getMessage().split(" while ")[0]
        for record in caplog.records
        if record.name == "campaigns.api.cache_outage"
    ]


# Outside a transaction, as in production, so the failed statement spoils nothing after it.
@pytest.mark.django_db(transaction=True)
def test_when_the_database_cache_fails_requests_go_through_and_it_is_logged_once(
    broken_database_cache, raw_api_key, limit_of_three, caplog
):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw_api_key)

    with caplog.at_level(logging.WARNING, logger="campaigns.api.cache_outage"):
        answers = [client.get("/api/v1/campaigns") for _ in range(5)]

    assert [answer.status_code for answer in answers] == [200] * 5
    assert not any(header in answer for answer in answers for header in RATE_LIMIT_HEADERS)
    assert outage_warnings(caplog) == ["API rate limiting is off"]


@pytest.mark.django_db(transaction=True)
def test_when_the_database_cache_fails_bad_keys_are_answered_401_not_500(broken_database_cache, settings, caplog):
    settings.API_BAD_KEY_RATE_LIMIT = "2/min"

    with caplog.at_level(logging.WARNING, logger="campaigns.api.cache_outage"):
        answers = [APIClient().get("/api/v1/campaigns", HTTP_X_API_KEY="vk_wrong") for _ in range(4)]

    assert [answer.status_code for answer in answers] == [401] * 4
    assert outage_warnings(caplog) == ["Requests with a bad API key are not counted"]


# --- The throttle on Redis -----------------------------------------------------------------

# A database of its own on the local Redis, as the integration tests have (flushed here).
REDIS_URL = f"redis://127.0.0.1:6379/{int(os.environ.get('INTEGRATION_REDIS_DB', '11'))}"


@pytest.fixture
def redis_cache(settings):
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1).flushdb()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not running at {REDIS_URL}: {exc}")
    settings.CACHES = {"default": {"BACKEND": REDIS, "LOCATION": REDIS_URL}}
    yield cache
    cache.clear()


def test_on_redis_a_key_gets_its_limit_then_429_with_the_same_headers(redis_cache, raw_api_key, limit_of_three):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw_api_key)

    answers = [client.get("/api/v1/campaigns") for _ in range(5)]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429, 429]
    assert [answer["X-RateLimit-Remaining"] for answer in answers] == ["2", "1", "0", "0", "0"]
    assert {answer["X-RateLimit-Limit"] for answer in answers} == {"3"}
    # Reset: when the oldest request of the minute stops counting, the same in every answer.
    assert len({answer["X-RateLimit-Reset"] for answer in answers}) == 1
    assert_error(answers[3], 429, "Too many requests")
    assert 55 <= int(answers[3]["Retry-After"]) <= 60
    # Counted in one sorted set on the server, three requests in it (the refused ones are not).
    import redis

    server = redis.Redis.from_url(REDIS_URL)
    [log] = [key for key in server.scan_iter() if key.endswith(b":log")]
    assert server.zcard(log) == 3


def test_on_redis_a_dropped_connection_loses_no_count(redis_cache, raw_api_key, limit_of_three):
    # Redis restarting, or a proxy closing idle connections: the next request reconnects and is
    # counted with the earlier ones, its headers true.
    import redis

    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw_api_key)
    assert client.get("/api/v1/campaigns")["X-RateLimit-Remaining"] == "2"

    # Only this database's connections: other tests may be using the same server.
    server = redis.Redis.from_url(REDIS_URL)
    me, database = server.client_id(), server.connection_pool.connection_kwargs["db"]
    ours = [c["id"] for c in server.client_list() if int(c["db"]) == database and int(c["id"]) != me]
    assert ours, "the throttle holds a connection to Redis"
    for client_id in ours:
        server.client_kill_filter(_id=client_id)

    answer = client.get("/api/v1/campaigns")
    assert answer.status_code == 200 and answer["X-RateLimit-Remaining"] == "1"
    assert client.get("/api/v1/campaigns")["X-RateLimit-Remaining"] == "0"
    assert client.get("/api/v1/campaigns").status_code == 429


def test_on_redis_each_key_has_its_own_count(redis_cache, raw_api_key, user, limit_of_three):
    from campaigns import services

    other_key = services.api_key_create(user=user, name="second").raw_key
    first, second = APIClient(), APIClient()
    first.credentials(HTTP_X_API_KEY=raw_api_key)
    second.credentials(HTTP_X_API_KEY=other_key)

    for _ in range(3):
        first.get("/api/v1/campaigns")

    assert first.get("/api/v1/campaigns").status_code == 429
    assert second.get("/api/v1/campaigns")["X-RateLimit-Remaining"] == "2"


def test_on_redis_requests_older_than_the_period_stop_counting(redis_cache, raw_api_key, limit_of_three, monkeypatch):
    from campaigns.api.throttling import ApiKeyRateThrottle

    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw_api_key)
    now = [1_800_000_000.0]
    monkeypatch.setattr(ApiKeyRateThrottle, "timer", lambda self: now[0])
    for _ in range(3):
        client.get("/api/v1/campaigns")
        now[0] += 10

    assert client.get("/api/v1/campaigns").status_code == 429  # 20 s after the first
    now[0] += 30  # 60 s after the first: it no longer counts
    allowed = client.get("/api/v1/campaigns")
    assert allowed.status_code == 200 and allowed["X-RateLimit-Remaining"] == "0"
    assert allowed["X-RateLimit-Reset"] == str(1_800_000_010 + 60)
