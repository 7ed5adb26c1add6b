"""Every non-trivial read. All of them are scoped to the user who asks."""

import datetime as dt
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Max, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from campaigns import sqlrows, tracking
from campaigns.errors import NotFound
from campaigns.models import (
    BATCH_SENT,
    Agent,
    ApiKey,
    Call,
    Campaign,
    CampaignBatch,
    PhoneNumber,
    Profile,
    Recipient,
    Suppression,
)
from campaigns.policy import POLICY_COLUMNS
from campaigns.recipients import OVERRIDE_COLUMNS


def campaign_list(*, user) -> QuerySet[Campaign]:
    """The user's campaigns, newest first, with what their API representation needs."""
    outbound = CampaignBatch.objects.filter(elevenlabs_campaign_id__isnull=False).order_by("part")
    return (
        Campaign.objects.filter(user=user)
        .select_related("agent", "phone_number")
        .prefetch_related(
            Prefetch(
                "batches",
                queryset=outbound.only("campaign_id", "elevenlabs_campaign_id", "next_call_at", "settled_at"),
                to_attr="outbound_batches",
            )
        )
        .order_by("-created_at", "-id")
    )


@dataclass(frozen=True)
class RecipientCounts:
    """A campaign's recipients counted three ways (zeros included): by call status, by outcome in
    words (tracking.OUTCOME_LABELS), and per time zone with how many of each have finished."""

    by_status: dict[str, int]
    by_outcome: dict[str, int]
    zones: list[dict]


def campaign_recipient_counts(*, campaign: Campaign) -> RecipientCounts:
    """Every count the campaign page shows, from one grouped query."""
    by_status: dict[str, int] = dict.fromkeys(Recipient.Status.values, 0)
    by_outcome: dict[str, int] = dict.fromkeys(tracking.OUTCOME_LABELS, 0)
    zones: dict[str, dict] = {}
    rows = (
        Recipient.objects.filter(campaign_id=campaign.pk)
        .annotate(outcome=tracking.outcome_case())
        .values_list("timezone", "status", "outcome")
        .annotate(n=Count("pk"))
        .values_list("timezone", "status", "outcome", "n")
    )
    for zone, status, outcome, count in rows:
        by_status[status] = by_status.get(status, 0) + count
        by_outcome[outcome] = by_outcome.get(outcome, 0) + count
        if not zone:
            continue
        row = zones.setdefault(zone, {"zone": zone, "recipients": 0, "finished": 0})
        row["recipients"] += count
        if status in tracking.TERMINAL_RECIPIENT_STATUSES:
            row["finished"] += count
    return RecipientCounts(
        by_status=by_status,
        by_outcome=by_outcome,
        zones=sorted(zones.values(), key=lambda row: (-row["recipients"], row["zone"])),
    )


def campaign_next_call_at(*, campaign: Campaign):
    """The soonest call ElevenLabs has waiting for a policy campaign (None for batch calling)."""
    batches = campaign_outbound_batches(campaign=campaign)
    times = [batch.next_call_at for batch in batches if batch.next_call_at and batch.settled_at is None]
    return min(times) if times else None


def campaign_elevenlabs_campaign_ids(*, campaign: Campaign) -> list[str]:
    """The ElevenLabs outbound campaigns a policy campaign was submitted as, in part order."""
    return [batch.elevenlabs_campaign_id for batch in campaign_outbound_batches(campaign=campaign)]


def campaign_outbound_batches(*, campaign: Campaign) -> list[CampaignBatch]:
    """The campaign's batches sent as ElevenLabs outbound campaigns, in part order: those
    campaign_list prefetched, else one query."""
    batches = getattr(campaign, "outbound_batches", None)
    if batches is None:
        outbound = campaign.batches.filter(elevenlabs_campaign_id__isnull=False).order_by("part")
        batches = list(outbound.only("campaign_id", "elevenlabs_campaign_id", "next_call_at", "settled_at"))
    return batches


# What a campaign's API representation reads (campaigns.api.representations), and only that:
# not import_errors, which may hold a thousand rows' errors.
CAMPAIGN_API_COLUMNS = (
    "id",
    "name",
    "status",
    "elevenlabs_batch_call_id",
    "recipients_count",
    "scheduled_at",
    "send_immediately",
    "created_at",
    "updated_at",
    "timezone",
    "phone_number_id",
    "duplicates_merged",
    "invalid_rows_skipped",
    "calls_dispatched",
    "calls_finished",
    "suppressed_count",
    "time_zones",
    "error",
    *POLICY_COLUMNS,
)


