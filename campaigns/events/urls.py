"""Routes of event webhooks, included by campaigns/api/urls.py and campaigns/web/urls.py."""

from django.urls import path, re_path

from . import api, web

api_urlpatterns = [
    re_path(r"^webhook_endpoints/?$", api.WebhookEndpointListCreateView.as_view(), name="api-webhook-endpoints"),
    re_path(
        r"^webhook_endpoints/(?P<endpoint_id>[^/]+)/?$",
        api.WebhookEndpointDetailView.as_view(),
        name="api-webhook-endpoint",
    ),
]

web_urlpatterns = [
    path("webhooks", web.webhook_list, name="webhook_list"),
    path("webhooks/<int:endpoint_id>/delete", web.webhook_delete, name="webhook_delete"),
    path("webhooks/<int:endpoint_id>/test", web.webhook_test, name="webhook_test"),
]
