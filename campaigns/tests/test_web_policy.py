# ruff: noqa: RUF001 -- the pages write ranges of days and hours with an en dash, as the tests read them.
"""The staff pages' calling policy: the new-campaign form's "Calling hours and retries", the
preview by time zone and do-not-call list, the campaign page's policy, zones, Pause and Resume,
and the admin's Pause and Resume actions."""

import datetime as dt
import re
from html import unescape

import pytest
from django.urls import reverse

from campaigns.models import Campaign, CampaignBatch, Recipient

from .factories import CampaignFactory, RecipientFactory, SuppressionFactory, UserFactory
from .test_tracking import BATCHES, campaign_submitted, remote_batch
from .test_web_pages import errors_of, messages_of, text_of, upload, upload_token, uploads_dir  # noqa: F401

pytestmark = pytest.mark.django_db


# New York, Los Angeles and London each keep one clock; a toll-free number spans the continent.
ZONES_CSV = "phone_number,first_name\n+12125550100,Ann\n+13105550100,Luis\n+442079460958,Olivia\n+18005550100,Desk\n"
# Monday 7 January 2030, 06:00 in Berlin (05:00 UTC): before any window opens anywhere.
MONDAY_MORNING = {"when": "schedule", "schedule_date": "2030-01-07", "schedule_time": "06:00"}
POLICY = {
    "calling_days": ["mon", "tue", "wed", "thu", "fri"],
    "hours_from_1": "09:00",
    "hours_to_1": "12:00",
    "hours_from_2": "14:00",
    "hours_to_2": "20:00",
    "clock": "recipient",
    "max_attempts": "3",
    "retry_delay_minutes": "30",
    "max_concurrent_calls": "4",
}
POLICY_IN_WORDS = (
    "Mon–Fri, 09:00–12:00 and 14:00–20:00, each person's own time; up to 3 calls, 30 min apart; at most 4 at once"
)
API_NAMES = (
    "calling_hours",
    "calling_days",
    "calling_timezone",
    "max_attempts",
    "retry_delay_minutes",
    "max_concurrent_calls",
)


@pytest.fixture
def policy_campaign(agent, phone_number):
    """The new-campaign form with a calling policy, as a browser posts it; tests change what they are about."""

    def build(**changes):
        data = {
            "name": "Renewal calls",
            "agent_id": agent.elevenlabs_agent_id,
            "phone_number_id": str(phone_number.pk),
            "recipients_file": upload(ZONES_CSV),
            "timezone": "Europe/Berlin",
            "calling_timezone": "Europe/Berlin",
            "action": "preview",
            **MONDAY_MORNING,
            **POLICY,
        }
        data.update(changes)
        return {key: value for key, value in data.items() if value is not None}

    return build


