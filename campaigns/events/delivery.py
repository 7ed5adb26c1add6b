"""Outbound HTTP for event webhooks: which URLs may be called, and one signed POST to one.

Server-side request forgery: a user names the URL, and the worker that calls it sits inside
our network. So a URL is refused when its host resolves to any loopback, private,
link-local, multicast, reserved or otherwise non-global address, at registration and again
at every send. At send time the name is resolved once, every address is checked, and the
connection is opened to the checked address itself, with the name in the Host header and
in TLS (SNI and certificate check): a DNS answer that changes between the check and the
connection (DNS rebinding) cannot move the request elsewhere.
"""

import dataclasses
import ipaddress
import socket
import urllib.parse
from datetime import datetime

import urllib3
from django.conf import settings
from django.utils.module_loading import import_string
from standardwebhooks import Webhook

from campaigns.errors import ValidationFailed

# Enough of a receiver's answer to show what went wrong; the rest is never read.
MAX_RESPONSE_BYTES = 4096
USER_AGENT = "Voiceable-Webhooks/1.0"


@dataclasses.dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # the name as written (IPv6 without brackets)
    port: int
    path: str  # path and query
    address: str  # the checked address the connection goes to

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclasses.dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str  # empty on a 2xx

    @property
    def ok(self) -> bool:
        return not self.error


def address_refused(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    # is_global is false for loopback, private, link-local, reserved, shared (CGNAT) and
    # unspecified ranges; multicast is checked apart because some of it counts as global.
    return not ip.is_global or ip.is_multicast


def resolve(host: str, port: int) -> list[str]:
    """Every address the name resolves to, through OUTBOUND_WEBHOOKS_RESOLVER when one is set."""
    resolver = getattr(settings, "OUTBOUND_WEBHOOKS_RESOLVER", None)
    if resolver:
        return list(import_string(resolver)(host, port))
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def url_target(url: str) -> Target:
    """Check a webhook URL and resolve it; ValidationFailed (naming the URL) when it may not be called."""

    def refuse(why: str):
        return ValidationFailed(f"The URL {url} is refused: {why}.", field="url", details={"field": "url"})

    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise refuse(f"it is not a valid URL ({exc})") from None
    schemes = ("https", "http") if settings.OUTBOUND_WEBHOOKS_ALLOW_HTTP else ("https",)
    if parts.scheme not in schemes:
        raise refuse("only https URLs are accepted" if len(schemes) == 1 else "only https and http URLs are accepted")
    if not parts.hostname:
        raise refuse("it has no host")
    if parts.username is not None or parts.password is not None:
        raise refuse("credentials in the URL are not accepted")
    port = port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    try:
        addresses = [host] if _is_ip(host) else resolve(host, port)
    except (OSError, UnicodeError):
        raise refuse(f"the host {host} does not resolve") from None
    if not addresses:
        raise refuse(f"the host {host} does not resolve")
    if not settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_NETWORKS:
        refused = [address for address in addresses if address_refused(address)]
        if refused:
            raise refuse(f"{host} is a loopback, private, link-local, multicast or reserved address ({refused[0]})")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme=parts.scheme, host=host, port=port, path=path, address=addresses[0])


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def signed_headers(*, secret: str, message_id: str, body: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers: webhook-id, webhook-timestamp and webhook-signature (v1)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id=message_id, timestamp=at, data=body),
    }


def post(*, url: str, body: str, headers: dict[str, str]) -> Outcome:
    """One POST, no redirect followed, short timeouts, at most MAX_RESPONSE_BYTES of the answer read."""
    try:
        target = url_target(url)
    except ValidationFailed as exc:
        return Outcome(None, exc.error)
    timeout = urllib3.Timeout(
        connect=settings.OUTBOUND_WEBHOOKS_CONNECT_TIMEOUT, read=settings.OUTBOUND_WEBHOOKS_READ_TIMEOUT
    )
    options = {"timeout": timeout, "retries": False, "maxsize": 1}
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=settings.OUTBOUND_WEBHOOKS_CA_BUNDLE,
            **options,
        )
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, **options)
    request_headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **headers,
    }
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body.encode(),
            headers=request_headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            answer = response.read(MAX_RESPONSE_BYTES, decode_content=False)
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        return Outcome(None, _describe(exc))
    finally:
        pool.close()
    status = response.status
    if 200 <= status < 300:
        return Outcome(status, "")
    if 300 <= status < 400:
        return Outcome(status, f"HTTP {status}: redirects are not followed")
    text = answer.decode("utf-8", "replace").strip()
    return Outcome(status, f"HTTP {status}" + (f": {text[:200]}" if text else ""))


def _describe(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2: test it first.
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        cause = str(reason).rsplit(": ", 1)[-1]
        return f"Could not connect ({cause})"[:300]
    if isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
        return "Connection timed out"
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return "No answer in time (read timed out)"
    return str(reason)[:300]
