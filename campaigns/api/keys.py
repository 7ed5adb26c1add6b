"""API keys over the API: list, create (the raw key shown once), rename, revoke."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser

from campaigns import selectors, services
from campaigns.models import ApiKey

from .envelope import success
from .serializers import TextField, UtcDateTimeField
from .views import ApiView

# --- Serializers ------------------------------------------------------------------------------


class ApiKeySerializer(serializers.Serializer):
    """A key as its owner may see it: never the secret, nor its hash."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The key's first characters, to tell keys apart.")
    created_at = UtcDateTimeField()
    last_used_at = UtcDateTimeField(allow_null=True, help_text="Updated at most once a minute.")
    revoked_at = UtcDateTimeField(allow_null=True)
    is_active = serializers.BooleanField(help_text="False once revoked: the key is refused with 401.")


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key_value = serializers.CharField(
        source="raw_key", help_text="The key itself. Shown in this answer only: it is not stored, only its hash."
    )


class ApiKeyFieldsSerializer(serializers.Serializer):
    # Say which field: the error envelope does not prefix a nested object's own errors.
    default_error_messages = {"invalid": 'api_key must be an object like {{"name": "…"}}, not {datatype}.'}

    name = TextField(max_length=ApiKey._meta.get_field("name").max_length, help_text="To tell keys apart.")


class ApiKeyBodySerializer(serializers.Serializer):
    """The body of create and rename: `{"api_key": {"name": "…"}}`."""

    default_error_messages = {"invalid": 'The body must be a JSON object like {{"api_key": {{"name": "…"}}}}.'}

    api_key = ApiKeyFieldsSerializer()


def error_response(description: str) -> OpenApiResponse:
    # The body is the error envelope, which campaigns.api.schema gives every error response.
    return OpenApiResponse(description=description)


UNAUTHORIZED = error_response("No API key, or a wrong or revoked one.")
KEY_NOT_FOUND = error_response("No key of yours has this id (another user's key answers the same).")
BAD_BODY = error_response('The body is not `{"api_key": {"name": …}}` with a name of 1-100 characters.')
RATE_LIMITED = error_response("Past the rate limit: `Retry-After` says when to try again.")
NOT_JSON = error_response("The body is not JSON.")
KEY_ID = OpenApiParameter("api_key_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The key's `id`.")


# --- Views ------------------------------------------------------------------------------------


class ApiKeyListCreateView(ApiView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="api_keys_list",
        parameters=[],
        responses={200: ApiKeySerializer(many=True), 401: UNAUTHORIZED, 429: RATE_LIMITED},
    )
    def get(self, request):
        return self.paginate(selectors.api_key_list(user=request.user), ApiKeySerializer)

    @extend_schema(
        operation_id="api_keys_create",
        description="A new key for your account. The answer's `key_value` is the only time the key is shown.",
        request=ApiKeyBodySerializer,
        responses={201: ApiKeyCreatedSerializer, 401: UNAUTHORIZED, 415: NOT_JSON, 422: BAD_BODY, 429: RATE_LIMITED},
    )
    def post(self, request):
        fields = _valid(ApiKeyBodySerializer, request.data)["api_key"]
        created = services.api_key_create(user=request.user, name=fields["name"])
        data = {**ApiKeySerializer(created.api_key).data, "key_value": created.raw_key}
        return success(data, code=201, message="API key created; store key_value now, it is not shown again")


class ApiKeyDetailView(ApiView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="api_keys_rename",
        parameters=[KEY_ID],
        request=ApiKeyBodySerializer,
        responses={
            200: ApiKeySerializer,
            401: UNAUTHORIZED,
            404: KEY_NOT_FOUND,
            415: NOT_JSON,
            422: BAD_BODY,
            429: RATE_LIMITED,
        },
    )
    def put(self, request, api_key_id):
        fields = _valid(ApiKeyBodySerializer, request.data)["api_key"]
        api_key = selectors.api_key_get(user=request.user, api_key_id=api_key_id)
        api_key = services.api_key_rename(api_key=api_key, name=fields["name"])
        return success(ApiKeySerializer(api_key).data, message="API key renamed")

    @extend_schema(
        operation_id="api_keys_revoke",
        description=(
            "Revokes the key: from now on it is refused with 401. The answer is 200 with the revoked key. "
            "The key of the request itself may be revoked (the message says so); revoking a revoked key "
            "changes nothing."
        ),
        parameters=[KEY_ID],
        request=None,
        responses={200: ApiKeySerializer, 401: UNAUTHORIZED, 404: KEY_NOT_FOUND, 429: RATE_LIMITED},
    )
    def delete(self, request, api_key_id):
        api_key = selectors.api_key_get(user=request.user, api_key_id=api_key_id)
        if api_key.revoked_at is not None:
            return success(ApiKeySerializer(api_key).data, message="API key was already revoked")
        api_key = services.api_key_revoke(api_key=api_key)
        message = "API key revoked"
        if request.auth is not None and request.auth.pk == api_key.pk:
            message = "API key revoked; it is the key this request used, so it will not work again"
        return success(ApiKeySerializer(api_key).data, message=message)


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