def zone_rows(response) -> dict[str, str]:
    """The preview's zone groups: zone -> the row as a person reads it."""
    rows = re.findall(r'<tr data-zone-group="([^"]+)">(.*?)</tr>', response.content.decode(), re.S)
    return {zone: re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", row))).strip() for zone, row in rows}


def table_rows(response, caption: str) -> list[str]:
    """The body rows of the table with this caption, each as a person reads it."""
    html = response.content.decode()
    match = re.search(rf"<caption[^>]*>{re.escape(caption)}[^<]*</caption>.*?<tbody>(.*?)</tbody>", html, re.S)
    assert match, f"no table {caption!r}"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", match.group(1), re.S)
    return [re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", row))).strip() for row in rows]


def input_value(response, name: str) -> str | None:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*>', response.content.decode())
    assert match, f"no input {name}"
    value = re.search(r'value="([^"]*)"', match.group(0))
    return value.group(1) if value else None


# --- The form -----------------------------------------------------------------------------------


def test_the_form_has_a_folded_calling_hours_section_with_a_label_for_every_input(staff, agent, phone_number):
    response = staff.get("/campaigns/new")

    html = response.content.decode()
    section = html[html.index('aria-labelledby="section-policy"') :]
    section = section[: section.index("</section>")]
    assert "<details" in section and '<details class="policy" open' not in section  # folded until wanted
    assert "<legend" in section and "Calling hours and retries" in section
    text = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", section)))
    for words in (
        "Days to call",
        "Mon Tue Wed Thu Fri Sat Sun",
        "Hours to call",
        "Whose clock",
        "Each person's own time zone (from their number)",
        "One time zone for everyone",
        "Time zone for everyone",
        "Attempts per person",
        "Minutes between attempts",
        "Most calls at once",
    ):
        assert words in text
    ids = re.findall(r'<(?:input|select)[^>]*\bid="([^"]+)"', section)
    assert len(ids) == 7 + 4 + 2 + 1 + 3
    for input_id in ids:
        assert f'for="{input_id}"' in section, f"{input_id} has no label"
    assert re.search(r'<input type="radio" name="clock" value="recipient"[^>]*checked', section)


def test_the_preview_groups_recipients_by_zone_with_their_first_call_local_and_utc(staff, policy_campaign):
    response = staff.post("/campaigns/new", policy_campaign())

    assert response.status_code == 200
    assert zone_rows(response) == {
        "America/New_York": "America/New_York 1 from Mon 7 Jan, 09:00 local, 14:00 UTC",
        "America/Los_Angeles": "America/Los_Angeles 1 from Mon 7 Jan, 09:00 local, 17:00 UTC",
        "Europe/London": "Europe/London 1 from Mon 7 Jan, 09:00 local, 09:00 UTC",
        # the toll-free number is called on the campaign's own clock
        "Europe/Berlin": "Europe/Berlin 1 from Mon 7 Jan, 09:00 local, 08:00 UTC",
    }
    text = text_of(response)
    assert POLICY_IN_WORDS in text
    assert (
        "1 number has no time zone of its own (its area spans several): it is called on Europe/Berlin time, "
        "the campaign's time zone."
    ) in text
    assert "do-not-call" not in text
    assert "Create campaign to call 4 people" in text
    assert Campaign.objects.count() == 0


def test_a_zone_whose_window_opens_the_next_utc_day_names_that_day(staff, policy_campaign):
    response = staff.post(
        "/campaigns/new",
        policy_campaign(
            recipients_file=upload("phone_number\n+61291234567\n"), hours_from_1="08:00", hours_from_2="", hours_to_2=""
        ),
    )

    # At 05:00 UTC it is 16:00 on Monday in Sydney: the next window opens on Tuesday at 08:00, 21:00 on Monday in UTC.
    assert zone_rows(response) == {"Australia/Sydney": "Australia/Sydney 1 from Tue 8 Jan, 08:00 local, Mon 21:00 UTC"}


def test_one_zone_for_everyone_times_every_call_on_its_clock(staff, policy_campaign):
    response = staff.post("/campaigns/new", policy_campaign(clock="zone", calling_timezone="Europe/London"))

    assert zone_rows(response) == {"Europe/London": "Europe/London 4 from Mon 7 Jan, 09:00 local, 09:00 UTC"}
    text = text_of(response)
    assert "Mon–Fri, 09:00–12:00 and 14:00–20:00, Europe/London time" in text
    assert "no time zone of its own" not in text  # nobody's own zone matters here


def test_numbers_on_the_do_not_call_list_are_named_linked_and_not_promised_a_call(staff, policy_campaign, user):
    SuppressionFactory(user=user, phone_number="+442079460958", reason="asked by email")
    SuppressionFactory(user=UserFactory(username="someone-else"), phone_number="+12125550100")

    response = staff.post("/campaigns/new", policy_campaign())

    text = text_of(response)
    assert "1 number is on your do-not-call list and will not be called: +442079460958." in text
    assert "On the do-not-call list 1" in text
    assert 'href="/suppressions"' in response.content.decode()
    assert "Europe/London" not in zone_rows(response)
    assert "America/New_York" in zone_rows(response)  # another account's list is not ours
    assert "Create campaign to call 3 people" in text


def test_create_stores_the_policy_and_the_campaign_page_says_it_in_words(staff, policy_campaign, user):
    SuppressionFactory(user=user, phone_number="+18005550100")
    token = upload_token(staff.post("/campaigns/new", policy_campaign()))

    response = staff.post(
        "/campaigns/new", policy_campaign(recipients_file=None, upload_token=token, action="create"), follow=True
    )

    campaign = Campaign.objects.get()
    assert response.redirect_chain == [(f"/campaigns/{campaign.pk}", 302)]
    assert messages_of(response) == [
        "Campaign “Renewal calls” created with 3 recipients. It will be sent at its scheduled time."
    ]
    stored = (
        campaign.calling_hours,
        campaign.calling_days,
        campaign.calling_timezone,
        campaign.max_attempts,
        campaign.retry_delay_minutes,
        campaign.max_concurrent_calls,
        campaign.suppressed_count,
    )
    assert stored == ("09:00-12:00,14:00-20:00", "mon,tue,wed,thu,fri", "recipient", 3, 30, 4, 1)
    text = text_of(response)
    assert f"Calling hours {POLICY_IN_WORDS}" in text
    assert "1 left out: on the do-not-call list" in text
    assert table_rows(response, "Recipients and finished calls per time zone") == [
        "America/Los_Angeles 1 0",
        "America/New_York 1 0",
        "Europe/London 1 0",
    ]


def test_a_window_ending_at_midnight_and_days_alone_are_read_as_people_mean_them(staff, policy_campaign):
    token = upload_token(
        staff.post(
            "/campaigns/new",
            policy_campaign(
                calling_days=["fri", "sat", "sun", "mon"],
                hours_from_1="18:00",
                hours_to_1="00:00",
                hours_from_2="",
                hours_to_2="",
                max_attempts="1",
                max_concurrent_calls="",
            ),
        )
    )
    staff.post("/campaigns/new", policy_campaign(recipients_file=None, upload_token=token, action="create", **{
        "calling_days": ["fri", "sat", "sun", "mon"], "hours_from_1": "18:00", "hours_to_1": "00:00",
        "hours_from_2": "", "hours_to_2": "", "max_attempts": "1", "max_concurrent_calls": "",
    }))  # fmt: skip

    campaign = Campaign.objects.get()
    assert (campaign.calling_hours, campaign.calling_days) == ("18:00-24:00", "mon,fri,sat,sun")
    page = text_of(staff.get(f"/campaigns/{campaign.pk}"))
    assert "Calling hours Fri–Mon, 18:00–24:00, each person's own time; one call each" in page


def test_a_campaign_without_a_policy_is_called_once_at_any_time(staff, policy_campaign):
    blank = dict.fromkeys(POLICY, "")
    blank.update(calling_days=None, clock="recipient")
    token = upload_token(staff.post("/campaigns/new", policy_campaign(**blank)))

    staff.post("/campaigns/new", policy_campaign(recipients_file=None, upload_token=token, action="create", **blank))

    campaign = Campaign.objects.get()
    assert (campaign.calling_hours, campaign.calling_days, campaign.calling_timezone) == ("", "", "")
    assert (campaign.max_attempts, campaign.max_concurrent_calls) == (1, None)
    assert "Calling hours Any time; one call each" in text_of(staff.get(f"/campaigns/{campaign.pk}"))


# --- Refusals, next to the input they are about -------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "error"),
    [
        ({"max_attempts": "12"}, "max_attempts", "Attempts per person must be from 1 to 10; it is 12."),
        (
            {"retry_delay_minutes": "soon"},
            "retry_delay_minutes",
            "Minutes between attempts must be a whole number from 1 to 10,080.",
        ),
        ({"max_concurrent_calls": "0"}, "max_concurrent_calls", "Most calls at once must be from 1 to 1,000; it is 0."),
        (
            {"hours_from_1": "20:00", "hours_to_1": "09:00", "hours_from_2": "", "hours_to_2": ""},
            "hours_from_1",
            "The window '20:00-09:00' ends before it starts. A window runs within one day (for a night, call "
            "from 21:00 to 00:00 and then from 00:00 to 08:00).",
        ),
        (
            {"hours_from_2": "11:00", "hours_to_2": "14:00"},
            "hours_from_2",
            "The windows 09:00-12:00 and 11:00-14:00 overlap; give each hour once.",
        ),
        (
            {
                "calling_days": None,
                "hours_from_1": "",
                "hours_to_1": "",
                "hours_from_2": "",
                "hours_to_2": "",
                "clock": "zone",
                "calling_timezone": "Europe/London",
            },
            "calling_timezone",
            "One time zone for everyone applies to calling hours: give a time window or tick the days to call "
            "too, or choose each person's own time zone.",
        ),
        (
            {"clock": "zone", "calling_timezone": "Mars/Olympus_Mons"},
            "calling_timezone",
            "“Mars/Olympus_Mons” is not a time zone; choose one from the list.",
        ),
        ({"hours_to_2": ""}, "hours_to_2", "Give both ends of the window, or neither."),
    ],
)
def test_a_refused_policy_is_shown_next_to_its_input_in_words_and_keeps_what_was_typed(
    staff, policy_campaign, changes, field, error
):
    response = staff.post("/campaigns/new", policy_campaign(**changes))

    assert response.status_code == 200
    assert errors_of(response, field) == error
    text = text_of(response)
    assert not [name for name in API_NAMES if name in text]
    assert '<details class="policy" open>' in response.content.decode()  # the section opens on its error
    assert 'value="create"' not in response.content.decode()
    assert input_value(response, "retry_delay_minutes") == changes.get("retry_delay_minutes", "30")
    assert input_value(response, "hours_from_1") == changes.get("hours_from_1", "09:00")
    wednesday = re.search(r'<input type="checkbox" name="calling_days" value="wed"[^>]*>', response.content.decode())
    assert ("checked" in wednesday.group(0)) == ("calling_days" not in changes)
    assert Campaign.objects.count() == 0


def test_too_few_calls_at_once_for_the_batches_is_refused_at_create_next_to_its_input(staff, policy_campaign, settings):
    settings.ELEVENLABS_BATCH_MAX_RECIPIENTS = 2
    changes = {"calling_days": None, "hours_from_1": "", "hours_to_1": "", "hours_from_2": "", "hours_to_2": "",
               "max_attempts": "", "max_concurrent_calls": "1"}  # fmt: skip
    token = upload_token(staff.post("/campaigns/new", policy_campaign(**changes)))

    response = staff.post(
        "/campaigns/new", policy_campaign(recipients_file=None, upload_token=token, action="create", **changes)
    )

    assert errors_of(response, "max_concurrent_calls") == (
        "Most calls at once is 1, but 4 recipients go out as 2 batches of at most 2 that call side by side: allow "
        "at least 2 calls at once, or split the file into several campaigns."
    )
    assert input_value(response, "max_concurrent_calls") == "1"
    assert Campaign.objects.count() == 0


# --- The campaign page --------------------------------------------------------------------------

NEXT_CALL = dt.datetime(2030, 1, 7, 14, 0, tzinfo=dt.UTC)


def outbound_campaign(user, **fields) -> Campaign:
    """A policy campaign at ElevenLabs, its leads as the last poll left them."""
    campaign = CampaignFactory(
        user=user,
        name="Renewal calls",
        status=Campaign.Status.IN_PROGRESS,
        timezone="Europe/Berlin",
        recipients_count=3,
        calls_dispatched=2,
        calls_finished=1,
        calling_hours="09:00-12:00,14:00-20:00",
        calling_days="mon,tue,wed,thu,fri",
        calling_timezone="recipient",
        max_attempts=3,
        retry_delay_minutes=30,
        max_concurrent_calls=4,
        **fields,
    )
    RecipientFactory(
        campaign=campaign, line=2, phone_number="+12125550100", timezone="America/New_York", status="pending",
        attempt=2, conversation_id="conv_2", next_call_at=NEXT_CALL,
    )  # fmt: skip
    RecipientFactory(
        campaign=campaign, line=3, phone_number="+12125550101", timezone="America/New_York", status="failed",
        attempt=3, conversation_id="conv_3", disposition="attempt_ceiling_reached",
    )  # fmt: skip
    RecipientFactory(campaign=campaign, line=4, phone_number="+442079460958", timezone="Europe/London")
    CampaignBatch.objects.create(
        campaign=campaign, part=1, offset=0, size=3, token="vc-page-1", elevenlabs_campaign_id="ocmp_1",
        status="active", next_call_at=NEXT_CALL, submitted_at=NEXT_CALL - dt.timedelta(days=1),
    )  # fmt: skip
    return campaign


def test_the_campaign_page_shows_the_policy_the_zones_the_next_call_and_each_recipients_attempts(staff, user):
    campaign = outbound_campaign(user)

    response = staff.get(f"/campaigns/{campaign.pk}")

    text = text_of(response)
    assert f"Calling hours {POLICY_IN_WORDS}" in text
    assert "Next call Mon 7 Jan, 14:00 UTC" in text  # the staff user's zone
    assert table_rows(response, "Recipients and finished calls per time zone") == [
        "America/New_York 2 1",
        "Europe/London 1 0",
    ]
    assert "Each person's own time zone, from their number." in text
    rows = table_rows(response, "Recipients and call outcomes")
    # after the outcome and summary: calls made, the next call on the person's own clock, why calling ended
    assert rows == [
        "2 +12125550100 Waiting for a retry — 2 Mon 7 Jan, 09:00 EST — — conv_2 Copy",
        "3 +12125550101 Failed — 3 — All attempts used — conv_3 Copy",
        "4 +442079460958 Not called yet — 0 — — — —",
    ]
    html = response.content.decode()
    assert f'action="/campaigns/{campaign.pk}/pause"' in html
    assert f'action="/campaigns/{campaign.pk}/resume"' not in html
    assert re.search(r'<form method="post" action="/campaigns/\d+/pause" data-active-only data-confirm="Pause', html)


def test_progress_json_adds_the_next_call_and_the_zones_to_what_it_reported(staff, user):
    campaign = outbound_campaign(user)

    progress = staff.get(f"/campaigns/{campaign.pk}/progress.json").json()

    assert progress["next_call_at"] == "2030-01-07T14:00:00+00:00"
    assert progress["zones"] == [
        {"zone": "America/New_York", "recipients": 2, "finished": 1},
        {"zone": "Europe/London", "recipients": 1, "finished": 0},
    ]
    # what the page read before is all still there
    assert (progress["status"], progress["calls_finished"], progress["recipients_count"]) == ("in_progress", 1, 3)
    assert progress["counts"]["failed"] == 1 and progress["counts"]["pending"] == 2
    assert progress["percent"] == 33 and progress["final"] is False


def test_pause_then_resume_a_campaign_waiting_for_its_time(staff, user):
    campaign = CampaignFactory(
        user=user, name="Spring reminders", status=Campaign.Status.SCHEDULED, send_immediately=False,
        scheduled_at=dt.datetime(2030, 1, 7, 8, 0, tzinfo=dt.UTC), timezone="Europe/Berlin",
    )  # fmt: skip
    RecipientFactory(campaign=campaign, phone_number="+12125550100", timezone="America/New_York")

    paused = staff.post(f"/campaigns/{campaign.pk}/pause", follow=True)

    assert messages_of(paused) == ["Campaign “Spring reminders” paused. No call is placed until you resume it."]
    html = paused.content.decode()
    assert '<span class="badge badge--paused" data-status-badge>Paused</span>' in html
    assert "nobody is called until you resume the campaign" in text_of(paused)
    assert f'action="/campaigns/{campaign.pk}/resume"' in html
    assert f'action="/campaigns/{campaign.pk}/pause"' not in html
    assert staff.get(f"/campaigns/{campaign.pk}/progress.json").json()["status"] == "paused"

    resumed = staff.post(f"/campaigns/{campaign.pk}/resume", follow=True)

    assert messages_of(resumed) == [
        "Campaign “Spring reminders” resumed: everyone it has not called yet will be called."
    ]
    campaign.refresh_from_db()
    assert (campaign.status, campaign.paused_at) == (Campaign.Status.SCHEDULED, None)
    assert f'action="/campaigns/{campaign.pk}/pause"' in resumed.content.decode()


@pytest.fixture
def elevenlabs_settings(settings):
    settings.ELEVENLABS_BASE_URL = BATCHES.split("/v1/")[0]
    settings.ELEVENLABS_API_KEY = "k"
    return settings


def test_a_pause_elevenlabs_has_not_confirmed_warns_and_its_resume_is_refused(staff, user, http, elevenlabs_settings):
    campaign = campaign_submitted(
        user=user, name="Autumn follow-up", numbers=["+12125550100"], status=Campaign.Status.IN_PROGRESS,
        batch_status="in_progress",
    )  # fmt: skip
    http.post(f"{BATCHES}/btcal_1/cancel", status=503, body="Service Unavailable")

    paused = staff.post(f"/campaigns/{campaign.pk}/pause", follow=True)

    [message] = messages_of(paused)
    assert message.startswith("Campaign “Autumn follow-up” paused here, but ElevenLabs has not confirmed it")
    assert "calls may still be placed" in message
    assert "Not paused everywhere yet:" in text_of(paused)

    refused = staff.post(f"/campaigns/{campaign.pk}/resume", follow=True)

    [message] = messages_of(refused)
    assert message.startswith("The pause is not confirmed by ElevenLabs for every part yet")
    assert message.endswith("Try again in a minute.")
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.PAUSED


def test_a_confirmed_pause_of_a_sent_campaign_says_so(staff, user, http, elevenlabs_settings):
    campaign = campaign_submitted(
        user=user, name="Autumn follow-up", numbers=["+12125550100"], status=Campaign.Status.IN_PROGRESS,
        batch_status="in_progress",
    )  # fmt: skip
    http.post(f"{BATCHES}/btcal_1/cancel", json=remote_batch("btcal_1", status="cancelled"))

    paused = staff.post(f"/campaigns/{campaign.pk}/pause", follow=True)

    assert messages_of(paused) == ["Campaign “Autumn follow-up” paused. No call is placed until you resume it."]
    assert Campaign.objects.get(pk=campaign.pk).pause_confirmed


@pytest.mark.parametrize(
    ("status", "action", "error"),
    [
        ("completed", "pause", "The campaign is completed; only an active campaign can be paused."),
        ("in_progress", "resume", "The campaign is in progress; only a paused campaign can be resumed."),
    ],
)
def test_a_refused_pause_or_resume_shows_why(staff, user, status, action, error):
    campaign = CampaignFactory(user=user, status=status)

    response = staff.post(f"/campaigns/{campaign.pk}/{action}", follow=True)

    assert response.redirect_chain == [(f"/campaigns/{campaign.pk}", 302)]
    assert messages_of(response) == [error]
    assert Campaign.objects.get(pk=campaign.pk).status == status


def test_pause_and_resume_answer_only_posts_and_only_the_owner(staff, user, other_user):
    mine = CampaignFactory(user=user)
    theirs = CampaignFactory(user=other_user, status=Campaign.Status.IN_PROGRESS)

    assert staff.get(f"/campaigns/{mine.pk}/pause").status_code == 405
    assert staff.get(f"/campaigns/{mine.pk}/resume").status_code == 405
    assert staff.post(f"/campaigns/{theirs.pk}/pause").status_code == 404
    assert Campaign.objects.get(pk=theirs.pk).status == Campaign.Status.IN_PROGRESS


def test_an_ended_campaign_offers_neither_pause_nor_resume(staff, user):
    campaign = CampaignFactory(user=user, status=Campaign.Status.COMPLETED)

    html = staff.get(f"/campaigns/{campaign.pk}").content.decode()

    assert "/pause" not in html and "/resume" not in html


# --- Admin ---------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    return client


def act(client, action, rows):
    return client.post(
        reverse("admin:campaigns_campaign_changelist"),
        {"action": action, "_selected_action": [row.pk for row in rows]},
        follow=True,
    )


def shown(response) -> list[str]:
    assert response.status_code == 200
    return [str(message).replace("<br>", "\n") for message in response.context["messages"]]


def test_the_admin_pauses_and_resumes_campaigns_and_names_those_it_skipped(admin_client):
    waiting = CampaignFactory(name="Spring reminders", status=Campaign.Status.PENDING)
    RecipientFactory(campaign=waiting)
    ended = CampaignFactory(name="Winter survey", status=Campaign.Status.COMPLETED)

    paused = shown(act(admin_client, "pause", [waiting, ended]))

    assert paused == [
        "Paused 1 campaign: “Spring reminders”.",
        "Skipped 1 campaign:\n“Winter survey”: The campaign is completed; only an active campaign can be paused.",
    ]
    assert shown(act(admin_client, "pause", [waiting])) == [
        "Skipped 1 campaign:\n“Spring reminders”: it is paused already."
    ]

    resumed = shown(act(admin_client, "resume", [waiting, ended]))

    assert resumed == [
        "Resumed 1 campaign: “Spring reminders”.",
        "Skipped 1 campaign:\n“Winter survey”: The campaign is completed; only a paused campaign can be resumed.",
    ]
    assert dict(Campaign.objects.values_list("name", "status")) == {
        "Spring reminders": "pending",
        "Winter survey": "completed",
    }
    assert Recipient.objects.get(campaign=waiting).status == Recipient.Status.PENDING


def test_the_admin_campaign_page_shows_the_policy_and_each_zone_part(admin_client, user):
    campaign = CampaignFactory(
        user=user, calling_hours="09:00-17:00", calling_days="mon,tue,wed,thu,fri", calling_timezone="recipient",
        max_attempts=3, time_zones={"America/New_York": 2},
    )  # fmt: skip
    CampaignBatch.objects.create(
        campaign=campaign, part=1, timezone="America/New_York", offset=0, size=2, token="tok-ny",
        elevenlabs_campaign_id="camp_ny", concurrency_limit=2, status="active",
    )  # fmt: skip

    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()

    for shown in ("Calling policy", "09:00-17:00", "mon,tue,wed,thu,fri", "America/New_York", "camp_ny"):
        assert shown in page, shown
