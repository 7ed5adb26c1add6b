"""The staff web pages, through the Django test client and the real database."""

import csv
import datetime as dt
import io
import re
from html import unescape

import openpyxl
import pytest
import responses
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import Agent, ApiKey, Campaign, CampaignBatch, PhoneNumber, Recipient
from campaigns.recipients import RecipientsReader

from .factories import AgentFactory, CampaignFactory, PhoneNumberFactory, RecipientFactory, UserFactory

pytestmark = pytest.mark.django_db

ELEVENLABS = "https://api.elevenlabs.test"


@pytest.fixture(autouse=True)
def uploads_dir(settings, tmp_path):
    settings.WEB_UPLOADS_DIR = tmp_path / "uploads"
    return settings.WEB_UPLOADS_DIR


def upload(text: str, name: str = "recipients.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


GOOD_CSV = "phone_number,first_name,language\n+12125550100,Alice,en\n+14155550123,Bob,\n"
# Line 4 repeats line 2; lines 5 and 6 cannot be called.
MIXED_CSV = (
    "phone_number,first_name,language\n"
    "+12125550100,Alice,en\n"
    "+14155550123,Bob,\n"
    "+1 (212) 555-0100,Alice again,en\n"
    "12345,Shorty,\n"
    "1.41555E+10,Sci,\n"
)


@pytest.fixture
def new_campaign(agent, phone_number):
    """The fields of the new-campaign form as a browser posts them; tests change what they are about."""

    def build(**changes):
        data = {
            "name": "Spring reminders",
            "agent_id": agent.elevenlabs_agent_id,
            "phone_number_id": str(phone_number.pk),
            "recipients_file": upload(GOOD_CSV),
            "default_country": "",
            "when": "now",
            "schedule_date": "",
            "schedule_time": "",
            "timezone": "Europe/Berlin",
            "action": "preview",
        }
        data.update(changes)
        return {key: value for key, value in data.items() if value is not None}

    return build


def text_of(response) -> str:
    """The page as a person reads it: tags dropped, entities decoded, whitespace collapsed."""
    html = response.content.decode()
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()
    return re.sub(r" ([,.;:)%])", r"\1", text).replace("( ", "(")


def errors_of(response, field: str) -> str:
    """The text of the error list shown under a form field."""
    match = re.search(rf'<ul class="field__errors" id="id_{field}_error">(.*?)</ul>', response.content.decode(), re.S)
    assert match, f"no errors shown under {field}"
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", match.group(1)))).strip()


def upload_token(response) -> str:
    match = re.search(r'name="upload_token" value="([^"]+)"', response.content.decode())
    assert match, "the page keeps no uploaded file"
    return match.group(1)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def campaign_in_progress(user, *, recipients=(), **fields) -> Campaign:
    campaign = CampaignFactory(user=user, status=Campaign.Status.IN_PROGRESS, **fields)
    for line, (number, status, outcome) in enumerate(recipients, start=2):
        RecipientFactory(campaign=campaign, phone_number=number, line=line, status=status, **outcome)
    Campaign.objects.filter(pk=campaign.pk).update(recipients_count=len(recipients))
    campaign.refresh_from_db()
    return campaign


# --- Signing in ----------------------------------------------------------------------------

PAGES = [
    "/",
    "/campaigns/new",
    "/campaigns/template.csv",
    "/campaigns/1",
    "/campaigns/1/progress.json",
    "/campaigns/1/export.csv",
    "/agents",
    "/api-keys",
]


@pytest.mark.parametrize("url", PAGES)
def test_every_page_sends_an_anonymous_visitor_to_sign_in(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


def test_a_staff_user_signs_in_and_lands_on_the_campaigns(client, user):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert '<label class="field__label" for="id_username">' in page.content.decode()

    response = client.post("/accounts/login/", {"username": "alice", "password": "correct horse battery"}, follow=True)

    assert response.redirect_chain == [("/", 302)]
    assert "Campaigns" in text_of(response)


def test_a_wrong_password_is_refused_with_a_message(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})

    assert response.status_code == 200
    assert "Please enter a correct username and password" in text_of(response)


def test_a_user_without_staff_access_is_told_so_instead_of_seeing_the_pages(client):
    client.force_login(UserFactory(username="bob", is_staff=False))

    for response in (client.get("/"), client.get("/api-keys"), client.post("/agents/sync")):
        assert response.status_code == 403
        assert "You are signed in as bob, which is not a staff account" in text_of(response)


def test_signing_out_is_a_post_and_ends_the_session(staff):
    assert staff.get("/accounts/logout/").status_code == 405

    response = staff.post("/accounts/logout/")

    assert response.status_code == 302
    assert staff.get("/").status_code == 302


# --- Campaigns list ----------------------------------------------------------------------------


def test_the_list_shows_each_campaign_with_status_progress_and_schedule_in_its_time_zone(staff, user, other_user):
    CampaignFactory(
        user=user,
        name="Berlin follow-ups",
        status=Campaign.Status.SCHEDULED,
        send_immediately=False,
        scheduled_at=dt.datetime(2030, 1, 15, 9, 30, tzinfo=dt.UTC),
        timezone="Europe/Berlin",
        recipients_count=10,
    )
    CampaignFactory(
        user=user, name="Renewals", status=Campaign.Status.IN_PROGRESS, recipients_count=10, calls_finished=4
    )
    CampaignFactory(user=other_user, name="Mallory's secret campaign")

    response = staff.get("/")

    assert response.status_code == 200
    text = text_of(response)
    assert "Scheduled" in text and "In progress" in text
    # In the staff user's zone (UTC until chosen), with the campaign's own clock beside it.
    assert "15 Jan 2030, 09:30 UTC 10:30 CET Europe/Berlin" in text
    assert "4 of 10 finished" in text
    assert 'class="meter__fill pct-40"' in response.content.decode()
    assert "Sent immediately" in text
    assert "Mallory" not in text
    assert 'class="badge badge--scheduled"' in response.content.decode()


def test_the_list_filters_by_status_and_searches_by_name(staff, user):
    CampaignFactory(user=user, name="Spring Launch", status=Campaign.Status.COMPLETED)
    CampaignFactory(user=user, name="Autumn launch", status=Campaign.Status.PENDING)
    CampaignFactory(user=user, name="Billing reminders", status=Campaign.Status.COMPLETED)

    completed = text_of(staff.get("/?status=completed"))
    searched = text_of(staff.get("/?q=LAUNCH"))
    both = text_of(staff.get("/?q=launch&status=completed"))
    nothing = text_of(staff.get("/?q=winter"))

    assert "Spring Launch" in completed and "Billing reminders" in completed and "Autumn launch" not in completed
    assert "Spring Launch" in searched and "Autumn launch" in searched and "Billing reminders" not in searched
    assert "Spring Launch" in both and "Autumn launch" not in both
    assert "No campaigns match" in nothing


def test_the_list_is_paginated_newest_first(staff, user):
    for number in range(30):
        CampaignFactory(user=user, name=f"Campaign number {number:02d}")

    first = text_of(staff.get("/"))
    second = text_of(staff.get("/?page=2&status="))

    assert "Page 1 of 2" in first and "Campaign number 29" in first and "Campaign number 04" not in first
    assert "Page 2 of 2" in second and "Campaign number 04" in second and "Campaign number 00" in second
    assert "Campaign number 05" not in second


def test_a_new_user_is_told_to_sync_agents_and_numbers_first(staff):
    text = text_of(staff.get("/"))

    assert "Create your first campaign" in text
    assert "Sync your agents and phone numbers" in text
    assert "Sync agents and numbers from ElevenLabs" in text


def test_a_user_with_agents_and_numbers_is_invited_to_create_a_campaign(staff, agent, phone_number):
    response = staff.get("/")

    assert "Done: your agents and numbers are here." in text_of(response)
    assert '<a class="button button--primary" href="/campaigns/new">Create a campaign</a>' in response.content.decode()


# --- New campaign: preview, create, errors ------------------------------------------------------


def test_the_new_campaign_form_lists_only_the_users_own_agents_and_numbers(staff, agent, phone_number, other_user):
    AgentFactory(user=other_user, name="Mallory's agent")
    PhoneNumberFactory(user=other_user, phone_number="+14155550999")

    response = staff.get("/campaigns/new")

    html = response.content.decode()
    assert response.status_code == 200
    assert f'<option value="{agent.elevenlabs_agent_id}">Reminder agent</option>' in html
    assert f'<option value="{phone_number.pk}">' in html
    assert "Mallory" not in html and "+14155550999" not in html
    assert "data-detect-timezone" in html
    assert 'enctype="multipart/form-data"' in html


def test_the_preview_reports_counts_invalid_rows_and_variables_and_creates_nothing(staff, new_campaign):
    response = staff.post("/campaigns/new", new_campaign(recipients_file=upload(MIXED_CSV)))

    assert response.status_code == 200
    text = text_of(response)
    assert "Rows read 5 Recipients 2 Duplicates merged 1 Invalid rows 2" in text
    assert "Line Value Why 5 12345" in text
    assert "6 1.41555E+10 was converted to scientific notation" in text
    assert (
        "Column in the file Becomes phone_number The number to call first_name Variable {{first_name}} "
        "language Override of the agent's language Not checked: this agent's settings have not been synced "
        "from ElevenLabs yet."
    ) in text
    assert "2 +12125550100 first_name Alice language en" in text
    assert "3 +14155550123 first_name Bob None" in text
    assert "The file would be refused as it is" in text
    assert 'value="create"' not in response.content.decode()
    assert Campaign.objects.count() == 0 and Recipient.objects.count() == 0


def test_the_preview_keeps_what_was_typed_and_the_uploaded_file(staff, new_campaign, agent, phone_number):
    response = staff.post(
        "/campaigns/new",
        new_campaign(
            when="schedule",
            schedule_date="2031-06-01",
            schedule_time="09:15",
            timezone="America/New_York",
            default_country="us",
            skip_invalid_rows="on",
        ),
    )

    html = response.content.decode()
    assert 'value="Spring reminders"' in html
    assert f'<option value="{agent.elevenlabs_agent_id}" selected>' in html
    assert f'<option value="{phone_number.pk}" selected>' in html
    assert 'value="schedule" class="" id="id_when_1" checked' in html or re.search(
        r'<input[^>]*value="schedule"[^>]*checked', html
    )
    assert 'value="2031-06-01"' in html and 'value="09:15"' in html
    assert '<option value="America/New_York" selected>' in html
    assert 'value="us"' in html
    assert re.search(r'<input[^>]*name="skip_invalid_rows"[^>]*checked', html)
    assert "Using recipients.csv (" in text_of(response)
    assert upload_token(response)
    assert "starting Sunday 1 June 2031, 09:15 EDT (America/New_York; 13:15 UTC, 1 Jun)" in text_of(response)
    assert 'value="create"' in html


def test_create_after_preview_uses_the_kept_file_and_stores_what_the_api_would(
    staff, new_campaign, user, api, uploads_dir
):
    preview = staff.post("/campaigns/new", new_campaign(recipients_file=upload(MIXED_CSV), skip_invalid_rows="on"))
    token = upload_token(preview)

    response = staff.post(
        "/campaigns/new",
        new_campaign(recipients_file=None, upload_token=token, skip_invalid_rows="on", action="create"),
        follow=True,
    )

    campaign = Campaign.objects.get()
    assert response.redirect_chain == [(f"/campaigns/{campaign.pk}", 302)]
    assert messages_of(response) == ["Campaign “Spring reminders” created with 2 recipients. It is being sent now."]
    assert (campaign.user, campaign.name, campaign.status) == (user, "Spring reminders", Campaign.Status.PENDING)
    assert (campaign.recipients_count, campaign.duplicates_merged, campaign.invalid_rows_skipped) == (2, 1, 2)
    assert list(uploads_dir.iterdir()) == []  # the kept file is gone once the campaign exists

    # The API, given the same file and choices, stores the very same recipients.
    api_response = api.post(
        "/api/v1/campaigns",
        {
            "name": "Spring reminders",
            "agent_id": campaign.agent.elevenlabs_agent_id,
            "phone_number_id": str(campaign.phone_number_id),
            "recipients_file": upload(MIXED_CSV),
            "send_immediately": "true",
            "skip_invalid_rows": "true",
            "timezone": "Europe/Berlin",
        },
        format="multipart",
    )
    assert api_response.status_code == 201, api_response.content
    from_api = Campaign.objects.get(pk=api_response.json()["data"]["id"])

    def stored(record):
        return list(record.recipients.order_by("pk").values_list("phone_number", "line", "variables", "overrides"))

    assert (
        stored(campaign)
        == stored(from_api)
        == [
            ("+12125550100", 2, {"first_name": "Alice"}, {"language": "en"}),
            ("+14155550123", 3, {"first_name": "Bob"}, {}),
        ]
    )
    assert campaign.import_errors == from_api.import_errors


def test_an_excel_workbook_is_previewed_and_created_from_the_kept_file(staff, new_campaign):
    workbook = openpyxl.Workbook()
    workbook.active.append(["Phone Number", "First Name"])
    workbook.active.append(["+12125550100", "Alice"])
    workbook.active.append([14155550123, "Bob"])  # a number cell, as Excel stores it
    content = io.BytesIO()
    workbook.save(content)
    xlsx = SimpleUploadedFile("people.xlsx", content.getvalue())

    preview = staff.post("/campaigns/new", new_campaign(recipients_file=xlsx, default_country="US"))
    assert "Rows read 2 Recipients 2" in text_of(preview)
    assert "Using people.xlsx (" in text_of(preview)
    response = staff.post(
        "/campaigns/new",
        new_campaign(recipients_file=None, upload_token=upload_token(preview), default_country="US", action="create"),
    )

    assert response.status_code == 302
    assert sorted(Recipient.objects.values_list("phone_number", "variables")) == [
        ("+12125550100", {"First_Name": "Alice"}),
        ("+14155550123", {"First_Name": "Bob"}),
    ]


def test_the_preview_shows_each_column_as_the_agent_sees_it(staff, new_campaign, agent):
    agent.override_permissions = {"language": True, "first_message": True, "system_prompt": False, "voice_id": False}
    agent.save()
    csv_text = "Phone_Number,customerName,Account ID,First_Message\n+12125550100,Alice,A-1,Hi Alice\n"

    response = staff.post("/campaigns/new", new_campaign(recipients_file=upload(csv_text)))

    assert response.status_code == 200
    assert response.context["preview"].variables == ["customerName", "Account_ID"]
    assert (
        "Column in the file Becomes Phone_Number The number to call customerName Variable {{customerName}} "
        "Account ID Variable {{Account_ID}} First_Message Override of the agent's first message Allowed by this "
        "agent."
    ) in text_of(response)
    html = response.content.decode()
    assert ">Each column of the file and what it becomes for every call</caption>" in html
    assert '<th scope="row">customerName</th>' in html


@pytest.mark.parametrize("heading", ["items", "keys", "values"])
def test_a_column_named_like_a_dict_method_is_previewed_as_a_variable(staff, new_campaign, heading):
    csv_text = f"phone_number,{heading}\n+12125550100,3 boxes\n"

    response = staff.post("/campaigns/new", new_campaign(recipients_file=upload(csv_text)))

    assert response.status_code == 200
    text = text_of(response)
    assert f"{heading} Variable {{{{{heading}}}}}" in text
    assert f"{heading} 3 boxes" in text


def test_an_override_the_agent_does_not_allow_is_shown_under_the_file_and_nothing_is_created(
    staff, new_campaign, agent
):
    agent.name = "Payment follow-up (demo)"
    agent.override_permissions = {"language": False, "first_message": False, "system_prompt": False, "voice_id": False}
    agent.save()
    refused = (
        "The column first_message would override the agent's first message, which the agent “Payment follow-up "
        "(demo)” does not allow. In ElevenLabs, open the agent's Security tab, turn on the First message override, "
        "then sync agents here — or remove the column."
    )
    csv_text = "phone_number,first_message\n+12125550100,Hi Alice\n"

    preview = staff.post("/campaigns/new", new_campaign(recipients_file=upload(csv_text)))
    create = staff.post("/campaigns/new", new_campaign(recipients_file=upload(csv_text), action="create"))

    for response in (preview, create):
        assert response.status_code == 200
        assert errors_of(response, "recipients_file") == refused
        assert response.context["preview"] is None
    assert Campaign.objects.count() == 0 and Recipient.objects.count() == 0


def test_the_form_offers_only_numbers_that_can_place_calls(staff, user, phone_number):
    inbound = PhoneNumberFactory(user=user, phone_number="+14155550199", label="Inbound", supports_outbound=False)

    html = staff.get("/campaigns/new").content.decode()

    assert f'<option value="{phone_number.pk}">' in html
    assert f'<option value="{inbound.pk}"' not in html and "+14155550199" not in html


def test_an_inbound_only_number_posted_anyway_is_refused_next_to_the_number(staff, new_campaign, user):
    inbound = PhoneNumberFactory(user=user, phone_number="+14155550199", label="Inbound", supports_outbound=False)

    response = staff.post("/campaigns/new", new_campaign(phone_number_id=str(inbound.pk)))

    assert errors_of(response, "phone_number_id") == (
        "+1 415-555-0199 (Inbound) cannot place calls: ElevenLabs reports it as inbound-only. Choose another number."
    )


def test_a_scheduled_campaign_is_created_at_the_utc_instant_of_its_local_time(staff, new_campaign):
    response = staff.post(
        "/campaigns/new",
        new_campaign(
            when="schedule",
            schedule_date="2031-01-15",
            schedule_time="10:30",
            timezone="Europe/Berlin",
            action="create",
        ),
    )

    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.scheduled_at == dt.datetime(2031, 1, 15, 9, 30, tzinfo=dt.UTC)
    assert campaign.timezone == "Europe/Berlin"


def test_a_schedule_in_the_past_is_reported_next_to_the_date(staff, new_campaign):
    yesterday = (timezone.now() - dt.timedelta(days=1)).date().isoformat()

    response = staff.post(
        "/campaigns/new", new_campaign(when="schedule", schedule_date=yesterday, schedule_time="10:00")
    )

    assert response.status_code == 200
    assert "is in the past. Pick a future date and time." in errors_of(response, "schedule_date")
    assert Campaign.objects.count() == 0


def test_a_time_skipped_by_daylight_saving_is_reported_next_to_the_time(staff, new_campaign):
    response = staff.post(
        "/campaigns/new",
        new_campaign(when="schedule", schedule_date="2031-03-30", schedule_time="02:30", timezone="Europe/Berlin"),
    )

    assert "does not exist in Europe/Berlin" in errors_of(response, "schedule_time")


def test_a_schedule_without_a_date_and_time_asks_for_them(staff, new_campaign):
    response = staff.post("/campaigns/new", new_campaign(when="schedule"))

    assert errors_of(response, "schedule_date") == "Pick the day the campaign should start."
    assert errors_of(response, "schedule_time") == "Pick the time the campaign should start."


def test_an_agent_id_tampered_in_the_post_is_reported_next_to_the_agent(staff, new_campaign, other_user):
    someone_elses = AgentFactory(user=other_user, elevenlabs_agent_id="agent_mallory")

    response = staff.post("/campaigns/new", new_campaign(agent_id=someone_elses.elevenlabs_agent_id, action="create"))

    assert response.status_code == 200
    assert errors_of(response, "agent_id") == "Agent not found: there is no agent 'agent_mallory' in your account."
    assert Campaign.objects.count() == 0


def test_a_phone_number_of_another_user_is_reported_next_to_the_number(staff, new_campaign, other_user):
    theirs = PhoneNumberFactory(user=other_user)

    response = staff.post("/campaigns/new", new_campaign(phone_number_id=str(theirs.pk)))

    assert f"there is no phone number {theirs.pk} in your account" in errors_of(response, "phone_number_id")


def test_invalid_rows_are_listed_under_the_file_with_their_line_numbers(staff, new_campaign):
    response = staff.post("/campaigns/new", new_campaign(recipients_file=upload(MIXED_CSV), action="create"))

    assert response.status_code == 200
    errors = errors_of(response, "recipients_file")
    assert errors.startswith("The recipients file has 2 invalid rows.")
    assert "Line 5: '12345' has no country code" in errors
    assert "Line 6: '1.41555E+10' was converted to scientific notation" in errors
    assert Campaign.objects.count() == 0 and Recipient.objects.count() == 0
    assert upload_token(response)  # fixing a choice does not mean uploading the file again


def test_a_file_without_a_phone_column_is_reported_under_the_file(staff, new_campaign):
    response = staff.post("/campaigns/new", new_campaign(recipients_file=upload("name,city\nAlice,Paris\n")))

    assert "The file has no phone_number column." in errors_of(response, "recipients_file")


def test_a_number_without_country_code_needs_a_default_country(staff, new_campaign):
    local = upload("phone_number\n(212) 555-0100\n")
    refused = staff.post("/campaigns/new", new_campaign(recipients_file=local))
    accepted = staff.post(
        "/campaigns/new", new_campaign(recipients_file=upload("phone_number\n(212) 555-0100\n"), default_country="US")
    )

    assert "has no country code" in text_of(refused)
    assert "Rows read 1 Recipients 1" in text_of(accepted)
    assert "+12125550100" in text_of(accepted)


def test_a_form_without_a_file_asks_for_one(staff, new_campaign):
    response = staff.post("/campaigns/new", new_campaign(recipients_file=None))

    assert errors_of(response, "recipients_file") == "Choose a CSV or Excel (.xlsx) file with the people to call."


def test_another_users_upload_token_is_not_accepted(staff, client, new_campaign, other_user):
    preview = staff.post("/campaigns/new", new_campaign())
    token = upload_token(preview)
    client.force_login(other_user)
    AgentFactory(user=other_user, elevenlabs_agent_id="agent_abc123")
    number = PhoneNumberFactory(user=other_user)

    response = client.post(
        "/campaigns/new",
        new_campaign(recipients_file=None, upload_token=token, phone_number_id=str(number.pk), action="create"),
    )

    assert "The file from your preview is no longer available" in errors_of(response, "recipients_file")
    assert Campaign.objects.count() == 0


def test_the_template_file_downloads_and_is_a_valid_recipients_file(staff):
    response = staff.get("/campaigns/template.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="recipients-template.csv"'
    assert response.content.decode().splitlines()[0] == "phone_number,first_name,language,first_message"
    reader = RecipientsReader(io.BytesIO(response.content), filename="template.csv")
    rows = list(reader)
    assert len(rows) == 2 and reader.error_count == 0
    assert rows[0].variables == {"first_name": "Alice"}
    assert set(rows[0].overrides) == {"language", "first_message"}


# --- The campaign page ----------------------------------------------------------------------


@pytest.fixture
def followed(user):
    """A scheduled-then-sent campaign with calls at every stage."""
    campaign = campaign_in_progress(
        user,
        name="Q1 renewals",
        send_immediately=False,
        scheduled_at=dt.datetime(2030, 1, 15, 15, 0, tzinfo=dt.UTC),
        timezone="America/New_York",
        elevenlabs_batch_call_id="btcal_q1",
        calls_dispatched=4,
        calls_finished=3,
        recipients=[
            (
                "+12125550100",
                "completed",
                {"call_successful": "success", "summary": "Confirmed the appointment.", "conversation_id": "conv_100"},
            ),
            ("+12125550101", "failed", {"failure_reason": "busy", "conversation_id": "conv_101"}),
            ("+12125550102", "voicemail", {"conversation_id": "conv_102"}),
            ("+12125550103", "in_progress", {}),
        ],
    )
    CampaignBatch.objects.create(
        campaign=campaign,
        part=1,
        offset=0,
        size=4,
        token="tok-q1",
        elevenlabs_batch_call_id="btcal_q1",
        status="in_progress",
    )
    return campaign


def test_the_campaign_page_shows_its_schedule_setup_outcomes_and_recipients(staff, followed):
    response = staff.get(f"/campaigns/{followed.pk}")

    assert response.status_code == 200
    text = text_of(response)
    assert "Q1 renewals In progress" in text
    assert (
        "Schedule Tue 15 Jan 2030, 15:00 UTC Tue 15 Jan, 10:00 EST on the campaign's clock (America/New_York)" in text
    )
    assert f"Agent {followed.agent.name} {followed.agent.elevenlabs_agent_id}" in text
    assert f"Phone number {followed.phone_number.phone_number}" in text
    assert "ElevenLabs batch btcal_q1" in text
    assert "3 of 4 calls finished (75%)" in text
    assert "In the pipeline 1 Not called yet 0 " in text and "On the call 1 " in text
    assert "Finished 3 Answered, successful 1 " in text and "Voicemail 1 Busy 1 " in text
    assert "Answer rate 33% Success rate 100%" in text
    # line, number, outcome, summary, calls, updated, conversation (no calling policy: no next call)
    assert "2 +12125550100 Answered, successful Confirmed the appointment. 1 — conv_100" in text
    assert "3 +12125550101 Busy — 1 — conv_101" in text
    assert "4 +12125550102 Voicemail — 1 — conv_102" in text
    html = response.content.decode()
    assert f'data-progress-url="/campaigns/{followed.pk}/progress.json"' in html
    assert 'aria-live="polite"' in html
    assert 'class="progress__fill pct-75 progress__fill--active"' in html  # widths by class: no style attribute
    assert f'action="/campaigns/{followed.pk}/cancel"' in html
    assert f'action="/campaigns/{followed.pk}/retry"' in html


def test_progress_json_reports_the_status_the_counters_and_each_outcome(staff, followed):
    response = staff.get(f"/campaigns/{followed.pk}/progress.json")

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    progress = response.json()
    # What the page's script read before is all still there, as it was; the rest is in test_web_live.py.
    assert {key: progress[key] for key in PROGRESS_KEYS} == {
        "id": followed.pk,
        "status": "in_progress",
        "status_display": "In progress",
        "final": False,
        "recipients_count": 4,
        "calls_dispatched": 4,
        "calls_finished": 3,
        "percent": 75,
        "counts": {
            "pending": 0,
            "dispatched": 0,
            "initiated": 0,
            "in_progress": 1,
            "completed": 1,
            "failed": 1,
            "cancelled": 0,
            "voicemail": 1,
        },
        "error": "",
    }


PROGRESS_KEYS = (
    "id", "status", "status_display", "final", "recipients_count", "calls_dispatched", "calls_finished", "percent",
    "counts", "error",
)  # fmt: skip


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_progress_json_says_final_once_the_campaign_has_ended(staff, user, status):
    campaign = CampaignFactory(user=user, status=status)

    assert staff.get(f"/campaigns/{campaign.pk}/progress.json").json()["final"] is True


def test_the_recipients_table_filters_by_status_searches_by_number_and_paginates(staff, user):
    campaign = campaign_in_progress(
        user, recipients=[(f"+1212555{n:04d}", "failed" if n % 10 == 0 else "completed", {}) for n in range(60)]
    )
    url = f"/campaigns/{campaign.pk}"

    first, second = text_of(staff.get(url)), text_of(staff.get(f"{url}?page=2"))
    failed = text_of(staff.get(f"{url}?status=failed"))
    searched = text_of(staff.get(f"{url}?q=555-0042"))

    assert "Page 1 of 2" in first and "+12125550049" in first and "+12125550050" not in first
    assert "Page 2 of 2" in second and "+12125550050" in second and "+12125550059" in second
    assert failed.count("+1212555") == 6 and "+12125550011" not in failed
    assert "+12125550042" in searched and searched.count("+1212555") == 1
    assert "No recipient matches" in text_of(staff.get(f"{url}?q=999999"))


def test_cancelling_a_scheduled_campaign_cancels_it_with_a_message(staff, user):
    campaign = CampaignFactory(
        user=user,
        status=Campaign.Status.SCHEDULED,
        send_immediately=False,
        scheduled_at=timezone.now() + dt.timedelta(hours=2),
    )
    RecipientFactory(campaign=campaign)

    response = staff.post(f"/campaigns/{campaign.pk}/cancel", follow=True)

    assert response.redirect_chain == [(f"/campaigns/{campaign.pk}", 302)]
    assert messages_of(response) == [f"Campaign “{campaign.name}” cancelled. No further calls will be placed."]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    assert set(campaign.recipients.values_list("status", flat=True)) == {"cancelled"}
    assert "message--success" in response.content.decode()


def test_cancelling_an_ended_campaign_shows_why_it_cannot(staff, user):
    campaign = CampaignFactory(user=user, status=Campaign.Status.COMPLETED)

    response = staff.post(f"/campaigns/{campaign.pk}/cancel", follow=True)

    assert messages_of(response) == ["The campaign is completed; only an active campaign can be cancelled."]
    assert "message--error" in response.content.decode()


def test_cancel_and_retry_only_answer_posts(staff, followed):
    assert staff.get(f"/campaigns/{followed.pk}/cancel").status_code == 405
    assert staff.get(f"/campaigns/{followed.pk}/retry").status_code == 405


def test_retrying_with_nothing_to_retry_shows_the_conflict(staff, user):
    campaign = CampaignFactory(user=user, status=Campaign.Status.COMPLETED)
    RecipientFactory(campaign=campaign, status=Recipient.Status.COMPLETED)

    response = staff.post(f"/campaigns/{campaign.pk}/retry", follow=True)

    assert messages_of(response) == ["There are no failed or unanswered calls to retry once the batch has finished."]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED


def test_retrying_failed_calls_asks_elevenlabs_and_says_how_many(staff, followed, settings):
    settings.ELEVENLABS_BASE_URL = ELEVENLABS
    settings.ELEVENLABS_API_KEY = "k"
    followed.batches.update(status="completed")
    with responses.RequestsMock() as http:
        http.post(
            f"{ELEVENLABS}/v1/convai/batch-calling/btcal_q1/retry",
            json={
                "id": "btcal_q1",
                "name": "Q1",
                "agent_id": "a",
                "created_at_unix": 1,
                "scheduled_time_unix": 1,
                "total_calls_dispatched": 4,
                "total_calls_scheduled": 4,
                "total_calls_finished": 3,
                "last_updated_at_unix": 1,
                "status": "in_progress",
                "agent_name": "A",
                "retry_count": 1,
            },
        )
        response = staff.post(f"/campaigns/{followed.pk}/retry", follow=True)

    assert messages_of(response) == ["Retrying 2 calls that failed or reached voicemail."]


def test_the_export_streams_recipients_and_outcomes_with_formulas_neutralised(staff, user):
    campaign = CampaignFactory(user=user)
    RecipientFactory(
        campaign=campaign,
        phone_number="+12125550100",
        line=2,
        status="completed",
        call_successful="success",
        summary="@SUM(A1:A9) was mentioned",
        conversation_id="conv_1",
        status_updated_at=dt.datetime(2030, 1, 15, 15, 0, 5, tzinfo=dt.UTC),
        variables={"first_name": "Alice", "company": '=HYPERLINK("http://evil.test","click")', "balance": "-12"},
        overrides={"language": "en"},
    )
    RecipientFactory(
        campaign=campaign,
        phone_number="+14155550123",
        line=3,
        variables={"first_name": "+Bob", "company": "Acme", "balance": "7"},
    )

    response = staff.get(f"/campaigns/{campaign.pk}/export.csv")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="campaign-{campaign.pk}-recipients.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == [
        "phone_number",
        "line",
        "status",
        "call_successful",
        "failure_reason",
        "summary",
        "conversation_id",
        "status_updated_at",
        "attempts",
        "duration_secs",
        "balance",
        "company",
        "first_name",
        "language",
        "first_message",
        "system_prompt",
        "voice_id",
    ]
    assert rows[1] == [
        "+12125550100",
        "2",
        "completed",
        "success",
        "",
        "'@SUM(A1:A9) was mentioned",
        "conv_1",
        "2030-01-15T15:00:05Z",
        "1",
        "",
        "'-12",
        '\'=HYPERLINK("http://evil.test","click")',
        "Alice",
        "en",
        "",
        "",
        "",
    ]
    assert rows[2][:3] == ["+14155550123", "3", "pending"]
    assert rows[2][8:13] == ["0", "", "7", "Acme", "'+Bob"]


def test_the_export_neutralises_a_phone_cell_that_is_not_an_e164_number(staff, user):
    campaign = CampaignFactory(user=user)
    RecipientFactory(campaign=campaign, phone_number="+1-800-CALL")

    response = staff.get(f"/campaigns/{campaign.pk}/export.csv")

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[1][0] == "'+1-800-CALL"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", ""),
        ("get", "/progress.json"),
        ("get", "/export.csv"),
        ("post", "/cancel"),
        ("post", "/retry"),
    ],
)
def test_another_users_campaign_is_not_found_on_every_page(staff, other_user, method, path):
    theirs = CampaignFactory(user=other_user, status=Campaign.Status.SCHEDULED)

    response = getattr(staff, method)(f"/campaigns/{theirs.pk}{path}")

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == Campaign.Status.SCHEDULED


