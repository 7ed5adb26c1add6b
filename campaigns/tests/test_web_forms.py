"""The staff forms that take a file (new campaign, do-not-call import): a refused file is never kept,
messages speak of the form's inputs rather than the API's fields and say the one step that fixes
them, each other program's spreadsheet gets its own advice, and the page's own upload (upload.js)
is checked like the form's."""

import io
import json
import re
import zipfile
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns.errors import PayloadTooLarge, ValidationFailed
from campaigns.models import Campaign, Suppression
from campaigns.recipients import RecipientsFileError, RowError, lacks_country_code
from campaigns.web import files
from campaigns.web.forms import country_would_fix, file_refused, in_staff_words

from .test_web_pages import errors_of, messages_of, text_of

pytestmark = pytest.mark.django_db

# Numbers as people write them at home: no country code.
NATIONAL_CSV = "phone_number,first_name\n(212) 555-0100,Ann\n415 555 0123,Ben\n"
NO_PHONE_COLUMN = "name,city\nAlice,Paris\n"
# The first bytes of every old-style Office file (OLE2): what an .xls starts with.
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504


@pytest.fixture(autouse=True)
def uploads_dir(settings, tmp_path):
    settings.WEB_UPLOADS_DIR = tmp_path / "uploads"
    return settings.WEB_UPLOADS_DIR


@pytest.fixture
def new_campaign(agent, phone_number):
    """The new-campaign form as a browser posts it; tests change what they are about (None leaves a field out)."""

    def build(**changes):
        data = {
            "name": "Spring reminders",
            "agent_id": agent.elevenlabs_agent_id,
            "phone_number_id": str(phone_number.pk),
            "recipients_file": upload("phone_number,first_name\n+12125550100,Alice\n+14155550123,Bob\n"),
            "default_country": "",
            "when": "now",
            "timezone": "Europe/Berlin",
            "action": "preview",
        }
        data.update(changes)
        return {key: value for key, value in data.items() if value is not None}

    return build


