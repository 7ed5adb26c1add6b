"""Read an uploaded recipients file (CSV or .xlsx) into normalised recipients.

Pure Python and streaming: rows are read one at a time, so a large file never sits in memory as
one string and the caller can store recipients in chunks while the file is still being read.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import itertools
import math
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import openpyxl
import phonenumbers
from phonenumbers import NumberParseException, ValidationResult

OVERRIDE_COLUMNS = ("language", "first_message", "system_prompt", "voice_id")
MAX_REPORTED_ERRORS = 100

PHONE_COLUMN = "phone_number"
# Other names people give the phone column; phone_number itself wins when several are present.
PHONE_COLUMN_ALIASES = ("phone", "phonenumber", "number", "phone_no", "mobile", "telephone", "msisdn")

# What a column of the file becomes (Column.role).
ROLE_PHONE = "phone_number"
ROLE_VARIABLE = "variable"
ROLE_OVERRIDE = "override"
# ElevenLabs fills the variables with this prefix itself (system__time, system__caller_id, ...).
RESERVED_VARIABLE_PREFIX = "system__"

_OVERRIDES = frozenset(OVERRIDE_COLUMNS)
_PHONE_NAMES = frozenset((PHONE_COLUMN, *PHONE_COLUMN_ALIASES))
# Names read whatever their case; every other header is a variable whose name keeps its case.
_RECOGNISED_NAMES = _OVERRIDES | _PHONE_NAMES

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
_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "has an unknown country code",
    NumberParseException.NOT_A_NUMBER: "is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "is too short to be a phone number",
    NumberParseException.TOO_SHORT_NSN: "is too short to be a phone number",
    NumberParseException.TOO_LONG: "is too long to be a phone number",
}
_LENGTH_PROBLEMS = {ValidationResult.TOO_SHORT: "is too short", ValidationResult.TOO_LONG: "is too long"}


class RecipientsFileError(Exception):
    """The file as a whole cannot be used; str(error) is a sentence meant for the person who uploaded it."""


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


@dataclass(frozen=True, slots=True)
class Column:
    """One named column of the file and what it becomes for every call."""

    heading: str  # as the header row writes it, without outer spaces, BOM and quotes
    role: str  # ROLE_PHONE, ROLE_VARIABLE or ROLE_OVERRIDE
    # The variable's name exactly as the agent's prompt writes it ({{name}}), the override
    # (one of OVERRIDE_COLUMNS), or PHONE_COLUMN.
    name: str


@dataclass(frozen=True, slots=True)
class ParsedRecipient:
    """A recipient ready to store: its E.164 number and what the agent gets for it."""

    phone_number: str
    line: int
    variables: dict[str, str]
    overrides: dict[str, str]


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


_COUNTRY_CODES = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def _e164_number(value: str) -> phonenumbers.PhoneNumber | None:
    """The number of a value already written as E.164 (`+` and digits only), or None.

    Most files hold E.164 numbers; reading them needs none of parse()'s normalising, which
    costs as much as validating. Country codes are prefix-free, so the first 1 to 3 digits
    that form one are it. A national part starting with 0 is left to parse(), which knows
    when such a zero belongs to the number (Italy) and when it is a national prefix.
    """
    digits = value[1:]
    if not (7 <= len(digits) <= 15 and digits.isdigit() and digits.isascii()):
        return None
    for size in (1, 2, 3):
        if int(digits[:size]) in _COUNTRY_CODES:
            national = digits[size:]
            if national[0] == "0":
                return None
            return phonenumbers.PhoneNumber(country_code=int(digits[:size]), national_number=int(national))
    return None


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

    `columns` lists the variables and `layout` every named column with what it becomes; both
    are known once the first recipient is read. `check_columns`, when given, is called with
    `layout` before any recipient is read: whatever it raises refuses the file.
    """

    errors: list[RowError]
    error_count: int
    duplicates_merged: int
    columns: list[str]
    layout: list[Column]

    def __init__(
        self,
        fileobj: BinaryFile,
        *,
        filename: str = "",
        default_country: str | None = None,
        max_recipients: int = 100_000,
        check_columns: Callable[[list[Column]], object] | None = None,
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
        self._check_columns = check_columns
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
        self._seen: set[str] = set()
        # Set by the header (or by the first row when there is none).
        self._phone_index = 0
        self._width = 0
        self._variable_columns: list[tuple[int, str]] = []
        self._override_columns: list[tuple[int, str]] = []
        self._extra_cells_reason = ""
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
                seen = self._seen
                parse = phonenumbers.parse
                is_valid = phonenumbers.is_valid_number
                significant_number = phonenumbers.national_significant_number

                for cells in records:
                    line = rows.line_num + line_offset
                    size = len(cells)
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
                    if ("e" in value or "E" in value) and _SCIENTIFIC.fullmatch(value):
                        self._error(line, raw, _SCIENTIFIC_REASON)
                        continue
                    fast = _e164_number(value) if value[0] == "+" else None
                    if fast is not None and is_valid(fast):
                        e164 = value  # already exactly E.164
                    else:
                        try:
                            number = parse(value, region)
                        except NumberParseException as exc:
                            self._error(line, raw, self._parse_failure(value, exc))
                            continue
                        if not is_valid(number):
                            self._error(line, raw, self._invalid_reason(value, number))
                            continue
                        # Same result as format_number(number, E164), without its formatting machinery.
                        e164 = f"+{number.country_code}{significant_number(number)}"
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
                    # Positional arguments: noticeably cheaper than keywords once per row.
                    yield ParsedRecipient(e164, line, variables, overrides)
            except UnicodeDecodeError:
                raise RecipientsFileError(_NOT_TEXT_MESSAGE) from None
            except csv.Error as exc:
                raise RecipientsFileError(_csv_failure(exc, line)) from None

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
            skipped = 0
            first: str | None = None
            try:
                for line in text:
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
            lines = itertools.chain((first,), text)
            yield csv.reader(lines, delimiter=delimiter or _NO_DELIMITER), skipped
        finally:
            # Leave the caller's file open: closing the wrapper would close it too.
            text.detach()

    @contextlib.contextmanager
    def _open_sheet(self) -> Iterator[tuple[_SheetRows, int]]:
        """The rows of the first worksheet, as text."""
        try:
            with warnings.catch_warnings():
                # openpyxl warns about styles and extensions it ignores; they do not matter here.
                warnings.simplefilter("ignore")
                workbook = openpyxl.load_workbook(self._file, read_only=True, data_only=True)
        except Exception:  # a damaged zip or workbook fails in many different ways
            raise RecipientsFileError(_UNREADABLE_XLSX_MESSAGE) from None
        try:
            if not workbook.worksheets:
                raise RecipientsFileError("The spreadsheet has no worksheet with recipients in it.")
            yield _SheetRows(workbook.worksheets[0]), 0
        finally:
            workbook.close()

    def _read_header(self, cells: list[str]) -> bool:
        """Learn the columns from the first non-blank row; False when that row is already a recipient."""
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
            width = max(index for index, cell in enumerate(cells) if cell.strip()) + 1
            self._phone_index = 0
            self._width = width
            self._variable_columns = [(index, f"column_{index + 1}") for index in range(1, width)]
            self._extra_cells_reason = "has more cells than the first line of the file"
            self.columns = [name for _, name in self._variable_columns]
            self.layout = [
                Column("column_1", ROLE_PHONE, PHONE_COLUMN),
                *(Column(name, ROLE_VARIABLE, name) for name in self.columns),
            ]
            return False

        # "Language" and "language" are the same override twice; "Name" and "name" are two variables.
        keys = [fold if fold in _RECOGNISED_NAMES else name for name, fold in zip(names, folded, strict=True)]
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
            elif folded[index] in _OVERRIDES:
                self._override_columns.append((index, folded[index]))
                layout.append(Column(headings[index], ROLE_OVERRIDE, folded[index]))
            else:
                self._variable_columns.append((index, name))
                layout.append(Column(headings[index], ROLE_VARIABLE, name))
        self._extra_cells_reason = "has more cells than the header has columns"
        self.columns = [name for _, name in self._variable_columns]
        self.layout = layout
        return True

    # --- Row errors -----------------------------------------------------------------------

    def _error(self, line: int, value: str, reason: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
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


def _detect_delimiter(line: str) -> str | None:
    """The most frequent of , ; and tab outside quotes in the first line, or None for a single column."""
    if "e" in line or "E" in line:
        line = _COMMA_DECIMAL_SCIENTIFIC.sub("", line)
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(_DELIMITERS, key=counts.__getitem__)
    return best if counts[best] else None


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
    """The rows of a worksheet as lists of text, numbered like the spreadsheet numbers them."""

    def __init__(self, sheet: Any) -> None:
        # The stored dimensions are sometimes wrong and would cut the sheet short.
        sheet.reset_dimensions()
        self._values = sheet.iter_rows(values_only=True)
        self.line_num = 0
        # Number cells in this column follow the phone rules; the header sets it before row 2 is read.
        self.phone_index = 0

    def __iter__(self) -> _SheetRows:
        return self

    def __next__(self) -> list[str]:
        try:
            row = next(self._values)
        except StopIteration:
            raise
        except Exception:  # a damaged worksheet fails in many different ways
            raise RecipientsFileError(_UNREADABLE_XLSX_MESSAGE) from None
        # Missing rows come back empty, so counting rows gives the spreadsheet row number.
        self.line_num += 1
        cells = [_cell_text(value) for value in row]
        phone_index = self.phone_index
        if phone_index < len(row) and isinstance(row[phone_index], float):
            cells[phone_index] = _phone_float_text(row[phone_index])
        return cells


def _csv_failure(exc: csv.Error, last_line: int) -> str:
    # Blank lines are records too, so the record that failed starts right after the last one read.
    line = last_line + 1
    if "NUL" in str(exc):
        return _NOT_TEXT_MESSAGE
    if "field larger than field limit" in str(exc):
        return (
            f'Line {line:,} has a quote (") that opens a value which is never closed. '
            "Remove the stray quote or close it, and upload the file again."
        )
    return f"The file cannot be read as CSV from line {line:,}: {exc}."
