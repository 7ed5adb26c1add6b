"""Django-level error handlers: JSON envelope under /api/, Django's own pages elsewhere.

An unreachable database is an outage, not a bug: it answers 503 (try again) everywhere.
"""

import sys

from django.http import HttpResponse
from django.views import defaults

from .exceptions import DATABASE_UNAVAILABLE, DATABASE_UNAVAILABLE_ERROR, json_error


def server_error(request, *args, **kwargs):
    # Django calls this while it handles (and logs) the uncaught exception, so exc_info holds it.
    if isinstance(sys.exc_info()[1], DATABASE_UNAVAILABLE):
        if request.path.startswith("/api/"):
            return json_error(503, DATABASE_UNAVAILABLE_ERROR)
        return HttpResponse(f"<h1>Service unavailable (503)</h1><p>{DATABASE_UNAVAILABLE_ERROR}</p>", status=503)
    if request.path.startswith("/api/"):
        return json_error(500, "Something went wrong on our side. Please try again.")
    return defaults.server_error(request, *args, **kwargs)
