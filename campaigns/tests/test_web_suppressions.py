"""The do-not-call list page (/suppressions) and its admin, as a staff user sees them."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns.models import Suppression

from . import hostile_files
from .factories import CampaignFactory, SuppressionFactory, UserFactory
from .test_web_pages import errors_of, messages_of, text_of

pytestmark = pytest.mark.django_db

URL = "/suppressions"


def upload(data: str | bytes, name: str = "numbers.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data.encode() if isinstance(data, str) else data, content_type="text/csv")


def add(client, **fields):
    data = {"add-phone_number": "", "add-reason": "", "add-default_country": ""}
    data.update({f"add-{name}": value for name, value in fields.items()})
    return client.post(f"{URL}/add", data, follow=True)


def import_file(client, file, **fields):
    data = {"import-file": file, "import-reason": "", "import-default_country": ""}
    data.update({f"import-{name}": value for name, value in fields.items()})
    return client.post(f"{URL}/import", data, follow=True)


# --- Seeing the list ----------------------------------------------------------------------------


def test_the_page_is_in_the_navigation_and_labels_every_field(staff):
    response = staff.get(URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert '<a href="/suppressions" aria-current="page">Do-not-call list</a>' in page
    for field in ("add-phone_number", "add-reason", "add-default_country", "import-file", "import-reason"):
        assert f'for="id_{field}"' in page and f'id="id_{field}"' in page
    assert 'enctype="multipart/form-data"' in page
    assert "The list is empty. Add a number or import a file above." in text_of(response)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page


def test_the_list_shows_number_reason_where_it_came_from_and_when(staff, user):
    campaign = CampaignFactory(user=user, name="Spring reminders")
    SuppressionFactory(user=user, phone_number="+14155552671", reason="Asked on the call", source="elevenlabs",
                       campaign=campaign)  # fmt: skip
    SuppressionFactory(user=user, phone_number="+442079460958", reason="", source="staff")

    response = staff.get(URL)

    text = text_of(response)
    assert "+44 20 7946 0958 +442079460958 — Staff page" in text
    assert "+1 415-555-2671 +14155552671 Asked on the call Asked on a call in Spring reminders" in text
    assert f'href="/campaigns/{campaign.pk}">Spring reminders</a>' in response.content.decode()


def test_another_accounts_numbers_are_never_shown(staff, other_user):
    SuppressionFactory(user=other_user, phone_number="+14155552671", reason="Mallory's secret")

    text = text_of(staff.get(URL))
    searched = text_of(staff.get(URL, {"q": "4155552671"}))

    assert "Mallory" not in text and "415" not in text
    assert "No number or reason matches this search" in searched and "415-555" not in searched


def test_the_search_finds_digits_or_words(staff, user):
    SuppressionFactory(user=user, phone_number="+14155552671", reason="asked by email")
    SuppressionFactory(user=user, phone_number="+442079460958", reason="complaint")

    by_digits = text_of(staff.get(URL, {"q": "(415) 555"}))
    by_words = text_of(staff.get(URL, {"q": "complaint"}))

    assert "+1 415-555-2671" in by_digits and "+44 20" not in by_digits
    assert "+44 20 7946 0958" in by_words and "415-555" not in by_words


def test_the_list_is_paginated_in_as_many_queries_for_120_entries_as_for_2(staff, user):
    Suppression.objects.bulk_create(
        Suppression(user=user, phone_number=f"+1212555{index:04d}", source="api") for index in range(2)
    )
    staff.get(URL)
    with CaptureQueriesContext(connection) as few:
        staff.get(URL)
    Suppression.objects.bulk_create(
        Suppression(user=user, phone_number=f"+1415555{index:04d}", source="api") for index in range(118)
    )
    with CaptureQueriesContext(connection) as many:
        response = staff.get(URL, {"page": "2"})

    assert len(many.captured_queries) == len(few.captured_queries)
    assert "Page 2 of 3" in text_of(response)
    assert response.content.decode().count('<input type="hidden" name="phone_number"') == 50


def test_a_non_staff_user_gets_the_not_staff_page(client):
    client.force_login(UserFactory(username="visitor", is_staff=False))

    assert client.get(URL).status_code == 403
    assert client.post(f"{URL}/add", {"add-phone_number": "+14155552671"}).status_code == 403
    assert not Suppression.objects.exists()


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- Adding one number --------------------------------------------------------------------------


def test_adding_a_number_says_so_and_lists_it(staff, user):
    response = add(staff, phone_number="(415) 555-2671", reason="Asked by email", default_country="US")

    assert messages_of(response) == ["+1 415-555-2671 added: no campaign you create from now on will call it."]
    suppression = Suppression.objects.get()
    assert (suppression.user, suppression.phone_number, suppression.reason, suppression.source) == (
        user,
        "+14155552671",
        "Asked by email",
        "staff",
    )
    assert "+1 415-555-2671 +14155552671 Asked by email Staff page" in text_of(response)


def test_adding_a_listed_number_again_says_since_when(staff, user):
    SuppressionFactory(user=user, phone_number="+14155552671", reason="first")

    response = add(staff, phone_number="+1 415 555 2671", reason="second")

    [message] = messages_of(response)
    assert message.startswith("+1 415-555-2671 was already on the list (since ")
    assert list(Suppression.objects.values_list("reason", flat=True)) == ["first"]


@pytest.mark.parametrize(
    "fields, field, fragment",
    [
        ({"phone_number": "4155552671"}, "add-phone_number", "has no country code"),
        ({"phone_number": "hello"}, "add-phone_number", "'hello' is not a phone number"),
        ({"phone_number": ""}, "add-phone_number", "This field is required."),
        ({"phone_number": "4155552671", "default_country": "XX"}, "add-default_country", "“XX” is not a country code"),
    ],
)
def test_an_invalid_number_is_shown_under_its_field_and_nothing_is_stored(staff, fields, field, fragment):
    response = add(staff, **fields)

    assert response.status_code == 200
    assert fragment in errors_of(response, field)
    assert "thing needs your attention" in text_of(response) or "things need your attention" in text_of(response)
    assert not Suppression.objects.exists()


# --- Importing a file ---------------------------------------------------------------------------


def test_importing_a_file_says_what_was_added_and_which_rows_were_invalid(staff, user):
    SuppressionFactory(user=user, phone_number="+12125550100")
    text = "phone_number\n+14155552671\n+12125550100\n12345\n+442079460958\nhello\n"

    response = import_file(staff, upload(text), reason="CRM opt-outs")

    assert messages_of(response) == [
        "2 numbers added, 1 already on the list, 2 rows invalid: Line 4: '12345' has no country code: write it "
        "as +<country code><number>, or type the country in Default country; Line 6: 'hello' is not a "
        "phone number."
    ]
    assert "message--warning" in response.content.decode()
    assert set(Suppression.objects.filter(reason="CRM opt-outs").values_list("phone_number", flat=True)) == {
        "+14155552671",
        "+442079460958",
    }


def test_importing_a_clean_xlsx_file_is_a_success(staff):
    workbook = hostile_files.workbook(hostile_files.sheet_xml([["Phone"], ["+14155552671"], ["+442079460958"]]))

    response = import_file(staff, upload(workbook, "numbers.xlsx"))

    assert messages_of(response) == ["2 numbers added."]
    assert "message--success" in response.content.decode()


def test_a_file_that_cannot_be_used_is_explained_under_the_file_field(staff):
    response = import_file(staff, upload("name\nAda\n"))

    assert response.status_code == 200
    assert "The file has no phone_number column" in errors_of(response, "import-file")
    assert not Suppression.objects.exists()


def test_a_hostile_file_is_refused_under_the_file_field(staff, built):
    case = next(case for case in hostile_files.HOSTILE if case.status == 413 and case.filename.endswith(".xlsx"))

    response = import_file(staff, upload(built(case), case.filename))

    assert response.status_code == 200
    assert case.message in errors_of(response, "import-file")
    assert not Suppression.objects.exists()


def test_importing_without_a_file_asks_for_one(staff):
    response = staff.post(f"{URL}/import", {"import-reason": ""})

    assert errors_of(response, "import-file") == (
        "Choose a file of numbers: CSV, Excel (.xlsx) or text with one number per line."
    )


# --- Removing -----------------------------------------------------------------------------------


def test_removing_asks_first_then_says_what_happened(staff, user):
    SuppressionFactory(user=user, phone_number="+14155552671")

    page = staff.get(URL).content.decode()
    response = staff.post(f"{URL}/remove", {"phone_number": "+14155552671"}, follow=True)

    assert 'data-confirm="Remove +1 415-555-2671 from the do-not-call list?' in page
    assert re.search(r'<script src="/static/js/confirm\.[0-9a-f.]*js" defer>', page)
    assert messages_of(response) == ["+1 415-555-2671 removed: campaigns you create from now on may call it again."]
    assert not Suppression.objects.exists()


def test_removing_twice_says_it_was_not_on_the_list(staff, user):
    SuppressionFactory(user=user, phone_number="+14155552671")
    staff.post(f"{URL}/remove", {"phone_number": "+14155552671"}, follow=True)

    response = staff.post(f"{URL}/remove", {"phone_number": "+14155552671"}, follow=True)

    assert messages_of(response) == ["+1 415-555-2671 was not on the list."]


def test_another_accounts_number_is_never_removed(staff, other_user):
    SuppressionFactory(user=other_user, phone_number="+14155552671")

    response = staff.post(f"{URL}/remove", {"phone_number": "+14155552671"}, follow=True)

    assert messages_of(response) == ["+1 415-555-2671 was not on the list."]
    assert Suppression.objects.filter(user=other_user).count() == 1


def test_removing_is_a_post_only(staff, user):
    SuppressionFactory(user=user, phone_number="+14155552671")

    assert staff.get(f"{URL}/remove", {"phone_number": "+14155552671"}).status_code == 405
    assert Suppression.objects.count() == 1


# --- Admin --------------------------------------------------------------------------------------


@pytest.fixture
def staff_admin(user):
    """Alice: staff with every permission on the campaigns models, not a superuser."""
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="campaigns"))
    client = Client()
    client.force_login(user)
    return client


def test_the_admin_shows_a_staff_user_only_their_own_accounts_entries(staff_admin, user, other_user):
    mine = SuppressionFactory(user=user, phone_number="+14155552671", reason="mine")
    theirs = SuppressionFactory(user=other_user, phone_number="+12125550100", reason="theirs")
    changelist = reverse("admin:campaigns_suppression_changelist")

    listing = staff_admin.get(changelist).content.decode()
    searched = staff_admin.get(changelist, {"q": "2125550100"}).content.decode()

    assert "+14155552671" in listing and "+12125550100" not in listing and "mallory" not in listing
    assert 'name="_selected_action"' not in searched
    assert staff_admin.get(reverse("admin:campaigns_suppression_change", args=[theirs.pk])).status_code == 404
    assert (
        staff_admin.post(reverse("admin:campaigns_suppression_delete", args=[theirs.pk]), {"post": "yes"}).status_code
        == 404
    )
    assert staff_admin.get(reverse("admin:campaigns_suppression_change", args=[mine.pk])).status_code == 200
    assert Suppression.objects.filter(pk=theirs.pk).exists()


def test_the_admin_lists_every_account_for_a_superuser_and_filters_by_source(client, user, other_user):
    client.force_login(UserFactory(username="root", is_superuser=True))
    SuppressionFactory(user=user, phone_number="+14155552671", source="staff")
    SuppressionFactory(user=other_user, phone_number="+12125550100", source="elevenlabs")
    changelist = reverse("admin:campaigns_suppression_changelist")

    everything = client.get(changelist).content.decode()
    learned = client.get(changelist, {"source__exact": "elevenlabs"}).content.decode()

    assert "+14155552671" in everything and "+12125550100" in everything
    assert "+12125550100" in learned and "+14155552671" not in learned


def test_adding_in_the_admin_stores_the_number_in_e164_as_admin(staff_admin, user):
    response = staff_admin.post(
        reverse("admin:campaigns_suppression_add"),
        {"user": user.pk, "phone_number": "+1 (415) 555-2671", "reason": "by phone"},
    )

    assert response.status_code == 302
    suppression = Suppression.objects.get()
    assert (suppression.phone_number, suppression.source, suppression.user) == ("+14155552671", "admin", user)


def test_the_admin_refuses_a_number_that_is_not_one_or_already_listed(staff_admin, user):
    SuppressionFactory(user=user, phone_number="+14155552671")
    url = reverse("admin:campaigns_suppression_add")

    invalid = staff_admin.post(url, {"user": user.pk, "phone_number": "hello", "reason": ""})
    listed = staff_admin.post(url, {"user": user.pk, "phone_number": "+1 415 555 2671", "reason": ""})

    assert "is not a phone number" in invalid.content.decode()
    assert re.search(r"already exists", listed.content.decode())
    assert Suppression.objects.count() == 1


def test_the_admin_never_adds_to_another_account(staff_admin, user, other_user):
    response = staff_admin.post(
        reverse("admin:campaigns_suppression_add"),
        {"user": other_user.pk, "phone_number": "+14155552671", "reason": ""},
    )

    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Suppression.objects.exists()
