"""The account's do-not-call list: numbers that no campaign of the account calls.

Numbers are stored in E.164, read exactly as a recipients file reads them (campaigns.recipients),
so a number listed here matches the same number in any file, however it was written. The entry of
an erased number (campaigns.lifecycle) keeps no number, only its HMAC-SHA256 under a key made once
and kept in the database (PersonalDataKey, not SECRET_KEY, so a key rotation unblocks nothing):
every check below matches it by hashing the numbers it is asked about.
"""

import csv
import datetime as dt
import hashlib
import hmac
import io
import itertools
import json
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import NoReturn

import phonenumbers
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from campaigns.errors import PayloadTooLarge, ValidationFailed
from campaigns.events import services as events
from campaigns.models import Campaign, CampaignBatch, PersonalDataKey, Suppression
from campaigns.recipients import (
    MAX_REPORTED_ERRORS,
    Limits,
    RecipientsFileError,
    RecipientsFileTooLarge,
    RecipientsReader,
)

# Numbers looked up per query by suppressed_numbers: six queries for a 300,000-recipient file.
LOOKUP_CHUNK = 50_000
INSERT_CHUNK = LOOKUP_CHUNK
# Longer than any phone number however it is formatted: refused before reading it.
MAX_TYPED_NUMBER_CHARS = 64
MAX_REASON_CHARS = Suppression._meta.get_field("reason").max_length


def on_suppressions_added(*, user) -> None:
    """Called once after numbers were put on an account's list (one number or a whole file).

    Parts not sent yet check the list when they are sent (campaigns.dispatch). Outbound
    campaigns already at ElevenLabs are read again in full at their next poll, which removes
    the lead of every listed number still to be called (campaigns.outbound).
    """
    CampaignBatch.objects.filter(
        campaign__user=user, elevenlabs_campaign_id__isnull=False, settled_at__isnull=True
    ).update(progress_signature="")


# --- The hash an erased number is kept as ------------------------------------------------------


def _key() -> bytes:
    """The one HMAC key, made the first time it is needed (the primary key decides a race)."""
    key = PersonalDataKey.objects.filter(pk=1).values_list("key", flat=True).first()
    if key is None:
        key = PersonalDataKey.objects.get_or_create(pk=1, defaults={"key": secrets.token_hex(32)})[0].key
    return key.encode()


def number_hashes(numbers: Iterable[str]) -> dict[str, str]:
    """{HMAC-SHA256 of each E.164 number: the number}. Keyed, because a bare hash of a phone
    number is undone by hashing every number of its country."""
    key = _key()
    return {hmac.new(key, number.encode(), hashlib.sha256).hexdigest(): number for number in numbers}


def number_hash(number: str) -> str:
    return next(iter(number_hashes([number])))


def _hashed_entries(user) -> bool:
    return Suppression.objects.filter(user=user, number_hash__isnull=False).exists()


# --- Reading numbers --------------------------------------------------------------------------


def phone_number_normalise(value: str, *, default_country: str | None = None, field: str = "phone_number") -> str:
    """`value` in E.164, read exactly as one row of a recipients file is read.

    The number goes through RecipientsReader as a one-row file, so whatever a file accepts
    (`+`, `00`, spaces, Excel's quoting, `default_country` for numbers without a country code)
    is accepted here, and whatever it refuses is refused with the same reason. Raises
    ValidationFailed naming `field` (or default_country when that is unknown).
    """
    value = (value or "").strip()
    if not value:
        raise ValidationFailed(f"{field} is required: enter a phone number.", field=field, details={"field": field})
    if len(value) > MAX_TYPED_NUMBER_CHARS:
        return _refuse(field, value, "is not a phone number: it is too long")
    row = io.StringIO()
    csv.writer(row, lineterminator="\n").writerow([value])
    reader = _reader(io.BytesIO(f"phone_number\n{row.getvalue()}".encode()), default_country=default_country)
    try:
        numbers = [recipient.phone_number for recipient in reader]
    except RecipientsFileError:
        return _refuse(field, value, "is not a phone number")
    if not numbers:
        return _refuse(field, value, reader.errors[0].reason if reader.errors else "is not a phone number")
    return numbers[0]


