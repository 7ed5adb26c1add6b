from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self):
        from . import checks  # noqa: F401 - registers the system checks
        from .web import middleware  # noqa: F401 - keeps the user's time zone in the session at sign-in
