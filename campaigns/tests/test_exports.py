"""Results people act on: each call's data collection kept from the post-call webhook, and a
campaign's recipients exported as CSV and .xlsx with attempts, duration, summary and the
collected data, in a constant number of queries whatever the campaign's size."""

import csv
import datetime as dt
import importlib
import io
import zipfile
from urllib.parse import quote

import openpyxl
import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns import inbox, selectors
from campaigns.models import Call, Campaign, Recipient, WebhookEvent

from .factories import CallFactory, CampaignFactory, RecipientFactory, UserFactory
from .test_webhooks import post_signed, submitted_campaign, transcription_event, webhook_secret  # noqa: F401

pytestmark = pytest.mark.django_db

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SUMMARY = 'Confirmed Tuesday, 10am; said "see you then".\nAsked about parking, too.'
OUTCOME_HEADER = [
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
]
OVERRIDE_HEADER = ["language", "first_message", "system_prompt", "voice_id"]


def collected(**values) -> dict:
    """A call's data collection as the inbox keeps it."""
    return {key: {"value": value, "rationale": f"Said on the call ({key})."} for key, value in values.items()}


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def xlsx_sheet(response):
    assert response.status_code == 200
    workbook = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)
    assert workbook.sheetnames == ["Recipients"]
    return workbook["Recipients"]


def xlsx_values(response) -> list[list]:
    return [["" if cell is None else cell for cell in row] for row in xlsx_sheet(response).iter_rows(values_only=True)]


# --- The post-call webhook's data collection -----------------------------------------------


def test_the_post_call_webhook_keeps_each_data_collection_item_on_its_call(client):
    campaign = submitted_campaign("btcal_1", ["+12125550100"])
    event = transcription_event()
    # As ElevenLabs documents it: {id: {data_collection_id, value, rationale}}
    event["data"]["analysis"]["data_collection_results"] = {
        "appointment_confirmed": {
            "data_collection_id": "appointment_confirmed",
            "value": True,
            "rationale": "The customer said they would come on Tuesday.",
        },
        "party_size": {"data_collection_id": "party_size", "value": 2, "rationale": "Bringing their partner."},
        "callback_time": {"data_collection_id": "callback_time", "value": None, "rationale": "Not discussed."},
        "preferred_slot": {
            "data_collection_id": "preferred_slot",
            "json_schema": {"type": "string", "description": "The slot they asked for"},
            "value": "Tuesday 10:00",
            "rationale": "Asked for the morning.",
        },
    }

    assert post_signed(client, event).json() == {"received": True, "recorded": True}

    call = Call.objects.get(campaign=campaign, conversation_id="conv_100")
    assert call.data_collection == {
        "appointment_confirmed": {"value": True, "rationale": "The customer said they would come on Tuesday."},
        "party_size": {"value": 2, "rationale": "Bringing their partner."},
        "callback_time": {"value": None, "rationale": "Not discussed."},
        "preferred_slot": {"value": "Tuesday 10:00", "rationale": "Asked for the morning."},
    }


def test_a_later_event_without_data_collection_keeps_what_the_call_has(client):
    campaign = submitted_campaign("btcal_1", ["+12125550100"])
    first = transcription_event(timestamp=1_800_000_000)
    first["data"]["analysis"]["data_collection_results"] = {"confirmed": {"value": "yes", "rationale": "Said yes."}}
    post_signed(client, first)

    post_signed(client, transcription_event(timestamp=1_800_000_001, summary="Again."))

    kept = Call.objects.get(campaign=campaign).data_collection
    assert kept == {"confirmed": {"value": "yes", "rationale": "Said yes."}}


