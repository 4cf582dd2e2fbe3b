"""`make demo`: the product plus each source kind's demo, so data flows without a vendor account.

Every registered kind that has a demo (:meth:`collector.kinds.base.SourceKind.demo`) starts its
stand-in vendor inside this process; the web server and the worker are pointed at them, and one
collector with a demo source per kind is created once (through the kind's own form, so the demo
source is validated like a user's). The command names no vendor.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from collector import services
from collector.forms import CollectorForm
from collector.kinds import all_kinds
from collector.kinds.base import SourceKind
from collector.kinds.demo import KindDemo
from collector.models import Collector, Source
from sumosources.env import env_int

DEMO_COLLECTOR = "Demo Hosted Collector"


Demo = tuple[SourceKind, KindDemo]


def start_demos(*, port: int, write: Callable[[str], None]) -> list[Demo]:
    """Start every kind's demo and point this process and its future children at them.

    The first demo gets ``port``, the next ``port + 1`` and so on (0: each a free port). Each
    demo's settings are applied to ``django.conf.settings`` and its env to ``os.environ`` (the
    web server and worker started by ``serve`` inherit it). If one cannot start, those already
    started are stopped and CommandError is raised.
    """
    demos: list[Demo] = []
    for kind in all_kinds():
        try:
            demo = kind.demo(port=port + len(demos) if port else 0)
        except OSError as exc:
            stop_demos(demos)
            raise CommandError(f"cannot start the {kind.name} demo: {exc}") from exc
        if demo is None:
            continue
        demos.append((kind, demo))
        os.environ.update(demo.env)
        for name, value in demo.settings.items():
            setattr(settings, name, value)
        write(demo.description)
    return demos


def stop_demos(demos: list[Demo]) -> None:
    """Stop every demo, the last started first; one failing to stop does not keep the others up."""
    errors = []
    for _kind, demo in reversed(demos):
        try:
            demo.stop()
        except Exception as exc:  # stop the rest, then report the first failure
            errors.append(exc)
    if errors:
        raise errors[0]


def ensure_demo_sources(demos: list[Demo], *, write: Callable[[str], None]) -> Collector:
    """The demo collector, created if missing, with each demo's source, created if missing."""
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
        if not form.is_valid():
            raise CommandError(f"the demo collector is invalid: {form.errors.as_text()}")
        collector = services.create_collector(cleaned=form.cleaned_data)
    for kind, demo in demos:
        if Source.objects.filter(collector=collector, name=demo.source_name).exists():
            continue
        data = {**demo.source_data, "name": demo.source_name, "category": demo.collector_category}
        form = kind.form_class(data=data, collector=collector)
        if not form.is_valid():
            raise CommandError(
                f"the demo source {demo.source_name!r} is invalid: {_errors(kind, form)}"
            )
        services.create_source(collector=collector, form=form)
        write(f"Created the demo source {demo.source_name!r} on {DEMO_COLLECTOR!r}")
    return collector


def _errors(kind: SourceKind, form) -> str:
    """A form's errors in one line, without the secret field's messages (they may quote it)."""
    key = kind.config_keys.get(kind.secret_key)
    secret_field = key.form_field if key else None
    return "; ".join(
        f"{name}: {' '.join(messages) if name != secret_field else 'invalid'}"
        for name, messages in form.errors.items()
    )


class Command(BaseCommand):
    help = "Run the product with each source kind's demo: a stand-in vendor and a demo source."

    def add_arguments(self, parser):
        parser.add_argument(
            "--demo-port",
            "--simulator-port",
            dest="demo_port",
            type=int,
            default=env_int("SUMOSOURCES_SIMULATOR_PORT", 8765, minimum=0, maximum=65535),
            help="Port of the first kind's stand-in vendor; further kinds take the next ports "
            "(0: free ports; default $SUMOSOURCES_SIMULATOR_PORT or 8765).",
        )

    def handle(self, *args, demo_port, **options):
        def write(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        demos = start_demos(port=demo_port, write=write)
        try:
            ensure_demo_sources(demos, write=write)
            call_command("serve")
        finally:
            stop_demos(demos)
