"""One recipient with each of its calls, and one call's conversation (transcript, summary, duration)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from campaigns import selectors, services

from .envelope import success
from .keys import RATE_LIMITED, UNAUTHORIZED, error_response
from .serializers import RecipientSerializer, UtcDateTimeField
from .views import ApiView

# --- Serializers ------------------------------------------------------------------------------


class StoredTurnSerializer(serializers.Serializer):
    """A transcript turn as ElevenLabs' post-call webhook gave it."""

    role = serializers.CharField(help_text="agent or user.")
    message = serializers.CharField()
    time_in_call_secs = serializers.IntegerField(allow_null=True)


class CallSerializer(serializers.Serializer):
    attempt = serializers.IntegerField(help_text="1 for the first call; each retry adds one.")
    conversation_id = serializers.CharField()
    status = serializers.CharField(help_text="As a recipient's: completed, failed, voicemail, in_progress…")
    call_result = serializers.CharField(help_text="answered, voicemail, busy, no_answer, failed; empty until known.")
    call_successful = serializers.CharField(help_text="success, failure or unknown: the agent's evaluation.")
    failure_reason = serializers.CharField()
    summary = serializers.CharField()
    duration_secs = serializers.IntegerField(allow_null=True)
    started_at = UtcDateTimeField(allow_null=True)
    transcript = serializers.ListField(
        child=StoredTurnSerializer(), help_text="Empty until ElevenLabs' post-call webhook arrived."
    )


class RecipientWithCallsSerializer(RecipientSerializer):
    calls = CallSerializer(many=True, source="calls.all", help_text="Every call placed to it, first attempt first.")


class ConversationTurnSerializer(serializers.Serializer):
    role = serializers.CharField(help_text="agent or user.")
    content = serializers.CharField(help_text="What was said; empty for a turn that only called a tool.")
    timestamp = serializers.IntegerField(allow_null=True, help_text="Seconds into the call.")


class ConversationMetadataSerializer(serializers.Serializer):
    duration = serializers.IntegerField(allow_null=True, help_text="Seconds.")
    summary = serializers.CharField()


class ConversationSerializer(serializers.Serializer):
    conversation_id = serializers.CharField()
    agent_id = serializers.CharField(help_text="The ElevenLabs agent id.")
    agent_name = serializers.CharField()
    status = serializers.CharField(help_text="ElevenLabs' words: initiated, in-progress, processing, done, failed.")
    transcript = ConversationTurnSerializer(many=True)
    metadata = ConversationMetadataSerializer(source="*")
    created_at = UtcDateTimeField(allow_null=True, help_text="When the call started.")


# --- Views ------------------------------------------------------------------------------------


class RecipientDetailView(ApiView):
    @extend_schema(
        operation_id="campaigns_recipient",
        parameters=[
            OpenApiParameter("campaign_id", OpenApiTypes.INT, OpenApiParameter.PATH),
            OpenApiParameter("recipient_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Its `id`."),
        ],
        responses={
            200: RecipientWithCallsSerializer,
            401: UNAUTHORIZED,
            404: error_response("No campaign of yours has this id, or the campaign has no such recipient."),
            429: RATE_LIMITED,
        },
    )
    def get(self, request, campaign_id, recipient_id):
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        recipient = selectors.recipient_get(campaign=campaign, recipient_id=recipient_id)
        return success(RecipientWithCallsSerializer(recipient).data)


class ConversationDetailView(ApiView):
    @extend_schema(
        operation_id="conversations_get",
        description=(
            "One call of your campaigns: what ElevenLabs' post-call webhook stored, else asked of ElevenLabs "
            "(the message says which)."
        ),
        parameters=[OpenApiParameter("conversation_id", OpenApiTypes.STR, OpenApiParameter.PATH)],
        responses={
            200: ConversationSerializer,
            401: UNAUTHORIZED,
            404: error_response("No call of your campaigns was this conversation, or ElevenLabs deleted it."),
            429: RATE_LIMITED,
            502: error_response("ElevenLabs failed to answer for the conversation."),
        },
    )
    def get(self, request, conversation_id):
        conversation = services.conversation_get(user=request.user, conversation_id=conversation_id)
        message = "Conversation from ElevenLabs" if conversation.from_elevenlabs else "Conversation as recorded"
        return success(ConversationSerializer(conversation).data, message=message)
