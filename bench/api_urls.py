"""The project's URLs with a bare DRF view in front: no authentication, no throttle, no database.
What the API's throughput is compared with (bench/api_throughput.py)."""

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from voiceable.urls import handler500  # noqa: F401
from voiceable.urls import urlpatterns as project_urlpatterns


class BareView(APIView):
    authentication_classes = []
    permission_classes = []
    throttle_classes = []

    def get(self, request):
        return Response({"status": {"code": 200, "message": "Success"}, "data": {"ok": True}})


urlpatterns = [path("bench/bare", BareView.as_view()), *project_urlpatterns]
