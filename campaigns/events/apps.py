from django.apps import AppConfig


class EventsConfig(AppConfig):
    # Its own label, so its tables and migrations never meet the campaigns app's.
    name = "campaigns.events"
    label = "events"
    verbose_name = "Event webhooks"
    default_auto_field = "django.db.models.BigAutoField"
