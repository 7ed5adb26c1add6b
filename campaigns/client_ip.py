"""The address of the client that sent a request, for per-client limits (sign-in lockout,
API key throttling).

Behind our HTTPS proxy (settings.BEHIND_HTTPS_PROXY) every connection comes from the proxy,
which appends the address it saw to X-Forwarded-For: the last entry is the client, and the
entries before it are whatever the client sent, never trusted. Without the proxy,
X-Forwarded-For is ignored, since anyone can send one, and REMOTE_ADDR is the client. DRF's
throttles read it the same way (REST_FRAMEWORK["NUM_PROXIES"]).
"""

from django.conf import settings


def client_ip(request) -> str:
    if settings.BEHIND_HTTPS_PROXY:
        added_by_proxy = request.META.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip()
        if added_by_proxy:
            return added_by_proxy
    return request.META.get("REMOTE_ADDR", "")
