from django.core.management.base import BaseCommand

from sandbox import faults


class Command(BaseCommand):
    help = "Start every SANDBOX_FAULTS count again from zero, for all web workers at once."

    def handle(self, *args, **options):
        faults.faults_reset()
        self.stdout.write("Sandbox fault counts reset.")
