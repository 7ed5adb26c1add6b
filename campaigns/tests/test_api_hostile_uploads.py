"""POST /api/v1/campaigns with hostile and broken files: a 4xx with a sentence, or a campaign.
Never a 500, never anything stored for a refused file, and every hostile file refused fast."""

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.models import Campaign, Recipient

from . import hostile_files
from .test_recipients_fuzz import cells, headers

URL = "/api/v1/campaigns"
pytestmark = pytest.mark.django_db


def upload(data: bytes, name: str) -> io.BytesIO:
    file = io.BytesIO(data)
    file.name = name
    return file


@pytest.mark.parametrize("case", hostile_files.HOSTILE, ids=lambda case: case.name)
def test_a_hostile_file_is_refused_naming_the_limit_and_nothing_is_stored(api, campaign_form, case, built):
    form = campaign_form(recipients_file=upload(built(case), case.filename))

    response = api.post(URL, form, format="multipart")

    assert response.status_code == case.status, response.content
    body = response.json()
    assert case.message in " ".join([body["error"], *body["errors"]])
    assert body["status"]["code"] == case.status
    assert (Campaign.objects.count(), Recipient.objects.count()) == (0, 0)


def test_a_nul_character_never_reaches_the_database(api, campaign_form):
    text = "phone_number,name\n" + "+14155552671,Ada\n" * 400 + "+14155552672,Bo\x00b\n"

    response = api.post(URL, campaign_form(recipients_file=upload(text.encode(), "nul.csv")), format="multipart")

    assert response.status_code == 422
    assert response.json()["error"].startswith("Line 402 contains a NUL character")
    assert Recipient.objects.count() == 0


def test_a_phone_cell_of_spreadsheet_quoting_alone_is_listed_as_an_invalid_row(api, campaign_form):
    text = 'phone_number\n+14155552671\n\'\n"="""""\n'

    response = api.post(URL, campaign_form(recipients_file=upload(text.encode(), "r.csv")), format="multipart")

    assert response.status_code == 422
    assert response.json()["errors"][:2] == ["Line 3: ''' has no phone number", "Line 4: '=\"\"' has no phone number"]


def test_variables_with_quotes_backslashes_breaks_and_emoji_are_stored_exactly(api, campaign_form):
    values = ['say "hi"', "C:\\dir\\n", "tab\there", "two\nlines", "crlf\r\nend", "🎉 ü ß 中", "\\N", "{}"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["phone_number", *(f"v{index}" for index in range(len(values))), "first_message"])
    writer.writerow(["+14155552671", *values, 'Hola \\ "amigo"'])

    response = api.post(
        URL, campaign_form(recipients_file=upload(buffer.getvalue().encode(), "r.csv")), format="multipart"
    )

    assert response.status_code == 201, response.content
    recipient = Recipient.objects.get()
    assert recipient.variables == {f"v{index}": value for index, value in enumerate(values)}
    assert recipient.overrides == {"first_message": 'Hola \\ "amigo"'}


def test_a_file_past_the_row_limit_is_refused_with_413(api, campaign_form, settings):
    settings.RECIPIENTS_MAX_ROWS = 10
    text = "phone_number\n" + "".join(f"+1415555{line:04d}\n" for line in range(2671, 2691))

    response = api.post(URL, campaign_form(recipients_file=upload(text.encode(), "r.csv")), format="multipart")

    assert response.status_code == 413
    assert response.json()["error"] == (
        "The file has more than 10 lines (blank lines included); at most 10 are read. Split it into several campaigns."
    )


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    header=headers,
    rows=st.lists(st.lists(cells, max_size=5), max_size=12),
    delimiter=st.sampled_from([",", ";", "\t"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"]),
    as_workbook=st.booleans(),
    skip_invalid_rows=st.booleans(),
)
def test_random_files_get_a_campaign_or_a_4xx_with_a_sentence(
    api, campaign_form, header, rows, delimiter, encoding, as_workbook, skip_invalid_rows
):
    if as_workbook:
        data, name = hostile_files.workbook(hostile_files.sheet_xml([header, *rows])), "list.xlsx"
    else:
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter).writerows([header, *rows])
        data, name = buffer.getvalue().encode(encoding, errors="replace"), "list.csv"
    campaigns_before = Campaign.objects.count()
    recipients_before = Recipient.objects.count()
    form = campaign_form(recipients_file=upload(data, name), skip_invalid_rows=str(skip_invalid_rows).lower())

    response = api.post(URL, form, format="multipart")

    assert response.status_code in (201, 413, 422), response.content
    body = response.json()
    if response.status_code == 201:
        campaign = Campaign.objects.get(pk=body["data"]["id"])
        assert campaign.recipients.count() == body["data"]["recipients_count"] > 0
        assert not Recipient.objects.filter(campaign=campaign, variables__icontains="\\u0000").exists()
    else:
        assert body["error"] and "Traceback" not in body["error"]
        assert (Campaign.objects.count(), Recipient.objects.count()) == (campaigns_before, recipients_before)
