"""The rows of an uploaded .xlsx workbook's first worksheet, read within hard limits.

Nothing in the file is trusted. The zip's end record and central directory are checked before
any part is inflated (how many parts, their uncompressed sizes, their compression ratios);
every part is then streamed through expat with DTDs refused, and each limit is checked while
the count it bounds grows. Time and memory therefore follow what the limits allow, whatever the
workbook claims: no dense grid is built from cell references, and shared strings are kept as
UTF-8 bytes. Values come out as openpyxl's read-only mode gives them: str, int, float, bool,
datetime, time or timedelta for date-formatted numbers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import posixpath
import re
import struct
import zipfile
import zlib
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from xml.parsers import expat

_CHUNK_BYTES = 16_384  # small: one chunk of XML can name thousands of long shared strings
_RATIO_CHECKED_FROM = 1_048_576  # small parts may compress well for innocent reasons
_MAX_DIRECTORY_BYTES = 1_048_576
_MAX_METADATA_PART_BYTES = 16 * 1_048_576  # workbook.xml, its relationships, styles.xml
_MAX_STYLES = 100_000
_WINDOWS_EPOCH = dt.datetime(1899, 12, 30)
_MAC_EPOCH = dt.datetime(1904, 1, 1)
_SECONDS_PER_DAY = 86_400

_DATE_FORMAT_IDS = frozenset((14, 15, 16, 17, 18, 19, 20, 21, 22, 45, 46, 47))
_ELAPSED_FORMAT_IDS = frozenset((46,))
_FORMAT_LITERALS = re.compile(r'".*?"|\[(?!hh?\]|mm?\]|ss?\])[^\]]*\]')
_DATE_FORMAT_CHARACTER = re.compile(r"(?<![_\\])[dmhysDMHYS]")
_ELAPSED_FORMAT = re.compile(r"\[hh?\](:mm(:ss(\.0*)?)?)?|\[mm?\](:ss(\.0*)?)?")
_COLUMN_LETTERS = re.compile(r"[A-Z]{1,3}")
_DIGITS = "0123456789"

# What the parsers do with each element, by its name without namespace prefix.
_ROW, _CELL, _VALUE, _INLINE, _TEXT, _PHONETIC, _ITEM, _TABLE, _OTHER = range(9)
_KINDS = {"row": _ROW, "c": _CELL, "v": _VALUE, "is": _INLINE, "t": _TEXT, "rPh": _PHONETIC}
_STRING_KINDS = {"si": _ITEM, "t": _TEXT, "rPh": _PHONETIC, "sst": _TABLE}


class UnreadableWorkbook(Exception):
    """Damaged, encrypted, or not a workbook at all."""


class WorkbookTooLarge(Exception):
    """The workbook is past one of the size limits; str(error) is a sentence for the uploader."""


class WorkbookRefused(Exception):
    """The workbook holds something the limits refuse (a column too far, a value too long)."""


@dataclass(frozen=True, slots=True)
class WorkbookLimits:
    # Uncompressed, all parts together; also the most text the cells may hold once shared
    # strings are expanded, so a string repeated in every cell cannot multiply it.
    max_bytes: int
    max_rows: int
    max_columns: int
    max_cell_chars: int
    max_parts: int = 1_000
    max_ratio: int = 200
    max_shared_strings: int = 500_000
    max_shared_strings_bytes: int = 50 * 1_048_576


@contextlib.contextmanager
def first_sheet(fileobj: Any, limits: WorkbookLimits) -> Iterator[SheetRows]:
    """The rows of the workbook's first worksheet; the caller's file is left open."""
    fileobj.seek(0)
    _check_end_record(fileobj, limits)
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, struct.error, NotImplementedError):
        raise UnreadableWorkbook from None
    try:
        with _unreadable_on_damage():
            parts = _checked_parts(archive, limits)
            workbook_path = _workbook_path(archive, parts)
            sheet_path, strings_path, styles_path, epoch = _workbook(archive, parts, workbook_path)
            styles = _date_styles(archive, parts[styles_path]) if styles_path in parts else _NO_DATES
            if strings_path in parts:
                strings = _shared_strings(archive, parts[strings_path], limits)
            else:
                strings = SharedStrings(bytearray(), array("Q"))
            if sheet_path not in parts:
                raise UnreadableWorkbook
            if _openings(archive, parts[sheet_path], b"row", limits.max_rows) > limits.max_rows:
                raise WorkbookTooLarge(_rows_message(limits.max_rows))
            stream = archive.open(parts[sheet_path])
        with stream:
            yield SheetRows(stream, strings=strings, styles=styles, epoch=epoch, limits=limits)
    finally:
        archive.close()


@contextlib.contextmanager
def _unreadable_on_damage() -> Iterator[None]:
    # A damaged zip or XML part fails in many different ways; the limits' own errors pass.
    try:
        yield
    except (UnreadableWorkbook, WorkbookTooLarge, WorkbookRefused):
        raise
    except (expat.ExpatError, zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, KeyError,
            RuntimeError, NotImplementedError, struct.error, IndexError):  # fmt: skip
        raise UnreadableWorkbook from None


# --- The archive ---------------------------------------------------------------------------


def _check_end_record(fileobj: Any, limits: WorkbookLimits) -> None:
    """Refuse too many parts from the zip's end record, before zipfile builds an object per part."""
    fileobj.seek(0, 2)
    size = fileobj.tell()
    tail_size = min(size, 22 + 65_535)  # the end record and the longest comment it may carry
    fileobj.seek(size - tail_size)
    tail = fileobj.read(tail_size)
    fileobj.seek(0)
    at = len(tail) - 22 if tail[-22:-18] == b"PK\x05\x06" else tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise UnreadableWorkbook
    entries, directory_size = struct.unpack_from("<HI", tail, at + 10)
    if entries == 0xFFFF or directory_size == 0xFFFFFFFF:
        locator = tail[at - 20 : at] if at >= 20 else b""
        if locator[:4] != b"PK\x06\x07":
            raise UnreadableWorkbook
        (record_offset,) = struct.unpack_from("<Q", locator, 8)
        fileobj.seek(record_offset)
        record = fileobj.read(56)
        fileobj.seek(0)
        if record[:4] != b"PK\x06\x06" or len(record) < 56:
            raise UnreadableWorkbook
        entries, directory_size = struct.unpack_from("<QQ", record, 32)
    if entries > limits.max_parts:
        raise WorkbookTooLarge(_parts_message(entries, limits))
    if directory_size > _MAX_DIRECTORY_BYTES:
        raise WorkbookTooLarge(
            f"The .xlsx file's list of parts alone is {directory_size / 1_048_576:,.1f} MB; at most "
            f"{_MAX_DIRECTORY_BYTES / 1_048_576:,.0f} MB is accepted. Copy the recipients into a new workbook, "
            'or export them as "CSV UTF-8", and upload that.'
        )


