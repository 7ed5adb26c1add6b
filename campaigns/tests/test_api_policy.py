"""The calling policy on create: fields, each recipient's time zone, and the do-not-call list."""

import pytest

from campaigns.models import Campaign, Recipient

from .conftest import csv_file
from .factories import SuppressionFactory
from .test_api_create_campaign import URL, assert_error, assert_nothing_stored

pytestmark = pytest.mark.django_db

# New York, Los Angeles and London numbers, and one that only says "somewhere in North America".
MIXED = (
    "phone_number,first_name\n"
    "+12125550100,Ada\n"  # New York
    "+12125550101,Bob\n"  # New York
    "+13105550102,Cy\n"  # Los Angeles
    "+442079460958,Dee\n"  # London
    "+18005550103,Eve\n"  # toll-free: every North American zone
)


def create(api, campaign_form, **fields):
    return api.post(URL, campaign_form(**fields), format="multipart")


def test_a_policy_is_stored_and_answered_under_the_names_it_was_sent_with(api, campaign_form):
    response = create(
        api,
        campaign_form,
        recipients_file=csv_file(MIXED),
        calling_hours="9:00-12:00, 14:00-20:00",
        calling_days="mon-fri",
        max_attempts="3",
        retry_delay_minutes="90",
        max_concurrent_calls="5",
        timezone="Europe/Berlin",
    )

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["policy"] == {
        "calling_hours": "09:00-12:00,14:00-20:00",
        "calling_days": "mon,tue,wed,thu,fri",
        "calling_timezone": "recipient",
        "max_attempts": 3,
        "retry_delay_minutes": 90,
        "max_concurrent_calls": 5,
    }
    assert data["next_call_at"] is None  # not at ElevenLabs yet
    assert api.get(f"{URL}/{data['id']}").json()["data"]["policy"] == data["policy"]


def test_one_zone_for_everyone_times_every_call_on_its_clock(api, campaign_form):
    data = create(
        api, campaign_form, recipients_file=csv_file(MIXED), calling_hours="10:00-18:00", calling_timezone="Asia/Tokyo"
    ).json()["data"]

    assert data["policy"]["calling_timezone"] == "Asia/Tokyo"
    assert data["policy"]["calling_days"] == "mon,tue,wed,thu,fri,sat,sun"
    assert data["time_zones"] == {"Asia/Tokyo": 5}


def test_calling_days_alone_allow_the_whole_of_those_days(api, campaign_form):
    data = create(api, campaign_form, calling_days="sat,sun").json()["data"]

    assert data["policy"]["calling_hours"] == "00:00-24:00"
    assert data["policy"]["calling_days"] == "sat,sun"


def test_each_recipients_zone_is_stored_and_counted(api, campaign_form):
    response = create(api, campaign_form, recipients_file=csv_file(MIXED), timezone="Europe/Berlin")

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    # The toll-free number keeps no single clock: it gets the campaign's (Berlin).
    assert data["time_zones"] == {
        "America/New_York": 2,
        "America/Los_Angeles": 1,
        "Europe/Berlin": 1,
        "Europe/London": 1,
    }
    assert data["elevenlabs_campaign_ids"] == []
    assert data["suppressed_count"] == 0
    zones = dict(Recipient.objects.values_list("phone_number", "timezone"))
    assert zones == {
        "+12125550100": "America/New_York",
        "+12125550101": "America/New_York",
        "+13105550102": "America/Los_Angeles",
        "+442079460958": "Europe/London",
        "+18005550103": "Europe/Berlin",
    }
    assert api.get(f"{URL}/{data['id']}").json()["data"]["time_zones"] == data["time_zones"]


def test_a_concurrency_cap_is_stored_and_answered(api, campaign_form):
    data = create(api, campaign_form, max_concurrent_calls="5", max_attempts="1").json()["data"]

    assert data["policy"]["max_concurrent_calls"] == 5
    assert Campaign.objects.get().max_concurrent_calls == 5


def test_without_a_policy_a_campaign_calls_once_at_any_hour(api, campaign_form):
    data = create(api, campaign_form).json()["data"]

    assert data["policy"] == {
        "calling_hours": None,
        "calling_days": None,
        "calling_timezone": None,
        "max_attempts": 1,
        "retry_delay_minutes": 60,
        "max_concurrent_calls": None,
    }
    assert data["time_zones"] == {"America/New_York": 1, "America/Los_Angeles": 1, "Europe/London": 1}


