"""Which files the staff forms take, and what they say about one they do not.

The services read any UTF-8 text as CSV and any zip as .xlsx, so a Numbers or LibreOffice file
would be refused with Excel's advice. The forms look at the extension first: a spreadsheet of
another program gets the way out of that program, and a file above the size limit is named
with its size. The same rules and words reach the page as data- attributes of the file input
(static/js/upload.js), so the browser refuses such a file before uploading any of it; the
server checks again, whatever the browser did.
"""

import json
from pathlib import PurePath

# What the reader turns into people to call: CSV (or tab-separated) text, one number per line
# (a .txt file is read as CSV without a header), and Excel workbooks.
READABLE = (".csv", ".tsv", ".txt", ".xlsx")
_MIME_TYPES = (
    "text/csv",
    "text/plain",
    "text/tab-separated-values",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)
ACCEPT = ",".join((*READABLE, *_MIME_TYPES))

# Other programs' spreadsheets, each with the way to a file the form reads. The .ods format is
# not read: it would need an XML reader of its own with every limit the .xlsx one has.
ADVICE = {
    ".numbers": (
        "“{name}” is an Apple Numbers file, which cannot be read here. In Numbers, choose "
        "File → Export To → CSV…, then choose the .csv file it saves."
    ),
    ".ods": (
        "“{name}” is a LibreOffice (OpenDocument) spreadsheet, which cannot be read here. In LibreOffice "
        "Calc, choose File → Save As… and save it as Text CSV (.csv) or Excel 2007-365 (.xlsx), then "
        "choose that file."
    ),
    ".xls": (
        "“{name}” is an old-style Excel workbook (.xls), which cannot be read here. In Excel, choose "
        "File → Save As… and save it as Excel Workbook (.xlsx), then choose that file."
    ),
}
OTHER_TYPE = (
    "“{name}” cannot be read here: choose a CSV file (.csv or .tsv), a text file with one number "
    "per line (.txt) or an Excel workbook (.xlsx)."
)
TOO_LARGE = "“{name}” is {size}; the limit is {limit}. Split it into several files and upload each one."


def size_in_words(size: int) -> str:
    """A file size as the forms write it: 30.2 MB, 20 MB (upload.js writes it the same way)."""
    megabytes = f"{size / 1_048_576:.1f}".removesuffix(".0")
    return f"{megabytes} MB"


def extension(name: str) -> str:
    return PurePath(name or "").suffix.lower()


def refusal(name: str, size: int, *, max_bytes: int) -> str | None:
    """Why a staff form refuses the file `name` of `size` bytes before reading it, or None."""
    kind = extension(name)
    if kind not in READABLE:
        return ADVICE.get(kind, OTHER_TYPE).format(name=name)
    if size > max_bytes:
        return TOO_LARGE.format(name=name, size=size_in_words(size), limit=size_in_words(max_bytes))
    return None


def input_attrs(*, max_bytes: int) -> dict[str, str]:
    """The file input's attributes that let the page apply `refusal` itself."""
    return {
        "accept": ACCEPT,
        "data-max-bytes": str(max_bytes),
        "data-extensions": " ".join(READABLE),
        "data-advice": json.dumps(ADVICE, ensure_ascii=False),
        "data-other-type": OTHER_TYPE,
        "data-too-large": TOO_LARGE,
    }
