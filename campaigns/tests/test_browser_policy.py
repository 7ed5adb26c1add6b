# ruff: noqa: RUF001 -- the pages write ranges of days and hours with an en dash, as the tests read them.
"""A staff user in Chromium sets calling hours and retries on a new campaign, sees when each time
zone is called, creates it, pauses it, and adds a number to the do-not-call list. Runs on the
live test server with the test database (SQLite or PostgreSQL), nothing else."""

import re
from pathlib import Path

import pytest

from campaigns.models import Campaign

from .factories import AgentFactory, PhoneNumberFactory, UserFactory

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"  # UserFactory's
# New York, Los Angeles and London: one clock each.
RECIPIENTS = b"phone_number,first_name\n+12125550100,Ann\n+13105550100,Luis\n+442079460958,Olivia\n"
POLICY_IN_WORDS = (
    "Mon–Fri, 09:00–12:00 and 14:00–20:00, each person's own time; up to 3 calls, 30 min apart; at most 4 at once"
)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (.ci/run installs it)")
def test_in_chromium_a_campaign_with_calling_hours_is_previewed_by_zone_created_and_paused(
    live_server, settings, tmp_path
):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    # The live server finds static files by their own names, not the collected hashed ones.
    plain_storage = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    settings.STORAGES = {**settings.STORAGES, "staticfiles": plain_storage}
    settings.WEB_UPLOADS_DIR = tmp_path / "uploads"
    staff = UserFactory(username="staff")
    agent = AgentFactory(user=staff, name="Renewals agent")
    number = PhoneNumberFactory(user=staff, label="Sales line")

    problems = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15_000)
        page.on("console", lambda message: problems.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text else None)  # fmt: skip
        page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
        page.on("dialog", lambda dialog: dialog.accept())  # the Pause button asks first

        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill("staff")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/")

        # The form, on a phone: nothing wider than the screen, the folded section opened too.
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{live_server.url}/campaigns/new", wait_until="networkidle")
        page.get_by_text("Set calling hours and retries").click()
        assert page.get_by_label("Attempts per person").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.set_viewport_size({"width": 1280, "height": 900})

        # Fill it in: Monday 7 January 2030 at 06:00 in Berlin, before any window opens.
        page.goto(f"{live_server.url}/campaigns/new", wait_until="networkidle")
        page.get_by_label("Campaign name").fill("Renewal calls")
        page.get_by_label("Agent").select_option(agent.elevenlabs_agent_id)
        page.get_by_label("Call from").select_option(str(number.pk))
        page.locator("#id_recipients_file").set_input_files(
            {"name": "renewals.csv", "mimeType": "text/csv", "buffer": RECIPIENTS}
        )
        page.get_by_label("Schedule for later").check()
        page.get_by_label("Date").fill("2030-01-07")
        page.get_by_label("Time", exact=True).fill("06:00")
        page.get_by_label("Time zone", exact=True).select_option("Europe/Berlin")

        page.get_by_text("Set calling hours and retries").click()
        policy = page.locator("fieldset.policy__fields")
        assert policy.locator("legend").first.inner_text() == "Calling hours and retries"
        for day in ("Mon", "Tue", "Wed", "Thu", "Fri"):
            policy.get_by_label(day, exact=True).check()
        policy.get_by_label("From", exact=True).fill("09:00")
        policy.get_by_label("To", exact=True).fill("12:00")
        policy.get_by_label("Then from").fill("14:00")
        policy.get_by_label("Then to").fill("20:00")
        # The zone for everyone shows only when that clock is chosen.
        assert not policy.get_by_label("Time zone for everyone", exact=True).is_visible()
        policy.get_by_label("One time zone for everyone").check()
        assert policy.get_by_label("Time zone for everyone", exact=True).is_visible()
        policy.get_by_label("Each person's own time zone (from their number)").check()
        policy.get_by_label("Attempts per person").fill("3")
        policy.get_by_label("Minutes between attempts").fill("30")
        policy.get_by_label("Most calls at once").fill("4")
        page.get_by_role("button", name="Preview", exact=True).click()

        # The preview: each zone with its first call, in local time and in UTC.
        page.locator("#preview").wait_for()
        groups = {
            zone: page.locator(f'[data-zone-group="{zone}"]').inner_text()
            for zone in ("America/New_York", "America/Los_Angeles", "Europe/London")
        }
        assert re.sub(r"\s+", " ", groups["America/New_York"]).endswith("from Mon 7 Jan, 09:00 local, 14:00 UTC")
        assert re.sub(r"\s+", " ", groups["America/Los_Angeles"]).endswith("from Mon 7 Jan, 09:00 local, 17:00 UTC")
        assert re.sub(r"\s+", " ", groups["Europe/London"]).endswith("from Mon 7 Jan, 09:00 local, 09:00 UTC")
        assert POLICY_IN_WORDS in page.locator("#preview").inner_text()
        # What was typed is still there for the create.
        assert page.get_by_label("Attempts per person").input_value() == "3"

        page.get_by_role("button", name="Create campaign to call 3 people").click()
        page.wait_for_url(re.compile(r".*/campaigns/\d+$"))
        assert page.locator("[data-policy]").inner_text() == POLICY_IN_WORDS
        zones = page.locator("table", has=page.get_by_text("Recipients and finished calls per time zone"))
        assert "America/Los_Angeles" in zones.inner_text() and "Europe/London" in zones.inner_text()

        page.get_by_role("button", name="Pause").click()
        page.locator(".badge--paused").wait_for()
        assert page.get_by_role("button", name="Resume").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280

        # The do-not-call list: add a number and see it listed.
        page.goto(f"{live_server.url}/suppressions", wait_until="networkidle")
        add = page.locator("section", has=page.get_by_role("heading", name="Add a number"))
        add.get_by_label("Phone number").fill("+1 212 555 0100")
        add.get_by_label("Reason").fill("asked on the phone")
        add.get_by_role("button", name="Add to the list").click()
        page.wait_for_load_state("networkidle")
        listed = page.locator("#listed").inner_text()
        assert "+12125550100" in listed.replace(" ", "").replace("-", "")
        assert "asked on the phone" in listed
        browser.close()

    assert problems == []
    # Read after the browser is gone: the ORM inside Playwright's block would open a connection of its own.
    campaign = Campaign.objects.get(name="Renewal calls")
    assert (campaign.calling_hours, campaign.calling_days) == ("09:00-12:00,14:00-20:00", "mon,tue,wed,thu,fri")
    assert (campaign.max_attempts, campaign.retry_delay_minutes, campaign.max_concurrent_calls) == (3, 30, 4)
    assert campaign.status == Campaign.Status.PAUSED
