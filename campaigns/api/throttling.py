"""Per-key rate limiting that also tells clients where they stand (X-RateLimit-* headers).

The counts live in the default cache, which every web process shares (Redis in production,
the database when CACHE_URL is unset; the check campaigns.W001 warns of a per-process one), so
a key gets its limit once, however many processes serve it. A rate limiter must not take the
API down with it: while the cache is unreachable, requests go through unthrottled and without
X-RateLimit-* headers (there is nothing true to put in them); see cache_outage.
"""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from .cache_outage import CACHE_UNREACHABLE, warn_unreachable


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
            allowed = super().allow_request(request, view)
        except CACHE_UNREACHABLE as exc:
            warn_unreachable("API rate limiting is off", exc)
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