def test_a_missing_page_answers_a_readable_404(staff):
    response = staff.get("/campaigns/999999")

    assert response.status_code == 404
    assert "Page not found" in text_of(response)


# --- Agents and phone numbers -----------------------------------------------------------------


def test_the_agents_page_lists_only_the_users_agents_and_numbers(staff, agent, phone_number, other_user):
    AgentFactory(user=other_user, name="Mallory's agent")

    text = text_of(staff.get("/agents"))

    assert "Reminder agent agent_abc123" in text
    assert "+14155550100" in text
    assert "Mallory" not in text


@pytest.mark.django_db(transaction=True)
def test_syncing_imports_the_workspace_from_the_sandbox(sandbox_live, client, user):
    client.force_login(user)

    response = client.post("/agents/sync", follow=True)

    assert response.redirect_chain == [("/agents", 302)]
    assert messages_of(response) == ["Synced 3 agents and 4 phone numbers from ElevenLabs."]
    assert dict(Agent.objects.filter(user=user).values_list("elevenlabs_agent_id", "override_permissions")) == {
        "agent_demo_reminders": {"language": True, "first_message": True, "system_prompt": True, "voice_id": True},
        "agent_demo_survey": {"language": True, "first_message": True, "system_prompt": False, "voice_id": False},
        "agent_demo_collections": {
            "language": False,
            "first_message": False,
            "system_prompt": False,
            "voice_id": False,
        },
    }
    numbers = PhoneNumber.objects.filter(user=user)
    assert dict(numbers.values_list("elevenlabs_phone_number_id", "supports_outbound")) == {
        "phnum_demo_main": True,
        "phnum_demo_eu": True,
        "phnum_demo_sip": True,
        "phnum_demo_inbound": False,
    }
    text = text_of(response)
    assert "agent_demo_reminders" in text
    assert "Payment follow-up (demo) agent_demo_collections None" in text
    assert "Customer survey (demo) agent_demo_survey language first_message" in text
    assert "+14155550199 Demo inbound-only line Twilio No: inbound only, not offered for campaigns" in text


