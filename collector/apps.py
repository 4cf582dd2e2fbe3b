from django.apps import AppConfig


class CollectorConfig(AppConfig):
    name = "collector"
    verbose_name = "Collection"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Registering the source kinds is import-time only: no database access, no schedules.
        from collector import kinds

        kinds.load_builtin_kinds()
