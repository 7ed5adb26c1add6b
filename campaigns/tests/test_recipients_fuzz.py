"""The reader against files nobody would write on purpose: random bytes, random cells in every
encoding and separator, damaged workbooks, and the hostile corpus. The rule is always the same:
recipients that are valid E.164 numbers within the limits, or RecipientsFileError; nothing else."""

import csv
import io

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.recipients import Limits, RecipientsFileError, RecipientsFileTooLarge, RecipientsReader

from . import hostile_files

LIMITS = Limits(max_rows=300, max_columns=8, max_cell_chars=200, max_xlsx_bytes=2_000_000, max_xlsx_parts=50)
MAX_RECIPIENTS = 50
FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

EXAMPLE_NUMBERS = sorted(
    phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    for region in ("US", "GB", "DE", "IT", "FR", "BR", "IN", "JP", "AU", "NG")
    for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE)
    if (example := phonenumbers.example_number_for_type(region, kind)) is not None
)
phones = st.sampled_from(EXAMPLE_NUMBERS)
# What spreadsheets and people do to a number on its way into a file.
mangled_phones = phones.flatmap(
    lambda number: st.sampled_from(
        [
            number,
            f"'{number}",
            f'="{number}"',
            number[1:],
            "00" + number[1:],
            f"{number[:3]} {number[3:7]}-{number[7:]}",
            f"{float(number[1:]):.5E}",
            f" {number}\t",
        ]
    )
)
awkward = st.sampled_from(["", "'", '=""', '"', '""', "\x00", "\ufeff", "\r", "\n", "\r\n", ";", ",", "\t", "e", "1E5"])
any_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)
long_text = st.integers(min_value=150, max_value=400).map(lambda size: "x" * size)
cells = st.one_of(phones, mangled_phones, awkward, any_text, long_text)
headings = ["phone_number", "Phone", "name", "items", "system__x", "language", "", "a b"]
headers = st.one_of(
    st.just(["phone_number", "name", "language"]),
    st.lists(st.sampled_from(headings), max_size=7),
)


def check(reader: RecipientsReader) -> list:
    """Read everything; whatever comes out must be valid, within the limits and free of NULs."""
    try:
        recipients = list(reader)
    except RecipientsFileError as exc:
        message = str(exc)
        assert message and "\x00" not in message
        return []
    assert len(recipients) == reader.recipients_count <= MAX_RECIPIENTS
    assert reader.rows_read <= LIMITS.max_rows
    for recipient in recipients:
        number = phonenumbers.parse(recipient.phone_number, None)
        assert phonenumbers.is_valid_number(number)
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == recipient.phone_number
        for text in [*recipient.variables, *recipient.variables.values(), *recipient.overrides.values()]:
            assert "\x00" not in text
            assert len(text) <= LIMITS.max_cell_chars
    assert len(reader.errors) <= reader.error_count
    return recipients


def reader_of(data: bytes, filename: str = "recipients.csv", **kwargs) -> RecipientsReader:
    return RecipientsReader(io.BytesIO(data), filename=filename, max_recipients=MAX_RECIPIENTS, limits=LIMITS, **kwargs)


@FUZZ
@given(data=st.binary(max_size=3_000), filename=st.sampled_from(["list.csv", "list.xlsx", ""]))
def test_random_bytes_are_read_or_refused_with_a_sentence(data, filename):
    check(reader_of(data, filename))


@FUZZ
@given(
    header=headers,
    rows=st.lists(st.lists(cells, max_size=7), max_size=25),
    delimiter=st.sampled_from([",", ";", "\t"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]),
    line_end=st.sampled_from(["\n", "\r\n", "\r"]),
    default_country=st.sampled_from([None, "US", "GB"]),
)
def test_random_csv_files_are_read_or_refused_with_a_sentence(
    header, rows, delimiter, quoting, encoding, line_end, default_country
):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator=line_end)
    for row in [header, *rows]:
        writer.writerow(row)
    data = buffer.getvalue().encode(encoding, errors="replace")

    check(reader_of(data, default_country=default_country))


sheet_values = st.one_of(
    cells,
    st.integers(min_value=-(10**16), max_value=10**16),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)


@FUZZ
@given(header=headers, rows=st.lists(st.lists(sheet_values, max_size=7), max_size=25))
def test_random_spreadsheets_are_read_or_refused_with_a_sentence(header, rows):
    # The builder writes what XML allows; a NUL in a cell makes a sheet no parser accepts.
    data = hostile_files.workbook(hostile_files.sheet_xml([header, *rows]))

    check(reader_of(data, "list.xlsx", default_country="US"))


VALID_WORKBOOK = hostile_files.workbook(
    hostile_files.sheet_xml([["phone_number", "name"], *([number, "Ada"] for number in EXAMPLE_NUMBERS)])
)


@FUZZ
@given(
    changes=st.lists(
        st.tuples(st.integers(min_value=0, max_value=len(VALID_WORKBOOK) - 1), st.integers(0, 255)), max_size=8
    ),
    length=st.one_of(st.none(), st.integers(min_value=0, max_value=len(VALID_WORKBOOK))),
)
def test_damaged_workbooks_are_read_or_refused_with_a_sentence(changes, length):
    data = bytearray(VALID_WORKBOOK)
    for position, value in changes:
        data[position] = value
    check(reader_of(bytes(data[:length]), "list.xlsx"))


@pytest.mark.parametrize("case", hostile_files.HOSTILE, ids=lambda case: case.name)
def test_each_hostile_file_is_refused_by_the_reader(case, built):
    data = built(case)
    reader = RecipientsReader(io.BytesIO(data), filename=case.filename)

    try:
        list(reader)
    except RecipientsFileTooLarge as exc:
        status, message = 413, str(exc)
    except RecipientsFileError as exc:
        status, message = 422, str(exc)
    else:  # a file the reader takes, with rows the API then refuses
        status, message = 422, f"{reader.error_count} invalid rows"

    assert (status, case.message in message) == (case.status, True), message
