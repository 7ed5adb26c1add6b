"""Per-key rate limiting that also tells clients where they stand (X-RateLimit-* headers).

The limits live in the cache (Redis in production). A rate limiter must not take the API
down with it: while the cache is unreachable, requests go through unthrottled and without
X-RateLimit-* headers (there is nothing true to put in them), and a warning is logged at
most once a minute per process.
"""

import logging
import threading
import time

from rest_framework.throttling import SimpleRateThrottle

from .auth_throttle import CACHE_UNREACHABLE

logger = logging.getLogger(__name__)

WARN_EVERY_SECONDS = 60

_warn_lock = threading.Lock()
_warned_at: float | None = None


def _warn_cache_unreachable(exc: Exception) -> None:
    global _warned_at
    now = time.monotonic()
    with _warn_lock:
        if _warned_at is not None and now - _warned_at < WARN_EVERY_SECONDS:
            return
        _warned_at = now
    logger.warning("API rate limiting is off while the cache is unreachable (%s: %s)", type(exc).__name__, exc)


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_cache_key(self, request, view):
        ident = f"key-{request.auth.pk}" if request.auth is not None else f"ip-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view):
        try:
            allowed = super().allow_request(request, view)
        except CACHE_UNREACHABLE as exc:
            _warn_cache_unreachable(exc)
            return True
        if self.rate is not None:
            remaining = self.num_requests - len(self.history)
            reset = int(self.history[-1] + self.duration) if self.history else int(self.timer() + self.duration)
            request.rate_limit_headers = {
                "X-RateLimit-Limit": str(self.num_requests),
                "X-RateLimit-Remaining": str(max(remaining, 0)),
                "X-RateLimit-Reset": str(reset),
            }
        return allowed
