from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from campaigns import services
from campaigns.errors import ApplicationError


class Command(BaseCommand):
    help = "Import and update USERNAME's agents and phone numbers from the configured ElevenLabs workspace."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named '{username}'.")
        try:
            result = services.elevenlabs_sync(user=user)
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Synced {result.agents} agents and {result.phone_numbers} phone numbers for {username}.")
