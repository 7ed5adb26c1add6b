"""Routes of event webhooks, included by campaigns/api/urls.py."""

from django.urls import re_path

from . import api

api_urlpatterns = [
    re_path(r"^webhook_endpoints/?$", api.WebhookEndpointListCreateView.as_view(), name="api-webhook-endpoints"),
    re_path(
        r"^webhook_endpoints/(?P<endpoint_id>[^/]+)/?$",
        api.WebhookEndpointDetailView.as_view(),
        name="api-webhook-endpoint",
    ),
]
