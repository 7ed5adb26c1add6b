import base64
import hashlib
import hmac
import http.server
import json
import threading
from dataclasses import dataclass, field

import pytest
import requests
from elevenlabs import ElevenLabs
from elevenlabs.errors import BadRequestError
from elevenlabs.types import GetConversationResponseModel

from sandbox import services, signing
from sandbox.models import SandboxRecipient

from .sdk import assert_documented

pytestmark = [pytest.mark.django_db]

WEBHOOK_URL = "https://receiver.example.com/webhooks/elevenlabs"
SECRET = "whsec_sandbox_test"


@dataclass
class Receiver:
    """Stands in for the webhook endpoint: records each POST and answers `status_code`.

    `failing_types` answer 500 for those event types only.
    """

    status_code: int = 200
    calls: list = field(default_factory=list)
    fail_with: Exception | None = None
    failing_types: tuple = ()

    def post(self, session, url, data=None, headers=None, timeout=None, **kwargs):
        # A body given as an iterable of chunks is what requests sends chunked.
        streamed = not isinstance(data, bytes)
        body = data if isinstance(data, bytes) else b"".join(data)
        self.calls.append({"url": url, "body": body, "headers": headers, "timeout": timeout, "streamed": streamed})
        if self.fail_with is not None:
            raise self.fail_with
        response = requests.Response()
        response.status_code = 500 if json.loads(body)["type"] in self.failing_types else self.status_code
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
    assert set(event) == {"type", "event_timestamp", "data"}
    assert event["type"] == "post_call_transcription"
    data = event["data"]
    conversation = assert_documented(GetConversationResponseModel, data)
    assert conversation.conversation_id == recipient["conversation_id"]
    assert conversation.agent_id == "agent_demo_reminders"
    assert conversation.status == "done"
    assert len(conversation.transcript) == 2
    assert conversation.analysis.call_successful == "success"
    assert conversation.metadata.batch_call.batch_call_id == created["id"]
    assert conversation.metadata.batch_call.batch_call_recipient_id == recipient["id"]
    phone_call = conversation.metadata.phone_call
    assert (phone_call.type, phone_call.direction, phone_call.call_result) == ("twilio", "outbound", "answered")
    assert (phone_call.external_number, phone_call.agent_number) == ("+14155550120", "+14155550100")
    assert phone_call.phone_number_id == "phnum_demo_main"
    assert data["conversation_initiation_client_data"]["dynamic_variables"] == {"contact_ref": "c0"}
    assert data == api.get(f"/v1/convai/conversations/{recipient['conversation_id']}").json()


def test_a_voicemail_is_told_by_call_result_not_by_the_termination_reason(api, clock, receiver):
    finished_batch(api, clock, ["+14155550129", "+14155550128", "+14155550120"])

    services.sandbox_tick()

    unsuccessful, voicemail, answered = receiver.events()
    for event in (unsuccessful, voicemail, answered):
        assert event["type"] == "post_call_transcription"
        assert_documented(GetConversationResponseModel, event["data"])
        assert "voicemail" not in event["data"]["metadata"]["termination_reason"].lower()
    assert unsuccessful["data"]["analysis"]["call_successful"] == "failure"
    assert unsuccessful["data"]["metadata"]["phone_call"]["call_result"] == "answered"
    assert voicemail["data"]["analysis"]["call_successful"] == "failure"
    assert voicemail["data"]["metadata"]["phone_call"]["call_result"] == "voicemail"
    # The text alone cannot tell a voicemail from a call that was answered.
    assert voicemail["data"]["metadata"]["termination_reason"] == answered["data"]["metadata"]["termination_reason"]


def test_a_sip_trunk_call_reports_a_sip_trunking_phone_call(api, clock, receiver):
    api.submit(agent_phone_number_id="phnum_demo_sip", numbers=["+14155550120"])
    clock.advance(60)

    services.sandbox_tick()

    (event,) = receiver.events()
    conversation = assert_documented(GetConversationResponseModel, event["data"])
    phone_call = conversation.metadata.phone_call
    assert (phone_call.type, phone_call.call_result) == ("sip_trunking", "answered")
    assert (phone_call.phone_number_id, phone_call.agent_number) == ("phnum_demo_sip", "+13125550100")
    assert "stream_sid" not in event["data"]["metadata"]["phone_call"]


