"""`make demo`'s setup: each kind's demo starts, a demo source is created through the kind's form
and works against the stand-in vendor, and the demos stop; the command names no vendor."""

import os
import socket
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from collector.kinds import all_kinds, get_kind, register, unregister
from collector.kinds.sophos_central.transport import clear_token_cache
from collector.management.commands import demo as demo_command
from collector.management.commands.demo import (
    DEMO_COLLECTOR,
    Command,
    ensure_demo_sources,
    start_demos,
    stop_demos,
)
from collector.models import Collector, Source
from tests.support.fake_kind import FakeKind


@pytest.fixture
def isolated(settings, monkeypatch):
    """Undo what the demo applies to this process: its settings and environment variables."""
    # Any assignment through pytest-django's fixture installs an override layer; the demo's own
    # setattr calls land on that layer and go away with it at teardown.
    settings.SOURCE_KINDS = list(settings.SOURCE_KINDS)
    monkeypatch.setattr(os, "environ", dict(os.environ))
    yield
    clear_token_cache()  # tokens of a stopped stand-in must not reach a later test's


def _refuses_connections(url_env: dict[str, str]) -> bool:
    """Whether every loopback address named in a demo's env refuses TCP connections now."""
    ports = {
        int(value.rsplit(":", 1)[1].split("/")[0])
        for value in url_env.values()
        if value.startswith("http://127.0.0.1:")
    }
    assert ports, url_env
    for port in ports:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return False
    return True


def test_setup_creates_a_working_demo_source_per_kind_and_stops(db, isolated):
    lines: list[str] = []
    demos = start_demos(port=0, write=lines.append)
    try:
        # Kinds without a demo (the base contract's None) are left out.
        assert [kind.name for kind, _demo in demos] == ["Sophos Central"]
        kind, demo = demos[0]
        assert lines[0] == demo.description
        # The children of `serve` inherit the stand-in's address.
        assert demo.env and all(os.environ[k] == v for k, v in demo.env.items())
        collector = ensure_demo_sources(demos, write=lines.append)
        assert collector.name == DEMO_COLLECTOR and collector.category == "demo"
        source = Source.objects.get(collector=collector, name=demo.source_name)
        assert source.kind == kind.name and source.category == demo.collector_category
        assert source.has_secret
        # The source, as stored, reads from the stand-in the settings now point at.
        report = get_kind(source.kind).test_connection(
            config=source.config, secret=source.get_secret().reveal(), deadline=30
        )
        assert report.ok, report.summary
        assert lines[-1] == f"Created the demo source {demo.source_name!r} on {DEMO_COLLECTOR!r}"
        secret = demo.source_data["client_secret"]
        assert all(secret not in line for line in lines) and secret not in repr(demo)

        # A second `make demo` on the same database creates nothing new.
        ensure_demo_sources(demos, write=lines.append)
        assert Collector.objects.filter(name=DEMO_COLLECTOR).count() == 1
        assert Source.objects.filter(collector=collector).count() == len(demos)
    finally:
        stop_demos(demos)
    assert _refuses_connections(demo.env)
    stop_demos(demos)  # stopping twice is harmless


def test_kinds_without_a_demo_are_skipped(db, isolated, settings):
    settings.SOURCE_KINDS = []
    fake = register(FakeKind())
    try:
        lines: list[str] = []
        assert start_demos(port=0, write=lines.append) == [] and lines == []
    finally:
        unregister(fake.name)
    with pytest.raises(LookupError):
        get_kind(fake.name)  # registered by hand for this test only


def test_a_demo_that_cannot_start_is_an_error(db, isolated):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(CommandError, match="cannot start the .* demo"):
            start_demos(port=taken.getsockname()[1], write=lambda line: None)


def test_demo_port_option_and_its_old_name():
    parser = Command().create_parser("manage.py", "demo")
    assert parser.parse_args(["--demo-port", "9100"]).demo_port == 9100
    assert parser.parse_args(["--simulator-port", "9101"]).demo_port == 9101
    assert parser.parse_args([]).demo_port == int(
        os.environ.get("SUMOSOURCES_SIMULATOR_PORT", 8765)
    )


def test_the_command_names_no_vendor():
    text = Path(demo_command.__file__).read_text().lower()
    for vendor in {kind.name.lower() for kind in all_kinds()} | {"sophos"}:
        assert vendor not in text
