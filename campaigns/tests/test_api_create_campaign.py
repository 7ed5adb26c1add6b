"""POST /api/v1/campaigns from the outside: HTTP in, JSON and database out."""

import datetime as dt
import io
import json
import re

import openpyxl
import pytest
from django.utils import timezone
from elevenlabs.types import BatchCallResponse

from campaigns import dispatch
from campaigns.elevenlabs import ElevenLabsClient
from campaigns.models import Campaign, Recipient

from .conftest import BASE, csv_file
from .factories import AgentFactory, PhoneNumberFactory

URL = "/api/v1/campaigns"
pytestmark = pytest.mark.django_db


def assert_nothing_stored():
    assert Campaign.objects.count() == 0
    assert Recipient.objects.count() == 0


def assert_error(response, code, *fragments):
    assert response.status_code == code, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"]["code"] == code
    assert isinstance(body["status"]["message"], str) and body["status"]["message"]
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["errors"], list) and body["errors"]
    assert "details" in body
    text = " ".join([body["error"], *body["errors"]])
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    return body


def test_it_creates_an_immediate_campaign_with_the_documented_response(api, campaign_form, user):
    response = api.post(URL, campaign_form(), format="multipart")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == {"code": 201, "message": "Campaign created successfully"}
    data = body["data"]
    campaign = Campaign.objects.get()
    assert data["id"] == campaign.pk
    assert data["name"] == "Q1 Product Launch Campaign"
    assert data["status"] == "pending"
    assert data["elevenlabs_batch_call_id"] is None
    assert data["recipients_count"] == 3
    assert data["scheduled_at"] is None
    assert data["send_immediately"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["created_at"])
    assert campaign.user == user
    assert sorted(campaign.recipients.values_list("phone_number", flat=True)) == [
        "+12125550100",
        "+14155550123",
        "+442079460958",
    ]


def test_it_stores_variables_overrides_and_source_lines(api, campaign_form):
    text = (
        "Phone Number; First Name ;language;first_message;voice_id\n"
        "+12125550100;Ana;es;Hola Ana;\n"
        "\n"
        "+14155550123;Ben;;;voice_42\n"
    )
    response = api.post(URL, campaign_form(recipients_file=csv_file(text)), format="multipart")

    assert response.status_code == 201, response.content
    ana, ben = Recipient.objects.order_by("line")
    assert (ana.phone_number, ana.line, ana.variables) == ("+12125550100", 2, {"First_Name": "Ana"})
    assert ana.overrides == {"language": "es", "first_message": "Hola Ana"}
    assert (ben.line, ben.variables, ben.overrides) == (4, {"First_Name": "Ben"}, {"voice_id": "voice_42"})


def test_a_camel_case_column_reaches_elevenlabs_under_its_own_name(api, campaign_form, http):
    # Given a file whose variable columns differ only in case
    text = "phone_number,customerName,customername\n+12125550100,Ana Lopez,ana\n"
    response = api.post(URL, campaign_form(recipients_file=csv_file(text)), format="multipart")
    assert response.status_code == 201, response.content
    accepted = {
        "id": "btcal_1",
        "name": "Q1 Product Launch Campaign",
        "agent_id": "agent_abc123",
        "created_at_unix": 1785000000,
        "scheduled_time_unix": 1785000000,
        "total_calls_dispatched": 0,
        "total_calls_scheduled": 1,
        "total_calls_finished": 0,
        "last_updated_at_unix": 1785000000,
        "status": "pending",
        "retry_count": 0,
        "telephony_call_config": {},
        "agent_name": "Reminder agent",
    }
    BatchCallResponse.model_validate(accepted)
    http.post(f"{BASE}/v1/convai/batch-calling/submit", json=accepted)

    # When it is sent
    client = ElevenLabsClient(base_url=BASE, api_key="k", sleep=lambda seconds: None)
    dispatch.campaign_dispatch(campaign_id=response.json()["data"]["id"], client=client)

    # Then ElevenLabs receives each variable under the name the agent's prompt uses
    [submit] = [call.request for call in http.calls if call.request.url.endswith("/submit")]
    [recipient] = json.loads(submit.body)["recipients"]
    assert recipient["conversation_initiation_client_data"]["dynamic_variables"] == {
        "customerName": "Ana Lopez",
        "customername": "ana",
    }


