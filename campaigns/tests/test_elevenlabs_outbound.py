"""The ElevenLabs client's outbound campaign methods, against the sandbox app.

Requests go through a transport adapter to Django's test client, so the sandbox answers in the
test's own database transaction and on the sandbox's hand-moved clock.
"""

from urllib.parse import urlsplit

import pytest
import requests
import responses
from django.test import Client
from elevenlabs.types import (
    CampaignCallsResponse,
    CampaignLeadsResponse,
    CampaignProgressResponse,
    CampaignResponse,
    SubmitCampaignResponse,
    SuppressLeadResponse,
)
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from campaigns.elevenlabs import (
    CampaignCallPage,
    CampaignLeadPage,
    ElevenLabsBadResponse,
    ElevenLabsClient,
    ElevenLabsNotFound,
    ElevenLabsServerError,
    ElevenLabsValidationError,
    LeadSuppression,
    OutboundCampaign,
    OutboundCampaignProgress,
    OutboundCampaignSubmission,
)
from sandbox import services
from sandbox.models import SandboxCampaign
from sandbox.tests.clients import Clock
from sandbox.tests.sdk import assert_documented

pytestmark = [pytest.mark.django_db]

BASE = "http://testserver/sandbox/elevenlabs"
API_KEY = "sandbox-outbound-test-key"
WEEKDAY_MORNINGS = [{"weekdays": [0, 1, 2, 3, 4], "intervals": [{"start": "09:00", "end": "17:00"}]}]

# Every answer the sandbox gave, by path suffix, so each can be checked against the SDK's models.
_ANSWER_MODELS = {
    "/submit": SubmitCampaignResponse,
    "/progress": CampaignProgressResponse,
    "/leads": CampaignLeadsResponse,
    "/calls": CampaignCallsResponse,
    "/pause": CampaignResponse,
    "/resume": CampaignResponse,
    "/stop": CampaignResponse,
}


class SandboxAdapter(BaseAdapter):
    """Sends each request to the sandbox through Django's test client and checks its answer with the SDK."""

    def __init__(self):
        super().__init__()
        self.client = Client()
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):
        self.sent.append(request)
        url = urlsplit(request.url)
        path = url.path + (f"?{url.query}" if url.query else "")
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in ("content-type", "content-length")
        }
        answer = self.client.generic(
            request.method,
            path,
            data=request.body or b"",
            content_type=request.headers.get("Content-Type", "application/octet-stream"),
            headers=headers,
        )
        if 200 <= answer.status_code < 300:
            _documented(request.method, url.path, answer.json())
        response = requests.Response()
        response.status_code = answer.status_code
        response._content = answer.content
        response.headers = CaseInsensitiveDict(answer.headers)
        response.url = request.url
        response.request = request
        return response

    def close(self):
        pass


def _documented(method: str, path: str, payload) -> None:
    if method == "DELETE":
        assert_documented(SuppressLeadResponse, payload)
        return
    for suffix, model in _ANSWER_MODELS.items():
        if path.endswith(suffix):
            assert_documented(model, payload)
            return
    assert_documented(CampaignResponse, payload)


@pytest.fixture
def clock(monkeypatch):
    fake = Clock(float(int(services.time.time())))
    monkeypatch.setattr(services, "time", fake)
    return fake


@pytest.fixture
def sandbox(settings):
    settings.ELEVENLABS_SANDBOX = True
    settings.ELEVENLABS_SANDBOX_API_KEY = API_KEY
    settings.SANDBOX_CALL_SPACING_SECONDS = 0.5
    settings.SANDBOX_STEP_SECONDS = 2.0
    settings.SANDBOX_WEBHOOK_URL = ""
    settings.SANDBOX_FAULTS = ""
    return settings


@pytest.fixture
def adapter():
    return SandboxAdapter()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(sandbox, clock, adapter, sleeps):
    session = requests.Session()
    session.mount("http://", adapter)
    return ElevenLabsClient(base_url=BASE, api_key=API_KEY, session=session, sleep=sleeps.append)


def submit(client, numbers=("+14155550120",), **fields) -> OutboundCampaignSubmission:
    return client.submit_outbound_campaign(
        call_name=fields.pop("call_name", "Spring reminders"),
        agent_id="agent_demo_reminders",
        agent_phone_number_id="phnum_demo_main",
        recipients=fields.pop("recipients", [{"phone_number": number} for number in numbers]),
        **fields,
    )


def test_submit_returns_the_new_campaign_and_created(client):
    submitted = submit(
        client,
        recipients=[
            {
                "phone_number": "+14155550120",
                "id": "contact-7",
                "conversation_initiation_client_data": {"dynamic_variables": {"first_name": "Ana"}},
            }
        ],
        target_concurrency_limit=3,
        policy={"retry": {"retry_delay_seconds": 120, "max_total_calls": 2}},
    )

    assert isinstance(submitted, OutboundCampaignSubmission)
    assert submitted.created is True
    assert submitted.within_calling_window is True
    assert submitted.campaign_id.startswith("camp_")
    campaign = submitted.campaign
    assert (campaign.status, campaign.variant, campaign.call_name) == ("active", "advanced", "Spring reminders")
    assert campaign.agent_phone_number_id == "phnum_demo_main"
    assert campaign.target_concurrency_limit == 3
    assert (campaign.leads, campaign.terminal_leads) == (1, 0)
    assert campaign.policy["retry"]["max_total_calls"] == 2
    (lead,) = client.list_campaign_leads(submitted.campaign_id).leads
    assert lead.recipient_id == "contact-7"
    assert lead.dynamic_variables == {"first_name": "Ana"}


