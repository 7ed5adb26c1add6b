"""Each recipient's time zone, from its number (phonenumbers' time-zone data), at a cost a
100,000-row file does not feel.

phonenumbers gives a number the zones of its area when its type is geographical (fixed lines,
and mobiles where the numbering plan says where they are), else every zone of its country.
Zones whose clocks always agree (Europe/London, Europe/Jersey, Europe/Guernsey) count as one:
only the wall clock matters for calling hours. So:

- a country whose zones all keep one clock gives it to every number, whatever its type (by
  the area's own name where the number has one);
- a North American number is placed by its area code (every +1 area code belongs to one
  country or territory; toll-free and other non-geographic codes span the continent);
- any other country with several clocks (Russia, Australia, Brazil, ...) asks phonenumbers
  itself, type check included.

A number whose zones keep several clocks has no zone of its own: the caller decides (the
campaign's zone).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers.timezone import time_zones_for_number
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from campaigns.scheduling import zone_names

UNKNOWN_ZONE = "Etc/Unknown"
_NANPA = "1"
_HEAD = 6
# Six-digit heads under which the data holds longer prefixes: looked up digit by digit.
_LONG_HEADS = frozenset(prefix[:_HEAD] for prefix in TIMEZONE_DATA if len(prefix) > _HEAD)
_COUNTRY_CODES = frozenset(str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
# When zones keep the same clock, the one the data names most often stands for them all.
_POPULARITY = Counter(zone for zones in TIMEZONE_DATA.values() for zone in zones)
# Two years of instants, twice a month: zones with the same offsets at all of them keep one clock.
_SAMPLES = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=15 * step) for step in range(49)]


@functools.cache
def _clock(zone: str) -> tuple | None:
    if zone not in zone_names():
        return None
    info = ZoneInfo(zone)
    return tuple(instant.astimezone(info).utcoffset() for instant in _SAMPLES)


@functools.cache
def _one_clock(zones: tuple[str, ...]) -> str | None:
    """The zone standing for `zones` when they all keep one clock; None when they do not (or are unknown)."""
    clocks = {_clock(zone) for zone in zones}
    if not zones or len(clocks) != 1 or None in clocks:
        return None
    return max(zones, key=lambda zone: (_POPULARITY[zone], zone))


def _longest(digits: str) -> tuple[str, ...]:
    for length in range(min(len(digits), TIMEZONE_LONGEST_PREFIX), 0, -1):
        zones = TIMEZONE_DATA.get(digits[:length])
        if zones:
            return zones
    return ()


@functools.lru_cache(maxsize=65_536)
def _area_zone(head: str) -> str | None:
    return _one_clock(_longest(head))


@functools.cache
def _country(country_code: str) -> tuple[bool, str | None]:
    """(the whole country keeps one clock, that zone)."""
    zone = _one_clock(TIMEZONE_DATA.get(country_code, ()))
    return zone is not None, zone


def _country_code(digits: str) -> str:
    for length in (1, 2, 3):
        if digits[:length] in _COUNTRY_CODES:
            return digits[:length]
    return ""


def zone_of_number(e164: str) -> str | None:
    """The IANA zone whose clock a valid E.164 number keeps, or None when phonenumbers places it in
    zones that keep different clocks (or in none)."""
    digits = e164[1:]
    country_zone = None
    if digits[0] != _NANPA:
        one_clock, country_zone = _country(_country_code(digits))
        if not one_clock:
            try:
                return _one_clock(tuple(time_zones_for_number(phonenumbers.parse(e164))))
            except phonenumbers.NumberParseException:
                return None
    # By area: North American area codes, or the area's own name in a one-clock country
    # (Europe/Jersey rather than Europe/London for a Jersey line).
    head = digits[:_HEAD]
    area = _one_clock(_longest(digits)) if head in _LONG_HEADS else _area_zone(head)
    return area if area is not None else country_zone