@pytest.mark.parametrize("heading", ["system__caller_id", "System__Time"])
def test_it_refuses_a_column_named_like_an_elevenlabs_system_variable(api, campaign_form, heading):
    text = f"phone_number,{heading}\n+12125550100,x\n"
    response = api.post(URL, campaign_form(recipients_file=csv_file(text)), format="multipart")

    assert_error(
        response,
        422,
        f"The column '{heading}' cannot be used: ElevenLabs reserves names starting with system__ for its "
        "system variables.",
    )
    assert_nothing_stored()


NO_OVERRIDES = {"language": False, "first_message": False, "system_prompt": False, "voice_id": False}


def test_it_refuses_an_override_column_the_agent_does_not_allow_and_stores_nothing(api, campaign_form, agent):
    agent.name = "Payment follow-up (demo)"
    agent.override_permissions = {**NO_OVERRIDES, "language": True}
    agent.save()
    text = "phone_number,language,first_message\n+12125550100,es,Hola\n"

    response = api.post(URL, campaign_form(recipients_file=csv_file(text)), format="multipart")

    body = assert_error(response, 422)
    assert body["error"] == (
        "The column first_message would override the agent's first message, which the agent “Payment follow-up "
        "(demo)” does not allow. In ElevenLabs, open the agent's Security tab, turn on the First message "
        "override, then sync agents here — or remove the column."
    )
    assert body["details"] == {"field": "recipients_file", "refused_columns": ["first_message"]}
    assert_nothing_stored()


def test_it_names_every_override_column_the_agent_does_not_allow(api, campaign_form, agent):
    agent.override_permissions = NO_OVERRIDES
    agent.save()
    text = "phone_number,System Prompt,Voice_ID\n+12125550100,Be brief,v1\n"

    response = api.post(URL, campaign_form(recipients_file=csv_file(text)), format="multipart")

    body = assert_error(response, 422, "turn on the System prompt override", "turn on the Voice override")
    assert body["errors"][0].startswith("The column System Prompt would override the agent's system prompt")
    assert body["errors"][1].startswith("The column Voice_ID would override the agent's voice")
    assert_nothing_stored()


@pytest.mark.parametrize(
    "permissions",
    [None, {"language": True, "first_message": True, "system_prompt": True, "voice_id": True}],
    ids=["never-read", "all-allowed"],
)
def test_it_accepts_override_columns_the_agent_allows_or_whose_settings_are_unknown(
    api, campaign_form, agent, permissions
):
    agent.override_permissions = permissions
    agent.save()
    text = "phone_number,language,first_message,system_prompt,voice_id\n+12125550100,es,Hola,Be brief,v1\n"

    response = api.post(URL, campaign_form(recipients_file=csv_file(text)), format="multipart")

    assert response.status_code == 201, response.content
    assert Recipient.objects.get().overrides == {
        "language": "es",
        "first_message": "Hola",
        "system_prompt": "Be brief",
        "voice_id": "v1",
    }


def test_it_refuses_an_inbound_only_number_naming_it(api, campaign_form, user):
    inbound = PhoneNumberFactory(
        user=user, phone_number="+14155550199", label="Demo inbound-only line", supports_outbound=False
    )

    response = api.post(URL, campaign_form(phone_number_id=str(inbound.pk)), format="multipart")

    body = assert_error(response, 422)
    assert body["error"] == (
        "+1 415-555-0199 (Demo inbound-only line) cannot place calls: ElevenLabs reports it as inbound-only. "
        "Choose another number."
    )
    assert body["details"] == {"field": "phone_number_id"}
    assert_nothing_stored()


def test_it_accepts_a_file_with_no_header_one_number_per_line(api, campaign_form):
    response = api.post(
        URL, campaign_form(recipients_file=csv_file("+12125550100\r\n+14155550123\r\n")), format="multipart"
    )
    assert response.status_code == 201, response.content
    assert response.json()["data"]["recipients_count"] == 2


def test_it_accepts_an_xlsx_spreadsheet(api, campaign_form):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["phone_number", "first_name"])
    sheet.append(["+12125550100", "Ana"])
    sheet.append([14155550123, "Ben"])  # Excel turned it into a number and dropped the +
    upload = io.BytesIO()
    workbook.save(upload)
    upload.seek(0)
    upload.name = "people.xlsx"

    response = api.post(URL, campaign_form(recipients_file=upload, default_country="US"), format="multipart")

    assert response.status_code == 201, response.content
    assert set(Recipient.objects.values_list("phone_number", flat=True)) == {"+12125550100", "+14155550123"}


