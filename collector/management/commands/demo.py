"""`make demo`: the product plus the bundled Sophos Central simulator and a demo source.

For a newcomer without a Sophos account: the simulator (a partner credential with three tenants
in two regions, new items every minute) runs inside this process, the web server and the worker
are pointed at it, and a collector with a Sophos Central source is created once.
"""

import os

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from collector import services
from collector.forms import CollectorForm
from collector.kinds.sophos_central.forms import SophosCentralSourceForm
from collector.models import Collector, Source
from sophos_simulator import Simulator, SimulatorConfig
from sumosources.env import env_int

DEMO_COLLECTOR = "Demo Hosted Collector"
DEMO_SOURCE = "Sophos Central (simulator)"


class Command(BaseCommand):
    help = "Run the product with the bundled Sophos Central simulator and a demo source."

    def add_arguments(self, parser):
        parser.add_argument(
            "--simulator-port", type=int, default=env_int("SUMOSOURCES_SIMULATOR_PORT", 8765)
        )

    def handle(self, *args, simulator_port, **options):
        config = SimulatorConfig(
            port=simulator_port,
            id_type="partner",
            tenants=3,
            events=3000,
            alerts=300,
            rate=6,
            seed=42,
        )
        sim = Simulator(config).start()
        # The web server and the worker are children of `serve` and inherit this environment.
        os.environ.update(sim.env())
        settings.SOPHOS_TOKEN_URL, settings.SOPHOS_API_URL = sim.token_url, sim.api_url
        settings.SOPHOS_EXTRA_HOSTS = list(sim.extra_hosts)
        self.stdout.write(f"Sophos Central simulator on {sim.url} (partner, 3 tenants)")
        self._ensure_demo_source(sim)
        try:
            call_command("serve")
        finally:
            sim.stop()

    def _ensure_demo_source(self, sim) -> None:
        collector = Collector.objects.filter(name=DEMO_COLLECTOR).first()
        if collector is None:
            form = CollectorForm(
                data={
                    "name": DEMO_COLLECTOR,
                    "category": "demo",
                    "time_zone": "UTC",
                    "description": "Created by make demo",
                }  # fmt: skip
            )
            assert form.is_valid(), form.errors
            collector = services.create_collector(cleaned=form.cleaned_data)
        if Source.objects.filter(collector=collector, name=DEMO_SOURCE).exists():
            return
        form = SophosCentralSourceForm(
            data={
                "name": DEMO_SOURCE,
                "category": "demo/sophos",
                "forward_to_siem": "on",
                "client_id": sim.config.client_id,
                "client_secret": sim.config.client_secret,
                "supported_apis": ["Alerts", "Events"],
                "polling_interval": 60,
            },  # fmt: skip
            collector=collector,
        )
        assert form.is_valid(), form.errors
        services.create_source(collector=collector, form=form)
        self.stdout.write(f"Created the demo source {DEMO_SOURCE!r} on {DEMO_COLLECTOR!r}")
