from django.apps import AppConfig


class CollectorConfig(AppConfig):
    name = "collector"
    verbose_name = "Collection"
    default_auto_field = "django.db.models.BigAutoField"
