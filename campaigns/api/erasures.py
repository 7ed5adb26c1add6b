"""Erasing one person over the API: erase a number from every campaign of the account, and read
back what each erasure did."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser

from campaigns import lifecycle

from .envelope import success
from .serializers import TextField, UtcDateTimeField
from .views import ApiView


class ErasureRequestSerializer(serializers.Serializer):
    phone_number = TextField(max_length=64, help_text="Any way a recipients file may write it; read as E.164.")


class ConversationNotDeletedSerializer(serializers.Serializer):
    conversation_id = serializers.CharField()
    reason = serializers.CharField(help_text="What ElevenLabs answered.")


class ErasureSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    recipients_erased = serializers.IntegerField(help_text="Recipients that lost the number and their data.")
    campaigns_touched = serializers.IntegerField()
    calls_erased = serializers.IntegerField(help_text="Calls whose transcript, summary and collected data went.")
    calls_prevented = serializers.IntegerField(help_text="Pending calls taken out before they were placed.")
    calls_not_stopped = serializers.IntegerField(
        help_text="Calls already handed to ElevenLabs in a running batch call: they may still be placed."
    )
    conversations_deleted = serializers.IntegerField(help_text="Conversations deleted at ElevenLabs (or gone already).")
    conversations_not_deleted = ConversationNotDeletedSerializer(many=True)
    do_not_call_kept = serializers.BooleanField(
        help_text="The number was on the do-not-call list: its entry stays, as a keyed hash, and still blocks it."
    )
    notes = serializers.ListField(child=serializers.CharField(), help_text="What stays at ElevenLabs, and why.")
    requested_by = serializers.CharField()
    created_at = UtcDateTimeField()


class ErasureListCreateView(ApiView):
    parser_classes = [JSONParser]

    @extend_schema(operation_id="erasures_list", responses=ErasureSerializer(many=True))
    def get(self, request):
        return self.paginate(lifecycle.erasures_list(user=request.user), ErasureSerializer)

    @extend_schema(
        operation_id="erasures_create",
        description=(
            "Erase one person: the number leaves every campaign of your account (recipients' numbers, "
            "variables and summaries; calls' transcripts; stored events), its conversations are deleted "
            "at ElevenLabs where they can be, and pending calls to it not yet sent are taken out. A "
            "do-not-call entry for it stays, as a hash, so it is still never called. The answer says "
            "what was done and what could not be. The number itself is not kept."
        ),
        request=ErasureRequestSerializer,
        responses={
            201: OpenApiResponse(ErasureSerializer, description="What the erasure did."),
            422: OpenApiResponse(description="This is not a phone number."),
        },
    )
    def post(self, request):
        serializer = ErasureRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = getattr(request, "auth", None)
        erasure = lifecycle.person_erase(
            user=request.user,
            phone_number=serializer.validated_data["phone_number"],
            requested_by=f"API key {key}" if key is not None else "API",
        )
        return success(ErasureSerializer(erasure).data, code=201, message=lifecycle.erasure_summary(erasure))


class ErasureDetailView(ApiView):
    @extend_schema(
        operation_id="erasures_retrieve",
        parameters=[OpenApiParameter("erasure_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Its `id`.")],
        responses=ErasureSerializer,
    )
    def get(self, request, erasure_id):
        erasure = lifecycle.erasure_get(user=request.user, erasure_id=erasure_id)
        return success(ErasureSerializer(erasure).data)
