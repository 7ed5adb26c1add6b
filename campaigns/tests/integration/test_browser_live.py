"""The campaign page follows a campaign live in Chromium, and a call's page plays its recording.

Real gunicorn, worker, beat, Redis, PostgreSQL and the sandbox (browser_page from
test_browser.py). A campaign is scheduled a few seconds ahead, so the page is open before
anything is sent: its rows, batch, buttons and counters must then change in place, without a
reload, until every call has finished and Retry is offered. Screenshots at 1280 and 390 px wide.
"""

import datetime as dt
import re

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, PhoneNumber

from .test_browser import browser_page, shot, sign_in  # noqa: F401 - browser_page is a fixture

PHONE_WIDTH = 390
# By the last digit the sandbox decides: 0 answered and successful, 9 answered and not, 8 voicemail, 6 busy.
RECIPIENTS = "phone_number,first_name\n+12125550100,Ana\n+12125550109,Ben\n+12125550108,Chloe\n+12125550106,Dev\n"


def fits_a_phone(page) -> int:
    """The page at a phone's width, with nothing wider than the screen; its width is returned."""
    page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH, f"{page.url} is {width} px wide on a {PHONE_WIDTH} px screen"
    return width


def desktop(page):
    page.set_viewport_size({"width": 1280, "height": 860})


def scheduled(user, name: str, ahead: dt.timedelta) -> Campaign:
    """A campaign of RECIPIENTS from the demo number, due `ahead` from now."""
    line = PhoneNumber.objects.get(user=user, phone_number="+14155550100")
    due = timezone.now().astimezone(dt.UTC) + ahead
    return services.campaign_create(
        user=user, name=name, agent_id="agent_demo_reminders", phone_number_id=line.pk,
        recipients_file=SimpleUploadedFile("live.csv", RECIPIENTS.encode(), content_type="text/csv"),
        send_immediately=False, schedule_date=due.date(), schedule_time=due.time().replace(microsecond=0),
        timezone_name="UTC",
    )  # fmt: skip