def _refuse(field: str, value: str, reason: str) -> NoReturn:
    shown = value if len(value) <= 40 else value[:39] + "…"
    raise ValidationFailed(f"The {field} '{shown}' {reason}.", field=field, details={"field": field})


def _limits() -> Limits:
    # The settings a recipients file is read under: a hostile file gets the same answer here.
    # (Not imported from services, which imports this module to leave listed numbers out.)
    return Limits(
        max_rows=settings.RECIPIENTS_MAX_ROWS,
        max_columns=settings.RECIPIENTS_MAX_COLUMNS,
        max_cell_chars=settings.RECIPIENTS_MAX_CELL_CHARS,
        max_xlsx_bytes=settings.RECIPIENTS_MAX_XLSX_BYTES,
    )


def _reader(fileobj, *, default_country: str | None, filename: str = "") -> RecipientsReader:
    limits = _limits()
    try:
        # Nothing is stored per number but the number: the line limit is the only count limit.
        return RecipientsReader(
            fileobj,
            filename=filename,
            default_country=(default_country or "").strip() or None,
            max_recipients=limits.max_rows,
            limits=limits,
        )
    except ValueError as exc:  # an unknown default_country
        raise ValidationFailed(str(exc), field="default_country", details={"field": "default_country"}) from None


def phone_number_display(e164: str) -> str:
    """The number as a person reads it: "+1 415-555-2671"."""
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return e164


def _reason_clean(reason: str | None) -> str:
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON_CHARS:
        raise ValidationFailed(
            f"The reason is {len(reason):,} characters long; at most {MAX_REASON_CHARS} are kept.",
            field="reason",
            details={"field": "reason"},
        )
    return reason


# --- Writes -----------------------------------------------------------------------------------


def suppression_add(
    *,
    user,
    phone_number: str,
    reason: str = "",
    source: str,
    campaign: Campaign | None = None,
    default_country: str | None = None,
) -> tuple[Suppression, bool]:
    """Put a number on the user's list; `created` is False when it was there already.

    A number already listed is not an error: its entry is returned unchanged (reason, source
    and date are those of the first time). Raises ValidationFailed for a number that is not one.
    """
    if source not in Suppression.Source.values:
        raise ValueError(f"Unknown suppression source {source!r}")
    if campaign is not None and campaign.user_id != user.pk:
        raise ValueError("A suppression can only be learned from one of the same account's campaigns.")
    e164 = phone_number_normalise(phone_number, default_country=default_country)
    if _hashed_entries(user):
        erased = Suppression.objects.filter(user=user, number_hash=number_hash(e164)).first()
        if erased is not None:
            # Listed, and erased since: typing it again does not bring the number back.
            return erased, False
    # get_or_create survives a concurrent add of the same number: the unique constraint decides.
    suppression, created = Suppression.objects.get_or_create(
        user=user,
        phone_number=e164,
        defaults={"reason": _reason_clean(reason), "source": source, "campaign": campaign},
    )
    if created:
        on_suppressions_added(user=user)
        events.suppression_added(suppression=suppression)
    return suppression, created


@dataclass(frozen=True)
class ImportResult:
    added: int
    already_listed: int
    invalid_rows: int
    # Rows repeating a number earlier in the same file.
    duplicates_merged: int = 0
    # The first MAX_REPORTED_ERRORS invalid rows as the recipients reader words them, and the rest counted.
    errors: list[str] = dataclass_field(default_factory=list)