def campaign_api_page(*, user, offset: int, limit: int) -> tuple[list[dict], int]:
    """A page of the user's campaigns, newest first, and how many campaigns the user has.

    Each campaign is a dict of CAMPAIGN_API_COLUMNS, `agent_elevenlabs_id` and `outbound`: its
    ElevenLabs outbound campaigns as (elevenlabs_campaign_id, next_call_at, settled) in part
    order. Times (CAMPAIGN_API_TIMES, next_call_at) come as the API writes them, UTC text, which
    the database writes faster than Python reads and formats datetimes. One query brings the
    page, its total and their outbound campaigns (past the last page, a second counts)."""
    page = _campaign_api_select(user_id=user.pk, campaign_id=None, offset=offset, limit=limit)
    if page:
        return page, page[0].pop(_TOTAL)
    return [], Campaign.objects.filter(user=user).count() if offset else 0


def campaign_api_row(*, user, campaign_id) -> dict:
    """One of the user's campaigns as campaign_api_page gives it; NotFound like campaign_get."""
    try:
        pk = int(campaign_id)
    except (ValueError, TypeError):
        pk = 0
    found = _campaign_api_select(user_id=user.pk, campaign_id=pk, offset=0, limit=1) if 0 < pk < 2**63 else []
    if not found:
        raise NotFound(f"Campaign not found: there is no campaign {campaign_id} in your account.")
    return found[0]


CAMPAIGN_API_TIMES = ("scheduled_at", "created_at", "updated_at")
_TOTAL = "total"


