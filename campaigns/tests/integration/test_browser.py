"""A staff user in a real browser (Debian's Chromium driven by Playwright) against real
processes: gunicorn, a Celery worker and beat, Redis, PostgreSQL, and the sandbox.

Every page visited is saved as a screenshot in test-artifacts/screenshots/ (or
$SCREENSHOT_DIR) so a person can look at them.
"""

import datetime as dt
import os
import re
from pathlib import Path

import pytest
from django.db import connections
from django.utils import timezone

from campaigns import services
from campaigns.models import ApiKey, Campaign
from campaigns.tests.factories import UserFactory

from .conftest import ROOT

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "test-artifacts" / "screenshots"))
PASSWORD = "a long staff password"


@pytest.fixture
def browser_page(stack, monkeypatch, settings, request):
    # The web server checks passwords with the production hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still plain synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    stack.web()
    stack.worker()
    stack.beat()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        context = browser.new_context(viewport={"width": 1280, "height": 860}, timezone_id="Europe/Berlin")
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        # The last thing the browser showed, kept for whoever reads a failure.
        page.screenshot(path=str(SHOTS / f"last-{request.node.name}.png"), full_page=True)
        browser.close()
        # ORM calls made while Playwright's loop runs opened a connection of their own: closed
        # here, inside that context, or it keeps the test database from being dropped at the end.
        connections.close_all()


def shot(page, name: str):
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page, stack):
    user = UserFactory(username="staff")
    user.set_password(PASSWORD)
    user.save()
    services.elevenlabs_sync(user=user)
    page.goto(f"{stack.url}/")
    assert "/accounts/login/" in page.url  # every page needs a sign-in
    shot(page, "01-sign-in")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{stack.url}/")
    return user


def fill_new_campaign(page, stack, tmp_path, name: str, rows: str):
    page.goto(f"{stack.url}/campaigns/new")
    page.get_by_label("Campaign name").fill(name)
    page.get_by_label("Agent").select_option(label="Appointment reminders (demo)")
    page.get_by_label("Call from").select_option(label="Demo line (+14155550100)")
    recipients = tmp_path / f"{name}.csv"
    recipients.write_text(rows)
    page.locator("input[type=file][name=recipients_file]").set_input_files(str(recipients))


def test_a_staff_user_creates_a_campaign_from_a_file_and_watches_it_complete(browser_page, stack, tmp_path):
    page = browser_page
    sign_in(page, stack)
    shot(page, "02-campaigns-empty")

    # A file with a bad row: the preview names the row, and nothing is created.
    fill_new_campaign(
        page, stack, tmp_path, "Spring reminders",
        "phone_number,first_name\n+12125550100,Ana\n4155550123,Ben\n+442079460958,Chloe\n",
    )  # fmt: skip
    page.get_by_role("button", name="Preview").click()
    bad_row = page.get_by_role("row").filter(has_text="4155550123")
    bad_row.wait_for()
    assert re.search(r"^\s*3\s+4155550123\s+has no country code", bad_row.inner_text())  # line, value, why
    assert page.get_by_label("Campaign name").input_value() == "Spring reminders"  # what was typed is kept
    shot(page, "03-preview-with-an-invalid-row")
    assert not Campaign.objects.exists()

    # Fixed file: preview shows the recipients and their variables, then create.
    page.locator("input[type=file][name=recipients_file]").set_input_files(
        files=[{"name": "fixed.csv", "mimeType": "text/csv",
                "buffer": b"phone_number,first_name\n+12125550100,Ana\n+14155550123,Ben\n+442079460958,Chloe\n"}]
    )  # fmt: skip
    page.get_by_role("button", name=re.compile("Preview")).click()
    page.get_by_role("button", name="Create campaign").wait_for()
    assert "Chloe" in page.content()
    shot(page, "04-preview-ready")
    page.get_by_role("button", name="Create campaign").click()
    page.wait_for_url(re.compile(r"/campaigns/\d+$"))
    campaign = Campaign.objects.get(name="Spring reminders")
    assert campaign.recipients_count == 3

    # The page follows the campaign to its end without being reloaded.
    page.evaluate("window.__notReloaded = true")
    page.locator("[data-status-badge]").filter(has_text="Completed").wait_for(timeout=90_000)
    assert page.evaluate("window.__notReloaded") is True
    page.reload()  # the final outcomes, as the page suggests
    assert page.get_by_text("voicemail", exact=False).count() > 0
    shot(page, "05-campaign-completed")


def test_a_scheduled_campaign_is_cancelled_from_its_page(browser_page, stack, tmp_path):
    page = browser_page
    sign_in(page, stack)
    fill_new_campaign(page, stack, tmp_path, "Next week", "phone_number\n+12125550100\n")
    page.get_by_label("Schedule for later").check()
    later = timezone.localtime(timezone.now() + dt.timedelta(days=7))
    page.get_by_label("Date", exact=True).fill(later.date().isoformat())
    page.get_by_label("Time", exact=True).fill("10:00")
    page.get_by_role("button", name="Preview").click()
    page.get_by_role("button", name="Create campaign").click()
    page.wait_for_url(re.compile(r"/campaigns/\d+$"))
    assert "Scheduled" in page.locator("[data-status-badge]").inner_text()
    shot(page, "06-scheduled-campaign")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel campaign").click()
    page.locator("[data-status-badge]").filter(has_text="Cancelled").wait_for()
    assert Campaign.objects.get(name="Next week").status == Campaign.Status.CANCELLED
    shot(page, "07-campaign-cancelled")

    page.goto(f"{stack.url}/")
    assert page.get_by_text("Next week").count() == 1
    shot(page, "08-campaigns-list")


def test_a_staff_user_creates_and_revokes_an_api_key(browser_page, stack):
    page = browser_page
    user = sign_in(page, stack)
    page.goto(f"{stack.url}/api-keys")
    page.get_by_label("Name").fill("Zapier")
    page.get_by_role("button", name="Create key").click()
    value = page.locator("#new-key-value").input_value()
    assert value.startswith("vk_") and ApiKey.objects.get(user=user).key_hash == ApiKey.hash_key(value)
    shot(page, "09-api-key-created")

    page.goto(f"{stack.url}/api-keys")
    assert value not in page.content()  # shown once
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=re.compile("Revoke")).click()
    page.get_by_text("Revoked", exact=False).first.wait_for()
    assert ApiKey.objects.get(user=user).revoked_at is not None
    shot(page, "10-api-key-revoked")

    page.goto(f"{stack.url}/agents")
    shot(page, "11-agents-and-numbers")
