"""Webhook endpoints over the API: add one (its secret shown once), list them with their health, delete one."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from campaigns.api.envelope import success
from campaigns.api.serializers import TextField, UtcDateTimeField
from campaigns.api.views import ApiView

from . import services

# --- Serializers ------------------------------------------------------------------------------


class WebhookEndpointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField(), help_text="Event types sent; empty: every event.")
    created_at = UtcDateTimeField()
    last_success_at = UtcDateTimeField(allow_null=True, help_text="Last delivery the endpoint accepted (2xx).")
    last_failure_at = UtcDateTimeField(allow_null=True)
    failing_since = UtcDateTimeField(
        allow_null=True, help_text="First failed attempt since the last success; null when healthy."
    )
    last_error = serializers.CharField(help_text="What the last failed attempt got; empty after a success.")
    disabled = serializers.BooleanField(help_text="True once it failed for days on end: nothing is sent to it.")
    disabled_at = UtcDateTimeField(allow_null=True)
    disabled_reason = serializers.CharField()


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(help_text="The signing secret (whsec_…). Shown in this answer only.")


class WebhookEndpointCreateSerializer(serializers.Serializer):
    url = TextField(max_length=2000, help_text="https URL the events are POSTed to.")
    events = serializers.ListField(
        child=TextField(max_length=64),
        required=False,
        default=list,
        max_length=len(services.EVENT_TYPES),
        help_text="Any of " + ", ".join(services.EVENT_TYPES) + "; empty or left out: every event.",
    )


# --- Views ------------------------------------------------------------------------------------


class WebhookEndpointListCreateView(ApiView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="webhook_endpoints_list",
        parameters=[],
        responses=WebhookEndpointSerializer(many=True),
    )
    def get(self, request):
        return self.paginate(services.endpoint_list(user=request.user), WebhookEndpointSerializer)

    @extend_schema(
        operation_id="webhook_endpoints_create",
        request=WebhookEndpointCreateSerializer,
        responses={201: WebhookEndpointCreatedSerializer},
    )
    def post(self, request):
        serializer = WebhookEndpointCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = services.endpoint_create(
            user=request.user, url=serializer.validated_data["url"], events=serializer.validated_data["events"]
        )
        return success(
            WebhookEndpointCreatedSerializer(endpoint).data,
            code=201,
            message="Webhook endpoint added. Keep its secret now: it is not shown again",
        )


class WebhookEndpointDetailView(ApiView):
    @extend_schema(
        operation_id="webhook_endpoints_delete",
        responses={204: None, 404: OpenApiResponse(description="No such endpoint of yours.")},
    )
    def delete(self, request, endpoint_id):
        services.endpoint_delete(user=request.user, endpoint_id=endpoint_id)
        return Response(status=204)