def _parts_message(count: int, limits: WorkbookLimits) -> str:
    return (
        f"The .xlsx file holds {count:,} parts; at most {limits.max_parts:,} are accepted. Copy the recipients "
        'into a new workbook, or export them as "CSV UTF-8", and upload that.'
    )


def _checked_parts(archive: zipfile.ZipFile, limits: WorkbookLimits) -> dict[str, zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > limits.max_parts:
        raise WorkbookTooLarge(_parts_message(len(infos), limits))
    total = 0
    for info in infos:
        total += info.file_size
        if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise UnreadableWorkbook  # encrypted, or compressed in a way Excel never uses
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_CHECKED_FROM and ratio > limits.max_ratio:
            raise WorkbookTooLarge(
                f"The .xlsx file's part {info.filename[:80]} unpacks {ratio:,.0f} times larger than it is stored "
                f"(at most {limits.max_ratio:,} times is accepted): it is a zip bomb, not a spreadsheet."
            )
    if total > limits.max_bytes:
        raise WorkbookTooLarge(
            f"The .xlsx file unpacks to {total / 1_048_576:,.0f} MB of uncompressed parts; at most "
            f"{limits.max_bytes / 1_048_576:,.0f} MB is accepted. Split it into several files, or export it "
            'as "CSV UTF-8".'
        )
    parts = {}
    for info in infos:
        parts[info.filename] = info
        parts.setdefault(info.filename.lower(), info)
    return parts


def _part(parts: dict[str, zipfile.ZipInfo], path: str) -> zipfile.ZipInfo | None:
    return parts.get(path) or parts.get(path.lower())


def _parse(archive: zipfile.ZipFile, info: zipfile.ZipInfo, parser: Any, max_bytes: int) -> None:
    """Stream one part through an expat parser made by _parser()."""
    if info.file_size > max_bytes:
        raise WorkbookTooLarge(
            f"The .xlsx file's part {info.filename[:80]} is {info.file_size / 1_048_576:,.0f} MB uncompressed; "
            f"at most {max_bytes / 1_048_576:,.0f} MB is accepted."
        )
    with archive.open(info) as stream:
        while chunk := stream.read(_CHUNK_BYTES * 4):
            parser.Parse(chunk, False)
        parser.Parse(b"", True)


def _openings(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: bytes, enough: int) -> int:
    """How many <name> elements a part opens, with or without a namespace prefix, counted in its
    raw bytes.

    One inflation and a regular expression cost far less than parsing, so a part past a count
    limit is refused at once. Text cannot hold a raw "<", so only tags match. A window's last
    few bytes from its last "<" are carried into the next one, so a tag split between two reads
    counts once. Stops counting past `enough`.
    """
    pattern = re.compile(rb"<(?:[^\s<>/!?]{1,64}:)?" + re.escape(name) + rb"[\s/>]")
    longest = 64 + len(name) + 3
    count = 0
    tail = b""
    with archive.open(info) as stream:
        while count <= enough and (chunk := stream.read(1_048_576)):
            window = tail + chunk
            cut = window.rfind(b"<")
            if cut < 0 or len(window) - cut > longest:
                cut = len(window)  # a tag opening there is whole in this window
            count += len(pattern.findall(window, 0, cut))
            tail = window[cut:]
        count += len(pattern.findall(tail))
    return count


def _refuse_dtd(*_args: object) -> None:
    # Spreadsheets never carry a DTD; refusing it rules out entity expansion of any kind.
    raise UnreadableWorkbook


def _parser(start: Callable | None = None, end: Callable | None = None, text: Callable | None = None) -> Any:
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.buffer_text = True
    parser.buffer_size = 65_536
    if start is not None:
        parser.StartElementHandler = start
    if end is not None:
        parser.EndElementHandler = end
    if text is not None:
        parser.CharacterDataHandler = text
    return parser


def _local(name: str) -> str:
    return name.rpartition(":")[2]


def _attribute(attributes: dict[str, str], local_name: str) -> str | None:
    """An attribute by its name without namespace prefix (r:id, x:id and id are all "id")."""
    for key, value in attributes.items():
        if _local(key) == local_name:
            return value
    return None


def _relationships(archive: zipfile.ZipFile, parts: dict, source: str) -> dict[str, tuple[str, str]]:
    """Id -> (type's last path segment, target part path) for the part at `source` ("" for the package)."""
    folder, name = posixpath.split(source)
    info = _part(parts, posixpath.join(folder, "_rels", f"{name}.rels"))
    found: dict[str, tuple[str, str]] = {}
    if info is None:
        return found

    def start(tag: str, attributes: dict[str, str]) -> None:
        if _local(tag) != "Relationship" or attributes.get("TargetMode") == "External":
            return
        target = attributes.get("Target", "")
        path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
        found[attributes.get("Id", "")] = (attributes.get("Type", "").rpartition("/")[2], path)

    _parse(archive, info, _parser(start), _MAX_METADATA_PART_BYTES)
    return found


def _workbook_path(archive: zipfile.ZipFile, parts: dict) -> str:
    for kind, path in _relationships(archive, parts, "").values():
        if kind == "officeDocument" and _part(parts, path):
            return _part(parts, path).filename
    if _part(parts, "xl/workbook.xml"):
        return _part(parts, "xl/workbook.xml").filename
    raise UnreadableWorkbook


def _workbook(archive: zipfile.ZipFile, parts: dict, path: str) -> tuple[str, str, str, dt.datetime]:
    """The paths of the first worksheet, the shared strings and the styles, and the date epoch."""
    sheets: list[str] = []
    epoch = [_WINDOWS_EPOCH]

    def start(tag: str, attributes: dict[str, str]) -> None:
        local = _local(tag)
        if local == "sheet":
            sheets.append(_attribute(attributes, "id") or "")
        elif local == "workbookPr" and attributes.get("date1904", "").lower() in ("1", "true"):
            epoch[0] = _MAC_EPOCH

    _parse(archive, _part(parts, path), _parser(start), _MAX_METADATA_PART_BYTES)
    relations = _relationships(archive, parts, path)
    worksheets = [relations[sheet][1] for sheet in sheets if relations.get(sheet, ("",))[0] == "worksheet"]
    if not worksheets:
        raise WorkbookRefused("The spreadsheet has no worksheet with recipients in it.")
    by_kind = {kind: target for kind, target in reversed(relations.values())}

    def resolved(target: str) -> str:
        info = _part(parts, target)
        return info.filename if info else target

    return (
        resolved(worksheets[0]),
        resolved(by_kind.get("sharedStrings", "")),
        resolved(by_kind.get("styles", "")),
        epoch[0],
    )


# --- Shared strings and styles ---------------------------------------------------------------


class SharedStrings:
    """The workbook's shared strings as one UTF-8 buffer: a Python string per entry would cost
    about 60 bytes each before its text, which a file of empty strings multiplies."""

    def __init__(self, data: bytearray, ends: array) -> None:
        self._data = memoryview(data)
        self._ends = ends

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, index: int) -> str:
        if not 0 <= index < len(self._ends):
            raise UnreadableWorkbook
        start = self._ends[index - 1] if index else 0
        return str(self._data[start : self._ends[index]], "utf-8")


