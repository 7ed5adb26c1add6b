"""Campaigns with a calling policy, end to end against the sandbox's outbound-campaigns engine.

The API creates the campaign; dispatch, polls, pause, resume and cancel run as the workers run
them, with an ElevenLabs client whose requests reach the sandbox in this test's transaction
(every answer checked against the official SDK's models) on a clock the test moves by hand.
"""

import datetime as dt
import json
from urllib.parse import urlsplit

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from elevenlabs.types import BatchCallDetailedResponse, BatchCallResponse
from requests.structures import CaseInsensitiveDict

from campaigns import control, dispatch, services, tracking
from campaigns.elevenlabs import ElevenLabsClient
from campaigns.events import services as events
from campaigns.events.models import Delivery
from campaigns.models import Campaign, CampaignBatch, Recipient, Suppression
from sandbox import services as sandbox_services
from sandbox.models import SandboxCampaign, SandboxLead
from sandbox.tests.clients import Clock
from sandbox.tests.sdk import assert_documented

from .conftest import csv_file
from .factories import AgentFactory, PhoneNumberFactory
from .test_elevenlabs_outbound import API_KEY, BASE
from .test_elevenlabs_outbound import SandboxAdapter as OutboundAdapter

pytestmark = pytest.mark.django_db

URL = "/api/v1/campaigns"
# Monday 1 March 2027, 13:00 UTC: 08:00 in New York, 05:00 in Los Angeles, 13:00 in London.
MONDAY_1300_UTC = dt.datetime(2027, 3, 1, 13, 0, tzinfo=dt.UTC)
MIXED = (
    "phone_number,first_name\n"
    "+12125550101,Ada\n"  # New York
    "+12125550106,Bob\n"  # New York, busy on the first call
    "+13105550101,Cy\n"  # Los Angeles
    "+442079460951,Dee\n"  # London
)


class SandboxAdapter(OutboundAdapter):
    """The outbound adapter, also checking batch calling's answers against the SDK's models."""

    def send(self, request, **kwargs):
        if "/batch-calling/" not in request.url:
            return super().send(request, **kwargs)
        self.sent.append(request)
        url = urlsplit(request.url)
        answer = self.client.generic(
            request.method,
            url.path + (f"?{url.query}" if url.query else ""),
            data=request.body or b"",
            content_type="application/json",
            headers={"xi-api-key": request.headers["xi-api-key"]},
        )
        if answer.status_code == 200 and request.method == "GET" and not url.path.endswith("/workspace"):
            assert_documented(BatchCallDetailedResponse, answer.json())
        elif answer.status_code == 200 and request.method == "POST":
            assert_documented(BatchCallResponse, answer.json())
        response = requests.Response()
        response.status_code = answer.status_code
        response._content = answer.content
        response.headers = CaseInsensitiveDict(answer.headers)
        response.url = request.url
        response.request = request
        return response


@pytest.fixture
def clock(monkeypatch):
    fake = Clock(MONDAY_1300_UTC.timestamp())
    monkeypatch.setattr(sandbox_services, "time", fake)
    return fake


@pytest.fixture
def adapter(settings, clock):
    settings.ELEVENLABS_SANDBOX = True
    settings.ELEVENLABS_SANDBOX_API_KEY = API_KEY
    settings.SANDBOX_CALL_SPACING_SECONDS = 0.5
    settings.SANDBOX_STEP_SECONDS = 2.0
    settings.SANDBOX_WEBHOOK_URL = ""
    settings.SANDBOX_FAULTS = ""
    settings.SANDBOX_CLOCK_SPEED = 1.0
    return SandboxAdapter()


@pytest.fixture
def client(adapter):
    session = requests.Session()
    session.mount("http://", adapter)
    return ElevenLabsClient(base_url=BASE, api_key=API_KEY, session=session, sleep=lambda seconds: None)


