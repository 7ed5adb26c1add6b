"""The do-not-call list over the API: list, add one number or a file of them, remove one."""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from campaigns import suppressions
from campaigns.errors import NotFound, PayloadTooLarge, ValidationFailed
from campaigns.models import Suppression

from .envelope import success
from .serializers import TextField, UtcDateTimeField
from .views import MULTIPART_OVERHEAD_BYTES, ApiView

# --- Serializers ------------------------------------------------------------------------------


class SuppressionSerializer(serializers.Serializer):
    phone_number = serializers.CharField(allow_null=True, help_text="E.164; null for an erased number (see erased).")
    erased = serializers.BooleanField(
        help_text="The number was erased (POST /erasures): the entry keeps only a keyed hash of it, "
        "and still blocks it."
    )
    reason = serializers.CharField()
    source = serializers.ChoiceField(choices=Suppression.Source.choices)
    campaign_id = serializers.IntegerField(
        allow_null=True, help_text="The campaign whose call asked for it (source elevenlabs), else null."
    )
    created_at = UtcDateTimeField()


class SuppressionAddSerializer(serializers.Serializer):
    phone_number = TextField(max_length=64, help_text="Any way a recipients file may write it; stored in E.164.")
    reason = TextField(max_length=255, required=False, allow_blank=True, default="")
    default_country = TextField(
        max_length=2, min_length=2, required=False, allow_blank=True, help_text="ISO country for a number without +."
    )


class SuppressionImportSerializer(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True, help_text="CSV or .xlsx: a phone_number column, or one number per line."
    )
    reason = serializers.CharField(
        max_length=255, required=False, allow_blank=True, default="", help_text="Stored with every number added."
    )
    default_country = serializers.CharField(max_length=2, min_length=2, required=False, allow_blank=True)


class SuppressionImportResultSerializer(serializers.Serializer):
    added = serializers.IntegerField()
    already_listed = serializers.IntegerField()
    duplicates_merged = serializers.IntegerField(help_text="Rows repeating a number earlier in the file.")
    invalid_rows = serializers.IntegerField()
    errors = serializers.ListField(child=serializers.CharField(), help_text="The first 100 invalid rows, and a count.")


class SuppressionFilterSerializer(serializers.Serializer):
    search = serializers.CharField(
        required=False, allow_blank=True, max_length=255, help_text="Digits of the number, or words of the reason."
    )


# --- Views ------------------------------------------------------------------------------------


class SuppressionListCreateView(ApiView):
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        operation_id="suppressions_list",
        parameters=[
            SuppressionFilterSerializer,
        ],
        responses=SuppressionSerializer(many=True),
    )
    def get(self, request):
        filters = SuppressionFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        listed = suppressions.suppressions_list(user=request.user, search=filters.validated_data.get("search"))
        return self.paginate(listed, SuppressionSerializer)

    @extend_schema(
        operation_id="suppressions_add",
        description=(
            "JSON `{phone_number, reason}` adds one number: 201 with its entry, or 200 with the existing entry "
            "when it was already listed. Multipart with `file` adds every number of a CSV or .xlsx file: 201 "
            "with the counts; invalid rows are skipped and listed."
        ),
        request={
            "application/json": SuppressionAddSerializer,
            "multipart/form-data": SuppressionImportSerializer,
        },
        responses={
            200: OpenApiResponse(SuppressionSerializer, description="The number was already listed."),
            201: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="SuppressionAdded",
                    serializers=[SuppressionSerializer, SuppressionImportResultSerializer],
                    resource_type_field_name=None,
                ),
                description="JSON: the number was added, its entry. A file: what the import did.",
            ),
        },
    )
    def post(self, request):
        if "file" in request.FILES or (isinstance(request.data, dict) and "file" in request.data):
            return self._import(request)
        fields = _valid(SuppressionAddSerializer, request.data)
        suppression, created = suppressions.suppression_add(
            user=request.user,
            phone_number=fields["phone_number"],
            reason=fields["reason"],
            default_country=fields.get("default_country"),
            source=Suppression.Source.API,
        )
        data = SuppressionSerializer(suppression).data
        shown = suppressions.phone_number_display(suppression.phone_number or fields["phone_number"])
        if created:
            return success(data, code=201, message=f"{shown} added to the do-not-call list")
        return success(data, message=f"{shown} was already on the do-not-call list")

    def _import(self, request):
        content_length = int(request.META.get("CONTENT_LENGTH") or 0)
        limit = settings.RECIPIENTS_MAX_FILE_BYTES
        if content_length > limit + MULTIPART_OVERHEAD_BYTES:
            # Refuse before reading the upload at all.
            raise PayloadTooLarge(
                f"The request is {content_length / 1_048_576:.1f} MB; files are limited to "
                f"{limit / 1_048_576:.0f} MB. Split it into several files."
            )
        if request.data.get("phone_number"):
            raise ValidationFailed(
                "Send either phone_number or file, not both.", field="file", details={"field": "file"}
            )
        fields = _valid(SuppressionImportSerializer, request.data)
        result = suppressions.suppressions_import(
            user=request.user,
            file=fields["file"],
            reason=fields["reason"],
            default_country=fields.get("default_country"),
            source=Suppression.Source.API,
        )
        return success(
            SuppressionImportResultSerializer(result).data, code=201, message=suppressions.import_summary(result)
        )


class SuppressionDetailView(ApiView):
    @extend_schema(
        operation_id="suppressions_remove",
        parameters=[
            OpenApiParameter(
                "phone_number",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="E.164 with its + URL-encoded (%2B14155552671) or left out (14155552671).",
            )
        ],
        responses={
            204: None,
            404: OpenApiResponse(description="The number is not on your list."),
            422: OpenApiResponse(description="This is not a phone number."),
        },
    )
    def delete(self, request, phone_number):
        # A + is easy to lose in a URL: a number without one is read as written with it.
        number = phone_number.strip()
        if number[:1] not in ("+", "\uff0b"):
            number = f"+{number}"
        if not suppressions.suppression_remove(user=request.user, phone_number=number):
            raise NotFound(f"{number} is not on your do-not-call list.")
        return Response(status=204)


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
