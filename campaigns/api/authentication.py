"""API-key authentication: `X-API-Key: <key>` or `Authorization: Bearer <key>`."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from campaigns import services

from .auth_throttle import bad_key_attempt_record


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        # Every way of failing is counted per client address (auth_throttle): past the limit
        # the answer is 429 instead of 401. A valid key is never counted.
        raw_key = request.META.get("HTTP_X_API_KEY", "").strip()
        if not raw_key:
            parts = request.META.get("HTTP_AUTHORIZATION", "").split()
            if not parts or parts[0].lower() != self.keyword.lower():
                bad_key_attempt_record(request)
                return None
            if len(parts) != 2:
                bad_key_attempt_record(request)
                raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Bearer <api key>'.")
            raw_key = parts[1]

        api_key = services.api_key_authenticate(raw_key=raw_key)
        if api_key is None:
            bad_key_attempt_record(request)
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return api_key.user, api_key

    def authenticate_header(self, request):
        # Makes DRF answer 401 (not 403) when the key is missing or wrong.
        return f'{self.keyword} realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes the key to the OpenAPI document."""

    target_class = ApiKeyAuthentication
    name = ["ApiKeyHeader", "BearerKey"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            {"type": "http", "scheme": "bearer"},
        ]