@pytest.fixture
def campaign_form(user):
    agent = AgentFactory(user=user, elevenlabs_agent_id="agent_demo_reminders")
    number = PhoneNumberFactory(user=user, elevenlabs_phone_number_id="phnum_demo_main")

    def build(text=MIXED, **fields):
        return {
            "name": "Spring reminders",
            "agent_id": agent.elevenlabs_agent_id,
            "phone_number_id": str(number.pk),
            "recipients_file": csv_file(text),
            "send_immediately": "true",
            **fields,
        }

    return build


def create(api, form) -> Campaign:
    response = api.post(URL, form, format="multipart")
    assert response.status_code == 201, response.content
    return Campaign.objects.get(pk=response.json()["data"]["id"])


def submits(adapter) -> list[dict]:
    return [json.loads(request.body) for request in adapter.sent if request.url.endswith("/campaigns/submit")]


def poll(campaign, client, clock, seconds=0):
    clock.advance(seconds)
    tracking.campaign_poll(campaign_id=campaign.pk, client=client)
    campaign.refresh_from_db()
    return {r.phone_number: r for r in campaign.recipients.all()}


POLICY = {
    "calling_hours": "09:00-12:00,14:00-20:00",
    "calling_days": "mon-fri",
    "max_attempts": "3",
    "retry_delay_minutes": "30",
    "max_concurrent_calls": "4",
}


def test_a_mixed_file_goes_out_as_one_outbound_campaign_per_zone(api, campaign_form, client, adapter):
    campaign = create(api, campaign_form(**POLICY))

    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    bodies = submits(adapter)
    parts = list(CampaignBatch.objects.filter(campaign=campaign).order_by("part"))
    assert [part.timezone for part in parts] == ["America/Los_Angeles", "America/New_York", "Europe/London"]
    intervals = [{"start": "09:00", "end": "12:00"}, {"start": "14:00", "end": "20:00"}]
    for body, part in zip(bodies, parts, strict=True):
        assert body["policy"] == {
            "timezone": part.timezone,
            "calling_periods": [{"weekdays": [0, 1, 2, 3, 4], "intervals": intervals}],
            "retry": {"max_total_calls": 3, "retry_delay_seconds": 1800, "max_redirects": 0},
            "data_collection": {"redirect_phone_number": None},
        }
        assert body["idempotency_key"] == part.token
        assert body["variant"] == "advanced"
        assert body["channel_config"] == {"channel": "phone", "agent_phone_number_id": "phnum_demo_main"}
        assert body["call_name"] == f"Spring reminders [{part.token}]"
    # The cap on calls at once is shared: 4 over three parts.
    assert [body["target_concurrency_limit"] for body in bodies] == [2, 1, 1]
    numbers = [[r["phone_number"] for r in body["recipients"]] for body in bodies]
    assert numbers == [["+13105550101"], ["+12125550101", "+12125550106"], ["+442079460951"]]
    ada = Recipient.objects.get(phone_number="+12125550101")
    assert bodies[1]["recipients"][0] == {
        "id": str(ada.pk),
        "phone_number": "+12125550101",
        "conversation_initiation_client_data": {"dynamic_variables": {"first_name": "Ada"}},
    }
    data = api.get(f"{URL}/{campaign.pk}").json()["data"]
    assert data["elevenlabs_campaign_ids"] == [part.elevenlabs_campaign_id for part in parts]
    assert all(data["elevenlabs_campaign_ids"])
    assert data["elevenlabs_batch_call_id"] is None


def test_a_resend_after_a_worker_died_gets_the_same_campaign_and_calls_nobody_twice(
    api, campaign_form, client, adapter, settings
):
    campaign = create(api, campaign_form(text="phone_number\n+442079460951\n+442079460952\n", max_attempts="2"))
    dispatch.campaign_claim(campaign_id=campaign.pk)
    part = CampaignBatch.objects.get(campaign=campaign)
    # A worker claimed the part, ElevenLabs accepted its submit, and the worker died before saving the id.
    CampaignBatch.objects.filter(pk=part.pk).update(
        submit_started_at=timezone.now() - dt.timedelta(hours=1), submit_attempts=1
    )
    part.refresh_from_db()
    first = client.submit_outbound_campaign(
        **dispatch.outbound.submit_kwargs(batch=part, recipients=json.loads(dispatch._recipients_json(part)))
    )

    # The stale-claim sweep frees it, and the next dispatch sends it again with the same key.
    dispatch.batch_recover(batch_id=part.pk, client=client)
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    part.refresh_from_db()
    assert part.elevenlabs_campaign_id == first.campaign_id
    assert [body["idempotency_key"] for body in submits(adapter)] == [part.token, part.token]
    assert SandboxCampaign.objects.count() == 1
    assert SandboxLead.objects.count() == 2


