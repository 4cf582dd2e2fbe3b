"""The simulator's command line, shared by ``python -m sophos_simulator`` and the product's
``python manage.py sophos_simulator`` wrapper: one option table, one way of printing.

Settings come from ``--config FILE`` (JSON, the keys of SimulatorConfig) with command-line options
on top. :func:`run` prints the credential and the environment variables that point Sumo Sources
at the simulator, then serves until interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sophos_simulator.config import ID_TYPES, SimulatorConfig
from sophos_simulator.core import Simulator

DEFAULT_PORT = 8765

DESCRIPTION = (
    "Run a local Sophos Central simulator (token, whoami, tenants, SIEM events and alerts, "
    "Common Alerts, endpoints) with generated data, faults and counters. Control it over HTTP under "
    "/_simulator/ (stats, faults, advance, items) from this machine. See the README."
)

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
        "--endpoints",
        "endpoints",
        int,
        "Managed endpoints per tenant, named by alerts and served by the Endpoint API "
        "(default 24).",
    ),
    (
        "--endpoint-change-hours",
        "endpoint_change_hours",
        float,
        "Some endpoints' health and addresses change this often (default 8; 0: never).",
    ),
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
    (
        "--endpoints-max-page-size",
        "endpoints_max_page_size",
        int,
        "Endpoint API pages.maxSize (default 500).",
    ),
    (
        "--endpoints-max-ids",
        "endpoints_max_ids",
        int,
        "Most ids one Endpoint API request may filter on (default 100).",
    ),
    ("--tls-cert", "tls_cert", str, "PEM certificate file: serve HTTPS (with --tls-key)."),
    ("--tls-key", "tls_key", str, "PEM private key file of --tls-cert."),
)


class UsageError(Exception):
    """A bad option or config file, or a listener that cannot start; the message says which."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config`` and every option of :data:`OPTIONS` (all defaulting to None) to a parser."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="JSON file with simulator settings (credentials, tenants, limits ...); "
        "options given on the command line win.",
    )
    for flag, key, kind, text in OPTIONS:
        choices = ID_TYPES if flag == "--id-type" else None
        parser.add_argument(flag, dest=key, type=kind, default=None, choices=choices, help=text)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_arguments(parser)
    return parser


def config_from_options(options: Mapping[str, Any]) -> SimulatorConfig:
    """The config the parsed ``options`` describe (keys as :func:`add_arguments` names them).

    Without ``--port`` (on the command line or in the config file) the port is
    :data:`DEFAULT_PORT`, not a random one, so the printed exports stay valid between runs.
    Raises :class:`UsageError` for an unreadable file or an unusable value.
    """
    overrides = {key: options[key] for _f, key, _k, _t in OPTIONS if options.get(key) is not None}
    if "regions" in overrides:
        overrides["regions"] = [r.strip() for r in overrides["regions"].split(",") if r.strip()]
    path = options.get("config")
    try:
        if path:
            config = SimulatorConfig.from_file(path, **overrides)
        else:
            config = SimulatorConfig(**overrides)
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from exc
    if "port" not in overrides and not (path and config.port):
        config = config.with_overrides(port=DEFAULT_PORT)
    return config


def report(sim: Simulator, write: Callable[[str], None]) -> None:
    """Write, a line per call, the address, credentials, tenants and exports of a running sim."""
    write(f"Sophos Central simulator listening on {sim.url}")
    for cred in sim.credentials:
        write(
            f"  credential: {cred.id_type}, Client ID {cred.client_id}, Client Secret "
            f"{cred.client_secret}, {len(cred.tenant_ids)} tenant(s)"
        )
    streams = {tid: t["streams"] for tid, t in sim.stats()["tenants"].items()}
    for tenant in sim.tenants:
        counts = streams[tenant.id]
        write(
            f"  tenant {tenant.name} ({tenant.id}) in {tenant.region}: "
            f"{counts['Events']['available']} events, {counts['Alerts']['available']} alerts"
        )
    write("Point Sumo Sources at it with:")
    for key, value in sim.env().items():
        write(f"  export {key}={value}")
    write(f"Counters: curl {sim.url}/_simulator/stats   (Ctrl-C stops)")


def run(options: Mapping[str, Any], write: Callable[[str], None]) -> None:
    """Start a simulator from parsed options, report it and serve until Ctrl-C or SIGTERM.

    ``write`` takes one line at a time and must flush it (a supervisor reads the address from
    it). Raises :class:`UsageError` before anything listens if the options are unusable.
    Must run in the main thread (it installs a SIGTERM handler).
    """
    config = config_from_options(options)
    write("Generating items ...")
    try:
        sim = Simulator(config).start()
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot start the simulator: {exc}") from exc
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        report(sim, write)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sim.stop()
        write("Simulator stopped.")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sophos_simulator``: exit status 0 when stopped, 2 for unusable options."""
    parser = build_parser(prog="python -m sophos_simulator")
    options = vars(parser.parse_args(argv))

    def write(line: str) -> None:
        print(line, flush=True)

    try:
        run(options, write)
    except UsageError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    return 0
