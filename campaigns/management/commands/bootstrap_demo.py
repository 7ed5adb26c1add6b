import json
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from campaigns import devrun, services
from campaigns.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Create the demo staff user with an API key, import the ElevenLabs workspace's agents and phone "
        "numbers, and print what a first request needs. The key and password are kept in --file (with DEBUG "
        "on: var/demo.json) and printed again by every later run while they still work."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of prose.")
        parser.add_argument(
            "--host", help="Base URL in the printed lines. Default: SITE_URL; with --show, where the demo was set up."
        )
        parser.add_argument(
            "--file",
            type=Path,
            help="Where the key and password are kept. Default: var/demo.json with DEBUG on; with DEBUG off, "
            "nowhere (the file holds a superuser's password), so every run makes new ones.",
        )
        parser.add_argument(
            "--show",
            action="store_true",
            help="Print the kept demo without asking ElevenLabs anything; set it up only if none works.",
        )

    def handle(self, *args, host, file, show, **options):
        path = file or (devrun.DEMO_FILE if settings.DEBUG else None)
        kept = devrun.demo_load(path) if path else {}
        if show:
            if path is None:
                raise CommandError("With DEBUG off nothing is kept unless --file names where.")
            url = (host or kept.get("url") or settings.SITE_URL).rstrip("/")
            running = devrun.answers(url, timeout=1)
            if set(devrun.DEMO_FACTS) <= kept.keys() and _works(kept["api_key"]):
                self._print(kept, url=url, path=path, as_json=options["json"])
                if not running and not options["json"]:
                    self.stdout.write(f"\nNothing answers at {url} now: start the service with `{_make_run(url)}`.")
                return
            if not running:
                # Setting one up needs the sandbox, which the web server serves.
                raise CommandError(f"No demo to show yet (or its key no longer works): `{_make_run(url)}` sets one up.")
        url = (host or settings.SITE_URL).rstrip("/")
        try:
            demo = services.demo_bootstrap(api_key=kept.get("api_key", ""), password=kept.get("password", ""))
        except ApplicationError as exc:
            raise CommandError(f"{exc} (ElevenLabs at {settings.ELEVENLABS_BASE_URL})") from None
        facts = {
            "username": demo.username,
            "password": demo.password,
            "api_key": demo.api_key,
            "agent_id": demo.agent.elevenlabs_agent_id,
            "agent_name": demo.agent.name,
            "phone_number_id": demo.phone_number.pk,
            "phone_number": demo.phone_number.phone_number,
            "url": url,
        }
        if path:
            devrun.demo_store(path, facts)
        self._print(facts, url=url, path=path, as_json=options["json"])

    def _print(self, facts: dict, *, url: str, path: Path | None, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(facts))
        else:
            self.stdout.write(devrun.demo_banner(facts, url=url, kept_in=path))


def _works(api_key: str) -> bool:
    try:
        return services.demo_key_works(api_key=api_key)
    except DatabaseError:  # no database yet: deleted, or not migrated since
        return False


def _make_run(url: str) -> str:
    port = urlsplit(url).port
    return "make run" if port in (None, 8000) else f"make run PORT={port}"
