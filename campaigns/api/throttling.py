"""Per-key rate limiting that also tells clients where they stand (X-RateLimit-* headers).

The counts live in the default cache, which every web process shares (Redis in production,
the database when CACHE_URL is unset; the check campaigns.W001 warns of a per-process one), so
a key gets its limit once, however many processes serve it. A rate limiter must not take the
API down with it: while the cache is unreachable, requests go through unthrottled and without
X-RateLimit-* headers (there is nothing true to put in them); see cache_outage.

The limit is DRF's sliding log: a request is refused while the key made API_RATE_LIMIT requests
within the last period. On Redis the log is a sorted set of request times kept on the server
and checked and written by one script: one round trip per request, and nothing sent back and
forth that grows with the limit (DRF's own log is a list read and written whole each time).
"""

import secrets
import weakref

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from redis.commands.core import Script
from rest_framework.throttling import SimpleRateThrottle

from .cache_outage import CACHE_UNREACHABLE, warn_unreachable

# KEYS[1]: the log. ARGV: now, the instant before which requests no longer count, the limit,
# a name for this request, the period in seconds. Returns allowed (1 or 0), the requests now in
# the log, and the time of the oldest (absent when the log is empty).
SLIDING_LOG = Script(
    None,
    b"""
local key = KEYS[1]
redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[2])
local count = redis.call('ZCARD', key)
local allowed = 0
if count < tonumber(ARGV[3]) then
    redis.call('ZADD', key, ARGV[1], ARGV[4])
    redis.call('EXPIRE', key, ARGV[5])
    count = count + 1
    allowed = 1
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {allowed, count, oldest[2]}
""",
)


# Django's Redis cache makes a new client (with its own table of reply handlers) for every
# operation; a client is only a handle on the cache's connection pool, so one per cache object
# (each thread has its own) serves every request.
_CLIENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _redis_client(cache: RedisCache):
    client = _CLIENTS.get(cache)
    if client is None:
        client = _CLIENTS[cache] = cache._cache.get_client(write=True)
    return client


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_rate(self):
        # Read on each request (not fixed when the class is defined), like the bad-key limit.
        return settings.API_RATE_LIMIT

    def get_cache_key(self, request, view):
        ident = f"key-{request.auth.pk}" if request.auth is not None else f"ip-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view):
        try:
            cache = caches["default"]  # the backend itself (self.cache is a proxy to it)
            if self.rate is not None and isinstance(cache, RedisCache):
                allowed, count, oldest = self._redis_log(cache, request, view)
            else:
                allowed = super().allow_request(request, view)
                count = len(getattr(self, "history", ()))
                oldest = self.history[-1] if count else None
        except CACHE_UNREACHABLE as exc:
            warn_unreachable("API rate limiting is off", exc)
            return True
        if self.rate is not None:
            self.count, self.oldest = count, oldest
            reset = int(oldest + self.duration) if oldest is not None else int(self.timer() + self.duration)
            request.rate_limit_headers = {
                "X-RateLimit-Limit": str(self.num_requests),
                "X-RateLimit-Remaining": str(max(self.num_requests - count, 0)),
                "X-RateLimit-Reset": str(reset),
            }
        return allowed

    def wait(self):
        # SimpleRateThrottle.wait, from the count and the oldest time rather than the whole log.
        remaining_duration = self.duration - (self.now - self.oldest) if self.oldest is not None else self.duration
        available_requests = self.num_requests - self.count + 1
        if available_requests <= 0:
            return None
        return remaining_duration / float(available_requests)

    def _redis_log(self, cache: RedisCache, request, view) -> tuple[bool, int, float | None]:
        self.now = self.timer()
        # A key of its own: DRF's list under the plain key is another type of value.
        key = cache.make_and_validate_key(f"{self.get_cache_key(request, view)}:log")
        client = _redis_client(cache)
        since = self.now - self.duration
        args = [repr(self.now), repr(since), self.num_requests, secrets.token_hex(8), self.duration]
        reply = SLIDING_LOG(keys=[key], args=args, client=client)
        oldest = float(reply[2]) if len(reply) > 2 else None
        return bool(reply[0]), int(reply[1]), oldest