def _shared_strings(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: WorkbookLimits) -> SharedStrings:
    data = bytearray()
    ends = array("Q")
    pieces: list[str] = []
    kinds: dict[str, int] = {}
    maximum = limits.max_shared_strings
    too_many = (
        f"The .xlsx file has more than {maximum:,} shared strings (distinct texts); at most {maximum:,} are "
        "accepted. Split it into several files."
    )
    collecting = False
    phonetic = 0

    def kind(tag: str) -> int:
        found = _STRING_KINDS.get(_local(tag), _OTHER)
        if len(kinds) < 64:
            kinds[tag] = found
        return found

    # Five handler calls per string are most of the time this takes: keep each one short.
    def start(tag: str, attributes: dict[str, str]) -> None:
        nonlocal collecting, phonetic
        found = kinds.get(tag)
        if found is None:
            found = kind(tag)
        if found == _TEXT:
            collecting = not phonetic
        elif found == _ITEM:
            pieces.clear()
            if len(ends) >= maximum:
                raise WorkbookTooLarge(too_many)
        elif found == _PHONETIC:  # phonetic guides are not part of the text
            phonetic += 1
        elif found == _TABLE:
            declared = attributes.get("uniqueCount", "")
            if declared.isdigit() and int(declared) > maximum:
                raise WorkbookTooLarge(too_many)

    def end(tag: str) -> None:
        nonlocal collecting, phonetic
        found = kinds.get(tag)
        if found is None:
            found = kind(tag)
        if found == _TEXT:
            collecting = False
        elif found == _ITEM:
            data.extend("".join(pieces).encode())
            ends.append(len(data))
        elif found == _PHONETIC:
            phonetic -= 1

    def text(value: str) -> None:
        if collecting:
            pieces.append(value)

    if info.file_size > limits.max_shared_strings_bytes or _openings(archive, info, b"si", maximum) > maximum:
        raise WorkbookTooLarge(too_many)
    _parse(archive, info, _parser(start, end, text), limits.max_shared_strings_bytes)
    return SharedStrings(data, ends)


