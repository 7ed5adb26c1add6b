"""Outbound campaigns: leads called within calling windows, retried, paused, resumed and stopped.

Each recipient of a campaign becomes a lead. A lead's first call is due when the campaign
starts (max(submission, `scheduled_time_unix`)); calls go out one after another,
SANDBOX_CALL_SPACING_SECONDS apart, at most `target_concurrency_limit` under way at once, and
only inside the policy's calling periods, read in the policy's timezone. A call placed at P plays
out like a batch recipient's: its conversation starts at P + step, an answered call ends at
P + 3 steps (its analysis takes half a step more), an unanswered one at P + 2 steps.

After each call the campaign decides (the call's `decision_disposition`):

    answered                  lead ends `completed`
    answered, asks not to be  lead ends `do_not_call` (do_not_call: true) when the policy's
      called again (digit 7)    `data_collection.stop` item is on, else `completed`
    busy, no answer,          retried `retry.retry_delay_seconds` later (at the next window
      voicemail                 opening if that falls outside one) until the lead has had
                                `retry.max_total_calls` calls; then `attempt_ceiling_reached`

Outcomes come from the last digit of the number as in batch calling (`services.outcome_for`),
except 7: a campaign's contact answers and asks not to be called again.

The campaign clock
    Calling windows and retry delays are read on the campaign clock (`CampaignClock`), which
    runs SANDBOX_CLOCK_SPEED times faster than real time and reads SANDBOX_CLOCK_START when the
    sandbox first uses it (or when either setting changes). Every timestamp in an answer is
    real unix time: `next_call_time_unix` is the real moment the next window opens, so a test
    with SANDBOX_CLOCK_START a few seconds before a window watches it open a few seconds later.

Nothing runs in the background: every read plays the campaign forward to the moment it answers
(`campaign_advance`), in memory, from where the previous one stopped; `sandbox_tick` does the
same for every open campaign and sends the webhooks of calls that have ended.
"""

import copy
import datetime
import hashlib
import heapq
import json
import math
import os
import secrets
import zoneinfo
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q

from sandbox import delivery, services, validation, workspace
from sandbox.errors import ConversationNotFound, InvalidCursor, InvalidState, NotFound
from sandbox.models import (
    CampaignCallStatus,
    CampaignStatus,
    Outcome,
    SandboxCampaign,
    SandboxCampaignCall,
    SandboxClock,
    SandboxLead,
)

OPEN_CAMPAIGN = (CampaignStatus.ACTIVE, CampaignStatus.PAUSED, CampaignStatus.STOPPING)
HUMAN_ANSWERED = (Outcome.SUCCESS, Outcome.UNSUCCESSFUL, Outcome.DO_NOT_CALL)
ANSWERED = (*HUMAN_ANSWERED, Outcome.VOICEMAIL)
# A repeated submit without an idempotency key is recognised by its body for this long.
BODY_MATCH_SECONDS = 24 * 3600
_EPSILON = 1e-6


def _setting(name: str, default):
    """A Django setting, else the environment variable of that name, else `default`; read on each use."""
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name)
    return default if value is None or value == "" else value


# --- The campaign clock -------------------------------------------------------------------


def clock_speed() -> float:
    raw = _setting("SANDBOX_CLOCK_SPEED", 1.0)
    try:
        speed = float(raw)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"SANDBOX_CLOCK_SPEED: {raw!r} is not a number") from None
    if not math.isfinite(speed) or speed <= 0:
        raise ImproperlyConfigured(f"SANDBOX_CLOCK_SPEED: {raw!r} must be a number above 0")
    return speed


def clock_start() -> str:
    """SANDBOX_CLOCK_START as text ("" when unset): unix seconds, or ISO 8601 (UTC unless it says)."""
    raw = _setting("SANDBOX_CLOCK_START", "")
    if isinstance(raw, datetime.datetime):
        raw = raw.isoformat()
    text = str(raw).strip()
    if text:
        _start_parse(text)
    return text


