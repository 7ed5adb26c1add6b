from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from campaigns import services


class Command(BaseCommand):
    help = "Create an API key for USERNAME and print it (alone) on stdout. It is not shown again."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="A label to tell the key apart later.")

    def handle(self, *args, username, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named '{username}'.")
        created = services.api_key_create(user=user, name=name)
        self.stdout.write(created.raw_key)
