import datetime

import pytest
from django.core.exceptions import ImproperlyConfigured
from elevenlabs.types import (
    CampaignCallsResponse,
    CampaignLeadsResponse,
    CampaignPageResponse,
    CampaignProgressResponse,
    CampaignResponse,
    GetConversationResponseModel,
    LeadDetailResponse,
    SubmitCampaignResponse,
    SuppressLeadResponse,
)

from sandbox import services
from sandbox.models import SandboxCampaign, SandboxCampaignCall

from .clients import CAMPAIGNS, CampaignClient, campaign_body
from .sdk import assert_documented

pytestmark = [pytest.mark.django_db]

# 2026-01-05 is a Monday.
MONDAY_MIDNIGHT_UTC = "2026-01-05T00:00:00+00:00"
FAST_RETRY = {"retry": {"retry_delay_seconds": 60, "max_total_calls": 3}}


@pytest.fixture
def api(db, clock):
    return CampaignClient()


def submitted(api, numbers=("+14155550120",), **fields) -> tuple[dict, str]:
    answer = api.submit_campaign(numbers, **fields)
    assert_documented(SubmitCampaignResponse, answer)
    return answer, answer["campaign"]["campaign_id"]


def leads_by_number(api, campaign_id: str) -> dict:
    page = api.leads(campaign_id, page_size=100)
    assert_documented(CampaignLeadsResponse, page)
    return {lead["phone_number"]: lead for lead in page["leads"]}


def calls_of(api, campaign_id: str, **params) -> list[dict]:
    page = api.calls(campaign_id, page_size=100, **params)
    assert_documented(CampaignCallsResponse, page)
    return page["calls"]


def progress(api, campaign_id: str) -> dict:
    answer = api.progress(campaign_id)
    assert_documented(CampaignProgressResponse, answer)
    return answer


def campaign(api, campaign_id: str) -> dict:
    answer = api.campaign(campaign_id)
    assert_documented(CampaignResponse, answer)
    return answer


# --- Submit -----------------------------------------------------------------------------------


def test_a_submit_answers_201_with_the_campaign_already_calling(api, clock):
    answer, campaign_id = submitted(
        api,
        numbers=["+14155550120", "+14155550121"],
        call_name="April reminders",
        target_concurrency_limit=5,
        recipients=[
            {
                "phone_number": "+14155550120",
                "id": "contact-1",
                "conversation_initiation_client_data": {
                    "user_id": "user-1",
                    "dynamic_variables": {"first_name": "Ana", "secret__token": "s3cret"},
                    "conversation_config_override": {"agent": {"first_message": "Hi Ana"}},
                },
            },
            {"phone_number": "+14155550121"},
        ],
    )

    created = answer["campaign"]
    assert answer["created"] is True
    assert answer["within_calling_window"] is True
    assert campaign_id.startswith("camp_")
    assert created["call_name"] == "April reminders"
    assert created["status"] == "active"
    assert created["variant"] == "advanced"
    assert created["channel_config"] == {
        "channel": "phone",
        "agent_phone_number_id": "phnum_demo_main",
        "mode_config": None,
    }
    assert created["agent_name"] == "Appointment reminders (demo)"
    assert created["target_concurrency_limit"] == 5
    assert created["counts"] == {"leads": 2, "terminal_leads": 0, "open_attention": 0}
    assert created["created_at_unix"] == created["updated_at_unix"] == int(clock.now)
    # Without a policy the campaign takes the workspace's.
    assert created["policy"]["timezone"] == "UTC"
    assert created["policy"]["retry"]["max_total_calls"] == 3
    first, second = calls_of(api, campaign_id)[::-1]
    assert first["status"] == "submitted"
    assert second["status"] == "queued"
    lead = api.lead(campaign_id, first["lead_id"])
    assert_documented(LeadDetailResponse, lead)
    assert lead["recipient_id"] == "contact-1"
    assert lead["user_id"] == "user-1"
    assert lead["attempt_count"] == 1
    assert lead["dynamic_variables"] == {"first_name": "Ana", "secret__token": "[REDACTED]"}
    assert lead["overrides"]["first_message"] == "Hi Ana"