def test_a_policy_campaign_is_followed_to_its_end_with_retries_and_outcomes(api, campaign_form, client, clock):
    campaign = create(api, campaign_form(text="phone_number\n+442079460951\n+442079460956\n+442079460958\n",
                                         max_attempts="2", retry_delay_minutes="1"))  # fmt: skip
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    recipients = poll(campaign, client, clock, seconds=20)
    assert recipients["+442079460951"].status == "completed"
    assert recipients["+442079460951"].conversation_id
    # Busy on its first call: waiting for the second, one minute later.
    busy = recipients["+442079460956"]
    assert (busy.status, busy.attempt) == ("dispatched", 1)
    assert busy.next_call_at is not None
    assert campaign.status == "in_progress"

    recipients = poll(campaign, client, clock, seconds=600)

    busy = recipients["+442079460956"]
    assert (busy.status, busy.attempt, busy.disposition) == ("completed", 2, "completed")
    assert busy.calls.count() == 2
    voicemail = recipients["+442079460958"]
    # Voicemail twice: the attempts ran out.
    assert (voicemail.status, voicemail.attempt, voicemail.disposition) == ("voicemail", 2, "attempt_ceiling_reached")
    assert campaign.status == "completed"
    assert (campaign.calls_dispatched, campaign.calls_finished) == (3, 3)


def test_no_one_is_called_before_their_window_and_the_next_call_is_shown(api, campaign_form, client, clock):
    # 13:00 UTC is 05:00 in Los Angeles: the 09:00 window opens at 17:00 UTC.
    campaign = create(api, campaign_form(text="phone_number\n+13105550101\n", calling_hours="09:00-17:00"))
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    recipients = poll(campaign, client, clock, seconds=60)

    # At ElevenLabs, waiting for its window.
    waiting = recipients["+13105550101"]
    assert (waiting.status, waiting.conversation_id) == ("dispatched", "")
    assert waiting.next_call_at == dt.datetime(2027, 3, 1, 17, 0, tzinfo=dt.UTC)
    assert api.get(f"{URL}/{campaign.pk}").json()["data"]["next_call_at"] == "2027-03-01T17:00:00Z"

    recipients = poll(campaign, client, clock, seconds=4 * 3600)

    assert recipients["+13105550101"].status == "completed"


def test_a_person_who_asks_not_to_be_called_again_joins_the_do_not_call_list(api, campaign_form, client, clock, user):
    campaign = create(api, campaign_form(text="phone_number\n+442079460957\n", max_attempts="2"))
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    recipients = poll(campaign, client, clock, seconds=60)

    assert recipients["+442079460957"].disposition == "do_not_call"
    listed = Suppression.objects.get(user=user, phone_number="+442079460957")
    assert (listed.source, listed.campaign_id) == ("elevenlabs", campaign.pk)
    # And no later campaign calls it.
    second = api.post(URL, campaign_form(text="phone_number\n+442079460957\n"), format="multipart")
    assert second.status_code == 422 and "do-not-call list" in second.json()["error"]


