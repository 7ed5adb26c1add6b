import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Tests create many users; the production hasher is deliberately slow.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache(settings):
    # Rate-limit counters live in the cache: each test starts with none left by another. They
    # count in memory here, as under DEBUG: outside it the default is the database, which most
    # tests may not touch (tests of the shared caches set their own).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    from django.core.cache import cache

    cache.clear()
