"""A campaign's recipients and call outcomes as CSV or .xlsx, safe to open in a spreadsheet."""

import csv
import datetime as dt
import functools
import re
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO

import xlsxwriter
from django.http import FileResponse, Http404
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_safe

from campaigns import selectors
from campaigns.errors import NotFound

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


# --- .xlsx ---------------------------------------------------------------------------------

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Written as numbers, for a spreadsheet to add up. Every other cell is a text cell, so a phone
# number keeps its + and a code its leading zeros, and no cell is ever run as a formula.
_NUMBER_COLUMNS = frozenset({"line", "attempts", "duration_secs"})
_XLSX_MAX_CHARS = 32_767  # the most a cell holds
_XLSX_WIDTHS = {"phone_number": 16, "status": 12, "summary": 60, "conversation_id": 24, "status_updated_at": 21}
# What a file name cannot hold on one system or another.
_UNSAFE_IN_FILENAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


def xlsx_file(header: list[str], rows: Iterable[list]) -> IO[bytes]:
    """The rows as an .xlsx workbook in an anonymous temporary file, positioned at its start.

    XlsxWriter's constant_memory mode writes each row to disk as it comes, so memory stays flat
    whatever the number of rows; the file is deleted when closed.
    """
    out = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the response, which closes it
    try:
        _xlsx_write(out, header, rows)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def _xlsx_write(out: IO[bytes], header: list[str], rows: Iterable[list]) -> None:
    workbook = xlsxwriter.Workbook(out, {"constant_memory": True})
    sheet = workbook.add_worksheet("Recipients")
    for column, name in enumerate(header):
        if name in _XLSX_WIDTHS:
            sheet.set_column(column, column, _XLSX_WIDTHS[name])
        _xlsx_text(sheet, 0, column, name)
    sheet.freeze_panes(1, 0)
    numbers = [name in _NUMBER_COLUMNS for name in header]
    row_index = 0
    for row_index, row in enumerate(rows, start=1):
        for column, value in enumerate(row):
            if numbers[column] and isinstance(value, int):
                sheet.write_number(row_index, column, value)
            else:
                _xlsx_text(sheet, row_index, column, cell_text(value))
    sheet.autofilter(0, 0, row_index, max(len(header) - 1, 0))
    workbook.close()


def _xlsx_text(sheet, row: int, column: int, text: str) -> None:
    if not text:
        return
    text = text[:_XLSX_MAX_CHARS]
    if text.startswith("<r>") and text.endswith("</r>"):
        # XlsxWriter takes such a string for rich-string XML of its own and writes it unescaped,
        # which would let a value (a variable, a summary) write any cell, formulas included.
        # Written as three plain fragments it is escaped, and reads back as the same text.
        sheet.write_rich_string(row, column, text[:1], text[1:2], text[2:])
    else:
        sheet.write_string(row, column, text)


def export_filename(campaign, extension: str) -> str:
    """The campaign's name as a file name ("Spring reminders.xlsx"), else campaign-ID."""
    name = " ".join(_UNSAFE_IN_FILENAME.sub(" ", campaign.name).split()).strip(". ")[:100]
    return f"{name or f'campaign-{campaign.pk}'}.{extension}"


def _staff_required(view):
    """The staff pages' check, looked up when a request comes: views imports this module."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        from .views import staff_required

        return staff_required(view)(request, *args, **kwargs)

    return wrapper


@require_safe
@_staff_required
def campaign_export_xlsx(request, campaign_id):
    try:
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
    except NotFound as exc:
        raise Http404(exc.error) from None
    header, rows = selectors.recipient_export(campaign=campaign)
    response = FileResponse(
        xlsx_file(header, rows),
        as_attachment=True,
        filename=export_filename(campaign, "xlsx"),
        content_type=XLSX_CONTENT_TYPE,
    )
    add_never_cache_headers(response)
    return response