def test_it_stores_duplicates_once_and_says_how_many_were_merged(api, campaign_form):
    text = "phone_number\n+12125550100\n+1 (212) 555-0100\n+14155550123\n+12125550100\n"
    response = api.post(URL, campaign_form(recipients_file=csv_file(text)), format="multipart")

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["recipients_count"] == 2
    assert data["duplicates_merged"] == 2
    assert Recipient.objects.count() == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("True", True), ("1", True), ("false", False), ("False", False), ("0", False)],
)
def test_it_reads_send_immediately_the_way_real_clients_send_booleans(api, campaign_form, value, expected):
    schedule = {} if expected else {"schedule_date": "2099-02-01", "schedule_time": "10:00:00"}
    response = api.post(URL, campaign_form(send_immediately=value, **schedule), format="multipart")

    assert response.status_code == 201, response.content
    assert response.json()["data"]["send_immediately"] is expected


def test_it_requires_send_immediately(api, campaign_form):
    response = api.post(URL, campaign_form(send_immediately=None), format="multipart")
    assert_error(response, 422, "send_immediately")
    assert_nothing_stored()


@pytest.mark.parametrize("missing", ["name", "phone_number_id", "agent_id", "recipients_file"])
def test_it_names_each_missing_required_field(api, campaign_form, missing):
    response = api.post(URL, campaign_form(**{missing: None}), format="multipart")
    body = assert_error(response, 422, missing)
    assert missing in body["details"]
    assert_nothing_stored()


def test_it_schedules_a_campaign_in_utc(api, campaign_form):
    response = api.post(
        URL,
        campaign_form(send_immediately="false", schedule_date="2099-02-01", schedule_time="10:00:00"),
        format="multipart",
    )

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["status"] == "scheduled"
    assert data["scheduled_at"] == "2099-02-01T10:00:00Z"
    assert data["send_immediately"] is False
    assert Campaign.objects.get().scheduled_at == dt.datetime(2099, 2, 1, 10, tzinfo=dt.UTC)


def test_it_reads_the_schedule_in_the_given_time_zone_and_accepts_hh_mm(api, campaign_form):
    response = api.post(
        URL,
        campaign_form(
            send_immediately="false", schedule_date="2099-07-01", schedule_time="09:30", timezone="Europe/Berlin"
        ),
        format="multipart",
    )

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["scheduled_at"] == "2099-07-01T07:30:00Z"  # Berlin is UTC+2 in summer
    assert data["timezone"] == "Europe/Berlin"


def test_it_uses_the_users_own_time_zone_when_the_request_names_none(api, campaign_form, user):
    from campaigns.models import Profile

    Profile.objects.create(user=user, timezone="America/New_York")
    response = api.post(
        URL,
        campaign_form(send_immediately="false", schedule_date="2099-01-15", schedule_time="09:00:00"),
        format="multipart",
    )

    assert response.status_code == 201, response.content
    assert response.json()["data"]["scheduled_at"] == "2099-01-15T14:00:00Z"


def test_it_rejects_a_schedule_in_the_past(api, campaign_form):
    yesterday = (timezone.now() - dt.timedelta(days=1)).date().isoformat()
    response = api.post(
        URL,
        campaign_form(send_immediately="false", schedule_date=yesterday, schedule_time="10:00:00"),
        format="multipart",
    )
    assert_error(response, 422, "in the past")
    assert_nothing_stored()


def test_it_requires_a_schedule_when_not_sending_immediately(api, campaign_form):
    response = api.post(URL, campaign_form(send_immediately="false", schedule_date="2099-02-01"), format="multipart")
    assert_error(response, 422, "schedule_time is required when send_immediately is false")
    assert_nothing_stored()


def test_it_refuses_a_schedule_on_an_immediate_campaign(api, campaign_form):
    response = api.post(URL, campaign_form(schedule_date="2099-02-01", schedule_time="10:00"), format="multipart")
    assert_error(response, 422, "only used when send_immediately is false")
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("date", "time", "fragment"),
    [("2099-13-01", "10:00", "schedule_date"), ("2099-02-01", "25:00", "schedule_time"), ("01/02/2099", "10:00", "")],
)
def test_it_rejects_malformed_schedule_fields(api, campaign_form, date, time, fragment):
    response = api.post(
        URL, campaign_form(send_immediately="false", schedule_date=date, schedule_time=time), format="multipart"
    )
    assert_error(response, 422, fragment)
    assert_nothing_stored()


