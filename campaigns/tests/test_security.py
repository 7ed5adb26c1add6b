"""Sign-in lockout, the limit on bad API keys, password reset, and the production defaults:
HTTPS only behind the proxy, HSTS, Secure cookies, the Content-Security-Policy."""

import datetime as dt
import importlib
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from django.db.models import F
from django.test import override_settings
from django.urls import clear_url_caches
from rest_framework.test import APIClient

import voiceable.urls
from campaigns.api import cache_outage
from campaigns.models import Campaign

from .factories import AgentFactory, CampaignFactory, PhoneNumberFactory, RecipientFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"  # UserFactory's
WRONG = "not the password"
LOCKED = "Sign-in paused"


@pytest.fixture(autouse=True)
def _fresh_limits():
    # Sign-in attempts live in the database (rolled back after each test); API counts in the cache.
    cache.clear()


def sign_in(client, path="/accounts/login/", username="staff", password=PASSWORD, **request):
    return client.post(path, {"username": username, "password": password}, **request)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


# --- Sign-in lockout --------------------------------------------------------------------


def test_five_wrong_passwords_lock_that_username_out_and_even_the_right_one_then_gets_the_lockout_page(client, db):
    UserFactory(username="staff")

    for _ in range(4):
        response = sign_in(client, password=WRONG)
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.text
    fifth = sign_in(client, password=WRONG)
    right = sign_in(client)

    for response in (fifth, right):
        assert response.status_code == 429
        assert LOCKED in response.text
        assert "Too many failed sign-ins as <strong>staff</strong> from your address" in response.text
        assert "paused for 15 minutes" in response.text
        assert 'href="/accounts/login/"' in response.text  # back to the page it came from
    assert not signed_in(client)


def test_the_admin_sign_in_page_locks_out_the_same_way(client, db):
    UserFactory(username="staff")

    answers = [sign_in(client, "/admin/login/", password=WRONG).status_code for _ in range(5)]
    right = sign_in(client, "/admin/login/")

    assert answers == [200, 200, 200, 200, 429]
    assert right.status_code == 429 and LOCKED in right.text
    assert not signed_in(client)


def test_the_lockout_holds_for_that_username_from_that_address_only(client, db):
    UserFactory(username="staff")
    UserFactory(username="colleague")
    for _ in range(5):
        sign_in(client, password=WRONG, REMOTE_ADDR="203.0.113.7")

    assert sign_in(client, REMOTE_ADDR="203.0.113.7").status_code == 429
    assert sign_in(client, username="colleague", REMOTE_ADDR="203.0.113.7").status_code == 302
    client.logout()
    assert sign_in(client, REMOTE_ADDR="198.51.100.2").status_code == 302


def test_the_lockout_ends_15_minutes_after_the_last_counted_failure_however_often_one_tries_meanwhile(client, db):
    UserFactory(username="staff")
    for _ in range(5):
        sign_in(client, password=WRONG)
    for _ in range(3):
        assert sign_in(client, password=WRONG).status_code == 429

    AccessAttempt.objects.update(attempt_time=F("attempt_time") - dt.timedelta(minutes=14, seconds=50))
    assert sign_in(client).status_code == 429
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - dt.timedelta(seconds=11))
    response = sign_in(client)

    assert response.status_code == 302 and signed_in(client)


def test_signing_in_clears_earlier_failures(client, db):
    UserFactory(username="staff")
    for _ in range(4):
        sign_in(client, password=WRONG)
    assert sign_in(client).status_code == 302
    client.logout()

    answers = [sign_in(client, password=WRONG).status_code for _ in range(4)]

    assert answers == [200, 200, 200, 200]


