"""The live campaign page: what progress.json sends for the page to refresh in place, the outcomes
in words (pipeline apart from finished calls), and the answer and success rates of the list."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns import selectors
from campaigns.models import Campaign, CampaignBatch
from campaigns.web import live

from .factories import CampaignFactory, RecipientFactory
from .test_web_pages import campaign_with_recipients, text_of

pytestmark = pytest.mark.django_db


def progress_of(client, campaign, query: str = "") -> dict:
    response = client.get(f"/campaigns/{campaign.pk}/progress.json{query}")
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def completed(user):
    """A batch campaign that has just ended: one answered, one voicemail, one busy."""
    campaign = CampaignFactory(
        user=user, name="Spring reminders", status=Campaign.Status.COMPLETED, recipients_count=3,
        calls_dispatched=3, calls_finished=3, timezone="Europe/Berlin",
    )  # fmt: skip
    RecipientFactory(
        campaign=campaign, line=2, phone_number="+12125550100", status="completed", call_result="answered",
        call_successful="success", conversation_id="conv_01jxanswered0000000000f3d1", summary="Confirmed.",
    )  # fmt: skip
    RecipientFactory(
        campaign=campaign, line=3, phone_number="+12125550108", status="voicemail", call_result="voicemail",
        call_successful="failure", conversation_id="conv_voicemail",
    )  # fmt: skip
    RecipientFactory(
        campaign=campaign, line=4, phone_number="+12125550106", status="failed", failure_reason="busy",
        call_result="busy", conversation_id="conv_busy",
    )  # fmt: skip
    CampaignBatch.objects.create(
        campaign=campaign, part=1, offset=0, size=3, token="tok-live", elevenlabs_batch_call_id="btcal_live",
        status="completed",
    )  # fmt: skip
    return campaign


# --- progress.json ----------------------------------------------------------------------------


def test_progress_json_sends_the_outcomes_rates_batches_buttons_and_the_rows_of_the_page(staff, completed):
    progress = progress_of(staff, completed)

    assert progress["status"] == "completed" and progress["final"] is False  # its batch is not settled yet
    assert progress["batch_ids"] == ["btcal_live"]
    assert progress["actions"] == ["retry"]  # ended, with a voicemail and a busy call to call again
    assert f'action="/campaigns/{completed.pk}/retry"' in progress["actions_html"]
    assert 'name="csrfmiddlewaretoken"' in progress["actions_html"]
    assert {row["key"]: row["count"] for row in progress["outcomes"]["finished"]} == {
        "answered_successful": 1, "answered_unsuccessful": 0, "answered": 0, "voicemail": 1, "busy": 1,
        "no_answer": 0, "failed": 0, "cancelled": 0,
    }  # fmt: skip
    assert [row["pct"] for row in progress["outcomes"]["finished"][:5]] == [33, 0, 0, 33, 33]
    assert (progress["outcomes"]["pipeline_total"], progress["outcomes"]["finished_total"]) == (0, 3)
    assert progress["rates"] == {
        "answer": "33%", "success": "100%", "answered": 1, "placed_finished": 3, "successful": 1,
    }  # fmt: skip
    rows = progress["recipients"]["rows"]
    assert progress["recipients"]["page"] == 1
    assert [(row["line"], row["outcome"], row["outcome_label"]) for row in rows] == [
        (2, "answered_successful", "Answered, successful"),
        (3, "voicemail", "Voicemail"),
        (4, "busy", "Busy"),
    ]
    first = rows[0]
    assert first["url"] == f"/campaigns/{completed.pk}/recipients/{first['id']}"
    assert first["conversation_id"] == "conv_01jxanswered0000000000f3d1"
    assert first["conversation_short"] == "conv_01jx…f3d1"
    assert (first["summary"], first["attempts"], first["disposition"]) == ("Confirmed.", 1, "")


def test_progress_json_sends_the_same_page_filter_and_search_as_the_page(staff, user):
    campaign = campaign_with_recipients(user, 120)

    second = progress_of(staff, campaign, "?page=2")["recipients"]
    failed = progress_of(staff, campaign, "?status=failed&page=2")["recipients"]
    searched = progress_of(staff, campaign, "?q=555-0042")["recipients"]

    assert second["page"] == 2 and [row["line"] for row in second["rows"]] == list(range(52, 102))
    assert failed["page"] == 1 or all(row["status"] == "failed" for row in failed["rows"])
    assert {row["status"] for row in failed["rows"]} == {"failed"}
    assert [row["phone_number"] for row in searched["rows"]] == ["+12125550042"]


def test_a_row_refreshed_by_progress_json_reads_as_the_page_renders_it(staff, completed):
    page = staff.get(f"/campaigns/{completed.pk}").content.decode()
    rows = progress_of(staff, completed)["recipients"]["rows"]

    for row in rows:
        rendered = re.search(rf'<tr data-recipient="{row["id"]}">(.*?)</tr>', page, re.S).group(1)
        assert f'<a href="{row["url"]}"' in rendered
        assert f'badge--outcome-{row["outcome"]}">{row["outcome_label"]}<' in rendered
        assert f'title="{row["conversation_id"]}">{row["conversation_short"]}</code>' in rendered


def test_progress_json_takes_as_many_queries_for_300_recipients_as_for_5(staff, user, django_assert_num_queries):
    small, large = campaign_with_recipients(user, 5), campaign_with_recipients(user, 300)
    staff.get(f"/campaigns/{small.pk}/progress.json")  # the session and the user, as on every request

    # The session and user, the campaign and its outbound parts, the counts, its batch ids, and the
    # page of recipients: whatever the campaign's size or the page asked.
    for campaign, query in [(small, ""), (large, ""), (large, "?page=3"), (large, "?status=failed&page=2")]:
        with django_assert_num_queries(7):
            staff.get(f"/campaigns/{campaign.pk}/progress.json{query}")
    with django_assert_num_queries(8):  # a search needs its own count of what it found
        staff.get(f"/campaigns/{large.pk}/progress.json?q=5550")
    # Once ended, whether every call's outcome is in: one more, until the page stops asking.
    Campaign.objects.filter(pk__in=[small.pk, large.pk]).update(status=Campaign.Status.COMPLETED)
    for campaign in (small, large):
        with django_assert_num_queries(8):
            staff.get(f"/campaigns/{campaign.pk}/progress.json?page=2")


def test_the_rows_sent_are_the_visible_page_only(staff, user):
    campaign = campaign_with_recipients(user, 300)

    with CaptureQueriesContext(connection) as context:
        progress = progress_of(staff, campaign, "?page=2")

    assert len(progress["recipients"]["rows"]) == 50
    recipient_reads = [q["sql"] for q in context.captured_queries if '"campaigns_recipient"."line"' in q["sql"]]
    assert len(recipient_reads) == 1 and "LIMIT 50" in recipient_reads[0].upper()
    assert '"campaigns_recipient"."variables"' not in recipient_reads[0]  # the file's columns stay behind


def test_progress_json_brings_the_failure_and_paused_notices_as_they_change(staff, user):
    campaign = CampaignFactory(user=user, status=Campaign.Status.IN_PROGRESS)
    running = progress_of(staff, campaign)
    assert "message" not in running["notices_html"]

    # ElevenLabs refused it: the notice names the reason, escaped, and its key changes.
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.FAILED, error="ElevenLabs refused the batch: <agent> not found."
    )
    failed = progress_of(staff, campaign)
    assert failed["notices_key"] != running["notices_key"]
    assert "The campaign failed:" in failed["notices_html"]
    assert "&lt;agent&gt; not found." in failed["notices_html"] and "<agent>" not in failed["notices_html"]


def test_the_paused_note_is_sent_while_the_campaign_is_paused(staff, user):
    campaign = CampaignFactory(
        user=user, status=Campaign.Status.PAUSED, paused_at=dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC)
    )

    paused = progress_of(staff, campaign)

    assert "data-paused-note" in paused["notices_html"]
    assert "nobody is called until you resume the campaign" in paused["notices_html"]
    page = staff.get(f"/campaigns/{campaign.pk}").content.decode()
    assert f'data-shown="{paused["notices_key"]}"' in page  # the page starts from what it shows


def test_another_users_campaign_progress_is_not_found(staff, other_user):
    theirs = CampaignFactory(user=other_user)
    RecipientFactory(campaign=theirs)

    response = staff.get(f"/campaigns/{theirs.pk}/progress.json")

    assert response.status_code == 404
    assert b"recipients" not in response.content


def test_the_buttons_follow_the_campaign(staff, user, completed):
    running = CampaignFactory(user=user, status=Campaign.Status.IN_PROGRESS)
    paused = CampaignFactory(user=user, status=Campaign.Status.PAUSED)
    cancelled = CampaignFactory(user=user, status=Campaign.Status.CANCELLED)

    assert progress_of(staff, running)["actions"] == ["pause", "cancel"]
    assert progress_of(staff, paused)["actions"] == ["resume", "cancel"]
    assert progress_of(staff, cancelled)["actions"] == []
    assert progress_of(staff, cancelled)["actions_html"].strip() == ""


def test_the_campaign_page_shows_the_pipeline_apart_from_the_finished_calls(staff, completed):
    RecipientFactory(campaign=completed, line=5, status="pending", attempt=2, conversation_id="conv_retry")
    RecipientFactory(campaign=completed, line=6, status="dispatched")

    text = text_of(staff.get(f"/campaigns/{completed.pk}"))

    assert (
        "In the pipeline 2 Not called yet 0 Queued 1 Waiting for a retry 1 Ringing 0 On the call 0 "
        "Finished 3 Answered, successful 1 Answered, not successful 0 Answered, not evaluated 0 Voicemail 1 "
        "Busy 1 No answer 0 Failed 0 Cancelled 0"
    ) in text
    assert "Answer rate 33% Success rate 100%" in text
    assert "3 +12125550108 Voicemail — 1" in text  # a voicemail is a voicemail, not "Successful: Failure"
    assert "Successful" not in text.replace("Answered, successful", "")


def test_no_rate_is_shown_before_anything_finished(staff, user):
    campaign = CampaignFactory(user=user, status=Campaign.Status.PENDING)
    RecipientFactory(campaign=campaign)

    assert progress_of(staff, campaign)["rates"]["answer"] == "—"
    assert "Answer rate — Success rate —" in text_of(staff.get(f"/campaigns/{campaign.pk}"))


# --- Counts and rates ------------------------------------------------------------------------


def test_the_counts_split_by_status_by_outcome_and_by_zone_in_one_query(user, django_assert_num_queries):
    campaign = CampaignFactory(user=user)
    RecipientFactory(campaign=campaign, status="completed", call_successful="success", timezone="Europe/Paris")
    RecipientFactory(campaign=campaign, status="failed", failure_reason="no-answer", timezone="Europe/Paris")
    RecipientFactory(campaign=campaign, status="pending", timezone="America/New_York")

    with django_assert_num_queries(1):
        counts = selectors.campaign_recipient_counts(campaign=campaign)

    assert counts.by_status["completed"] == counts.by_status["failed"] == counts.by_status["pending"] == 1
    assert sum(counts.by_status.values()) == sum(counts.by_outcome.values()) == 3
    assert (counts.by_outcome["answered_successful"], counts.by_outcome["no_answer"]) == (1, 1)
    assert counts.zones == [
        {"zone": "Europe/Paris", "recipients": 2, "finished": 2},
        {"zone": "America/New_York", "recipients": 1, "finished": 0},
    ]


def test_rates_are_percentages_or_a_dash():
    assert live.rate_text(2, 3) == "67%" and live.rate_text(0, 4) == "0%" and live.rate_text(0, 0) == "—"


# --- The campaigns list -------------------------------------------------------------------------


def list_rows(response) -> dict[str, str]:
    """Each campaign's row of the list, as a person reads it, by campaign name."""
    html = response.content.decode()
    rows = re.findall(r"<tr>(.*?)</tr>", html.split("<tbody>")[1].split("</tbody>")[0], re.S)
    texts = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]
    return {text.split(" ")[0]: text for text in texts}