def _utc_text(expression: str, vendor: str) -> str:
    """SQL for a datetime column as UTC text to the second, as the API writes it
    (serializers.UTC_FORMAT); NULL stays NULL. (%% is a literal % in a query with parameters.)"""
    if vendor == "postgresql":
        return f"""to_char({expression} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
    if vendor == "sqlite":  # stored as UTC text already: 'YYYY-MM-DD HH:MM:SS[.ffffff]'
        return f"strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ', {expression})"
    raise NotImplementedError(f"No UTC text for {vendor}: the service runs on PostgreSQL or SQLite.")


@functools.cache
def _campaign_api_sql(vendor: str, one: bool) -> tuple[str, tuple]:
    """The SQL of _campaign_api_select, written once per database and kind, its columns' names
    and their fields (None: as the database gives it). The page is chosen in a subquery, then
    joined to its outbound campaigns (so a campaign's several batches do not shift the page)."""
    names = [*CAMPAIGN_API_COLUMNS, "agent_elevenlabs_id"]
    inner = []
    for name in CAMPAIGN_API_COLUMNS:
        value = sqlrows.column(Campaign, name, "c")
        inner.append(f"{_utc_text(value, vendor) if name in CAMPAIGN_API_TIMES else value} AS {sqlrows.quote(name)}")
    inner.append(f"{sqlrows.column(Agent, 'elevenlabs_agent_id', 'a')} AS {sqlrows.quote('agent_elevenlabs_id')}")
    user_id = sqlrows.column(Campaign, "user", "c")
    if one:
        where = f"{user_id} = %s AND {sqlrows.column(Campaign, 'id', 'c')} = %s"
    else:
        # The count does not depend on the row: the database runs it once for the query.
        inner.append(
            f"(SELECT COUNT(*) FROM {sqlrows.table(Campaign)} u WHERE {sqlrows.column(Campaign, 'user', 'u')} = %s)"
            f" AS {sqlrows.quote(_TOTAL)}"
        )
        names.append(_TOTAL)
        where = f"{user_id} = %s"
    created_at, campaign_pk = sqlrows.column(Campaign, "created_at", "c"), sqlrows.column(Campaign, "id", "c")
    inner.append(f"{created_at} AS {sqlrows.quote('sort_created_at')}")  # the text drops the microseconds
    agent = f"{sqlrows.column(Campaign, 'agent', 'c')} = {sqlrows.column(Agent, 'id', 'a')}"
    page = (
        f"SELECT {', '.join(inner)} FROM {sqlrows.table(Campaign)} c INNER JOIN {sqlrows.table(Agent)} a ON {agent} "
        f"WHERE {where} ORDER BY {created_at} DESC, {campaign_pk} DESC LIMIT %s OFFSET %s"
    )
    outer = [f"p.{sqlrows.quote(name)}" for name in names]
    outer += [
        sqlrows.column(CampaignBatch, "elevenlabs_campaign_id", "b"),
        _utc_text(sqlrows.column(CampaignBatch, "next_call_at", "b"), vendor),
        f"{sqlrows.column(CampaignBatch, 'settled_at', 'b')} IS NOT NULL",
    ]
    batch_campaign, part = sqlrows.column(CampaignBatch, "campaign", "b"), sqlrows.column(CampaignBatch, "part", "b")
    sql = (
        f"SELECT {', '.join(outer)} FROM ({page}) p "
        f"LEFT JOIN {sqlrows.table(CampaignBatch)} b ON {batch_campaign} = p.{sqlrows.quote('id')} "
        f"AND {sqlrows.column(CampaignBatch, 'elevenlabs_campaign_id', 'b')} IS NOT NULL "
        f"ORDER BY p.{sqlrows.quote('sort_created_at')} DESC, p.{sqlrows.quote('id')} DESC, {part}"
    )
    fields = tuple(
        [None if name in CAMPAIGN_API_TIMES else Campaign._meta.get_field(name) for name in CAMPAIGN_API_COLUMNS]
        + [Agent._meta.get_field("elevenlabs_agent_id")]
        + ([] if one else [None])  # the total
        + [CampaignBatch._meta.get_field("elevenlabs_campaign_id"), None, None]
    )
    return sql, (tuple(names), fields)


def _campaign_api_select(*, user_id: int, campaign_id: int | None, offset: int, limit: int) -> list[dict]:
    one = campaign_id is not None
    sql, (names, fields) = _campaign_api_sql(connection.vendor, one)
    params = [user_id, campaign_id, limit, offset] if one else [user_id, user_id, limit, offset]
    found: list[dict] = []
    width = len(names)
    for row in sqlrows.fetch(sql, params, fields):
        if not found or found[-1]["id"] != row[0]:
            found.append({**dict(zip(names, row[:width], strict=True)), "outbound": []})
        if row[width] is not None:  # a batch sent as an ElevenLabs outbound campaign
            campaign_id, next_call_at, settled = row[width:]
            found[-1]["outbound"].append((campaign_id, next_call_at, bool(settled)))
    return found


def campaign_get(*, user, campaign_id) -> Campaign:
    try:
        return campaign_list(user=user).get(pk=int(campaign_id))
    except (Campaign.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"Campaign not found: there is no campaign {campaign_id} in your account.") from None


# ElevenLabs posts a call's evaluation (the post-call webhook) once its analysis is done, which
# can be after the batch is reported finished: for this long after the last batch settled, an
# answered call not yet evaluated keeps the campaign open.
EVALUATIONS_AWAITED_SECONDS = 600


def campaign_is_final(*, campaign: Campaign) -> bool:
    """Whether nothing about the campaign can change any more.

    Outcomes keep arriving after a cancel or the end: not final until ElevenLabs reported
    every call of every batch finished and, for a while after, every answered call evaluated.
    """
    if campaign.status in (Campaign.Status.SCHEDULED, Campaign.Status.PENDING, Campaign.Status.IN_PROGRESS,
                           Campaign.Status.CANCELLING, Campaign.Status.PAUSED):  # fmt: skip
        return False
    batches = campaign.batches.filter(BATCH_SENT).aggregate(
        open=Count("pk", filter=Q(settled_at__isnull=True)), last_settled=Max("settled_at")
    )
    if batches["open"]:
        return False
    last = batches["last_settled"]
    if last is None or last <= timezone.now() - dt.timedelta(seconds=EVALUATIONS_AWAITED_SECONDS):
        return True
    return not Recipient.objects.filter(
        campaign_id=campaign.pk, status=Recipient.Status.COMPLETED, call_successful=""
    ).exists()


def campaign_from_upload(*, user, source_upload: str) -> Campaign | None:
    """The user's campaign created from a kept preview upload, if there is one."""
    return campaign_list(user=user).filter(source_upload=source_upload).first()


@dataclass(frozen=True)
class AccountReferences:
    """An agent and a phone number of an account, as a request names them (None: not in the
    account, or not asked for), and whether the account's do-not-call list has any entry."""

    agent: Agent | None
    phone_number: PhoneNumber | None
    has_suppressions: bool


def account_references(*, user, agent_id=None, phone_number_id=None) -> AccountReferences:
    """The agent by ElevenLabs agent id or by numeric local id (the ElevenLabs id wins when a
    text is both), the phone number by local id, and the do-not-call flag, in one statement
    written out (campaigns.sqlrows): a create needs all three, and each statement costs the web
    process more than the database spends answering it."""
    agent_id = "" if agent_id is None else str(agent_id).strip()
    phone_pk = None if phone_number_id is None else sqlrows.integer_id(phone_number_id)
    sql, fields = _account_references_sql(connection.vendor)
    rows = sqlrows.fetch(sql, [user.pk, user.pk, agent_id, sqlrows.integer_id(agent_id), user.pk, phone_pk], fields)
    # One row, or two when the text is one agent's ElevenLabs id and another's local id.
    row = min(rows, key=lambda row: row[_AGENT_ELEVENLABS_ID] != agent_id)
    agent_width = len(_AGENT_NAMES)
    return AccountReferences(
        agent=_loaded(Agent, _AGENT_NAMES, row[:agent_width]),
        phone_number=_loaded(PhoneNumber, _PHONE_NUMBER_NAMES, row[agent_width:-1]),
        has_suppressions=bool(row[-1]),
    )


_AGENT_NAMES = [field.attname for field in Agent._meta.concrete_fields]
_PHONE_NUMBER_NAMES = [field.attname for field in PhoneNumber._meta.concrete_fields]
_AGENT_ELEVENLABS_ID = _AGENT_NAMES.index("elevenlabs_agent_id")


def _loaded(model, names: list[str], values: list):
    # An outer join that found nothing gives NULL for every column, the primary key included.
    return None if values[0] is None else model.from_db(connection.alias, names, values)


@functools.cache
def _account_references_sql(vendor: str) -> tuple[str, tuple]:
    fields = (*Agent._meta.concrete_fields, *PhoneNumber._meta.concrete_fields, None)
    listed = f"SELECT 1 FROM {sqlrows.table(Suppression)} s WHERE {sqlrows.column(Suppression, 'user', 's')} = %s"
    # Outer joins from a single row: always a row, NULL columns for what is not found.
    sql = (
        f"SELECT {sqlrows.columns(Agent, 'a')}, {sqlrows.columns(PhoneNumber, 'p')}, "
        f"CASE WHEN EXISTS ({listed}) THEN 1 ELSE 0 END FROM (SELECT 1 AS one) o "
        f"LEFT JOIN {sqlrows.table(Agent)} a ON {sqlrows.column(Agent, 'user', 'a')} = %s "
        f"AND ({sqlrows.column(Agent, 'elevenlabs_agent_id', 'a')} = %s OR {sqlrows.column(Agent, 'id', 'a')} = %s) "
        f"LEFT JOIN {sqlrows.table(PhoneNumber)} p ON {sqlrows.column(PhoneNumber, 'user', 'p')} = %s "
        f"AND {sqlrows.column(PhoneNumber, 'id', 'p')} = %s"
    )
    return sql, fields


def agent_not_found(agent_id) -> NotFound:
    return NotFound(f"Agent not found: there is no agent '{str(agent_id).strip()}' in your account.")


def phone_number_not_found(phone_number_id) -> NotFound:
    return NotFound(f"Phone number not found: there is no phone number {phone_number_id} in your account.")


def agent_get(*, user, agent_id: str) -> Agent:
    """One of the user's agents, by ElevenLabs agent id or by numeric local id."""
    agent = account_references(user=user, agent_id=agent_id).agent
    if agent is None:
        raise agent_not_found(agent_id)
    return agent


def agent_list(*, user) -> QuerySet[Agent]:
    return Agent.objects.filter(user=user).order_by("name", "id")


def phone_number_get(*, user, phone_number_id) -> PhoneNumber:
    phone_number = account_references(user=user, phone_number_id=phone_number_id).phone_number
    if phone_number is None:
        raise phone_number_not_found(phone_number_id)
    return phone_number


def phone_number_list(*, user, outbound_only: bool = False) -> QuerySet[PhoneNumber]:
    """The user's phone numbers; with `outbound_only`, only those ElevenLabs can place calls from."""
    numbers = PhoneNumber.objects.filter(user=user)
    if outbound_only:
        numbers = numbers.filter(supports_outbound=True)
    return numbers.order_by("label", "id")


def api_key_active(*, key_hash: str) -> ApiKey | None:
    """The unrevoked key of an active user with this hash, its user loaded; one query, the
    first every API request makes (written out: see campaigns.sqlrows)."""
    sql, fields = _api_key_sql(connection.vendor)
    found = sqlrows.fetch(sql, [key_hash, True], fields)
    if not found:
        return None
    width = len(ApiKey._meta.concrete_fields)
    api_key = ApiKey.from_db(connection.alias, [field.attname for field in fields[:width]], found[0][:width])
    User = get_user_model()
    api_key.user = User.from_db(connection.alias, [field.attname for field in fields[width:]], found[0][width:])
    return api_key


@functools.cache
def _api_key_sql(vendor: str) -> tuple[str, tuple]:
    User = get_user_model()
    fields = (*ApiKey._meta.concrete_fields, *User._meta.concrete_fields)
    columns = [sqlrows.column(ApiKey, field.attname, "k") for field in ApiKey._meta.concrete_fields]
    columns += [sqlrows.column(User, field.attname, "u") for field in User._meta.concrete_fields]
    owner = f"{sqlrows.column(ApiKey, 'user', 'k')} = {sqlrows.column(User, User._meta.pk.attname, 'u')}"
    sql = (
        f"SELECT {', '.join(columns)} FROM {sqlrows.table(ApiKey)} k INNER JOIN {sqlrows.table(User)} u ON {owner} "
        f"WHERE {sqlrows.column(ApiKey, 'key_hash', 'k')} = %s AND {sqlrows.column(ApiKey, 'revoked_at', 'k')} IS NULL "
        f"AND {sqlrows.column(User, 'is_active', 'u')} = %s"
    )
    return sql, fields


def api_key_list(*, user) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user).order_by("-created_at", "-id")


