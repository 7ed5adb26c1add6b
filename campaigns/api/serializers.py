"""Input checking and output shapes for the API. No business rules here: see services."""

import copy
import datetime as dt

from rest_framework import serializers
from rest_framework.fields import empty

from campaigns import selectors, tracking
from campaigns.models import Recipient
from campaigns.policy import POLICY_COLUMNS, policy_from_campaign

UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class UtcDateTimeField(serializers.DateTimeField):
    """ISO 8601 in UTC with a Z, as the API documents (`2024-01-15T10:30:00Z`)."""

    def __init__(self, **kwargs):
        super().__init__(format=UTC_FORMAT, default_timezone=dt.UTC, **kwargs)


class TextField(serializers.CharField):
    """A string and only a string: a JSON number or true is refused, not turned into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class FormBooleanField(serializers.BooleanField):
    """A boolean that must be sent: DRF would read a missing form field as false."""

    default_empty_html = empty


class FlatInputSerializer(serializers.Serializer):
    """An input of plain fields, checked on every request: each instance gets shallow copies of
    the declared fields. DRF deep-copies them, building every field and its validators again,
    a third of checking a create's form; a plain field keeps no state of its own but what
    binding it to the instance sets on the copy. A nested serializer would share its state, so
    none may be declared."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        nested = [name for name, field in cls._declared_fields.items() if isinstance(field, serializers.BaseSerializer)]
        if nested:
            raise TypeError(f"{cls.__name__} declares serializers ({', '.join(nested)}): it cannot share fields.")

    def get_fields(self):
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}


class CampaignCreateSerializer(FlatInputSerializer):
    name = serializers.CharField(max_length=255)
    phone_number_id = serializers.IntegerField(min_value=1)
    agent_id = serializers.CharField(max_length=128)
    recipients_file = serializers.FileField(allow_empty_file=True)
    send_immediately = FormBooleanField()
    schedule_date = serializers.DateField(input_formats=["%Y-%m-%d"], required=False, allow_null=True)
    schedule_time = serializers.TimeField(input_formats=["%H:%M:%S", "%H:%M"], required=False, allow_null=True)
    timezone = serializers.CharField(max_length=64, required=False, allow_blank=True)
    default_country = serializers.CharField(max_length=2, min_length=2, required=False, allow_blank=True)
    skip_invalid_rows = serializers.BooleanField(required=False, default=False)
    # The calling policy, as text: campaigns.policy checks each one and names it in a 422.
    calling_hours = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text='Local windows: "09:00-20:00" or "09:00-12:00,14:00-20:00".',
    )
    calling_days = serializers.CharField(
        max_length=100, required=False, allow_blank=True, help_text='"mon-fri", "mon,wed,fri"; default every day.'
    )
    calling_timezone = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text='"recipient" (default with calling_hours: each person\'s own zone) or an IANA zone for everyone.',
    )
    max_attempts = serializers.CharField(
        max_length=10, required=False, allow_blank=True, help_text="Calls per recipient, the first included: 1-10."
    )
    retry_delay_minutes = serializers.CharField(
        max_length=10,
        required=False,
        allow_blank=True,
        help_text="Wait before calling again after busy, no answer or failed.",
    )
    max_concurrent_calls = serializers.CharField(
        max_length=10, required=False, allow_blank=True, help_text="The most calls at once for the whole campaign."
    )

    POLICY_FIELDS = POLICY_COLUMNS


class AgentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    agent_id = serializers.CharField(source="elevenlabs_agent_id")
    name = serializers.CharField()
    created_at = UtcDateTimeField()


class PhoneNumberSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    phone_number = serializers.CharField()
    label = serializers.CharField()
    provider = serializers.CharField()
    elevenlabs_phone_number_id = serializers.CharField()
    supports_outbound = serializers.BooleanField(help_text="False: inbound only, a campaign cannot call from it.")


class CampaignSerializer(serializers.Serializer):
    """Describes a campaign to the OpenAPI document; the answers are built by
    campaigns.api.representations, which a test keeps equal to this."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    elevenlabs_batch_call_id = serializers.CharField(allow_null=True)
    recipients_count = serializers.IntegerField()
    scheduled_at = UtcDateTimeField(allow_null=True)
    send_immediately = serializers.BooleanField()
    created_at = UtcDateTimeField()
    updated_at = UtcDateTimeField()
    timezone = serializers.CharField()
    agent_id = serializers.CharField(source="agent.elevenlabs_agent_id")
    phone_number_id = serializers.IntegerField()
    duplicates_merged = serializers.IntegerField()
    invalid_rows_skipped = serializers.IntegerField()
    calls_dispatched = serializers.IntegerField()
    calls_finished = serializers.IntegerField()
    suppressed_count = serializers.IntegerField(help_text="Numbers of the file left out: on the do-not-call list.")
    policy = serializers.SerializerMethodField()
    time_zones = serializers.JSONField(help_text="Recipients by the time zone their calls are timed in.")
    elevenlabs_campaign_ids = serializers.SerializerMethodField()
    next_call_at = serializers.SerializerMethodField(
        help_text="When ElevenLabs calls next (a window not open yet, a retry); null when no call waits."
    )
    error = serializers.SerializerMethodField()

    def get_next_call_at(self, campaign) -> str | None:
        when = selectors.campaign_next_call_at(campaign=campaign)
        return when.astimezone(dt.UTC).strftime(UTC_FORMAT) if when else None

    def get_error(self, campaign) -> str | None:
        return campaign.error or None

    def get_policy(self, campaign) -> dict:
        return policy_from_campaign(campaign).as_dict()

    def get_elevenlabs_campaign_ids(self, campaign) -> list[str]:
        return selectors.campaign_elevenlabs_campaign_ids(campaign=campaign)


class CampaignCreatedSerializer(CampaignSerializer):
    """The create answer adds what happened to the file's rows."""

    invalid_rows = serializers.JSONField(source="import_errors")


class CampaignDetailSerializer(CampaignSerializer):
    recipients_by_status = serializers.SerializerMethodField()

    def get_recipients_by_status(self, campaign) -> dict[str, int]:
        return tracking.outcome_counts(campaign_id=campaign.pk)


class RecipientSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    phone_number = serializers.CharField()
    line = serializers.IntegerField()
    status = serializers.CharField()
    variables = serializers.JSONField()
    overrides = serializers.JSONField()
    conversation_id = serializers.CharField()
    call_successful = serializers.CharField()
    failure_reason = serializers.CharField()
    summary = serializers.CharField()
    status_updated_at = UtcDateTimeField(allow_null=True)


class RecipientFilterSerializer(FlatInputSerializer):
    status = serializers.ChoiceField(choices=Recipient.Status.choices, required=False)
    search = serializers.CharField(required=False, allow_blank=True)
