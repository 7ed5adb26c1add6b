"""Reading uploaded recipients files: plain pytest, no database and no Django needed."""

import datetime as dt
import io
import re
import time
import zipfile

import openpyxl
import phonenumbers
import pytest

from campaigns import xlsx as xlsx_reader
from campaigns.recipients import (
    MAX_REPORTED_ERRORS,
    OVERRIDE_COLUMNS,
    ROLE_OVERRIDE,
    ROLE_PHONE,
    ROLE_VARIABLE,
    Column,
    Limits,
    ParsedRecipient,
    RecipientsFileError,
    RecipientsFileTooLarge,
    RecipientsReader,
    RowError,
)

from . import hostile_files

NO_COUNTRY_CODE = (
    "has no country code: write it as +<country code><number>, or give a default country (default_country)"
)
MORE_CELLS_THAN_HEADER = "has more cells than the header has columns"
MORE_CELLS_THAN_FIRST_LINE = "has more cells than the first line of the file"
LIMIT_HINT = "the most one campaign can hold. Split it into several campaigns."
PHONE_HEADERS = ["Phone", "PhoneNumber", "Number", "Phone No.", "Mobile", "Telephone", "MSISDN"]
SCIENTIFIC = (
    "was converted to scientific notation by a spreadsheet, so digits are lost; "
    "format the column as text and export again"
)


def read(data: bytes | str, **kwargs) -> tuple[list[ParsedRecipient], RecipientsReader]:
    if isinstance(data, str):
        data = data.encode()
    reader = RecipientsReader(io.BytesIO(data), **kwargs)
    return list(reader), reader


def numbers(recipients: list[ParsedRecipient]) -> list[str]:
    return [recipient.phone_number for recipient in recipients]


def messages(reader: RecipientsReader) -> list[str]:
    return [str(error) for error in reader.errors]


def file_error(data: bytes | str, **kwargs) -> str:
    with pytest.raises(RecipientsFileError) as raised:
        read(data, **kwargs)
    return str(raised.value)


