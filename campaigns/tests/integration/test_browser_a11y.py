"""Every staff page, in every state a user meets, at 1280 and 390 px: axe-core (injected from
node_modules, `make test` installs it) finds no accessibility violation, and at 390 px the
page never scrolls sideways. A screenshot of each is kept (test-artifacts/screenshots/a11y-*)."""

import re

import pytest
from django.contrib.auth import get_user_model

from campaigns.models import Campaign

from .conftest import ROOT, wait_until
from .test_browser import browser_page, fill_new_campaign, shot, sign_in  # noqa: F401 - the fixture

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = {"desktop": (1280, 860), "phone": (390, 844)}
# WCAG 2.1 A and AA, and axe's own best practices.
AXE_RUN = """() => axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
  "best-practice"]}}).then(result => result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 5).map(n => n.target.join(" "))})))"""


# What sticks out past the viewport's right edge, innermost first: where a fix belongs.
WIDEST = """() => { const out = e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1;
  return Array.from(document.querySelectorAll("body *")).filter(out)
  .filter(e => !Array.from(e.children).some(out))
  .slice(0, 3).map(e => e.tagName.toLowerCase() + (e.className ? "." + String(e.className).split(" ").join(".") : "")
    + " " + Math.round(e.getBoundingClientRect().right) + " px"); }"""


class Audit:
    def __init__(self, page):
        if not AXE.exists():
            pytest.fail(f"{AXE} is missing: run `make install` (it needs Node's npm)")
        self.page = page
        self.source = AXE.read_text()
        self.problems: list[str] = []
        self.seen: list[str] = []

    def __call__(self, name: str):
        """Check the page as it is now, at each width; collect what is wrong rather than stop."""
        page = self.page
        for label, (width, height) in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(150)  # layout settles after a resize
            # Evaluated through the browser's debugging protocol: the page's CSP does not apply.
            if not page.evaluate("() => typeof window.axe !== 'undefined'"):
                page.evaluate(self.source + "\n;undefined")
            for violation in page.evaluate(AXE_RUN):
                self.problems.append(f"{name} at {width} px: {violation}")
            if width <= 390:
                scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
                if scroll_width > width:
                    wide = page.evaluate(WIDEST)
                    self.problems.append(f"{name} at {width} px: the page is {scroll_width} px wide ({wide})")
            shot(page, f"a11y-{name}-{label}")
        page.set_viewport_size({"width": 1280, "height": 860})
        self.seen.append(name)


def test_every_staff_page_is_accessible_and_fits_a_phone(browser_page, stack, tmp_path):  # noqa: F811
    page = browser_page
    audit = Audit(page)

    page.goto(f"{stack.url}/")
    audit("sign-in")
    user = sign_in(page, stack)
    audit("campaigns-empty")

    # The new-campaign form: empty, with a refused row, ready to create.
    fill_new_campaign(
        page, stack, tmp_path, "Spring reminders", "phone_number,first_name\n+12125550100,Ana\n4155550123,Ben\n"
    )
    audit("new-campaign")
    page.get_by_role("button", name="Preview").click()
    page.get_by_role("row").filter(has_text="4155550123").wait_for()
    audit("new-campaign-invalid-row")
    page.locator("input[type=file][name=recipients_file]").set_input_files(
        files=[{"name": "fixed.csv", "mimeType": "text/csv",
                "buffer": b"phone_number,first_name\n+12125550100,Ana\n+14155550123,Ben\n+442079460958,Chloe\n"}]
    )  # fmt: skip
    page.get_by_role("button", name=re.compile("Preview")).click()
    page.get_by_role("button", name="Create campaign").wait_for()
    audit("new-campaign-preview")

    # A campaign while it runs, and once every call has ended.
    page.get_by_role("button", name="Create campaign").click()
    page.wait_for_url(re.compile(r"/campaigns/\d+$"))
    audit("campaign-running")
    campaign = Campaign.objects.get(name="Spring reminders")
    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED,
               timeout=90, message="the campaign completes")  # fmt: skip
    page.reload()
    audit("campaign-completed")
    page.goto(f"{stack.url}/")
    audit("campaigns")

    # One call: its outcome, transcript and recording.
    page.goto(f"{stack.url}/campaigns/{campaign.pk}")
    page.locator("a[href*='/recipients/']").first.click()
    page.wait_for_load_state()
    audit("call")

    for path, name in [
        ("/agents", "agents"),
        ("/suppressions", "do-not-call"),
        ("/webhooks", "webhooks"),
        ("/account", "time-zone"),
    ]:
        page.goto(f"{stack.url}{path}")
        audit(name)

    page.goto(f"{stack.url}/api-keys")
    audit("api-keys")
    page.get_by_label("Name").fill("CRM")
    page.get_by_role("button", name="Create key").click()
    page.locator("#new-key-value").wait_for()
    audit("api-keys-new-key")

    # The admin pages this project customises, as the account's administrator.
    get_user_model().objects.filter(pk=user.pk).update(is_superuser=True)
    for path, name in [
        ("/admin/campaigns/campaign/", "admin-campaigns"),
        (f"/admin/campaigns/campaign/{campaign.pk}/change/", "admin-campaign"),
        (f"/admin/campaigns/recipient/?campaign__id__exact={campaign.pk}", "admin-recipients"),
    ]:
        page.goto(f"{stack.url}{path}")
        audit(name)

    assert not audit.problems, "\n".join(audit.problems)
    assert len(audit.seen) == 18, audit.seen  # every page and state above was checked


def test_the_axe_check_finds_a_violation_when_there_is_one(browser_page, stack):  # noqa: F811
    # The gate itself can fail: an image without a text alternative is reported.
    page = browser_page
    page.goto(f"{stack.url}/accounts/login/")
    page.evaluate("() => { const img = document.createElement('img'); img.src = '/static/img/favicon.svg';"
                  " document.querySelector('main').appendChild(img); }")  # fmt: skip
    audit = Audit(page)
    audit("sign-in-with-a-broken-image")
    assert any("image-alt" in problem for problem in audit.problems), audit.problems
