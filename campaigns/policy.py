"""A campaign's calling policy: when people may be called, in whose time zone, and how often.

The fields arrive as text (API multipart form, staff form) and are checked here, each refusal a
422 naming its field. A campaign with calling hours or more than one attempt is placed by
ElevenLabs' outbound-campaigns engine, which reads weekly windows in one IANA zone; the
recipients are grouped by the zone their windows are read in (each one's own, or one for all).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from campaigns.errors import ValidationFailed
from campaigns.scheduling import zone_get

RECIPIENT_ZONE = "recipient"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_ATTEMPTS = 10
MAX_RETRY_DELAY_MINUTES = 7 * 24 * 60
MAX_CONCURRENT_CALLS = 1_000
MAX_WINDOWS = 12
DEFAULT_RETRY_DELAY_MINUTES = 60

_WINDOW = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
_DAY_NAMES = {
    **{day: index for index, day in enumerate(DAYS)},
    **{
        name: index
        for index, name in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))
    },
}
_HOURS_EXAMPLE = 'such as "09:00-20:00" or "09:00-12:00,14:00-20:00"'


@dataclass(frozen=True)
class Window:
    """Local wall-clock minutes since midnight: [start, end), end up to 24:00."""

    start: int
    end: int

    def __str__(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"


@dataclass(frozen=True)
class Policy:
    windows: tuple[Window, ...] = ()
    days: tuple[int, ...] = tuple(range(7))  # 0 = Monday
    timezone: str = ""  # RECIPIENT_ZONE, an IANA zone, or "" without calling hours
    max_attempts: int = 1
    retry_delay_minutes: int = DEFAULT_RETRY_DELAY_MINUTES
    max_concurrent_calls: int | None = None

    @property
    def has_hours(self) -> bool:
        return bool(self.windows)

    @property
    def uses_outbound_campaigns(self) -> bool:
        """ElevenLabs' engine runs it (windows, retries); otherwise batch calling does."""
        return self.has_hours or self.max_attempts > 1

    @property
    def calling_hours(self) -> str:
        return ",".join(str(window) for window in self.windows)

    @property
    def calling_days(self) -> str:
        return ",".join(DAYS[day] for day in self.days) if self.has_hours else ""

    def zone_for(self, recipient_zone: str) -> str:
        """The zone a recipient's windows are read in."""
        return recipient_zone if self.timezone == RECIPIENT_ZONE else self.timezone

    def as_dict(self) -> dict:
        """The values in force, under the names the API takes them."""
        return {
            "calling_hours": self.calling_hours or None,
            "calling_days": self.calling_days or None,
            "calling_timezone": self.timezone or None,
            "max_attempts": self.max_attempts,
            "retry_delay_minutes": self.retry_delay_minutes,
            "max_concurrent_calls": self.max_concurrent_calls,
        }

    def calling_periods(self) -> list[dict]:
        """ElevenLabs' policy.calling_periods: the same windows on each calling day."""
        intervals = [{"start": _clock(window.start), "end": _clock(window.end)} for window in self.windows]
        return [{"weekdays": list(self.days), "intervals": intervals}]

    def first_call_at(self, zone_name: str, after: dt.datetime) -> dt.datetime:
        """The first instant at or after `after` (UTC) inside a window, on `zone_name`'s clocks."""
        if not self.has_hours:
            return after
        zone = ZoneInfo(zone_name)
        local = after.astimezone(zone)
        for offset in range(8):
            day = local.date() + dt.timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            for window in self.windows:
                start = _at(day, window.start, zone)
                end = _at(day, window.end, zone)
                if end <= after:
                    continue
                return max(start, after)
        return after  # unreachable with at least one day and one window


def concurrency_share(cap: int | None, *, parts: int, part: int) -> int | None:
    """Part `part`'s share of the campaign's cap on calls at once: the parts run side by side, so
    their limits add up to the cap (create refuses a cap smaller than the number of parts)."""
    if cap is None:
        return None
    share, extra = divmod(cap, parts)
    return max(1, share + (1 if part <= extra else 0))


def _at(day: dt.date, minutes: int, zone: ZoneInfo) -> dt.datetime:
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    wall = midnight.replace(tzinfo=None) + dt.timedelta(minutes=minutes)
    return wall.replace(tzinfo=zone).astimezone(dt.UTC)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# The campaign's columns its calling policy is made of: what policy_from_campaign reads.
POLICY_COLUMNS = (
    "calling_hours",
    "calling_days",
    "calling_timezone",
    "max_attempts",
    "retry_delay_minutes",
    "max_concurrent_calls",
)


def policy_from_campaign(campaign) -> Policy:
    """The policy stored on a campaign (its fields were checked when it was created)."""
    windows = tuple(_windows(campaign.calling_hours)) if campaign.calling_hours else ()
    days = tuple(_days(campaign.calling_days)) if campaign.calling_days else tuple(range(7))
    return Policy(
        windows=windows,
        days=days,
        timezone=campaign.calling_timezone,
        max_attempts=campaign.max_attempts,
        retry_delay_minutes=campaign.retry_delay_minutes,
        max_concurrent_calls=campaign.max_concurrent_calls,
    )