def test_a_repeat_with_the_same_idempotency_key_returns_the_campaign_and_places_no_call(api, clock):
    _, campaign_id = submitted(api, numbers=["+14155550120"], idempotency_key="run-42")
    clock.advance(1)

    repeat = api.submit_campaign(["+14155550120"], idempotency_key="run-42", status=200)
    clock.advance(600)

    assert_documented(SubmitCampaignResponse, repeat)
    assert repeat["created"] is False
    assert repeat["campaign"]["campaign_id"] == campaign_id
    assert SandboxCampaign.objects.count() == 1
    assert len(calls_of(api, campaign_id)) == 1
    assert campaign(api, campaign_id)["status"] == "completed"


def test_a_repeated_body_without_a_key_returns_the_same_campaign(api):
    _, campaign_id = submitted(api, numbers=["+14155550120"])

    repeat = api.submit_campaign(["+14155550120"], status=200)
    other = api.submit_campaign(["+14155550120"], call_name="Another one")

    assert repeat["created"] is False
    assert repeat["campaign"]["campaign_id"] == campaign_id
    assert other["created"] is True
    assert other["campaign"]["campaign_id"] != campaign_id


def test_a_campaign_scheduled_later_places_no_call_before_then(api, clock):
    start = int(clock.now) + 120
    _, campaign_id = submitted(api, scheduled_time_unix=start)

    clock.advance(119)
    waiting = progress(api, campaign_id)
    clock.now = start + 0.1
    started = calls_of(api, campaign_id)

    assert waiting["leads"]["uncalled"] == 1
    assert waiting["next_call_time_unix"] == start
    assert [call["status"] for call in started] == ["submitted"]


def test_a_call_plays_out_and_its_conversation_is_readable(api, clock):
    _, campaign_id = submitted(api, numbers=["+14155550120"])
    started = clock.now

    seen = []
    for offset in (0.1, 2.1, 4.1, 6.1, 7.1):
        clock.now = started + offset
        (call,) = calls_of(api, campaign_id)
        seen.append((call["status"], call["conversation_id"] is not None, call["decision_disposition"]))

    assert seen == [
        ("submitted", False, None),
        ("submitted", True, None),
        ("submitted", True, None),
        ("completed", True, None),  # ended; its analysis is running
        ("completed", True, "completed"),
    ]
    (call,) = calls_of(api, campaign_id)
    assert call["intent_type"] == "initial"
    assert call["cold_attempt"] == 1
    assert (call["outcome"], call["call_result"]) == ("completed", "answered")
    assert call["outcome_at_unix"] == int(started) + 6
    conversation = api.get(f"/v1/convai/conversations/{call['conversation_id']}")
    assert conversation.status_code == 200
    body = assert_documented(GetConversationResponseModel, conversation.json())
    assert body.status == "done"
    assert body.metadata.phone_call.call_result == "answered"
    # The same shape as a batch call's conversation: the campaign and lead in batch_call.
    assert body.metadata.batch_call.batch_call_id == campaign_id
    assert body.metadata.batch_call.batch_call_recipient_id == call["lead_id"]
    lead = api.lead(campaign_id, call["lead_id"])
    assert (lead["terminal_disposition"], lead["do_not_call"], lead["attempt_count"]) == ("completed", False, 1)
    assert campaign(api, campaign_id)["status"] == "completed"


# --- Calling windows and the campaign clock ---------------------------------------------------


WEEKDAY_MORNINGS = [{"weekdays": [0, 1, 2, 3, 4], "intervals": [{"start": "09:00", "end": "17:00"}]}]


def test_no_call_goes_out_before_the_window_opens_then_calls_go_out(api, clock, settings):
    # 08:59:57 in Madrid (UTC+1 in January), on a Monday.
    settings.SANDBOX_CLOCK_START = "2026-01-05T07:59:57+00:00"
    answer, campaign_id = submitted(
        api,
        numbers=["+14155550120", "+14155550121"],
        policy={"timezone": "Europe/Madrid", "calling_periods": WEEKDAY_MORNINGS},
    )
    opens = int(clock.now) + 3

    assert answer["within_calling_window"] is False
    assert progress(api, campaign_id)["next_call_time_unix"] == opens
    assert {call["scheduled_time_unix"] for call in calls_of(api, campaign_id)} == {opens}

    clock.advance(2.9)
    before = progress(api, campaign_id)
    clock.now = opens + 0.1
    after = calls_of(api, campaign_id)

    assert before["conversations"]["in_progress"] == 0
    assert before["leads"]["uncalled"] == 2
    assert [call["status"] for call in after] == ["queued", "submitted"]


