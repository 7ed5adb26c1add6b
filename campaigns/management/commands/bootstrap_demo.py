import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from campaigns import services
from campaigns.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Create (or refresh) a demo staff user with an API key, import the ElevenLabs workspace's "
        "agents and phone numbers, and print what a first request needs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of prose.")
        parser.add_argument("--host", default="http://127.0.0.1:8000", help="Base URL used in the printed curl line.")

    def handle(self, *args, **options):
        host = options["host"]
        try:
            demo = services.demo_bootstrap()
        except ApplicationError as exc:
            raise CommandError(f"{exc} (ElevenLabs at {settings.ELEVENLABS_BASE_URL})") from None
        facts = {
            "username": demo.username,
            "password": demo.password,
            "api_key": demo.api_key,
            "agent_id": demo.agent.elevenlabs_agent_id,
            "phone_number_id": demo.phone_number.pk,
        }
        if options["json"]:
            self.stdout.write(json.dumps(facts))
            return
        curl = (
            f'curl -X POST "{host}/api/v1/campaigns" \\\n'
            f'  -H "X-API-Key: {demo.api_key}" \\\n'
            '  -F "name=My first campaign" \\\n'
            f'  -F "phone_number_id={demo.phone_number.pk}" \\\n'
            f'  -F "agent_id={demo.agent.elevenlabs_agent_id}" \\\n'
            '  -F "recipients_file=@examples/recipients.csv" \\\n'
            '  -F "send_immediately=true"'
        )
        self.stdout.write(
            "\nVoiceable Campaigns is ready.\n\n"
            f"  Sign in:      {host}/   user {demo.username}   password {demo.password}   (admin: {host}/admin/)\n"
            f"  API key:      {demo.api_key}\n"
            f"  Agent:        {demo.agent.name} (agent_id {demo.agent.elevenlabs_agent_id})\n"
            f"  Phone number: {demo.phone_number.phone_number} (phone_number_id {demo.phone_number.pk})\n"
            f"  API docs:     {host}/api/v1/docs\n\n"
            f"Create a campaign:\n\n{curl}\n"
        )