def _start_parse(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ImproperlyConfigured(
            f"SANDBOX_CLOCK_START: {text!r} is neither unix seconds nor an ISO 8601 date and time"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


@dataclass(frozen=True)
class CampaignClock:
    """Reads `campaign_anchor` at the real moment `real_anchor`, and runs `speed` times faster."""

    real_anchor: float
    campaign_anchor: float
    speed: float

    def campaign(self, real: float) -> float:
        return self.campaign_anchor + (real - self.real_anchor) * self.speed

    def real(self, campaign: float) -> float:
        return self.real_anchor + (campaign - self.campaign_anchor) / self.speed


def campaign_clock(now: float) -> CampaignClock:
    """The campaign clock, anchored again at `now` if SANDBOX_CLOCK_SPEED or SANDBOX_CLOCK_START changed.

    A new start sets the clock to it; a new speed alone keeps the clock's reading and changes its pace.
    The anchor is a database row so that every worker reads the same campaign time.
    """
    speed, start = clock_speed(), clock_start()
    row = SandboxClock.objects.filter(pk=1).first()
    if row is None:
        row, _ = SandboxClock.objects.get_or_create(
            pk=1,
            defaults={
                "speed": speed,
                "start": start,
                "real_anchor": now,
                "campaign_anchor": _start_parse(start) if start else now,
            },
        )
    if row.speed != speed or row.start != start:
        before = CampaignClock(row.real_anchor, row.campaign_anchor, row.speed)
        anchor = _start_parse(start) if start and start != row.start else before.campaign(now)
        SandboxClock.objects.filter(pk=1, speed=row.speed, start=row.start).update(
            speed=speed, start=start, real_anchor=now, campaign_anchor=anchor
        )
        row = SandboxClock.objects.get(pk=1)
    return CampaignClock(row.real_anchor, row.campaign_anchor, row.speed)


# --- Calling windows ----------------------------------------------------------------------


@dataclass(frozen=True)
class Windows:
    """A policy's weekly calling periods, read in its timezone."""

    timezone: zoneinfo.ZoneInfo
    # weekday (0 = Monday) -> sorted (start, end) in minutes since midnight
    by_day: dict

    @classmethod
    def from_policy(cls, policy: dict) -> "Windows":
        by_day: dict[int, list[tuple[int, int]]] = {}
        for period in policy["calling_periods"]:
            for day in set(period["weekdays"]):
                for interval in period["intervals"]:
                    span = (validation.clock_minutes(interval["start"]), validation.clock_minutes(interval["end"]))
                    by_day.setdefault(day, []).append(span)
        return cls(
            timezone=zoneinfo.ZoneInfo(policy["timezone"]),
            by_day={day: sorted(spans) for day, spans in by_day.items()},
        )

    def next_open(self, moment: float) -> float | None:
        """The first moment at or after `moment` (campaign time) inside a window; None if there is none."""
        if not self.by_day:
            return None
        day = datetime.datetime.fromtimestamp(moment, self.timezone).date()
        for offset in range(8):
            date = day + datetime.timedelta(days=offset)
            midnight = datetime.datetime(date.year, date.month, date.day, tzinfo=self.timezone)
            for start, end in self.by_day.get(date.weekday(), ()):
                # Wall-clock arithmetic: the window keeps its local hours across a DST change.
                opens = (midnight + datetime.timedelta(minutes=start)).timestamp()
                closes = (midnight + datetime.timedelta(minutes=end)).timestamp()
                if closes > moment:
                    return max(opens, moment)
        return None


@dataclass(frozen=True)
class Schedule:
    """When calls may go out, in real time: the campaign clock and the campaign's windows together."""

    clock: CampaignClock
    windows: Windows

    def aligned(self, real: float) -> float | None:
        """`real` if a window is open then, else the real moment the next one opens (None: never)."""
        moment = self.clock.campaign(real)
        opens = self.windows.next_open(moment)
        if opens is None:
            return None
        return real if opens <= moment else self.clock.real(opens)

    def after_delay(self, real: float, seconds: float) -> float | None:
        """`seconds` of campaign time after `real`, moved to the next window opening if need be."""
        moment = self.clock.campaign(real) + seconds
        opens = self.windows.next_open(moment)
        if opens is None:
            return None
        return self.clock.real(opens)


def _schedule(campaign: SandboxCampaign, now: float) -> Schedule:
    return Schedule(clock=campaign_clock(now), windows=Windows.from_policy(campaign.policy))


# --- Policy ---------------------------------------------------------------------------------


def policy_snapshot(payload: dict) -> dict:
    """The full policy a campaign takes: the submitted sections over the workspace's, or the simple variant's."""
    policy = copy.deepcopy(workspace.CAMPAIGN_POLICY)
    if payload.get("variant") == "simple":
        # One attempt, always-on windows, nothing collected.
        policy["retry"]["max_total_calls"] = 1
        policy["calling_periods"] = [
            {"weekdays": [0, 1, 2, 3, 4, 5, 6], "intervals": [{"start": "00:00", "end": "24:00"}]}
        ]
        policy["data_collection"] = {"callback_time": None, "redirect_phone_number": None, "stop": None, "mappings": {}}
    given = payload.get("policy") or {}
    if given.get("timezone"):
        policy["timezone"] = given["timezone"]
    if given.get("calling_periods") is not None:
        policy["calling_periods"] = given["calling_periods"]
    for section in ("retry", "data_collection", "followup_context"):
        policy[section].update(given.get(section) or {})
    if payload.get("timezone"):
        # The body's timezone wins over the policy's.
        policy["timezone"] = payload["timezone"]
    return policy


def campaign_outcome(phone_number: str, number: int) -> Outcome:
    """How a campaign's call `number` to `phone_number` ends: batch calling's outcomes, but 7 asks not to be called."""
    if phone_number.strip().endswith("7"):
        return Outcome.DO_NOT_CALL
    return services.outcome_for(phone_number, number)


# --- Submit -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submitted:
    campaign: SandboxCampaign
    created: bool
    within_calling_window: bool


def _body_hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _repeat_find(payload: dict, body_hash: str, now: float) -> SandboxCampaign | None:
    if payload.get("idempotency_key") is not None:
        return SandboxCampaign.objects.filter(idempotency_key=payload["idempotency_key"]).first()
    return (
        SandboxCampaign.objects.filter(
            idempotency_key__isnull=True, body_hash=body_hash, created_at__gte=now - BODY_MATCH_SECONDS
        )
        .order_by("-created_at")
        .first()
    )


def _start_of(campaign: SandboxCampaign) -> float:
    if campaign.scheduled_time_unix is None:
        return campaign.created_at
    return max(campaign.created_at, float(campaign.scheduled_time_unix))


def _within_window(campaign: SandboxCampaign, now: float) -> bool:
    start = _start_of(campaign)
    return _schedule(campaign, now).aligned(start) == start


def campaign_submit(*, payload: dict, now: float | None = None) -> Submitted:
    """Create a campaign from a validated submit body, or find the one an earlier identical submit created."""
    now = services._clock(now)
    body_hash = _body_hash(payload)
    existing = _repeat_find(payload, body_hash, now)
    if existing is not None:
        campaign = campaign_advance(existing, now)
        return Submitted(campaign=campaign, created=False, within_calling_window=_within_window(campaign, now))
    agent = workspace.agent_find(payload["agent_id"])
    if agent is None:
        raise NotFound(f"Agent {payload['agent_id']} not found")
    channel = payload["channel_config"]
    if channel["channel"] != "phone":
        # The demo workspace has no WhatsApp account.
        raise NotFound(f"WhatsApp phone number {channel['whatsapp_phone_number_id']} not found")
    phone_number = workspace.phone_number_find(channel["agent_phone_number_id"])
    if phone_number is None:
        raise NotFound(f"Phone number {channel['agent_phone_number_id']} not found")
    if getattr(settings, "SANDBOX_REFUSE_OVERRIDES", True):
        services._overrides_check(payload["recipients"], agent)
    try:
        with transaction.atomic():
            campaign = _campaign_create(payload, agent, phone_number, body_hash, now)
    except IntegrityError:
        # Another submit with the same idempotency key got there first.
        existing = _repeat_find(payload, body_hash, now)
        if existing is None:
            raise
        campaign = campaign_advance(existing, now)
        return Submitted(campaign=campaign, created=False, within_calling_window=_within_window(campaign, now))
    within = _within_window(campaign, now)
    return Submitted(campaign=campaign_advance(campaign, now), created=True, within_calling_window=within)


def _campaign_create(payload: dict, agent: dict, phone_number: dict, body_hash: str, now: float) -> SandboxCampaign:
    now_unix = int(now)
    policy = policy_snapshot(payload)
    recipients = payload["recipients"]
    campaign = SandboxCampaign.objects.create(
        id=f"camp_{secrets.token_hex(12)}",
        name=payload["call_name"],
        agent_id=agent["agent_id"],
        agent_name=agent["name"],
        phone_number_id=phone_number["phone_number_id"],
        phone_provider=phone_number["provider"],
        mode_config=payload["channel_config"]["mode_config"],
        status=CampaignStatus.ACTIVE,
        variant=payload.get("variant") or "advanced",
        policy=policy,
        created_at=now,
        created_at_unix=now_unix,
        scheduled_time_unix=payload.get("scheduled_time_unix"),
        updated_at_unix=now_unix,
        branch_id=payload.get("branch_id"),
        environment=payload.get("environment"),
        target_concurrency_limit=payload.get("target_concurrency_limit"),
        idempotency_key=payload.get("idempotency_key"),
        body_hash=body_hash,
        # Played up to just before its creation: the submit's answer plays its first moment.
        advanced_to=now - 0.001,
        calls_created=len(recipients),
    )
    # Every first call is due as the campaign starts, or when the next window opens.
    start = _start_of(campaign)
    due = _schedule(campaign, now).aligned(start)
    leads = [
        SandboxLead(
            id=f"lead_{secrets.token_hex(12)}",
            campaign_id=campaign.pk,
            position=position,
            phone_number=recipient["phone_number"],
            phone_numbers=recipient.get("phone_numbers"),
            external_id=recipient["id"],
            client_data=recipient["conversation_initiation_client_data"],
            conversation_key=secrets.token_hex(11),
            created_at_unix=now_unix,
            updated_at_unix=now_unix,
        )
        for position, recipient in enumerate(recipients)
    ]
    SandboxLead.objects.bulk_create(leads)
    SandboxCampaignCall.objects.bulk_create(
        SandboxCampaignCall(
            id=f"intent_{secrets.token_hex(12)}",
            campaign_id=campaign.pk,
            lead_id=lead.pk,
            sequence=lead.position,
            number=1,
            status=CampaignCallStatus.QUEUED,
            outcome=campaign_outcome(lead.phone_number, 1),
            scheduled_at=start if due is None else due,
            updated_at_unix=now_unix,
        )
        for lead in leads
    )
    return campaign


# --- Playing a campaign forward -----------------------------------------------------------


def call_ends_at(call: SandboxCampaignCall, step: float) -> float:
    return call.placed_at + (3 if call.outcome in ANSWERED else 2) * step


def call_decided_at(call: SandboxCampaignCall, step: float) -> float:
    """When the campaign decides what follows a call: once an answered call's analysis is done."""
    return call.ended_at + (step / 2 if call.outcome in ANSWERED else 0)


class _Simulation:
    """Plays one campaign's events in time order, in memory, then writes what changed in bulk."""

    def __init__(self, campaign: SandboxCampaign, until: float):
        self.campaign = campaign
        self.timeline = services.Timeline.from_settings()
        self.schedule = _schedule(campaign, until)
        self.retry = campaign.policy["retry"]
        self.stop_item = campaign.policy["data_collection"].get("stop")
        self.changed_calls: dict[str, SandboxCampaignCall] = {}
        self.new_calls: dict[str, SandboxCampaignCall] = {}
        self.changed_leads: dict[str, SandboxLead] = {}
        self.last_event: float | None = None
        step = self.timeline.step
        calls = list(
            SandboxCampaignCall.objects.filter(
                Q(status=CampaignCallStatus.SUBMITTED) | Q(status=CampaignCallStatus.COMPLETED, decision__isnull=True),
                campaign=campaign,
            ).select_related("lead")
        )
        self.under_way = [(call_ends_at(c, step), c.sequence, c) for c in calls if c.status == "submitted"]
        self.deciding = [(call_decided_at(c, step), c.sequence, c) for c in calls if c.status == "completed"]
        # No more calls can go out before `until` than the spacing allows: load only those.
        queued = SandboxCampaignCall.objects.filter(
            campaign=campaign, status=CampaignCallStatus.QUEUED, scheduled_at__lte=until
        ).order_by("scheduled_at", "sequence")
        if self.timeline.spacing > 0:
            queued = queued[: math.floor((until - campaign.advanced_to) / self.timeline.spacing) + 2]
        self.queue = [(c.scheduled_at, c.sequence, c) for c in queued.select_related("lead")]
        for heap in (self.under_way, self.deciding, self.queue):
            heapq.heapify(heap)

    def run(self, until: float) -> None:
        moment = self.campaign.advanced_to
        while True:
            events = []
            if self.under_way:
                events.append((self.under_way[0][0], 0))
            if self.deciding:
                events.append((self.deciding[0][0], 1))
            dispatch_at = self._dispatch_time(moment)
            if dispatch_at is not None:
                events.append((dispatch_at, 2))
            if not events:
                break
            when, kind = min(events)
            if when > until + _EPSILON:
                break
            moment = max(moment, when)
            self.last_event = moment
            if kind == 0:
                self._end(heapq.heappop(self.under_way)[2], moment)
            elif kind == 1:
                self._decide(heapq.heappop(self.deciding)[2], moment)
            else:
                self._dispatch(heapq.heappop(self.queue)[2], moment)

    def _dispatch_time(self, moment: float) -> float | None:
        campaign = self.campaign
        if campaign.status != CampaignStatus.ACTIVE or not self.queue:
            return None
        if campaign.target_concurrency_limit and len(self.under_way) >= campaign.target_concurrency_limit:
            return None  # the next call to end frees a line
        earliest = max(moment, self.queue[0][0])
        if campaign.last_dispatch_at is not None:
            earliest = max(earliest, campaign.last_dispatch_at + self.timeline.spacing)
        return self.schedule.aligned(earliest)

    def _dispatch(self, call: SandboxCampaignCall, when: float) -> None:
        call.status = CampaignCallStatus.SUBMITTED
        call.placed_at = when
        call.updated_at_unix = int(when)
        call.lead.attempt_count += 1
        call.lead.updated_at_unix = int(when)
        self.changed_leads[call.lead.pk] = call.lead
        self.campaign.last_dispatch_at = when
        self._touched(call)
        heapq.heappush(self.under_way, (call_ends_at(call, self.timeline.step), call.sequence, call))

    def _end(self, call: SandboxCampaignCall, when: float) -> None:
        call.status = CampaignCallStatus.COMPLETED
        call.ended_at = when
        call.updated_at_unix = int(when)
        self._touched(call)
        heapq.heappush(self.deciding, (call_decided_at(call, self.timeline.step), call.sequence, call))

    def _decide(self, call: SandboxCampaignCall, when: float) -> None:
        lead = call.lead
        if lead.terminal_disposition is not None:
            # Removed (or its campaign stopped) while the call was under way.
            call.decision = "suppressed" if lead.terminal_disposition == "removed" else "suppressed_after_stop"
        elif call.outcome == Outcome.DO_NOT_CALL and self.stop_item is not None:
            call.decision = "do_not_call"
            self._finish_lead(lead, "do_not_call", when, do_not_call=True)
        elif call.outcome in HUMAN_ANSWERED:
            call.decision = "completed"
            self._finish_lead(lead, "completed", when)
        else:
            lead.failure_count += 1
            if self.campaign.status in (CampaignStatus.STOPPING, CampaignStatus.STOPPED):
                call.decision = "suppressed_after_stop"
                self._finish_lead(lead, "campaign_ended", when, do_not_call=True)
            elif lead.attempt_count >= (self.retry.get("max_total_calls") or 1):
                call.decision = "attempt_ceiling_reached"
                self._finish_lead(lead, "attempt_ceiling_reached", when)
            else:
                call.decision = "retry_queued"
                self._retry_queue(lead, call, when)
        call.updated_at_unix = int(when)
        self._touched(call)
        lead.updated_at_unix = int(when)
        self.changed_leads[lead.pk] = lead

    def _finish_lead(self, lead: SandboxLead, disposition: str, when: float, *, do_not_call: bool = False) -> None:
        lead.terminal_disposition = disposition
        lead.do_not_call = lead.do_not_call or do_not_call

    def _retry_queue(self, lead: SandboxLead, previous: SandboxCampaignCall, when: float) -> None:
        due = self.schedule.after_delay(when, self.retry.get("retry_delay_seconds") or 0)
        number = previous.number + 1
        call = SandboxCampaignCall(
            id=f"intent_{secrets.token_hex(12)}",
            campaign_id=self.campaign.pk,
            lead=lead,
            sequence=self.campaign.calls_created,
            number=number,
            status=CampaignCallStatus.QUEUED,
            outcome=campaign_outcome(lead.phone_number, number),
            scheduled_at=when if due is None else due,
            updated_at_unix=int(when),
        )
        self.campaign.calls_created += 1
        self.new_calls[call.pk] = call
        if due is not None:
            heapq.heappush(self.queue, (call.scheduled_at, call.sequence, call))

    def _touched(self, call: SandboxCampaignCall) -> None:
        if call.pk not in self.new_calls:
            self.changed_calls[call.pk] = call

    def save(self) -> None:
        SandboxCampaignCall.objects.bulk_create(self.new_calls.values())
        _rows_update(
            SandboxCampaignCall,
            self.changed_calls.values(),
            ["status", "placed_at", "ended_at", "decision", "updated_at_unix"],
        )
        _rows_update(
            SandboxLead,
            self.changed_leads.values(),
            ["attempt_count", "failure_count", "do_not_call", "terminal_disposition", "updated_at_unix"],
        )

    @property
    def calls_open(self) -> bool:
        return bool(self.under_way or self.deciding)


def _rows_update(model, rows, fields: list[str]) -> None:
    """One parametrised UPDATE per row, sent as a batch.

    bulk_update builds a CASE per column with a branch per row, which takes Django tens of
    seconds to compile for the 10,000 calls of a campaign read long after it started.
    """
    rows = list(rows)
    if not rows:
        return
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name) for name in fields]
    assignments = ", ".join(f"{quote(column.column)} = %s" for column in columns)
    sql = f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {quote(model._meta.pk.column)} = %s"
    params = [
        [column.get_db_prep_save(getattr(row, column.attname), connection) for column in columns] + [row.pk]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def campaign_advance(campaign: SandboxCampaign, now: float | None = None) -> SandboxCampaign:
    """Bring the campaign, its leads and calls to where they stand at `now`.

    The first statement claims the stretch of time to play with a conditional UPDATE, so
    two concurrent reads never play the same calls twice; the loser reloads.
    """
    now = services._clock(now)
    for _ in range(3):
        if campaign.status not in OPEN_CAMPAIGN or now <= campaign.advanced_to:
            return campaign
        with transaction.atomic():
            claimed = SandboxCampaign.objects.filter(
                pk=campaign.pk, advanced_to=campaign.advanced_to, status=campaign.status
            ).update(advanced_to=now)
            if claimed:
                _play(campaign, now)
                return campaign
        campaign.refresh_from_db()
    return campaign


def _completion_check(campaign: SandboxCampaign, now: float) -> None:
    """`completed` once every lead has ended and no call is under way or awaiting its analysis."""
    if campaign.status not in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED):
        return
    if SandboxLead.objects.filter(campaign=campaign, terminal_disposition__isnull=True).exists():
        return
    if SandboxCampaignCall.objects.filter(
        Q(status=CampaignCallStatus.SUBMITTED) | Q(status=CampaignCallStatus.COMPLETED, decision__isnull=True),
        campaign=campaign,
    ).exists():
        return
    _status_save(campaign, CampaignStatus.COMPLETED, now)