def test_a_sped_up_clock_opens_a_morning_window_within_seconds(api, clock, settings):
    settings.SANDBOX_CLOCK_START = MONDAY_MIDNIGHT_UTC
    settings.SANDBOX_CLOCK_SPEED = 3600  # an hour a second: 09:00 comes 9 seconds in
    _, campaign_id = submitted(api, policy={"calling_periods": WEEKDAY_MORNINGS})
    opens = int(clock.now) + 9

    clock.advance(8.9)
    waiting = progress(api, campaign_id)
    clock.now = opens + 0.1
    calling = progress(api, campaign_id)

    assert waiting["next_call_time_unix"] == opens
    assert waiting["conversations"]["in_progress"] == 0
    assert calling["conversations"]["in_progress"] == 1
    assert calling["leads"]["active"] == 1


def test_calls_stop_when_the_window_closes_and_resume_when_the_next_one_opens(api, clock, settings):
    settings.SANDBOX_CLOCK_START = "2026-01-05T09:00:00+00:00"
    settings.SANDBOX_CALL_SPACING_SECONDS = 30
    one_minute = [{"weekdays": [0, 1, 2, 3, 4], "intervals": [{"start": "09:00", "end": "09:01"}]}]
    _, campaign_id = submitted(
        api, numbers=["+14155550120", "+14155550121", "+14155550122"], policy={"calling_periods": one_minute}
    )
    tuesday_nine = int(clock.now) + 24 * 3600

    clock.advance(3600)
    waiting = progress(api, campaign_id)
    clock.now = tuesday_nine + 0.1
    calling = progress(api, campaign_id)

    # 09:00:00 and 09:00:30 went out; 09:01:00 is outside the window.
    assert waiting["leads"]["finished"] == 2
    assert waiting["leads"]["uncalled"] == 1
    assert waiting["next_call_time_unix"] == tuesday_nine
    assert calling["conversations"]["in_progress"] == 1


# --- Retries and outcomes -----------------------------------------------------------------------


def test_an_unreached_lead_is_retried_until_max_total_calls_then_ends_at_the_ceiling(api, clock):
    _, campaign_id = submitted(api, numbers=["+14155550128"], policy=FAST_RETRY)  # 8: voicemail every time
    started = clock.now

    # The first call ends at 6 s, its analysis at 7 s: the retry is due 60 s later.
    clock.now = started + 66.9
    waiting = calls_of(api, campaign_id)
    clock.advance(3600)
    calls = calls_of(api, campaign_id)

    assert [call["status"] for call in waiting] == ["queued", "completed"]
    assert waiting[0]["scheduled_time_unix"] == int(started) + 67
    assert [(call["intent_type"], call["cold_attempt"]) for call in calls] == [
        ("retry", 3),
        ("retry", 2),
        ("initial", 1),
    ]
    assert [call["decision_disposition"] for call in calls] == [
        "attempt_ceiling_reached",
        "retry_queued",
        "retry_queued",
    ]
    assert {call["call_result"] for call in calls} == {"voicemail"}
    assert len({call["conversation_id"] for call in calls}) == 3
    lead = leads_by_number(api, campaign_id)["+14155550128"]
    assert (lead["attempt_count"], lead["failure_count"]) == (3, 3)
    assert lead["terminal_disposition"] == "attempt_ceiling_reached"
    assert lead["do_not_call"] is False


def test_a_busy_number_is_reached_on_its_retry(api, clock):
    _, campaign_id = submitted(api, numbers=["+14155550126"], policy=FAST_RETRY)

    clock.advance(3600)
    calls = calls_of(api, campaign_id)

    assert [(call["call_result"], call["decision_disposition"]) for call in calls] == [
        ("answered", "completed"),
        ("busy", "retry_queued"),
    ]
    lead = leads_by_number(api, campaign_id)["+14155550126"]
    assert (lead["terminal_disposition"], lead["attempt_count"]) == ("completed", 2)