def test_without_the_proxy_x_forwarded_for_is_ignored_so_rotating_it_does_not_escape_the_lockout(client, db):
    UserFactory(username="staff")
    for n in range(5):
        sign_in(client, password=WRONG, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")

    assert sign_in(client, HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429


def test_behind_the_proxy_the_client_is_the_address_the_proxy_added(client, db, settings):
    settings.BEHIND_HTTPS_PROXY = True
    UserFactory(username="staff")
    proxy = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_PROTO": "https"}
    # What a client sends in X-Forwarded-For comes first; the proxy appends the address it saw.
    for n in range(5):
        sign_in(client, password=WRONG, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.7", **proxy)

    assert sign_in(client, HTTP_X_FORWARDED_FOR="192.0.2.99, 203.0.113.7", **proxy).status_code == 429
    # Another client behind the same proxy is not locked out.
    assert sign_in(client, HTTP_X_FORWARDED_FOR="198.51.100.2", **proxy).status_code == 302
    assert AccessAttempt.objects.get().ip_address == "203.0.113.7"


# --- API keys: a limit on requests without a valid key ---------------------------------------


@pytest.fixture
def bad_key_limit(settings):
    settings.API_BAD_KEY_RATE_LIMIT = "3/min"


def api_get(key=None, **request):
    headers = {"HTTP_X_API_KEY": key} if key else {}
    return APIClient().get("/api/v1/campaigns", **headers, **request)


def test_past_the_limit_wrong_keys_from_one_address_get_429_in_the_envelope_with_retry_after(db, bad_key_limit):
    answers = [api_get("vk_wrong").status_code for _ in range(3)]
    response = api_get("vk_wrong")

    assert answers == [401, 401, 401]
    assert response.status_code == 429
    body = response.json()
    assert body["status"] == {"code": 429, "message": "Too many requests"}
    assert re.fullmatch(r"Too many requests\. Try again in \d+ seconds\.", body["error"])
    assert 1 <= int(response["Retry-After"]) <= 60


@pytest.mark.parametrize(
    "request_headers",
    [{}, {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"}, {"HTTP_AUTHORIZATION": "Bearer two words"}],
    ids=["no-key", "other-scheme", "malformed-bearer"],
)
def test_requests_without_a_key_count_too(db, bad_key_limit, request_headers):
    answers = [APIClient().get("/api/v1/campaigns", **request_headers).status_code for _ in range(4)]

    assert answers == [401, 401, 401, 429]


def test_a_valid_key_is_never_throttled_by_bad_attempts_from_its_address(db, bad_key_limit, raw_api_key):
    for _ in range(5):
        api_get("vk_wrong")

    assert api_get("vk_wrong").status_code == 429
    assert [api_get(raw_api_key).status_code for _ in range(5)] == [200] * 5


def test_other_addresses_are_not_throttled_by_one_address_bad_attempts(db, bad_key_limit):
    for _ in range(4):
        api_get("vk_wrong", REMOTE_ADDR="203.0.113.7")

    assert api_get("vk_wrong", REMOTE_ADDR="198.51.100.2").status_code == 401


def test_behind_the_proxy_bad_keys_are_counted_per_client_not_per_proxy(db, bad_key_limit, settings):
    settings.BEHIND_HTTPS_PROXY = True
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for n in range(3):
        api_get("vk_wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.7", **proxy)

    assert api_get("vk_wrong", HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy).status_code == 429
    assert api_get("vk_wrong", HTTP_X_FORWARDED_FOR="198.51.100.2", **proxy).status_code == 401


def test_while_the_cache_is_unreachable_bad_keys_are_still_answered_401(db, bad_key_limit, caplog, monkeypatch):
    monkeypatch.setattr(cache_outage, "_warned_at", {})
    unreachable = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # the discard port: nothing answers
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
        }
    }
    with override_settings(CACHES=unreachable):
        answers = [api_get("vk_wrong").status_code for _ in range(5)]

    assert answers == [401] * 5
    # Said once, not once per request: a scanner must not flood the log either.
    assert caplog.text.count("bad API key are not counted while the cache is unreachable") == 1


# --- Settings as the environment makes them (a fresh interpreter each) -----------------------

PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client

names = [
    "DEBUG", "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "PASSWORD_RESET_ENABLED",
    "EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS",
    "DEFAULT_FROM_EMAIL", "AXES_FAILURE_LIMIT",
]
shown = {name: getattr(settings, name, None) for name in names}
shown["AXES_COOLOFF_MINUTES"] = settings.AXES_COOLOFF_TIME.total_seconds() / 60
plain = Client().get("/accounts/login/")
https = Client().get("/accounts/login/", headers={"X-Forwarded-Proto": "https"})
shown["plain"] = [plain.status_code, plain.headers.get("Location")]
shown["https"] = [https.status_code, https.headers.get("Strict-Transport-Security")]
shown["csrf_cookie_secure"] = bool(https.cookies["csrftoken"]["secure"])
print(json.dumps(shown))
"""

PRODUCTION = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "campaigns.example.com,testserver",
    "SECRET_KEY": secrets.token_urlsafe(50),
}


def run_with(*args: str, **variables) -> subprocess.CompletedProcess:
    """Run Python in a fresh interpreter whose environment holds only what is given here."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "voiceable.settings",
        "CELERY_BROKER_URL": "memory://",
        **variables,
    }
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def settings_with(**variables) -> dict:
    result = run_with("-c", PROBE, **variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_sign_in_lockout_limits_come_from_the_environment():
    shown = settings_with(**PRODUCTION, LOGIN_FAILURE_LIMIT="10", LOGIN_LOCKOUT_MINUTES="60")
    assert (shown["AXES_FAILURE_LIMIT"], shown["AXES_COOLOFF_MINUTES"]) == (10, 60)


# --- Password reset -------------------------------------------------------------------------


def _reload_urls():
    importlib.reload(voiceable.urls)
    clear_url_caches()


@pytest.fixture
def password_reset_on():
    """Password reset as it is when a mail backend is configured (EMAIL_URL, or DEBUG)."""
    with override_settings(PASSWORD_RESET_ENABLED=True):
        _reload_urls()
        yield
    _reload_urls()


def test_with_no_mail_backend_password_reset_is_off_and_not_offered(client, db):
    # The tests run like production without EMAIL_URL.
    assert client.get("/accounts/password_reset/").status_code == 404
    assert "Forgot your password?" not in client.get("/accounts/login/").text


def test_the_reset_mail_reaches_the_user_and_its_link_sets_a_new_password(client, db, password_reset_on, mailoutbox):
    UserFactory(username="staff", email="staff@example.com")
    login_page = client.get("/accounts/login/").text
    assert 'href="/accounts/password_reset/"' in login_page and "Forgot your password?" in login_page

    response = client.post("/accounts/password_reset/", {"email": "staff@example.com"})

    assert response.status_code == 302 and response["Location"] == "/accounts/password_reset/done/"
    assert "Check your email" in client.get(response["Location"]).text
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["staff@example.com"]
    assert mail.from_email == "Voiceable <noreply@localhost>"
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.body).group(1)

    form = client.get(link, follow=True)
    assert "Choose a new password" in form.text
    new_password = "a brand new staff password"
    done = client.post(form.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password})
    assert done.status_code == 302 and "Password changed" in client.get(done["Location"]).text

    assert sign_in(client, password=PASSWORD).status_code == 200
    assert sign_in(client, password=new_password).status_code == 302
    # The link worked once.
    assert "This link is not valid any more" in client.get(link, follow=True).text


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client, db, password_reset_on, mailoutbox):
    response = client.post("/accounts/password_reset/", {"email": "nobody@example.com"})

    assert response.status_code == 302 and response["Location"] == "/accounts/password_reset/done/"
    assert mailoutbox == []


