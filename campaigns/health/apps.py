from django.apps import AppConfig


class HealthConfig(AppConfig):
    # Its own label, so its table and migrations never meet the campaigns app's.
    name = "campaigns.health"
    label = "health"
    verbose_name = "Health"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from campaigns import metrics

        metrics.register_collector()