def xlsx(rows: list[list]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- Header or not ---------------------------------------------------------------------------


def test_it_reads_numbers_under_a_phone_number_header_as_e164():
    recipients, reader = read("phone_number\n+1 (415) 555-2671\n+44 20 7946 0958\n")

    assert numbers(recipients) == ["+14155552671", "+442079460958"]
    assert [recipient.line for recipient in recipients] == [2, 3]
    assert (reader.rows_read, reader.recipients_count, reader.error_count) == (2, 2, 0)


@pytest.mark.parametrize(
    "written",
    [
        "+14155552671",
        "+1 212 555 1234",
        "+390212345678",
        "+44 20 7946 0958",
        "+33 1 42 68 53 00",
        "+49 30 901820",
    ],
)
def test_the_e164_number_is_the_one_phonenumbers_formats(written):
    recipients, _ = read(f"phone_number\n{written}\n")

    expected = phonenumbers.format_number(phonenumbers.parse(written), phonenumbers.PhoneNumberFormat.E164)
    assert numbers(recipients) == [expected]


def test_the_italian_leading_zero_is_kept():
    recipients, _ = read("phone_number\n+39 02 1234 5678\n")

    assert numbers(recipients) == ["+390212345678"]


def test_it_accepts_a_file_without_header_one_number_per_line():
    recipients, reader = read("+14155552671\n+442079460958\n")

    assert numbers(recipients) == ["+14155552671", "+442079460958"]
    assert [recipient.line for recipient in recipients] == [1, 2]
    assert reader.rows_read == 2
    assert reader.columns == []


def test_a_headerless_file_names_its_further_columns_column_2_and_up():
    recipients, reader = read("+14155552671,Ada,London\n+442079460958,Bob,Paris\n")

    assert reader.columns == ["column_2", "column_3"]
    assert [recipient.variables for recipient in recipients] == [
        {"column_2": "Ada", "column_3": "London"},
        {"column_2": "Bob", "column_3": "Paris"},
    ]


def test_a_headerless_row_with_more_cells_than_the_first_line_is_an_error():
    recipients, reader = read("+14155552671,Ada\n+14155552672,Bob,extra\n")

    assert numbers(recipients) == ["+14155552671"]
    assert messages(reader) == [f"Line 2: '+14155552672,Bob,extra' {MORE_CELLS_THAN_FIRST_LINE}"]


@pytest.mark.parametrize("name", PHONE_HEADERS)
def test_it_accepts_common_names_for_the_phone_column(name):
    recipients, reader = read(f"{name},first_name\n+14155552671,Ada\n")

    assert numbers(recipients) == ["+14155552671"]
    assert reader.columns == ["first_name"]


@pytest.mark.parametrize("name", [" Phone Number ", "PHONE-NUMBER", "phone.number", "'phone_number'"])
def test_the_phone_number_header_is_found_whatever_its_case_spacing_or_quotes(name):
    recipients, _ = read(f"{name}\n+14155552671\n")

    assert numbers(recipients) == ["+14155552671"]


def test_a_phone_number_column_wins_over_an_alias_which_becomes_a_variable():
    recipients, reader = read("mobile,phone_number\n+14155550000,+14155552671\n")

    assert numbers(recipients) == ["+14155552671"]
    assert recipients[0].variables == {"mobile": "+14155550000"}
    assert reader.columns == ["mobile"]


def test_a_file_without_a_phone_column_is_refused_naming_the_columns_it_has():
    message = file_error("Name,Email\nAda,ada@example.com\n")

    assert message == (
        "The file has no phone_number column. Its first row has: 'Name', 'Email'. Add a header row "
        "with a column named phone_number, or upload a file with one phone number per line."
    )


def test_duplicate_header_names_are_refused_naming_them():
    message = file_error("phone_number,first name,first_name\n+14155552671,Ada,Ada\n")

    assert message == (
        "The header names the column 'first_name' more than once (after reading spaces, dashes and dots "
        "as underscores). Give every column a different name."
    )


@pytest.mark.parametrize(
    ("header", "repeated"),
    [
        ("Phone_Number,phone_number", "'phone_number'"),
        ("phone_number,First_Message,first message", "'first_message'"),
        ("phone_number,Language,LANGUAGE,Voice-ID,voice_id", "'language', 'voice_id'"),
    ],
)
def test_the_phone_and_override_columns_count_as_duplicates_whatever_their_case(header, repeated):
    message = file_error(f"{header}\n+14155552671,a,b,c,d\n")

    assert message.startswith(f"The header names the column{'s' if ',' in repeated else ''} {repeated} more than once")


def test_headers_that_differ_only_in_case_are_two_variables():
    recipients, reader = read("phone_number,Name,name\n+14155552671,Ada Lovelace,Ada\n")

    assert reader.columns == ["Name", "name"]
    assert recipients[0].variables == {"Name": "Ada Lovelace", "name": "Ada"}


def test_finding_duplicates_in_a_very_wide_header_takes_linear_time():
    # Past the default column limit on purpose: reading the header must stay linear when it is raised.
    header = ",".join(["phone_number", *(f"c{index}" for index in range(100_000))])

    started = time.perf_counter()
    recipients, reader = read(f"{header}\n+14155552671\n", limits=Limits(max_columns=100_001))

    assert time.perf_counter() - started < 10  # quadratic took minutes
    assert len(reader.columns) == 100_000
    assert numbers(recipients) == ["+14155552671"]


@pytest.mark.parametrize("heading", ["system__caller_id", "System__Time", " SYSTEM__conversation_id "])
def test_a_column_named_like_an_elevenlabs_system_variable_is_refused(heading):
    message = file_error(f"phone_number,{heading}\n+14155552671,x\n")

    assert message == (
        f"The column '{heading.strip()}' cannot be used: ElevenLabs reserves names starting with system__ "
        "for its system variables. Rename it and upload the file again."
    )


def test_a_column_that_only_mentions_system_is_an_ordinary_variable():
    recipients, _ = read("phone_number,system_name,my_system__x\n+14155552671,a,b\n")

    assert recipients[0].variables == {"system_name": "a", "my_system__x": "b"}


# --- CSV dialect -----------------------------------------------------------------------------


def test_it_strips_a_utf8_byte_order_mark_before_the_header():
    recipients, reader = read(b"\xef\xbb\xbfphone_number,name\n+14155552671,Ada\n")

    assert numbers(recipients) == ["+14155552671"]
    assert reader.columns == ["name"]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_it_accepts_comma_semicolon_and_tab_separated_files(delimiter):
    text = delimiter.join(["phone_number", "first_name", "city"]) + "\n"
    text += delimiter.join(["+14155552671", "Ada", "London, UK" if delimiter != "," else "London"]) + "\n"

    recipients, _ = read(text)

    assert numbers(recipients) == ["+14155552671"]
    assert recipients[0].variables["first_name"] == "Ada"


def test_it_accepts_semicolon_separated_files_whose_values_contain_commas():
    recipients, _ = read("phone_number;name;note\n+14155552671;Lovelace, Ada;a, b, c\n")

    assert recipients[0].variables == {"name": "Lovelace, Ada", "note": "a, b, c"}


def test_quoted_fields_keep_delimiters_quotes_and_newlines_and_line_numbers_stay_physical():
    text = (
        "phone_number,note\n"
        '+14155552671,"Smith, John said ""hi""\non two lines"\n'
        "+14155552672,plain\n"
        "4155552673,unknown country\n"
    )

    recipients, reader = read(text)

    assert recipients[0].variables == {"note": 'Smith, John said "hi"\non two lines'}
    assert [recipient.line for recipient in recipients] == [3, 4]
    assert messages(reader) == [f"Line 5: '4155552673' {NO_COUNTRY_CODE}"]


def test_it_accepts_crlf_line_endings():
    recipients, reader = read(b"phone_number,name\r\n+14155552671,Ada\r\n4155552672,Bob\r\n")

    assert numbers(recipients) == ["+14155552671"]
    assert recipients[0].variables == {"name": "Ada"}
    assert messages(reader) == [f"Line 3: '4155552672' {NO_COUNTRY_CODE}"]


def test_blank_lines_are_skipped_silently_and_still_count_as_lines():
    text = "\n  \nphone_number,name\n\n+14155552671,Ada\n , \n,,\n\t\n+14155552672,Bob\n\n"

    recipients, reader = read(text)

    assert numbers(recipients) == ["+14155552671", "+14155552672"]
    assert [recipient.line for recipient in recipients] == [5, 9]
    assert (reader.rows_read, reader.error_count) == (2, 0)


def test_a_trailing_delimiter_on_every_line_is_fine():
    recipients, reader = read("phone_number,name,\n+14155552671,Ada,\n+14155552672,Bob,\n")

    assert numbers(recipients) == ["+14155552671", "+14155552672"]
    assert recipients[0].variables == {"name": "Ada"}
    assert reader.columns == ["name"]
    assert reader.error_count == 0


def test_a_column_without_a_header_name_is_ignored():
    recipients, reader = read("phone_number,,name\n+14155552671,scribble,Ada\n")

    assert recipients[0].variables == {"name": "Ada"}
    assert reader.columns == ["name"]


def test_an_unclosed_quote_is_reported_instead_of_swallowing_the_file():
    text = 'phone_number,note\n+14155552671,"never closed\n' + "+14155552672,x\n" * 10_000

    message = file_error(text)

    assert message == (
        'Line 2 has a quote (") that opens a value which is never closed. '
        "Remove the stray quote or close it, and upload the file again."
    )


# --- What spreadsheets do to phone numbers ---------------------------------------------------


def test_the_excel_text_prefix_apostrophe_is_removed():
    recipients, _ = read("phone_number\n'+14155552671\n")

    assert numbers(recipients) == ["+14155552671"]


def test_excel_formula_quoting_is_removed():
    recipients, _ = read('phone_number,name\n="+14155552671",Ada\n"=""+442079460958""",Bob\n')

    assert numbers(recipients) == ["+14155552671", "+442079460958"]


def test_a_00_international_prefix_is_read_as_a_plus():
    recipients, _ = read("phone_number\n0044 20 7946 0958\n0014155552671\n")

    assert numbers(recipients) == ["+442079460958", "+14155552671"]


@pytest.mark.parametrize(
    "text, value",
    [
        ("phone_number\n1.41555E+10\n", "1.41555E+10"),
        ("phone_number\n4.15555e11\n", "4.15555e11"),
        ("phone_number;name\n1,41555E+10;Ada\n", "1,41555E+10"),
        ("phone_number\n1,41555E+10\n", "1,41555E+10"),
    ],
)
def test_scientific_notation_is_reported_and_never_guessed(text, value):
    recipients, reader = read(text, default_country="US")

    assert recipients == []
    assert messages(reader) == [f"Line 2: '{value}' {SCIENTIFIC}"]


def test_a_headerless_file_starting_with_scientific_notation_is_reported_per_line():
    recipients, reader = read("1,41555E+10\n+14155552671\n")

    assert numbers(recipients) == ["+14155552671"]
    assert messages(reader) == [f"Line 1: '1,41555E+10' {SCIENTIFIC}"]


# --- Country codes ---------------------------------------------------------------------------


def test_a_number_without_country_code_is_refused_when_no_default_country_is_sent():
    recipients, reader = read("phone_number\n(415) 555-2671\n")

    assert recipients == []
    assert messages(reader) == [f"Line 2: '(415) 555-2671' {NO_COUNTRY_CODE}"]


def test_default_country_reads_numbers_without_country_code():
    recipients, reader = read("phone_number\n(415) 555-2671\n+44 20 7946 0958\n", default_country="us")

    assert numbers(recipients) == ["+14155552671", "+442079460958"]
    assert reader.error_count == 0


def test_default_country_reads_national_numbers_with_a_trunk_zero():
    recipients, _ = read("phone_number\n020 7946 0958\n", default_country="GB")

    assert numbers(recipients) == ["+442079460958"]


def test_default_country_uk_means_the_united_kingdom():
    recipients, _ = read("phone_number\n020 7946 0958\n", default_country="UK")

    assert numbers(recipients) == ["+442079460958"]


def test_an_unknown_default_country_is_refused():
    with pytest.raises(ValueError) as raised:
        RecipientsReader(io.BytesIO(b"phone_number\n+14155552671\n"), default_country="XX")

    assert str(raised.value) == (
        "Unknown default_country 'XX': use a two-letter ISO 3166 country code such as US or GB"
    )


# --- Invalid rows ----------------------------------------------------------------------------


def test_invalid_numbers_are_reported_with_line_value_and_reason():
    text = "phone_number\n+1 999 555 2671\n+1 212 555 123\n+44 20 7946 09581\ncall me\n+999 123456\n"

    recipients, reader = read(text)

    assert recipients == []
    assert messages(reader) == [
        "Line 2: '+1 999 555 2671' is not a valid phone number for country code +1",
        "Line 3: '+1 212 555 123' is too short to be a valid phone number for country code +1",
        "Line 4: '+44 20 7946 09581' is too long to be a valid phone number for country code +44",
        "Line 5: 'call me' is not a phone number",
        "Line 6: '+999 123456' has an unknown country code",
    ]
    assert (reader.rows_read, reader.error_count) == (5, 5)


def test_an_invalid_national_number_names_the_default_country():
    _, reader = read("phone_number\n999 555 2671\n", default_country="US")

    assert messages(reader) == ["Line 2: '999 555 2671' is not a valid phone number for US"]


def test_a_row_without_a_phone_number_is_reported_with_the_text_of_the_row():
    _, reader = read("phone_number,name,city\n,Ada,London\n")

    assert messages(reader) == ["Line 2: ',Ada,London' has no phone number"]


def test_the_row_text_in_an_error_is_cut_to_80_characters():
    _, reader = read("phone_number,note\n," + "x" * 200 + "\n")

    assert reader.errors[0].value == "," + "x" * 78 + "…"
    assert len(reader.errors[0].value) == 80


def test_a_row_error_reads_as_a_sentence_and_as_a_dict():
    error = RowError(line=7, value="4155552671", reason=NO_COUNTRY_CODE)

    assert str(error) == f"Line 7: '4155552671' {NO_COUNTRY_CODE}"
    assert error.as_dict() == {"line": 7, "value": "4155552671", "reason": NO_COUNTRY_CODE}


def test_the_errors_list_is_capped_while_error_count_counts_every_bad_row():
    text = "phone_number\n" + "".join(f"not a number {index}\n" for index in range(150)) + "+14155552671\n"

    recipients, reader = read(text)

    assert numbers(recipients) == ["+14155552671"]
    assert len(reader.errors) == MAX_REPORTED_ERRORS == 100
    assert reader.error_count == 150
    assert str(reader.errors[-1]) == "Line 101: 'not a number 99' is not a phone number"
    assert reader.rows_read == 151


# --- Duplicates ------------------------------------------------------------------------------


def test_the_same_number_again_is_merged_and_the_first_row_wins():
    text = "phone_number,name\n+14155552671,Ada\n+1 (415) 555-2671,Bob\n0014155552671,Cy\n+442079460958,Di\n"

    recipients, reader = read(text)

    assert numbers(recipients) == ["+14155552671", "+442079460958"]
    assert recipients[0].variables == {"name": "Ada"}
    assert reader.duplicates_merged == 2
    assert (reader.rows_read, reader.recipients_count) == (4, 2)


def test_a_number_without_country_code_matches_the_same_number_with_one_under_default_country():
    recipients, reader = read("phone_number\n+14155552671\n(415) 555-2671\n", default_country="US")

    assert numbers(recipients) == ["+14155552671"]
    assert reader.duplicates_merged == 1


def test_repeated_invalid_rows_are_errors_not_duplicates():
    _, reader = read("phone_number\n4155552671\n4155552671\n")

    assert reader.duplicates_merged == 0
    assert reader.error_count == 2


# --- Variables and overrides -----------------------------------------------------------------


def test_extra_columns_become_variables_named_as_written_with_separators_as_underscores():
    text = " First Name ,Last-Name,Account.ID,PHONE NUMBER,Notes\n Ada , Lovelace ,42,+14155552671,\n"

    recipients, reader = read(text)

    assert reader.columns == ["First_Name", "Last_Name", "Account_ID", "Notes"]
    assert recipients[0].variables == {
        "First_Name": "Ada",
        "Last_Name": "Lovelace",
        "Account_ID": "42",
        "Notes": "",
    }


def test_a_camel_case_header_keeps_its_case_so_the_agent_finds_the_variable():
    recipients, reader = read('phone_number,customerName,\ufeff"accountID"\n+14155552671,Ada,A-42\n')

    assert reader.columns == ["customerName", "accountID"]
    assert recipients[0].variables == {"customerName": "Ada", "accountID": "A-42"}


def test_the_layout_says_what_each_named_column_becomes():
    text = "Name,Phone_Number,,First Message,Voice_ID,plan\n"

    reader = RecipientsReader(io.BytesIO(f"{text}Ada,+14155552671,x,Hi,v1,gold\n".encode()))
    next(iter(reader))

    assert reader.layout == [
        Column("Name", ROLE_VARIABLE, "Name"),
        Column("Phone_Number", ROLE_PHONE, "phone_number"),
        Column("First Message", ROLE_OVERRIDE, "first_message"),
        Column("Voice_ID", ROLE_OVERRIDE, "voice_id"),
        Column("plan", ROLE_VARIABLE, "plan"),
    ]


def test_a_headerless_file_lays_out_its_numbered_columns():
    reader = RecipientsReader(io.BytesIO(b"+14155552671,Ada\n"))
    list(reader)

    assert reader.layout == [
        Column("column_1", ROLE_PHONE, "phone_number"),
        Column("column_2", ROLE_VARIABLE, "column_2"),
    ]


def test_check_columns_sees_the_layout_before_any_recipient_and_can_refuse_the_file():
    seen = []

    def refuse_overrides(columns):
        seen.append(list(columns))
        if any(column.role == ROLE_OVERRIDE for column in columns):
            raise RecipientsFileError("no overrides")

    reader = RecipientsReader(io.BytesIO(b"phone_number,language\n+14155552671,en\n"), check_columns=refuse_overrides)

    with pytest.raises(RecipientsFileError, match="no overrides"):
        next(iter(reader))
    assert seen == [[Column("phone_number", ROLE_PHONE, "phone_number"), Column("language", ROLE_OVERRIDE, "language")]]
    assert reader.recipients_count == 0


def test_override_columns_are_overrides_only_when_filled():
    text = (
        "phone_number,Language,First Message,system_prompt,Voice-ID,city\n"
        "+14155552671,es,Hola Ada,,voice123,Madrid\n"
        "+14155552672,,,,,Paris\n"
    )

    recipients, reader = read(text)

    assert set(OVERRIDE_COLUMNS) == {"language", "first_message", "system_prompt", "voice_id"}
    assert reader.columns == ["city"]
    assert recipients[0].overrides == {"language": "es", "first_message": "Hola Ada", "voice_id": "voice123"}
    assert recipients[1].overrides == {}
    assert [recipient.variables for recipient in recipients] == [{"city": "Madrid"}, {"city": "Paris"}]


def test_missing_trailing_cells_are_empty_strings():
    recipients, _ = read("phone_number,first_name,city\n+14155552671\n+14155552672,Bob\n")

    assert [recipient.variables for recipient in recipients] == [
        {"first_name": "", "city": ""},
        {"first_name": "Bob", "city": ""},
    ]


def test_filled_cells_beyond_the_header_are_an_error_and_empty_ones_are_ignored():
    recipients, reader = read("phone_number,name\n+14155552671,Ada,,\n+14155552672,Smith,John\n")

    assert numbers(recipients) == ["+14155552671"]
    assert messages(reader) == [f"Line 3: '+14155552672,Smith,John' {MORE_CELLS_THAN_HEADER}"]


def test_the_columns_are_known_once_the_first_recipient_is_read():
    reader = RecipientsReader(io.BytesIO(b"phone_number,first_name,language\n+14155552671,Ada,en\n"))
    rows = iter(reader)

    first = next(rows)

    assert reader.columns == ["first_name"]
    assert first.phone_number == "+14155552671"


# --- Files that cannot be used ---------------------------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "The file has no recipients: it is empty."),
        (b"\xef\xbb\xbf", "The file has no recipients: it is empty."),
        (b"\n \r\n\t\n", "The file has no recipients: it has only blank lines."),
        (
            b"phone_number,name\n",
            "The file has no recipients: it has a header row but no phone numbers below it.",
        ),
        (
            b"phone_number\n\n  \n",
            "The file has no recipients: it has a header row but no phone numbers below it.",
        ),
    ],
    ids=["empty", "bom-only", "blank-lines-only", "header-only", "header-and-blank-lines"],
)
def test_a_file_with_no_recipients_is_refused(data, message):
    assert file_error(data) == message


