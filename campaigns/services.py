"""Every write the service makes. Views, forms, tasks, admin and commands call these."""

import contextlib
import datetime as dt
import hmac
import itertools
import json
import logging
import marshal
import secrets
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import phonenumbers
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from campaigns import control, elevenlabs, selectors, sqlrows, suppressions, tasks
from campaigns.errors import AlreadyCreated, Conflict, NotFound, PayloadTooLarge, UpstreamError, ValidationFailed
from campaigns.models import Agent, ApiKey, Campaign, PhoneNumber, Profile, Recipient
from campaigns.policy import RECIPIENT_ZONE, Policy, policy_parse
from campaigns.recipients import (
    MAX_REPORTED_ERRORS,
    ROLE_OVERRIDE,
    Column,
    Limits,
    ParsedRecipient,
    RecipientsFileError,
    RecipientsFileTooLarge,
    RecipientsReader,
)
from campaigns.scheduling import local_to_utc, zone_get, zone_names

logger = logging.getLogger(__name__)

INSERT_CHUNK = 5_000
# Normalised recipients wait in memory up to this size before the file is read to its end and
# the transaction starts, and on disk beyond it.
SPOOL_MEMORY_BYTES = 16 * 1_048_576
# last_used_at is a hint, not an audit log: writing it at most once a minute keeps
# authentication at one read per request.
API_KEY_TOUCH_INTERVAL = dt.timedelta(seconds=60)


# --- API keys ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    raw_key: str  # shown once, never stored