def policy_parse(
    *,
    calling_hours: str | None = None,
    calling_days: str | None = None,
    calling_timezone: str | None = None,
    max_attempts=None,
    retry_delay_minutes=None,
    max_concurrent_calls=None,
) -> Policy:
    """Check the policy fields as a client sent them; every field is optional."""
    hours = (calling_hours or "").strip()
    days_text = (calling_days or "").strip()
    zone_text = (calling_timezone or "").strip()

    windows = tuple(_windows(hours)) if hours else ()
    days = tuple(_days(days_text)) if days_text else tuple(range(7))
    if days_text and not windows:
        windows = (Window(0, 24 * 60),)  # days alone: any time on those days
    if zone_text and not windows:
        raise _refused(
            "calling_timezone says whose clock the calling hours are read on: give calling_hours "
            f"({_HOURS_EXAMPLE}) or calling_days with it.",
            field="calling_timezone",
        )
    zone = ""
    if windows:
        zone = RECIPIENT_ZONE if zone_text.lower() in ("", RECIPIENT_ZONE) else _zone(zone_text)

    attempts = _integer(max_attempts, "max_attempts", 1, MAX_ATTEMPTS, default=1)
    delay = _integer(
        retry_delay_minutes, "retry_delay_minutes", 1, MAX_RETRY_DELAY_MINUTES, default=DEFAULT_RETRY_DELAY_MINUTES
    )
    concurrency = _integer(max_concurrent_calls, "max_concurrent_calls", 1, MAX_CONCURRENT_CALLS, default=None)
    return Policy(
        windows=windows,
        days=days,
        timezone=zone,
        max_attempts=attempts,
        retry_delay_minutes=delay,
        max_concurrent_calls=concurrency,
    )


def _windows(text: str) -> list[Window]:
    parts = text.split(",")
    if len(parts) > MAX_WINDOWS:
        raise _refused(
            f"calling_hours has {len(parts)} windows; at most {MAX_WINDOWS} are accepted.", field="calling_hours"
        )
    windows = []
    for part in parts:
        match = _WINDOW.fullmatch(part)
        if not match:
            raise _refused(
                f"calling_hours '{_shorten(part.strip())}' is not a window of local times {_HOURS_EXAMPLE}.",
                field="calling_hours",
            )
        start_hour, start_minute, end_hour, end_minute = (int(group) for group in match.groups())
        start = _minutes(start_hour, start_minute, part, allow_midnight_end=False)
        end = _minutes(end_hour, end_minute, part, allow_midnight_end=True)
        if end <= start:
            raise _refused(
                f"calling_hours '{part.strip()}' ends before it starts. A window runs within one day "
                '(write "21:00-24:00,00:00-08:00" for a night).',
                field="calling_hours",
            )
        windows.append(Window(start, end))
    windows.sort(key=lambda window: window.start)
    for earlier, later in itertools.pairwise(windows):
        if later.start < earlier.end:
            raise _refused(
                f"calling_hours windows {earlier} and {later} overlap; give each hour once.", field="calling_hours"
            )
    return windows


def _minutes(hour: int, minute: int, part: str, *, allow_midnight_end: bool) -> int:
    if hour == 24 and minute == 0 and allow_midnight_end:
        return 24 * 60
    if hour > 23 or minute > 59:
        raise _refused(
            f"calling_hours '{part.strip()}' has a time that does not exist; use 00:00 to 23:59 (24:00 as an end).",
            field="calling_hours",
        )
    return hour * 60 + minute


def _days(text: str) -> list[int]:
    chosen: set[int] = set()
    for part in text.lower().split(","):
        part = part.strip()
        first, dash, last = part.partition("-")
        names = [first.strip(), last.strip()] if dash else [part]
        if not all(name in _DAY_NAMES for name in names):
            raise _refused(
                f"calling_days '{_shorten(part)}' is not a day or a range of days: write days as mon, tue, wed, "
                'thu, fri, sat, sun, such as "mon-fri" or "mon,wed,fri".',
                field="calling_days",
            )
        start = _DAY_NAMES[names[0]]
        end = _DAY_NAMES[names[-1]]
        # "fri-mon" wraps over the weekend.
        span = (end - start) % 7
        chosen.update((start + step) % 7 for step in range(span + 1))
    return sorted(chosen)


def _zone(text: str) -> str:
    try:
        zone_get(text)
    except ValidationFailed:
        raise _refused(
            f"calling_timezone '{_shorten(text)}' is neither 'recipient' (each person's own time zone) nor an "
            "IANA time zone such as America/New_York.",
            field="calling_timezone",
        ) from None
    return text


def _integer(value, field: str, low: int, high: int, *, default):
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise _refused(f"{field} must be a whole number from {low} to {high:,}.", field=field) from None
    if not low <= number <= high:
        raise _refused(f"{field} must be from {low} to {high:,}; it is {number:,}.", field=field)
    return number


def _refused(message: str, *, field: str) -> ValidationFailed:
    # details.field lets a program tell which field to fix without reading the sentence.
    return ValidationFailed(message, field=field, details={"field": field})


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
