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