def _play(campaign: SandboxCampaign, now: float) -> None:
    simulation = _Simulation(campaign, now)
    simulation.run(now)
    simulation.save()
    previous_status = campaign.status
    if not simulation.calls_open:
        if campaign.status == CampaignStatus.STOPPING:
            campaign.status = CampaignStatus.STOPPED
        elif not SandboxLead.objects.filter(campaign=campaign, terminal_disposition__isnull=True).exists():
            campaign.status = CampaignStatus.COMPLETED
    if simulation.last_event is not None:
        campaign.updated_at_unix = max(campaign.updated_at_unix, int(simulation.last_event))
    if campaign.status != previous_status:
        campaign.updated_at_unix = int(now)
    campaign.advanced_to = now
    campaign.save(
        update_fields=["status", "advanced_to", "last_dispatch_at", "calls_created", "updated_at_unix"],
    )


# --- Reading campaigns --------------------------------------------------------------------


def _campaign_find(campaign_id: str) -> SandboxCampaign:
    campaign = SandboxCampaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(f"Campaign {campaign_id} not found")
    return campaign


def campaign_get(*, campaign_id: str, now: float | None = None) -> SandboxCampaign:
    """The campaign as it stands at `now`."""
    return campaign_advance(_campaign_find(campaign_id), now)


