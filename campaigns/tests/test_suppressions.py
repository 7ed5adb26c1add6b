"""The do-not-call list's services: numbers read as files read them, one entry per account and number."""

import io
import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns import suppressions
from campaigns.errors import PayloadTooLarge, ValidationFailed
from campaigns.models import Suppression

from . import hostile_files
from .factories import CampaignFactory, SuppressionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return UserFactory(username="alice")


@pytest.fixture
def other_user():
    return UserFactory(username="mallory")


def upload(text: str | bytes, name: str = "numbers.csv") -> io.BytesIO:
    file = io.BytesIO(text.encode() if isinstance(text, str) else text)
    file.name = name
    file.size = len(file.getvalue())
    return file


# --- Adding one number --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed, default_country",
    [
        ("+14155552671", None),
        ("+1 (415) 555-2671", None),
        ("001 415 555 2671", None),
        ("'+14155552671", None),
        ("4155552671", "US"),
        ("(415) 555-2671", "us"),
    ],
)
def test_a_number_is_stored_in_e164_however_it_is_written(user, typed, default_country):
    suppression, created = suppressions.suppression_add(
        user=user, phone_number=typed, default_country=default_country, source="api"
    )

    assert created
    assert suppression.phone_number == "+14155552671"
    assert Suppression.objects.get().phone_number == "+14155552671"


@pytest.mark.parametrize(
    "typed, reason",
    [
        ("4155552671", "has no country code"),
        ("12345", "has no country code"),
        ("not a number", "is not a phone number"),
        ("1.41555E+10", "scientific notation"),
        ("+999 123 456", "unknown country code"),
        ("+1 415 555", "too short"),
        ("", "phone_number is required"),
        ("+1" + "5" * 100, "too long"),
    ],
)
def test_an_invalid_number_is_refused_naming_the_field_and_nothing_is_stored(user, typed, reason):
    with pytest.raises(ValidationFailed) as refused:
        suppressions.suppression_add(user=user, phone_number=typed, source="api")

    assert refused.value.field == "phone_number"
    assert "phone_number" in refused.value.error and reason in refused.value.error
    assert not Suppression.objects.exists()


def test_an_unknown_default_country_is_refused_naming_that_field(user):
    with pytest.raises(ValidationFailed) as refused:
        suppressions.suppression_add(user=user, phone_number="4155552671", default_country="XX", source="api")

    assert refused.value.field == "default_country"


def test_a_reason_longer_than_the_column_is_refused(user):
    with pytest.raises(ValidationFailed) as refused:
        suppressions.suppression_add(user=user, phone_number="+14155552671", reason="x" * 256, source="api")

    assert refused.value.field == "reason"


def test_adding_a_listed_number_again_returns_the_first_entry_unchanged(user):
    first, created = suppressions.suppression_add(
        user=user, phone_number="+14155552671", reason="asked on the phone", source="staff"
    )
    again, created_again = suppressions.suppression_add(
        user=user, phone_number="+1 415-555-2671", reason="another reason", source="api"
    )

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert (again.reason, again.source) == ("asked on the phone", "staff")
    assert Suppression.objects.count() == 1


def test_the_same_number_is_listed_separately_for_each_account(user, other_user):
    suppressions.suppression_add(user=user, phone_number="+14155552671", source="api")
    _, created = suppressions.suppression_add(user=other_user, phone_number="+14155552671", source="api")

    assert created
    assert Suppression.objects.count() == 2


def test_a_number_learned_on_a_call_keeps_its_campaign(user):
    campaign = CampaignFactory(user=user)

    suppression, _ = suppressions.suppression_add(
        user=user, phone_number="+14155552671", source="elevenlabs", campaign=campaign, reason="asked on the call"
    )

    assert Suppression.objects.get().campaign == campaign
    assert suppression.get_source_display() == "Asked on a call"


def test_another_accounts_campaign_cannot_be_named_as_the_source(user, other_user):
    with pytest.raises(ValueError):
        suppressions.suppression_add(
            user=user, phone_number="+14155552671", source="elevenlabs", campaign=CampaignFactory(user=other_user)
        )


# --- Removing -----------------------------------------------------------------------------------


def test_removing_takes_only_that_accounts_entry(user, other_user):
    SuppressionFactory(user=user, phone_number="+14155552671")
    SuppressionFactory(user=other_user, phone_number="+14155552671")

    assert suppressions.suppression_remove(user=user, phone_number="+1 415 555 2671") is True
    assert suppressions.suppression_remove(user=user, phone_number="+14155552671") is False

    assert list(Suppression.objects.values_list("user__username", flat=True)) == ["mallory"]


def test_removing_a_value_that_is_no_number_is_refused(user):
    with pytest.raises(ValidationFailed) as refused:
        suppressions.suppression_remove(user=user, phone_number="hello")
    assert refused.value.field == "phone_number"


# --- Which numbers are listed -------------------------------------------------------------------