def test_a_number_listed_while_the_campaign_runs_is_removed_at_elevenlabs(api, campaign_form, client, clock, user):
    # Outside London's window: nobody has been called yet.
    campaign = create(api, campaign_form(text="phone_number\n+442079460951\n+442079460952\n",
                                         calling_hours="18:00-20:00"))  # fmt: skip
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)
    poll(campaign, client, clock, seconds=1)

    services.suppressions.suppression_add(user=user, phone_number="+442079460952", source="api")
    recipients = poll(campaign, client, clock, seconds=1)

    assert (recipients["+442079460952"].status, recipients["+442079460952"].disposition) == ("cancelled", "suppressed")
    assert SandboxLead.objects.get(phone_number="+442079460952").terminal_disposition == "removed"
    recipients = poll(campaign, client, clock, seconds=6 * 3600)
    assert recipients["+442079460951"].status == "completed"
    assert not recipients["+442079460952"].conversation_id


def test_pause_holds_a_policy_campaign_at_elevenlabs_and_resume_carries_on(api, campaign_form, client, clock):
    campaign = create(api, campaign_form(text="phone_number\n+442079460951\n", calling_hours="18:00-20:00"))
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    paused = control.campaign_pause(campaign=campaign, client=client)

    assert (paused.status, paused.pause_confirmed) == ("paused", True)
    assert SandboxCampaign.objects.get().status == "paused"
    # Paused through the window: nobody is called.
    recipients = poll(campaign, client, clock, seconds=6 * 3600)
    assert not recipients["+442079460951"].conversation_id
    assert recipients["+442079460951"].status == "dispatched"
    assert campaign.status == "paused"

    resumed = control.campaign_resume(campaign=campaign, client=client)

    assert resumed.status == "in_progress"
    assert SandboxCampaign.objects.get().status == "active"
    recipients = poll(campaign, client, clock, seconds=24 * 3600)
    assert recipients["+442079460951"].status == "completed"
    assert recipients["+442079460951"].calls.count() == 1


def test_cancel_stops_a_policy_campaign_and_nobody_left_is_called(api, campaign_form, client, clock):
    campaign = create(api, campaign_form(text="phone_number\n+442079460951\n+442079460952\n",
                                         calling_hours="18:00-20:00"))  # fmt: skip
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    result = control.campaign_cancel(campaign=campaign, client=client)

    assert (result.campaign.status, result.unconfirmed_batches) == ("cancelled", 0)
    assert SandboxCampaign.objects.get().status == "stopped"
    recipients = poll(campaign, client, clock, seconds=24 * 3600)
    assert {r.status for r in recipients.values()} == {"cancelled"}
    assert not any(r.conversation_id for r in recipients.values())


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_pause_and_resume_answer_409_when_the_campaign_cannot(api, campaign_form, action):
    campaign = create(api, campaign_form())
    Campaign.objects.filter(pk=campaign.pk).update(status="completed")

    response = api.post(f"{URL}/{campaign.pk}/{action}")

    assert response.status_code == 409
    assert "completed" in response.json()["error"]


def test_a_batch_campaign_paused_mid_way_calls_each_person_it_never_dialled_once_after_resume(
    api, campaign_form, client, clock, settings
):
    settings.SANDBOX_CALL_SPACING_SECONDS = 10  # one call every 10 s: the pause lands between them
    text = "phone_number\n" + "".join(f"+44207946095{n}\n" for n in range(5))
    campaign = create(api, campaign_form(text=text))
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)
    poll(campaign, client, clock, seconds=15)  # two calls placed

    paused = control.campaign_pause(campaign=campaign, client=client)
    assert (paused.status, paused.pause_confirmed) == ("paused", True)
    recipients = poll(campaign, client, clock, seconds=120)
    dialled = {number for number, r in recipients.items() if r.conversation_id}
    assert len(dialled) == 2
    assert campaign.status == "paused"

    control.campaign_resume(campaign=campaign, client=client)
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)
    recipients = poll(campaign, client, clock, seconds=300)
    poll(campaign, client, clock, seconds=300)

    resent = [r["phone_number"] for body in submits_batches(client) for r in body["recipients"]][5:]
    assert sorted(resent) == sorted(set(recipients) - dialled)
    assert all(r.conversation_id for r in recipients.values())
    assert campaign.status == "completed"


def submits_batches(client) -> list[dict]:
    adapter = client.session.get_adapter("http://")
    return [json.loads(r.body) for r in adapter.sent if r.url.endswith("/batch-calling/submit")]


