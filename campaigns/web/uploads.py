"""Keeping an uploaded recipients file between the preview and the create step.

Browsers cannot refill a file input, so the file is saved once under a random name in the
uploads folder and the form carries a signed token naming it. Only the user who uploaded the
file can use its token, for a day; the file is deleted once the campaign is created, and
files left behind by previews never followed up, or half written when a process died, are
swept once their day is over: when new ones arrive, and hourly by beat (`uploads_sweep`).
"""

import logging
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core import signing
from django.core.files import File

logger = logging.getLogger(__name__)

SALT = "campaigns.web.uploads"
MAX_AGE_SECONDS = 24 * 60 * 60
_KEY = re.compile(r"[0-9a-f]{32}")


def uploads_dir() -> Path:
    return Path(settings.WEB_UPLOADS_DIR)


@dataclass(frozen=True)
class KeptUpload:
    token: str
    key: str
    name: str
    size: int

    @property
    def path(self) -> Path:
        return uploads_dir() / self.key

    def open(self) -> File:
        """The file as the services read an upload: binary, seekable, with its original name."""
        return File(self.path.open("rb"), name=self.name)


def upload_keep(*, user, uploaded) -> KeptUpload:
    folder = uploads_dir()
    folder.mkdir(parents=True, exist_ok=True)
    uploads_sweep(folder=folder)
    key = uuid.uuid4().hex
    path = folder / key
    with path.open("xb") as out:
        for chunk in uploaded.chunks():
            out.write(chunk)
    name = Path(uploaded.name or "recipients.csv").name[:200]
    token = signing.dumps({"user": user.pk, "key": key, "name": name}, salt=SALT, compress=True)
    return KeptUpload(token=token, key=key, name=name, size=path.stat().st_size)


def upload_key(*, user, token: str) -> str | None:
    """The key a valid token of `user` names, whether or not its file is still kept."""
    try:
        data = signing.loads(token, salt=SALT, max_age=MAX_AGE_SECONDS)
    except signing.BadSignature:
        return None
    key = str(data.get("key", ""))
    return key if data.get("user") == user.pk and _KEY.fullmatch(key) else None


def upload_get(*, user, token: str) -> KeptUpload | None:
    """The upload `token` names, if it is `user`'s, recent and still on disk."""
    if not token:
        return None
    try:
        data = signing.loads(token, salt=SALT, max_age=MAX_AGE_SECONDS)
    except signing.BadSignature:  # expired tokens included
        return None
    key = str(data.get("key", ""))
    if data.get("user") != user.pk or not _KEY.fullmatch(key):
        return None
    path = uploads_dir() / key
    if not path.is_file():
        return None
    return KeptUpload(token=token, key=key, name=str(data.get("name", "")), size=path.stat().st_size)


def upload_discard(kept: KeptUpload) -> None:
    kept.path.unlink(missing_ok=True)


def uploads_sweep(*, folder: Path | None = None, now: float | None = None) -> int:
    """Delete the kept uploads older than MAX_AGE_SECONDS; returns how many were deleted.

    Their tokens have expired, so nothing can use them. Only files named as this module names
    them are touched, whatever else the folder holds. Safe alongside another sweep, and while
    files are being written or discarded.
    """
    folder = uploads_dir() if folder is None else folder
    oldest = (time.time() if now is None else now) - MAX_AGE_SECONDS
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:  # nothing was ever uploaded
        return 0
    deleted = 0
    for path in entries:
        if not _KEY.fullmatch(path.name):
            continue
        try:
            if path.is_file() and path.stat().st_mtime < oldest:
                path.unlink()
                deleted += 1
        except FileNotFoundError:  # discarded or swept by another process meanwhile
            continue
        except OSError as exc:  # one file we cannot delete must not stop the sweep, or an upload
            logger.warning("Could not delete the expired upload %s: %s", path, exc)
    return deleted