def upload(data: str | bytes, name: str = "recipients.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data.encode() if isinstance(data, str) else data)


def zipped(name: str) -> bytes:
    """A zip as Numbers and LibreOffice save their spreadsheets (the reader would take it for an .xlsx)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, "<document/>")
    return buffer.getvalue()


def kept_files(folder) -> list:
    return sorted(folder.iterdir()) if folder.exists() else []


def token_of(response) -> str:
    """The kept upload the page offers for the next post, "" when none."""
    match = re.search(r'name="(?:import-)?upload_token" value="([^"]*)"', response.content.decode())
    assert match, "the page has no upload_token input"
    return match.group(1)


# --- A refused file is never kept ---------------------------------------------------------------


def test_a_refused_xls_is_not_kept_nor_offered_and_the_next_preview_asks_for_a_file(staff, new_campaign, uploads_dir):
    refused = staff.post("/campaigns/new", new_campaign(recipients_file=upload(OLE2, "recipients.xls")))

    assert "“recipients.xls” is an old-style Excel workbook (.xls)" in errors_of(refused, "recipients_file")
    assert "Using recipients.xls" not in text_of(refused) and "uploaded already" not in text_of(refused)
    assert token_of(refused) == ""
    assert kept_files(uploads_dir) == []

    again = staff.post("/campaigns/new", new_campaign(recipients_file=None, upload_token=token_of(refused)))
    assert errors_of(again, "recipients_file") == "Choose a CSV or Excel (.xlsx) file with the people to call."


def test_a_file_the_reader_refuses_is_discarded_and_the_kept_one_it_replaced_too(staff, new_campaign, uploads_dir):
    good = staff.post("/campaigns/new", new_campaign())
    assert "Using recipients.csv (" in text_of(good) and len(kept_files(uploads_dir)) == 1

    refused = staff.post(
        "/campaigns/new",
        new_campaign(recipients_file=upload(NO_PHONE_COLUMN, "people.csv"), upload_token=token_of(good)),
    )

    assert "The file has no phone_number column." in errors_of(refused, "recipients_file")
    assert "Using" not in text_of(refused) and token_of(refused) == ""
    assert kept_files(uploads_dir) == []
    again = staff.post("/campaigns/new", new_campaign(recipients_file=None, upload_token=token_of(good)))
    assert "The file from your preview is no longer available" in errors_of(again, "recipients_file")


def test_a_kept_upload_refused_when_it_is_first_read_is_discarded(staff, new_campaign, uploads_dir):
    """The page's own upload (upload.js) keeps the file before any service reads it."""
    kept = staff.post("/uploads", {"file": upload("phone_number\n+14155550123\n".encode("utf-16"), "utf16.csv")})
    assert kept.status_code == 201 and len(kept_files(uploads_dir)) == 1

    response = staff.post("/campaigns/new", new_campaign(recipients_file=None, upload_token=kept.json()["token"]))

    assert "The file is UTF-16 text" in errors_of(response, "recipients_file")
    assert token_of(response) == "" and "Using" not in text_of(response)
    assert kept_files(uploads_dir) == []


def test_a_file_above_the_limit_is_named_with_its_size_and_never_written(staff, new_campaign, uploads_dir, settings):
    settings.RECIPIENTS_MAX_FILE_BYTES = 1_048_576
    big = "phone_number\n" + "+14155550123\n" * 120_000  # 1,560,013 bytes

    response = staff.post("/campaigns/new", new_campaign(recipients_file=upload(big, "everyone.csv")))

    assert errors_of(response, "recipients_file") == (
        "“everyone.csv” is 1.5 MB; the limit is 1 MB. Split it into several files and upload each one."
    )
    assert token_of(response) == "" and kept_files(uploads_dir) == []


def test_a_refusal_of_something_else_keeps_the_file_for_the_corrected_form(staff, new_campaign, uploads_dir):
    response = staff.post("/campaigns/new", new_campaign(default_country="XX"))

    assert errors_of(response, "default_country").startswith("“XX” is not a country code")
    assert token_of(response) and "Using recipients.csv (" in text_of(response)
    assert len(kept_files(uploads_dir)) == 1


# --- In the staff's words, with the one step that fixes it --------------------------------------


def test_numbers_without_a_country_code_are_fixed_by_typing_the_country_without_choosing_the_file_again(
    staff, new_campaign, uploads_dir
):
    first = staff.post("/campaigns/new", new_campaign(recipients_file=upload(NATIONAL_CSV, "people.csv")))

    text = text_of(first)
    assert "Rows read 2 Recipients 0" in text
    assert "Type the country in Default country and preview again" in text
    assert "Fix it and choose it again" not in text and "choose it again" not in text
    assert "or type the country in Default country" in text  # each row's reason
    assert "default_country" not in text
    assert 'value="create"' not in first.content.decode()

    second = staff.post(
        "/campaigns/new",
        new_campaign(recipients_file=None, upload_token=token_of(first), default_country="US"),
    )

    assert "Rows read 2 Recipients 2 Duplicates merged 0 Invalid rows 0" in text_of(second)
    assert "+12125550100" in text_of(second) and "+14155550123" in text_of(second)
    assert "Using people.csv (" in text_of(second)
    assert 'value="create"' in second.content.decode()
    created = staff.post(
        "/campaigns/new",
        new_campaign(recipients_file=None, upload_token=token_of(second), default_country="US", action="create"),
    )
    assert created.status_code == 302
    assert Campaign.objects.get().recipients_count == 2
    assert kept_files(uploads_dir) == []


def test_with_some_valid_rows_the_preview_still_points_to_the_country(staff, new_campaign):
    mixed = "phone_number\n+442079460958\n(212) 555-0100\n"

    response = staff.post(
        "/campaigns/new", new_campaign(recipients_file=upload(mixed), skip_invalid_rows="on", default_country="")
    )

    assert "To call them too, type the country in Default country and preview again." in text_of(response)


def test_rows_wrong_in_other_ways_are_not_blamed_on_the_country(staff, new_campaign):
    response = staff.post(
        "/campaigns/new", new_campaign(recipients_file=upload("phone_number\n+12125550100\nhello world\n"))
    )

    text = text_of(response)
    assert "Type the country" not in text
    assert "Tick Skip invalid rows and preview again to call only the valid recipients" in text


def test_a_create_refused_for_invalid_rows_says_what_to_do_on_the_form(staff, new_campaign):
    response = staff.post("/campaigns/new", new_campaign(recipients_file=upload(NATIONAL_CSV), action="create"))

    errors = errors_of(response, "recipients_file")
    assert errors.startswith(
        "The numbers have no country code. Type the country in Default country and preview again. "
        "The recipients file has 2 invalid rows. Fix them, or tick Skip invalid rows to create the campaign"
    )
    assert "skip_invalid_rows" not in errors and "default_country" not in errors
    assert "Type the country in Default country" in text_of(response)  # the summary above the form too
    assert token_of(response)


@pytest.mark.parametrize(
    "message, words",
    [
        (
            "Line 3: '4155550123' has no country code: write it as +<country code><number>, or give a default "
            "country (default_country)",
            "Line 3: '4155550123' has no country code: write it as +<country code><number>, or type the country "
            "in Default country",
        ),
        (
            "Unknown default_country 'ZZ': use a two-letter ISO 3166 country code such as US or GB",
            "“ZZ” is not a country code: use a two-letter ISO 3166 country code such as US or GB",
        ),
        (
            "schedule_date and schedule_time are required when send_immediately is false.",
            "Date and Time are required for a campaign scheduled for later.",
        ),
        ("Phone number not found: there is no phone number 7 in your account.", None),
        # File columns keep their names: the file must use them.
        ("The file has no phone_number column. Add a header row with a column named phone_number.", None),
    ],
)
def test_api_field_names_become_the_form_labels_and_column_names_stay(message, words):
    labels = {"default_country": "Default country", "schedule_date": "Date", "schedule_time": "Time"}

    assert in_staff_words(message, labels) == (words or message)


def test_the_api_keeps_its_own_words(api, agent, phone_number):
    response = api.post(
        "/api/v1/campaigns",
        {
            "name": "API",
            "agent_id": agent.elevenlabs_agent_id,
            "phone_number_id": str(phone_number.pk),
            "recipients_file": upload(NATIONAL_CSV),
            "send_immediately": "true",
        },
        format="multipart",
    )

    assert response.status_code == 422
    assert "send skip_invalid_rows=true" in response.json()["error"]
    assert "(default_country)" in response.json()["errors"][0]


def test_what_counts_as_a_refusal_of_the_file_itself():
    try:
        try:
            raise RecipientsFileError("unreadable")
        except RecipientsFileError:
            raise ValidationFailed("unreadable", field="recipients_file") from None
    except ValidationFailed as exc:
        from_the_reader = exc

    assert file_refused(from_the_reader)
    assert file_refused(PayloadTooLarge("too large"))
    assert not file_refused(ValidationFailed("3 invalid rows", field="recipients_file"))
    assert not file_refused(ValidationFailed("Unknown default_country 'XX'", field="default_country"))


def test_only_rows_that_lack_nothing_but_a_country_code_are_fixed_by_one():
    no_code = RowError(line=2, value="4155550123", reason="x")
    reason = "has no country code: write it as +<country code><number>, or give a default country (default_country)"
    lacking = RowError(line=2, value="4155550123", reason=reason)

    assert lacks_country_code(lacking) and lacks_country_code(str(lacking))
    assert not lacks_country_code(no_code)
    assert country_would_fix(ValidationFailed("2 invalid rows", errors=[str(lacking), str(lacking)]))
    assert not country_would_fix(ValidationFailed("2 invalid rows", errors=[str(lacking), str(no_code)]))
    assert not country_would_fix(ValidationFailed("The schedule is in the past."))


# --- Each kind of file ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, content, advice",
    [
        ("people.numbers", zipped("Index/Document.iwa"), "In Numbers, choose File → Export To → CSV…"),
        ("people.ods", zipped("content.xml"), "In LibreOffice Calc, choose File → Save As… and save it as Text CSV"),
        ("people.xls", OLE2, "In Excel, choose File → Save As… and save it as Excel Workbook (.xlsx)"),
        ("people.pdf", b"%PDF-1.7", "cannot be read here: choose a CSV file (.csv or .tsv), a text file"),
    ],
)
def test_each_other_programs_file_gets_its_own_advice(staff, new_campaign, uploads_dir, name, content, advice):
    response = staff.post("/campaigns/new", new_campaign(recipients_file=upload(content, name)))

    errors = errors_of(response, "recipients_file")
    assert errors.startswith(f"“{name}”") and advice in errors
    assert "Open it in Excel" not in errors  # the reader's advice for a zip it cannot read
    assert kept_files(uploads_dir) == []