TWILIO_STATUS_CALLBACK_FIELDS = {
    "AccountSid",
    "ApiVersion",
    "CallSid",
    "CallStatus",
    "Called",
    "Caller",
    "Direction",
    "From",
    "To",
    "SipResponseCode",
    "Duration",
    "CallDuration",
    "Timestamp",
    "CallbackSource",
    "SequenceNumber",
}


def test_busy_and_unanswered_twilio_calls_post_twilios_own_status_callback(api, clock, receiver):
    created = finished_batch(api, clock, ["+14155550126", "+14155550127"])
    busy_recipient, unanswered_recipient = api.batch(created["id"])["recipients"]

    services.sandbox_tick()

    busy, unanswered = receiver.events()
    assert busy["type"] == unanswered["type"] == "call_initiation_failure"
    assert set(busy["data"]) == {"agent_id", "conversation_id", "failure_reason", "metadata"}
    assert busy["data"]["failure_reason"] == "busy"
    assert unanswered["data"]["failure_reason"] == "no-answer"
    assert busy["data"]["agent_id"] == "agent_demo_reminders"
    # The same conversation the batch shows for the recipient.
    assert busy["data"]["conversation_id"] == busy_recipient["conversation_id"]
    assert unanswered["data"]["conversation_id"] == unanswered_recipient["conversation_id"]
    assert busy["data"]["metadata"]["type"] == unanswered["data"]["metadata"]["type"] == "twilio"
    body = busy["data"]["metadata"]["body"]
    # Twilio's fields only: nothing of ElevenLabs' own (no batch ids) in the provider's report.
    assert set(body) == TWILIO_STATUS_CALLBACK_FIELDS
    assert all(isinstance(value, str) for value in body.values())
    assert (body["CallStatus"], body["SipResponseCode"]) == ("busy", "486")
    assert body["CallSid"].startswith("CA")
    assert body["AccountSid"].startswith("AC")
    assert (body["To"], body["From"], body["Called"], body["Caller"]) == (
        "+14155550126",
        "+14155550100",
        "+14155550126",
        "+14155550100",
    )
    assert body["Direction"] == "outbound-api"
    assert body["Timestamp"].endswith(" +0000")
    other = unanswered["data"]["metadata"]["body"]
    assert (other["CallStatus"], other["SipResponseCode"]) == ("no-answer", "487")


def test_busy_and_unanswered_sip_calls_post_the_sip_outcome(api, clock, receiver):
    created = api.submit(agent_phone_number_id="phnum_demo_sip", numbers=["+14155550126", "+14155550127"])
    clock.advance(60)
    busy_recipient, _ = api.batch(created["id"])["recipients"]

    services.sandbox_tick()

    busy, unanswered = receiver.events()
    assert (busy["data"]["failure_reason"], unanswered["data"]["failure_reason"]) == ("busy", "no-answer")
    assert busy["data"]["conversation_id"] == busy_recipient["conversation_id"]
    assert busy["data"]["metadata"]["type"] == unanswered["data"]["metadata"]["type"] == "sip"
    body = busy["data"]["metadata"]["body"]
    assert set(body) == {
        "from_number",
        "to_number",
        "sip_status_code",
        "error_reason",
        "call_sid",
        "twirp_code",
        "sip_status",
    }
    assert (body["from_number"], body["to_number"]) == ("+13125550100", "+14155550126")
    assert (body["sip_status_code"], body["sip_status"]) == (486, "Busy Here")
    assert "486" in body["error_reason"]
    assert unanswered["data"]["metadata"]["body"]["sip_status_code"] in (480, 408)


def test_the_transcription_waits_until_the_analysis_is_done(api, clock, receiver):
    api.submit(numbers=["+14155550120"])
    clock.advance(6.1)  # the call has just ended: its conversation is processing

    services.sandbox_tick()
    clock.advance(1)
    services.sandbox_tick()

    (event,) = receiver.events()
    assert event["data"]["status"] == "done"
    assert len(receiver.calls) == 1


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


def test_a_retried_recipient_gets_a_webhook_for_its_new_call(api, clock, receiver, audio):
    created = finished_batch(api, clock, ["+14155550126"])
    services.sandbox_tick()
    api.post(f"/v1/convai/batch-calling/{created['id']}/retry")
    clock.advance(60)

    services.sandbox_tick()

    first, second, third = receiver.events()
    assert first["type"] == "call_initiation_failure"
    assert (second["type"], third["type"]) == ("post_call_transcription", "post_call_audio")
    assert second["data"]["analysis"]["call_successful"] == "success"
    conversation_id = api.batch(created["id"])["recipients"][0]["conversation_id"]
    assert second["data"]["conversation_id"] == third["data"]["conversation_id"] == conversation_id
    assert first["data"]["conversation_id"] != conversation_id


