"""A limit on API requests that bring no valid key, per client address.

Past API_BAD_KEY_RATE_LIMIT such requests from one address (20 a minute by default), the
next ones are answered 429 with Retry-After instead of 401: a misconfigured client or a key
scanner is told to back off. A request with a valid key is never counted or refused here,
whoever shares its address: keys are long random strings, so letting them through gives a
guesser nothing, and one client's mistakes must not lock out a working one behind the same
NAT or proxy. The counts live in the cache every web process shares (as throttling's do);
while it cannot be reached nothing is refused.
"""

from django.conf import settings
from rest_framework.exceptions import Throttled
from rest_framework.throttling import SimpleRateThrottle

from campaigns.client_ip import client_ip

from .cache_outage import CACHE_UNREACHABLE, warn_unreachable


class BadApiKeyThrottle(SimpleRateThrottle):
    scope = "api_bad_key"

    def get_rate(self):
        return settings.API_BAD_KEY_RATE_LIMIT

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request)}


def bad_key_attempt_record(request) -> None:
    """Count a request without a valid key; raise Throttled once its address is past the limit."""
    throttle = BadApiKeyThrottle()
    try:
        allowed = throttle.allow_request(request, view=None)
    except CACHE_UNREACHABLE as exc:
        warn_unreachable("Requests with a bad API key are not counted", exc)
        return
    if not allowed:
        raise Throttled(wait=throttle.wait(), detail="Too many requests without a valid API key.")