def test_a_failed_sync_shows_elevenlabs_error(staff, settings):
    settings.ELEVENLABS_BASE_URL = ELEVENLABS
    settings.ELEVENLABS_API_KEY = "wrong"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as http:
        http.get(
            f"{ELEVENLABS}/v1/convai/agents",
            status=401,
            json={"detail": {"status": "invalid_api_key", "message": "Invalid API key"}},
        )
        response = staff.post("/agents/sync", follow=True)

    [message] = messages_of(response)
    assert message.startswith("Could not read the ElevenLabs workspace:")
    assert "Invalid API key" in message
    assert "message--error" in response.content.decode()


# --- API keys -----------------------------------------------------------------------------------


def test_a_new_api_key_is_shown_once(staff, user):
    response = staff.post("/api-keys", {"name": "CRM sync"})

    assert response.status_code == 200
    raw_key = re.search(r'id="new-key-value"[^>]*value="(vk_[^"]+)"', response.content.decode()).group(1)
    key = ApiKey.objects.get(user=user)
    assert key.name == "CRM sync" and raw_key.startswith(key.prefix)
    assert key.key_hash == ApiKey.hash_key(raw_key)
    assert "It is shown only once" in text_of(response)
    assert "no-store" in response["Cache-Control"]

    again = staff.get("/api-keys")

    assert raw_key not in again.content.decode()
    assert f"CRM sync {key.prefix}…" in text_of(again)
    assert "Never Active" in text_of(again)