# --- Audio -------------------------------------------------------------------------------


@pytest.fixture
def audio(settings):
    settings.SANDBOX_WEBHOOK_AUDIO = True
    settings.SANDBOX_WEBHOOK_AUDIO_BYTES = 4096
    return settings


def test_audio_is_not_sent_unless_the_workspace_asks_for_it(api, clock, receiver, settings):
    del settings.SANDBOX_WEBHOOK_AUDIO
    finished_batch(api, clock, ["+14155550120", "+14155550128"])

    services.sandbox_tick()

    assert [event["type"] for event in receiver.events()] == ["post_call_transcription"] * 2


def test_each_answered_call_also_posts_its_audio_chunked_and_signed(api, clock, receiver, audio):
    created = finished_batch(api, clock, ["+14155550120", "+14155550126", "+14155550128"])
    answered, _, voicemail = api.batch(created["id"])["recipients"]

    result = services.sandbox_tick()

    assert result.webhooks_sent == 5
    audio_calls = [call for call in receiver.calls if json.loads(call["body"])["type"] == "post_call_audio"]
    assert len(audio_calls) == 2
    for call in audio_calls:
        assert call["streamed"] is True
        header = call["headers"]["ElevenLabs-Signature"]
        event = ElevenLabs(api_key="x").webhooks.construct_event(call["body"].decode(), header, SECRET)
        assert set(event) == {"type", "event_timestamp", "data"}
        assert set(event["data"]) == {"agent_id", "conversation_id", "full_audio"}
        assert event["data"]["agent_id"] == "agent_demo_reminders"
        assert len(base64.b64decode(event["data"]["full_audio"], validate=True)) == 4096
    # Sent concurrently: in no particular order.
    assert {json.loads(call["body"])["data"]["conversation_id"] for call in audio_calls} == {
        answered["conversation_id"],
        voicemail["conversation_id"],
    }
    assert SandboxRecipient.objects.filter(audio_sent=True).count() == 2


def test_audio_delivery_is_tracked_apart_from_the_transcription(api, clock, receiver, audio):
    finished_batch(api, clock, ["+14155550120"])
    receiver.failing_types = ("post_call_audio",)

    results = [services.sandbox_tick() for _ in range(4)]

    assert [event["type"] for event in receiver.events()] == ["post_call_transcription"] + ["post_call_audio"] * 3
    assert [(result.webhooks_sent, result.webhooks_failed) for result in results] == [(1, 1), (0, 1), (0, 1), (0, 0)]
    recipient = SandboxRecipient.objects.get()
    assert (recipient.webhook_sent, recipient.audio_sent, recipient.audio_attempts) == (True, False, 3)


class ChunkedReceiver(http.server.BaseHTTPRequestHandler):
    """A real HTTP endpoint that records each request's headers and de-chunked body."""

    requests: list

    def do_POST(self):
        body = b""
        if self.headers.get("Transfer-Encoding") == "chunked":
            while size := int(self.rfile.readline().strip(), 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.requests.append((dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def chunked_receiver(settings):
    handler = type("Handler", (ChunkedReceiver,), {"requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SANDBOX_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/webhooks/elevenlabs"
    settings.ELEVENLABS_WEBHOOK_SECRET = SECRET
    yield handler.requests
    server.shutdown()
    server.server_close()


def test_the_audio_goes_over_the_wire_with_transfer_encoding_chunked(api, clock, chunked_receiver, audio):
    audio.SANDBOX_WEBHOOK_AUDIO_BYTES = 65536
    finished_batch(api, clock, ["+14155550120"])

    services.sandbox_tick()

    (transcription_headers, _), (audio_headers, body) = chunked_receiver
    assert "Content-Length" in transcription_headers
    assert audio_headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in audio_headers
    event = ElevenLabs(api_key="x").webhooks.construct_event(
        body.decode(), audio_headers["ElevenLabs-Signature"], SECRET
    )
    assert len(base64.b64decode(event["data"]["full_audio"])) == 65536


def test_sign_produces_the_elevenlabs_signature_header():
    header = signing.sign(b'{"type":"post_call_transcription"}', "secret", 1700000000)

    expected = hmac.new(b"secret", b'1700000000.{"type":"post_call_transcription"}', hashlib.sha256).hexdigest()

    assert header == f"t=1700000000,v0={expected}"
