"""ElevenLabs' webhook signature: `ElevenLabs-Signature: t=<unix>,v0=<hex>`.

v0 is the hex HMAC-SHA256 of `"{t}.{raw body}"` keyed with the webhook secret, which is
what the official SDKs' `construct_event` verifies.
"""

import hashlib
import hmac

HEADER = "ElevenLabs-Signature"


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The `ElevenLabs-Signature` header value for `body` sent at `timestamp`."""
    message = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"t={timestamp},v0={digest}"
