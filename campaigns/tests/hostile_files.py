"""Hostile and awkward recipients files, built in memory for the tests and bench/bombs.py.

Workbooks are zipped by hand so a test can state exactly what the archive claims (sizes, CRCs,
compression) and inflate parts to gigabytes from a few kilobytes without ever holding them.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
SHEET_PATH = "xl/worksheets/sheet1.xml"
SHARED_STRINGS_PATH = "xl/sharedStrings.xml"


@dataclass(frozen=True)
class Part:
    """One member of a zip archive, already deflated."""

    name: str
    deflated: bytes
    crc: int
    size: int
    # What the archive's headers claim; None tells the truth.
    claimed_size: int | None = None


def part(name: str, data: bytes) -> Part:
    squeeze = zlib.compressobj(6, zlib.DEFLATED, -15)
    return Part(name, squeeze.compress(data) + squeeze.flush(), zlib.crc32(data), len(data))


def repeated_part(name: str, head: bytes, block: bytes, count: int, tail: bytes) -> Part:
    """head + block * count + tail, deflated without building it: the block is compressed once.

    A full flush ends each compressed copy on a byte boundary with no reference to what came
    before, so the copies can simply be concatenated.
    """

    def flushed(data: bytes) -> bytes:
        squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
        return squeeze.compress(data) + squeeze.flush(zlib.Z_FULL_FLUSH)

    finish = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = flushed(head) + flushed(block) * count + finish.compress(tail) + finish.flush()
    crc = zlib.crc32(head)
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    return Part(name, deflated, zlib.crc32(tail, crc), len(head) + len(block) * count + len(tail))


def zip_archive(parts: Iterable[Part]) -> bytes:
    """A zip file of deflated members, with the sizes each part claims."""
    body, directory = bytearray(), bytearray()
    count = 0
    for member in parts:
        name = member.name.encode()
        size = member.size if member.claimed_size is None else member.claimed_size
        fields = (20, 0, 8, 0, 0x21, member.crc, len(member.deflated), size, len(name))
        offset = len(body)
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields, 0) + name + member.deflated
        directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, *fields, 0, 0, 0, 0, 0, offset) + name
        count += 1
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(directory), len(body), 0)
    return bytes(body + directory + end)


def workbook_parts(*, shared_strings: bool = False, styles: bytes | None = None) -> list[Part]:
    """Every part of a workbook but its sheet and shared strings."""
    overrides = [
        ("/xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"),
        ("/" + SHEET_PATH, "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"),
    ]
    relations = [("rId1", "worksheet", "worksheets/sheet1.xml")]
    if shared_strings:
        overrides.append(
            ("/" + SHARED_STRINGS_PATH, "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml")
        )
        relations.append(("rId2", "sharedStrings", "sharedStrings.xml"))
    if styles is not None:
        overrides.append(("/xl/styles.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"))
        relations.append(("rId3", "styles", "styles.xml"))
    types = "".join(f'<Override PartName="{name}" ContentType="{kind}"/>' for name, kind in overrides)
    links = "".join(
        f'<Relationship Id="{rid}" Type="{REL_NS}/{kind}" Target="{target}"/>' for rid, kind, target in relations
    )
    package = "http://schemas.openxmlformats.org/package/2006"
    parts = [
        part(
            "[Content_Types].xml",
            f'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="{package}/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            f'<Default Extension="xml" ContentType="application/xml"/>{types}</Types>'.encode(),
        ),
        part(
            "_rels/.rels",
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{package}/relationships">'
            f'<Relationship Id="rId1" Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>".encode(),
        ),
        part(
            "xl/workbook.xml",
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}">'
            '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'.encode(),
        ),
        part(
            "xl/_rels/workbook.xml.rels",
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{package}/relationships">{links}'
            "</Relationships>".encode(),
        ),
    ]
    if styles is not None:
        parts.append(part("xl/styles.xml", styles))
    return parts


def workbook(sheet: Part | bytes, *, shared_strings: Part | bytes | None = None, styles: bytes | None = None) -> bytes:
    """An .xlsx file whose first sheet is `sheet` (a worksheet's XML or a ready Part)."""
    if isinstance(sheet, bytes):
        sheet = part(SHEET_PATH, sheet)
    if isinstance(shared_strings, bytes):
        shared_strings = part(SHARED_STRINGS_PATH, shared_strings)
    parts = workbook_parts(shared_strings=shared_strings is not None, styles=styles)
    parts.append(sheet)
    if shared_strings is not None:
        parts.append(shared_strings)
    return zip_archive(parts)


SHEET_HEAD = f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN_NS}"><sheetData>'.encode()
SHEET_TAIL = b"</sheetData></worksheet>"


