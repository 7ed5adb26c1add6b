"""The API goes on while its cache (Redis in production, else the database) cannot be
reached, and says so.

Rate limits and the count of bad keys live in the cache; neither may take the API down with
it. What stops working is logged at most once a minute per process, not once per request.
"""

import logging
import threading
import time

import redis
from django.db import Error as DatabaseFailure

logger = logging.getLogger(__name__)

# What the cache backends raise when their server cannot be reached: Redis, socket errors, and
# the database cache's database (down, locked, or its table missing).
CACHE_UNREACHABLE = (redis.RedisError, OSError, DatabaseFailure)

WARN_EVERY_SECONDS = 60

_lock = threading.Lock()
_warned_at: dict[str, float] = {}


def warn_unreachable(what_stops: str, exc: Exception) -> None:
    """Log "<what_stops> while the cache is unreachable", unless it was logged in the last minute."""
    now = time.monotonic()
    with _lock:
        last = _warned_at.get(what_stops)
        if last is not None and now - last < WARN_EVERY_SECONDS:
            return
        _warned_at[what_stops] = now
    logger.warning("%s while the cache is unreachable (%s: %s)", what_stops, type(exc).__name__, exc)