@pytest.mark.parametrize(
    "name, content",
    [
        ("people.txt", "+12125550100\n+14155550123\n\n+442079460958\n"),
        ("people.TXT", "+12125550100\n+14155550123\n+442079460958\n"),
        ("people.tsv", "phone_number\tfirst_name\n+12125550100\tAnn\n+14155550123\tBen\n+442079460958\tCleo\n"),
    ],
)
def test_a_text_file_with_one_number_per_line_or_tab_separated_columns_is_read(staff, new_campaign, name, content):
    response = staff.post("/campaigns/new", new_campaign(recipients_file=upload(content, name)))

    assert "Rows read 3 Recipients 3" in text_of(response)
    assert 'value="create"' in response.content.decode()


def test_the_file_input_carries_the_servers_rules_for_the_page(staff, new_campaign, settings):
    settings.RECIPIENTS_MAX_FILE_BYTES = 5 * 1_048_576

    page = staff.get("/campaigns/new")

    html = page.content.decode()
    tag = re.search(r'<input type="file" name="recipients_file"[^>]*>', html).group()
    attributes = {name: unescape(value) for name, value in re.findall(r'([a-z-]+)="([^"]*)"', tag)}
    assert attributes["data-max-bytes"] == str(5 * 1_048_576)
    assert attributes["data-extensions"] == ".csv .tsv .txt .xlsx"
    assert attributes["accept"].startswith(".csv,.tsv,.txt,.xlsx,")
    assert set(json.loads(attributes["data-advice"])) == {".numbers", ".ods", ".xls"}
    assert "{name}" in attributes["data-too-large"] and "{limit}" in attributes["data-too-large"]
    assert "up to 5 MB" in text_of(page)
    assert re.search(r'<progress class="upload-progress__bar" id="id_recipients_file_progress" max="100"', html)
    assert 'data-upload-url="/uploads"' in html