@dataclass(frozen=True)
class LeadCounts:
    leads: int
    terminal_leads: int


def lead_counts(campaigns: list[SandboxCampaign]) -> dict[str, LeadCounts]:
    rows = (
        SandboxLead.objects.filter(campaign__in=campaigns)
        .values("campaign_id")
        .annotate(leads=Count("pk"), terminal=Count("pk", filter=Q(terminal_disposition__isnull=False)))
    )
    counts = {row["campaign_id"]: LeadCounts(leads=row["leads"], terminal_leads=row["terminal"]) for row in rows}
    return {campaign.pk: counts.get(campaign.pk, LeadCounts(0, 0)) for campaign in campaigns}


@dataclass(frozen=True)
class CampaignPage:
    campaigns: list[SandboxCampaign]
    next_cursor: str | None
    has_more: bool


def campaign_list(
    *,
    page_size: int = 30,
    cursor: str | None = None,
    statuses: list[str] | None = None,
    agent_id: str | None = None,
    channel: str | None = None,
    mode: str | None = None,
    search: str | None = None,
    now: float | None = None,
) -> CampaignPage:
    """The workspace's campaigns, newest first; `cursor` is the last campaign_id of the previous page."""
    now = services._clock(now)
    campaigns = SandboxCampaign.objects.order_by("-created_at", "-id")
    if agent_id:
        campaigns = campaigns.filter(agent_id=agent_id)
    if search:
        campaigns = campaigns.filter(name__icontains=search)
    if channel == "whatsapp" or mode == "message":
        campaigns = campaigns.none()  # the sandbox places phone calls only
    if cursor:
        anchor = SandboxCampaign.objects.filter(pk=cursor).values("created_at", "id").first()
        if anchor is None:
            raise InvalidCursor(f"Invalid cursor {cursor}")
        campaigns = campaigns.filter(
            Q(created_at__lt=anchor["created_at"]) | Q(created_at=anchor["created_at"], id__lt=anchor["id"])
        )
    if statuses:
        # Statuses move with the clock: bring the candidates up to date before filtering.
        for campaign in campaigns.filter(status__in=OPEN_CAMPAIGN):
            campaign_advance(campaign, now)
        campaigns = campaigns.filter(status__in=statuses)
    page = list(campaigns[: page_size + 1])
    has_more = len(page) > page_size
    page = [campaign_advance(campaign, now) for campaign in page[:page_size]]
    return CampaignPage(campaigns=page, next_cursor=page[-1].pk if has_more and page else None, has_more=has_more)