def test_it_refuses_a_time_that_daylight_saving_skips(api, campaign_form):
    response = api.post(
        URL,
        campaign_form(
            send_immediately="false", schedule_date="2099-03-29", schedule_time="02:30", timezone="Europe/Berlin"
        ),
        format="multipart",
    )
    assert_error(response, 422, "does not exist in Europe/Berlin")
    assert_nothing_stored()


def test_it_refuses_a_time_that_happens_twice(api, campaign_form):
    response = api.post(
        URL,
        campaign_form(
            send_immediately="false", schedule_date="2099-10-25", schedule_time="02:30", timezone="Europe/Berlin"
        ),
        format="multipart",
    )
    assert_error(response, 422, "happens twice in Europe/Berlin")
    assert_nothing_stored()


def test_it_refuses_an_unknown_time_zone(api, campaign_form):
    response = api.post(URL, campaign_form(timezone="Mars/Olympus_Mons"), format="multipart")
    assert_error(response, 422, "Unknown time zone 'Mars/Olympus_Mons'")
    assert_nothing_stored()


def test_it_answers_404_naming_an_agent_that_does_not_exist(api, campaign_form):
    response = api.post(URL, campaign_form(agent_id="agent_nope"), format="multipart")
    assert_error(response, 404, "Agent not found", "agent_nope")
    assert_nothing_stored()


@pytest.mark.parametrize("wrong_id", ["99999999999999999999", str(2**63), "0", "-3", "²", "1_0", "abc"])
def test_an_agent_id_no_row_can_have_is_a_404_naming_it(api, campaign_form, wrong_id):
    response = api.post(URL, campaign_form(agent_id=wrong_id), format="multipart")
    assert_error(response, 404, "Agent not found", wrong_id)
    assert_nothing_stored()


@pytest.mark.parametrize("wrong_id", ["99999999999999999999", str(2**63)])
def test_a_phone_number_id_past_any_database_integer_is_a_404_naming_it(api, campaign_form, wrong_id):
    response = api.post(URL, campaign_form(phone_number_id=wrong_id), format="multipart")
    assert_error(response, 404, "Phone number not found", wrong_id)
    assert_nothing_stored()


def test_an_agent_is_found_by_its_local_id_too_and_its_elevenlabs_id_wins(api, campaign_form, user, agent):
    assert api.post(URL, campaign_form(agent_id=str(agent.pk)), format="multipart").status_code == 201
    # An agent whose ElevenLabs id is the other's local id: named that way, it is the one used.
    digits = AgentFactory(user=user, elevenlabs_agent_id=str(agent.pk))

    response = api.post(URL, campaign_form(agent_id=str(agent.pk)), format="multipart")

    assert response.status_code == 201
    assert Campaign.objects.get(pk=response.json()["data"]["id"]).agent == digits


def test_it_answers_404_for_another_users_agent_and_phone_number(api, campaign_form, other_user):
    theirs = AgentFactory(user=other_user)
    their_number = PhoneNumberFactory(user=other_user)

    response = api.post(URL, campaign_form(agent_id=theirs.elevenlabs_agent_id), format="multipart")
    assert_error(response, 404, "Agent not found")

    response = api.post(URL, campaign_form(phone_number_id=str(their_number.pk)), format="multipart")
    assert_error(response, 404, "Phone number not found", str(their_number.pk))
    assert_nothing_stored()


