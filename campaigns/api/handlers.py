"""Django-level error handlers: JSON envelope under /api/, Django's own pages elsewhere."""

from django.views import defaults

from .exceptions import json_error


def server_error(request, *args, **kwargs):
    if request.path.startswith("/api/"):
        return json_error(500, "Something went wrong on our side. Please try again.")
    return defaults.server_error(request, *args, **kwargs)