def recipient_list(*, campaign: Campaign, status: str | None = None, search: str | None = None) -> QuerySet[Recipient]:
    """A campaign's recipients in file order, optionally one call status or a number fragment."""
    recipients = Recipient.objects.filter(campaign=campaign).order_by("pk")
    if status:
        recipients = recipients.filter(status=status)
    if search:
        digits = "".join(ch for ch in search if ch.isdigit())
        recipients = recipients.filter(phone_number__contains=digits) if digits else recipients.none()
    return recipients


def api_key_get(*, user, api_key_id) -> ApiKey:
    """One of the user's keys, revoked or not; another user's key is missing, like one that never was."""
    try:
        return api_key_list(user=user).get(pk=int(api_key_id))
    except (ApiKey.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"API key not found: there is no API key {api_key_id} in your account.") from None


def recipient_get(*, campaign: Campaign, recipient_id) -> Recipient:
    """One recipient of the campaign, with its calls in attempt order."""
    calls = Call.objects.order_by("attempt", "id")
    try:
        return (
            Recipient.objects.filter(campaign=campaign)
            .prefetch_related(Prefetch("calls", queryset=calls))
            .get(pk=int(recipient_id))
        )
    except (Recipient.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"Recipient not found: campaign {campaign.pk} has no recipient {recipient_id}.") from None


