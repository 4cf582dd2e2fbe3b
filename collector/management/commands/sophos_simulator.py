"""``python manage.py sophos_simulator``: run the bundled Sophos Central simulator.

Settings come from ``--config FILE`` (JSON, the keys of SimulatorConfig) with command-line options
on top. The command prints the credential and the environment variables that point Sumo Sources
at the simulator, then serves until interrupted.
"""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from collector.kinds.sophos_central.simulator import Simulator, SimulatorConfig
from collector.kinds.sophos_central.simulator.config import ID_TYPES

DEFAULT_PORT = 8765

# (option, config key, type, help). Defaults are SimulatorConfig's; --help shows them.
OPTIONS = (
    (
        "--host",
        "host",
        str,
        "Address to listen on (default 127.0.0.1; 0.0.0.0 for every interface).",
    ),
    ("--port", "port", int, f"Port to listen on (default {DEFAULT_PORT}; 0 picks a free port)."),
    (
        "--public-host",
        "public_host",
        str,
        "Host name advertised in token, API and region URLs (default: --host, or 127.0.0.1).",
    ),
    (
        "--client-id",
        "client_id",
        str,
        "Client ID of the simulated API credential (default simulator-client).",
    ),
    (
        "--client-secret",
        "client_secret",
        str,
        "Client secret of the simulated API credential (default simulator-secret).",
    ),
    (
        "--id-type",
        "id_type",
        str,
        "Credential type: tenant, partner or organization (default tenant).",
    ),
    (
        "--tenants",
        "tenants",
        int,
        "Number of tenants (default 1; a tenant credential reads the first).",
    ),
    (
        "--regions",
        "regions",
        str,
        "Comma-separated data regions the tenants are spread over (default eu01,us01).",
    ),
    ("--events", "events", int, "SIEM events backlog per tenant (default 500)."),
    ("--alerts", "alerts", int, "Alerts backlog per tenant (default 50)."),
    (
        "--backlog-hours",
        "backlog_hours",
        float,
        "The backlog is spread over this many recent hours (default 12).",
    ),
    (
        "--rate",
        "rate",
        float,
        "New items per minute per tenant, for events and alerts each (default 0).",
    ),
    ("--events-rate", "events_rate", float, "New events per minute per tenant (default: --rate)."),
    ("--alerts-rate", "alerts_rate", float, "New alerts per minute per tenant (default: --rate)."),
    (
        "--late-fraction",
        "late_fraction",
        float,
        "Share of items that become visible after their own timestamp (default 0.02).",
    ),
    (
        "--late-max-seconds",
        "late_max_seconds",
        float,
        "How late a late item can be, in seconds (default 60).",
    ),
    (
        "--seed",
        "seed",
        int,
        "Seed of the generated data: the same seed gives the same items (default 1).",
    ),
    (
        "--token-lifetime",
        "token_lifetime",
        float,
        "Seconds an access token stays valid (default 3600).",
    ),
    ("--latency", "latency", float, "Seconds added to every answer (default 0)."),
    (
        "--events-limit-min",
        "events_limit_min",
        int,
        "Smallest SIEM 'limit' accepted (default 200).",
    ),
    (
        "--events-limit-max",
        "events_limit_max",
        int,
        "Largest SIEM 'limit' accepted (default 1000).",
    ),
    (
        "--alerts-max-page-size",
        "alerts_max_page_size",
        int,
        "Common Alerts pages.maxSize (default 1000).",
    ),
    (
        "--tenants-max-page-size",
        "tenants_max_page_size",
        int,
        "Largest tenants listing pageSize (default 100).",
    ),
    ("--tls-cert", "tls_cert", str, "PEM certificate file: serve HTTPS (with --tls-key)."),
    ("--tls-key", "tls_key", str, "PEM private key file of --tls-cert."),
)


class Command(BaseCommand):
    help = (
        "Run a local Sophos Central simulator (token, whoami, tenants, SIEM events and alerts, "
        "Common Alerts) with generated data, faults and counters. Control it over HTTP under "
        "/_simulator/ (stats, faults, advance, items) from this machine. See the README."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--config",
            metavar="FILE",
            help="JSON file with simulator settings (credentials, tenants, limits ...); "
            "options given on the command line win.",
        )
        for flag, _key, kind, text in OPTIONS:
            choices = ID_TYPES if flag == "--id-type" else None
            parser.add_argument(flag, type=kind, default=None, choices=choices, help=text)

    def handle(self, *args, **options):
        overrides = {}
        for flag, key, _kind, _text in OPTIONS:
            value = options.get(flag[2:].replace("-", "_"))
            if value is not None:
                overrides[key] = value
        if "regions" in overrides:
            overrides["regions"] = [r.strip() for r in overrides["regions"].split(",") if r.strip()]
        try:
            if options.get("config"):
                config = SimulatorConfig.from_file(options["config"], **overrides)
            else:
                config = SimulatorConfig(**overrides)
        except (OSError, ValueError, TypeError) as exc:
            raise CommandError(str(exc))
        if "port" not in overrides and not (options.get("config") and config.port):
            config = config.with_overrides(port=DEFAULT_PORT)
        self.stdout.write("Generating items ...")
        try:
            sim = Simulator(config).start()
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot start the simulator: {exc}")
        self._report(sim)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            sim.stop()
            self.stdout.write("Simulator stopped.")

    def _report(self, sim: Simulator) -> None:
        out = self.stdout
        out.write(f"Sophos Central simulator listening on {sim.url}")
        for cred in sim.credentials:
            out.write(
                f"  credential: {cred.id_type}, Client ID {cred.client_id}, Client Secret "
                f"{cred.client_secret}, {len(cred.tenant_ids)} tenant(s)"
            )
        for tenant in sim.tenants:
            counts = sim.stats()["tenants"][tenant.id]["streams"]
            out.write(
                f"  tenant {tenant.name} ({tenant.id}) in {tenant.region}: "
                f"{counts['Events']['available']} events, {counts['Alerts']['available']} alerts"
            )
        out.write("Point Sumo Sources at it with:")
        for key, value in sim.env().items():
            out.write(f"  export {key}={value}")
        out.write(f"Counters: curl {sim.url}/_simulator/stats   (Ctrl-C stops)")
        out.flush()
