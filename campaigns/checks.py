"""System checks of the deployment (`manage.py check --deploy`)."""

from django.conf import settings
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.checks import Tags, Warning, register
from django.utils.module_loading import import_string

# Caches that each process keeps to itself (or not at all).
PER_PROCESS_CACHES = (LocMemCache, DummyCache)


@register(Tags.caches, Tags.security, deploy=True)
def rate_limit_cache_shared(app_configs, **kwargs):
    """The API's rate limits count in the default cache: it must be one every web process shares."""
    if settings.DEBUG:
        return []
    backend = settings.CACHES["default"]["BACKEND"]
    if not issubclass(import_string(backend), PER_PROCESS_CACHES):
        return []
    return [
        Warning(
            f"The default cache ({backend}) is not shared between processes: API rate limits are "
            "then counted by each web process on its own (a client gets the limit once per process), "
            "or with DummyCache not at all.",
            hint="Set CACHE_URL to redis://… (recommended), or leave it unset to use the database cache.",
            id="campaigns.W001",
        )
    ]