def test_a_retry_waits_for_the_next_window_when_its_delay_ends_outside_one(api, clock, settings):
    settings.SANDBOX_CLOCK_START = "2026-01-05T16:59:00+00:00"
    _, campaign_id = submitted(
        api,
        numbers=["+14155550126"],
        policy={"calling_periods": WEEKDAY_MORNINGS, "retry": {"retry_delay_seconds": 300}},
    )

    clock.advance(60)
    (retry, _first) = calls_of(api, campaign_id)

    # Busy at 16:59:04 + 300 s is after 17:00: the retry waits for Tuesday 09:00.
    assert retry["status"] == "queued"
    assert retry["scheduled_time_unix"] == int(clock.now) - 60 + (16 * 60 + 1) * 60
    assert progress(api, campaign_id)["next_call_time_unix"] == retry["scheduled_time_unix"]


def test_a_contact_who_asks_not_to_be_called_again_is_never_called_again(api, clock):
    _, campaign_id = submitted(api, numbers=["+14155550127"], policy=FAST_RETRY)

    clock.advance(3600)
    (call,) = calls_of(api, campaign_id)
    lead = leads_by_number(api, campaign_id)["+14155550127"]

    assert (call["call_result"], call["decision_disposition"]) == ("answered", "do_not_call")
    assert lead["do_not_call"] is True
    assert lead["terminal_disposition"] == "do_not_call"
    assert lead["attempt_count"] == 1
    conversation = api.get(f"/v1/convai/conversations/{call['conversation_id']}").json()
    assert_documented(GetConversationResponseModel, conversation)
    assert conversation["analysis"]["call_successful"] == "failure"
    assert "don't call me again" in conversation["transcript"][-1]["message"]


def test_a_simple_campaign_calls_once_and_collects_nothing(api, clock):
    answer, campaign_id = submitted(api, numbers=["+14155550126", "+14155550127"], variant="simple")

    clock.advance(3600)
    leads = leads_by_number(api, campaign_id)

    assert answer["campaign"]["variant"] == "simple"
    assert answer["campaign"]["policy"]["retry"]["max_total_calls"] == 1
    assert leads["+14155550126"]["terminal_disposition"] == "attempt_ceiling_reached"
    # Without the stop item the campaign does not learn the contact's wish.
    assert leads["+14155550127"]["terminal_disposition"] == "completed"
    assert leads["+14155550127"]["do_not_call"] is False


def test_at_most_target_concurrency_limit_calls_are_under_way(api, clock):
    _, campaign_id = submitted(api, numbers=[f"+1415555012{digit}" for digit in range(4)], target_concurrency_limit=2)
    started = clock.now

    under_way = []
    for tick in range(1, 40):
        clock.now = started + tick * 0.5
        under_way.append(progress(api, campaign_id)["conversations"]["in_progress"])

    assert max(under_way) == 2
    calls = calls_of(api, campaign_id)[::-1]
    placed = [call["scheduled_time_unix"] for call in calls]
    assert placed == [int(started)] * 4
    # The third call went out as the first ended (6 s in), not 1 s in.
    third = SandboxCampaignCall.objects.get(pk=calls[2]["intent_id"])
    assert third.placed_at == pytest.approx(started + 6)
    assert campaign(api, campaign_id)["status"] == "completed"


# --- Pause, resume, stop --------------------------------------------------------------------------


def test_a_paused_campaign_places_no_new_call_until_resumed(api, clock, settings):
    settings.SANDBOX_CALL_SPACING_SECONDS = 10
    _, campaign_id = submitted(api, numbers=["+14155550120", "+14155550121"])

    clock.advance(1)
    paused = api.action(campaign_id, "pause")
    clock.advance(600)
    while_paused = progress(api, campaign_id)
    resumed = api.action(campaign_id, "resume")
    clock.advance(0.1)
    after = progress(api, campaign_id)
    clock.advance(600)

    assert paused.status_code == 200
    assert assert_documented(CampaignResponse, paused.json()).status == "paused"
    # The call under way finished; the other lead was never called.
    assert while_paused["leads"]["finished"] == 1
    assert while_paused["leads"]["uncalled"] == 1
    assert while_paused["next_call_time_unix"] is None
    assert resumed.status_code == 200
    assert resumed.json()["status"] == "active"
    assert after["conversations"]["in_progress"] == 1
    assert campaign(api, campaign_id)["status"] == "completed"