def test_the_list_shows_each_campaigns_answer_and_success_rates(staff, user, completed):
    Campaign.objects.filter(pk=completed.pk).update(name="Spring")
    fresh = CampaignFactory(user=user, name="Fresh", status=Campaign.Status.PENDING, recipients_count=2)
    RecipientFactory.create_batch(2, campaign=fresh)
    halves = CampaignFactory(user=user, name="Halves", status=Campaign.Status.COMPLETED)
    for verdict in ("success", "failure", "success", "failure"):
        RecipientFactory(campaign=halves, status="completed", call_successful=verdict)
    RecipientFactory(campaign=halves, status="cancelled")  # never placed: counts in neither rate

    rows = list_rows(staff.get("/"))

    # after the progress: the answer rate, then the success rate
    assert "3 of 3 finished 33% 100%" in rows["Spring"]
    assert "finished 100% 50%" in rows["Halves"]
    assert "0 of 2 finished — —" in rows["Fresh"]


def test_the_list_counts_rates_in_the_same_query_whatever_the_campaigns_size(client, user, other_user):
    campaign_with_recipients(user, 3)
    campaign_with_recipients(other_user, 300)
    for _ in range(30):
        CampaignFactory(user=other_user)

    def queries(who) -> list[str]:
        client.force_login(who)
        client.get("/")
        with CaptureQueriesContext(connection) as context:
            assert client.get("/").status_code == 200
        return [query["sql"] for query in context.captured_queries]

    mine, theirs = queries(user), queries(other_user)

    assert len(mine) == len(theirs)
    [page] = [sql for sql in theirs if "placed_finished" in sql]
    assert page.upper().count("COUNT(") == 3 and "LIMIT 25" in page.upper()


def test_an_ended_campaign_waits_a_while_for_the_evaluation_of_its_answered_calls(staff, user):
    # ElevenLabs reported the batch finished; the post-call webhook with the evaluation is still to come.
    campaign = CampaignFactory(user=user, status=Campaign.Status.COMPLETED, recipients_count=1, calls_finished=1)
    answered = RecipientFactory(campaign=campaign, status="completed", call_result="answered", conversation_id="c1")
    batch = CampaignBatch.objects.create(
        campaign=campaign, part=1, offset=0, size=1, token="tok-late", elevenlabs_batch_call_id="btcal_late",
        status="completed", settled_at=timezone.now(),
    )  # fmt: skip
    assert progress_of(staff, campaign)["final"] is False  # the page keeps following it

    answered.call_successful = "success"
    answered.save()
    assert progress_of(staff, campaign)["final"] is True

    # An evaluation that never comes (no webhook configured) holds the page only for a while.
    answered.call_successful = ""
    answered.save()
    batch.settled_at = timezone.now() - dt.timedelta(seconds=selectors.EVALUATIONS_AWAITED_SECONDS + 1)
    batch.save()
    assert progress_of(staff, campaign)["final"] is True