@dataclass(frozen=True)
class Progress:
    total: int
    uncalled: int
    active: int
    finished: int
    finished_by_disposition: dict
    scheduled: int
    scheduled_by_type: dict
    in_progress: int
    awaiting_analysis: int
    next_call_time: float | None


def campaign_progress(*, campaign_id: str, now: float | None = None) -> Progress:
    now = services._clock(now)
    campaign = campaign_get(campaign_id=campaign_id, now=now)
    leads = SandboxLead.objects.filter(campaign=campaign)
    counts = leads.aggregate(
        total=Count("pk"),
        uncalled=Count("pk", filter=Q(terminal_disposition__isnull=True, attempt_count=0)),
        active=Count("pk", filter=Q(terminal_disposition__isnull=True, attempt_count__gt=0)),
        finished=Count("pk", filter=Q(terminal_disposition__isnull=False)),
    )
    by_disposition = {
        row["terminal_disposition"]: row["n"]
        for row in leads.filter(terminal_disposition__isnull=False)
        .values("terminal_disposition")
        .annotate(n=Count("pk"))
    }
    calls = SandboxCampaignCall.objects.filter(campaign=campaign)
    call_counts = calls.aggregate(
        scheduled=Count("pk", filter=Q(status=CampaignCallStatus.QUEUED)),
        initial=Count("pk", filter=Q(status=CampaignCallStatus.QUEUED, number=1)),
        retry=Count("pk", filter=Q(status=CampaignCallStatus.QUEUED, number__gt=1)),
        in_progress=Count("pk", filter=Q(status=CampaignCallStatus.SUBMITTED)),
        awaiting_analysis=Count("pk", filter=Q(status=CampaignCallStatus.COMPLETED, decision__isnull=True)),
    )
    return Progress(
        total=counts["total"],
        uncalled=counts["uncalled"],
        active=counts["active"],
        finished=counts["finished"],
        finished_by_disposition=by_disposition,
        scheduled=call_counts["scheduled"],
        scheduled_by_type={kind: call_counts[kind] for kind in ("initial", "retry") if call_counts[kind]},
        in_progress=call_counts["in_progress"],
        awaiting_analysis=call_counts["awaiting_analysis"],
        next_call_time=next_call_time(campaign, now),
    )


