"""Readiness: can this process serve, and is the rest of the fleet (broker, beat) running?

Each check answers within about a second even when what it checks is down, and says only
whether it passed, how long it took and the kind of failure: /readyz is public, so host
names, addresses and messages stay in the log.
"""

import logging
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.utils import timezone
from kombu import Connection

from campaigns.health.models import Heartbeat
from campaigns.web import uploads

logger = logging.getLogger(__name__)

BEAT = "beat"
# Seconds the broker may take to connect or to answer before it counts as down (per try).
BROKER_TIMEOUT_SECONDS = 0.5
# Seconds PostgreSQL may take to accept the check's connection, and then to answer it (libpq's
# shortest connect timeout is 2).
DATABASE_TIMEOUT_SECONDS = 2
STORAGE_NAME = "health/readyz"


class CheckFailed(Exception):
    """A check that ran and found something wrong, in words safe to show anyone."""


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    milliseconds: float
    error: str = ""

    def as_dict(self) -> dict:
        answer = {"ok": self.ok, "duration_ms": round(self.milliseconds, 1)}
        if self.error:
            answer["error"] = self.error
        return answer


def database() -> None:
    if connection.vendor != "postgresql":  # SQLite: a file, nothing to wait for
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return
    import psycopg

    # A connection of its own, with a deadline for connecting and for answering: a server out of
    # reach, or one that accepts and never answers, fails the check in seconds instead of holding
    # the probe (and this web thread) for as long as TCP waits.
    params = {
        name: value
        for name, value in connection.get_connection_params().items()
        if name not in ("cursor_factory", "context", "prepare_threshold")
    }
    params["connect_timeout"] = DATABASE_TIMEOUT_SECONDS
    params["options"] = f"{params.get('options', '')} -c statement_timeout={DATABASE_TIMEOUT_SECONDS * 1000}".strip()
    with psycopg.connect(**params, autocommit=True) as checked:
        checked.execute("SELECT 1").fetchone()


def cache() -> None:
    key = f"health:readyz:{secrets.token_hex(8)}"
    value = secrets.token_hex(8)
    backend = caches["default"]
    backend.set(key, value, timeout=10)
    try:
        if backend.get(key) != value:
            raise CheckFailed("the value written was not read back")
    finally:
        backend.delete(key)


def broker() -> None:
    # At most one retry, short timeouts to connect and to read: a broker that is down or hangs
    # must cost about a second, not the default of waiting for ever.
    options = {
        **(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}),
        "socket_timeout": BROKER_TIMEOUT_SECONDS,
        "socket_connect_timeout": BROKER_TIMEOUT_SECONDS,
    }
    with Connection(
        settings.CELERY_BROKER_URL, connect_timeout=BROKER_TIMEOUT_SECONDS, transport_options=options
    ) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_SECONDS)


def storage() -> None:
    # The storage the staff form keeps uploads in (UPLOADS_STORAGE, else WEB_UPLOADS_DIR): a read
    # that reaches the backend (a request to S3 and the like), never a write.
    uploads.uploads_storage().exists(STORAGE_NAME)


def beat() -> None:
    at = Heartbeat.objects.filter(name=BEAT).values_list("at", flat=True).first()
    if at is None:
        raise CheckFailed("no heartbeat from beat yet")
    age = (timezone.now() - at).total_seconds()
    if age > settings.BEAT_HEARTBEAT_MAX_AGE_SECONDS:
        raise CheckFailed(f"last heartbeat from beat {age:.0f} s ago")


CHECKS = {"database": database, "cache": cache, "broker": broker, "storage": storage, "beat": beat}


def run(name: str) -> Result:
    started = time.perf_counter()
    try:
        CHECKS[name]()
    except CheckFailed as exc:
        error = str(exc)
    except Exception as exc:
        logger.warning("Readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
        error = type(exc).__name__
    else:
        error = ""
    return Result(name, not error, (time.perf_counter() - started) * 1000, error)


def readiness() -> list[Result]:
    # The database first: beat's heartbeat is read from it, so with the database down beat's
    # check fails without waiting on it again.
    results = []
    for name in CHECKS:
        if name == BEAT and not results[0].ok:
            results.append(Result(name, False, 0.0, "the database, where its heartbeat is, cannot be read"))
            continue
        results.append(run(name))
        if name == "database" and not results[-1].ok:
            connection.close_if_unusable_or_obsolete()
    return results


def heartbeat_record(name: str = BEAT) -> None:
    Heartbeat.objects.update_or_create(name=name, defaults={"at": timezone.now()})