def test_data_collection_of_an_odd_shape_is_kept_within_bounds():
    kept = inbox.data_collection_results(
        {
            "nested": {"value": {"street": "1 Main St", "floors": [1, 2]}, "rationale": 7},
            "huge": {"value": 2**70, "rationale": "r" * 5_000},
            "long": {"value": "x" * 20_000},
            "not_an_object": "yes",
            "": {"value": "no id"},
            **{f"item_{n:03d}": {"value": n} for n in range(200)},
        }
    )

    assert kept["nested"] == {"value": '{"street": "1 Main St", "floors": [1, 2]}', "rationale": "7"}
    assert kept["huge"] == {"value": str(2**70), "rationale": "r" * inbox.MAX_RATIONALE_CHARS}
    assert kept["long"]["value"] == "x" * inbox.MAX_DATA_VALUE_CHARS
    assert kept["not_an_object"] == {"value": None, "rationale": ""}
    assert "" not in kept
    assert len(kept) <= inbox.MAX_DATA_ITEMS
    assert inbox.data_collection_results(["not", "a", "mapping"]) == {}


def test_the_migration_reads_the_data_collection_of_calls_recorded_before_it_back_from_the_inbox():
    call = CallFactory(conversation_id="conv_old")
    untouched = CallFactory(conversation_id="conv_other", data_collection=collected(kept="as is"))
    for n, value in enumerate(["first", "latest"]):
        WebhookEvent.objects.create(
            digest=f"{n}" * 64,
            event_type="post_call_transcription",
            status=WebhookEvent.Status.APPLIED,
            call=call,
            payload={"data": {"analysis": {"data_collection_results": {"answer": {"value": value, "rationale": ""}}}}},
        )
    WebhookEvent.objects.create(digest="9" * 64, event_type="post_call_transcription", call=untouched, payload={})

    migration = importlib.import_module("campaigns.migrations.0011_call_data_collection")
    migration.data_collection_from_recorded_events(apps, None)

    call.refresh_from_db()
    untouched.refresh_from_db()
    assert call.data_collection == {"answer": {"value": "latest", "rationale": ""}}
    assert untouched.data_collection == collected(kept="as is")


# --- CSV -----------------------------------------------------------------------------------


@pytest.fixture
def called(user):
    """Three recipients: one answered on the second attempt, one on the first with other data
    items, one never called."""
    campaign = CampaignFactory(user=user, name="Spring reminders", status=Campaign.Status.COMPLETED)
    retried = RecipientFactory(
        campaign=campaign,
        phone_number="+12125550100",
        line=2,
        status="completed",
        call_successful="success",
        conversation_id="conv_a2",
        attempt=2,
        summary=SUMMARY,
        status_updated_at=dt.datetime(2030, 1, 15, 15, 0, 5, tzinfo=dt.UTC),
        variables={"first_name": "Ana", "account": "00042"},
    )
    CallFactory(recipient=retried, attempt=1, conversation_id="conv_a1", status="failed", call_result="no_answer")
    CallFactory(
        recipient=retried,
        attempt=2,
        conversation_id="conv_a2",
        status="completed",
        call_result="answered",
        duration_secs=42,
        summary=SUMMARY,
        data_collection=collected(appointment_confirmed=True, party_size=2),
    )
    once = RecipientFactory(
        campaign=campaign,
        phone_number="+442079460958",
        line=3,
        status="voicemail",
        conversation_id="conv_b1",
        variables={"first_name": "Oliver", "account": "00043"},
    )
    CallFactory(
        recipient=once,
        attempt=1,
        conversation_id="conv_b1",
        status="voicemail",
        call_result="voicemail",
        duration_secs=17,
        summary="Left a message.",
        data_collection=collected(callback_time="after 5pm", appointment_confirmed=None),
    )
    RecipientFactory(
        campaign=campaign, phone_number="+14155550123", line=4, variables={"first_name": "Bob", "account": "7"}
    )
    return campaign


