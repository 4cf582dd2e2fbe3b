"""A partner credential with 500 tenants, both streams: one full poll cycle with two workers
against the simulator answering with 50 ms latency (design section 10: under 300 s).

    .venv/bin/python bench/partner.py [--tenants 500] [--latency 0.05] [--workers 2]

A real django-q2 cluster runs the dispatcher's fan-out (one task per tenant). The cycle ends
when every tenant has finished its first poll of both streams.
"""

import argparse
import os
import signal
import subprocess
import sys
import time

from common import ROOT, SimulatorProcess, fresh_django, make_source

TARGET_SECONDS = 300
BARS = " ▁▂▃▄▅▆▇█"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--events", type=int, default=40, help="events backlog per tenant")
    parser.add_argument("--alerts", type=int, default=10, help="alerts backlog per tenant")
    args = parser.parse_args()
    with SimulatorProcess(id_type="partner", tenants=args.tenants, events=args.events,
                          alerts=args.alerts, latency=args.latency, late_fraction=0) as sim:  # fmt: skip
        os.environ.update(sim.env())
        os.environ["SUMOSOURCES_WORKERS"] = str(args.workers)
        fresh_django()
        from collector import engine
        from collector.models import Message, Tenant

        cluster = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "qcluster"], cwd=ROOT, env=dict(os.environ),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            source = make_source()
            started = time.monotonic()
            engine.kick(source.pk)
            progress = []
            while True:
                done = Tenant.objects.filter(source=source, last_success_at__isnull=False).count()
                progress.append(done)
                if done >= args.tenants or time.monotonic() - started > 2 * TARGET_SECONDS:
                    break
                time.sleep(1)
            elapsed = time.monotonic() - started
        finally:
            os.killpg(cluster.pid, signal.SIGKILL)
            cluster.wait()
        items = Message.objects.filter(index="").count()
        expected = args.tenants * (args.events + args.alerts)
        requests = sum(sum(codes.values()) for codes in sim.stats()["requests"].values())
    step = max(1, len(progress) // 60)
    line = "".join(BARS[min(8, int(p / args.tenants * 8))] for p in progress[::step])
    print(f"tenants polled over time: {line}")
    print(
        f"tenants       {done:>8} of {args.tenants} finished their first poll of Alerts and Events"
    )
    print(f"cycle time    {elapsed:>8.1f} s   (target < {TARGET_SECONDS} s: "
          f"{'met' if elapsed < TARGET_SECONDS and done == args.tenants else 'MISSED'})")  # fmt: skip
    print(
        f"items         {items:>8,} stored of {expected:,}; {requests:,} requests to the simulator"
    )


if __name__ == "__main__":
    main()