def conversation_call_get(*, user, conversation_id: str) -> Call:
    """The call of one of the user's campaigns that was the conversation `conversation_id`.

    Every conversation a poll or a webhook learned has a Call row, so a conversation without
    one is not the user's (or not known yet): NotFound either way.
    """
    call = (
        Call.objects.select_related("campaign__agent")
        .filter(campaign__user=user, conversation_id=conversation_id)
        .first()
    )
    if call is None:
        raise NotFound(f"Conversation not found: no call of your campaigns was conversation '{conversation_id}'.")
    return call


# --- Staff pages ---------------------------------------------------------------------------

# The call record columns of an export; the recipient's variables and overrides follow them.
EXPORT_COLUMNS = (
    "phone_number",
    "line",
    "status",
    "call_successful",
    "failure_reason",
    "summary",
    "conversation_id",
    "status_updated_at",
)
# Then what the calls tell, before the variables: calls placed, and the length of the call that
# counts (the last answered one, else the last one), followed by one `data.<id>` column per
# data-collection item of the campaign's calls.
EXPORT_CALL_COLUMNS = ("attempts", "duration_secs")
DATA_COLUMN_PREFIX = "data."
# A recipient in one of these has been dialled on its current attempt.
_DIALLED = (
    Recipient.Status.INITIATED,
    Recipient.Status.IN_PROGRESS,
    Recipient.Status.COMPLETED,
    Recipient.Status.FAILED,
    Recipient.Status.VOICEMAIL,
)