def poll_queries(api, campaign_form, client, clock, people: int) -> int:
    text = "phone_number\n" + "".join(f"+44207946{n:03d}1\n" for n in range(people))
    campaign = create(api, campaign_form(text=text, max_attempts="2"))
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)
    clock.advance(people)  # every call placed and ended
    with CaptureQueriesContext(connection) as queries:
        tracking.campaign_poll(campaign_id=campaign.pk, client=client)
    assert Recipient.objects.filter(campaign=campaign, status="completed").count() == people
    # The sandbox answers in this process: only the service's own statements count.
    return sum(1 for query in queries.captured_queries if "sandbox_" not in query["sql"])


def test_following_a_policy_campaign_costs_the_same_queries_for_each_page_of_leads(
    api, campaign_form, client, clock, settings
):
    settings.SANDBOX_CALL_SPACING_SECONDS = 0.01
    # 100 leads and calls per page: one page of each, then three.
    one_page = poll_queries(api, campaign_form, client, clock, 100)
    three_pages = poll_queries(api, campaign_form, client, clock, 300)

    # Each further page of leads and of calls adds the same few statements (an UPDATE for the
    # leads; the calls' INSERT and an UPDATE), not one per recipient.
    assert three_pages - one_page <= 2 * 5, (one_page, three_pages)
    assert one_page <= 25


def test_an_attention_item_at_elevenlabs_is_explained_in_the_campaigns_error(api, campaign_form, client, clock):
    campaign = create(api, campaign_form(text="phone_number\n+442079460951\n", calling_hours="18:00-20:00"))
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)
    SandboxCampaign.objects.update(status="attention")  # as ElevenLabs reports it

    poll(campaign, client, clock, seconds=1)

    assert campaign.status == "in_progress"
    assert "attention item" in api.get(f"{URL}/{campaign.pk}").json()["data"]["error"]

    SandboxCampaign.objects.update(status="active")
    poll(campaign, client, clock, seconds=1)
    assert campaign.error == ""


def test_a_campaign_paused_in_elevenlabs_dashboard_shows_paused_and_can_be_resumed_here(
    api, campaign_form, client, clock
):
    campaign = create(api, campaign_form(text="phone_number\n+442079460951\n", calling_hours="18:00-20:00"))
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)
    client.pause_outbound_campaign(CampaignBatch.objects.get(campaign=campaign).elevenlabs_campaign_id)

    poll(campaign, client, clock, seconds=1)

    assert campaign.status == "paused"
    resumed = control.campaign_resume(campaign=campaign, client=client)
    assert resumed.status == "in_progress"
    assert SandboxCampaign.objects.get().status == "active"


def test_api_clients_are_told_each_status_and_each_finished_call_by_their_webhook(
    api, campaign_form, client, clock, user, settings
):
    settings.OUTBOUND_WEBHOOKS_ALLOW_HTTP = True
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    events.endpoint_create(user=user, url="http://127.0.0.1:9/hook")
    campaign = create(api, campaign_form(text="phone_number\n+442079460951\n+442079460958\n"))
    dispatch.campaign_dispatch(campaign_id=campaign.pk, client=client)

    poll(campaign, client, clock, seconds=60)
    services.suppressions.suppression_add(user=user, phone_number="+442079460952", source="api")

    sent = [(d.event_type, json.loads(d.body)["data"]) for d in Delivery.objects.order_by("pk")]
    statuses = [data["status"] for kind, data in sent if kind == "campaign.status_changed"]
    assert statuses[-1] == "completed" and "in_progress" in statuses
    finished = {data["phone_number"]: data["status"] for kind, data in sent if kind == "recipient.call_finished"}
    assert finished == {"+442079460951": "completed", "+442079460958": "voicemail"}
    assert all(data["campaign_id"] == campaign.pk for kind, data in sent if kind == "recipient.call_finished")
    assert [data["phone_number"] for kind, data in sent if kind == "suppression.added"] == ["+442079460952"]
