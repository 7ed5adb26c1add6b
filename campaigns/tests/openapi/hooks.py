"""Schemathesis hooks for the conformance run (loaded through SCHEMATHESIS_HOOKS)."""

import re
import uuid

import schemathesis

HEADER = "Idempotency-Key"
VALID_KEY = re.compile(r"^[!-~]([ -~]*[!-~])?$")


@schemathesis.hook
def before_call(context, case, kwargs):
    # A client sends a new Idempotency-Key with each new request; generated keys repeat across
    # cases ("0", "A"…), and a key reused for another request is rightly refused with 422. A
    # valid key becomes a unique one; a malformed key is sent as generated, to be refused.
    for headers in (case.headers, kwargs.get("headers")):
        key = (headers or {}).get(HEADER)
        if isinstance(key, str) and len(key) <= 255 and VALID_KEY.match(key):
            headers[HEADER] = str(uuid.uuid4())