NOT_TEXT = (
    "The file is not UTF-8 text, so it is neither a CSV file nor a spreadsheet this service can read. "
    'Export it from your spreadsheet as "CSV UTF-8" or save it as .xlsx, and upload it again.'
)


def test_a_file_with_nul_bytes_is_refused_as_not_text():
    assert file_error(b"phone_number\n+14155552671\x00\x00\n") == NOT_TEXT


def test_a_latin_1_file_is_refused_as_not_utf8():
    assert file_error("phone_number,name\n+14155552671,Müller\n".encode("latin-1")) == NOT_TEXT


def test_invalid_utf8_far_into_the_file_is_refused_too():
    text = "phone_number,name\n" + "+14155552671,Ada\n" * 2000 + "+14155552672,Müller\n"

    assert file_error(text.encode("latin-1")) == NOT_TEXT


def test_a_utf16_file_is_refused_with_a_hint():
    message = file_error("phone_number\n+14155552671\n".encode("utf-16"))

    assert message == (
        'The file is UTF-16 text ("Unicode Text" in Excel), not UTF-8. Export it as "CSV UTF-8" '
        "or save it as .xlsx, and upload it again."
    )


def test_an_old_xls_workbook_is_refused_with_a_hint():
    message = file_error(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, filename="list.xls")

    assert message == (
        "The file is an old-style Excel .xls workbook (or a password-protected one), which cannot be read. "
        'Open it in Excel and save it as .xlsx or as "CSV UTF-8", without a password.'
    )