def test_revoking_a_key_stops_it_from_working(staff, user, raw_api_key):
    key = ApiKey.objects.get(user=user)

    response = staff.post(f"/api-keys/{key.pk}/revoke", follow=True)

    assert messages_of(response) == [f"Key {key.prefix}… revoked: requests using it are now refused."]
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert "Revoked" in text_of(response)
    assert staff.get("/api/v1/agents", HTTP_X_API_KEY=raw_api_key).status_code == 401


def test_another_users_key_cannot_be_revoked(staff, other_user):
    theirs = ApiKey.objects.create(user=other_user, prefix="vk_theirs", key_hash="0" * 64)

    assert staff.post(f"/api-keys/{theirs.pk}/revoke").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_the_keys_page_lists_only_the_users_keys(staff, user, other_user):
    ApiKey.objects.create(user=other_user, name="Mallory's key", prefix="vk_mallory", key_hash="1" * 64)

    text = text_of(staff.get("/api-keys"))

    assert "Mallory" not in text and "vk_mallory" not in text
    assert "No keys yet" in text


# --- Queries do not grow with the data ----------------------------------------------------------


def queries_to_render(client, url) -> int:
    client.get(url)  # warm up: sessions, content types and the like are loaded once
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200
    return len(context.captured_queries)


def campaign_with_recipients(user, count: int) -> Campaign:
    campaign = CampaignFactory(user=user, status=Campaign.Status.IN_PROGRESS, recipients_count=count)
    statuses = ["pending", "completed", "failed", "voicemail", "in_progress"]
    Recipient.objects.bulk_create(
        Recipient(campaign=campaign, phone_number=f"+1212555{n:04d}", line=n + 2, status=statuses[n % len(statuses)])
        for n in range(count)
    )
    CampaignBatch.objects.create(
        campaign=campaign,
        part=1,
        offset=0,
        size=count,
        token=f"tok-{campaign.pk}",
        elevenlabs_batch_call_id=f"btcal_{campaign.pk}",
        status="in_progress",
    )
    return campaign