def test_suppressed_numbers_are_those_of_the_account_only(user, other_user):
    SuppressionFactory(user=user, phone_number="+14155552671")
    SuppressionFactory(user=user, phone_number="+442079460958")
    SuppressionFactory(user=other_user, phone_number="+12125550100")

    found = suppressions.suppressed_numbers(
        user=user, numbers=["+14155552671", "+12125550100", "+13125550100", "+442079460958"]
    )

    assert found == {"+14155552671", "+442079460958"}
    assert suppressions.suppressed_numbers(user=user, numbers=[]) == set()


def test_suppressed_numbers_runs_one_query_per_chunk(user, monkeypatch):
    monkeypatch.setattr(suppressions, "LOOKUP_CHUNK", 1_000)
    SuppressionFactory(user=user, phone_number="+14155552671")
    numbers = (f"+1212555{index:04d}" for index in range(2_500))  # any iterable, read once

    with CaptureQueriesContext(connection) as queries:
        found = suppressions.suppressed_numbers(user=user, numbers=numbers)

    assert found == set()
    assert len(queries.captured_queries) == 3


def test_suppressed_numbers_answers_300000_numbers_in_one_indexed_query_per_chunk(user, other_user):
    """A create of the largest campaign waits on this lookup (its time: bench/create_campaign.py)."""
    listed = [f"+1415{index:07d}" for index in range(0, 200_000, 2)]  # 100,000 listed
    with connection.cursor() as cursor:  # bulk_create would take longer than the lookup itself
        cursor.executemany(
            f"INSERT INTO {Suppression._meta.db_table} (user_id, phone_number, reason, source, created_at) "
            "VALUES (%s, %s, '', 'api', CURRENT_TIMESTAMP)",
            [(owner.pk, number) for owner in (user, other_user) for number in listed],
        )
    numbers = [f"+1415{index:07d}" for index in range(300_000)]

    with CaptureQueriesContext(connection) as queries:
        found = suppressions.suppressed_numbers(user=user, numbers=numbers)

    assert found == set(listed)  # the other account's entries are not this one's
    assert len(queries.captured_queries) == math.ceil(len(numbers) / suppressions.LOOKUP_CHUNK)


# --- The list and its search --------------------------------------------------------------------


def test_the_list_is_the_accounts_own_newest_first(user, other_user):
    older = SuppressionFactory(user=user, phone_number="+14155552671")
    newer = SuppressionFactory(user=user, phone_number="+12125550100")
    SuppressionFactory(user=other_user, phone_number="+13125550100")

    assert list(suppressions.suppressions_list(user=user)) == [newer, older]


@pytest.mark.parametrize(
    "search, expected",
    [
        ("415", ["+14155552671"]),
        ("(415) 555-26", ["+14155552671"]),
        ("+44 20", ["+442079460958"]),
        ("asked", ["+442079460958", "+14155552671"]),
        ("CALL asked", ["+14155552671"]),
        ("lawyer", []),
        ("  ", ["+442079460958", "+14155552671"]),
    ],
)
def test_search_finds_digits_in_the_number_or_words_in_the_reason(user, other_user, search, expected):
    SuppressionFactory(user=user, phone_number="+14155552671", reason="Asked on the call")
    SuppressionFactory(user=user, phone_number="+442079460958", reason="asked by email")
    SuppressionFactory(user=other_user, phone_number="+14155550123", reason="asked on the call")

    found = suppressions.suppressions_list(user=user, search=search)

    assert [suppression.phone_number for suppression in found] == expected


# --- Importing a file ---------------------------------------------------------------------------


def test_a_file_adds_its_valid_numbers_and_reports_the_others(user):
    SuppressionFactory(user=user, phone_number="+12125550100")
    text = (
        "phone_number,name\n"
        "+14155552671,Ada\n"
        "+1 212 555 0100,Already\n"
        "12345,Short\n"
        "+442079460958,Bo\n"
        "+14155552671,Ada again\n"
        "1.41555E+10,Sci\n"
    )

    result = suppressions.suppressions_import(user=user, file=upload(text), source="api", reason="CRM opt-outs")

    assert (result.added, result.already_listed, result.duplicates_merged, result.invalid_rows) == (2, 1, 1, 2)
    assert result.errors[0].startswith("Line 4: '12345' has no country code")
    assert result.errors[1].startswith("Line 7: '1.41555E+10' was converted to scientific notation")
    assert set(Suppression.objects.filter(reason="CRM opt-outs").values_list("phone_number", flat=True)) == {
        "+14155552671",
        "+442079460958",
    }
    assert suppressions.import_summary(result) == (
        "2 numbers added, 1 already on the list, 1 repeated row merged, 2 rows invalid"
    )