def api_key_create(*, user, name: str = "") -> CreatedApiKey:
    """Create a key for `user`. The raw key is in the result and nowhere else."""
    raw_key = f"vk_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        user=user, name=name, prefix=raw_key[: ApiKey.PREFIX_LENGTH], key_hash=ApiKey.hash_key(raw_key)
    )
    return CreatedApiKey(api_key=api_key, raw_key=raw_key)


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key` (its user loaded), or None. One indexed query."""
    key_hash = ApiKey.hash_key(raw_key)
    api_key = selectors.api_key_active(key_hash=key_hash)
    if api_key is None or not hmac.compare_digest(api_key.key_hash, key_hash):
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > API_KEY_TOUCH_INTERVAL:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_rename(*, api_key: ApiKey, name: str) -> ApiKey:
    """Give a key another name; a revoked key may be renamed too (its history stays readable)."""
    if api_key.name != name:
        api_key.name = name
        api_key.save(update_fields=["name"])
    return api_key


# --- Campaigns ---------------------------------------------------------------------------


def user_timezone_set(*, user, zone_name: str) -> str:
    """Keep the user's time zone (an IANA name): times are shown in it, schedules read in it."""
    if zone_name not in zone_names():
        raise ValidationFailed(f"Unknown time zone {zone_name!r}.", field="timezone")
    Profile.objects.update_or_create(user=user, defaults={"timezone": zone_name})
    return zone_name


def _schedule_resolve(*, send_immediately, schedule_date, schedule_time, zone_name) -> dt.datetime | None:
    if send_immediately:
        if schedule_date or schedule_time:
            raise ValidationFailed(
                "schedule_date and schedule_time are only used when send_immediately is false.",
                field="schedule_date",
            )
        return None
    missing = [
        name for name, value in (("schedule_date", schedule_date), ("schedule_time", schedule_time)) if not value
    ]
    if missing:
        raise ValidationFailed(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required when send_immediately is false.",
            field=missing[0],
        )
    scheduled_at = local_to_utc(schedule_date, schedule_time, zone_name)
    if scheduled_at <= timezone.now():
        raise ValidationFailed(
            f"The schedule {schedule_date.isoformat()} {schedule_time.strftime('%H:%M:%S')} ({zone_name}) "
            "is in the past. Pick a future date and time.",
            field="schedule_date",
        )
    return scheduled_at


def _rows_error(reader: RecipientsReader) -> ValidationFailed:
    total = reader.error_count
    errors = [str(error) for error in reader.errors]
    if total > len(errors):
        errors.append(f"… and {total - len(errors):,} more invalid rows.")
    return ValidationFailed(
        f"The recipients file has {total:,} invalid row{'s' if total != 1 else ''}. Fix "
        f"{'them' if total != 1 else 'it'}, or send skip_invalid_rows=true to create the campaign "
        "from the valid rows only.",
        field="recipients_file",
        errors=errors,
        details={
            "invalid_rows": [error.as_dict() for error in reader.errors],
            "invalid_rows_total": total,
            "rows_read": reader.rows_read,
        },
    )


def _file_refused(exc: RecipientsFileError) -> PayloadTooLarge | ValidationFailed:
    if isinstance(exc, RecipientsFileTooLarge):
        return PayloadTooLarge(f"{exc}")
    return ValidationFailed(f"{exc}", field="recipients_file")


@dataclass
class _Suppressed:
    """The file's numbers left out because they are on the account's do-not-call list."""

    count: int = 0
    zones: Counter = field(default_factory=Counter)
    sample: list[str] = field(default_factory=list)  # the first few, for the preview


def _without_suppressed(
    reader: RecipientsReader, *, user, listed_any: bool, suppressed: _Suppressed
) -> Iterator[ParsedRecipient]:
    """The reader's recipients minus the account's do-not-call list (`listed_any`: whether it
    has any entry), checked a chunk at a time."""
    if not listed_any:
        yield from reader
        return
    chunk: list[ParsedRecipient] = []
    for recipient in itertools.chain(reader, [None]):
        if recipient is not None:
            chunk.append(recipient)
            if len(chunk) < INSERT_CHUNK:
                continue
        listed = suppressions.suppressed_numbers(user=user, numbers=[row.phone_number for row in chunk])
        for row in chunk:
            if row.phone_number in listed:
                suppressed.count += 1
                suppressed.zones[row.timezone] += 1
                if len(suppressed.sample) < MAX_REPORTED_ERRORS:
                    suppressed.sample.append(row.phone_number)
            else:
                yield row
        chunk = []


@contextlib.contextmanager
def _recipients_spooled(
    *, reader: RecipientsReader, skip_invalid_rows: bool, user, listed_any: bool, suppressed: _Suppressed
) -> Iterator[tempfile.SpooledTemporaryFile]:
    """Read the whole file into a spool of insert-ready rows, before any transaction starts.

    Reading and validating is most of a create's time: done here, it never holds the database's
    write lock (SQLite has one for the whole database). Numbers on the account's do-not-call list
    are left out and counted in `suppressed`. Rows are spooled in the form the insert
    sends as is (COPY text for PostgreSQL, marshalled tuples otherwise), in chunks, so the
    transaction does no per-row work of its own. Raises the API error for a file the reader
    refuses; the caller checks the reader's counters.
    """
    encode_chunk = _copy_text if connection.vendor == "postgresql" else marshal.dumps
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as spool:
        chunk = []
        try:
            for row in _without_suppressed(reader, user=user, listed_any=listed_any, suppressed=suppressed):
                if reader.error_count and not skip_invalid_rows:
                    # The file will be refused: keep reading to report every problem, stop storing.
                    chunk.clear()
                    continue
                chunk.append(
                    (
                        row.phone_number,
                        row.line,
                        _json_object(row.variables) if row.variables else "{}",
                        _json_object(row.overrides) if row.overrides else "{}",  # most rows override nothing
                        row.timezone,
                    )
                )
                if len(chunk) == INSERT_CHUNK:
                    _spool_write(spool, encode_chunk(chunk))
                    chunk = []
        except RecipientsFileError as exc:
            raise _file_refused(exc) from None
        if chunk:
            _spool_write(spool, encode_chunk(chunk))
        spool.seek(0)
        yield spool


def _json_object(mapping: dict[str, str]) -> str:
    """What json.dumps(mapping, ensure_ascii=False, separators=(",", ":")) writes for text keys and
    values, without the encoder's per-call setup, which costs more than the row's own work."""
    quoted = json.encoder.encode_basestring
    return "{" + ",".join([f"{quoted(key)}:{quoted(value)}" for key, value in mapping.items()]) + "}"


def _copy_text(chunk: list) -> bytes:
    """Rows in COPY's text format, without the campaign column (written in at insert time).

    JSON has no raw tab or line break and IANA zone names no tab or backslash, so backslashes in
    the JSON are the only thing to escape, and every line break ends a row.
    """
    backslash, escaped = "\\", "\\\\"
    return "".join(
        [
            f"{phone}\t{line}\t{variables.replace(backslash, escaped)}\t{overrides.replace(backslash, escaped)}"
            f"\t{zone}\n"
            for phone, line, variables, overrides, zone in chunk
        ]
    ).encode()


def _spool_write(spool, data: bytes) -> None:
    # Length-prefixed, so a chunk is read back with one read() (marshal.load reads in tiny pieces).
    spool.write(len(data).to_bytes(8, "little"))
    spool.write(data)


def _spool_chunks(spool) -> Iterator[bytes]:
    while size := spool.read(8):
        yield spool.read(int.from_bytes(size, "little"))


def _recipients_insert(*, campaign: Campaign, spool: tempfile.SpooledTemporaryFile) -> None:
    """Store the spooled recipients; the caller's transaction makes it all-or-nothing.

    Rows go in as spooled (COPY on PostgreSQL, executemany elsewhere): building a model
    instance per recipient would cost more than reading the file.
    """
    meta = Recipient._meta
    fields = ("phone_number", "line", "variables", "overrides", "timezone", "campaign")
    columns = [meta.get_field(name).column for name in fields]
    names = ", ".join(columns)
    # The campaign's id is an integer the database gave: safe to write into the statement and rows.
    campaign_id = int(campaign.pk)

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            row_end = f"\t{campaign_id}\n".encode()
            with cursor.copy(f"COPY {meta.db_table} ({names}) FROM STDIN") as copy:
                for chunk in _spool_chunks(spool):
                    copy.write(chunk.replace(b"\n", row_end))
            return
        sql = f"INSERT INTO {meta.db_table} ({names}) VALUES (%s, %s, %s, %s, %s, {campaign_id})"
        for chunk in _spool_chunks(spool):
            cursor.executemany(sql, marshal.loads(chunk))


# What each override column of a file replaces, and the switch in the agent's Security tab
# (ElevenLabs) that allows a call to replace it.
OVERRIDE_SETTINGS = {
    "language": ("language", "Agent language"),
    "first_message": ("first message", "First message"),
    "system_prompt": ("system prompt", "System prompt"),
    "voice_id": ("voice", "Voice"),
}


def _phone_number_display(phone_number: PhoneNumber) -> str:
    """The number as a person reads it, with its label: "+1 415-555-0199 (Support line)"."""
    try:
        number = phonenumbers.format_number(
            phonenumbers.parse(phone_number.phone_number), phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
    except phonenumbers.NumberParseException:
        number = phone_number.phone_number
    return f"{number} ({phone_number.label})" if phone_number.label else number


def _overrides_refused(*, agent: Agent, columns: list[Column]) -> None:
    """Refuse override columns the agent does not allow: ElevenLabs would fail every call of the batch.

    Nothing is checked while the agent's permissions were never read (NULL until a sync).
    """
    permissions = agent.override_permissions
    if not isinstance(permissions, dict):
        return
    messages = []
    refused = []
    for column in columns:
        if column.role != ROLE_OVERRIDE or permissions.get(column.name) is True:
            continue
        refused.append(column.heading)
        replaced, switch = OVERRIDE_SETTINGS[column.name]
        messages.append(
            f"The column {column.heading} would override the agent's {replaced}, which the agent "
            f"“{agent.name}” does not allow. In ElevenLabs, open the agent's Security tab, turn on the "
            f"{switch} override, then sync agents here — or remove the column."
        )
    if messages:
        raise ValidationFailed(
            messages[0],
            field="recipients_file",
            errors=messages,
            details={"field": "recipients_file", "refused_columns": refused},
        )


def _recipients_limits() -> Limits:
    return Limits(
        max_rows=settings.RECIPIENTS_MAX_ROWS,
        max_columns=settings.RECIPIENTS_MAX_COLUMNS,
        max_cell_chars=settings.RECIPIENTS_MAX_CELL_CHARS,
        max_xlsx_bytes=settings.RECIPIENTS_MAX_XLSX_BYTES,
    )


class _Inputs(NamedTuple):
    agent: Agent
    phone_number: PhoneNumber
    zone_name: str
    scheduled_at: dt.datetime | None  # UTC; None to send now
    policy: Policy
    reader: RecipientsReader
    listed_any: bool  # whether the account's do-not-call list has any entry


def _campaign_inputs(
    *,
    user,
    agent_id,
    phone_number_id,
    recipients_file,
    send_immediately,
    schedule_date,
    schedule_time,
    timezone_name,
    default_country,
    policy_fields,
) -> _Inputs:
    """The checks campaign_create and campaign_preview share, in the order errors are reported.

    The reader of the file is not read yet; it raises ValidationFailed as soon as it has read the
    header if the file overrides something the agent does not allow, before any recipient.
    """
    references = selectors.account_references(user=user, agent_id=agent_id, phone_number_id=phone_number_id)
    agent, phone_number = references.agent, references.phone_number
    if agent is None:
        raise selectors.agent_not_found(agent_id)
    if phone_number is None:
        raise selectors.phone_number_not_found(phone_number_id)
    if not phone_number.supports_outbound:
        raise ValidationFailed(
            f"{_phone_number_display(phone_number)} cannot place calls: ElevenLabs reports it as "
            "inbound-only. Choose another number.",
            field="phone_number_id",
            details={"field": "phone_number_id"},
        )

    zone_name = (timezone_name or "").strip() or selectors.user_timezone(user=user)
    zone_get(zone_name)
    scheduled_at = _schedule_resolve(
        send_immediately=send_immediately,
        schedule_date=schedule_date,
        schedule_time=schedule_time,
        zone_name=zone_name,
    )
    policy = policy_parse(**(policy_fields or {}))

    max_bytes = settings.RECIPIENTS_MAX_FILE_BYTES
    if recipients_file.size > max_bytes:
        raise PayloadTooLarge(
            f"The recipients file is {recipients_file.size / 1_048_576:.1f} MB; the limit is "
            f"{max_bytes / 1_048_576:.0f} MB. Split it into several campaigns."
        )
    try:
        reader = RecipientsReader(
            recipients_file,
            filename=recipients_file.name or "",
            default_country=(default_country or "").strip() or None,
            max_recipients=settings.RECIPIENTS_MAX_PER_CAMPAIGN,
            limits=_recipients_limits(),
            check_columns=lambda columns: _overrides_refused(agent=agent, columns=columns),
            # A number whose area keeps several clocks is called on the campaign's.
            default_timezone=zone_name,
        )
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="default_country") from None
    return _Inputs(agent, phone_number, zone_name, scheduled_at, policy, reader, references.has_suppressions)


def campaign_create(
    *,
    user,
    name: str,
    agent_id: str,
    phone_number_id,
    recipients_file,
    send_immediately: bool,
    schedule_date: dt.date | None = None,
    schedule_time: dt.time | None = None,
    timezone_name: str | None = None,
    default_country: str | None = None,
    skip_invalid_rows: bool = False,
    source_upload: str | None = None,
    policy_fields: dict | None = None,
) -> Campaign:
    """Create a campaign and its recipients from an uploaded file, all or nothing.

    An immediate campaign is stored `pending`, a scheduled one `scheduled` with its UTC
    instant. Raises NotFound for an agent or phone number outside the user's account,
    ValidationFailed for any problem with the schedule or the file (nothing is stored),
    PayloadTooLarge for a file above the configured size or past a reading limit. `source_upload`
    names the kept preview upload the file comes from: one upload makes at most one campaign, and
    a second create with it raises AlreadyCreated (also when both run at the same moment).
    `policy_fields` are the calling policy's fields as the client sent them (campaigns.policy).
    Numbers on the account's do-not-call list are left out and counted in `suppressed_count`.

    The file is read and checked in full before the transaction starts; the transaction only
    writes, so a large upload never keeps other requests waiting on the database.
    """
    if source_upload and Campaign.objects.filter(source_upload=source_upload).exists():
        raise AlreadyCreated(source_upload=source_upload)
    agent, phone_number, zone_name, scheduled_at, policy, reader, listed_any = _campaign_inputs(
        user=user,
        agent_id=agent_id,
        phone_number_id=phone_number_id,
        recipients_file=recipients_file,
        send_immediately=send_immediately,
        schedule_date=schedule_date,
        schedule_time=schedule_time,
        timezone_name=timezone_name,
        default_country=default_country,
        policy_fields=policy_fields,
    )

    suppressed = _Suppressed()
    with _recipients_spooled(
        reader=reader,
        skip_invalid_rows=skip_invalid_rows,
        user=user,
        listed_any=listed_any,
        suppressed=suppressed,
    ) as spool:
        if reader.error_count and not skip_invalid_rows:
            raise _rows_error(reader)
        if reader.recipients_count == 0:
            raise ValidationFailed(
                f"The recipients file has no valid phone numbers ({reader.error_count:,} invalid rows).",
                field="recipients_file",
                errors=[str(error) for error in reader.errors] or None,
            )
        recipients_count = reader.recipients_count - suppressed.count
        if recipients_count == 0:
            raise ValidationFailed(
                f"Every number in the file ({suppressed.count:,}) is on your do-not-call list: nobody is left to call.",
                field="recipients_file",
            )
        _concurrency_refused(policy, recipients_count)
        with transaction.atomic():
            try:
                # A concurrent create from the same upload waits here for the other to commit, then
                # fails on the unique source_upload.
                campaign = Campaign(
                    user=user,
                    name=name,
                    agent=agent,
                    phone_number=phone_number,
                    status=Campaign.Status.PENDING if send_immediately else Campaign.Status.SCHEDULED,
                    send_immediately=send_immediately,
                    scheduled_at=scheduled_at,
                    timezone=zone_name,
                    source_upload=source_upload or None,
                    recipients_count=recipients_count,
                    suppressed_count=suppressed.count,
                    time_zones=_time_zones(reader, policy, suppressed),
                    calling_hours=policy.calling_hours,
                    calling_days=policy.calling_days,
                    calling_timezone=policy.timezone,
                    max_attempts=policy.max_attempts,
                    retry_delay_minutes=policy.retry_delay_minutes,
                    max_concurrent_calls=policy.max_concurrent_calls,
                    duplicates_merged=reader.duplicates_merged,
                    invalid_rows_skipped=reader.error_count,
                    import_errors=[error.as_dict() for error in reader.errors[:MAX_REPORTED_ERRORS]],
                )
                # Written out (campaigns.sqlrows): the ORM's insert cost more CPU than the rest of
                # a 10-row create's transaction.
                sqlrows.insert(campaign)
            except IntegrityError:
                if source_upload:
                    raise AlreadyCreated(source_upload=source_upload) from None
                raise
            _recipients_insert(campaign=campaign, spool=spool)
            if recipients_count >= RECIPIENTS_ANALYZE_AFTER:
                # Before the dispatch: the first poll must find the statistics up to date.
                transaction.on_commit(_recipients_analyze)
            if send_immediately:
                transaction.on_commit(lambda: _dispatch_queue(campaign.pk))
    return campaign


def _concurrency_refused(policy: Policy, recipients_count: int) -> None:
    """ElevenLabs takes at most ELEVENLABS_BATCH_MAX_RECIPIENTS per batch and runs a campaign's
    batches side by side, each at least one call at a time: a cap below the number of batches
    could not be kept."""
    parts = -(-recipients_count // settings.ELEVENLABS_BATCH_MAX_RECIPIENTS)
    if policy.max_concurrent_calls is not None and policy.max_concurrent_calls < parts:
        raise ValidationFailed(
            f"max_concurrent_calls is {policy.max_concurrent_calls}, but {recipients_count:,} recipients go out as "
            f"{parts} batches of at most {settings.ELEVENLABS_BATCH_MAX_RECIPIENTS:,} that call side by side: "
            f"allow at least {parts} calls at once, or split the file into several campaigns.",
            field="max_concurrent_calls",
            details={"field": "max_concurrent_calls"},
        )


def _time_zones(reader: RecipientsReader, policy: Policy, suppressed: _Suppressed) -> dict[str, int]:
    """Recipients by the zone their calls are timed in: their own, or the one fixed for everyone."""
    zones = reader.time_zones - suppressed.zones
    if policy.has_hours and policy.timezone != RECIPIENT_ZONE:
        return {policy.timezone: zones.total()}
    return dict(sorted(zones.items(), key=lambda item: (-item[1], item[0])))


# A create this large refreshes PostgreSQL's statistics of the recipients table itself.
RECIPIENTS_ANALYZE_AFTER = 10_000


def _recipients_analyze() -> None:
    """ANALYZE the recipients table after a large create, once it is committed.

    Until statistics count the new rows (autovacuum off, or not round yet) the planner takes
    the table for nearly empty and matches a poll's reports through the (campaign, status)
    index, reading every recipient of the campaign in that status for each report: a
    10,000-recipient batch of a 1,000,000-recipient campaign took over 5 minutes to apply,
    0.1 s once analyzed (bench/fleet_million.py). ANALYZE reads a sample, under a second.
    Errors are only logged: the campaign is committed and its answer must not fail now.
    """
    if connection.vendor != "postgresql":
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Recipient._meta.db_table}")
    except Exception:
        logger.warning("Could not analyze %s after a large create", Recipient._meta.db_table, exc_info=True)


def _dispatch_queue(campaign_id: int) -> None:
    """Queue a dispatch after the commit; the campaign is stored whatever the broker does.

    A broker that is down must not turn a stored campaign into an error answer (a client
    would resend and create it twice): the beat sweep queues campaigns whose message never
    left. Every error is caught here because the commit has already happened.
    """
    try:
        tasks.campaign_dispatch.delay(campaign_id)
    except Exception:
        logger.warning("Could not queue campaign %s; the beat sweep will send it", campaign_id, exc_info=True)


def campaign_cancel(*, campaign: Campaign, client=None) -> "control.CancelResult":
    """Cancel a campaign: no batch is sent after this, every batch sent is cancelled at ElevenLabs.

    See `campaigns.control`. Raises Conflict when the campaign has already ended.
    """
    return control.campaign_cancel(campaign=campaign, client=client)


def campaign_retry(*, campaign: Campaign, client=None) -> "control.RetryResult":
    """Call the campaign's failed and unanswered recipients again, batch by batch (see `campaigns.control`).

    Raises Conflict when nothing can be retried, UpstreamError when ElevenLabs refused every batch.
    """
    return control.campaign_retry(campaign=campaign, client=client)


def campaign_pause(*, campaign: Campaign, client=None) -> Campaign:
    """Hold a campaign: nothing more is called until it is resumed (see `campaigns.control`).

    Raises Conflict when the campaign has ended or is being cancelled. A campaign already paused
    is returned as it is.
    """
    return control.campaign_pause(campaign=campaign, client=client)


def campaign_resume(*, campaign: Campaign, client=None) -> Campaign:
    """Resume a paused campaign: everyone it has not called yet is called, once (see `campaigns.control`).

    Raises Conflict when the campaign is not paused, or ElevenLabs has not yet confirmed the pause.
    """
    return control.campaign_resume(campaign=campaign, client=client)


# --- Conversations -----------------------------------------------------------------------

# The conversation's status in ElevenLabs' words: the post-call webhook is only sent once it is done.
CONVERSATION_DONE = "done"


@dataclass(frozen=True)
class ConversationRecord:
    """One call's conversation as the API shows it, from what webhooks stored or from ElevenLabs."""

    conversation_id: str
    agent_id: str
    agent_name: str
    status: str
    transcript: list[dict]  # {"role", "content", "timestamp"}
    duration: int | None
    summary: str
    created_at: dt.datetime | None
    from_elevenlabs: bool


def _conversation_turns(turns) -> list[dict]:
    """ElevenLabs' transcript turns (role, message, time_in_call_secs) as role, content, timestamp."""
    return [
        {
            "role": turn.get("role") or "",
            "content": turn.get("message") or "",
            "timestamp": turn.get("time_in_call_secs"),
        }
        for turn in turns or []
        if isinstance(turn, dict)
    ]


def _unix_instant(seconds: int | None) -> dt.datetime | None:
    if seconds is None:
        return None
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):  # a timestamp no calendar holds
        return None


def conversation_get(*, user, conversation_id: str, client=None) -> ConversationRecord:
    """A conversation of one of the user's calls: as its post-call webhook stored it, else asked of ElevenLabs.

    Raises NotFound when no call of the user's campaigns was this conversation (ElevenLabs is
    not asked then) or ElevenLabs no longer has it, UpstreamError when ElevenLabs fails.
    """
    call = selectors.conversation_call_get(user=user, conversation_id=conversation_id)
    agent = call.campaign.agent
    # Only the post-call webhook writes a transcript or a duration: without either, nothing was stored yet.
    if call.transcript or call.duration_secs is not None:
        return ConversationRecord(
            conversation_id=call.conversation_id,
            agent_id=agent.elevenlabs_agent_id,
            agent_name=agent.name,
            status=CONVERSATION_DONE,
            transcript=_conversation_turns(call.transcript),
            duration=call.duration_secs,
            summary=call.summary,
            created_at=call.started_at or call.created_at,
            from_elevenlabs=False,
        )
    client = client or elevenlabs.client_from_settings()
    try:
        remote = client.get_conversation(call.conversation_id)
    except elevenlabs.ElevenLabsNotFound:
        raise NotFound(
            f"ElevenLabs has no conversation '{conversation_id}' any more (its retention may have deleted it)."
        ) from None
    except elevenlabs.ElevenLabsError as exc:
        raise UpstreamError(f"Could not read conversation '{conversation_id}' from ElevenLabs: {exc}") from None
    return ConversationRecord(
        conversation_id=call.conversation_id,
        agent_id=remote.agent_id or agent.elevenlabs_agent_id,
        agent_name=agent.name,
        status=remote.status,
        transcript=_conversation_turns(remote.transcript),
        duration=remote.call_duration_secs,
        summary=remote.transcript_summary or "",
        created_at=_unix_instant(remote.start_time_unix_secs) or call.created_at,
        from_elevenlabs=True,
    )


# --- Agents and phone numbers from ElevenLabs --------------------------------------------


@dataclass(frozen=True)
class SyncResult:
    agents: int
    phone_numbers: int


def elevenlabs_sync(*, user, client=None) -> SyncResult:
    """Import and update the user's agents and phone numbers from the ElevenLabs workspace.

    Each agent's detail is read too, for the per-call overrides it allows, and each number's
    `supports_outbound`. Raises UpstreamError when ElevenLabs fails. Records that vanished
    from the workspace are kept: campaigns may still point at them.
    """
    client = client or elevenlabs.client_from_settings()
    try:
        agents = client.list_agents()
        permissions = {agent.agent_id: client.get_agent(agent.agent_id).override_permissions for agent in agents}
        numbers = client.list_phone_numbers()
    except elevenlabs.ElevenLabsError as exc:
        raise UpstreamError(f"Could not read the ElevenLabs workspace: {exc}") from None
    with transaction.atomic():
        for agent in agents:
            record = agent_upsert(user=user, elevenlabs_agent_id=agent.agent_id, name=agent.name or agent.agent_id)
            Agent.objects.filter(pk=record.pk).update(override_permissions=permissions[agent.agent_id])
        for number in numbers:
            phone_number_upsert(
                user=user,
                elevenlabs_phone_number_id=number.phone_number_id,
                phone_number=number.phone_number,
                label=number.label,
                provider=number.provider,
                supports_outbound=number.supports_outbound,
            )
    return SyncResult(agents=len(agents), phone_numbers=len(numbers))


def agent_upsert(*, user, elevenlabs_agent_id: str, name: str) -> Agent:
    agent, _ = Agent.objects.update_or_create(
        user=user, elevenlabs_agent_id=elevenlabs_agent_id, defaults={"name": name}
    )
    return agent


def phone_number_upsert(
    *,
    user,
    elevenlabs_phone_number_id: str,
    phone_number: str,
    label: str = "",
    provider: str = "",
    supports_outbound: bool = True,
) -> PhoneNumber:
    record, _ = PhoneNumber.objects.update_or_create(
        user=user,
        elevenlabs_phone_number_id=elevenlabs_phone_number_id,
        defaults={
            "phone_number": phone_number,
            "label": label,
            "provider": provider,
            "supports_outbound": supports_outbound,
        },
    )
    return record


# --- Demo --------------------------------------------------------------------------------


DEMO_USERNAME = "demo"
DEMO_API_KEY_NAME = "demo"


@dataclass(frozen=True)
class Demo:
    username: str
    password: str
    api_key: str
    agent: Agent
    phone_number: PhoneNumber


def demo_bootstrap(*, client=None, api_key: str = "", password: str = "") -> Demo:
    """A demo staff user with an API key, and the workspace's agents and phone numbers.

    `api_key` and `password` are what an earlier run printed (`bootstrap_demo` keeps them): both
    stay as they are while they still work, so a saved key and a signed-in browser survive a
    restart. The password is set only when it is not already the user's (setting one, even the
    same, signs every browser out); without one a random one is made. A key that no longer
    works (revoked, or from another database) is replaced by a new one, and every other demo key
    is revoked: exactly one works at any time. Raises UpstreamError when ElevenLabs cannot be
    read, ValidationFailed when the workspace has no agent or no phone number.
    """
    password = password or secrets.token_urlsafe(12)
    with transaction.atomic():
        user, _ = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
        user.is_staff = True
        user.is_superuser = True  # so the demo can open the admin too
        user.is_active = True
        if not user.check_password(password):
            user.set_password(password)
        user.save()
    elevenlabs_sync(user=user, client=client)
    # The first agent by name, the first number in the workspace's own order.
    agent = selectors.agent_list(user=user).first()
    phone_number = selectors.phone_number_list(user=user, outbound_only=True).order_by("pk").first()
    if agent is None or phone_number is None:
        raise ValidationFailed("The ElevenLabs workspace has no agent or no phone number to call with.")
    with transaction.atomic():
        if not demo_key_works(api_key=api_key):
            ApiKey.objects.filter(user=user, name=DEMO_API_KEY_NAME, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
            api_key = api_key_create(user=user, name=DEMO_API_KEY_NAME).raw_key
    return Demo(username=user.username, password=password, api_key=api_key, agent=agent, phone_number=phone_number)


def demo_key_works(*, api_key: str) -> bool:
    """Whether `api_key` is a key of the demo user that authenticates."""
    return bool(api_key) and (
        ApiKey.objects.filter(
            user__username=DEMO_USERNAME,
            user__is_active=True,
            key_hash=ApiKey.hash_key(api_key),
            revoked_at__isnull=True,
        ).exists()
    )


# --- Dispatching on demand -----------------------------------------------------------------


def campaign_dispatch_now(*, campaign: Campaign) -> Campaign:
    """Make a campaign that no worker has claimed yet due now, and queue its dispatch.

    A scheduled campaign's `scheduled_at` moves to now (an instant already past is kept), so
    the beat sweep sends it even if the queued message is lost. Raises Conflict when the
    campaign is already being sent or has ended.
    """
    now = timezone.now()
    waiting_statuses = (Campaign.Status.SCHEDULED, Campaign.Status.PENDING)
    with transaction.atomic():
        waiting = Campaign.objects.filter(pk=campaign.pk, status__in=waiting_statuses, dispatch_claimed_at__isnull=True)
        if not waiting.exists():
            campaign.refresh_from_db()
            if campaign.status in waiting_statuses:
                raise Conflict("The campaign is already being sent.")
            raise Conflict(
                f"The campaign is {campaign.get_status_display().lower()}; only a scheduled or pending "
                "campaign can be dispatched."
            )
        waiting.filter(status=Campaign.Status.SCHEDULED).exclude(scheduled_at__lte=now).update(
            scheduled_at=now, updated_at=now
        )
        # As in campaign_create, a broker that is down leaves the work to the beat sweep.
        transaction.on_commit(lambda: _dispatch_queue(campaign.pk))
    campaign.refresh_from_db()
    return campaign


# --- Editing and deleting in the admin -----------------------------------------------------

# Fields a campaign keeps once sent (selectors.campaign_sent); any other is its history.
CAMPAIGN_FIELDS_EDITABLE_WHEN_SENT = ("name",)
RECIPIENTS_DELETED_AT_ONCE = 5_000


def campaign_update(*, campaign: Campaign, changes: dict) -> list[str]:
    """Save `changes` (field name -> value) to a campaign; returns the fields it refused.

    Only the name changes once the campaign is sent. The rest is written only if the campaign
    is still unsent at that instant, in one conditional UPDATE: a worker claiming it meanwhile
    wins, and nothing it wrote (status, claim) is overwritten by a form loaded before.
    """
    now = timezone.now()
    kept = {name: value for name, value in changes.items() if name in CAMPAIGN_FIELDS_EDITABLE_WHEN_SENT}
    setup = {name: value for name, value in changes.items() if name not in kept}
    refused = []
    with transaction.atomic():
        if setup:
            unsent = Campaign.objects.filter(
                pk=campaign.pk,
                status__in=(Campaign.Status.SCHEDULED, Campaign.Status.PENDING),
                dispatch_claimed_at__isnull=True,
            )
            if not unsent.update(**setup, updated_at=now):
                refused = list(setup)
        if kept:
            Campaign.objects.filter(pk=campaign.pk).update(**kept, updated_at=now)
    campaign.refresh_from_db()
    return refused


def campaign_delete(*, campaign: Campaign) -> None:
    """Delete a campaign that never placed a call, with its recipients and batches.

    Raises Conflict with selectors.campaign_delete_refusal's reason otherwise. The campaign's
    row is locked first, so a worker cannot claim it halfway.
    """
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        if locked is None:
            return
        reason = selectors.campaign_delete_refusal(campaign=locked)
        if reason:
            raise Conflict(f"“{locked}” cannot be deleted: {reason}")
        # A chunk at a time: Django's cascade would load every recipient of the campaign at once.
        recipients = Recipient.objects.filter(campaign_id=locked.pk).order_by("pk").values_list("pk", flat=True)
        while chunk := list(recipients[:RECIPIENTS_DELETED_AT_ONCE]):
            Recipient.objects.filter(pk__in=chunk).delete()
        locked.delete()


# --- Previewing a campaign before it is created --------------------------------------------

PREVIEW_SAMPLE_SIZE = 5


@dataclass(frozen=True)
class PreviewColumn:
    """What one column of the file becomes for every call."""

    role: str  # "phone_number", "variable" or "override" (recipients.ROLE_*)
    # A variable's name exactly as the agent's prompt must write it, an override's column
    # (one of recipients.OVERRIDE_COLUMNS), or "phone_number".
    name: str
    # An override: whether the agent allows it; None while the agent's settings were never read.
    allowed: bool | None = None

    @property
    def placeholder(self) -> str:
        """How the agent's prompt refers to a variable: {{customerName}}."""
        return "{{" + self.name + "}}"

    @property
    def replaces(self) -> str:
        """What an override replaces, in words ("first message")."""
        return OVERRIDE_SETTINGS[self.name][0] if self.role == ROLE_OVERRIDE else ""


@dataclass(frozen=True)
class CampaignPreview:
    agent: Agent
    phone_number: PhoneNumber
    timezone_name: str
    scheduled_at: dt.datetime | None  # UTC; None when sent immediately
    rows_read: int
    recipients_count: int
    duplicates_merged: int
    invalid_rows_total: int
    invalid_rows: list  # RowError, the first MAX_REPORTED_ERRORS
    variables: list[str]  # the variables every recipient gets
    sample: list  # ParsedRecipient, the first PREVIEW_SAMPLE_SIZE
    skip_invalid_rows: bool
    # Every named column of the file, as its header writes it -> what it becomes, in file order.
    columns: dict[str, PreviewColumn]
    policy: Policy
    zone_groups: list  # ZoneGroup, largest first
    zones_defaulted: int  # rows whose number keeps no single clock: they get timezone_name
    suppressed_count: int
    suppressed_sample: list[str]  # the first of them, E.164

    @property
    def can_create(self) -> bool:
        """Whether campaign_create would accept the same inputs (as long as the schedule is still ahead)."""
        return self.calls_count > 0 and (self.invalid_rows_total == 0 or self.skip_invalid_rows)

    @property
    def calls_count(self) -> int:
        """Recipients the campaign would call: the file's, less the do-not-call list's."""
        return self.recipients_count - self.suppressed_count


@dataclass(frozen=True)
class ZoneGroup:
    """Recipients whose calling hours are read on one zone's clock, and when they can first be called."""

    zone: str
    count: int
    first_call_at: dt.datetime  # UTC


def campaign_preview(
    *,
    user,
    agent_id: str,
    phone_number_id,
    recipients_file,
    send_immediately: bool,
    schedule_date: dt.date | None = None,
    schedule_time: dt.time | None = None,
    timezone_name: str | None = None,
    default_country: str | None = None,
    skip_invalid_rows: bool = False,
    policy_fields: dict | None = None,
) -> CampaignPreview:
    """What campaign_create would make of these inputs, storing nothing.

    Makes the same checks and raises the same errors as campaign_create, except that invalid
    rows and a file without valid numbers are reported in the result (`can_create` is then
    false) rather than raised, so they can be shown before anything is created. `columns`
    says what each column of the file becomes.
    """
    agent, phone_number, zone_name, scheduled_at, policy, reader, listed_any = _campaign_inputs(
        user=user,
        agent_id=agent_id,
        phone_number_id=phone_number_id,
        recipients_file=recipients_file,
        send_immediately=send_immediately,
        schedule_date=schedule_date,
        schedule_time=schedule_time,
        timezone_name=timezone_name,
        default_country=default_country,
        policy_fields=policy_fields,
    )

    sample = []
    suppressed = _Suppressed()
    try:
        for recipient in _without_suppressed(reader, user=user, listed_any=listed_any, suppressed=suppressed):
            if len(sample) < PREVIEW_SAMPLE_SIZE:
                sample.append(recipient)
    except RecipientsFileError as exc:
        raise _file_refused(exc) from None

    start = scheduled_at or timezone.now()
    return CampaignPreview(
        agent=agent,
        phone_number=phone_number,
        timezone_name=zone_name,
        scheduled_at=scheduled_at,
        rows_read=reader.rows_read,
        recipients_count=reader.recipients_count,
        duplicates_merged=reader.duplicates_merged,
        invalid_rows_total=reader.error_count,
        invalid_rows=list(reader.errors),
        variables=list(reader.columns),
        sample=sample,
        skip_invalid_rows=skip_invalid_rows,
        columns={column.heading: _preview_column(column, agent=agent) for column in reader.layout},
        policy=policy,
        zone_groups=[
            ZoneGroup(zone=zone, count=count, first_call_at=policy.first_call_at(zone, start))
            for zone, count in _time_zones(reader, policy, suppressed).items()
        ],
        zones_defaulted=reader.zones_defaulted,
        suppressed_count=suppressed.count,
        suppressed_sample=suppressed.sample,
    )


def _preview_column(column: Column, *, agent: Agent) -> PreviewColumn:
    if column.role != ROLE_OVERRIDE:
        return PreviewColumn(role=column.role, name=column.name)
    permissions = agent.override_permissions
    allowed = permissions.get(column.name) is True if isinstance(permissions, dict) else None
    return PreviewColumn(role=column.role, name=column.name, allowed=allowed)
