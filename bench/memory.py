"""Worker memory while draining a large backlog (design section 10: peak RSS under 200 MB, flat).

    .venv/bin/python bench/memory.py [--events 1000000]

One worker drains the backlog from the simulator (its own process) into SQLite; a sampler thread
records the worker's RSS against items stored, and the result is drawn as a small chart.
"""

import argparse
import json
import threading
import time

from common import SimulatorProcess, drain, fresh_django, make_source, peak_rss_mb, run_phase

TARGET_MB = 200
BARS = " ▁▂▃▄▅▆▇█"


def phase_engine() -> dict:
    import psutil

    fresh_django()
    from collector.models import Checkpoint

    source = make_source(apis=("Events",))
    process = psutil.Process()
    samples: list[tuple[float, int, float]] = []
    done = threading.Event()

    def sample():
        from django.db import connection

        started = time.monotonic()
        while not done.wait(0.5):
            stored = sum(Checkpoint.objects.values_list("items_total", flat=True))
            samples.append((time.monotonic() - started, stored, process.memory_info().rss / 2**20))
        connection.close()

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    started = time.perf_counter()
    drain(source.pk)
    seconds = time.perf_counter() - started
    done.set()
    thread.join()
    stored = sum(Checkpoint.objects.values_list("items_total", flat=True))
    return {"items": stored, "seconds": seconds, "peak_mb": peak_rss_mb(), "samples": samples}


def chart(samples, width=60) -> str:
    step = max(1, len(samples) // width)
    rows = samples[::step]
    top = max(mb for _, _, mb in rows)
    line = "".join(BARS[min(8, int(mb / top * 8))] for _, _, mb in rows)
    return f"RSS over the drain (max {top:.0f} MB): {line}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--phase", choices=["engine"])
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase_engine()))
        return
    print(f"simulator: {args.events:,} events backlog (generating, this takes a while) ...")
    with SimulatorProcess(events=args.events, alerts=0, late_fraction=0, backlog_hours=20) as sim:
        result = run_phase(__file__, "engine", sim.env())
    samples = result["samples"]
    print(f"drained       {result['items']:>10,} events in {result['seconds']:.1f} s "
          f"({result['items'] / result['seconds']:,.0f} items/s)")  # fmt: skip
    for fraction in (0.1, 0.25, 0.5, 0.75, 1.0):
        goal = result["items"] * fraction
        at = next((s for s in samples if s[1] >= goal), samples[-1] if samples else None)
        if at:
            print(f"RSS at {fraction:>4.0%}    {at[2]:>8.0f} MB   ({at[1]:,} stored)")
    print(f"peak RSS      {result['peak_mb']:>8.0f} MB   (target < {TARGET_MB} MB: "
          f"{'met' if result['peak_mb'] < TARGET_MB else 'MISSED'})")  # fmt: skip
    if samples:
        print(chart(samples))
    if result["items"] != args.events:
        raise SystemExit("stored != backlog")


if __name__ == "__main__":
    main()
