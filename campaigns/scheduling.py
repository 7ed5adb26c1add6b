"""Turning a wall-clock schedule in a named time zone into a UTC instant, honestly."""

import datetime as dt
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from campaigns.errors import ValidationFailed


def zone_get(name: str) -> ZoneInfo:
    """The IANA zone called `name`, or a 422 naming it."""
    try:
        if name not in zone_names():
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(
            f"Unknown time zone '{name}': use an IANA name such as Europe/Berlin or America/New_York.",
            field="timezone",
        ) from None


@functools.cache
def zone_names() -> frozenset[str]:
    # ZoneInfo() alone would also accept file paths under the tz database; only real names count.
    return frozenset(available_timezones()) | {"UTC"}


def local_to_utc(date: dt.date, time: dt.time, zone_name: str) -> dt.datetime:
    """The UTC instant of `date time` on the clocks of `zone_name`.

    A wall time that does not exist (clocks jump forward) or happens twice (clocks go back)
    is refused with a message saying so, instead of being shifted silently.
    """
    zone = zone_get(zone_name)
    naive = dt.datetime.combine(date, time)
    first = naive.replace(tzinfo=zone, fold=0)
    second = naive.replace(tzinfo=zone, fold=1)
    when = f"{date.isoformat()} {time.strftime('%H:%M:%S')}"
    if first.utcoffset() != second.utcoffset():
        # Round-tripping through UTC changes a wall time that the clocks skip over.
        if first.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != naive:
            raise ValidationFailed(
                f"{when} does not exist in {zone_name}: the clocks skip that hour for daylight saving time. "
                "Pick a time outside the gap.",
                field="schedule_time",
            )
        raise ValidationFailed(
            f"{when} happens twice in {zone_name} (the clocks go back for daylight saving time). "
            "Pick a time outside that hour.",
            field="schedule_time",
        )
    return first.astimezone(dt.UTC)