def suppressions_import(
    *, user, file, default_country: str | None = None, source: str, reason: str = ""
) -> ImportResult:
    """Put every valid number of a CSV or .xlsx file on the user's list.

    The file follows the recipients file rules (a phone_number column, or one number per line)
    and limits: past a size limit PayloadTooLarge (413), any other problem with the file as a
    whole ValidationFailed (422), and nothing is stored. Invalid rows do not stop the import:
    they are counted and listed. A file with no valid number at all is refused.
    """
    if source not in Suppression.Source.values:
        raise ValueError(f"Unknown suppression source {source!r}")
    reason = _reason_clean(reason)
    max_bytes = settings.RECIPIENTS_MAX_FILE_BYTES
    if file.size > max_bytes:
        raise PayloadTooLarge(
            f"The file is {file.size / 1_048_576:.1f} MB; the limit is {max_bytes / 1_048_576:.0f} MB. "
            "Split it into several files."
        )
    reader = _reader(file, default_country=default_country, filename=getattr(file, "name", "") or "")
    # Read and check the whole file before writing anything: a refused file stores nothing, and
    # the write transaction stays short.
    try:
        numbers = [recipient.phone_number for recipient in reader]
    except RecipientsFileTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    except RecipientsFileError as exc:
        raise ValidationFailed(str(exc), field="file", details={"field": "file"}) from None
    errors = _row_errors(reader)
    if not numbers:
        raise ValidationFailed(
            f"The file has no valid phone numbers ({reader.error_count:,} invalid "
            f"row{'s' if reader.error_count != 1 else ''}).",
            field="file",
            errors=errors or None,
            details={"field": "file", "invalid_rows": reader.error_count},
        )

    listed = suppressed_numbers(user=user, numbers=numbers)
    stamp = _insert(
        user=user, numbers=[number for number in numbers if number not in listed], reason=reason, source=source
    )
    # The rows this import stored carry its own instant: counted from the database, a number
    # another request listed meanwhile is not claimed as added here.
    stored = Suppression.objects.filter(user=user, created_at=stamp)
    added = stored.count()
    if added:
        on_suppressions_added(user=user)
        if events.wanted(user=user, type="suppression.added"):
            for suppression in stored.iterator(chunk_size=2_000):
                events.suppression_added(suppression=suppression)
    return ImportResult(
        added=added,
        already_listed=len(numbers) - added,
        invalid_rows=reader.error_count,
        duplicates_merged=reader.duplicates_merged,
        errors=errors,
    )


def _insert(*, user, numbers: list[str], reason: str, source: str) -> dt.datetime:
    """Store new entries in one transaction, skipping a number another request listed meanwhile.

    Returns the created_at every stored row has. One INSERT ... SELECT per chunk, the numbers
    sent as one array parameter as in suppressed_numbers: a model instance or a statement per
    number (bulk_create, executemany) would cost several times the insert itself.
    """
    meta = Suppression._meta
    quote = connection.ops.quote_name
    columns = ", ".join(
        quote(meta.get_field(name).column) for name in ("user", "phone_number", "reason", "source", "created_at")
    )
    if connection.vendor == "postgresql":
        numbers_from, encode = "unnest(%s::text[]) AS listed(value)", list
    else:  # SQLite, the project's other database
        numbers_from, encode = "json_each(%s)", json.dumps
    # "WHERE true" keeps SQLite from reading ON CONFLICT as part of the SELECT's join.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT %s, value, %s, %s, %s FROM {numbers_from} "
        "WHERE true ON CONFLICT DO NOTHING"
    )
    now = timezone.now()
    # Written as the ORM writes a DateTimeField, so that filtering on it finds these rows.
    created_at = connection.ops.adapt_datetimefield_value(now)
    with transaction.atomic(), connection.cursor() as cursor:
        for chunk in _chunks(numbers, INSERT_CHUNK):
            cursor.execute(sql, [user.pk, reason, source, created_at, encode(chunk)])
    return now


def import_summary(result: ImportResult, *, errors_shown: int = 0) -> str:
    """What an import did, in words: "312 numbers added, 4 already on the list, 2 rows invalid"."""

    def count(number: int, noun: str) -> str:
        return f"{number:,} {noun}{'' if number == 1 else 's'}"

    parts = [f"{count(result.added, 'number')} added"]
    if result.already_listed:
        parts.append(f"{result.already_listed:,} already on the list")
    if result.duplicates_merged:
        parts.append(f"{count(result.duplicates_merged, 'repeated row')} merged")
    if result.invalid_rows:
        parts.append(f"{count(result.invalid_rows, 'row')} invalid")
    summary = ", ".join(parts)
    if result.invalid_rows and errors_shown:
        shown = result.errors[:errors_shown]
        more = result.invalid_rows - len(shown)
        summary += ": " + "; ".join(shown) + (f"; … and {more:,} more" if more > 0 else "")
    return summary


