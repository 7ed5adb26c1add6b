from django.contrib import admin
from django.urls import include, path, re_path

from campaigns.api.views import ApiNotFoundView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("campaigns.api.urls")),
    # Unknown paths under /api/ answer in the JSON error envelope, never an HTML page.
    re_path(r"^api/", ApiNotFoundView.as_view()),
]

handler500 = "campaigns.api.handlers.server_error"
