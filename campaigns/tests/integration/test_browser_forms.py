"""The staff forms that take a file, in Chromium against real gunicorn, worker, beat, Redis and
PostgreSQL: a file too large or of another program is refused on the page before any of it is
sent, a real upload shows its progress and busy buttons, a file of national numbers is fixed by
typing the country (without choosing the file again), and every state fits a 390 px phone.

Screenshots go where test_browser.py puts them (test-artifacts/screenshots/, or $SCREENSHOT_DIR).
"""

import re

import pytest

from campaigns.models import Campaign, Suppression

from .test_browser import browser_page, shot, sign_in  # noqa: F401 - browser_page is a fixture

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}
# A file of 14,000 distinct valid numbers with a long note each: about 3.5 MB.
MEDIUM_ROWS = 14_000
NATIONAL = b"phone_number,first_name\n(212) 555-0100,Ann\n(415) 555-0123,Ben\n"
OPT_OUTS = b"+14155552671\n+12125550100\n"
ZIP_START = b"PK\x03\x04"  # how Numbers and LibreOffice files begin
# About 1 MB a second up (DevTools' throttling), so that the upload can be watched.
SLOW_UPLOAD = {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 1_000_000}
# Records what the form shows while it uploads, across the navigation that follows.
RECORDER = """
document.addEventListener("DOMContentLoaded", function () {
  var bar = document.querySelector("[data-upload-progress] progress");
  if (bar) new MutationObserver(function () { window.recordState("progress", String(bar.value)); })
    .observe(bar, { attributes: true, attributeFilter: ["value"] });
  document.querySelectorAll("form[data-upload-url] button").forEach(function (button) {
    new MutationObserver(function () {
      window.recordState("button", button.textContent + (button.disabled ? " (disabled)" : ""));
    }).observe(button, { childList: true, characterData: true, subtree: true, attributes: true });
  });
  var status = document.querySelector("[data-form-status]");
  if (status) new MutationObserver(function () { window.recordState("status", status.textContent); })
    .observe(status, { childList: true, characterData: true, subtree: true });
});
"""


def medium_csv(path):
    note = "Called about the renewal of the yearly plan; prefers mornings; " * 3 + "x" * 50
    with path.open("w") as out:
        out.write("phone_number,first_name,note\n")
        for index in range(MEDIUM_ROWS):
            number = f"+1212555{index:04d}" if index < 10_000 else f"+1415555{index - 10_000:04d}"
            out.write(f"{number},Customer {index},{note}\n")
    return path


def fits(page, state: str) -> int:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{state}: the page is {width} px wide"
    return width


def fully_visible(page, locator):
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    viewport = page.viewport_size
    assert box is not None
    assert box["x"] >= 0 and box["y"] >= 0, box
    assert box["x"] + box["width"] <= viewport["width"] and box["y"] + box["height"] <= viewport["height"], box


def fill_campaign(page, stack, name: str):
    page.goto(f"{stack.url}/campaigns/new", wait_until="networkidle")
    page.get_by_label("Campaign name").fill(name)
    page.get_by_label("Agent").select_option(label="Appointment reminders (demo)")
    page.get_by_label("Call from").select_option(label="Demo line (+14155550100)")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