def test_a_timezone_column_overrides_the_numbers_own_zone_row_by_row(api, campaign_form):
    file = csv_file(
        "phone_number,TimeZone,first_name\n"
        "+12125550100,America/Chicago,Ada\n"
        "+12125550101,,Bob\n"
        "+18005550103,America/Denver,Eve\n"
    )
    data = create(api, campaign_form, recipients_file=file).json()["data"]

    assert data["time_zones"] == {"America/Chicago": 1, "America/Denver": 1, "America/New_York": 1}
    recipient = Recipient.objects.get(phone_number="+12125550100")
    assert recipient.timezone == "America/Chicago"
    assert recipient.variables == {"first_name": "Ada"}  # the zone is not a variable


def test_an_unknown_zone_in_the_timezone_column_is_a_row_error(api, campaign_form):
    file = csv_file("phone_number,timezone\n+12125550100,Eastern\n+12125550101,America/New_York\n")

    response = create(api, campaign_form, recipients_file=file)

    assert_error(response, 422, "Line 2: 'Eastern' is not a time zone")
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("calling_hours", "9-17", 'not a window of local times such as "09:00-20:00"'),
        ("calling_hours", "18:00-09:00", "ends before it starts"),
        ("calling_hours", "09:00-25:00", "a time that does not exist"),
        ("calling_hours", "09:00-13:00,12:00-15:00", "overlap"),
        ("calling_hours", ",".join(["01:00-01:30"] * 13), "at most 12"),
        ("calling_days", "weekdays", "is not a day or a range of days"),
        ("calling_timezone", "Mars/Olympus", "neither 'recipient'"),
        ("max_attempts", "0", "max_attempts must be from 1 to 10"),
        ("max_attempts", "11", "max_attempts must be from 1 to 10"),
        ("max_attempts", "two", "max_attempts must be a whole number"),
        ("retry_delay_minutes", "0", "retry_delay_minutes must be from 1"),
        ("max_concurrent_calls", "-3", "max_concurrent_calls must be from 1"),
    ],
)
def test_a_bad_policy_value_is_refused_naming_its_field(api, campaign_form, field, value, fragment):
    fields = {field: value}
    if field == "calling_timezone":
        fields["calling_hours"] = "09:00-17:00"

    body = assert_error(create(api, campaign_form, **fields), 422, fragment)

    assert body["details"] == {"field": field}
    assert_nothing_stored()


def test_a_calling_timezone_without_hours_or_days_is_refused(api, campaign_form):
    body = assert_error(create(api, campaign_form, calling_timezone="Europe/Paris"), 422, "give calling_hours")

    assert body["details"] == {"field": "calling_timezone"}


def test_numbers_on_the_do_not_call_list_are_left_out_and_counted(api, campaign_form, user, other_user):
    SuppressionFactory(user=user, phone_number="+12125550101")
    SuppressionFactory(user=other_user, phone_number="+13105550102")  # another account's list

    data = create(api, campaign_form, recipients_file=csv_file(MIXED)).json()["data"]

    assert data["suppressed_count"] == 1
    assert data["recipients_count"] == 4
    assert data["time_zones"]["America/New_York"] == 1
    numbers = set(Recipient.objects.values_list("phone_number", flat=True))
    assert "+12125550101" not in numbers and "+13105550102" in numbers


def test_a_file_whose_every_number_is_on_the_list_is_refused(api, campaign_form, user):
    SuppressionFactory(user=user, phone_number="+12125550100")

    response = create(api, campaign_form, recipients_file=csv_file("phone_number\n+12125550100\n"))

    assert_error(response, 422, "on your do-not-call list")
    assert Campaign.objects.count() == 0


def test_a_cap_below_the_number_of_batches_is_refused(api, campaign_form, settings):
    settings.ELEVENLABS_BATCH_MAX_RECIPIENTS = 2
    file = csv_file("phone_number\n" + "".join(f"+1212555010{n}\n" for n in range(5)))

    body = assert_error(
        create(api, campaign_form, recipients_file=file, max_concurrent_calls="2"),
        422,
        "5 recipients go out as 3 batches",
        "allow at least 3 calls at once",
    )

    assert body["details"] == {"field": "max_concurrent_calls"}
    assert_nothing_stored()
