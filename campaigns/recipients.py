"""Read an uploaded recipients file (CSV or .xlsx) into normalised recipients.

Pure Python and streaming: rows are read one at a time, so a large file never sits in memory as
one string and the caller can store recipients in chunks while the file is still being read.
Every size the file could blow up (lines, columns, one cell, a workbook's inflated parts) has a
limit that is checked while reading, so time stays linear in the file and memory bounded.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, ValidationResult

from campaigns import xlsx
from campaigns.scheduling import zone_names
from campaigns.zones import zone_of_number

OVERRIDE_COLUMNS = ("language", "first_message", "system_prompt", "voice_id")
MAX_REPORTED_ERRORS = 100

PHONE_COLUMN = "phone_number"
# Other names people give the phone column; phone_number itself wins when several are present.
PHONE_COLUMN_ALIASES = ("phone", "phonenumber", "number", "phone_no", "mobile", "telephone", "msisdn")

# What a column of the file becomes (Column.role).
ROLE_PHONE = "phone_number"
ROLE_VARIABLE = "variable"
ROLE_OVERRIDE = "override"
ROLE_TIMEZONE = "timezone"
TIMEZONE_COLUMN = "timezone"
# ElevenLabs fills the variables with this prefix itself (system__time, system__caller_id, ...).
RESERVED_VARIABLE_PREFIX = "system__"

_OVERRIDES = frozenset(OVERRIDE_COLUMNS)
_PHONE_NAMES = frozenset((PHONE_COLUMN, *PHONE_COLUMN_ALIASES))
_TIMEZONE_NAMES = frozenset((TIMEZONE_COLUMN, "time_zone"))
# Names read whatever their case; every other header is a variable whose name keeps its case.
_RECOGNISED_NAMES = _OVERRIDES | _PHONE_NAMES | _TIMEZONE_NAMES

_SNIFF_BYTES = 4096
_MAX_VALUE_CHARS = 80
_MIN_PHONE_DIGITS = 5
# Ties go to the earlier candidate: commas also turn up inside names and decimal numbers.
_DELIMITERS = ("\t", ";", ",")
# csv needs some delimiter; this control character does not occur in real recipient lists.
_NO_DELIMITER = "\x1f"
_BLANK_LINE_CHARS = ' \t\r\n\x0b\x0c\xa0\ufeff,;"'
# Excel stores at most 15 significant digits, so larger floats have already lost some.
_EXACT_FLOAT_LIMIT = 1e15

_HEADER_SEPARATORS = re.compile(r"[\s.\-]+")
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d*)?[eE][+-]?\d+")
# "1,41555E+10" (European decimal comma) must not make the comma look like the delimiter.
_COMMA_DECIMAL_SCIENTIFIC = re.compile(r"\d,\d+[eE][+-]?\d+")
_PHONE_CHARACTERS = re.compile(r"[\d\s+\-().]+")
_FORMATTED_NUMBER = re.compile(r"\+[0-9 ().\-]+")
_NOT_DIGITS = re.compile(r"[^0-9]")

_SCIENTIFIC_REASON = (
    "was converted to scientific notation by a spreadsheet, so digits are lost; "
    "format the column as text and export again"
)
_NO_COUNTRY_CODE_REASON = (
    "has no country code: write it as +<country code><number>, or give a default country (default_country)"
)
_COUNTRY_CODE_HINT = "use a two-letter ISO 3166 country code such as US or GB"
_LIMIT_HINT = "the most one campaign can hold. Split it into several campaigns."
_HEADER_ONLY_MESSAGE = "The file has no recipients: it has a header row but no phone numbers below it."
_UNREADABLE_XLSX_MESSAGE = (
    "The file is not a readable .xlsx spreadsheet: it is damaged or another kind of file. "
    'Open it in Excel and save it as .xlsx or as "CSV UTF-8", and upload it again.'
)
_NOT_TEXT_MESSAGE = (
    "The file is not UTF-8 text, so it is neither a CSV file nor a spreadsheet this service can read. "
    'Export it from your spreadsheet as "CSV UTF-8" or save it as .xlsx, and upload it again.'
)
_NUL_MESSAGE = (
    "Line {line:,} contains a NUL character (a zero byte), which no text file holds: the file is damaged "
    'or is not CSV text. Export it again as "CSV UTF-8" or save it as .xlsx, and upload it again.'
)
_UNCLOSED_QUOTE_MESSAGE = (
    'Line {line:,} has a quote (") that opens a value which is never closed. '
    "Remove the stray quote or close it, and upload the file again."
)
_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "has an unknown country code",
    NumberParseException.NOT_A_NUMBER: "is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "is too short to be a phone number",
    NumberParseException.TOO_SHORT_NSN: "is too short to be a phone number",
    NumberParseException.TOO_LONG: "is too long to be a phone number",
}
_UNKNOWN_ZONE_REASON = "is not a time zone: write an IANA name such as America/New_York, or leave the cell empty"
_LENGTH_PROBLEMS = {ValidationResult.TOO_SHORT: "is too short", ValidationResult.TOO_LONG: "is too long"}


class RecipientsFileError(Exception):
    """The file as a whole cannot be used; str(error) is a sentence meant for the person who uploaded it."""


class RecipientsFileTooLarge(RecipientsFileError):
    """The file goes past one of the size limits (lines, a workbook's inflated size, ...)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """How much of a file the reader will read; each is checked while reading, not after."""

    max_rows: int = 200_000  # lines of a CSV file, rows of a sheet, blank ones included
    max_columns: int = 200
    max_cell_chars: int = 10_000
    # The inflated parts of an .xlsx file together, and the text its cells may hold.
    max_xlsx_bytes: int = 100 * 1_048_576
    max_xlsx_parts: int = 1_000
    max_shared_strings: int = 500_000

    @property
    def max_line_chars(self) -> int:
        # The longest line max_columns quoted cells of max_cell_chars can make.
        return self.max_columns * (self.max_cell_chars + 3)


@dataclass(frozen=True, slots=True)
class RowError:
    """One unusable row: where it is, what it holds and why it cannot be called."""

    line: int
    value: str
    reason: str

    def __str__(self) -> str:
        return f"Line {self.line}: '{self.value}' {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "value": self.value, "reason": self.reason}


def lacks_country_code(error: RowError | str) -> bool:
    """Whether a row error (or its text, as the services list it) is a number refused only for
    want of a country code, which a default country fixes without touching the file."""
    text = error.reason if isinstance(error, RowError) else error
    return text.endswith(_NO_COUNTRY_CODE_REASON)


@dataclass(frozen=True, slots=True)
class Column:
    """One named column of the file and what it becomes for every call."""

    heading: str  # as the header row writes it, without outer spaces, BOM and quotes
    role: str  # ROLE_PHONE, ROLE_VARIABLE, ROLE_OVERRIDE or ROLE_TIMEZONE
    # The variable's name exactly as the agent's prompt writes it ({{name}}), the override
    # (one of OVERRIDE_COLUMNS), PHONE_COLUMN or TIMEZONE_COLUMN.
    name: str


@dataclass(frozen=True, slots=True)
class ParsedRecipient:
    """A recipient ready to store: its E.164 number and what the agent gets for it."""

    phone_number: str
    line: int
    variables: dict[str, str]
    overrides: dict[str, str]
    # The IANA zone its calling hours are read in: the file's timezone column, else the number's
    # own zone, else (an area with several clocks) the reader's default_timezone.
    timezone: str


class BinaryFile(Protocol):
    """What the reader needs of an upload; Django's UploadedFile and io.BytesIO both qualify."""

    @property
    def closed(self) -> bool: ...

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def readable(self) -> bool: ...

    def seekable(self) -> bool: ...


class _Rows(Protocol):
    """Rows of cells that count the line they have reached, like csv.reader does."""

    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...


# Country calling codes by their digits; they are prefix-free, so the first 1 to 3 digits of an
# E.164 number that form one are its country code.
_COUNTRY_CODES = {str(code): code for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}
# The number types phonenumbers tells apart; a number is valid when it is any of them.
_NUMBER_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)


