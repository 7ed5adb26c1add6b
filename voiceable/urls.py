from django.conf import settings
from django.contrib import admin
from django.contrib.auth import urls as auth_urls
from django.urls import include, path, re_path

from campaigns.api.views import ApiNotFoundView
from campaigns.health import views as health
from campaigns.webhooks import elevenlabs_webhook

# Sign-in, sign-out and password change; password reset only when mail can be sent
# (settings.PASSWORD_RESET_ENABLED).
account_urls = [
    pattern
    for pattern in auth_urls.urlpatterns
    if settings.PASSWORD_RESET_ENABLED or not pattern.name.startswith("password_reset")
]

urlpatterns = [
    # Outside /api/v1 (and its OpenAPI document): for probes and Prometheus, not programs.
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("campaigns.api.urls")),
    path("webhooks/elevenlabs", elevenlabs_webhook, name="elevenlabs-webhook"),
    # Answers 404 unless settings.ELEVENLABS_SANDBOX is on.
    path("sandbox/elevenlabs/", include("sandbox.urls")),
    # Unknown paths under /api/ answer in the JSON error envelope, never an HTML page.
    re_path(r"^api/", ApiNotFoundView.as_view()),
    path("accounts/", include(account_urls)),
    path("", include("campaigns.web.urls")),
]

handler500 = "campaigns.api.handlers.server_error"