def test_the_size_words_are_those_the_page_writes():
    assert files.size_in_words(30 * 1_048_576) == "30 MB"
    assert files.size_in_words(31_600_000) == "30.1 MB"
    assert files.size_in_words(20 * 1_048_576) == "20 MB"


# --- The page's own upload ----------------------------------------------------------------------


def test_the_page_uploads_a_file_alone_and_gets_a_token_the_form_then_posts(staff, new_campaign, uploads_dir):
    answer = staff.post("/uploads", {"file": upload("phone_number\n+12125550100\n", "people.csv")})

    assert answer.status_code == 201
    assert answer.json()["name"] == "people.csv" and answer.json()["size"] == 26
    preview = staff.post("/campaigns/new", new_campaign(recipients_file=None, upload_token=answer.json()["token"]))
    assert "Rows read 1 Recipients 1" in text_of(preview)
    assert "Using people.csv (" in text_of(preview)


def test_an_upload_replacing_another_deletes_it(staff, uploads_dir):
    first = staff.post("/uploads", {"file": upload("phone_number\n+12125550100\n")}).json()
    second = staff.post("/uploads", {"file": upload("phone_number\n+14155550123\n"), "replaces": first["token"]})

    assert second.status_code == 201
    [kept] = kept_files(uploads_dir)
    assert kept.read_text() == "phone_number\n+14155550123\n"