UNREADABLE_XLSX = (
    "The file is not a readable .xlsx spreadsheet: it is damaged or another kind of file. "
    'Open it in Excel and save it as .xlsx or as "CSV UTF-8", and upload it again.'
)


def test_a_corrupt_xlsx_is_refused():
    assert file_error(b"PK\x03\x04" + b"not really a zip" * 10) == UNREADABLE_XLSX


def test_a_truncated_xlsx_is_refused():
    truncated = xlsx([["phone_number"], ["+14155552671"]])[:300]

    assert file_error(truncated, filename="list.xlsx") == UNREADABLE_XLSX


def test_a_file_named_xlsx_that_is_not_a_spreadsheet_is_refused():
    assert file_error(b"phone_number\n+14155552671\n", filename="List.XLSX") == UNREADABLE_XLSX


def test_more_recipients_than_the_limit_stops_the_file_at_once():
    # Bytes that are not UTF-8 far below the limit would be reported if reading went on.
    text = b"phone_number\n+14155552671\n+14155552672\n+14155552673\n" + b"+14155552674\n" * 2000 + b"\xff\n"

    message = file_error(text, max_recipients=2)

    assert message == f"The file has more than 2 recipients, {LIMIT_HINT}"


def test_the_limit_is_written_with_thousands_separators():
    text = "phone_number\n" + "".join(f"+1415555{n:04d}\n" for n in range(2000, 3002))

    message = file_error(text, max_recipients=1000)

    assert message == f"The file has more than 1,000 recipients, {LIMIT_HINT}"


