"""Shared plumbing of the benchmarks: a simulator in its own process and a throw-away database.

The simulator runs as a separate process (as a real vendor would be), so its CPU and memory never
count against the worker being measured.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SimulatorProcess:
    """`python -m sophos_simulator` with the given options, ready when its stats answer."""

    def __init__(self, **options):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "sophos_simulator", "--port", str(self.port)]
        for key, value in options.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 600
        while True:
            try:
                self.stats()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the simulator did not start") from None
                time.sleep(0.2)

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/_simulator/stats", timeout=30) as response:
            return json.load(response)

    def env(self) -> dict:
        return {
            "SUMOSOURCES_SOPHOS_TOKEN_URL": f"{self.url}/api/v2/oauth2/token",
            "SUMOSOURCES_SOPHOS_API_URL": self.url,
            "SUMOSOURCES_SOPHOS_EXTRA_HOSTS": f"127.0.0.1:{self.port}",
        }

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def run_phase(script: str, phase: str, env: dict, *args: str) -> dict:
    """Run one phase of a benchmark in a fresh process (so its peak RSS is its own); its last
    stdout line is a JSON result."""
    out = subprocess.run(
        [sys.executable, script, "--phase", phase, *args],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"phase {phase} failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def fresh_django(data_dir: str | None = None):
    """Set up Django on an empty SQLite database in a temporary data folder."""
    data_dir = data_dir or tempfile.mkdtemp(prefix="sumo-bench-")
    os.environ["SUMOSOURCES_DATA_DIR"] = data_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sumosources.settings")
    for key in ("DATABASE_URL", "SUMOSOURCES_BROKER_URL"):
        os.environ.pop(key, None)  # the targets are for the embedded default
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    return data_dir


def make_source(
    *, client_id="simulator-client", secret="simulator-secret", apis=("Alerts", "Events")
):
    from django.utils import timezone

    from collector.models import Collector, Source

    collector = Collector.objects.create(name="Bench", category="bench")
    source = Source(collector=collector, name="Sophos bench", kind="Sophos Central",
                    config={"clientId": client_id, "supported_apis": list(apis)},
                    next_poll_at=timezone.now())  # fmt: skip
    source.set_secret(secret)
    source.save()
    return source


def drain(source_id: int) -> None:
    """Run the source like one worker would until its backlog is gone (no broker needed)."""
    from collector import engine

    engine.enqueue = lambda *args: None
    while True:
        result = engine.run_source(source_id)
        if not result.startswith("ok"):
            raise SystemExit(f"run failed: {result}")
        from collector.models import Source

        source = Source.objects.get(pk=source_id)
        if source.next_poll_at and source.next_poll_at.timestamp() > time.time():
            return  # no more backlog: the next poll is in the future


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cleanup(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