def test_stop_lets_the_call_under_way_finish_and_ends_every_other_lead(api, clock):
    _, campaign_id = submitted(api, numbers=["+14155550120", "+14155550121", "+14155550122"])

    clock.advance(0.2)
    stopping = api.action(campaign_id, "stop")
    again = api.action(campaign_id, "stop")
    clock.advance(600)
    stopped = campaign(api, campaign_id)
    leads = leads_by_number(api, campaign_id)

    assert stopping.status_code == 202
    assert assert_documented(CampaignResponse, stopping.json()).status == "stopping"
    assert again.status_code == 202
    assert stopped["status"] == "stopped"
    assert leads["+14155550120"]["terminal_disposition"] == "completed"
    for number in ("+14155550121", "+14155550122"):
        assert leads[number]["terminal_disposition"] == "campaign_ended"
        assert leads[number]["do_not_call"] is True
        assert leads[number]["attempt_count"] == 0
    assert [call["status"] for call in calls_of(api, campaign_id)] == ["cancelled", "cancelled", "completed"]
    assert api.action(campaign_id, "stop").status_code == 200


def test_a_failed_call_finishing_after_stop_ends_its_lead_without_a_retry(api, clock):
    _, campaign_id = submitted(api, numbers=["+14155550126"], policy=FAST_RETRY)

    clock.advance(1)
    api.action(campaign_id, "stop")
    clock.advance(600)
    (call,) = calls_of(api, campaign_id)

    assert call["decision_disposition"] == "suppressed_after_stop"
    assert leads_by_number(api, campaign_id)["+14155550126"]["terminal_disposition"] == "campaign_ended"
    assert campaign(api, campaign_id)["status"] == "stopped"


def test_a_finished_campaign_can_no_longer_be_paused_resumed_or_stopped(api, clock):
    _, campaign_id = submitted(api)
    clock.advance(600)

    answers = [api.action(campaign_id, action) for action in ("pause", "resume", "stop")]

    assert [answer.status_code for answer in answers] == [400, 400, 400]
    assert {answer.json()["detail"]["status"] for answer in answers} == {"invalid_state"}


# --- Removing a lead --------------------------------------------------------------------------------


def test_a_removed_lead_is_never_called(api, clock, settings):
    settings.SANDBOX_CALL_SPACING_SECONDS = 10
    _, campaign_id = submitted(api, numbers=["+14155550120", "+14155550121"])
    queued_lead = leads_by_number(api, campaign_id)["+14155550121"]["lead_id"]

    removed = api.delete(f"{CAMPAIGNS}/{campaign_id}/leads/{queued_lead}")
    clock.advance(600)

    assert removed.status_code == 200
    assert assert_documented(SuppressLeadResponse, removed.json()).has_calls_in_flight is False
    lead = api.lead(campaign_id, queued_lead)
    assert (lead["terminal_disposition"], lead["do_not_call"], lead["attempt_count"]) == ("removed", True, 0)
    assert [call["status"] for call in calls_of(api, campaign_id, lead_id=queued_lead)] == ["cancelled"]
    assert campaign(api, campaign_id)["status"] == "completed"


def test_removing_a_lead_whose_call_is_under_way_answers_202_and_lets_it_finish(api, clock):
    _, campaign_id = submitted(api, numbers=["+14155550126"], policy=FAST_RETRY)
    lead_id = leads_by_number(api, campaign_id)["+14155550126"]["lead_id"]

    clock.advance(1)
    removed = api.delete(f"{CAMPAIGNS}/{campaign_id}/leads/{lead_id}")
    clock.advance(600)

    assert removed.status_code == 202
    assert removed.json() == {"campaign_id": campaign_id, "lead_id": lead_id, "has_calls_in_flight": True}
    (call,) = calls_of(api, campaign_id)
    assert (call["status"], call["decision_disposition"]) == ("completed", "suppressed")
    assert api.lead(campaign_id, lead_id)["terminal_disposition"] == "removed"
    assert campaign(api, campaign_id)["status"] == "completed"


def test_an_unknown_lead_or_campaign_is_not_found(api):
    _, campaign_id = submitted(api)

    answers = [
        api.get(f"{CAMPAIGNS}/camp_missing"),
        api.get(f"{CAMPAIGNS}/{campaign_id}/leads/lead_missing"),
        api.delete(f"{CAMPAIGNS}/{campaign_id}/leads/lead_missing"),
        api.post(f"{CAMPAIGNS}/camp_missing/pause"),
    ]

    assert [answer.status_code for answer in answers] == [404, 404, 404, 404]
    assert answers[0].json() == {"detail": {"status": "not_found", "message": "Campaign camp_missing not found"}}


# --- Lists ------------------------------------------------------------------------------------------