def test_submit_sends_only_the_fields_that_are_set(client, adapter):
    submit(client, idempotency_key="k-1", variant="simple")

    body = adapter.sent[0].body
    assert b'"variant": "simple"' in body
    assert b'"idempotency_key": "k-1"' in body
    for unset in (b"policy", b"timezone", b"scheduled_time_unix", b"target_concurrency_limit"):
        assert unset not in body


def test_a_resubmit_with_the_same_idempotency_key_returns_the_same_campaign_and_places_no_call(client, clock):
    first = submit(client, idempotency_key="launch-2026-01")
    clock.advance(1)
    again = submit(client, idempotency_key="launch-2026-01")
    clock.advance(600)

    assert (first.created, again.created) == (True, False)
    assert again.campaign_id == first.campaign_id
    assert SandboxCampaign.objects.count() == 1
    assert len(client.list_campaign_calls(first.campaign_id).calls) == 1


def test_get_and_progress_follow_the_campaign_to_its_end(client, clock):
    submitted = submit(client, numbers=["+14155550120", "+14155550127", "+14155550128"], policy={"retry": {}})
    clock.advance(0.7)  # calls go out half a second apart: two so far
    early = client.get_outbound_campaign_progress(submitted.campaign_id)
    clock.advance(4 * 3600)

    done = client.get_outbound_campaign(submitted.campaign_id)
    progress = client.get_outbound_campaign_progress(submitted.campaign_id)

    assert isinstance(early, OutboundCampaignProgress)
    assert (early.total, early.uncalled, early.calls_in_progress) == (3, 1, 2)
    assert early.next_call_time_unix is not None
    assert isinstance(done, OutboundCampaign)
    assert (done.status, done.leads, done.terminal_leads) == ("completed", 3, 3)
    assert progress.finished == 3
    assert progress.finished_by_disposition == {"completed": 1, "do_not_call": 1, "attempt_ceiling_reached": 1}
    assert progress.next_call_time_unix is None


def test_progress_says_when_the_calling_window_opens(client, clock, sandbox):
    sandbox.SANDBOX_CLOCK_START = "2026-01-05T08:59:50+00:00"  # a Monday
    submitted = submit(client, policy={"timezone": "UTC", "calling_periods": WEEKDAY_MORNINGS})

    progress = client.get_outbound_campaign_progress(submitted.campaign_id)
    (queued,) = client.list_campaign_calls(submitted.campaign_id).calls

    assert submitted.within_calling_window is False
    assert progress.next_call_time_unix == int(clock.now) + 10
    assert (queued.status, queued.scheduled_time_unix) == ("queued", int(clock.now) + 10)


def test_leads_are_read_page_by_page_with_the_cursor(client, clock):
    numbers = [f"+1415555014{digit}" for digit in range(5)]
    submitted = submit(client, numbers=numbers)
    clock.advance(600)

    pages: list[CampaignLeadPage] = []
    cursor = None
    while True:
        page = client.list_campaign_leads(submitted.campaign_id, cursor=cursor, page_size=2)
        pages.append(page)
        if not page.has_more:
            break
        cursor = page.next_cursor

    assert [len(page.leads) for page in pages] == [2, 2, 1]
    assert [lead.phone_number for page in pages for lead in page.leads] == numbers
    assert {lead.terminal_disposition for page in pages for lead in page.leads} == {"completed"}
    finished = client.list_campaign_leads(submitted.campaign_id, status="finished", dispositions=["completed"])
    assert len(finished.leads) == 5


def test_calls_are_read_page_by_page_newest_first(client, clock):
    submitted = submit(client, numbers=["+14155550126", "+14155550128"], policy={"retry": {"retry_delay_seconds": 60}})
    clock.advance(3600)

    pages: list[CampaignCallPage] = []
    cursor = None
    while True:
        page = client.list_campaign_calls(submitted.campaign_id, cursor=cursor, page_size=2)
        pages.append(page)
        if not page.has_more:
            break
        cursor = page.next_cursor

    calls = [call for page in pages for call in page.calls]
    # The busy number answers its retry; the voicemail is tried three times.
    assert len(calls) == 5
    assert [call.intent_type for call in calls][-2:] == ["initial", "initial"]
    assert all(call.conversation_id and call.outcome_at_unix for call in calls)
    assert {call.call_result for call in calls} == {"busy", "answered", "voicemail"}
    lead_id = calls[-1].lead_id
    assert {call.lead_id for call in client.list_campaign_calls(submitted.campaign_id, lead_id=lead_id).calls} == {
        lead_id
    }


