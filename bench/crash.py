"""Crash safety: the worker killed with SIGKILL at random points, many times (design section 10).

    .venv/bin/python bench/crash.py [--kills 50] [--events 200000] [--alerts 10000] [--latency 0.5]

Each round starts a real django-q2 cluster on a fresh SQLite database, lets it collect for a
random moment and SIGKILLs the whole cluster. Then one cluster drains what is left. It prints
items stored against items served by the simulator and the number of duplicates (must be 0).
"""

import argparse
import os
import random
import signal
import subprocess
import sys
import time

from common import ROOT, SimulatorProcess, fresh_django, make_source

BARS = " ▁▂▃▄▅▆▇█"


def start_cluster(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "qcluster"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


def kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--alerts", type=int, default=10_000)
    # Slow pages keep each run going long enough for every kill to land mid-run.
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    ttl = {"SUMOSOURCES_CLAIM_TTL": "2", "SUMOSOURCES_QUEUE_TTL": "2", "SUMOSOURCES_WORKERS": "1"}
    with SimulatorProcess(
        events=args.events, alerts=args.alerts, late_fraction=0, latency=args.latency
    ) as sim:
        os.environ.update(sim.env())
        os.environ.update(ttl)
        fresh_django()
        from django.db.models import Count

        from collector import engine
        from collector.models import Message

        expected = args.events + args.alerts
        make_source()
        env = dict(os.environ)
        progress = []
        for round_ in range(1, args.kills + 1):
            cluster = start_cluster(env)
            engine.dispatch()  # queues the source when its claim and queue marker have expired
            time.sleep(rng.uniform(2.5, 6.0))  # a random point in the run, by design of the bench
            kill(cluster)
            stored = Message.objects.filter(index="").count()
            progress.append(stored)
            print(f"kill {round_:>2}/{args.kills}: {stored:>7,} of {expected:,} stored", flush=True)
            time.sleep(2.1)  # let the dead worker's claim expire (CLAIM_TTL=2)
            if stored == expected:
                print("backlog drained before all kills; add --events for more kills mid-run")
                break
        cluster = start_cluster(env)
        deadline = time.monotonic() + 600
        while Message.objects.filter(index="").count() < expected and time.monotonic() < deadline:
            engine.dispatch()
            time.sleep(0.5)
        kill(cluster)
        stats = sim.stats()["totals"]
    served = stats["Events"]["served"] + stats["Alerts"]["served"]
    stored = Message.objects.filter(index="").count()
    duplicates = (
        Message.objects.filter(index="")
        .values("source_id", "stream", "tenant_id", "vendor_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    top = max(progress) or 1
    print("stored after each kill: " + "".join(BARS[min(8, int(p / top * 8))] for p in progress))
    print(
        f"kills {len(progress)}, items served {served:,}, stored {stored:,}, duplicates {duplicates}"
    )
    if stored != served or stored != expected or duplicates:
        raise SystemExit("FAILED: stored != served or duplicates found")
    print("crash safety: met (stored == served, no duplicates)")


if __name__ == "__main__":
    main()