def campaign_list_search(*, user, status: str | None = None, search: str | None = None) -> QuerySet[Campaign]:
    """The user's campaigns, newest first, optionally only one status or names containing `search`."""
    campaigns = campaign_list(user=user)
    if status:
        campaigns = campaigns.filter(status=status)
    if search and search.strip():
        campaigns = campaigns.filter(name__icontains=search.strip())
    return campaigns


def _recipients_counted(**filters) -> Coalesce:
    """How many of the outer campaign's recipients match `filters`: a subquery per campaign row, so
    a page of campaigns counts only its own recipients, on the (campaign, status) index."""
    counted = (
        Recipient.objects.filter(campaign_id=OuterRef("pk"), **filters)
        .order_by()
        .values("campaign_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted), 0)


def campaign_list_with_rates(campaigns: QuerySet[Campaign]) -> QuerySet[Campaign]:
    """`campaigns` with what their answer and success rates are made of, in the same query:
    `placed_finished` (calls placed that ended: answered, voicemail, busy, no answer, failed),
    `answered` and `successful` (the agent judged the call a success)."""
    completed = Recipient.Status.COMPLETED
    placed = (completed, Recipient.Status.VOICEMAIL, Recipient.Status.FAILED)
    return campaigns.annotate(
        placed_finished=_recipients_counted(status__in=placed),
        answered=_recipients_counted(status=completed),
        successful=_recipients_counted(status=completed, call_successful="success"),
    )


def campaign_batch_ids(*, campaign: Campaign) -> list[str]:
    """The ElevenLabs batch ids the campaign was submitted as, in part order."""
    return list(
        campaign.batches.filter(elevenlabs_batch_call_id__isnull=False)
        .order_by("part")
        .values_list("elevenlabs_batch_call_id", flat=True)
    )


def user_timezone(*, user) -> str:
    """The user's profile time zone, the one a schedule is read in when none is given."""
    profile = Profile.objects.filter(user=user).only("timezone").first()
    return profile.timezone if profile else "UTC"


def recipient_export(*, campaign: Campaign, chunk_size: int = 2000) -> tuple[list[str], Iterator[list]]:
    """A campaign's recipients with their call outcomes, data collection, variables and overrides:
    a header and rows.

    Rows stream from the database `chunk_size` recipients at a time, in file order, with two
    queries per chunk (the recipients, then their calls), so a 300,000-recipient campaign is
    never held in memory. Every recipient of a campaign has the same variables (the columns of
    its file), so the first one names them; they are sorted by name, as PostgreSQL's jsonb does
    not keep the file's column order. `summary`, `duration_secs` and the `data.` columns are
    those of the call that counts: the last answered one, else the last one.
    """
    data_ids = _data_collection_ids(campaign=campaign)
    first = Recipient.objects.filter(campaign=campaign).order_by("pk").values_list("variables", flat=True).first()
    variable_names = sorted(first or {})
    data_columns = [f"{DATA_COLUMN_PREFIX}{item}" for item in data_ids]
    taken = {*EXPORT_COLUMNS, *EXPORT_CALL_COLUMNS, *data_columns, *OVERRIDE_COLUMNS}
    header = [
        *EXPORT_COLUMNS,
        *EXPORT_CALL_COLUMNS,
        *data_columns,
        *(f"variable_{name}" if name in taken else name for name in variable_names),
        *OVERRIDE_COLUMNS,
    ]
    status_at, summary_at = EXPORT_COLUMNS.index("status"), EXPORT_COLUMNS.index("summary")

    def rows():
        recipients = Recipient.objects.filter(campaign=campaign).order_by("pk")
        last_pk = 0
        while True:
            chunk = list(
                recipients.filter(pk__gt=last_pk).values_list(
                    "pk", *EXPORT_COLUMNS, "attempt", "variables", "overrides"
                )[:chunk_size]
            )
            if not chunk:
                return
            calls = _export_calls(campaign=campaign, first_pk=chunk[0][0], last_pk=chunk[-1][0])
            for pk, *record, attempt, variables, overrides in chunk:
                placed, counted = calls.get(pk, (0, None))
                duration, summary, data = counted or (None, "", {})
                if summary:
                    record[summary_at] = summary
                # The calls recorded, or as many as the attempt it is on (a retry not placed yet
                # does not count); polls learn of some calls only through the recipient.
                attempts = max(placed, attempt if record[status_at] in _DIALLED else attempt - 1)
                yield [
                    *record,
                    attempts,
                    duration,
                    *(_data_text(data.get(item)) for item in data_ids),
                    *(variables.get(name, "") for name in variable_names),
                    *(overrides.get(name, "") for name in OVERRIDE_COLUMNS),
                ]
            if len(chunk) < chunk_size:
                return
            last_pk = chunk[-1][0]

    return header, rows()


def _data_collection_ids(*, campaign: Campaign) -> list[str]:
    """The data-collection items found in any call of the campaign, sorted: one query."""
    table = Call._meta.db_table
    if connection.vendor == "postgresql":
        sql = (
            f"SELECT DISTINCT jsonb_object_keys(data_collection) FROM {table} "
            "WHERE campaign_id = %s AND jsonb_typeof(data_collection) = 'object'"
        )
    else:
        sql = (
            f"SELECT DISTINCT item.key FROM {table}, json_each({table}.data_collection) AS item "
            f"WHERE {table}.campaign_id = %s AND json_type({table}.data_collection) = 'object'"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign.pk])
        return sorted(key for (key,) in cursor.fetchall())


def _export_calls(*, campaign: Campaign, first_pk: int, last_pk: int) -> dict[int, tuple[int, tuple | None]]:
    """Per recipient of ids first_pk..last_pk: (calls recorded, (duration, summary, data
    collection) of the call that counts). One query, without the transcripts."""
    calls = (
        Call.objects.filter(campaign_id=campaign.pk, recipient_id__gte=first_pk, recipient_id__lte=last_pk)
        .order_by("recipient_id", "attempt", "id")
        .values_list("recipient_id", "status", "call_result", "duration_secs", "summary", "data_collection")
    )
    found: dict[int, tuple[int, tuple | None, bool]] = {}
    for recipient_id, status, call_result, duration, summary, data in calls:
        placed, counted, answered_seen = found.get(recipient_id, (0, None, False))
        answered = call_result == "answered" or (not call_result and status == Recipient.Status.COMPLETED)
        if answered or not answered_seen:
            counted = (duration, summary, data if isinstance(data, dict) else {})
        found[recipient_id] = (placed + 1, counted, answered_seen or answered)
    return {recipient_id: (placed, counted) for recipient_id, (placed, counted, _) in found.items()}


def _data_text(item) -> str:
    """A collected value as a cell's text: JSON's words for booleans, nothing for no value."""
    value = item.get("value") if isinstance(item, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return json.dumps(value)
    return str(value)


# --- What a campaign's history protects ----------------------------------------------------


def campaign_sent(*, campaign: Campaign) -> bool:
    """Whether the campaign went, or is going, to ElevenLabs: its setup is then history.

    Every status past scheduled and pending means it was sent or has ended, and nothing sends it
    again. A pending campaign is being sent once a worker claimed it ("pending" also means sent
    and not calling yet). Batches sent or calls on record say so whatever the status.
    """
    if campaign.status not in (Campaign.Status.SCHEDULED, Campaign.Status.PENDING):
        return True
    if campaign.dispatch_claimed_at is not None:
        return True
    return campaign.batches.filter(BATCH_SENT).exists() or Call.objects.filter(campaign_id=campaign.pk).exists()


def campaign_delete_refusal(*, campaign: Campaign) -> str:
    """Why the campaign may not be deleted, or "" when it may: never while it has calls on
    record, nor while it is being sent or calling (its calls would have no campaign)."""
    if Call.objects.filter(campaign_id=campaign.pk).exists():
        return "it has placed calls, and their record is kept."
    if campaign_sent(campaign=campaign) and not campaign_is_final(campaign=campaign):
        return "it is being sent or is calling; cancel it first."
    return ""