@dataclass(frozen=True, slots=True)
class _Styles:
    dates: frozenset[int]  # cell styles whose numbers are dates or times
    elapsed: frozenset[int]  # cell styles whose numbers are durations ([h]:mm)


_NO_DATES = _Styles(frozenset(), frozenset())


def _date_styles(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Styles:
    formats: dict[int, str] = {}
    cell_formats: list[int] = []
    inside = {"cellXfs": False}

    def start(tag: str, attributes: dict[str, str]) -> None:
        local = _local(tag)
        if local == "numFmt":
            with contextlib.suppress(ValueError):
                formats[int(attributes.get("numFmtId", ""))] = attributes.get("formatCode", "")
        elif local == "cellXfs":
            inside["cellXfs"] = True
        elif local == "xf" and inside["cellXfs"] and len(cell_formats) < _MAX_STYLES:
            try:
                cell_formats.append(int(attributes.get("numFmtId", "0")))
            except ValueError:
                cell_formats.append(0)

    def end(tag: str) -> None:
        if _local(tag) == "cellXfs":
            inside["cellXfs"] = False

    _parse(archive, info, _parser(start, end), _MAX_METADATA_PART_BYTES)
    dates, elapsed = set(), set()
    for index, format_id in enumerate(cell_formats):
        code = formats.get(format_id)
        if code is None:
            if format_id in _DATE_FORMAT_IDS:
                (elapsed if format_id in _ELAPSED_FORMAT_IDS else dates).add(index)
            continue
        first = code.split(";")[0]
        if _ELAPSED_FORMAT.search(first):
            elapsed.add(index)
        elif _DATE_FORMAT_CHARACTER.search(_FORMAT_LITERALS.sub("", first)):
            dates.add(index)
    return _Styles(frozenset(dates), frozenset(elapsed))


def _excel_date(serial: float, epoch: dt.datetime) -> dt.datetime | dt.time:
    day, fraction = divmod(serial, 1)
    offset = dt.timedelta(milliseconds=round(fraction * _SECONDS_PER_DAY * 1000))
    if 0 <= serial < 1 and offset.days == 0:
        return (dt.datetime.min + offset).time()
    if 0 < serial < 60 and epoch == _WINDOWS_EPOCH:
        day += 1  # Excel counts a 29 February 1900 that never was
    return epoch + dt.timedelta(days=day) + offset


# --- The worksheet ---------------------------------------------------------------------------


def column_name(index: int) -> str:
    """Spreadsheet letters for a 0-based column index: 0 -> A, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _column_index(letters: str) -> int:
    """The 0-based index of a column's letters ("A" -> 0); the row number is already cut off."""
    if not _COLUMN_LETTERS.fullmatch(letters):
        raise UnreadableWorkbook
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - 64
    return index - 1


class SheetRows:
    """The worksheet's non-empty rows as lists of values (None where a cell is empty).

    `line_num` is the spreadsheet's number of the row returned last, as csv.reader's is.
    """

    def __init__(
        self, stream: Any, *, strings: SharedStrings, styles: _Styles, epoch: dt.datetime, limits: WorkbookLimits
    ) -> None:
        self.line_num = 0
        self._stream = stream
        self._ready: deque[tuple[int, list]] = deque()
        self._finished = False
        self._parser = self._make_parser(strings, styles, epoch, limits)

    def __iter__(self) -> SheetRows:
        return self

    def __next__(self) -> list:
        ready = self._ready
        while not ready:
            if self._finished:
                raise StopIteration
            with _unreadable_on_damage():
                chunk = self._stream.read(_CHUNK_BYTES)
                self._parser.Parse(chunk, not chunk)
            self._finished = not chunk
        self.line_num, cells = ready.popleft()
        return cells

    def _make_parser(self, strings: SharedStrings, styles: _Styles, epoch: dt.datetime, limits: WorkbookLimits):
        ready = self._ready
        max_rows, max_columns = limits.max_rows, limits.max_columns
        max_cell, max_text = limits.max_cell_chars, limits.max_bytes
        dates, elapsed = styles.dates, styles.elapsed
        kinds: dict[str, int] = {}
        columns: dict[str, int] = {}
        pieces: list[str] = []
        # The row and cell being read. Plain locals in closures are the cheapest state for a
        # handler that runs for every element of a sheet.
        rows_seen = 0
        line = 0
        cells: list = []
        column = -1
        cell_type = "n"
        cell_style = ""
        collecting = False
        inline = False
        phonetic = 0
        length = 0
        text_total = 0

        def kind(tag: str) -> int:
            found = _KINDS.get(_local(tag), _OTHER)
            if len(kinds) < 64:
                kinds[tag] = found
            return found

        def start(tag: str, attributes: dict[str, str]) -> None:
            nonlocal rows_seen, line, cells, column, cell_type, cell_style, collecting, inline, phonetic, length
            found = kinds.get(tag)
            if found is None:
                found = kind(tag)
            if found == _CELL:
                reference = attributes.get("r")
                if reference:
                    letters = reference.rstrip(_DIGITS)
                    found = columns.get(letters)
                    if found is None:
                        found = _column_index(letters.upper())
                        if len(columns) < 1_024:
                            columns[letters] = found
                    column = found
                else:
                    column += 1
                cell_type = attributes.get("t", "n")
                cell_style = attributes.get("s", "")
                pieces.clear()
                length = 0
            elif found == _VALUE:
                collecting = True
            elif found == _TEXT:
                collecting = inline and not phonetic
            elif found == _ROW:
                rows_seen += 1
                if rows_seen > max_rows:
                    raise WorkbookTooLarge(_rows_message(max_rows))
                number = attributes.get("r")
                line = int(number) if number else line + 1
                cells = []
                column = -1
            elif found == _INLINE:
                inline = True
            elif found == _PHONETIC:
                phonetic += 1

        def end(tag: str) -> None:
            nonlocal collecting, inline, phonetic, text_total
            found = kinds.get(tag)
            if found is None:
                found = kind(tag)
            if found in (_VALUE, _TEXT):
                collecting = False
            elif found == _CELL:
                if not pieces:
                    return
                value = _value("".join(pieces), cell_type, cell_style)
                if value is None or value == "":
                    return
                if column >= max_columns:
                    raise WorkbookRefused(_far_column_message(line, column, max_columns))
                if type(value) is str:
                    if len(value) > max_cell:
                        raise WorkbookRefused(long_value_message(line, column_name(column), max_cell))
                    text_total += len(value)
                    if text_total > max_text:
                        raise WorkbookTooLarge(
                            f"The spreadsheet's cells hold more than {max_text:,} characters of text once its "
                            "shared strings are written out in full. Split it into several files."
                        )
                width = len(cells)
                if column == width:
                    cells.append(value)
                elif column > width:
                    cells.extend([None] * (column - width))
                    cells.append(value)
                else:
                    cells[column] = value
            elif found == _ROW:
                if cells:
                    ready.append((line, cells))
            elif found == _INLINE:
                inline = False
            elif found == _PHONETIC:
                phonetic -= 1

        def text(value: str) -> None:
            nonlocal length
            if collecting:
                pieces.append(value)
                length += len(value)
                if length > max_cell:
                    raise WorkbookRefused(long_value_message(line, column_name(column), max_cell))

        def _value(raw: str, kind_of_cell: str, style: str) -> object:
            if kind_of_cell == "s":
                return strings[int(raw)]
            if kind_of_cell in ("inlineStr", "str", "e"):
                return raw
            if kind_of_cell == "b":
                return raw.strip() in ("1", "true")
            if kind_of_cell == "d":
                try:
                    return dt.datetime.fromisoformat(raw.strip())
                except ValueError:
                    return raw
            try:
                number: int | float = float(raw) if "." in raw or "E" in raw or "e" in raw else int(raw)
            except ValueError:
                return raw.strip()
            if style and (dates or elapsed):
                index = int(style) if style.isdigit() else -1
                try:
                    if index in dates:
                        return _excel_date(number, epoch)
                    if index in elapsed:
                        return dt.timedelta(days=number)
                except (OverflowError, ValueError):
                    return number
            return number

        return _parser(start, end, text)


def _rows_message(max_rows: int) -> str:
    return (
        f"The file has more than {max_rows:,} rows (blank rows included); at most {max_rows:,} are read. "
        "Split it into several campaigns."
    )


def _far_column_message(line: int, column: int, max_columns: int) -> str:
    return (
        f"Line {line:,} has a value in column {column_name(column)} (column {column + 1:,}); at most "
        f"{max_columns:,} columns are read. Remove the columns the agent does not need, or move them to "
        "another sheet."
    )


def long_value_message(line: int, column: str | None, max_cell_chars: int) -> str:
    where = f" in column {column}" if column else ""
    return (
        f"Line {line:,} has a value longer than {max_cell_chars:,} characters{where}, the most one cell may "
        "hold. Shorten it and upload the file again."
    )