def _matcher(patterns: list[str]) -> Callable[[str], object] | None:
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns)).fullmatch if patterns else None


def _region_check(metadata: Any) -> Callable[[str], bool]:
    """is_valid_number_for_region's test for one region's metadata, compiled into few regexes.

    phonenumbers tries the general pattern, then each number type's pattern in turn, through a
    dozen function calls: most of a file's reading time. Any type matching is all validity
    needs, so the types allowed at each length become one alternation.
    """
    general = metadata.general_desc
    if general is None or not general.national_number_pattern:
        return lambda national: False
    general_lengths = frozenset(general.possible_length)
    general_match = re.compile(general.national_number_pattern).fullmatch
    types = []
    for name in _NUMBER_TYPES:
        if name == "mobile" and metadata.same_mobile_and_fixed_line_pattern:
            continue  # phonenumbers does not test the mobile pattern then
        desc = getattr(metadata, name)
        if desc is not None and desc.national_number_pattern:
            types.append((frozenset(desc.possible_length), desc.national_number_pattern))
    # A type without possible lengths is tested at any length.
    lengths = general_lengths.union(*(type_lengths for type_lengths, _ in types))
    by_length = {
        length: _matcher([pattern for type_lengths, pattern in types if not type_lengths or length in type_lengths])
        for length in lengths
    }
    any_length = _matcher([pattern for type_lengths, pattern in types if not type_lengths])

    def check(national: str) -> bool:
        size = len(national)
        if general_lengths and size not in general_lengths:
            return False
        if general_match(national) is None:
            return False
        match = by_length.get(size, any_length)
        return match is not None and match(national) is not None

    return check