def test_the_csv_has_attempts_duration_summary_and_a_column_per_data_collection_item(staff, called):
    rows = csv_rows(staff.get(f"/campaigns/{called.pk}/export.csv"))

    assert rows[0] == [
        *OUTCOME_HEADER,
        "data.appointment_confirmed",
        "data.callback_time",
        "data.party_size",
        "account",
        "first_name",
        *OVERRIDE_HEADER,
    ]
    assert rows[1] == [
        "+12125550100",
        "2",
        "completed",
        "success",
        "",
        SUMMARY,
        "conv_a2",
        "2030-01-15T15:00:05Z",
        "2",
        "42",
        "true",
        "",
        "2",
        "00042",
        "Ana",
        "",
        "",
        "",
        "",
    ]
    assert rows[2][:13] == [
        "+442079460958",
        "3",
        "voicemail",
        "",
        "",
        "Left a message.",
        "conv_b1",
        "",
        "1",
        "17",
        "",
        "after 5pm",
        "",
    ]
    assert rows[3][:13] == ["+14155550123", "4", "pending", "", "", "", "", "", "0", "", "", "", ""]
    assert len(rows) == 4


def test_the_csv_quotes_a_summary_with_commas_quotes_and_newlines(staff, called):
    body = b"".join(staff.get(f"/campaigns/{called.pk}/export.csv").streaming_content).decode("utf-8-sig")

    assert '"Confirmed Tuesday, 10am; said ""see you then"".\nAsked about parking, too."' in body


def test_duration_and_data_are_the_last_answered_calls_even_when_a_later_call_was_not_answered(staff, user):
    campaign = CampaignFactory(user=user)
    recipient = RecipientFactory(campaign=campaign, status="failed", attempt=3, summary="")
    CallFactory(recipient=recipient, attempt=1, call_result="answered", duration_secs=30, summary="Said call later.")
    CallFactory(
        recipient=recipient,
        attempt=2,
        call_result="answered",
        duration_secs=55,
        summary="Confirmed.",
        data_collection=collected(confirmed="yes"),
    )
    CallFactory(recipient=recipient, attempt=3, call_result="busy", status="failed", duration_secs=0)

    header, row = csv_rows(staff.get(f"/campaigns/{campaign.pk}/export.csv"))
    exported = dict(zip(header, row, strict=True))

    assert (exported["attempts"], exported["duration_secs"], exported["summary"]) == ("3", "55", "Confirmed.")
    assert exported["data.confirmed"] == "yes"


def test_attempts_count_a_retry_only_once_it_is_placed(staff, user):
    campaign = CampaignFactory(user=user)
    # A retry queued after a first call that ElevenLabs reported without a conversation
    RecipientFactory(campaign=campaign, phone_number="+12125550100", status="pending", attempt=2)
    RecipientFactory(campaign=campaign, phone_number="+12125550101", status="failed", attempt=1)
    RecipientFactory(campaign=campaign, phone_number="+12125550102", status="dispatched", attempt=1)

    header, *rows = csv_rows(staff.get(f"/campaigns/{campaign.pk}/export.csv"))
    attempts = {row[0]: row[header.index("attempts")] for row in rows}

    assert attempts == {"+12125550100": "1", "+12125550101": "1", "+12125550102": "0"}


def test_every_cell_a_spreadsheet_would_run_as_a_formula_starts_with_an_apostrophe(staff, user):
    campaign = CampaignFactory(user=user)
    recipient = RecipientFactory(
        campaign=campaign, summary="+1 more thing", variables={"=cmd": "@SUM(1)", "note": "\tindented"}
    )
    CallFactory(
        recipient=recipient,
        summary="-2 points",
        data_collection=collected(
            formula='=HYPERLINK("http://evil.test","click")', minus="-1+1", at="@A1", tab="\tx", cr="\rx"
        ),
    )

    header, row = csv_rows(staff.get(f"/campaigns/{campaign.pk}/export.csv"))
    exported = dict(zip(header, row, strict=True))

    assert exported["summary"] == "'-2 points"
    assert exported["data.formula"] == '\'=HYPERLINK("http://evil.test","click")'
    assert (exported["data.minus"], exported["data.at"]) == ("'-1+1", "'@A1")
    assert (exported["data.tab"], exported["data.cr"]) == ("'\tx", "'\rx")
    assert (exported["'=cmd"], exported["note"]) == ("'@SUM(1)", "'\tindented")
    assert exported["phone_number"].startswith("+1")  # an E.164 number stays as it is