def test_pause_resume_and_stop_return_the_campaign(client, clock, sandbox):
    sandbox.SANDBOX_CALL_SPACING_SECONDS = 10
    submitted = submit(client, numbers=["+14155550120", "+14155550121", "+14155550122"])

    clock.advance(1)
    paused = client.pause_outbound_campaign(submitted.campaign_id)
    clock.advance(60)
    still_one = client.get_outbound_campaign_progress(submitted.campaign_id)
    resumed = client.resume_outbound_campaign(submitted.campaign_id)
    clock.advance(1)
    stopping = client.stop_outbound_campaign(submitted.campaign_id)
    clock.advance(60)

    assert paused.status == "paused"
    assert (still_one.finished, still_one.uncalled) == (1, 2)
    assert resumed.status == "active"
    assert stopping.status == "stopping"
    stopped = client.get_outbound_campaign(submitted.campaign_id)
    assert stopped.status == "stopped"
    assert client.get_outbound_campaign_progress(submitted.campaign_id).finished_by_disposition == {
        "completed": 2,
        "campaign_ended": 1,
    }


def test_delete_lead_removes_it_and_says_whether_a_call_is_in_flight(client, clock, sandbox):
    sandbox.SANDBOX_CALL_SPACING_SECONDS = 10
    submitted = submit(client, numbers=["+14155550120", "+14155550121"])
    calling, waiting = client.list_campaign_leads(submitted.campaign_id).leads

    in_flight = client.delete_campaign_lead(submitted.campaign_id, calling.lead_id)
    queued = client.delete_campaign_lead(submitted.campaign_id, waiting.lead_id)
    clock.advance(600)

    assert in_flight == LeadSuppression(submitted.campaign_id, calling.lead_id, has_calls_in_flight=True)
    assert queued.has_calls_in_flight is False
    leads = client.list_campaign_leads(submitted.campaign_id).leads
    assert [(lead.terminal_disposition, lead.do_not_call) for lead in leads] == [("removed", True), ("removed", True)]
    assert [lead.attempt_count for lead in leads] == [1, 0]


def test_an_unknown_campaign_raises_not_found(client):
    with pytest.raises(ElevenLabsNotFound) as raised:
        client.get_outbound_campaign("camp_missing")

    assert raised.value.code == "not_found"


def test_a_bad_body_raises_a_validation_error_naming_the_field(client):
    with pytest.raises(ElevenLabsValidationError) as raised:
        submit(client, numbers=["555-0100"])

    assert raised.value.status_code == 422
    assert "body.recipients.0.phone_number" in raised.value.message


def test_a_campaign_read_is_retried_after_a_server_error(client, sandbox, sleeps):
    submitted = submit(client)
    sandbox.SANDBOX_FAULTS = "campaign_progress=503:1,campaign_leads=429:1"

    progress = client.get_outbound_campaign_progress(submitted.campaign_id)
    leads = client.list_campaign_leads(submitted.campaign_id)

    assert progress.total == 1
    assert len(leads.leads) == 1
    assert sleeps == [0.5, 1.0]  # backoff after the 503, Retry-After after the 429


def test_pause_is_never_retried(client, sandbox, sleeps):
    submitted = submit(client)
    sandbox.SANDBOX_FAULTS = "campaign_pause=503:1"

    with pytest.raises(ElevenLabsServerError):
        client.pause_outbound_campaign(submitted.campaign_id)

    assert sleeps == []
    assert client.get_outbound_campaign(submitted.campaign_id).status == "active"


def test_a_progress_without_its_leads_raises_bad_response(sleeps):
    client = ElevenLabsClient(base_url="https://api.elevenlabs.test", api_key="k", sleep=sleeps.append)
    with responses.RequestsMock() as http:
        http.get(
            "https://api.elevenlabs.test/v1/convai/outbound-campaigns/campaigns/camp_1/progress",
            json={"conversations": {}},
        )
        http.get(
            "https://api.elevenlabs.test/v1/convai/outbound-campaigns/campaigns/camp_1/calls",
            json={"has_more": False},
        )

        with pytest.raises(ElevenLabsBadResponse, match="leads"):
            client.get_outbound_campaign_progress("camp_1")
        with pytest.raises(ElevenLabsBadResponse, match="calls"):
            client.list_campaign_calls("camp_1")


def test_ids_are_quoted_into_single_path_segments(sleeps):
    client = ElevenLabsClient(base_url="https://api.elevenlabs.test", api_key="k", sleep=sleeps.append)
    with responses.RequestsMock() as http:
        http.delete(
            "https://api.elevenlabs.test/v1/convai/outbound-campaigns/campaigns/camp%2F1/leads/lead%3F2",
            json={"campaign_id": "camp/1", "lead_id": "lead?2", "has_calls_in_flight": False},
            status=200,
        )

        removed = client.delete_campaign_lead("camp/1", "lead?2")

    assert removed == LeadSuppression("camp/1", "lead?2", has_calls_in_flight=False)
