"""Calling windows, and each number's time zone as phonenumbers places it."""

import datetime as dt
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType
from phonenumbers.timezone import time_zones_for_number

from campaigns.policy import policy_parse
from campaigns.zones import zone_of_number

TYPES = [value for name, value in vars(PhoneNumberType).items() if name.isupper() and name != "UNKNOWN"]
SAMPLES = [
    datetime
    for month in range(1, 13)
    for datetime in (dt.datetime(2027, month, 1, 12, tzinfo=dt.UTC), dt.datetime(2027, month, 15, 12, tzinfo=dt.UTC))
]


def clock(zone: str) -> list:
    """What a zone's clocks read through a year: zones that agree at every instant keep one clock."""
    return [instant.astimezone(ZoneInfo(zone)).utcoffset() for instant in SAMPLES]


def example_numbers():
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for number_type in TYPES:
            number = phonenumbers.example_number_for_type(region, number_type)
            if number is not None:
                yield region, number


def test_every_regions_example_numbers_get_the_clock_phonenumbers_gives_them():
    checked = 0
    for region, number in example_numbers():
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        zones = [zone for zone in time_zones_for_number(number) if zone != "Etc/Unknown"]
        clocks = {tuple(clock(zone)) for zone in zones}
        ours = zone_of_number(e164)
        if number.country_code == 1 and ours is not None:
            # North America: each area code belongs to one country or territory, so a Barbados
            # mobile is on Barbados' clock (phonenumbers gives mobiles there the whole continent).
            assert ours in zones, (region, e164, ours)
        elif len(clocks) == 1:
            assert ours is not None and tuple(clock(ours)) in clocks, (region, e164, zones, ours)
        else:
            assert ours is None, (region, e164, zones, ours)
        checked += 1
    assert checked > 1_300


@pytest.mark.parametrize(
    ("number", "zone"),
    [
        ("+12125550100", "America/New_York"),
        ("+13105550100", "America/Los_Angeles"),
        ("+13125550100", "America/Chicago"),
        ("+442079460958", "Europe/London"),
        ("+447911123456", "Europe/London"),  # a UK mobile: London, Jersey and Guernsey keep one clock
        ("+441534456789", "Europe/Jersey"),
        ("+4930123456", "Europe/Berlin"),
        ("+18005550100", None),  # toll-free: the whole continent
        ("+79123456789", None),  # a Russian mobile: eleven clocks
    ],
)
def test_a_numbers_zone(number, zone):
    assert zone_of_number(number) == zone


def test_windows_are_read_on_the_recipients_clock():
    policy = policy_parse(calling_hours="09:00-12:00,14:00-20:00", calling_days="mon-fri")
    friday_evening_utc = dt.datetime(2027, 3, 5, 23, 30, tzinfo=dt.UTC)  # 18:30 in New York, 00:30 Sat in Berlin

    assert policy.first_call_at("America/New_York", friday_evening_utc) == friday_evening_utc
    # Berlin: the weekend, so Monday 09:00 local (08:00 UTC).
    assert policy.first_call_at("Europe/Berlin", friday_evening_utc) == dt.datetime(2027, 3, 8, 8, 0, tzinfo=dt.UTC)
    # Los Angeles at 15:30 on Friday: inside the afternoon window.
    assert policy.first_call_at("America/Los_Angeles", friday_evening_utc) == friday_evening_utc


def test_the_gap_between_two_windows_waits_for_the_second():
    policy = policy_parse(calling_hours="09:00-12:00,14:00-20:00")
    noon_in_london = dt.datetime(2027, 1, 6, 12, 30, tzinfo=dt.UTC)

    assert policy.first_call_at("Europe/London", noon_in_london) == dt.datetime(2027, 1, 6, 14, 0, tzinfo=dt.UTC)


def test_elevenlabs_gets_weekdays_from_monday_zero_and_24_00_as_midnight():
    policy = policy_parse(calling_hours="21:00-24:00,08:00-09:30", calling_days="fri-mon")

    intervals = [{"start": "08:00", "end": "09:30"}, {"start": "21:00", "end": "24:00"}]
    assert policy.calling_periods() == [{"weekdays": [0, 4, 5, 6], "intervals": intervals}]
    assert policy.uses_outbound_campaigns


def test_retries_alone_use_the_outbound_engine_and_one_attempt_does_not():
    assert policy_parse(max_attempts="2").uses_outbound_campaigns
    assert not policy_parse(max_attempts="1", max_concurrent_calls="3").uses_outbound_campaigns