def next_call_time(campaign: SandboxCampaign, now: float) -> float | None:
    """When the next queued call goes out if nothing changes; None when the campaign places no more calls."""
    if campaign.status != CampaignStatus.ACTIVE:
        return None
    head = (
        SandboxCampaignCall.objects.filter(campaign=campaign, status=CampaignCallStatus.QUEUED)
        .order_by("scheduled_at", "sequence")
        .values_list("scheduled_at", flat=True)
        .first()
    )
    if head is None:
        return None
    earliest = max(now, head)
    if campaign.last_dispatch_at is not None:
        earliest = max(earliest, campaign.last_dispatch_at + services.Timeline.from_settings().spacing)
    return _schedule(campaign, now).aligned(earliest)


# --- Pause, resume, stop ------------------------------------------------------------------


def _campaign_for_update(campaign_id: str, now: float) -> SandboxCampaign:
    campaign = SandboxCampaign.objects.select_for_update().filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(f"Campaign {campaign_id} not found")
    return campaign_advance(campaign, now)


def _status_save(campaign: SandboxCampaign, status: str, now: float) -> None:
    campaign.status = status
    campaign.updated_at_unix = int(now)
    campaign.save(update_fields=["status", "updated_at_unix"])


@transaction.atomic
def campaign_pause(*, campaign_id: str, now: float | None = None) -> SandboxCampaign:
    """No new calls until resumed; calls under way carry on. Pausing a paused campaign changes nothing."""
    now = services._clock(now)
    campaign = _campaign_for_update(campaign_id, now)
    if campaign.status == CampaignStatus.ACTIVE:
        _status_save(campaign, CampaignStatus.PAUSED, now)
    elif campaign.status != CampaignStatus.PAUSED:
        raise InvalidState(f"Campaign {campaign_id} is {campaign.status} and can no longer be paused")
    return campaign


@transaction.atomic
def campaign_resume(*, campaign_id: str, now: float | None = None) -> SandboxCampaign:
    """Calls go out again from `now` on. Resuming an active campaign changes nothing."""
    now = services._clock(now)
    campaign = _campaign_for_update(campaign_id, now)
    if campaign.status == CampaignStatus.PAUSED:
        _status_save(campaign, CampaignStatus.ACTIVE, now)
        campaign = campaign_advance(campaign, now)
    elif campaign.status != CampaignStatus.ACTIVE:
        raise InvalidState(f"Campaign {campaign_id} is {campaign.status} and cannot be resumed")
    return campaign


