"""Per-key rate limiting that also tells clients where they stand (X-RateLimit-* headers)."""

from rest_framework.throttling import SimpleRateThrottle


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_cache_key(self, request, view):
        ident = f"key-{request.auth.pk}" if request.auth is not None else f"ip-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view):
        allowed = super().allow_request(request, view)
        if self.rate is not None:
            remaining = self.num_requests - len(self.history)
            reset = int(self.history[-1] + self.duration) if self.history else int(self.timer() + self.duration)
            request.rate_limit_headers = {
                "X-RateLimit-Limit": str(self.num_requests),
                "X-RateLimit-Remaining": str(max(remaining, 0)),
                "X-RateLimit-Reset": str(reset),
            }
        return allowed
