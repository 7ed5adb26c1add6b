"""The API's input serializers share their declared fields' settings, never their state."""

import pytest
from rest_framework import serializers

from campaigns.api.serializers import CampaignCreateSerializer, FlatInputSerializer, RecipientFilterSerializer


def test_each_instance_checks_its_own_data_with_fields_of_its_own():
    valid = RecipientFilterSerializer(data={"status": "completed", "search": "415"})
    invalid = RecipientFilterSerializer(data={"status": "on_the_moon"})

    assert valid.is_valid() and not invalid.is_valid()

    assert valid.validated_data == {"status": "completed", "search": "415"}
    assert set(invalid.errors) == {"status"}
    assert valid.fields["status"] is not invalid.fields["status"]
    assert valid.fields["status"].parent is valid and invalid.fields["status"].parent is invalid
    # The declared fields stay unbound, ready for the next instance.
    assert RecipientFilterSerializer._declared_fields["status"].parent is None


def test_the_create_form_still_names_every_field_in_error():
    serializer = CampaignCreateSerializer(data={"phone_number_id": "0", "send_immediately": "maybe"})

    assert not serializer.is_valid()
    assert {"name", "agent_id", "recipients_file", "phone_number_id", "send_immediately"} <= set(serializer.errors)


def test_a_nested_serializer_cannot_be_declared_on_a_flat_input():
    with pytest.raises(TypeError, match="Nested declares serializers \\(inner\\)"):

        class Nested(FlatInputSerializer):
            inner = RecipientFilterSerializer()
            plain = serializers.CharField()