def test_it_accepts_the_numeric_local_id_of_an_agent(api, campaign_form, agent):
    response = api.post(URL, campaign_form(agent_id=str(agent.pk)), format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["data"]["agent_id"] == agent.elevenlabs_agent_id


def test_it_names_every_invalid_row_and_stores_nothing(api, campaign_form):
    text = "phone_number,first_name\n+12125550100,Ana\n4155550123,Ben\n1.41555E+10,Chloe\n+1212,Dan\n"
    response = api.post(URL, campaign_form(recipients_file=csv_file(text)), format="multipart")

    body = assert_error(response, 422, "3 invalid rows", "skip_invalid_rows")
    assert body["errors"][0].startswith("Line 3: '4155550123'")
    assert "country code" in body["errors"][0]
    assert body["errors"][1].startswith("Line 4: '1.41555E+10'")
    assert "scientific notation" in body["errors"][1]
    assert body["errors"][2].startswith("Line 5: '+1212'")
    assert body["details"]["invalid_rows_total"] == 3
    assert [row["line"] for row in body["details"]["invalid_rows"]] == [3, 4, 5]
    assert_nothing_stored()


def test_it_lists_the_first_hundred_problems_and_the_total(api, campaign_form):
    text = "phone_number\n" + "".join(f"555{i:04d}\n" for i in range(150))
    response = api.post(URL, campaign_form(recipients_file=csv_file(text)), format="multipart")

    body = assert_error(response, 422, "150 invalid rows")
    assert len(body["details"]["invalid_rows"]) == 100
    assert body["errors"][-1] == "… and 50 more invalid rows."
    assert_nothing_stored()


def test_it_uses_default_country_for_numbers_without_a_country_code(api, campaign_form):
    text = "phone_number\n(415) 555-0123\n020 7946 0958\n"
    response = api.post(URL, campaign_form(recipients_file=csv_file(text), default_country="GB"), format="multipart")
    assert_error(response, 422, "Line 2")  # a US number is not valid in GB: never guessed

    response = api.post(
        URL,
        campaign_form(recipients_file=csv_file("phone_number\n020 7946 0958\n"), default_country="gb"),
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert Recipient.objects.get().phone_number == "+442079460958"


def test_it_refuses_an_unknown_default_country(api, campaign_form):
    response = api.post(URL, campaign_form(default_country="XX"), format="multipart")
    assert_error(response, 422, "default_country")
    assert_nothing_stored()


def test_it_skips_invalid_rows_when_asked_and_reports_them(api, campaign_form):
    text = "phone_number\n+12125550100\nnot a number\n+14155550123\n"
    response = api.post(
        URL, campaign_form(recipients_file=csv_file(text), skip_invalid_rows="true"), format="multipart"
    )

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["recipients_count"] == 2
    assert data["invalid_rows_skipped"] == 1
    assert data["invalid_rows"] == [{"line": 3, "value": "not a number", "reason": data["invalid_rows"][0]["reason"]}]
    assert Recipient.objects.count() == 2


def test_it_refuses_a_file_where_every_row_is_invalid_even_when_skipping(api, campaign_form):
    response = api.post(
        URL,
        campaign_form(recipients_file=csv_file("phone_number\nnope\n"), skip_invalid_rows="true"),
        format="multipart",
    )
    assert_error(response, 422, "no valid phone numbers")
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "no recipients"),
        (b"phone_number\n\n\n", "no recipients"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, ".xlsx"),
        ("phone_number\n+12125550100\nJosé\xe9\n".encode("latin-1"), "UTF-8"),
        (b"name,email\nAna,ana@example.com\n", "phone_number"),
    ],
)
def test_it_refuses_files_it_cannot_use_with_a_clear_message(api, campaign_form, content, fragment):
    upload = io.BytesIO(content)
    upload.name = "recipients.csv"
    response = api.post(URL, campaign_form(recipients_file=upload), format="multipart")
    assert_error(response, 422, fragment)
    assert_nothing_stored()


def test_it_refuses_a_file_above_the_size_limit(api, campaign_form, settings):
    settings.RECIPIENTS_MAX_FILE_BYTES = 1_000
    text = "phone_number\n" + "+12125550100\n" * 200
    response = api.post(URL, campaign_form(recipients_file=csv_file(text)), format="multipart")
    assert_error(response, 413, "limit is")
    assert_nothing_stored()


def test_it_refuses_more_recipients_than_a_campaign_may_hold(api, campaign_form, settings):
    settings.RECIPIENTS_MAX_PER_CAMPAIGN = 2
    response = api.post(URL, campaign_form(), format="multipart")
    assert_error(response, 422, "more than 2 recipients")
    assert_nothing_stored()


def test_it_accepts_a_trailing_slash(api, campaign_form):
    response = api.post(URL + "/", campaign_form(), format="multipart")
    assert response.status_code == 201, response.content


def test_it_answers_malformed_multipart_in_the_envelope(api):
    response = api.generic("POST", URL, b"name=x", content_type="multipart/form-data")  # no boundary
    assert_error(response, 400, "boundary")
    assert_nothing_stored()


def test_it_answers_an_unsupported_body_type_in_the_envelope(api):
    response = api.generic("POST", URL, b"<campaign/>", content_type="application/xml")
    assert_error(response, 415, "application/xml")
