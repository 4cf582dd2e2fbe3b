from django.apps import AppConfig
from django.core import checks


class SumoSourcesConfig(AppConfig):
    """The project's own checks (it has no models)."""

    name = "sumosources"
    verbose_name = "Sumo Sources"

    def ready(self):
        from sumosources.datafiles import check_data_files

        checks.register(check_data_files, checks.Tags.security)
