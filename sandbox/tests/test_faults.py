import io
import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from elevenlabs.types import BatchCallResponse

from sandbox import faults, views
from sandbox.models import SandboxBatch, SandboxFault

from .clients import ElevenLabsClient
from .sdk import assert_documented

pytestmark = [pytest.mark.django_db]

BATCHES = "/v1/convai/batch-calling"
SUBMIT_BODY = {
    "call_name": "Reminders",
    "agent_id": "agent_demo_reminders",
    "recipients": [{"phone_number": "+14155550123"}],
}


def test_a_rate_limited_submit_answers_429_with_retry_after_and_stores_nothing(api, settings):
    settings.SANDBOX_FAULTS = "submit=429:2"

    answers = [api.post(f"{BATCHES}/submit", SUBMIT_BODY) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [429, 429, 200]
    for answer in answers[:2]:
        assert answer["Retry-After"] == "1"
        detail = answer.json()["detail"]
        assert detail["status"] == "rate_limit_exceeded"
        assert detail["message"]
    assert SandboxBatch.objects.count() == 1


def test_a_server_error_has_a_plain_body(api, settings):
    created = api.submit()
    settings.SANDBOX_FAULTS = "get=503:3,cancel=500:1"

    reads = [api.get(f"{BATCHES}/{created['id']}") for _ in range(4)]
    cancels = [api.post(f"{BATCHES}/{created['id']}/cancel") for _ in range(2)]

    assert [read.status_code for read in reads] == [503, 503, 503, 200]
    assert reads[0].content == b"Service Unavailable"
    assert reads[0]["Content-Type"].startswith("text/plain")
    assert [cancel.status_code for cancel in cancels] == [500, 200]
    assert cancels[0].content == b"Internal Server Error"


def test_each_endpoint_counts_its_own_faults(api, settings):
    created = api.submit()
    settings.SANDBOX_FAULTS = "list=429:1,retry=502:1"

    assert api.get(f"{BATCHES}/workspace").status_code == 429
    assert api.get(f"{BATCHES}/{created['id']}").status_code == 200
    assert api.get(f"{BATCHES}/workspace").status_code == 200
    assert api.post(f"{BATCHES}/{created['id']}/retry").status_code == 502


def test_the_counts_are_kept_in_the_database_for_every_worker(api, settings):
    settings.SANDBOX_FAULTS = "agents=503:2"

    api.get("/v1/convai/agents")

    assert SandboxFault.objects.get(rule="agents=503:2").used == 1
    # Another worker drawing one more from the same row leaves this one none.
    SandboxFault.objects.filter(rule="agents=503:2").update(used=2)
    assert api.get("/v1/convai/agents").status_code == 200


def test_a_changed_rule_counts_afresh(api, settings):
    settings.SANDBOX_FAULTS = "phone_numbers=503:1"
    assert api.get("/v1/convai/phone-numbers").status_code == 503
    assert api.get("/v1/convai/phone-numbers").status_code == 200

    settings.SANDBOX_FAULTS = "phone_numbers=503:2"

    assert [api.get("/v1/convai/phone-numbers").status_code for _ in range(3)] == [503, 503, 200]


@pytest.mark.parametrize("reset", ["function", "command"])
def test_a_reset_makes_every_rule_fail_again(api, settings, reset):
    settings.SANDBOX_FAULTS = "agents=503:1,phone_numbers=429:1"
    api.get("/v1/convai/agents")
    api.get("/v1/convai/phone-numbers")

    if reset == "function":
        faults.faults_reset()
    else:
        call_command("sandbox_faults_reset", stdout=io.StringIO())

    assert api.get("/v1/convai/agents").status_code == 503
    assert api.get("/v1/convai/phone-numbers").status_code == 429


def test_a_request_with_a_wrong_key_does_not_use_up_a_fault(api, settings):
    settings.SANDBOX_FAULTS = "agents=503:1"

    assert ElevenLabsClient(api_key="wrong").get("/v1/convai/agents").status_code == 401
    assert api.get("/v1/convai/agents").status_code == 503


def test_without_faults_no_query_is_spent_on_them(api, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert api.get("/v1/convai/agents").status_code == 200


@pytest.mark.parametrize(
    "spec",
    ["submit=429", "submit:429:1", "nothing=503:1", "submit=404:1", "submit=429:1,submit=503:1", "submit=abc:1"],
)
def test_a_malformed_fault_spec_is_refused(spec):
    with pytest.raises(ImproperlyConfigured):
        faults.faults_parse(spec)


def test_a_fault_spec_may_carry_spaces_and_trailing_commas():
    assert faults.faults_parse(" submit=429:2, get = 503:3 ,") == {
        "submit": faults.Fault("submit", 429, 2),
        "get": faults.Fault("get", 503, 3),
    }


def test_every_endpoint_waits_for_the_configured_latency(api, settings):
    settings.SANDBOX_LATENCY_SECONDS = 0.2

    started = time.monotonic()
    response = api.get("/v1/convai/agents")

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


def test_the_submit_answers_as_the_batch_stands_after_its_delay(api, clock, settings, monkeypatch):
    # Given a submit that takes three seconds after the batch is stored
    settings.SANDBOX_SUBMIT_DELAY_SECONDS = 3
    monkeypatch.setattr(views, "time", type("Sleep", (), {"sleep": staticmethod(clock.advance)}))

    # When ten calls are submitted
    response = api.post(f"{BATCHES}/submit", {**SUBMIT_BODY, "recipients": [{"phone_number": "+14155550123"}] * 10})

    # Then the answer shows the calls placed during those three seconds
    batch = assert_documented(BatchCallResponse, response.json())
    assert batch.status == "in_progress"
    assert batch.total_calls_dispatched == 7