_CHECKS: dict[int, Any] = {}


def _country_check(country_code: int) -> Any:
    """One check for a single-region code, or (leading digits, check) per region sharing it."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if not regions:
        return None
    if len(regions) == 1:
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, regions[0].upper())
        return _region_check(metadata) if metadata is not None else None
    checks = []
    for region in regions:
        metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
        if metadata is not None:
            leading = re.compile(metadata.leading_digits).match if metadata.leading_digits is not None else None
            checks.append((leading, _region_check(metadata)))
    return tuple(checks)


def _is_valid(country_code: int, national: str) -> bool:
    """phonenumbers.is_valid_number for a country code and national significant number.

    The same decision from the same metadata (the tests compare the two on every region's
    example numbers): the region is the one whose leading digits match or, failing that, the
    first whose patterns accept the number, as in region_code_for_number.
    """
    check = _CHECKS.get(country_code)
    if check is None:
        check = _CHECKS[country_code] = _country_check(country_code) or ()
    if type(check) is not tuple:
        return check(national)
    for leading, region_check in check:
        if leading is not None:
            if leading(national):
                return region_check(national)
        elif region_check(national):
            return True
    return False


def _has_plus(value: str) -> bool:
    return "+" in value or "\uff0b" in value  # phonenumbers also reads the full-width plus


def _formatted_e164(value: str) -> str | None:
    """The E.164 form of `+` and digits with only spaces, dashes, dots and brackets between them,
    when that is a valid number; parse() reads such a value as its digits, much more slowly."""
    if not _FORMATTED_NUMBER.fullmatch(value):
        return None
    e164 = "+" + _NOT_DIGITS.sub("", value)
    return e164 if _is_valid_e164(e164) else None


def _is_valid_e164(value: str) -> bool:
    """Whether `value` is a valid number already written exactly as E.164 (`+` and digits only).

    Most files hold E.164 numbers; reading them needs none of parse()'s normalising, which
    costs as much as validating. A national part starting with 0 is left to parse(), which
    knows when such a zero belongs to the number (Italy) and when it is a national prefix.
    """
    digits = value[1:]
    if not (7 <= len(digits) <= 15 and digits.isdigit() and digits.isascii()):
        return False
    for size in (1, 2, 3):
        code = _COUNTRY_CODES.get(digits[:size])
        if code is not None:
            national = digits[size:]
            return national[0] != "0" and _is_valid(code, national)
    return False


class RecipientsReader:
    """Stream the recipients of an uploaded CSV or .xlsx file, one valid and distinct number at a time.

    Iterating yields a ParsedRecipient for the first row of each distinct valid number, in file
    order. Rows that cannot be used are collected in `errors` (the first MAX_REPORTED_ERRORS) and
    counted in `error_count`; repeated numbers are counted in `duplicates_merged`. A problem with
    the file as a whole raises RecipientsFileError as soon as it is found. The counters are final
    once iteration ends.

    CSV files are UTF-8 (with or without BOM), separated by commas, semicolons or tabs, with or
    without a header row. With a header, the phone_number column holds the number, the columns
    named in OVERRIDE_COLUMNS are per-call overrides (both recognised whatever their case) and
    every other column is a variable named as its header is written, case included: ElevenLabs
    variable names are case-sensitive. Without one, the first column holds the number. A number
    without a country code is read in `default_country` when one is given and refused otherwise:
    its country is never guessed.

    A `timezone` column (IANA names, whatever the header's case) gives a row's time zone; a row
    without one gets its number's zone (campaigns.zones), or `default_timezone` when the number's
    area keeps several clocks; `time_zones` counts the recipients per zone and `zones_defaulted`
    those that got `default_timezone` because their number could not say. An unknown zone in the
    column is a row error.

    `columns` lists the variables and `layout` every named column with what it becomes; both
    are known once the first recipient is read. `check_columns`, when given, is called with
    `layout` before any recipient is read: whatever it raises refuses the file.

    `limits` bounds what is read; going past one raises RecipientsFileTooLarge for sizes (lines,
    a workbook's parts) and RecipientsFileError for shapes (too many columns, a value too long).
    """

    errors: list[RowError]
    error_count: int
    duplicates_merged: int
    columns: list[str]
    layout: list[Column]
    time_zones: Counter
    zones_defaulted: int

    def __init__(
        self,
        fileobj: BinaryFile,
        *,
        filename: str = "",
        default_country: str | None = None,
        max_recipients: int = 100_000,
        limits: Limits | None = None,
        check_columns: Callable[[list[Column]], object] | None = None,
        default_timezone: str = "UTC",
    ) -> None:
        region = (default_country or "").strip().upper() or None
        if region == "UK":  # ISO 3166 reserves UK for the United Kingdom, whose code is GB
            region = "GB"
        if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"Unknown default_country '{default_country}': {_COUNTRY_CODE_HINT}")
        self._file = fileobj
        self._filename = filename
        self._region = region
        self._max_recipients = max_recipients
        self._limits = limits or Limits()
        self._check_columns = check_columns
        self._default_timezone = default_timezone
        self._reset()

    @property
    def recipients_count(self) -> int:
        return len(self._seen)

    @property
    def rows_read(self) -> int:
        # Every non-blank data row ends up as exactly one of these three.
        return len(self._seen) + self.duplicates_merged + self.error_count

    def _reset(self) -> None:
        self.errors = []
        self.error_count = 0
        self.duplicates_merged = 0
        self.columns = []
        self.layout = []
        self.time_zones = Counter()
        self.zones_defaulted = 0
        self._seen: set[str] = set()
        # Set by the header (or by the first row when there is none).
        self._phone_index = 0
        self._width = 0
        self._variable_columns: list[tuple[int, str]] = []
        self._override_columns: list[tuple[int, str]] = []
        self._timezone_index: int | None = None
        self._extra_cells_reason = ""
        self._column_names: list[str] = []
        self._joiner = ","
        self._lines_seen = False

    def __iter__(self) -> Iterator[ParsedRecipient]:
        self._reset()
        opened = self._open_sheet() if self._is_spreadsheet() else self._open_text()
        # The loop reads the row source directly: at 100,000 rows every layer in between shows.
        with opened as (rows, line_offset):
            line = line_offset
            try:
                for cells in rows:
                    line = rows.line_num + line_offset
                    if not _is_blank(cells):
                        break
                else:
                    if not self._lines_seen and rows.line_num == 0:
                        raise RecipientsFileError("The file has no recipients: it is empty.")
                    raise RecipientsFileError("The file has no recipients: it has only blank lines.")
                has_header = self._read_header(cells)
                if self._check_columns is not None:
                    self._check_columns(self.layout)
                # chain() pulls the next row only after the first is used, so rows.line_num stays right.
                records = rows if has_header else itertools.chain((cells,), rows)
                if isinstance(rows, _SheetRows):
                    rows.phone_index = self._phone_index

                phone_index = self._phone_index
                width = self._width
                variable_columns = self._variable_columns
                override_columns = self._override_columns
                region = self._region
                max_recipients = self._max_recipients
                max_cell_chars = self._limits.max_cell_chars
                seen = self._seen
                timezone_index = self._timezone_index
                default_timezone = self._default_timezone
                time_zones = self.time_zones
                known_zones = zone_names()
                parse = phonenumbers.parse
                significant_number = phonenumbers.national_significant_number

                for cells in records:
                    line = rows.line_num + line_offset
                    size = len(cells)
                    if size and max(map(len, cells)) > max_cell_chars:
                        self._refuse_long_value(line, cells)
                    raw = cells[phone_index].strip() if size > phone_index else ""
                    if not raw:
                        if not _is_blank(cells):
                            self._error(line, self._joiner.join(cells).strip(), "has no phone number")
                        continue
                    if size != width:
                        if size > width and not _is_blank(cells[width:]):
                            self._error(line, self._joiner.join(cells).strip(), self._extra_cells_reason)
                            continue
                        cells = [*cells, *[""] * (width - size)]  # missing trailing cells are empty

                    value = _clean_phone(raw) if raw[0] in "'=0" else raw
                    if not value:  # only the quoting a spreadsheet puts around text: ' or =""
                        self._error(line, raw, "has no phone number")
                        continue
                    if ("e" in value or "E" in value) and _SCIENTIFIC.fullmatch(value):
                        self._error(line, raw, _SCIENTIFIC_REASON)
                        continue
                    if value[0] == "+" and _is_valid_e164(value):
                        e164 = value  # already exactly E.164
                    elif value[0] == "+" and (e164 := _formatted_e164(value)):
                        pass
                    elif region is None and self.error_count >= MAX_REPORTED_ERRORS and not _has_plus(value):
                        # Without a default country, parse() refuses a number with no +; past the
                        # errors that are listed, only the count is left to keep.
                        self.error_count += 1
                        continue
                    else:
                        try:
                            number = parse(value, region)
                        except NumberParseException as exc:
                            self._error(line, raw, self._parse_failure, value, exc)
                            continue
                        national = significant_number(number)
                        if not _is_valid(number.country_code, national):
                            self._error(line, raw, self._invalid_reason, value, number)
                            continue
                        # Same result as format_number(number, E164), without its formatting machinery.
                        e164 = f"+{number.country_code}{national}"
                    zone = cells[timezone_index].strip() if timezone_index is not None else ""
                    if zone and zone not in known_zones:
                        self._error(line, zone, _UNKNOWN_ZONE_REASON)
                        continue
                    if e164 in seen:
                        self.duplicates_merged += 1
                        continue
                    if len(seen) >= max_recipients:
                        raise RecipientsFileError(
                            f"The file has more than {max_recipients:,} recipients, {_LIMIT_HINT}"
                        )
                    seen.add(e164)

                    variables = {name: cells[index].strip() for index, name in variable_columns}
                    overrides = {}
                    for index, name in override_columns:
                        if override := cells[index].strip():
                            overrides[name] = override
                    if not zone:
                        zone = zone_of_number(e164)
                        if zone is None:
                            zone = default_timezone
                            self.zones_defaulted += 1
                    time_zones[zone] += 1
                    # Positional arguments: noticeably cheaper than keywords once per row.
                    yield ParsedRecipient(e164, line, variables, overrides, zone)
            except UnicodeDecodeError:
                raise RecipientsFileError(_NOT_TEXT_MESSAGE) from None
            except csv.Error as exc:
                raise RecipientsFileError(self._csv_failure(exc, line, rows.line_num + line_offset)) from None

        if self.rows_read == 0:
            raise RecipientsFileError(_HEADER_ONLY_MESSAGE)

    # --- The kind of file ---------------------------------------------------------------

    def _is_spreadsheet(self) -> bool:
        self._file.seek(0)
        head = self._file.read(_SNIFF_BYTES)
        self._file.seek(0)
        if head.startswith(b"\xd0\xcf\x11\xe0"):
            raise RecipientsFileError(
                "The file is an old-style Excel .xls workbook (or a password-protected one), which "
                'cannot be read. Open it in Excel and save it as .xlsx or as "CSV UTF-8", without a '
                "password."
            )
        if head.startswith(b"PK\x03\x04") or self._filename.lower().endswith(".xlsx"):
            return True
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise RecipientsFileError(
                'The file is UTF-16 text ("Unicode Text" in Excel), not UTF-8. Export it as "CSV UTF-8" '
                "or save it as .xlsx, and upload it again."
            )
        if b"\x00" in head:
            raise RecipientsFileError(_NOT_TEXT_MESSAGE)
        return False

    @contextlib.contextmanager
    def _open_text(self) -> Iterator[tuple[_Rows, int]]:
        """A csv reader over the file, and how many blank lines came before the ones it counts."""
        # newline="" lets csv see the line breaks inside quoted fields.
        text = io.TextIOWrapper(self._file, encoding="utf-8-sig", newline="")  # type: ignore[arg-type]
        try:
            lines = _checked_lines(text, self._limits)
            skipped = 0
            first: str | None = None
            try:
                for line in lines:
                    self._lines_seen = True
                    if line.strip(_BLANK_LINE_CHARS):
                        first = line
                        break
                    skipped += 1
            except UnicodeDecodeError:
                raise RecipientsFileError(_NOT_TEXT_MESSAGE) from None
            if first is None:
                yield csv.reader(()), skipped
                return
            # The delimiter is the one the first line uses; with none, every line is a single cell.
            delimiter = _detect_delimiter(first)
            self._joiner = delimiter or ","
            yield csv.reader(itertools.chain((first,), lines), delimiter=delimiter or _NO_DELIMITER), skipped
        finally:
            # Leave the caller's file open: closing the wrapper would close it too.
            text.detach()

    @contextlib.contextmanager
    def _open_sheet(self) -> Iterator[tuple[_SheetRows, int]]:
        """The rows of the first worksheet, as text."""
        limits = self._limits
        workbook_limits = xlsx.WorkbookLimits(
            max_bytes=limits.max_xlsx_bytes,
            max_rows=limits.max_rows,
            max_columns=limits.max_columns,
            max_cell_chars=limits.max_cell_chars,
            max_parts=limits.max_xlsx_parts,
            max_shared_strings=limits.max_shared_strings,
        )
        # The sheet is read while the caller iterates, so its errors surface at this yield too.
        try:
            with xlsx.first_sheet(self._file, workbook_limits) as sheet:
                yield _SheetRows(sheet), 0
        except xlsx.UnreadableWorkbook:
            raise RecipientsFileError(_UNREADABLE_XLSX_MESSAGE) from None
        except xlsx.WorkbookTooLarge as exc:
            raise RecipientsFileTooLarge(str(exc)) from None
        except xlsx.WorkbookRefused as exc:
            raise RecipientsFileError(str(exc)) from None

    def _read_header(self, cells: list[str]) -> bool:
        """Learn the columns from the first non-blank row; False when that row is already a recipient."""
        width = _last_filled(cells) + 1
        max_columns = self._limits.max_columns
        if width > max_columns:
            raise RecipientsFileError(
                f"The file has {width:,} columns; at most {max_columns:,} are read. Remove the columns the "
                "agent does not need, and upload the file again."
            )
        # Empty cells after the last heading only matter up to the column limit.
        cells = cells[: max(width, min(len(cells), max_columns))]
        headings = [_heading(cell) for cell in cells]
        names = [_variable_name(heading) for heading in headings]
        folded = [name.lower() for name in names]
        phone_index = _phone_column(folded)
        if phone_index is None:
            if not _looks_like_phone(cells[0]):
                found = ", ".join(f"'{_shorten(cell.strip(), 40)}'" for cell in cells[:10] if cell.strip())
                raise RecipientsFileError(
                    f"The file has no phone_number column. Its first row has: {found}. Add a header row "
                    "with a column named phone_number, or upload a file with one phone number per line."
                )
            # No header: one number per line, any further columns numbered like a spreadsheet's.
            self._phone_index = 0
            self._width = width
            self._variable_columns = [(index, f"column_{index + 1}") for index in range(1, width)]
            self._extra_cells_reason = "has more cells than the first line of the file"
            self._column_names = [f"column_{index + 1}" for index in range(width)]
            self.columns = [name for _, name in self._variable_columns]
            self.layout = [
                Column("column_1", ROLE_PHONE, PHONE_COLUMN),
                *(Column(name, ROLE_VARIABLE, name) for name in self.columns),
            ]
            return False

        # "Language" and "language" are the same override twice; "Name" and "name" are two variables.
        keys = [
            (TIMEZONE_COLUMN if fold in _TIMEZONE_NAMES else fold) if fold in _RECOGNISED_NAMES else name
            for name, fold in zip(names, folded, strict=True)
        ]
        counts = Counter(key for key in keys if key)
        repeated = sorted(key for key, count in counts.items() if count > 1)
        if repeated:
            listed = ", ".join(f"'{name}'" for name in repeated)
            raise RecipientsFileError(
                f"The header names the column{'s' if len(repeated) > 1 else ''} {listed} more than once "
                "(after reading spaces, dashes and dots as underscores). Give every column a different name."
            )
        reserved = [headings[index] for index, fold in enumerate(folded) if fold.startswith(RESERVED_VARIABLE_PREFIX)]
        if reserved:
            listed = ", ".join(f"'{_shorten(heading, 40)}'" for heading in reserved)
            several = len(reserved) > 1
            raise RecipientsFileError(
                f"The column{'s' if several else ''} {listed} cannot be used: ElevenLabs reserves names "
                f"starting with {RESERVED_VARIABLE_PREFIX} for its system variables. "
                f"Rename {'them' if several else 'it'} and upload the file again."
            )
        self._phone_index = phone_index
        self._width = len(names)
        # A column without a header name has nothing to be called by, so its cells are ignored.
        self._variable_columns = []
        self._override_columns = []
        layout = []
        for index, name in enumerate(names):
            if not name:
                continue
            if index == phone_index:
                layout.append(Column(headings[index], ROLE_PHONE, PHONE_COLUMN))
            elif folded[index] in _TIMEZONE_NAMES:
                self._timezone_index = index
                layout.append(Column(headings[index], ROLE_TIMEZONE, TIMEZONE_COLUMN))
            elif folded[index] in _OVERRIDES:
                self._override_columns.append((index, folded[index]))
                layout.append(Column(headings[index], ROLE_OVERRIDE, folded[index]))
            else:
                self._variable_columns.append((index, name))
                layout.append(Column(headings[index], ROLE_VARIABLE, name))
        self._extra_cells_reason = "has more cells than the header has columns"
        self._column_names = [heading or f"column_{index + 1}" for index, heading in enumerate(headings)]
        self.columns = [name for _, name in self._variable_columns]
        self.layout = layout
        return True

    # --- Row errors -----------------------------------------------------------------------

    def _refuse_long_value(self, line: int, cells: list[str]) -> None:
        limit = self._limits.max_cell_chars
        index = next(index for index, cell in enumerate(cells) if len(cell) > limit)
        names = self._column_names
        column = names[index] if index < len(names) else f"column_{index + 1}"
        raise RecipientsFileError(xlsx.long_value_message(line, column, limit))

    def _csv_failure(self, exc: csv.Error, last_line: int, reached_line: int) -> str:
        # Blank lines are records too, so the record that failed starts right after the last one read.
        line = last_line + 1
        if "field larger than field limit" in str(exc):
            if reached_line <= line:
                # csv stops at 131,072 characters; a value that long on one line is simply long.
                return xlsx.long_value_message(line, None, self._limits.max_cell_chars)
            return _UNCLOSED_QUOTE_MESSAGE.format(line=line)
        return f"The file cannot be read as CSV from line {line:,}: {exc}."

    def _error(self, line: int, value: str, reason: str | Callable[..., str], *arguments: object) -> None:
        """Count a row error; its reason (or the function that words it) only matters while it is listed."""
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            if callable(reason):
                reason = reason(*arguments)
            self.errors.append(RowError(line=line, value=_shorten(value), reason=reason))

    def _parse_failure(self, value: str, exc: NumberParseException) -> str:
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE and "+" not in value:
            # phonenumbers finds digits inside any text; only something number-like lacks a country code.
            if sum(char.isdigit() for char in value) < _MIN_PHONE_DIGITS:
                return "is not a phone number"
            return _NO_COUNTRY_CODE_REASON
        return _PARSE_REASONS.get(exc.error_type, "is not a phone number")

    def _invalid_reason(self, value: str, number: phonenumbers.PhoneNumber) -> str:
        if self._region is not None and "+" not in value:
            where = f"for {self._region}"
        else:
            regions = phonenumbers.region_codes_for_country_code(number.country_code)
            if len(regions) == 1 and regions[0] != phonenumbers.UNKNOWN_REGION:
                where = f"for {regions[0]} (+{number.country_code})"
            else:
                where = f"for country code +{number.country_code}"
        problem = _LENGTH_PROBLEMS.get(phonenumbers.is_possible_number_with_reason(number))
        if problem:
            return f"{problem} to be a valid phone number {where}"
        return f"is not a valid phone number {where}"


# --- Helpers ---------------------------------------------------------------------------------


def _checked_lines(text: io.TextIOWrapper, limits: Limits) -> Iterator[str]:
    """The file's physical lines, refusing too many, one too long, or a NUL character.

    Lines are read with a length cap, so a file that is one enormous line never sits in memory
    whole, and csv never sees a line longer than the columns and cell limits allow.
    """
    max_chars = limits.max_line_chars
    max_rows = limits.max_rows
    number = 0
    while line := text.readline(max_chars + 1):
        number += 1
        if number > max_rows:
            raise RecipientsFileTooLarge(
                f"The file has more than {max_rows:,} lines (blank lines included); at most {max_rows:,} are "
                "read. Split it into several campaigns."
            )
        if len(line) > max_chars:
            raise RecipientsFileError(
                f"Line {number:,} is longer than {max_chars:,} characters, more than {limits.max_columns:,} "
                f"columns of at most {limits.max_cell_chars:,} characters can hold. Remove the columns the agent "
                "does not need or shorten the values, and upload the file again."
            )
        if "\x00" in line:
            raise RecipientsFileError(_NUL_MESSAGE.format(line=number))
        yield line


def _detect_delimiter(line: str) -> str | None:
    """The most frequent of , ; and tab outside quotes in the first line, or None for a single column."""
    if "e" in line or "E" in line:
        line = _COMMA_DECIMAL_SCIENTIFIC.sub("", line)
    # Every quote opens or closes a quoted stretch: the even pieces are outside quotes.
    outside = line.split('"')[::2]
    counts = {delimiter: sum(piece.count(delimiter) for piece in outside) for delimiter in _DELIMITERS}
    best = max(_DELIMITERS, key=counts.__getitem__)
    return best if counts[best] else None


def _last_filled(cells: Sequence[str]) -> int:
    """The index of the last cell with something in it, -1 when there is none."""
    for index in range(len(cells) - 1, -1, -1):
        if cells[index].strip():
            return index
    return -1


def _heading(cell: str) -> str:
    """A header cell as written, without the spaces, BOM and quotes spreadsheets leave around it."""
    return cell.strip().strip("\ufeff\"'").strip()


def _variable_name(heading: str) -> str:
    """The name a column's values reach the agent under: spaces, dashes and dots read as underscores."""
    return _HEADER_SEPARATORS.sub("_", heading).strip("_")


def _phone_column(folded_names: Sequence[str]) -> int | None:
    if PHONE_COLUMN in folded_names:
        return folded_names.index(PHONE_COLUMN)
    return next((index for index, name in enumerate(folded_names) if name in _PHONE_NAMES), None)


def _clean_phone(value: str) -> str:
    """Undo what spreadsheets do to keep a number as text; `value` is already stripped."""
    if value[:1] == "'":  # Excel's "this is text" prefix
        value = value[1:].lstrip()
    if value[:2] == '="' and value[-1:] == '"':  # ="+1415..." keeps Excel from converting the cell
        value = value[2:-1].strip()
    if value[:2] == "00":  # the international call prefix used in most of the world
        value = "+" + value[2:]
    return value


def _looks_like_phone(cell: str) -> bool:
    value = _clean_phone(cell.strip())
    if _SCIENTIFIC.fullmatch(value):
        return True
    if not _PHONE_CHARACTERS.fullmatch(value):
        return False
    return sum(char.isdigit() for char in value) >= _MIN_PHONE_DIGITS


def _is_blank(cells: Sequence[str]) -> bool:
    return not any(cell.strip() for cell in cells)


def _shorten(text: str, limit: int = _MAX_VALUE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell_text(value: object) -> str:
    """A spreadsheet cell as the text a person would type for it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, dt.datetime) and value.time() == dt.time(0) and value.tzinfo is None:
        # Excel has no separate date type: a date cell comes back as a datetime at midnight.
        return value.date().isoformat()
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def _phone_float_text(value: float) -> str:
    """A number cell in the phone column: whole numbers Excel stores exactly are kept as digits.

    Anything else (a fraction, or more than the 15 digits Excel keeps) is written in scientific
    notation, as Excel shows it, so it is reported as mangled rather than guessed.
    """
    if value.is_integer() and abs(value) < _EXACT_FLOAT_LIMIT:
        return str(int(value))
    if not math.isfinite(value):
        return str(value)
    mantissa, exponent = f"{value:.14E}".split("E")
    return f"{mantissa.rstrip('0').rstrip('.')}E{exponent}"


class _SheetRows:
    """The non-empty rows of a worksheet as lists of text, numbered like the spreadsheet numbers them."""

    def __init__(self, sheet: xlsx.SheetRows) -> None:
        self._sheet = sheet
        self.line_num = 0
        # Number cells in this column follow the phone rules; the header sets it before row 2 is read.
        self.phone_index = 0

    def __iter__(self) -> _SheetRows:
        return self

    def __next__(self) -> list[str]:
        row = next(self._sheet)
        self.line_num = self._sheet.line_num
        cells = [value if type(value) is str else _cell_text(value) for value in row]
        phone_index = self.phone_index
        if phone_index < len(row) and isinstance(row[phone_index], float):
            cells[phone_index] = _phone_float_text(row[phone_index])
        return cells
