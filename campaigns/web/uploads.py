"""Keeping an uploaded recipients file between the preview and the create step.

Browsers cannot refill a file input, so the file is saved once under a random name and the
form carries a signed token naming it. It is saved through Django's storage API (the
`uploads` entry of STORAGES: a folder, WEB_UPLOADS_DIR, unless configured otherwise, such as an
S3-compatible bucket), so the web machine that answers the create step need not be the one
that took the preview. Only the user who uploaded the
file can use its token, for a day; the file is deleted once the campaign is created, and
files left behind by previews never followed up, or half written when a process died, are
swept once their day is over: when new ones arrive, and hourly by beat (`uploads_sweep`).
"""

import datetime as dt
import logging
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

from . import files

logger = logging.getLogger(__name__)

SALT = "campaigns.web.uploads"
MAX_AGE_SECONDS = 24 * 60 * 60
_KEY = re.compile(r"[0-9a-f]{32}")


def uploads_dir() -> Path:
    return Path(settings.WEB_UPLOADS_DIR)


def uploads_storage() -> Storage:
    """Where kept uploads live: STORAGES["uploads"] when configured (shared by every web
    machine, e.g. a bucket), else the folder WEB_UPLOADS_DIR."""
    if "uploads" in settings.STORAGES:
        return storages["uploads"]
    return FileSystemStorage(location=uploads_dir())


@dataclass(frozen=True)
class KeptUpload:
    token: str
    key: str
    name: str
    size: int

    def exists(self) -> bool:
        return uploads_storage().exists(self.key)

    def open(self) -> File:
        """The file as the services read an upload: binary, seekable, with its original name."""
        return File(uploads_storage().open(self.key, "rb"), name=self.name)


def upload_keep(*, user, uploaded) -> KeptUpload:
    storage = uploads_storage()
    uploads_sweep(storage=storage)
    # A random name: never one a client chose, and never an existing file's.
    key = storage.save(uuid.uuid4().hex, uploaded)
    name = Path(uploaded.name or "recipients.csv").name[:200]
    token = signing.dumps({"user": user.pk, "key": key, "name": name}, salt=SALT, compress=True)
    return KeptUpload(token=token, key=key, name=name, size=storage.size(key))


class UploadRefused(Exception):
    """A chosen file of a kind or size the staff forms do not take; nothing was written."""


def upload_choose(*, user, token: str, uploaded) -> KeptUpload | None:
    """The upload a form works from: a newly chosen file, kept, which replaces the one `token`
    names (deleted even when the new one is refused: UploadRefused, before it is written
    anywhere); without one, the upload `token` names, if any."""
    previous = upload_get(user=user, token=token)
    if not uploaded:
        return previous
    if previous:
        upload_discard(previous)
    problem = files.refusal(uploaded.name, uploaded.size, max_bytes=settings.RECIPIENTS_MAX_FILE_BYTES)
    if problem:
        raise UploadRefused(problem)
    return upload_keep(user=user, uploaded=uploaded)


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
    storage = uploads_storage()
    try:
        size = storage.size(key)
    except (FileNotFoundError, OSError):
        return None
    return KeptUpload(token=token, key=key, name=str(data.get("name", "")), size=size)


def upload_discard(kept: KeptUpload) -> None:
    uploads_storage().delete(kept.key)  # a missing file is not an error for delete()


def uploads_sweep(*, storage: Storage | None = None, now: dt.datetime | None = None) -> int:
    """Delete the kept uploads older than MAX_AGE_SECONDS; returns how many expired ones it cleared
    (one another process deleted at the same moment counts too).

    Their tokens have expired, so nothing can use them. Only files named as this module names
    them are touched, whatever else the folder holds. Safe alongside another sweep, and while
    files are being written or discarded.
    """
    storage = uploads_storage() if storage is None else storage
    oldest = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=MAX_AGE_SECONDS)
    try:
        _, names = storage.listdir("")
    except FileNotFoundError:  # nothing was ever uploaded
        return 0
    deleted = 0
    for name in names:
        if not _KEY.fullmatch(name):
            continue
        try:
            if storage.get_modified_time(name) < oldest:
                storage.delete(name)
                deleted += 1
        except FileNotFoundError:  # discarded or swept by another process meanwhile
            continue
        except OSError as exc:  # one file we cannot delete must not stop the sweep, or an upload
            logger.warning("Could not delete the expired upload %s: %s", name, exc)
    return deleted