def test_leads_are_paged_with_the_cursor_and_filtered(api, clock):
    numbers = [f"+1415555013{digit}" for digit in range(5)]
    _, campaign_id = submitted(
        api, recipients=[{"phone_number": number, "id": f"r{index}"} for index, number in enumerate(numbers)]
    )

    pages = []
    cursor = None
    while True:
        params = {"page_size": 2, **({"cursor": cursor} if cursor else {})}
        page = api.leads(campaign_id, **params)
        assert_documented(CampaignLeadsResponse, page)
        pages.append(page)
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    clock.advance(3)  # the first lead's call has ended

    assert [[lead["recipient_id"] for lead in page["leads"]] for page in pages] == [["r0", "r1"], ["r2", "r3"], ["r4"]]
    assert pages[-1]["next_cursor"] is None
    assert len(api.leads(campaign_id, search="5550132")["leads"]) == 1
    clock.advance(600)
    assert len(api.leads(campaign_id, status="finished", disposition="completed")["leads"]) == 5
    assert api.leads(campaign_id, status="in_progress")["leads"] == []
    assert api.get(f"{CAMPAIGNS}/{campaign_id}/leads", {"cursor": "lead_nope"}).status_code == 400


def test_calls_are_listed_newest_first_and_paged_with_the_cursor(api, clock):
    _, campaign_id = submitted(api, numbers=["+14155550120", "+14155550126", "+14155550128"], policy=FAST_RETRY)
    clock.advance(3600)

    seen = []
    cursor = None
    while True:
        params = {"page_size": 2, **({"cursor": cursor} if cursor else {})}
        page = api.calls(campaign_id, **params)
        assert_documented(CampaignCallsResponse, page)
        seen.extend(page["calls"])
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]

    # 3 first calls, a retry of the busy number, two of the voicemail one.
    assert len(seen) == 6
    assert len({call["intent_id"] for call in seen}) == 6
    assert [call["intent_type"] for call in seen[-3:]] == ["initial"] * 3
    assert len(calls_of(api, campaign_id, call_result="voicemail")) == 3
    assert len(calls_of(api, campaign_id, call_result=["busy", "answered"])) == 3


def test_campaigns_are_listed_newest_first_and_filtered_by_status(api, clock):
    ids = []
    for index in range(3):
        ids.append(submitted(api, call_name=f"Campaign {index}")[1])
        clock.advance(1)
    api.action(ids[1], "pause")

    first = api.get(CAMPAIGNS, {"page_size": 2}).json()
    second = api.get(CAMPAIGNS, {"page_size": 2, "cursor": first["next_cursor"]}).json()
    paused = api.get(CAMPAIGNS, {"status": "paused"}).json()

    assert_documented(CampaignPageResponse, first)
    assert [item["campaign_id"] for item in first["campaigns"] + second["campaigns"]] == ids[::-1]
    assert second["has_more"] is False
    assert [item["campaign_id"] for item in paused["campaigns"]] == [ids[1]]


# --- Ticks and the clock settings ------------------------------------------------------------------


def test_sandbox_tick_plays_open_campaigns_forward(api, clock):
    _, campaign_id = submitted(api)

    clock.advance(600)
    result = services.sandbox_tick()

    assert result.campaigns_advanced == 1
    assert SandboxCampaign.objects.get(pk=campaign_id).status == "completed"


@pytest.mark.parametrize(
    ("name", "value"),
    [("SANDBOX_CLOCK_SPEED", "0"), ("SANDBOX_CLOCK_SPEED", "fast"), ("SANDBOX_CLOCK_START", "Monday")],
)
def test_a_malformed_clock_setting_is_refused(api, settings, name, value):
    setattr(settings, name, value)

    with pytest.raises(ImproperlyConfigured, match=name):
        api.post(f"{CAMPAIGNS}/submit", campaign_body())


def test_the_clock_start_may_be_unix_seconds(api, clock, settings):
    monday_nine = datetime.datetime(2026, 1, 5, 9, tzinfo=datetime.UTC).timestamp()
    settings.SANDBOX_CLOCK_START = str(int(monday_nine) - 5)

    answer, campaign_id = submitted(api, policy={"calling_periods": WEEKDAY_MORNINGS})

    assert answer["within_calling_window"] is False
    assert progress(api, campaign_id)["next_call_time_unix"] == int(clock.now) + 5