def test_the_campaign_page_follows_calls_to_their_outcome_and_a_call_plays_its_recording(
    browser_page,  # noqa: F811 - the fixture imported above
    stack,
):
    page = browser_page
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    user = sign_in(page, stack)
    campaign = scheduled(user, "Live follow-up", dt.timedelta(seconds=8))

    # Opened before anything is sent: nobody called yet, no batch, Pause and Cancel offered.
    page.goto(f"{stack.url}/campaigns/{campaign.pk}")
    page.evaluate("window.__sameDocument = true")
    assert page.locator("[data-batch-ids]").inner_text().strip() == "Not submitted yet"
    assert page.locator("tbody tr").filter(has_text="Not called yet").count() == 4
    assert page.get_by_role("button", name="Pause").is_visible()
    assert page.get_by_role("button", name="Retry failed calls").count() == 0
    shot(page, "12-live-campaign-scheduled")

    # Every row reaches its outcome in place, the batch id appears, and Retry replaces Pause and Cancel.
    rows = page.locator("tbody tr")
    for outcome in ("Answered, successful", "Answered, not successful", "Voicemail", "Busy"):
        rows.filter(has_text=outcome).wait_for(timeout=90_000)
    page.get_by_role("button", name="Retry failed calls").wait_for(timeout=30_000)
    page.locator("[data-progress-url][data-final=true]").wait_for(timeout=60_000)
    assert page.evaluate("window.__sameDocument") is True  # never reloaded nor navigated
    assert page.url == f"{stack.url}/campaigns/{campaign.pk}"
    assert re.match(r"btcal_\w+", page.locator("[data-batch-ids]").inner_text().strip())
    assert page.get_by_role("button", name="Pause").count() == 0
    assert page.get_by_role("button", name="Cancel campaign").count() == 0
    assert page.locator("[data-status-badge]").inner_text() == "Completed"
    assert page.locator("[data-progress-finished]").inner_text() == "4"
    assert page.locator('[data-rate="answer"]').inner_text() == "50%"  # 2 answered of 4 placed
    assert page.locator('[data-rate="success"]').inner_text() == "50%"
    assert page.locator('[data-count="voicemail"]').inner_text() == "1"
    assert page.locator("[data-final-note]").is_visible()
    # The conversation id stays on one line: shortened, the full id in its title.
    conversation = rows.filter(has_text="Voicemail").locator('[data-cell="conversation"] code')
    assert conversation.get_attribute("title").startswith("conv_")
    box = conversation.bounding_box()
    assert box["height"] < 30, "the conversation id wraps"
    shot(page, "13-live-campaign-completed")
    campaign_width = fits_a_phone(page)
    shot(page, "14-live-campaign-completed-phone")
    desktop(page)

    # The answered call's page: the transcript from ElevenLabs, and the recording through this service.
    rows.filter(has_text="Answered, successful").get_by_role("link").click()
    page.wait_for_url(re.compile(rf"/campaigns/{campaign.pk}/recipients/\d+$"))
    page.get_by_role("heading", name="Transcript").wait_for()
    transcript = page.locator(".transcript")
    assert transcript.locator("li").count() >= 2
    assert "Agent" in transcript.inner_text()
    player = page.locator("audio[data-recording]")
    assert player.get_attribute("preload") == "none" and player.get_attribute("controls") is not None
    source = player.get_attribute("src")
    assert source.startswith(f"/campaigns/{campaign.pk}/recipients/") and source.endswith("/recording.mp3")
    recording = page.request.get(f"{stack.url}{source}")
    assert recording.status == 200 and recording.headers["content-type"] == "audio/mpeg"
    assert recording.body()[:2] == b"\xff\xf3"
    # Chromium decodes it: the player learns how long the call was.
    duration = page.evaluate(
        """() => new Promise((resolve) => {
             const player = document.querySelector("audio[data-recording]");
             player.addEventListener("loadedmetadata", () => resolve(player.duration), { once: true });
             player.addEventListener("error", () => resolve(-1), { once: true });
             player.preload = "auto";
             player.load();
           })"""
    )
    assert duration > 0
    assert (
        page.get_by_role("link", name=re.compile("Open in ElevenLabs"))
        .get_attribute("href")
        .startswith("https://elevenlabs.io/app/conversational-ai/history/conv_")
    )
    shot(page, "15-call-view")
    call_width = fits_a_phone(page)
    shot(page, "16-call-view-phone")

    # The campaigns list, with its rates, on a phone too.
    page.goto(f"{stack.url}/")
    listed = page.get_by_role("row").filter(has_text="Live follow-up")
    assert re.search(r"50%\s+50%", listed.inner_text())
    list_width = fits_a_phone(page)
    shot(page, "17-campaigns-list-phone")
    desktop(page)
    shot(page, "18-campaigns-list")

    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED
    assert not problems, problems
    print(f"\nwidths at {PHONE_WIDTH} px: campaign {campaign_width}, call {call_width}, list {list_width}")


def test_the_paused_note_comes_and_goes_on_the_open_page_without_a_reload(
    browser_page,  # noqa: F811 - the fixture imported above
    stack,
):
    page = browser_page
    user = sign_in(page, stack)
    campaign = scheduled(user, "Paused elsewhere", dt.timedelta(hours=1))
    page.goto(f"{stack.url}/campaigns/{campaign.pk}")
    page.evaluate("window.__sameDocument = true")
    assert page.locator("[data-paused-note]").count() == 0

    # Paused from another tab (or by an API client): the open page says so within a few seconds.
    services.campaign_pause(campaign=campaign)
    note = page.locator("[data-paused-note]")
    note.wait_for(timeout=15_000)
    assert "nobody is called until you resume the campaign" in note.inner_text()
    page.get_by_role("button", name="Resume").wait_for(timeout=15_000)

    services.campaign_resume(campaign=Campaign.objects.get(pk=campaign.pk))
    note.wait_for(state="detached", timeout=15_000)
    page.get_by_role("button", name="Pause").wait_for(timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True
