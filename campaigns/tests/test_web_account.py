"""One clock: a staff user chooses a time zone, and every time on the pages and in the admin
is shown in it, with its abbreviation."""

import datetime as dt
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from campaigns import services
from campaigns.models import ApiKey, Profile

from .factories import CampaignFactory

pytestmark = pytest.mark.django_db

CREATED = dt.datetime(2026, 3, 4, 12, 0, tzinfo=dt.UTC)


def _key_created_at_noon(user):
    created = services.api_key_create(user=user, name="crm")
    ApiKey.objects.filter(pk=created.api_key.pk).update(created_at=CREATED)


def test_times_are_in_utc_labelled_until_a_zone_is_chosen(staff, user):
    _key_created_at_noon(user)
    page = unescape(staff.get(reverse("web:api_key_list")).content.decode())
    assert "4 Mar 2026, 12:00 UTC" in page


def test_a_chosen_zone_is_kept_and_every_page_shows_times_in_it(staff, user):
    _key_created_at_noon(user)

    answer = staff.post(reverse("web:account"), {"timezone": "Europe/Berlin"}, follow=True)

    assert "Times are now shown in Europe/Berlin." in answer.content.decode()
    assert Profile.objects.get(user=user).timezone == "Europe/Berlin"
    page = unescape(staff.get(reverse("web:api_key_list")).content.decode())
    assert "4 Mar 2026, 13:00 CET" in page
    assert "12:00 UTC" not in page
    # The header says which zone, on every page, and leads to where it is changed.
    assert f'href="{reverse("web:account")}"' in page


def test_an_unknown_zone_is_refused_and_nothing_changes(staff, user):
    answer = staff.post(reverse("web:account"), {"timezone": "Mars/Olympus_Mons"})
    assert answer.status_code == 200
    assert "Select a valid choice" in answer.content.decode()
    assert not Profile.objects.filter(user=user).exists()


def test_the_zone_is_each_users_own(client, user, other_user):
    _key_created_at_noon(other_user)
    Profile.objects.create(user=user, timezone="Asia/Tokyo")
    client.force_login(other_user)
    page = unescape(client.get(reverse("web:api_key_list")).content.decode())
    assert "4 Mar 2026, 12:00 UTC" in page


def test_the_admin_shows_times_in_the_users_zone_with_its_abbreviation(client, user):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "a long admin password")
    Profile.objects.create(user=admin, timezone="America/New_York")
    campaign = CampaignFactory(user=admin)
    type(campaign).objects.filter(pk=campaign.pk).update(created_at=CREATED)
    client.force_login(admin)

    page = unescape(client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode())

    assert "4 Mar 2026, 07:00 EST" in page


def test_a_campaign_page_shows_its_times_in_the_users_zone_and_the_schedule_on_the_campaigns_clock_too(staff, user):
    Profile.objects.create(user=user, timezone="Asia/Tokyo")
    campaign = CampaignFactory(
        user=user, status="scheduled", send_immediately=False, timezone="America/New_York",
        scheduled_at=dt.datetime(2030, 1, 15, 15, 0, tzinfo=dt.UTC),
    )  # fmt: skip
    type(campaign).objects.filter(pk=campaign.pk).update(created_at=CREATED)
    staff.post(reverse("web:account"), {"timezone": "Asia/Tokyo"})

    page = " ".join(unescape(staff.get(f"/campaigns/{campaign.pk}").content.decode()).split())

    assert "Wed 16 Jan 2030, 00:00 JST" in page
    assert "Tue 15 Jan, 10:00 EST on the campaign's clock (America/New_York)" in page
    assert "Wed 4 Mar 2026, 21:00 JST" in page  # created
