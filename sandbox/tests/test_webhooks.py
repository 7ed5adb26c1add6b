import hashlib
import hmac
import json
from dataclasses import dataclass, field

import pytest
import requests
from elevenlabs import ElevenLabs
from elevenlabs.errors import BadRequestError
from elevenlabs.types import GetConversationResponseModel

from sandbox import services, signing
from sandbox.models import SandboxRecipient

pytestmark = [pytest.mark.django_db]

WEBHOOK_URL = "https://receiver.example.com/webhooks/elevenlabs"
SECRET = "whsec_sandbox_test"


@dataclass
class Receiver:
    """Stands in for the webhook endpoint: records each POST and answers `status_code`."""

    status_code: int = 200
    calls: list = field(default_factory=list)
    fail_with: Exception | None = None

    def post(self, session, url, data=None, headers=None, timeout=None, **kwargs):
        self.calls.append({"url": url, "body": data, "headers": headers, "timeout": timeout})
        if self.fail_with is not None:
            raise self.fail_with
        response = requests.Response()
        response.status_code = self.status_code
        return response

    def events(self) -> list[dict]:
        return [json.loads(call["body"]) for call in self.calls]


@pytest.fixture
def receiver(monkeypatch, settings):
    settings.SANDBOX_WEBHOOK_URL = WEBHOOK_URL
    settings.ELEVENLABS_WEBHOOK_SECRET = SECRET
    fake = Receiver()
    monkeypatch.setattr(requests.Session, "post", lambda session, url, **kwargs: fake.post(session, url, **kwargs))
    return fake


def finished_batch(api, clock, numbers):
    batch = api.submit(
        recipients=[
            {
                "phone_number": number,
                "conversation_initiation_client_data": {"dynamic_variables": {"contact_ref": f"c{index}"}},
            }
            for index, number in enumerate(numbers)
        ]
    )
    clock.advance(60)
    return batch


def test_each_finished_recipient_gets_one_signed_webhook(api, clock, receiver):
    finished_batch(api, clock, ["+14155550120", "+14155550126", "+14155550127", "+14155550128", "+14155550129"])

    result = services.sandbox_tick()

    assert result.webhooks_sent == 5
    assert len(receiver.calls) == 5
    for call in receiver.calls:
        assert call["url"] == WEBHOOK_URL
        assert call["timeout"] == (3, 10)
        assert call["headers"]["Content-Type"] == "application/json"
        header = call["headers"]["ElevenLabs-Signature"]
        timestamp = int(header.split(",")[0].removeprefix("t="))
        assert header == signing.sign(call["body"], SECRET, timestamp)
        event = ElevenLabs(api_key="x").webhooks.construct_event(call["body"].decode(), header, SECRET)
        assert event["event_timestamp"] == timestamp
    assert SandboxRecipient.objects.filter(webhook_sent=True).count() == 5


def test_a_second_tick_sends_nothing_again(api, clock, receiver):
    finished_batch(api, clock, ["+14155550120", "+14155550126"])

    services.sandbox_tick()
    clock.advance(5)
    second = services.sandbox_tick()

    assert second.webhooks_sent == 0
    assert len(receiver.calls) == 2


def test_the_sdk_rejects_a_webhook_signed_with_another_secret(api, clock, receiver):
    finished_batch(api, clock, ["+14155550120"])
    services.sandbox_tick()
    (call,) = receiver.calls

    with pytest.raises(BadRequestError):
        ElevenLabs(api_key="x").webhooks.construct_event(
            call["body"].decode(), call["headers"]["ElevenLabs-Signature"], "another-secret"
        )


def test_a_completed_call_posts_a_transcription_shaped_like_a_conversation(api, clock, receiver):
    created = finished_batch(api, clock, ["+14155550120"])
    (recipient,) = api.batch(created["id"])["recipients"]

    services.sandbox_tick()

    (event,) = receiver.events()
    assert event["type"] == "post_call_transcription"
    data = event["data"]
    conversation = GetConversationResponseModel.model_validate(data)
    assert conversation.conversation_id == recipient["conversation_id"]
    assert conversation.agent_id == "agent_demo_reminders"
    assert conversation.status == "done"
    assert len(conversation.transcript) == 2
    assert conversation.analysis.call_successful == "success"
    assert conversation.metadata.batch_call.batch_call_id == created["id"]
    assert conversation.metadata.batch_call.batch_call_recipient_id == recipient["id"]
    phone_call = conversation.metadata.phone_call
    assert (phone_call.type, phone_call.direction) == ("twilio", "outbound")
    assert (phone_call.external_number, phone_call.agent_number) == ("+14155550120", "+14155550100")
    assert phone_call.phone_number_id == "phnum_demo_main"
    assert data["conversation_initiation_client_data"]["dynamic_variables"] == {"contact_ref": "c0"}