def test_the_campaign_page_takes_as_many_queries_for_300_recipients_as_for_5(staff, user):
    small, large = campaign_with_recipients(user, 5), campaign_with_recipients(user, 300)

    assert queries_to_render(staff, f"/campaigns/{small.pk}") == queries_to_render(staff, f"/campaigns/{large.pk}")
    assert queries_to_render(staff, f"/campaigns/{small.pk}?status=failed&page=1") == queries_to_render(
        staff, f"/campaigns/{large.pk}?status=failed&page=2"
    )


def test_the_campaign_page_counts_no_recipients_unless_searching(staff, user):
    campaign = campaign_with_recipients(user, 120)

    staff.get(f"/campaigns/{campaign.pk}")
    with CaptureQueriesContext(connection) as context:
        staff.get(f"/campaigns/{campaign.pk}?page=3")

    counts = [query["sql"] for query in context.captured_queries if "COUNT(" in query["sql"].upper()]
    assert len(counts) == 1 and "GROUP BY" in counts[0].upper()  # the outcome counts, nothing else


def test_the_list_takes_as_many_queries_for_30_campaigns_as_for_1(client, user, other_user):
    CampaignFactory(user=user)
    for _ in range(30):
        CampaignFactory(user=other_user)

    client.force_login(user)
    one = queries_to_render(client, "/")
    client.force_login(other_user)
    thirty = queries_to_render(client, "/")

    assert one == thirty