def _xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cell_xml(value: object) -> str:
    if isinstance(value, bool):
        return f'<c t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int | float):
        return f"<c><v>{value!r}</v></c>"
    return f'<c t="inlineStr"><is><t xml:space="preserve">{_xml_text(str(value))}</t></is></c>'


def sheet_xml(rows: Iterable[Iterable[object]]) -> bytes:
    """A worksheet with these rows from A1 down, strings inline."""
    body = "".join("<row>" + "".join(cell_xml(value) for value in row) + "</row>" for row in rows)
    return SHEET_HEAD + body.encode() + SHEET_TAIL


def csv_bytes(text: str, encoding: str = "utf-8") -> bytes:
    return text.encode(encoding)


# --- The hostile corpus ---------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    """A file an attacker (or an unlucky export) could upload, and how it must be refused."""

    name: str
    filename: str
    build: Callable[[], bytes]
    status: int  # 413 or 422
    message: str  # a fragment of the refusal


def _zip_bomb() -> bytes:
    # One gibibyte of identical rows from about a megabyte: every header tells the truth.
    row = b'<row><c t="inlineStr"><is><t>+14155552671</t></is></c></row>'
    block = row * (1_048_576 // len(row))
    return workbook(repeated_part(SHEET_PATH, SHEET_HEAD, block, 1024, SHEET_TAIL))


def _lying_zip_bomb() -> bytes:
    # The same gibibyte, but the headers claim the sheet holds 2 KB.
    row = b'<row><c t="inlineStr"><is><t>+14155552671</t></is></c></row>'
    block = row * (1_048_576 // len(row))
    sheet = repeated_part(SHEET_PATH, SHEET_HEAD, block, 1024, SHEET_TAIL)
    parts = [*workbook_parts(shared_strings=False, styles=None), _claiming(sheet, 2048)]
    return zip_archive(parts)


def _claiming(member: Part, size: int) -> Part:
    return Part(member.name, member.deflated, member.crc, member.size, claimed_size=size)


def _two_million_rows() -> bytes:
    # 2,000,000 rows, 120 MB of XML, as measured on the first version of the reader.
    rows = 2_000_000
    row = b'<row><c t="inlineStr"><is><t>+14155552671</t></is></c></row>'
    per_block = 10_000
    return workbook(repeated_part(SHEET_PATH, SHEET_HEAD, row * per_block, rows // per_block, SHEET_TAIL))


def _many_rows() -> bytes:
    # 400,000 rows of numbers with ordinary compression (about 7 to 1): only the row limit stops it.
    body = "".join(f'<row r="{line}"><c r="A{line}"><v>{line}</v></c></row>' for line in range(2, 400_002))
    header = '<row r="1"><c r="A1" t="inlineStr"><is><t>phone_number</t></is></c></row>'
    return workbook(SHEET_HEAD + (header + body).encode() + SHEET_TAIL)


def _many_prefixed_rows() -> bytes:
    # The same 400,000 rows with every element namespace-prefixed, as some exporters write them.
    head = f'<?xml version="1.0" encoding="UTF-8"?><x:worksheet xmlns:x="{MAIN_NS}"><x:sheetData>'
    header = '<x:row r="1"><x:c r="A1" t="inlineStr"><x:is><x:t>phone_number</x:t></x:is></x:c></x:row>'
    body = "".join(f'<x:row r="{line}"><x:c r="A{line}"><x:v>{line}</x:v></x:c></x:row>' for line in range(2, 400_002))
    return workbook((head + header + body + "</x:sheetData></x:worksheet>").encode())


def _large_sheet_ordinary_ratio() -> bytes:
    # 150 MB of sheet compressed about 130 to 1: below the ratio limit, above the size limit.
    noise = "".join(f"{(index * 7_919) % 10_007:05d}" for index in range(1_600))
    block = f"<!-- {noise} -->".encode() + b"<row><c><v>1</v></c></row>" * 40_000
    return workbook(repeated_part(SHEET_PATH, SHEET_HEAD, block, 150 * 1_048_576 // len(block) + 1, SHEET_TAIL))


def _shared_strings_bomb() -> bytes:
    # 10,000,000 shared strings in a few hundred kilobytes.
    count = 10_000_000
    head = f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN_NS}" count="{count}" uniqueCount="{count}">'
    strings = repeated_part(
        SHARED_STRINGS_PATH, head.encode(), b"<si><t>x</t></si>" * 10_000, count // 10_000, b"</sst>"
    )
    sheet = sheet_xml([["phone_number"], ["+14155552671"]])
    return workbook(sheet, shared_strings=strings)


def _many_distinct_shared_strings() -> bytes:
    # 600,000 distinct shared strings with ordinary compression: only the count limit stops it.
    body = "".join(f"<si><t>{index}</t></si>" for index in range(600_000))
    strings = f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN_NS}">{body}</sst>'.encode()
    return workbook(sheet_xml([["phone_number"], ["+14155552671"]]), shared_strings=strings)


def _shared_string_amplification() -> bytes:
    # One 9,000-character shared string referenced by 150 columns of 5,000 rows: 6.8 GB of text.
    head = f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN_NS}">'
    strings = f"{head}<si><t>{'x' * 9_000}</t></si><si><t>phone_number</t></si></sst>".encode()
    header = '<row><c t="s"><v>1</v></c>' + "".join(f'<c t="inlineStr"><is><t>v{i}</t></is></c>' for i in range(150))
    row = "<row>" + '<c t="inlineStr"><is><t>+14155552671</t></is></c>' + '<c t="s"><v>0</v></c>' * 150 + "</row>"
    sheet = repeated_part(SHEET_PATH, SHEET_HEAD + header.encode() + b"</row>", row.encode(), 5_000, SHEET_TAIL)
    return workbook(sheet, shared_strings=strings)


def _many_parts() -> bytes:
    parts = workbook_parts(shared_strings=False, styles=None)
    parts.append(part(SHEET_PATH, sheet_xml([["phone_number"], ["+14155552671"]])))
    parts.extend(part(f"xl/media/image{index}.png", b"") for index in range(20_000))
    return zip_archive(parts)


def _wide_xlsx_header() -> bytes:
    header = "<row>" + "".join(f'<c t="inlineStr"><is><t>c{i}</t></is></c>' for i in range(100_000)) + "</row>"
    return workbook(SHEET_HEAD + header.encode() + b"<row><c><v>1</v></c></row>" + SHEET_TAIL)


def _far_away_cell() -> bytes:
    # Two cells whose references span the whole grid (16,384 columns by 1,048,576 rows).
    sheet = (
        SHEET_HEAD.replace(b"<sheetData>", b'<dimension ref="A1:XFD1048576"/><sheetData>')
        + b'<row r="1"><c r="A1" t="inlineStr"><is><t>phone_number</t></is></c></row>'
        + b'<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'
        + SHEET_TAIL
    )
    return workbook(sheet)


def _huge_xlsx_cell() -> bytes:
    return workbook(sheet_xml([["phone_number", "note"], ["+14155552671", "x" * 200_000]]))


def _entity_expansion() -> bytes:
    # A billion laughs in the worksheet's own DTD.
    entities = '<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8)
    )
    sheet = (
        f'<?xml version="1.0"?><!DOCTYPE worksheet [{entities}]><worksheet xmlns="{MAIN_NS}"><sheetData>'
        '<row><c t="inlineStr"><is><t>phone_number</t></is></c></row>'
        '<row><c t="inlineStr"><is><t>&i;</t></is></c></row></sheetData></worksheet>'
    )
    return workbook(sheet.encode())


def _wide_csv_header(columns: int) -> Callable[[], bytes]:
    return lambda: ("phone_number," + ",".join(f"c{i}" for i in range(columns)) + "\n+14155552671\n").encode()


def _long_csv_cell() -> bytes:
    return b"phone_number,note\n+14155552671," + b"x" * 200_000 + b"\n"


def _long_quoted_csv_cell() -> bytes:
    return b'phone_number,note\n+14155552671,"' + b"x" * 200_000 + b'"\n'


def _many_csv_lines() -> bytes:
    # 20 MB of empty lines after a header.
    return b"phone_number\n" + b"\n" * 20_000_000


def _many_csv_rows() -> bytes:
    return b"phone_number\n" + b"1\n" * 400_000


def _nul_late_in_csv() -> bytes:
    return b"phone_number,name\n" + b"+14155552671,Ada\n" * 1_000 + b"+14155552672,A\x00da\n"


def _excel_artefacts() -> bytes:
    return (
        b"phone_number,name\n"
        b'"=""+14155552671""",formula quoting\n'
        b"'+14155552672,text prefix\n"
        b"1.41555E+10,scientific notation\n"
        b"',apostrophe alone\n"
        b'"=""""",empty formula\n'
    )


HOSTILE: list[Hostile] = [
    Hostile("zip bomb: a 1 GiB sheet in 3 MB, honest headers", "bomb.xlsx", _zip_bomb, 413, "zip bomb"),
    Hostile("zip bomb: the same sheet claiming 2 KB", "liar.xlsx", _lying_zip_bomb, 422, "not a readable .xlsx"),
    Hostile("2,000,000-row sheet (120 MB of XML in 0.4 MB)", "rows.xlsx", _two_million_rows, 413, "zip bomb"),
    Hostile("150 MB sheet compressed 130 to 1", "big.xlsx", _large_sheet_ordinary_ratio, 413, "at most 100 MB"),
    Hostile("400,000-row sheet, ordinary compression", "rows.xlsx", _many_rows, 413, "200,000 rows"),
    Hostile("400,000-row sheet, namespace-prefixed", "rows.xlsx", _many_prefixed_rows, 413, "200,000 rows"),
    Hostile("10,000,000 shared strings in 0.5 MB", "strings.xlsx", _shared_strings_bomb, 413, "zip bomb"),
    Hostile("600,000 distinct shared strings", "strings.xlsx", _many_distinct_shared_strings, 413, "shared strings"),
    Hostile(
        "one 9,000-character shared string in every cell",
        "amplified.xlsx",
        _shared_string_amplification,
        413,
        "characters of text",
    ),
    Hostile("20,000 parts", "parts.xlsx", _many_parts, 413, "parts"),
    Hostile("100,000-column xlsx header", "wide.xlsx", _wide_xlsx_header, 422, "at most 200 columns"),
    Hostile("a cell at XFD1048576", "far.xlsx", _far_away_cell, 422, "column XFD"),
    Hostile("200,000-character xlsx cell", "cell.xlsx", _huge_xlsx_cell, 422, "longer than 10,000 characters"),
    Hostile("billion laughs (entity expansion)", "laughs.xlsx", _entity_expansion, 422, "not a readable .xlsx"),
    Hostile("100,001-column CSV header (0.7 MB)", "wide.csv", _wide_csv_header(100_000), 422, "at most 200"),
    Hostile("1,000,001-column CSV header (7.9 MB)", "wider.csv", _wide_csv_header(1_000_000), 422, "200 columns"),
    Hostile("200,000-character CSV cell", "cell.csv", _long_csv_cell, 422, "longer than 10,000 characters"),
    Hostile("200,000-character quoted CSV cell", "cell.csv", _long_quoted_csv_cell, 422, "longer than 10,000"),
    Hostile("20,000,000 empty CSV lines (20 MB)", "lines.csv", _many_csv_lines, 413, "200,000 lines"),
    Hostile("400,000 CSV rows", "rows.csv", _many_csv_rows, 413, "200,000 lines"),
    Hostile("NUL byte after the first 4 KB", "nul.csv", _nul_late_in_csv, 422, "NUL character"),
    Hostile("UTF-16 CSV", "utf16.csv", lambda: "phone_number\n+14155552671\n".encode("utf-16"), 422, "UTF-16"),
    Hostile(
        'Excel artefacts: ="…", \'+1…, 1.41555E+10, \' and ="" alone',
        "excel.csv",
        _excel_artefacts,
        422,
        "3 invalid rows",
    ),
]
