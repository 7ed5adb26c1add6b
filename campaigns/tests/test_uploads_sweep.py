"""Kept uploads of the staff form are deleted once their day is over, by beat as well as by new uploads."""

import datetime as dt
import os
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.storage import storages

from campaigns import tasks
from campaigns.web import uploads
from campaigns.web.uploads import MAX_AGE_SECONDS, uploads_sweep

DAY = MAX_AGE_SECONDS


@pytest.fixture
def folder(tmp_path, settings):
    settings.WEB_UPLOADS_DIR = tmp_path / "uploads"
    settings.WEB_UPLOADS_DIR.mkdir()
    return settings.WEB_UPLOADS_DIR


def kept_file(folder: Path, *, age: float, name: str | None = None) -> Path:
    """A file as upload_keep writes it (a random hex name), last written `age` seconds ago."""
    path = folder / (name or uuid.uuid4().hex)
    path.write_bytes(b"phone_number\n+14155550123\n")
    written = time.time() - age
    os.utime(path, (written, written))
    return path


def test_uploads_older_than_a_day_are_deleted_and_fresh_ones_kept(folder):
    old = [kept_file(folder, age=DAY + 60), kept_file(folder, age=3 * DAY)]
    fresh = [kept_file(folder, age=0), kept_file(folder, age=DAY - 60)]

    deleted = uploads_sweep()

    assert deleted == 2
    assert [path.exists() for path in old] == [False, False]
    assert [path.exists() for path in fresh] == [True, True]


def test_a_half_written_upload_left_by_a_crash_is_deleted_once_its_day_is_over(folder):
    # A process that died while writing leaves a short file under its key, with no token to use it.
    crashed = folder / uuid.uuid4().hex
    crashed.write_bytes(b"phone_numb")
    os.utime(crashed, (time.time() - DAY - 1, time.time() - DAY - 1))

    uploads_sweep()

    assert not crashed.exists()


def test_files_the_uploads_do_not_name_are_never_touched_however_old(folder):
    others = [
        kept_file(folder, age=3 * DAY, name="notes.txt"),
        kept_file(folder, age=3 * DAY, name=uuid.uuid4().hex.upper()),
        kept_file(folder, age=3 * DAY, name=uuid.uuid4().hex + ".csv"),
    ]
    (folder / uuid.uuid4().hex).mkdir()

    assert uploads_sweep() == 0
    assert all(path.exists() for path in others)


def test_a_file_that_vanishes_while_being_swept_is_fine(folder, monkeypatch):
    # Given two expired uploads, one of which another process deletes just before this sweep does
    vanishing, other = kept_file(folder, age=2 * DAY), kept_file(folder, age=2 * DAY)
    remove = os.remove

    def deleted_by_someone_else_first(path, *args, **kwargs):
        if Path(path) == vanishing:
            remove(path)
        return remove(path, *args, **kwargs)

    monkeypatch.setattr(os, "remove", deleted_by_someone_else_first)

    # When the sweep runs, then it carries on and the other one is gone too (both were expired
    # uploads cleared, whoever deleted the first)
    assert uploads_sweep() == 2
    assert not vanishing.exists() and not other.exists()


def test_a_file_that_cannot_be_deleted_does_not_stop_the_sweep(folder, monkeypatch, caplog):
    stuck, other = kept_file(folder, age=2 * DAY), kept_file(folder, age=2 * DAY)
    remove = os.remove

    def refused_for_one(path, *args, **kwargs):
        if Path(path) == stuck:
            raise PermissionError(13, "Permission denied")
        return remove(path, *args, **kwargs)

    monkeypatch.setattr(os, "remove", refused_for_one)

    assert uploads_sweep() == 1
    assert stuck.exists() and not other.exists()
    assert "Could not delete the expired upload" in caplog.text


def test_a_folder_that_does_not_exist_yet_is_nothing_to_sweep(tmp_path, settings):
    settings.WEB_UPLOADS_DIR = tmp_path / "never-created"

    assert uploads_sweep() == 0


def test_the_beat_task_sweeps_the_uploads_folder(folder):
    old, fresh = kept_file(folder, age=DAY + 1), kept_file(folder, age=1)

    tasks.uploads_sweep.apply()

    assert (old.exists(), fresh.exists()) == (False, True)


def test_beat_runs_the_sweep_hourly_by_default():
    entry = django_settings.CELERY_BEAT_SCHEDULE["uploads-sweep"]

    assert entry["task"] == "campaigns.tasks.uploads_sweep"
    assert entry["schedule"] == 3600


def test_a_new_upload_still_sweeps_the_expired_ones(folder, user):
    old = kept_file(folder, age=DAY + 1)

    class Upload:
        name = "recipients.csv"

        def chunks(self):
            yield b"phone_number\n+14155550123\n"

    kept = uploads.upload_keep(user=user, uploaded=Upload())

    assert not old.exists()
    assert kept.exists() and (folder / kept.key).is_file()


def test_uploads_go_through_the_configured_storage_not_the_local_folder(tmp_path, settings, user):
    # A web machine that did not take the preview finds the file: it is in the shared storage
    # (Django's in-memory storage stands in for a bucket: it is not a folder of this machine).
    settings.WEB_UPLOADS_DIR = tmp_path / "never-written"
    settings.STORAGES = {
        **settings.STORAGES,
        "uploads": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    content = b"phone_number\n+14155550123\n"

    class Upload:
        name = "recipients.csv"

        def chunks(self):
            yield content

    kept = uploads.upload_keep(user=user, uploaded=Upload())
    found = uploads.upload_get(user=user, token=kept.token)

    assert found is not None and found.size == len(content)
    assert found.open().read() == content
    assert storages["uploads"].listdir("")[1] == [kept.key]
    assert not settings.WEB_UPLOADS_DIR.exists()
    # A day later the sweep deletes it there too.
    assert uploads_sweep(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=1, minutes=1)) == 1
    assert storages["uploads"].listdir("")[1] == []