def test_an_unsuccessful_call_and_a_voicemail_are_analysed_as_failures(api, clock, receiver):
    finished_batch(api, clock, ["+14155550129", "+14155550128"])

    services.sandbox_tick()

    unsuccessful, voicemail = receiver.events()
    GetConversationResponseModel.model_validate(unsuccessful["data"])
    GetConversationResponseModel.model_validate(voicemail["data"])
    assert unsuccessful["data"]["analysis"]["call_successful"] == "failure"
    assert voicemail["type"] == "post_call_transcription"
    assert voicemail["data"]["analysis"]["call_successful"] == "failure"
    assert "voicemail" in voicemail["data"]["metadata"]["termination_reason"]
    assert "voicemail" in voicemail["data"]["analysis"]["transcript_summary"]


def test_busy_and_unanswered_calls_post_a_call_initiation_failure(api, clock, receiver):
    created = finished_batch(api, clock, ["+14155550126", "+14155550127"])
    busy_recipient, unanswered_recipient = api.batch(created["id"])["recipients"]

    services.sandbox_tick()

    busy, unanswered = receiver.events()
    assert busy["type"] == unanswered["type"] == "call_initiation_failure"
    assert busy["data"]["failure_reason"] == "busy"
    assert unanswered["data"]["failure_reason"] == "no-answer"
    assert busy["data"]["agent_id"] == "agent_demo_reminders"
    assert busy["data"]["conversation_id"].startswith("conv_")
    assert busy["data"]["conversation_id"] != unanswered["data"]["conversation_id"]
    assert busy["data"]["metadata"]["type"] == "twilio"
    body = busy["data"]["metadata"]["body"]
    assert body["CallStatus"] == "busy"
    assert body["CallSid"].startswith("CA")
    assert (body["To"], body["From"]) == ("+14155550126", "+14155550100")
    assert (body["batch_call_id"], body["batch_call_recipient_id"]) == (created["id"], busy_recipient["id"])
    assert unanswered["data"]["metadata"]["body"]["CallStatus"] == "no-answer"
    assert unanswered["data"]["metadata"]["body"]["batch_call_recipient_id"] == unanswered_recipient["id"]


def test_unfinished_and_cancelled_recipients_get_no_webhook(api, clock, receiver):
    running = api.submit(numbers=["+14155550120"])
    cancelled = api.submit(numbers=["+14155550121"])
    api.post(f"/v1/convai/batch-calling/{cancelled['id']}/cancel")
    clock.advance(2.1)

    services.sandbox_tick()

    assert receiver.calls == []
    assert api.batch(running["id"])["status"] == "in_progress"


def test_the_tick_advances_batches_nobody_reads(api, clock, receiver):
    created = api.submit(numbers=["+14155550120"])
    clock.advance(60)

    services.sandbox_tick()

    (event,) = receiver.events()
    assert event["data"]["metadata"]["batch_call"]["batch_call_id"] == created["id"]


def test_a_failed_delivery_is_tried_again_on_the_next_tick_at_most_three_times(api, clock, receiver):
    finished_batch(api, clock, ["+14155550120"])
    receiver.status_code = 500

    results = [services.sandbox_tick() for _ in range(4)]

    assert [result.webhooks_failed for result in results] == [1, 1, 1, 0]
    assert len(receiver.calls) == 3
    assert SandboxRecipient.objects.get().webhook_sent is False


def test_a_delivery_that_succeeds_after_a_failure_is_sent_once(api, clock, receiver):
    finished_batch(api, clock, ["+14155550120"])
    receiver.fail_with = requests.ConnectionError("refused")
    services.sandbox_tick()
    receiver.fail_with = None

    services.sandbox_tick()
    services.sandbox_tick()

    assert len(receiver.calls) == 2
    assert SandboxRecipient.objects.get().webhook_sent is True


def test_without_a_webhook_url_nothing_is_sent_or_marked(api, clock, receiver, settings):
    settings.SANDBOX_WEBHOOK_URL = ""
    finished_batch(api, clock, ["+14155550120"])

    result = services.sandbox_tick()

    assert result.webhooks_sent == 0
    assert receiver.calls == []
    assert SandboxRecipient.objects.get().webhook_sent is False


def test_the_tick_does_nothing_when_the_sandbox_is_off(api, clock, receiver, settings):
    finished_batch(api, clock, ["+14155550120"])
    settings.ELEVENLABS_SANDBOX = False

    assert services.sandbox_tick() == services.TickResult()
    assert receiver.calls == []


def test_a_retried_recipient_gets_a_webhook_for_its_new_call(api, clock, receiver):
    created = finished_batch(api, clock, ["+14155550126"])
    services.sandbox_tick()
    api.post(f"/v1/convai/batch-calling/{created['id']}/retry")
    clock.advance(60)

    services.sandbox_tick()

    first, second = receiver.events()
    assert first["type"] == "call_initiation_failure"
    assert second["type"] == "post_call_transcription"
    assert second["data"]["analysis"]["call_successful"] == "success"
    assert second["data"]["conversation_id"] == api.batch(created["id"])["recipients"][0]["conversation_id"]


def test_sign_produces_the_elevenlabs_signature_header():
    header = signing.sign(b'{"type":"post_call_transcription"}', "secret", 1700000000)

    expected = hmac.new(b"secret", b'1700000000.{"type":"post_call_transcription"}', hashlib.sha256).hexdigest()

    assert header == f"t=1700000000,v0={expected}"