@transaction.atomic
def campaign_stop(*, campaign_id: str, now: float | None = None) -> SandboxCampaign:
    """Cancel every queued call and end every lead; `stopping` while calls under way finish, then `stopped`."""
    now = services._clock(now)
    campaign = _campaign_for_update(campaign_id, now)
    if campaign.status in (CampaignStatus.STOPPING, CampaignStatus.STOPPED):
        return campaign
    if campaign.status == CampaignStatus.COMPLETED:
        raise InvalidState(f"Campaign {campaign_id} is completed and can no longer be stopped")
    now_unix = int(now)
    calls = SandboxCampaignCall.objects.filter(campaign=campaign)
    calls.filter(status=CampaignCallStatus.QUEUED).update(status=CampaignCallStatus.CANCELLED, updated_at_unix=now_unix)
    open_calls = calls.filter(
        Q(status=CampaignCallStatus.SUBMITTED) | Q(status=CampaignCallStatus.COMPLETED, decision__isnull=True)
    )
    # A lead whose call is under way ends once that call does (see _Simulation._decide).
    SandboxLead.objects.filter(campaign=campaign, terminal_disposition__isnull=True).exclude(
        pk__in=open_calls.values("lead_id")
    ).update(terminal_disposition="campaign_ended", do_not_call=True, updated_at_unix=now_unix)
    _status_save(campaign, CampaignStatus.STOPPING if open_calls.exists() else CampaignStatus.STOPPED, now)
    return campaign


# --- Leads and calls ----------------------------------------------------------------------


@dataclass(frozen=True)
class LeadPage:
    leads: list[SandboxLead]
    next_cursor: str | None
    has_more: bool


def lead_list(
    *,
    campaign_id: str,
    page_size: int = 30,
    cursor: str | None = None,
    search: str | None = None,
    status: str | None = None,
    dispositions: list[str] | None = None,
    now: float | None = None,
) -> LeadPage:
    """A campaign's leads in submission order; `cursor` is the last lead_id of the previous page."""
    campaign = campaign_get(campaign_id=campaign_id, now=now)
    leads = SandboxLead.objects.filter(campaign=campaign).order_by("position")
    if search:
        leads = leads.filter(
            Q(id__icontains=search) | Q(phone_number__icontains=search) | Q(client_data__user_id__icontains=search)
        )
    if status == "in_progress":
        leads = leads.filter(terminal_disposition__isnull=True)
    elif status == "finished":
        leads = leads.filter(terminal_disposition__isnull=False)
    if dispositions:
        leads = leads.filter(terminal_disposition__in=dispositions)
    if cursor:
        position = SandboxLead.objects.filter(campaign=campaign, pk=cursor).values_list("position", flat=True).first()
        if position is None:
            raise InvalidCursor(f"Invalid cursor {cursor}")
        leads = leads.filter(position__gt=position)
    page = list(leads[: page_size + 1])
    has_more = len(page) > page_size
    page = page[:page_size]
    return LeadPage(leads=page, next_cursor=page[-1].pk if has_more and page else None, has_more=has_more)


def lead_get(*, campaign_id: str, lead_id: str, now: float | None = None) -> SandboxLead:
    campaign = campaign_get(campaign_id=campaign_id, now=now)
    lead = SandboxLead.objects.filter(campaign=campaign, pk=lead_id).first()
    if lead is None:
        raise NotFound(f"Lead {lead_id} not found")
    return lead


@dataclass(frozen=True)
class Suppressed:
    campaign_id: str
    lead_id: str
    has_calls_in_flight: bool


@transaction.atomic
def lead_suppress(*, campaign_id: str, lead_id: str, now: float | None = None) -> Suppressed:
    """The lead is never called again: its queued calls are cancelled, a call under way may still go through."""
    now = services._clock(now)
    campaign = _campaign_for_update(campaign_id, now)
    lead = SandboxLead.objects.filter(campaign=campaign, pk=lead_id).first()
    if lead is None:
        raise NotFound(f"Lead {lead_id} not found")
    now_unix = int(now)
    calls = SandboxCampaignCall.objects.filter(lead=lead)
    in_flight = calls.filter(status=CampaignCallStatus.SUBMITTED).exists()
    if lead.terminal_disposition is None:
        calls.filter(status=CampaignCallStatus.QUEUED).update(
            status=CampaignCallStatus.CANCELLED, updated_at_unix=now_unix
        )
        lead.terminal_disposition = "removed"
        lead.do_not_call = True
        lead.updated_at_unix = now_unix
        lead.save(update_fields=["terminal_disposition", "do_not_call", "updated_at_unix"])
        campaign.updated_at_unix = now_unix
        campaign.save(update_fields=["updated_at_unix"])
        _completion_check(campaign, now)
    return Suppressed(campaign_id=campaign.pk, lead_id=lead.pk, has_calls_in_flight=in_flight)


@dataclass(frozen=True)
class CallPage:
    calls: list[SandboxCampaignCall]
    next_cursor: str | None
    has_more: bool


# call_result of an ended call -> the outcomes that give it.
CALL_RESULT_OUTCOMES = {
    "answered": HUMAN_ANSWERED,
    "voicemail": (Outcome.VOICEMAIL,),
    "busy": (Outcome.BUSY,),
    "no_answer": (Outcome.NO_ANSWER,),
    "failed": (),
}


