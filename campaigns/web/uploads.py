"""Keeping an uploaded recipients file between the preview and the create step.

Browsers cannot refill a file input, so the file is saved once under a random name in the
uploads folder and the form carries a signed token naming it. Only the user who uploaded the
file can use its token, for a day; the file is deleted once the campaign is created, and
files left behind by previews that were never followed up are swept when new ones arrive.
"""

import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core import signing
from django.core.files import File

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
    _sweep(folder)
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


def _sweep(folder: Path) -> None:
    oldest = time.time() - MAX_AGE_SECONDS
    for path in folder.iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < oldest:
                path.unlink(missing_ok=True)
        except OSError:  # another process swept it first
            continue