def test_repeated_numbers_do_not_count_towards_the_limit():
    recipients, reader = read("phone_number\n+14155552671\n+14155552671\n+14155552672\n", max_recipients=2)

    assert numbers(recipients) == ["+14155552671", "+14155552672"]
    assert reader.duplicates_merged == 1


def test_the_callers_file_is_left_open_after_reading_and_after_an_error():
    good = io.BytesIO(b"phone_number\n+14155552671\n")
    bad = io.BytesIO(b"phone_number\n+14155552671\n\xff\n")

    assert numbers(list(RecipientsReader(good))) == ["+14155552671"]
    with pytest.raises(RecipientsFileError):
        list(RecipientsReader(bad))

    assert (good.closed, bad.closed) == (False, False)


def test_a_file_that_was_already_read_is_read_from_the_start():
    upload = io.BytesIO(b"phone_number\n+14155552671\n")
    upload.read()

    assert numbers(list(RecipientsReader(upload))) == ["+14155552671"]


# --- Spreadsheets ----------------------------------------------------------------------------


def test_it_reads_an_xlsx_spreadsheet():
    data = xlsx(
        [
            ["Phone Number", "First Name", "Visits", "Score", "VIP", "Since", "Language"],
            [14155552671, "Ada", 3, 4.5, True, dt.datetime(2024, 1, 15, 10, 30), "en"],
            [1.4155552671e20, "Bob", None, None, None, None, None],
            ["+44 20 7946 0958", " Cy ", 7.0, None, False, dt.date(2023, 5, 1), None],
            [],
            [14155552672.0, "Di"],
            ["'+14155552673", "Ed"],
        ]
    )

    recipients, reader = read(data, filename="list.xlsx", default_country="US")

    assert numbers(recipients) == ["+14155552671", "+442079460958", "+14155552672", "+14155552673"]
    assert [recipient.line for recipient in recipients] == [2, 4, 6, 7]
    assert reader.columns == ["First_Name", "Visits", "Score", "VIP", "Since"]
    assert recipients[0].variables == {
        "First_Name": "Ada",
        "Visits": "3",
        "Score": "4.5",
        "VIP": "true",
        "Since": "2024-01-15T10:30:00",
    }
    assert recipients[0].overrides == {"language": "en"}
    assert recipients[1].variables == {
        "First_Name": "Cy",
        "Visits": "7",
        "Score": "",
        "VIP": "false",
        "Since": "2023-05-01",
    }
    assert messages(reader) == [f"Line 3: '1.4155552671E+20' {SCIENTIFIC}"]
    assert (reader.rows_read, reader.recipients_count, reader.error_count) == (5, 4, 1)


