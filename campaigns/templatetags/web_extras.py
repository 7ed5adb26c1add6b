"""Template filters of the staff pages."""

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import template
from django.utils import timezone

register = template.Library()


class _ZonedDatetime(dt.datetime):
    """A datetime already in the zone it is shown in: the template engine must not convert it again."""

    convert_to_local_time = False


@register.filter
def entries(mapping):
    """The (key, value) pairs of a dict whose keys come from a file: `mapping.items` in a template
    would find a column named "items" instead of the method."""
    return list(mapping.items())


@register.filter
def in_zone(value, zone_name):
    """`value` on the clocks of the IANA zone `zone_name` (UTC when the name is unknown)."""
    if not isinstance(value, dt.datetime):
        return value
    try:
        zone = ZoneInfo(zone_name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = timezone.localtime(value, zone)
    return _ZonedDatetime(
        local.year,
        local.month,
        local.day,
        local.hour,
        local.minute,
        local.second,
        local.microsecond,
        local.tzinfo,
        fold=local.fold,
    )


@register.filter
def call_time(seconds):
    """Seconds into (or of) a call as a clock reads them: 0:04, 2:31, 1:02:05."""
    if seconds is None or isinstance(seconds, bool):
        return ""
    try:
        total = max(0, int(seconds))
    except (TypeError, ValueError):
        return ""
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
