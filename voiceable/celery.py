"""The Celery application: `celery -A voiceable worker` and `celery -A voiceable beat`."""

import inspect
import logging.config
import os
from pathlib import Path

from celery import Celery, signals

from voiceable import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceable.settings")

app = Celery("voiceable")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_configure.connect
def _make_local_folders(sender, **kwargs):
    # The filesystem broker and beat's schedule file live in folders that must exist.
    from django.conf import settings

    for folder in getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}).values():
        if isinstance(folder, str):
            Path(folder).mkdir(parents=True, exist_ok=True)
    Path(settings.CELERY_BEAT_SCHEDULE_FILENAME).parent.mkdir(parents=True, exist_ok=True)

    # Celery replaces the root logger's handlers with its own text format unless a receiver of
    # setup_logging configures logging itself. In JSON mode the worker and beat log exactly as
    # the web process does (settings.LOGGING); text mode keeps Celery's own lines, which
    # `make run` filters by their level.
    if settings.LOG_FORMAT == "json":
        signals.setup_logging.connect(_logging_as_settings_say, weak=False)


def _logging_as_settings_say(**kwargs):
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


# Every record a task logs says which task, and which campaign or batch when its arguments name one.
_task_context: dict[str, object] = {}


@signals.task_prerun.connect
def _task_context_push(task_id=None, task=None, args=None, kwargs=None, **extra):
    fields = {"task": getattr(task, "name", None), "task_id": task_id}
    try:
        arguments = inspect.signature(task.run).bind_partial(*(args or ()), **(kwargs or {})).arguments
    except (TypeError, ValueError):
        arguments = {}
    for name in ("campaign_id", "batch_id"):
        if isinstance(arguments.get(name), int | str):
            fields[name] = arguments[name]
    _task_context[task_id] = logs.context_push(**fields)


@signals.task_postrun.connect
def _task_context_pop(task_id=None, **extra):
    token = _task_context.pop(task_id, None)
    if token is not None:
        logs.context_pop(token)