def test_an_xlsx_is_recognised_by_its_content_whatever_its_name():
    recipients, _ = read(xlsx([["phone_number"], ["+14155552671"]]), filename="recipients.csv")

    assert numbers(recipients) == ["+14155552671"]


def test_a_spreadsheet_number_that_lost_its_plus_needs_a_default_country():
    _, reader = read(xlsx([["phone_number"], [14155552671]]))

    assert messages(reader) == [f"Line 2: '14155552671' {NO_COUNTRY_CODE}"]


def test_a_spreadsheet_without_header_reads_the_first_column():
    recipients, reader = read(xlsx([["+14155552671", "Ada"], ["+442079460958", "Bob"]]))

    assert numbers(recipients) == ["+14155552671", "+442079460958"]
    assert [recipient.variables for recipient in recipients] == [{"column_2": "Ada"}, {"column_2": "Bob"}]
    assert reader.columns == ["column_2"]


def test_a_spreadsheet_with_only_a_header_is_refused():
    message = file_error(xlsx([["phone_number", "name"]]))

    assert message == "The file has no recipients: it has a header row but no phone numbers below it."


def _example_numbers() -> list[str]:
    """Example numbers of every region and number type phonenumbers knows, in E.164, plus
    variants that must go through the library's full parse (national prefix, leading zeros)."""
    values = set()
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in range(12):  # every PhoneNumberType
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                values.update({e164, e164[:-1], e164 + "9", "+" + str(example.country_code) + "0" + e164[1:]})
    return sorted(values)


def test_numbers_already_in_e164_read_exactly_as_the_library_parses_them():
    # The reader takes a shortcut for +digits values; it must agree with parse() + is_valid_number
    # on every example number of every region, and on near-misses of them.
    values = _example_numbers()
    expected = {}
    for value in values:
        number = phonenumbers.parse(value, None)
        if phonenumbers.is_valid_number(number):
            expected.setdefault(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), value)
    reader = RecipientsReader(io.BytesIO(("phone_number\n" + "\n".join(values) + "\n").encode()))
    got = {recipient.phone_number for recipient in reader}
    assert len(values) > 3000
    assert got == set(expected)
    assert reader.error_count == len(values) - len(expected) - reader.duplicates_merged


def test_formatted_international_numbers_read_exactly_as_the_library_parses_them():
    # "+44 20 7946 0958" is read without parse() when its digits form a valid number: the result
    # must be the library's for every example number, in each way people write them.
    values = []
    for value in _example_numbers():
        number = phonenumbers.parse(value, None)
        international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        significant = phonenumbers.national_significant_number(number)
        values += [
            international,
            international.replace(" ", "-"),
            international.replace(" ", ".", 1),
            f"+{number.country_code} ({significant[:3]}) {significant[3:]}",
        ]
    expected = set()
    for value in values:
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            expected.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))

    reader = RecipientsReader(io.BytesIO(("phone_number\n" + "\n".join(values) + "\n").encode()))

    assert {recipient.phone_number for recipient in reader} == expected


@pytest.mark.parametrize("region", ["US", "GB", "DE", "IT", "AR", "BR", "IN", "JP", "RU", "MX", "CN", "NU"])
def test_national_numbers_read_exactly_as_the_library_parses_them(region):
    # Numbers written nationally go through parse(); validity is then decided from the same
    # metadata by the reader's own compiled check, which must agree with is_valid_number.
    values = []
    for kind in range(12):
        example = phonenumbers.example_number_for_type(region, kind)
        if example is not None:
            national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
            values += [national, national[:-1], national + "1"]
    expected = set()
    for value in values:
        number = phonenumbers.parse(value, region)
        if phonenumbers.is_valid_number(number):
            expected.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))

    recipients, _ = read("phone_number\n" + "\n".join(values) + "\n", default_country=region)

    assert set(numbers(recipients)) == expected


# --- Limits: what a hostile or broken file cannot make the reader do ---------------------------

SMALL = Limits(max_rows=50, max_columns=5, max_cell_chars=100, max_xlsx_bytes=200_000, max_xlsx_parts=20)


def too_large(data: bytes | str, **kwargs) -> str:
    with pytest.raises(RecipientsFileTooLarge) as raised:
        read(data, **kwargs)
    return str(raised.value)


def test_a_header_with_more_columns_than_the_limit_is_refused_naming_the_limit():
    message = file_error("phone_number,a,b,c,d,e\n+14155552671,1,2,3,4,5\n", limits=SMALL)

    assert message == (
        "The file has 6 columns; at most 5 are read. Remove the columns the agent does not need, "
        "and upload the file again."
    )


def test_empty_cells_after_the_last_heading_do_not_count_as_columns():
    recipients, reader = read("phone_number,name" + "," * 1_000 + "\n+14155552671,Ada\n")

    assert numbers(recipients) == ["+14155552671"]
    assert reader.columns == ["name"]


def test_a_value_longer_than_the_cell_limit_is_refused_naming_line_and_column():
    text = "phone_number,note\n+14155552671,short\n+14155552672," + "x" * 101 + "\n"

    assert file_error(text, limits=SMALL) == (
        "Line 3 has a value longer than 100 characters in column note, the most one cell may hold. "
        "Shorten it and upload the file again."
    )


