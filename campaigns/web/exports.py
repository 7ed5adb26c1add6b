"""A campaign's recipients and call outcomes as CSV, safe to open in a spreadsheet."""

import csv
import datetime as dt
import re
from collections.abc import Iterable, Iterator

# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# An E.164 number starts with + but is never a formula; it stays readable and dialable.
_E164 = re.compile(r"\+\d{6,15}")


def cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def cell_safe(value) -> str:
    """The cell as text, with a leading ' when a spreadsheet would run it as a formula."""
    text = cell_text(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def phone_cell_safe(value) -> str:
    text = cell_text(value)
    return text if _E164.fullmatch(text) else cell_safe(text)


class _Echo:
    """A file-like object whose write() hands the line back, for csv.writer to stream through."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: list[str], rows: Iterable[list], *, phone_column: int = 0) -> Iterator[str]:
    writer = csv.writer(_Echo())
    # The BOM makes Excel read the file as UTF-8 rather than the system's legacy encoding.
    yield "\ufeff" + writer.writerow([cell_safe(name) for name in header])
    for row in rows:
        yield writer.writerow(
            [phone_cell_safe(value) if index == phone_column else cell_safe(value) for index, value in enumerate(row)]
        )