def test_the_lockout_page_offers_password_reset_when_it_is_on(client, db, password_reset_on):
    UserFactory(username="staff")
    for _ in range(5):
        response = sign_in(client, password=WRONG)

    assert response.status_code == 429 and 'href="/accounts/password_reset/"' in response.text


def test_mail_goes_to_the_console_in_development():
    shown = settings_with(DEBUG="true", ALLOWED_HOSTS="testserver")

    assert shown["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    assert shown["PASSWORD_RESET_ENABLED"] is True


def test_in_production_mail_goes_through_the_smtp_server_of_email_url():
    shown = settings_with(
        **PRODUCTION, EMAIL_URL="smtp+tls://mailer:p%40ss@smtp.example.com:587",
        DEFAULT_FROM_EMAIL="Campaigns <campaigns@example.com>",
    )  # fmt: skip

    assert shown["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (shown["EMAIL_HOST"], shown["EMAIL_PORT"], shown["EMAIL_USE_TLS"]) == ("smtp.example.com", 587, True)
    assert (shown["EMAIL_HOST_USER"], shown["EMAIL_HOST_PASSWORD"]) == ("mailer", "p@ss")
    assert shown["DEFAULT_FROM_EMAIL"] == "Campaigns <campaigns@example.com>"
    assert shown["PASSWORD_RESET_ENABLED"] is True


def test_in_production_without_email_url_password_reset_is_off():
    assert settings_with(**PRODUCTION)["PASSWORD_RESET_ENABLED"] is False


# --- HTTPS behind the proxy, and check --deploy -------------------------------------------


def test_behind_the_https_proxy_it_is_https_only_with_hsts_and_secure_cookies():
    shown = settings_with(**PRODUCTION, BEHIND_HTTPS_PROXY="true")

    assert shown["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert shown["plain"] == [301, "https://testserver/accounts/login/"]
    assert shown["https"] == [200, "max-age=31536000; includeSubDomains"]
    assert shown["SESSION_COOKIE_SECURE"] and shown["CSRF_COOKIE_SECURE"] and shown["csrf_cookie_secure"]
    assert shown["SECURE_HSTS_PRELOAD"] is False


def test_hsts_and_the_redirect_can_be_tuned_behind_the_proxy():
    shown = settings_with(
        **PRODUCTION, BEHIND_HTTPS_PROXY="true", SECURE_SSL_REDIRECT="false", SECURE_HSTS_SECONDS="3600",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="false", SECURE_HSTS_PRELOAD="true",
    )  # fmt: skip

    assert shown["plain"] == [200, None]
    assert shown["https"] == [200, "max-age=3600; preload"]


def test_without_the_proxy_nothing_forces_https():
    shown = settings_with(**PRODUCTION)

    assert (shown["SECURE_SSL_REDIRECT"], shown["SECURE_HSTS_SECONDS"], shown["SESSION_COOKIE_SECURE"]) == (
        False, 0, False,
    )  # fmt: skip
    assert shown["plain"] == [200, None] and shown["https"] == [200, None]
    assert not shown["csrf_cookie_secure"]


def test_check_deploy_passes_with_production_settings_behind_the_proxy_and_fails_without_it():
    command = ("manage.py", "check", "--deploy", "--fail-level", "WARNING")
    behind = run_with(*command, **PRODUCTION, BEHIND_HTTPS_PROXY="true")
    plain = run_with(*command, **PRODUCTION)

    assert behind.returncode == 0, behind.stderr
    assert "System check identified no issues" in behind.stdout
    assert plain.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in plain.stderr


# --- Response headers and the Content-Security-Policy ----------------------------------------


def policy(response) -> dict[str, list[str]]:
    directives = (part.strip().split() for part in response["Content-Security-Policy"].split(";") if part.strip())
    return {name: sources for name, *sources in directives}


def test_pages_send_a_policy_without_inline_script_and_the_other_security_headers(client, db):
    response = client.get("/accounts/login/")

    csp = policy(response)
    assert csp["default-src"] == csp["script-src"] == csp["style-src"] == csp["connect-src"] == ["'self'"]
    assert "style-src-attr" not in csp  # falls back to style-src: no style attribute either
    assert csp["frame-ancestors"] == csp["object-src"] == csp["base-uri"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_the_pages_templates_carry_no_inline_script_style_element_or_event_handler():
    for template in (ROOT / "templates").rglob("*.html"):
        html = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert re.search(r"\bsrc=", tag), f"inline <script> in {template}"
        assert "<style" not in html, f"<style> element in {template}"
        assert not re.search(r"\sstyle\s*=", html), f"style attribute in {template}"
        assert not re.search(r"\son[a-z]+\s*=", html), f"inline event handler in {template}"
        assert "javascript:" not in html, f"javascript: URL in {template}"


def test_the_api_docs_run_swagger_ui_from_files_with_inline_styles_allowed_on_that_page_only(client, db):
    response = client.get("/api/v1/docs")

    assert response.status_code == 200
    scripts = re.findall(r"<script\b[^>]*>", response.text)
    assert scripts and all("src=" in tag for tag in scripts)
    csp = policy(response)
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'", "'unsafe-inline'"] and csp["img-src"] == ["'self'", "data:"]
    start_up = client.get(re.search(r'<script src="([^"]*script[^"]*)"', response.text).group(1).replace("&amp;", "&"))
    assert start_up.status_code == 200 and start_up["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in start_up.text
    assert "'unsafe-inline'" not in policy(client.get("/accounts/login/"))["style-src"]


# --- In a real browser: no policy violation on any page --------------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (.ci/run installs it)")
def test_in_chromium_no_page_breaks_the_content_security_policy(live_server, settings, monkeypatch):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    # The live server finds static files by their own names, not the collected hashed ones.
    plain_storage = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    settings.STORAGES = {**settings.STORAGES, "staticfiles": plain_storage}
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM calls beside Playwright's event loop
    staff = UserFactory(username="staff", is_superuser=True)
    campaign = CampaignFactory(
        user=staff, agent=AgentFactory(user=staff), phone_number=PhoneNumberFactory(user=staff),
        status=Campaign.Status.IN_PROGRESS, recipients_count=2, calls_dispatched=2, calls_finished=1,
    )  # fmt: skip
    RecipientFactory.create_batch(2, campaign=campaign)
    pages = [
        "/", "/campaigns/new", f"/campaigns/{campaign.pk}", "/agents", "/api-keys", "/api/v1/docs",
        "/admin/", "/admin/campaigns/campaign/", f"/admin/campaigns/campaign/{campaign.pk}/change/",
    ]  # fmt: skip

    violations = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.on("console", lambda message: violations.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text else None)  # fmt: skip
        page.on("pageerror", lambda error: violations.append(f"{page.url}: {error}"))
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill("staff")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/")
        for path in pages:
            page.goto(f"{live_server.url}{path}", wait_until="networkidle")
        # Bars take their width from the stylesheet: 1 of 2 calls finished fills half the track.
        page.goto(f"{live_server.url}/campaigns/{campaign.pk}", wait_until="networkidle")
        fill, track = (page.locator(selector).bounding_box()["width"] for selector in (".progress__fill", ".progress"))
        assert fill == pytest.approx(track / 2, abs=2)
        # Swagger UI rendered the document: its scripts ran.
        page.goto(f"{live_server.url}/api/v1/docs", wait_until="networkidle")
        assert "Voiceable Campaigns API" in page.locator(".swagger-ui .info .title").inner_text()
        browser.close()

    assert violations == []
