"""The simulator as a program of its own: ``python -m sophos_simulator`` without Django, and the
product's ``manage.py sophos_simulator`` wrapper taking the same options and printing the same."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]

PROGRAMS = {
    "python -m": ["-m", "sophos_simulator"],
    "manage.py": ["manage.py", "sophos_simulator"],
}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return {**env, "SUMOSOURCES_DEBUG": "1", "PYTHONUNBUFFERED": "1"}


def _start(program: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *PROGRAMS[program], *args],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_until(proc: subprocess.Popen, marker: str, timeout: float = 60) -> list[str]:
    """Output lines up to and including the first one containing ``marker``."""
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} in the output: {lines} {proc.stderr.read()}")


def test_the_package_imports_without_django():
    code = (
        "import sys, sophos_simulator, sophos_simulator.cli, sophos_simulator.server\n"
        "assert 'django' not in sys.modules, sorted(m for m in sys.modules if 'django' in m)\n"
        "assert not any(m == 'collector' or m.startswith('collector.') for m in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("program", PROGRAMS)
def test_help_documents_every_option(program):
    out, err = _start(program, "--help").communicate(timeout=60)
    for option in ("--host", "--port", "--client-id", "--client-secret", "--id-type", "--tenants",
                   "--events", "--alerts", "--rate", "--seed", "--tls-cert", "--tls-key", "--config",
                   "--regions", "--token-lifetime", "--latency", "--alerts-max-page-size",
                   "--public-host"):  # fmt: skip
        assert option in out, err
    assert "{tenant,partner,organization}" in out


def test_both_programs_serve_until_stopped_and_print_the_same():
    args = (
        "--port",
        "0",
        "--id-type",
        "partner",
        "--tenants",
        "2",
        "--events",
        "20",
        "--seed",
        "5",
    )
    reports = {}
    for program in PROGRAMS:
        proc = _start(program, *args)
        try:
            lines = _read_until(proc, "Counters: curl")
            url = next(line for line in lines if "listening on" in line).rsplit(" ", 1)[-1]
            stats = requests.get(url + "/_simulator/stats", timeout=10).json()
            assert stats["totals"]["Events"]["available"] == 40
            port = url.rsplit(":", 1)[-1]
            reports[program] = [line.replace(port, "PORT") for line in lines]
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert out.strip().endswith("Simulator stopped."), out + err
        with pytest.raises(requests.ConnectionError):
            requests.get(url + "/_simulator/stats", timeout=5)
    assert reports["python -m"] == reports["manage.py"]
    report = reports["python -m"]
    assert report[0] == "Generating items ..."
    assert report[1] == "Sophos Central simulator listening on http://127.0.0.1:PORT"
    assert "  export SUMOSOURCES_SOPHOS_API_URL=http://127.0.0.1:PORT" in report
    assert sum("  tenant " in line for line in report) == 2


def test_ctrl_c_stops_the_program():
    proc = _start("python -m", "--port", "0", "--events", "5", "--alerts", "1")
    try:
        _read_until(proc, "Counters: curl")
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Simulator stopped." in out, err


@pytest.mark.parametrize(
    ("program", "status", "prefix"),
    [("python -m", 2, "python -m sophos_simulator: error: "), ("manage.py", 1, "CommandError: ")],
)
def test_unusable_options_are_refused_before_listening(program, status, prefix, tmp_path):
    config = tmp_path / "sim.json"
    config.write_text('{"tenant_count": 3}')
    proc = _start(program, "--config", str(config))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == status and "listening" not in out
    assert re.search(re.escape(prefix) + r"unknown simulator settings: tenant_count", err), err