def test_a_file_is_checked_before_it_is_sent_and_uploaded_with_its_progress(
    browser_page,  # noqa: F811 - the fixture imported above
    stack,
    tmp_path,
    viewport,
):
    page = browser_page
    size = viewport["width"]
    sign_in(page, stack)
    page.set_viewport_size(viewport)
    posts = []
    page.on("request", lambda sent: posts.append(sent) if sent.method == "POST" else None)
    seen = []
    page.expose_function("recordState", lambda kind, value: seen.append((kind, value)))
    page.add_init_script(RECORDER)
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    widths = {}

    fill_campaign(page, stack, "Renewals")
    widths["form"] = fits(page, "the empty form")
    file_input = page.locator("#id_recipients_file")
    file_error = page.locator("[data-file-error]")

    # 30 MB, sparse on disk: refused on the page, nothing sent.
    big = tmp_path / "everyone.csv"
    with big.open("wb") as out:
        out.truncate(30 * 1024 * 1024)
    file_input.set_input_files(str(big))
    file_error.wait_for()
    assert file_error.inner_text() == (
        "“everyone.csv” is 30 MB; the limit is 20 MB. Split it into several files and upload each one."
    )
    assert page.evaluate("document.querySelector('#id_recipients_file').files.length") == 0
    assert file_input.get_attribute("aria-invalid") == "true"
    assert "id_recipients_file_check" in file_input.get_attribute("aria-describedby")
    widths["too large"] = fits(page, "a file too large")
    shot(page, f"forms-01-too-large-{size}")

    # Another program's spreadsheet: its own advice, nothing sent.
    file_input.set_input_files(files=[{"name": "people.numbers", "mimeType": "application/zip", "buffer": ZIP_START}])
    page.get_by_text("is an Apple Numbers file").wait_for()
    assert "In Numbers, choose File → Export To → CSV…" in file_error.inner_text()
    widths["other program"] = fits(page, "a Numbers file")
    shot(page, f"forms-02-numbers-file-{size}")
    assert posts == [], [sent.url for sent in posts]

    # A real upload of 3 MB, slowed down so that its progress can be watched.
    medium = medium_csv(tmp_path / "customers.csv")
    assert medium.stat().st_size > 3 * 1_048_576
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", SLOW_UPLOAD)
    file_input.set_input_files(str(medium))
    assert file_error.is_hidden()
    page.get_by_role("button", name="Preview", exact=True).click()
    progress = page.locator("[data-upload-progress] progress")
    # A value past 0 (not eval'd: the page's CSP forbids it, for the test too).
    page.locator('[data-upload-progress] progress:not([value="0"])').wait_for()
    preview_button = page.locator('button[value="preview"]')
    assert progress.is_visible()
    assert re.fullmatch(r"Uploading… \d+%", preview_button.inner_text())
    assert preview_button.is_disabled()
    assert page.locator("form[data-upload-url]").get_attribute("aria-busy") == "true"
    assert page.get_by_text("Uploading customers.csv").is_visible()
    widths["uploading"] = fits(page, "the upload under way")
    shot(page, f"forms-03-uploading-{size}")
    cdp.send("Network.emulateNetworkConditions", {**SLOW_UPLOAD, "latency": 0, "uploadThroughput": -1})

    page.locator("#preview").wait_for(timeout=60_000)
    assert f"{MEDIUM_ROWS:,}" in page.locator(".stat--good").inner_text()
    assert "Using customers.csv" in page.locator("[data-kept-file]").inner_text()
    widths["preview"] = fits(page, "the preview")
    create = page.get_by_role("button", name=re.compile("Create campaign to call"))
    fully_visible(page, create)
    shot(page, f"forms-04-preview-{size}")
    # One upload of the file, then the form with its token only.
    assert [re.sub(r"^https?://[^/]+", "", sent.url) for sent in posts] == ["/uploads", "/campaigns/new"]
    assert int(posts[0].all_headers()["content-length"]) > medium.stat().st_size
    assert int(posts[1].all_headers()["content-length"]) < 20_000
    percents = [int(value) for kind, value in seen if kind == "progress"]
    labels = [value for kind, value in seen if kind == "button"]
    announced = [value for kind, value in seen if kind == "status"]
    assert any(0 < percent < 100 for percent in percents), seen
    assert any(re.fullmatch(r"Uploading… \d+% \(disabled\)", label) for label in labels), labels
    assert "Checking the file… (disabled)" in labels, labels
    assert "Checking the file…" in announced and any(text.startswith("Uploading… ") for text in announced)

    # National numbers and no country: typing the country is the whole fix.
    posts.clear()
    file_input.set_input_files(files=[{"name": "national.csv", "mimeType": "text/csv", "buffer": NATIONAL}])
    page.get_by_role("button", name="Preview again").click()
    fix = page.locator("[data-country-fix]")
    fix.wait_for()
    assert "Type the country in Default country and preview again" in fix.inner_text()
    assert "default_country" not in page.locator("#preview").inner_text()
    widths["country missing"] = fits(page, "numbers without a country code")
    shot(page, f"forms-05-country-missing-{size}")
    fix.get_by_role("link", name="Default country").click()
    assert page.evaluate("document.activeElement.id") == "id_default_country"
    page.keyboard.type("us")
    posts.clear()
    page.get_by_role("button", name="Preview again").click()
    create = page.get_by_role("button", name="Create campaign to call 2 people")
    create.wait_for()
    assert [re.sub(r"^https?://[^/]+", "", sent.url) for sent in posts] == ["/campaigns/new"]  # no new upload
    widths["country typed"] = fits(page, "the preview with the country")
    fully_visible(page, create)
    shot(page, f"forms-06-country-typed-{size}")

    create.click()
    page.wait_for_url(re.compile(r"/campaigns/\d+$"))
    assert Campaign.objects.get(name="Renewals").recipients_count == 2
    assert "Creating the campaign… (disabled)" in [value for kind, value in seen if kind == "button"]
    assert problems == []
    print(f"\nscrollWidth at {size} px:", widths)


def test_the_do_not_call_import_checks_the_file_on_the_page_too(browser_page, stack):  # noqa: F811
    page = browser_page
    sign_in(page, stack)
    page.set_viewport_size(PHONE)
    posts = []
    page.on("request", lambda sent: posts.append(sent) if sent.method == "POST" else None)
    page.goto(f"{stack.url}/suppressions", wait_until="networkidle")
    section = page.locator("section", has=page.get_by_role("heading", name="Import a file"))
    file_input = section.get_by_label("File of numbers")

    file_input.set_input_files(files=[{"name": "opt-outs.ods", "mimeType": "application/zip", "buffer": ZIP_START}])
    section.get_by_text("is a LibreOffice (OpenDocument) spreadsheet").wait_for()
    fits(page, "the import with an .ods file")
    shot(page, "forms-07-import-ods-390")
    assert posts == []

    file_input.set_input_files(files=[{"name": "opt-outs.txt", "mimeType": "text/plain", "buffer": OPT_OUTS}])
    section.get_by_role("button", name="Import numbers").click()
    page.get_by_text("2 numbers added.").wait_for()
    assert [re.sub(r"^https?://[^/]+", "", sent.url) for sent in posts] == ["/uploads", "/suppressions/import"]
    assert Suppression.objects.count() == 2
    fits(page, "the list after the import")
    shot(page, "forms-08-import-done-390")