@pytest.mark.parametrize(
    "name, size, status, fragment",
    [
        ("people.numbers", 10, 415, "In Numbers, choose File → Export To → CSV…"),
        ("people.csv", 2 * 1_048_576, 413, "“people.csv” is 2 MB; the limit is 1 MB."),
    ],
)
def test_the_upload_refuses_what_the_form_refuses_and_keeps_nothing(
    staff, uploads_dir, settings, name, size, status, fragment
):
    settings.RECIPIENTS_MAX_FILE_BYTES = 1_048_576

    answer = staff.post("/uploads", {"file": upload(b"x" * size, name)})

    assert answer.status_code == status
    assert fragment in answer.json()["error"]
    assert kept_files(uploads_dir) == []


def test_the_upload_is_for_signed_in_staff_only(client, uploads_dir):
    answer = client.post("/uploads", {"file": upload("phone_number\n+12125550100\n")})

    assert answer.status_code == 302 and "/accounts/login/" in answer["Location"]
    assert kept_files(uploads_dir) == []


def test_another_users_token_cannot_be_replaced(staff, client, other_user, uploads_dir):
    theirs = staff.post("/uploads", {"file": upload("phone_number\n+12125550100\n")}).json()
    client.force_login(other_user)

    client.post("/uploads", {"file": upload("phone_number\n+14155550123\n"), "replaces": theirs["token"]})

    assert len(kept_files(uploads_dir)) == 2


# --- The do-not-call import -----------------------------------------------------------------------


def import_file(client, file=None, **fields):
    data = {"import-reason": "", "import-default_country": ""}
    if file is not None:
        data["import-file"] = file
    data.update({f"import-{name}": value for name, value in fields.items()})
    return client.post("/suppressions/import", data, follow=True)


def test_an_import_of_a_numbers_file_gets_the_numbers_advice(staff, uploads_dir):
    response = import_file(staff, upload(zipped("Index/Document.iwa"), "opt-outs.numbers"))

    errors = errors_of(response, "import-file")
    assert errors.startswith("“opt-outs.numbers” is an Apple Numbers file") and "Open it in Excel" not in errors
    assert token_of(response) == "" and kept_files(uploads_dir) == []
    assert not Suppression.objects.exists()


def test_an_import_with_only_national_numbers_is_fixed_by_typing_the_country(staff, uploads_dir):
    refused = import_file(staff, upload("4155552671\n2125550100\n", "opt-outs.txt"))

    errors = errors_of(refused, "import-file")
    assert "Type the country in Default country and import again." in errors
    assert "default_country" not in text_of(refused)
    assert "Using opt-outs.txt (" in text_of(refused)

    imported = import_file(staff, upload_token=token_of(refused), default_country="US")

    assert messages_of(imported) == ["2 numbers added."]
    assert set(Suppression.objects.values_list("phone_number", flat=True)) == {"+14155552671", "+12125550100"}
    assert kept_files(uploads_dir) == []


def test_an_import_that_skipped_national_numbers_says_to_import_again_with_the_country(staff):
    response = import_file(staff, upload("+442079460958\n4155552671\n", "opt-outs.txt"))

    [message] = messages_of(response)
    assert message.endswith(
        "Line 2: '4155552671' has no country code: write it as +<country code><number>, or type the country in "
        "Default country. To add those too, type the country in Default country and import the file again."
    )


def test_an_import_refused_as_a_whole_forgets_the_file(staff, uploads_dir):
    response = import_file(staff, upload("name\nAda\n", "opt-outs.csv"))

    assert "The file has no phone_number column" in errors_of(response, "import-file")
    assert token_of(response) == "" and kept_files(uploads_dir) == []
