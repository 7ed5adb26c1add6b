"""A view that fails, for the error reporting test (campaigns/tests/test_sentry.py)."""

from django.urls import path


def fails(request):
    raise RuntimeError(f"could not call {request.GET['to']}")


urlpatterns = [path("fails", fails)]
