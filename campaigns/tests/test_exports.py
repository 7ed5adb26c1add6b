"""Results people act on: each call's data collection kept from the post-call webhook."""

import importlib

import pytest
from django.apps import apps

from campaigns import inbox
from campaigns.models import Call, WebhookEvent

from .factories import CallFactory
from .test_webhooks import post_signed, submitted_campaign, transcription_event, webhook_secret  # noqa: F401

pytestmark = pytest.mark.django_db


def collected(**values) -> dict:
    """A call's data collection as the inbox keeps it."""
    return {key: {"value": value, "rationale": f"Said on the call ({key})."} for key, value in values.items()}


# --- The post-call webhook's data collection -----------------------------------------------


def test_the_post_call_webhook_keeps_each_data_collection_item_on_its_call(client):
    campaign = submitted_campaign("btcal_1", ["+12125550100"])
    event = transcription_event()
    # As ElevenLabs documents it: {id: {data_collection_id, value, rationale}}
    event["data"]["analysis"]["data_collection_results"] = {
        "appointment_confirmed": {
            "data_collection_id": "appointment_confirmed",
            "value": True,
            "rationale": "The customer said they would come on Tuesday.",
        },
        "party_size": {"data_collection_id": "party_size", "value": 2, "rationale": "Bringing their partner."},
        "callback_time": {"data_collection_id": "callback_time", "value": None, "rationale": "Not discussed."},
        "preferred_slot": {
            "data_collection_id": "preferred_slot",
            "json_schema": {"type": "string", "description": "The slot they asked for"},
            "value": "Tuesday 10:00",
            "rationale": "Asked for the morning.",
        },
    }

    assert post_signed(client, event).json() == {"received": True, "recorded": True}

    call = Call.objects.get(campaign=campaign, conversation_id="conv_100")
    assert call.data_collection == {
        "appointment_confirmed": {"value": True, "rationale": "The customer said they would come on Tuesday."},
        "party_size": {"value": 2, "rationale": "Bringing their partner."},
        "callback_time": {"value": None, "rationale": "Not discussed."},
        "preferred_slot": {"value": "Tuesday 10:00", "rationale": "Asked for the morning."},
    }


def test_a_later_event_without_data_collection_keeps_what_the_call_has(client):
    campaign = submitted_campaign("btcal_1", ["+12125550100"])
    first = transcription_event(timestamp=1_800_000_000)
    first["data"]["analysis"]["data_collection_results"] = {"confirmed": {"value": "yes", "rationale": "Said yes."}}
    post_signed(client, first)

    post_signed(client, transcription_event(timestamp=1_800_000_001, summary="Again."))

    kept = Call.objects.get(campaign=campaign).data_collection
    assert kept == {"confirmed": {"value": "yes", "rationale": "Said yes."}}


def test_data_collection_of_an_odd_shape_is_kept_within_bounds():
    kept = inbox.data_collection_results(
        {
            "nested": {"value": {"street": "1 Main St", "floors": [1, 2]}, "rationale": 7},
            "huge": {"value": 2**70, "rationale": "r" * 5_000},
            "long": {"value": "x" * 20_000},
            "not_an_object": "yes",
            "": {"value": "no id"},
            **{f"item_{n:03d}": {"value": n} for n in range(200)},
        }
    )

    assert kept["nested"] == {"value": '{"street": "1 Main St", "floors": [1, 2]}', "rationale": "7"}
    assert kept["huge"] == {"value": str(2**70), "rationale": "r" * inbox.MAX_RATIONALE_CHARS}
    assert kept["long"]["value"] == "x" * inbox.MAX_DATA_VALUE_CHARS
    assert kept["not_an_object"] == {"value": None, "rationale": ""}
    assert "" not in kept
    assert len(kept) <= inbox.MAX_DATA_ITEMS
    assert inbox.data_collection_results(["not", "a", "mapping"]) == {}


def test_the_migration_reads_the_data_collection_of_calls_recorded_before_it_back_from_the_inbox():
    call = CallFactory(conversation_id="conv_old")
    untouched = CallFactory(conversation_id="conv_other", data_collection=collected(kept="as is"))
    for n, value in enumerate(["first", "latest"]):
        WebhookEvent.objects.create(
            digest=f"{n}" * 64,
            event_type="post_call_transcription",
            status=WebhookEvent.Status.APPLIED,
            call=call,
            payload={"data": {"analysis": {"data_collection_results": {"answer": {"value": value, "rationale": ""}}}}},
        )
    WebhookEvent.objects.create(digest="9" * 64, event_type="post_call_transcription", call=untouched, payload={})

    migration = importlib.import_module("campaigns.migrations.0011_call_data_collection")
    migration.data_collection_from_recorded_events(apps, None)

    call.refresh_from_db()
    untouched.refresh_from_db()
    assert call.data_collection == {"answer": {"value": "latest", "rationale": ""}}
    assert untouched.data_collection == collected(kept="as is")
