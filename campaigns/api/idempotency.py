"""Idempotency-Key on every POST of the API (the IETF draft, as Stripe practises it).

A POST sent with `Idempotency-Key: <key>` claims the key for its user before it runs: one
INSERT that the unique (user, key) constraint decides, so of two requests at once exactly one
runs. Its answer (status and body, errors included) is kept for 24 hours and sent again, with
`Idempotent-Replayed: true`, to any repeat of the same request, which runs nothing. A 5xx is
not kept: the key is freed so the client can try again. The same key with another request is
a 422; a repeat while the first still runs is a 409, and so is a repeat of one whose process
stopped mid-request (after ten minutes it says so: it may have taken effect, so it never runs
again).

ApiView calls request_begin() once the request is authenticated and request_end() on the
answer; a request without the header is left alone.
"""

import datetime as dt
import hashlib
import json
import logging
import re

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.http import HttpResponse, QueryDict
from django.utils import timezone

from campaigns.errors import ApplicationError, Conflict, ValidationFailed
from campaigns.models import IdempotencyRecord

from .exceptions import DATABASE_UNAVAILABLE

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEPT_FOR = dt.timedelta(hours=24)
# 1-255 printable ASCII characters, not starting or ending with a space (proxies may trim those).
KEY_PATTERN = re.compile(r"[!-~](?:[ -~]{0,253}[!-~])?")
# A claim still in progress after this long was abandoned: its process stopped mid-request
# (gunicorn gives a request 60 s; an upload's reading and checking fits well within 10 min).
ABANDONED_AFTER = dt.timedelta(minutes=10)
# A claim lost to a record that vanished (expired, or freed by a 5xx) is tried again this often.
CLAIM_ATTEMPTS = 3


class Replay(Exception):
    """The request was answered before: send that answer again, run nothing."""

    def __init__(self, record: IdempotencyRecord):
        super().__init__(record.key)
        response = HttpResponse(record.body, status=record.status_code, content_type=record.content_type or None)
        response[REPLAYED_HEADER] = "true"
        self.response = response


def request_begin(request, *, view) -> None:
    """Claim the request's key, or raise: Replay (answered before), 409 (still running), 422, 400."""
    if request.method != "POST" or _header(request) is None:
        return
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not hasattr(view, "post"):
        return
    if _too_large_to_read(request):
        # The view refuses it unread (413) and runs nothing; reading it here to hash it would
        # defeat that.
        return
    key = _header(request)
    if not KEY_PATTERN.fullmatch(key):
        raise ApplicationError(
            f"{HEADER} must be 1 to 255 printable ASCII characters (a UUID is a good choice).",
            details={"header": HEADER},
        )
    request.idempotency_record = key_claim(user=user, key=key, fingerprint=request_fingerprint(request))


def request_end(request, response) -> None:
    """Keep the answer of the request that claimed a key; free the key after a 5xx."""
    record = getattr(request, "idempotency_record", None)
    if record is None:
        return
    request.idempotency_record = None
    try:
        if response.status_code >= 500:
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
            return
        if hasattr(response, "render"):
            response.render()
        IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyRecord.State.IN_PROGRESS).update(
            state=IdempotencyRecord.State.COMPLETED,
            status_code=response.status_code,
            body=response.content.decode("utf-8"),
            content_type=response.get("Content-Type", ""),
        )
    except DATABASE_UNAVAILABLE as exc:
        # The client still gets its answer; the key stays claimed (a repeat answers 409), which
        # never runs the request twice.
        logger.warning("Could not keep the answer for %s %r: %s", HEADER, record.key, exc)


def key_claim(*, user, key: str, fingerprint: str, now: dt.datetime | None = None) -> IdempotencyRecord:
    """Claim `key` for `user`: the new in-progress record, or raise Replay, Conflict or ValidationFailed."""
    for _ in range(CLAIM_ATTEMPTS):
        now = now or timezone.now()
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(
                    user=user, key=key, fingerprint=fingerprint, expires_at=now + KEPT_FOR
                )
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(user=user, key=key).first()
        if existing is None:
            continue  # freed between our INSERT and this read: claim it again
        if existing.expires_at <= now:
            # Expired, not yet swept: the key is free again. Of several requests deleting it, one
            # INSERT wins the next round.
            IdempotencyRecord.objects.filter(pk=existing.pk, expires_at__lte=now).delete()
            continue
        if existing.fingerprint != fingerprint:
            raise ValidationFailed(
                f"This {HEADER} was already used for a different request (method, path or body). "
                "Use a new key for a new request.",
                details={"header": HEADER},
            )
        if existing.state == IdempotencyRecord.State.IN_PROGRESS and existing.created_at <= now - ABANDONED_AFTER:
            # It may or may not have taken effect: running it again could create a second
            # campaign, so the key stays taken and the client is told what to check.
            raise Conflict(
                f"The request with this {HEADER} did not finish: the server stopped while running it, so it may "
                "or may not have taken effect. Check (for a campaign, GET /api/v1/campaigns) before sending it "
                "again with a new key.",
                details={"header": HEADER, "state": "abandoned"},
            )
        if existing.state == IdempotencyRecord.State.IN_PROGRESS:
            raise Conflict(
                f"A request with this {HEADER} is still being processed. Try again in a moment to get its answer.",
                details={"header": HEADER},
            )
        raise Replay(existing)
    raise Conflict(f"A request with this {HEADER} is still being processed.", details={"header": HEADER})


def request_fingerprint(request) -> str:
    """SHA-256 of what makes a request this request: method, path, query, fields or JSON, files' bytes."""
    data = request.data
    if isinstance(data, QueryDict):
        # Form or multipart: each field and file by name; a file by its name and content (the
        # multipart framing differs on every send, so the raw body cannot be compared).
        body = {"form": [[name, [_form_value(value) for value in data.getlist(name)]] for name in sorted(data.keys())]}
    else:
        body = {"json": data}
    shape = {
        "method": request.method,
        "path": request.path.rstrip("/") or "/",
        "query": sorted([name, sorted(values)] for name, values in request.query_params.lists()),
        **body,
    }
    canonical = json.dumps(shape, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def records_sweep(*, now: dt.datetime | None = None) -> int:
    """Delete the records whose 24 hours are over; how many. Run by beat."""
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted


def _header(request) -> str | None:
    return request.META.get("HTTP_IDEMPOTENCY_KEY")


def _form_value(value):
    if not isinstance(value, UploadedFile):
        return value
    digest = hashlib.sha256()
    for chunk in value.chunks():
        digest.update(chunk)
    value.seek(0)  # the view reads it next
    return {"file": value.name, "sha256": digest.hexdigest()}


def _too_large_to_read(request) -> bool:
    from .views import MULTIPART_OVERHEAD_BYTES  # views imports this module

    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return length > settings.RECIPIENTS_MAX_FILE_BYTES + MULTIPART_OVERHEAD_BYTES