def _row_errors(reader: RecipientsReader) -> list[str]:
    errors = [str(error) for error in reader.errors[:MAX_REPORTED_ERRORS]]
    if reader.error_count > len(errors):
        errors.append(f"… and {reader.error_count - len(errors):,} more invalid rows.")
    return errors


def suppression_remove(*, user, phone_number: str) -> bool:
    """Take a number off the user's list; False when it was not on it.

    Raises ValidationFailed for a value that is not a phone number.
    """
    e164 = phone_number_normalise(phone_number)
    entries = Q(phone_number=e164)
    if _hashed_entries(user):
        entries |= Q(number_hash=number_hash(e164))
    deleted, _ = Suppression.objects.filter(entries, user=user).delete()
    return deleted > 0


# --- Reads ------------------------------------------------------------------------------------


def suppressed_numbers(*, user, numbers: Iterable[str]) -> set[str]:
    """Which of `numbers` (E.164) are on the user's list.

    For the create of a campaign of up to 300,000 numbers: one query per LOOKUP_CHUNK numbers,
    each answered from the (user, phone_number) unique index. The chunk goes to the database as
    one parameter (an array on PostgreSQL, a JSON array on SQLite): an IN list of that many
    parameters costs the ORM several times the query itself, and may pass SQLite's parameter
    limit.

    An erased number's entry matches too: when the account has any, each chunk's numbers are
    hashed and looked up by hash as well (one more query per chunk).
    """
    by_number, encode = _lookup_sql("phone_number")
    by_hash, _ = _lookup_sql("number_hash")
    meta = Suppression._meta
    quote = connection.ops.quote_name
    # The first chunk's query also answers whether the user has erased entries (a "" row: no
    # E.164 number is empty), so a list without any costs no query more than before.
    first = (
        f"{by_number} UNION ALL SELECT '' WHERE EXISTS (SELECT 1 FROM {quote(meta.db_table)} "
        f"WHERE {quote(meta.get_field('user').column)} = %s "
        f"AND {quote(meta.get_field('number_hash').column)} IS NOT NULL)"
    )
    hashed = None
    found: set[str] = set()
    with connection.cursor() as cursor:
        for chunk in _chunks(numbers, LOOKUP_CHUNK):
            if hashed is None:
                cursor.execute(first, [user.pk, encode(chunk), user.pk])
                rows = {row[0] for row in cursor.fetchall()}
                hashed = "" in rows
                found.update(rows - {""})
            else:
                cursor.execute(by_number, [user.pk, encode(chunk)])
                found.update(row[0] for row in cursor.fetchall())
            if hashed:
                hashes = number_hashes(chunk)
                cursor.execute(by_hash, [user.pk, encode(list(hashes))])
                found.update(hashes[row[0]] for row in cursor.fetchall())
    return found


def _lookup_sql(field: str) -> tuple[str, object]:
    """The query for the entries of a user (first parameter) whose `field` is one of a chunk of
    values (second parameter), and how the chunk is sent."""
    meta = Suppression._meta
    quote = connection.ops.quote_name
    column = quote(meta.get_field(field).column)
    select = f"SELECT {column} FROM {quote(meta.db_table)} WHERE {quote(meta.get_field('user').column)} = %s"
    if connection.vendor == "postgresql":
        return f"{select} AND {column} = ANY(%s)", list
    # SQLite, the project's other database
    return f"{select} AND {column} IN (SELECT value FROM json_each(%s))", json.dumps


def suppressions_list(*, user, search: str | None = None) -> QuerySet[Suppression]:
    """The user's list, newest first; `search` finds its digits in the number or its words in the reason."""
    suppressions = Suppression.objects.filter(user=user).select_related("campaign").order_by("-created_at", "-id")
    search = (search or "").replace("\x00", "").strip()
    if not search:
        return suppressions
    matches = Q()
    words = search.split()
    if words:
        in_reason = Q()
        for word in words:
            in_reason &= Q(reason__icontains=word)
        matches |= in_reason
    digits = "".join(char for char in search if char.isdigit())
    if digits:
        matches |= Q(phone_number__contains=digits)
    return suppressions.filter(matches)


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