def test_a_variable_named_like_an_export_column_is_told_apart(staff, user):
    campaign = CampaignFactory(user=user)
    recipient = RecipientFactory(campaign=campaign, variables={"attempts": "3", "data.party_size": "4"})
    CallFactory(recipient=recipient, data_collection=collected(party_size=2))

    header, row = csv_rows(staff.get(f"/campaigns/{campaign.pk}/export.csv"))
    exported = dict(zip(header, row, strict=True))

    assert exported["variable_attempts"] == "3" and exported["variable_data.party_size"] == "4"
    assert exported["data.party_size"] == "2"


def test_rows_stream_in_chunks_with_two_queries_each_and_keep_each_recipients_calls(user):
    campaign = CampaignFactory(user=user)
    for n in range(5):
        if n == 3:
            # Another campaign's recipient, its id between these ones': its call is not theirs.
            CallFactory(recipient=RecipientFactory(), call_result="answered", duration_secs=999)
        recipient = RecipientFactory(campaign=campaign, phone_number=f"+1212555010{n}", status="completed")
        for attempt in (1, 2):
            CallFactory(recipient=recipient, attempt=attempt, call_result="answered", duration_secs=10 * n + attempt)

    with CaptureQueriesContext(connection) as queries:
        header, rows = selectors.recipient_export(campaign=campaign, chunk_size=2)
        rows = list(rows)

    duration = header.index("duration_secs")
    assert [(row[0], row[duration]) for row in rows] == [(f"+1212555010{n}", 10 * n + 2) for n in range(5)]
    assert len(queries) == 2 + 2 * 3  # data items and variables, then recipients and calls per chunk


# --- .xlsx ---------------------------------------------------------------------------------


def test_the_xlsx_has_the_csvs_rows_with_numbers_as_numbers_and_everything_else_as_text(staff, called):
    response = staff.get(f"/campaigns/{called.pk}/export.xlsx")

    assert response["Content-Type"] == XLSX
    assert response["Content-Disposition"] == 'attachment; filename="Spring reminders.xlsx"'
    assert "no-cache" in response["Cache-Control"]
    sheet = xlsx_values(response)
    rows = csv_rows(staff.get(f"/campaigns/{called.pk}/export.csv"))
    assert [[str(cell) for cell in row] for row in sheet] == rows
    # the + of a number and the zeros of an account stay; counts are numbers
    assert (sheet[1][0], sheet[1][13]) == ("+12125550100", "00042")
    assert sheet[1][1:2] == [2] and sheet[1][8:10] == [2, 42]
    assert sheet[3][8:10] == [0, ""]


def test_a_cell_that_looks_like_a_formula_is_text_in_the_xlsx(staff, user):
    campaign = CampaignFactory(user=user)
    recipient = RecipientFactory(campaign=campaign, phone_number="+1-800-CALL", variables={"company": "=1+1"})
    CallFactory(
        recipient=recipient,
        summary="@SUM(A1:A9)",
        data_collection=collected(
            formula='=HYPERLINK("http://evil.test","click")',
            # what XlsxWriter would otherwise write into the sheet as XML of its own
            markup='<r></r></is></c><c r="Z1"><f>1+1</f></c><c r="Z2" t="inlineStr"><is><r></r>',
            control="a\x01b",
        ),
    )

    response = staff.get(f"/campaigns/{campaign.pk}/export.xlsx")
    content = b"".join(response.streaming_content)
    sheet = openpyxl.load_workbook(io.BytesIO(content))["Recipients"]

    header = [cell.value for cell in sheet[1]]
    cells = {name: sheet.cell(row=2, column=index + 1) for index, name in enumerate(header)}
    assert {cell.data_type for cell in cells.values() if cell.value is not None} <= {"s", "n"}
    assert cells["data.formula"].value == '=HYPERLINK("http://evil.test","click")'
    assert cells["data.markup"].value.startswith("<r></r></is></c>")
    # XML cannot hold it: written as the spreadsheet escape, which Excel reads back as \x01
    assert cells["data.control"].value == "a_x0001_b"
    assert (cells["summary"].value, cells["company"].value, cells["phone_number"].value) == (
        "@SUM(A1:A9)",
        "=1+1",
        "+1-800-CALL",
    )
    assert sheet.max_column == len(header)
    assert b"<f>" not in zipfile.ZipFile(io.BytesIO(content)).read("xl/worksheets/sheet1.xml")


