import pytest
from elevenlabs.types import GetConversationResponseModel

from sandbox import services
from sandbox.models import SandboxRecipient

from .sdk import assert_documented

pytestmark = [pytest.mark.django_db]

BATCHES = "/v1/convai/batch-calling"


def conversation(api, conversation_id: str) -> dict:
    response = api.get(f"/v1/convai/conversations/{conversation_id}")
    assert response.status_code == 200, response.content
    assert_documented(GetConversationResponseModel, response.json())
    return response.json()


def test_an_answered_call_is_initiated_then_in_progress_then_processing_then_done(api, clock):
    client_data = {"dynamic_variables": {"first_name": "Ana"}, "user_id": "contact-42"}
    created = api.submit(
        recipients=[{"phone_number": "+14155550120", "conversation_initiation_client_data": client_data}]
    )
    started = clock.now
    clock.now = started + 2.1
    (recipient,) = api.batch(created["id"])["recipients"]

    seen = {}
    for offset in (2.1, 4.1, 6.1, 7.1):
        clock.now = started + offset
        seen[offset] = conversation(api, recipient["conversation_id"])

    assert [seen[offset]["status"] for offset in seen] == ["initiated", "in-progress", "processing", "done"]
    assert [len(seen[offset]["transcript"]) for offset in seen] == [0, 1, 2, 2]
    assert [seen[offset]["analysis"] is not None for offset in seen] == [False, False, False, True]
    assert [seen[offset]["metadata"]["phone_call"]["call_result"] for offset in seen] == [
        None,
        None,
        "answered",
        "answered",
    ]
    done = seen[7.1]
    assert done["conversation_id"] == recipient["conversation_id"]
    assert done["agent_id"] == "agent_demo_reminders"
    assert done["user_id"] == "contact-42"
    assert done["metadata"]["batch_call"] == {
        "batch_call_id": created["id"],
        "batch_call_recipient_id": recipient["id"],
    }
    assert done["metadata"]["start_time_unix_secs"] == int(started + 2)
    assert done["metadata"]["call_duration_secs"] == 4
    assert done["analysis"]["call_successful"] == "success"
    assert done["conversation_initiation_client_data"]["dynamic_variables"] == {"first_name": "Ana"}
    assert (done["has_audio"], done["has_user_audio"], done["has_response_audio"]) == (True, True, True)
    assert seen[2.1]["has_audio"] is False


@pytest.mark.parametrize(
    "number,call_result", [("+14155550126", "busy"), ("+14155550127", "no_answer"), ("+14155550128", "voicemail")]
)
def test_call_result_tells_how_the_call_ended(api, clock, number, call_result):
    created = api.submit(numbers=[number])
    clock.advance(60)
    (recipient,) = api.batch(created["id"])["recipients"]

    found = conversation(api, recipient["conversation_id"])

    assert found["metadata"]["phone_call"]["call_result"] == call_result
    assert found["status"] == ("done" if call_result == "voicemail" else "failed")
    assert "voicemail" not in found["metadata"]["termination_reason"].lower()


def test_a_sip_trunk_conversation_is_a_sip_trunking_phone_call(api, clock):
    created = api.submit(agent_phone_number_id="phnum_demo_sip", numbers=["+14155550126"])
    clock.advance(60)
    (recipient,) = api.batch(created["id"])["recipients"]

    found = conversation(api, recipient["conversation_id"])

    phone_call = found["metadata"]["phone_call"]
    assert (phone_call["type"], phone_call["call_result"]) == ("sip_trunking", "busy")
    assert phone_call["call_sid"].startswith("SCL_")


def test_every_attempt_keeps_its_own_conversation(api, clock):
    created = api.submit(numbers=["+14155550126"])
    clock.advance(60)
    (first,) = api.batch(created["id"])["recipients"]
    api.post(f"{BATCHES}/{created['id']}/retry")
    clock.advance(60)
    (second,) = api.batch(created["id"])["recipients"]

    earlier = conversation(api, first["conversation_id"])
    later = conversation(api, second["conversation_id"])

    assert first["conversation_id"] != second["conversation_id"]
    assert (earlier["status"], earlier["metadata"]["phone_call"]["call_result"]) == ("failed", "busy")
    assert (later["status"], later["metadata"]["phone_call"]["call_result"]) == ("done", "answered")
    assert later["metadata"]["start_time_unix_secs"] > earlier["metadata"]["start_time_unix_secs"] + 50
    assert earlier["metadata"]["batch_call"] == later["metadata"]["batch_call"]


def test_a_call_cancelled_after_it_was_placed_is_a_failed_conversation(api, clock):
    created = api.submit(numbers=["+14155550120", "+14155550121"])
    clock.advance(4.1)  # the first call is in progress, the second is ringing
    api.post(f"{BATCHES}/{created['id']}/cancel")

    found = [conversation(api, recipient["conversation_id"]) for recipient in api.batch(created["id"])["recipients"]]

    assert [item["status"] for item in found] == ["failed", "failed"]
    assert [item["analysis"] for item in found] == [None, None]


def test_the_conversation_endpoint_plays_the_batch_forward_by_itself(api, clock):
    created = api.submit(numbers=["+14155550120"])
    clock.advance(2.1)
    conversation_id = api.batch(created["id"])["recipients"][0]["conversation_id"]
    clock.advance(60)

    assert conversation(api, conversation_id)["status"] == "done"
    assert api.batch(created["id"])["status"] == "completed"


def test_a_call_not_yet_placed_has_no_conversation(api, clock):
    created = api.submit(numbers=["+14155550120", "+14155550121"])
    pending = SandboxRecipient.objects.get(batch_id=created["id"], position=1)

    response = api.get(f"/v1/convai/conversations/{services.conversation_id_for(pending)}")

    assert response.status_code == 404


@pytest.mark.parametrize("conversation_id", ["conv_missing", "conv_00000000000000000000000001", "anything"])
def test_an_unknown_conversation_is_not_found(api, conversation_id):
    response = api.get(f"/v1/convai/conversations/{conversation_id}")

    assert response.status_code == 404
    assert response.json() == {
        "detail": {"status": "conversation_not_found", "message": f"Conversation {conversation_id} not found"}
    }


def test_a_later_attempt_than_the_recipient_has_made_is_not_found(api, clock):
    created = api.submit(numbers=["+14155550126"])
    clock.advance(60)
    recipient = SandboxRecipient.objects.get(batch_id=created["id"])

    response = api.get(f"/v1/convai/conversations/{services.conversation_id_for(recipient, attempt=2)}")

    assert response.status_code == 404


def test_a_deleted_conversation_is_not_found_any_more(api, clock):
    created = api.submit(numbers=["+14155550120"])
    clock.advance(60)
    (recipient,) = api.batch(created["id"])["recipients"]
    path = f"/v1/convai/conversations/{recipient['conversation_id']}"

    deleted = api.delete(path)

    assert deleted.status_code == 200 and deleted.content == b""
    assert api.get(path).status_code == 404
    assert api.delete(path).status_code == 404
    # The batch call still lists the recipient: deleting a conversation leaves the batch alone.
    assert api.batch(created["id"])["recipients"][0]["conversation_id"] == recipient["conversation_id"]


def test_an_unknown_conversation_cannot_be_deleted(api):
    response = api.delete("/v1/convai/conversations/conv_missing")

    assert response.status_code == 404
    assert response.json()["detail"]["status"] == "conversation_not_found"
