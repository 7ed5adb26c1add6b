"""The Celery application: `celery -A voiceable worker` and `celery -A voiceable beat`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceable.settings")

app = Celery("voiceable")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