def call_list(
    *,
    campaign_id: str,
    page_size: int = 30,
    cursor: str | None = None,
    lead_id: str | None = None,
    status: str | None = None,
    call_results: list[str] | None = None,
    stage: str | None = None,
    now: float | None = None,
) -> CallPage:
    """A campaign's calls, newest first; `cursor` is the last intent_id of the previous page."""
    campaign = campaign_get(campaign_id=campaign_id, now=now)
    calls = SandboxCampaignCall.objects.filter(campaign=campaign).select_related("lead").order_by("-sequence")
    if lead_id:
        calls = calls.filter(lead_id=lead_id)
    if status:
        calls = calls.filter(status=status)
    if call_results:
        outcomes = [outcome for result in call_results for outcome in CALL_RESULT_OUTCOMES[result]]
        calls = calls.filter(status=CampaignCallStatus.COMPLETED, outcome__in=outcomes)
    if stage:
        calls = calls.none()  # delivery stages are for message campaigns
    if cursor:
        sequence = (
            SandboxCampaignCall.objects.filter(campaign=campaign, pk=cursor).values_list("sequence", flat=True).first()
        )
        if sequence is None:
            raise InvalidCursor(f"Invalid cursor {cursor}")
        calls = calls.filter(sequence__lt=sequence)
    page = list(calls[: page_size + 1])
    has_more = len(page) > page_size
    page = page[:page_size]
    return CallPage(calls=page, next_cursor=page[-1].pk if has_more and page else None, has_more=has_more)


# --- Conversations and webhooks -----------------------------------------------------------


def conversation_id_for(call: SandboxCampaignCall) -> str:
    return f"conv_{call.lead.conversation_key}{call.number:02d}"


def call_conversation_id(call: SandboxCampaignCall, now: float) -> str | None:
    """A call's conversation exists from one step after it is placed, answered or not."""
    if call.placed_at is None:
        return None
    if now + _EPSILON < call.placed_at + services.Timeline.from_settings().step:
        return None
    return conversation_id_for(call)


def conversation_build(*, call: SandboxCampaignCall, now: float) -> "services.Conversation | None":
    """The call's conversation at `now`, shaped like a batch recipient's; None before the call connects."""
    step = services.Timeline.from_settings().step
    if call.placed_at is None or now + _EPSILON < call.placed_at + step:
        return None
    started = call.placed_at + step
    answered = call.outcome in ANSWERED
    ended_at = None
    duration = 0
    if not answered:
        status = "failed" if now + _EPSILON >= started + step else "initiated"
        if status == "failed":
            ended_at = started + step
    elif now + _EPSILON < started + step:
        status = "initiated"
    elif now + _EPSILON < started + 2 * step:
        status = "in-progress"
        duration = max(0, int(now - started))
    else:
        status = "processing" if now + _EPSILON < started + 2 * step + step / 2 else "done"
        ended_at = started + 2 * step
        duration = max(1, round(2 * step))
    return services.Conversation(
        conversation_id=conversation_id_for(call),
        batch=call.campaign,
        recipient=call.lead,
        attempt=call.number,
        outcome=Outcome(call.outcome),
        status=status,
        cancelled=False,
        started_at=started,
        ended_at=ended_at,
        duration_secs=duration,
    )


def conversation_get(*, key: str, number: int, conversation_id: str, now: float) -> "services.Conversation":
    lead = SandboxLead.objects.filter(conversation_key=key).select_related("campaign").first()
    if lead is None:
        raise ConversationNotFound(conversation_id)
    campaign_advance(lead.campaign, now)
    call = SandboxCampaignCall.objects.filter(lead=lead, number=number).select_related("campaign", "lead").first()
    conversation = None if call is None else conversation_build(call=call, now=now)
    if conversation is None:
        raise ConversationNotFound(conversation_id)
    return conversation


def campaigns_advance(now: float) -> int:
    """Play every open campaign forward to `now` (from `sandbox_tick`)."""
    campaigns = list(SandboxCampaign.objects.filter(status__in=OPEN_CAMPAIGN))
    for campaign in campaigns:
        campaign_advance(campaign, now)
    return len(campaigns)


def delivery_columns(*, audio: bool) -> "delivery.Columns":
    """Where a call's event (its audio when `audio`) is tracked."""
    if audio:
        return delivery.Columns(SandboxCampaignCall, "audio_sent", "audio_attempts")
    return delivery.Columns(SandboxCampaignCall, "webhook_sent", "webhook_attempts")


def deliveries_due(*, audio: bool, now: float):
    """The due event of each ended call (its audio when `audio`), as lists of at most DUE_CHUNK in the order the
    calls ended: keyset pagination on (ended_at, id), never more than one chunk in memory."""
    columns = delivery_columns(audio=audio)
    due = SandboxCampaignCall.objects.filter(
        status=CampaignCallStatus.COMPLETED,
        **{columns.sent: False, f"{columns.attempts}__lt": delivery.WEBHOOK_MAX_ATTEMPTS},
    )
    if audio:
        due = due.filter(outcome__in=ANSWERED)
    due = due.select_related("campaign", "lead").order_by("ended_at", "id")
    after: tuple[float, str] | None = None
    while True:
        page = due if after is None else due.filter(Q(ended_at__gt=after[0]) | Q(ended_at=after[0], id__gt=after[1]))
        chunk = list(page[: delivery.DUE_CHUNK])
        if not chunk:
            return
        after = (chunk[-1].ended_at, chunk[-1].pk)
        rows = []
        for call in chunk:
            conversation = conversation_build(call=call, now=now)
            if conversation is None or conversation.status not in ("done", "failed"):
                continue  # ElevenLabs posts once the analysis is done
            rows.append(
                delivery.Due(
                    pk=call.pk, attempts=getattr(call, columns.attempts), attempt=None, conversation=conversation
                )
            )
        if rows:
            yield rows