@pytest.mark.parametrize("quote", ["", '"'], ids=["plain", "quoted"])
def test_a_value_past_the_csv_modules_own_limit_is_a_long_value_not_an_unclosed_quote(quote):
    text = f"phone_number,note\n+14155552671,{quote}{'x' * 200_000}{quote}\n"

    assert file_error(text) == (
        "Line 2 has a value longer than 10,000 characters, the most one cell may hold. "
        "Shorten it and upload the file again."
    )


def test_a_line_longer_than_any_allowed_row_is_refused_before_it_is_split_into_cells():
    message = file_error("phone_number\n" + "," * 700 + "\n", limits=SMALL)

    assert message.startswith("Line 2 is longer than 515 characters, more than 5 columns of at most 100 characters")


def test_more_lines_than_the_limit_is_refused_as_too_large_blank_lines_included():
    message = too_large("phone_number\n+14155552671\n" + "\n" * 60, limits=SMALL)

    assert message == (
        "The file has more than 50 lines (blank lines included); at most 50 are read. Split it into several campaigns."
    )


def test_a_nul_character_anywhere_refuses_the_file_naming_its_line():
    text = b"phone_number,name\n" + b"+14155552671,Ada\n" * 500 + b"+14155552672,A\x00da\n"

    assert file_error(text) == (
        "Line 502 contains a NUL character (a zero byte), which no text file holds: the file is damaged or is "
        'not CSV text. Export it again as "CSV UTF-8" or save it as .xlsx, and upload it again.'
    )


@pytest.mark.parametrize("cell", ["'", '=""', '"="""""', "' "])
def test_a_phone_cell_holding_only_spreadsheet_quoting_is_a_row_without_a_number(cell):
    recipients, reader = read(f"phone_number,name\n+14155552671,Ada\n{cell},Bob\n")

    assert numbers(recipients) == ["+14155552671"]
    assert [(error.line, error.reason) for error in reader.errors] == [(3, "has no phone number")]


def test_a_column_named_items_is_an_ordinary_variable():
    recipients, reader = read("phone_number,items,keys\n+14155552671,3 boxes,front door\n")

    assert reader.columns == ["items", "keys"]
    assert recipients[0].variables == {"items": "3 boxes", "keys": "front door"}


def test_wide_rows_cost_time_in_proportion_to_the_file():
    # 2,000 rows of 4,000 empty cells each: every row is read once, never padded or rescanned per column.
    text = "phone_number,name\n" + ("+14155552671," + "," * 4_000 + "\n") * 2_000

    started = time.perf_counter()
    _, reader = read(text)

    assert time.perf_counter() - started < 2
    assert reader.duplicates_merged == 1_999


# --- Limits of .xlsx files ---------------------------------------------------------------------


def hostile_sheet(rows: list[list], **parts) -> bytes:
    return hostile_files.workbook(hostile_files.sheet_xml(rows), **parts)


def test_an_xlsx_past_the_uncompressed_limit_is_refused_from_its_directory_alone():
    sheet = hostile_files.part(hostile_files.SHEET_PATH, b"<x/>" * 60_000)  # 240 KB, never parsed

    message = too_large(hostile_files.workbook(sheet), limits=SMALL)

    assert message.startswith("The .xlsx file unpacks to 0 MB of uncompressed parts; at most 0 MB is accepted.")


def test_an_xlsx_part_compressed_like_a_zip_bomb_is_refused():
    head, tail = hostile_files.SHEET_HEAD, hostile_files.SHEET_TAIL
    bomb = hostile_files.repeated_part(hostile_files.SHEET_PATH, head, b"<row/>" * 100_000, 10, tail)

    message = too_large(hostile_files.workbook(bomb))

    assert re.fullmatch(
        r"The \.xlsx file's part xl/worksheets/sheet1\.xml unpacks \d+ times larger than it is stored \(at most "
        r"200 times is accepted\): it is a zip bomb, not a spreadsheet\.",
        message,
    )


def test_an_xlsx_whose_headers_understate_a_part_is_refused_as_damaged():
    sheet = hostile_files.part(hostile_files.SHEET_PATH, hostile_files.sheet_xml([["phone_number"]] * 500))
    lying = hostile_files.Part(sheet.name, sheet.deflated, sheet.crc, sheet.size, claimed_size=100)
    data = hostile_files.zip_archive([*hostile_files.workbook_parts(), lying])

    assert file_error(data) == UNREADABLE_XLSX


def test_an_xlsx_with_too_many_parts_is_refused_before_they_are_listed():
    extra = [hostile_files.part(f"xl/media/{index}.png", b"") for index in range(30)]
    sheet = hostile_files.part(hostile_files.SHEET_PATH, hostile_files.sheet_xml([["+14155552671"]]))
    data = hostile_files.zip_archive([*hostile_files.workbook_parts(), sheet, *extra])

    assert too_large(data, limits=SMALL).startswith("The .xlsx file holds 35 parts; at most 20 are accepted.")


def prefixed(xml: str, prefix: str) -> str:
    """The same XML with every element written under a namespace prefix (x:row), as some tools write it."""
    if not prefix:
        return xml
    xml = re.sub(r"<(/?)(\w+)", rf"<\1{prefix}:\2", xml)
    return xml.replace(" xmlns=", f" xmlns:{prefix}=", 1)


@pytest.mark.parametrize("prefix", ["", "x"], ids=["plain", "namespace-prefixed"])
def test_more_sheet_rows_than_the_limit_are_refused(prefix):
    rows = "<row><c><v>1</v></c></row>" * 60
    sheet = prefixed(f'<worksheet xmlns="{hostile_files.MAIN_NS}"><sheetData>{rows}</sheetData></worksheet>', prefix)

    message = too_large(hostile_files.workbook(sheet.encode()), limits=SMALL)

    assert message == (
        "The file has more than 50 rows (blank rows included); at most 50 are read. Split it into several campaigns."
    )