def test_a_number_listed_meanwhile_by_another_request_is_not_counted_as_added(user, monkeypatch):
    SuppressionFactory(user=user, phone_number="+12125550100", reason="listed meanwhile")
    # As if the other request listed it between this import's lookup and its insert
    monkeypatch.setattr(suppressions, "suppressed_numbers", lambda **kwargs: set())

    result = suppressions.suppressions_import(
        user=user, file=upload("phone_number\n+14155552671\n+12125550100\n"), source="api"
    )

    assert (result.added, result.already_listed) == (1, 1)
    assert Suppression.objects.get(phone_number="+12125550100").reason == "listed meanwhile"


def test_imported_entries_read_back_like_any_other(user):
    SuppressionFactory(user=user, phone_number="+12125550100")
    suppressions.suppressions_import(user=user, file=upload("+14155552671\n"), source="api")

    newest = suppressions.suppressions_list(user=user).first()

    assert newest.phone_number == "+14155552671"
    assert newest.created_at.tzinfo is not None
    assert Suppression.objects.filter(created_at__lte=timezone.now()).count() == 2


def test_a_file_of_one_number_per_line_with_a_default_country(user):
    result = suppressions.suppressions_import(
        user=user, file=upload("(415) 555-2671\n212 555 0100\n"), default_country="US", source="staff"
    )

    assert result.added == 2
    assert set(Suppression.objects.values_list("phone_number", "source")) == {
        ("+14155552671", "staff"),
        ("+12125550100", "staff"),
    }


def test_an_xlsx_file_is_read_too(user):
    # A number cell, as Excel stores a number typed without +
    workbook = hostile_files.workbook(hostile_files.sheet_xml([["phone_number"], ["+442079460958"], [4155550123]]))

    result = suppressions.suppressions_import(
        user=user, file=upload(workbook, "numbers.xlsx"), default_country="US", source="api"
    )

    assert result.added == 2
    assert set(Suppression.objects.values_list("phone_number", flat=True)) == {"+442079460958", "+14155550123"}


def test_a_file_without_a_valid_number_is_refused_and_names_each_row(user):
    with pytest.raises(ValidationFailed) as refused:
        suppressions.suppressions_import(user=user, file=upload("phone_number\n12345\nhello\n"), source="api")

    assert refused.value.field == "file"
    assert "no valid phone numbers (2 invalid rows)" in refused.value.error
    assert refused.value.errors[1] == "Line 3: 'hello' is not a phone number"
    assert not Suppression.objects.exists()


def test_more_than_100_invalid_rows_are_counted_past_those_listed(user):
    text = "phone_number\n+14155552671\n" + "12345\n" * 150

    result = suppressions.suppressions_import(user=user, file=upload(text), source="api")

    assert result.invalid_rows == 150
    assert len(result.errors) == 101 and result.errors[-1] == "… and 50 more invalid rows."
    assert suppressions.import_summary(result, errors_shown=2) == (
        "1 number added, 150 rows invalid: Line 3: '12345' has no country code: write it as +<country code>"
        "<number>, or give a default country (default_country); Line 4: '12345' has no country code: write it "
        "as +<country code><number>, or give a default country (default_country); … and 148 more"
    )


def test_a_file_past_the_row_limit_is_too_large_and_nothing_is_stored(user, settings):
    settings.RECIPIENTS_MAX_ROWS = 5
    text = "phone_number\n" + "".join(f"+1415555{index:04d}\n" for index in range(10))

    with pytest.raises(PayloadTooLarge, match="more than 5 lines"):
        suppressions.suppressions_import(user=user, file=upload(text), source="api")
    assert not Suppression.objects.exists()


def test_a_file_above_the_size_limit_is_refused_before_it_is_read(user, settings):
    settings.RECIPIENTS_MAX_FILE_BYTES = 10

    with pytest.raises(PayloadTooLarge, match="the limit is"):
        suppressions.suppressions_import(user=user, file=upload("phone_number\n+14155552671\n"), source="api")


# Files refused as a whole. The last of HOSTILE is refused for its invalid rows, which an import
# skips and lists instead: its valid numbers are imported (below).
REFUSED_WHOLE = [case for case in hostile_files.HOSTILE if "invalid rows" not in case.message]


@pytest.mark.parametrize("case", REFUSED_WHOLE, ids=lambda case: case.name)
def test_a_hostile_file_gets_the_answer_a_recipients_file_gets(user, case, built):
    with pytest.raises((PayloadTooLarge, ValidationFailed)) as refused:
        suppressions.suppressions_import(user=user, file=upload(built(case), case.filename), source="api")

    assert refused.value.status_code == case.status
    assert case.message in " ".join([refused.value.error, *refused.value.errors])
    assert not Suppression.objects.exists()


def test_excel_artefacts_are_read_as_in_recipients_files(user):
    (case,) = [case for case in hostile_files.HOSTILE if case not in REFUSED_WHOLE]

    result = suppressions.suppressions_import(user=user, file=upload(case.build(), case.filename), source="api")

    assert (result.added, result.invalid_rows) == (2, 3)
    assert set(Suppression.objects.values_list("phone_number", flat=True)) == {"+14155552671", "+14155552672"}