@pytest.mark.parametrize(
    ("name", "disposition"),
    [
        ("Spring reminders", 'attachment; filename="Spring reminders.xlsx"'),
        ('Q1: "VIP" / follow-up?', 'attachment; filename="Q1 VIP follow-up.xlsx"'),
        ("Relances été", f"attachment; filename*=utf-8''{quote('Relances été.xlsx')}"),
        ("../..", 'attachment; filename="campaign-{pk}.xlsx"'),
    ],
)
def test_the_xlsx_is_named_after_the_campaign(staff, user, name, disposition):
    campaign = CampaignFactory(user=user, name=name)

    response = staff.get(f"/campaigns/{campaign.pk}/export.xlsx")

    assert response["Content-Disposition"] == disposition.format(pk=campaign.pk)
    assert xlsx_values(response) == [[*OUTCOME_HEADER, *OVERRIDE_HEADER]]


# --- Who may export, and what it costs -----------------------------------------------------


@pytest.mark.parametrize("export", ["export.csv", "export.xlsx"])
def test_another_users_campaign_is_not_found(staff, other_user, export):
    theirs = CampaignFactory(user=other_user)
    RecipientFactory(campaign=theirs)

    assert staff.get(f"/campaigns/{theirs.pk}/{export}").status_code == 404
    assert staff.get(f"/campaigns/999999/{export}").status_code == 404


def test_the_xlsx_is_for_signed_in_staff_only(client, user):
    campaign = CampaignFactory(user=user)
    url = f"/campaigns/{campaign.pk}/export.xlsx"

    assert client.get(url)["Location"] == f"/accounts/login/?next={url}"
    client.force_login(UserFactory(username="visitor", is_staff=False))
    assert client.get(url).status_code == 403
    client.force_login(user)
    assert client.post(url).status_code == 405


def add_called_recipients(campaign, count):
    start = Recipient.objects.filter(campaign=campaign).count()
    for n in range(start, start + count):
        recipient = RecipientFactory(
            campaign=campaign, phone_number=f"+1212555{n:04d}", status="completed", variables={"first_name": f"P{n}"}
        )
        CallFactory(recipient=recipient, attempt=1, call_result="no_answer", status="failed")
        CallFactory(
            recipient=recipient,
            attempt=2,
            call_result="answered",
            duration_secs=n,
            data_collection=collected(**{f"item_{n % 3}": n}),
        )


@pytest.mark.parametrize("export", ["export.csv", "export.xlsx"])
def test_an_export_runs_the_same_queries_for_10_or_50_recipients(staff, user, export, django_assert_num_queries):
    campaign = CampaignFactory(user=user)
    url = f"/campaigns/{campaign.pk}/{export}"

    def download() -> bytes:
        response = staff.get(url)
        assert response.status_code == 200
        return b"".join(response.streaming_content)  # the rows are read as the body streams

    add_called_recipients(campaign, 10)
    with CaptureQueriesContext(connection) as ten:
        download()
    add_called_recipients(campaign, 40)

    with django_assert_num_queries(len(ten)):
        body = download()
    assert len(ten) <= 12
    if export == "export.csv":
        assert len(list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))) == 51
    else:
        assert openpyxl.load_workbook(io.BytesIO(body), read_only=True)["Recipients"].max_row == 51