@pytest.mark.parametrize("prefix", ["", "x", "long-prefix"])
@pytest.mark.parametrize("shift", range(0, 24, 3))
def test_rows_are_counted_before_parsing_exactly_once_even_when_a_tag_spans_two_reads(prefix, shift):
    # The pre-count reads the inflated sheet a megabyte at a time: put a row tag across that line.
    head = prefixed(f'<worksheet xmlns="{hostile_files.MAIN_NS}"><sheetData>', prefix)
    filler = f"<!-- {'x' * (1_048_576 - len(head) - 9 - shift)} -->"
    row = prefixed("<row><c><v>1</v></c></row>", prefix)
    sheet = head + filler + row * 7 + prefixed("</sheetData></worksheet>", prefix)
    archive = zipfile.ZipFile(io.BytesIO(hostile_files.workbook(sheet.encode())))

    assert xlsx_reader._openings(archive, archive.getinfo(hostile_files.SHEET_PATH), b"row", 1_000) == 7


@pytest.mark.parametrize("prefix", ["", "x"], ids=["plain", "namespace-prefixed"])
def test_more_shared_strings_than_the_limit_are_refused(prefix):
    strings = "".join(f"<si><t>{index}</t></si>" for index in range(600))
    table = prefixed(f'<sst xmlns="{hostile_files.MAIN_NS}">{strings}</sst>', prefix).encode()
    data = hostile_sheet([["phone_number"], ["+14155552671"]], shared_strings=table)

    message = too_large(data, limits=Limits(max_shared_strings=500))

    assert message == (
        "The .xlsx file has more than 500 shared strings (distinct texts); at most 500 are accepted. "
        "Split it into several files."
    )


def test_one_long_shared_string_in_every_cell_cannot_multiply_the_text_read():
    table = f'<sst xmlns="{hostile_files.MAIN_NS}"><si><t>{"x" * 90}</t></si></sst>'.encode()
    row = '<row><c t="inlineStr"><is><t>+14155552671</t></is></c>' + '<c t="s"><v>0</v></c>' * 4 + "</row>"
    header = "<row>" + "".join(f'<c t="inlineStr"><is><t>{name}</t></is></c>' for name in "pabcd") + "</row>"
    sheet = hostile_files.SHEET_HEAD + (header + row * 40).encode() + hostile_files.SHEET_TAIL
    data = hostile_files.workbook(sheet, shared_strings=table)
    data = data.replace(b'<c t="inlineStr"><is><t>p</t>', b'<c t="inlineStr"><is><t>phone_number</t>')

    message = too_large(data, limits=Limits(max_xlsx_bytes=10_000))

    assert message.startswith("The spreadsheet's cells hold more than 10,000 characters of text")


def test_an_xlsx_value_past_the_column_limit_is_refused_naming_the_column():
    data = hostile_sheet([["phone_number", *[""] * 4, "far"], ["+14155552671"]])

    assert file_error(data, limits=SMALL).startswith("Line 1 has a value in column F (column 6); at most 5 columns")


def test_a_cell_at_the_far_corner_of_the_grid_costs_nothing():
    sheet = (
        hostile_files.SHEET_HEAD.replace(b"<sheetData>", b'<dimension ref="A1:XFD1048576"/><sheetData>')
        + b'<row r="1"><c r="A1" t="inlineStr"><is><t>phone_number</t></is></c></row>'
        + b'<row r="2"><c r="A2" t="inlineStr"><is><t>+14155552671</t></is></c><c r="XFD2" s="1"/></row>'
        + hostile_files.SHEET_TAIL
    )

    recipients, _ = read(hostile_files.workbook(sheet))

    assert numbers(recipients) == ["+14155552671"]


def test_a_long_xlsx_value_is_refused_naming_line_and_column():
    data = hostile_sheet([["phone_number", "note"], ["+14155552671", "x" * 101]])

    assert file_error(data, limits=SMALL) == (
        "Line 2 has a value longer than 100 characters in column B, the most one cell may hold. "
        "Shorten it and upload the file again."
    )


def test_an_xlsx_with_a_dtd_is_refused_so_no_entity_is_ever_expanded():
    sheet = (
        '<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY a "+14155552671">]>'
        f'<worksheet xmlns="{hostile_files.MAIN_NS}"><sheetData>'
        '<row><c t="inlineStr"><is><t>&a;</t></is></c></row></sheetData></worksheet>'
    )

    assert file_error(hostile_files.workbook(sheet.encode())) == UNREADABLE_XLSX


def test_xlsx_shared_strings_rich_text_and_phonetic_guides_read_as_excel_shows_them():
    table = (
        f'<sst xmlns="{hostile_files.MAIN_NS}"><si><t>phone_number</t></si><si><t>name</t></si>'
        "<si><r><t>Ta</t></r><r><t>ro</t></r><rPh><t>タロ</t></rPh></si></sst>"
    ).encode()
    sheet = (
        hostile_files.SHEET_HEAD
        + b'<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
        + b'<row r="3"><c r="A3" t="str"><f>A1</f><v>+14155552671</v></c><c r="B3" t="s"><v>2</v></c></row>'
        + hostile_files.SHEET_TAIL
    )

    recipients, _ = read(hostile_files.workbook(sheet, shared_strings=table))

    assert [(recipient.line, recipient.phone_number, recipient.variables) for recipient in recipients] == [
        (3, "+14155552671", {"name": "Taro"})
    ]
