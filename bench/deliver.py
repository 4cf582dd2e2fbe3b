"""Delivery throughput and memory of the real engine: 1,000,000 stored messages, one worker, to
rsyslog over TCP and to an HTTP receiver (design section 10: at least 50,000 messages/s to each,
at least 0.5 of a bare loop writing the same bytes, worker RSS under 200 MB and flat).

    .venv/bin/python bench/deliver.py [--messages 1000000] [--only syslog|http] [--profile]

Stores the messages straight into a fresh SQLite database (the ingest's own INSERT, Sophos-like
events and alerts from the simulator's item factory, about 530 bytes of raw JSON each, from three
sources on two collectors with their own categories, tenants, custom and SIEM fields), then, for
each receiver, creates a destination (cursor 0: everything stored) and lets one worker drain it by
calling ``collector.delivery.runs.deliver(pk)`` in a loop until the cursor reaches the last id.

* **syslog**: a real rsyslogd (Debian's, started here on a free port, writing each message as
  received to a file), TCP, octet-counting, RFC 5424, JSON payload. Timed until rsyslog has
  written every line; the lines are counted (a mismatch is a failure) and the file must be as
  large as the bare loop's.
* **http**: the Webhook kind (gzip NDJSON) to the minimal receiver of ``deliver_http.py`` in its
  own process, which gunzips every body and counts its lines.

Each is compared with its **ceiling**, measured in the same run just before and just after the
engine (the faster of the two is used): the very bytes the kind produces, prepared before the
clock starts in the same batches as the engine cuts them, written by a bare loop to the same
receiver: ``sendall`` per batch on one socket for syslog, a bare ``requests`` session POSTing the
same gzip bodies for HTTP (and, for reference only, the same loop gzipping each body itself).

The worker runs in its own process (so its peak RSS is its own); a sampler thread records its
RSS against the cursor, drawn as a small chart. "Flat" means the RSS grew by at most 10 % (and at
least 16 MB is allowed) from 10 % of the drain to its end. (SQLite's page cache, up to 64 MB a
connection, fills during the first ~60,000 messages: with a much smaller ``--messages`` the RSS is
still growing at 10 % and the check fails.)

Exits non-zero when a target is missed, after printing everything. ``--profile`` runs the worker
under cProfile (the rates then mean nothing and no target is checked) and prints where its time
went. About 3.5 minutes with the default million on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, cleanup, fresh_django, peak_rss_mb, run_phase

TARGET_RATE = 50_000
TARGET_RATIO = 0.5
TARGET_MB = 200
FLAT_GROWTH = 0.10  # of the RSS at 10 % of the drain
FLAT_SLACK_MB = 16
BARS = " ▁▂▃▄▅▆▇█"
PAGE = 1000  # items a stored page holds, as the Sophos kind fetches them


# --- storing the backlog (its own process) ----------------------------------------------------
SOURCES = (
    # name, collector, category, forward to SIEM, fields, tenants
    ("Sophos East", "Hosted EU", "sophos/east", True, {"env": "prod"}, 3),
    ("Sophos West", "Hosted EU", "sophos/west", False, {"team": "soc", "env": "staging"}, 2),
    ("Sophos Partner", "Berlin DC", "security/sophos/partner", True, {"region": "de"}, 4),
)
COLLECTORS = {"Hosted EU": {"region": "eu"}, "Berlin DC": {}}


def phase_store(data_dir: str, count: int) -> dict:
    """``count`` messages stored as the ingest stores them (its statement and metadata), in
    pages of 1000 from one source, tenant and stream at a time; about one page in ten is alerts."""
    fresh_django(data_dir)
    import orjson
    from django.db import connection, transaction

    from collector.engine.ingest import _datetime_adapter, _sql, run_metadata
    from collector.kinds.sophos_central.mapping import map_item
    from collector.models import Collector, Field, Message, Source
    from sophos_simulator.catalog import ItemFactory
    from sophos_simulator.config import SimulatorConfig

    for name in ("env", "region"):  # "team" is not in the Fields schema: dropped, as it would be
        Field.objects.create(name=name)
    collectors = {
        name: Collector.objects.create(name=name, category="bench", fields=fields)
        for name, fields in COLLECTORS.items()
    }
    config = SimulatorConfig(late_fraction=0.02)
    units = []  # (source id, metadata, tenant id, tenant name, item factory)
    serial = 0
    for name, collector, category, siem, fields, tenants in SOURCES:
        source = Source.objects.create(
            collector=collectors[collector], name=name, kind="Sophos Central", category=category,
            forward_to_siem=siem, fields=fields, config={"clientId": "bench"},
        )  # fmt: skip
        metadata = run_metadata(source)
        for _ in range(tenants):
            serial += 1
            tenant_id = f"816f36ee-dd2e-4ccd-bb12-{serial:012x}"
            tenant_name = f"Customer {serial:02d} GmbH"
            factory = ItemFactory(seed=7, tenant_id=tenant_id, tenant_name=tenant_name,
                                  config=config)  # fmt: skip
            units.append((source.pk, metadata, tenant_id, tenant_name, factory))

    adapt = _datetime_adapter()
    sql = _sql()["messages"]
    loads, dumps = orjson.loads, orjson.dumps
    clock_ms = int(time.time() * 1000) - 20 * 3600 * 1000
    step_ms = max(1, 20 * 3600 * 1000 // max(count, 1))  # spread over the last 20 hours
    raw_bytes = 0
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous=OFF")  # setting up, not measured
        written, page_no = 0, 0
        while written < count:
            source_id, meta, tenant_id, tenant_name, factory = units[page_no % len(units)]
            stream = "Alerts" if page_no % 10 == 9 else "Events"
            page_no += 1
            rows = []
            for _ in range(min(PAGE, count - written)):
                clock_ms += step_ms
                data = (
                    factory.alert(clock_ms)[1] if stream == "Alerts" else factory.event(clock_ms)[0]
                )
                item = loads(data)
                mapped = map_item(stream, item)
                raw = dumps(item).decode()
                raw_bytes += len(raw)
                receipt = adapt(dt_from_ms(clock_ms + 1500))
                rows.append((
                    source_id, "", stream, tenant_id, tenant_name, mapped.vendor_id,
                    meta.source_name, meta.source_category, meta.collector_name,
                    mapped.siem_event_id if meta.siem else "", meta.fields_json, raw,
                    adapt(mapped.message_time) if mapped.message_time else receipt, receipt,
                ))  # fmt: skip
            with transaction.atomic():
                cursor.executemany(sql, rows)
            written += len(rows)
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    seconds = time.perf_counter() - started
    ids = Message.objects.order_by("id").values_list("id", flat=True)
    return {
        "messages": Message.objects.count(),
        "first": ids.first(),
        "last": ids.last(),
        "raw_bytes": raw_bytes / max(count, 1),
        "seconds": seconds,
        "db_mb": sum(p.stat().st_size for p in Path(data_dir).glob("sumosources.sqlite3*")) / 2**20,
    }


def dt_from_ms(ms: int):
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def open_django(data_dir: str) -> None:
    """Django on the stored database, as a worker starts (no migrate: it only costs memory)."""
    os.environ["SUMOSOURCES_DATA_DIR"] = data_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sumosources.settings")
    for key in ("DATABASE_URL", "SUMOSOURCES_BROKER_URL"):
        os.environ.pop(key, None)
    import django

    django.setup()
    # What a worker imports (collector.delivery.runs cannot be imported first: it completes a
    # cycle through collector.engine).
    import collector.tasks  # noqa: F401


# --- the bytes of the ceiling, prepared before any clock starts -------------------------------
def engine_batches(kind):
    """Every stored message as the engine sends it, in the batches it cuts: window by window
    (``settings.DELIVERY_WINDOW``), each window's routed messages cut within the kind's limits.
    The engine's own functions, so the ceiling gets exactly the engine's batches."""
    from django.conf import settings

    from collector.delivery.routes import Route
    from collector.delivery.runs import ID, INDEX, SIEM_EVENT_ID, Outgoer, batches, read_window

    route = Route(parsed=None, siem=False)  # the benchmark's destinations have an empty route
    outgoing = Outgoer(cef=False)
    cursor = 0
    while rows := read_window(cursor, settings.DELIVERY_WINDOW):
        routed = [o for o in rows if route.selects_row(o[INDEX], o[SIEM_EVENT_ID], lambda: None)]
        yield from batches([outgoing(row) for row in routed], kind)
        cursor = rows[-1][ID]


def write_buffers(path: str, buffers) -> dict:
    """Buffers appended to ``path``; their lengths beside it in ``path.json``."""
    lengths, messages = [], 0
    with open(path, "wb") as out:
        for count, data in buffers:
            out.write(data)
            lengths.append(len(data))
            messages += count
    Path(f"{path}.json").write_text(json.dumps(lengths))
    return {"batches": len(lengths), "bytes": sum(lengths), "messages": messages}


def read_buffers(path: str):
    """(mmap of the file, the offsets and lengths of its buffers)."""
    lengths = json.loads(Path(f"{path}.json").read_text())
    with open(path, "rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    offsets, at = [], 0
    for length in lengths:
        offsets.append((at, length))
        at += length
    return mapped, offsets


def phase_prepare_syslog(data_dir: str, config: dict, out: str) -> dict:
    open_django(data_dir)
    from collector.destinations.syslog import SyslogKind

    kind = SyslogKind()
    encoder = kind.open(config=config, secret="").encoder
    return write_buffers(out, ((len(b), encoder.stream(b)) for b in engine_batches(kind)))


def phase_prepare_http(data_dir: str, out: str) -> dict:
    open_django(data_dir)
    from collector.destinations.http import compress, ndjson
    from collector.destinations.webhook import WebhookKind, WebhookSession

    kind, encode = WebhookKind(), WebhookSession.encode

    def raw_bodies():
        for batch in engine_batches(kind):
            body = ndjson([encode(m) for m in batch])  # exactly what WebhookSession.send builds
            yield len(batch), body

    raw = write_buffers(f"{out}.ndjson", raw_bodies())
    mapped, offsets = read_buffers(f"{out}.ndjson")
    gz = write_buffers(
        f"{out}.gz", ((0, compress(mapped[a : a + n])) for a, n in offsets)
    )  # fmt: skip
    return {**raw, "gzip_bytes": gz["bytes"]}


# --- the bare loops (each its own process) ----------------------------------------------------
def wait_lines(output: str, expect: int, idle: float = 15) -> int:
    """Wait until rsyslog has written ``expect`` lines, reading only what was appended since the
    last look (as deliver_syslog.py's LineCounter, which cannot be imported without importing
    the tests' fixtures into the measured process); gives up when nothing was appended for
    ``idle`` seconds (messages were lost: the count tells)."""
    path, lines, handle = Path(output), 0, None
    deadline = time.monotonic() + idle
    try:
        while lines < expect:
            if handle is None and path.exists():
                handle = open(path, "rb")  # noqa: SIM115 - kept open across reads
            chunk = handle.read(1 << 22) if handle is not None else b""
            if chunk:
                lines += chunk.count(b"\n")
                deadline = time.monotonic() + idle
            elif time.monotonic() > deadline:
                raise SystemExit(f"rsyslog wrote {lines:,} of {expect:,} lines")
            else:
                time.sleep(0.01)
    finally:
        if handle is not None:
            handle.close()
    return lines


def phase_bare_syslog(port: int, frames: str, output: str, expect: int) -> dict:
    import socket

    mapped, offsets = read_buffers(frames)
    view = memoryview(mapped)
    sock = socket.create_connection(("127.0.0.1", port))  # opened before the clock, as in
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # deliver_syslog.py
    started = time.perf_counter()
    for at, length in offsets:
        sock.sendall(view[at : at + length])
    written = time.perf_counter() - started
    lines = wait_lines(output, expect)
    seconds = time.perf_counter() - started
    sock.close()
    view.release()
    return {"seconds": seconds, "written_s": written, "lines": lines}


def phase_bare_http(url: str, bodies: str, gzip_each: bool) -> dict:
    import requests

    from collector.destinations.http import compress

    mapped, offsets = read_buffers(bodies)
    if gzip_each:  # the NDJSON bodies, gzipped in the loop: slices of the mapped file
        payloads = [memoryview(mapped)[a : a + n] for a, n in offsets]
    else:  # the gzip bodies, in memory before the clock
        payloads = [mapped[a : a + n] for a, n in offsets]
    headers = {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
    started = time.perf_counter()
    with requests.Session() as session:
        for body in payloads:
            data = compress(body) if gzip_each else body
            session.post(url, data=data, headers=headers, timeout=(5, 30)).raise_for_status()
    return {"seconds": time.perf_counter() - started}


# --- the engine (its own process) -------------------------------------------------------------
def phase_engine(
    data_dir: str, kind: str, config: dict, output: str, expect: int, profile: str
) -> dict:
    import psutil

    open_django(data_dir)
    from django.db import connection

    import collector.engine.lifecycle
    from collector.delivery.runs import deliver
    from collector.models import Destination, Message

    collector.engine.lifecycle.enqueue = lambda *args: None  # no broker: this loop is the worker
    destination = Destination.objects.create(name=f"Bench {kind}", kind=kind, config=config)
    first = Message.objects.order_by("id").values_list("id", flat=True).first() or 1
    last = Message.objects.order_by("-id").values_list("id", flat=True).first() or 0
    process = psutil.Process()
    samples: list[tuple[float, int, float]] = []
    done = threading.Event()

    def sample():
        started = time.monotonic()
        while not done.wait(0.25):
            cursor = Destination.objects.filter(pk=destination.pk).values_list("cursor", flat=True)
            delivered = max(0, cursor[0] - first + 1)
            samples.append(
                (time.monotonic() - started, delivered, process.memory_info().rss / 2**20)
            )
        connection.close()

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    rss_start = process.memory_info().rss / 2**20
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    runs, cursor = 0, 0
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    while cursor < last:
        result = deliver(destination.pk)
        runs += 1
        moved = Destination.objects.filter(pk=destination.pk).values_list("cursor", flat=True)[0]
        if not result.startswith("ok") or moved <= cursor:
            raise SystemExit(f"delivery run {runs} failed: {result} (cursor {moved:,} of {last:,})")
        cursor = moved
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    sent = time.perf_counter() - started
    lines = wait_lines(output, expect) if output else None
    seconds = time.perf_counter() - started
    done.set()
    thread.join()
    delivered = Destination.objects.filter(pk=destination.pk).values_list(
        "delivered_total", flat=True
    )[0]
    return {"seconds": seconds, "sent_s": sent, "runs": runs, "delivered": delivered,
            "lines": lines, "rss_start": rss_start, "peak_mb": peak_rss_mb(),
            "samples": samples}  # fmt: skip


# --- the receivers and the whole benchmark (the parent process) -------------------------------
def count_lines(path: Path) -> int:
    lines = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 24):
            lines += chunk.count(b"\n")
    return lines


def flat(samples, peak: float) -> tuple[bool, float, float]:
    """(flat?, RSS at 10 % of the drain, the highest RSS after it)."""
    if not samples:
        return True, peak, peak
    total = samples[-1][1] or 1
    at = next((s for s in samples if s[1] >= 0.1 * total), samples[0])
    after = max(s[2] for s in samples if s[0] >= at[0])
    return after - at[2] <= max(FLAT_GROWTH * at[2], FLAT_SLACK_MB), at[2], after


def bench_syslog(args, env: dict, folder: Path, expect: int) -> dict:
    from tests.support.rsyslog import RAW, Rsyslog

    config = {"host": "127.0.0.1", "port": 514, "protocol": "tcp", "framing": "octet-counting",
              "format": "rfc5424", "payload": "json"}  # fmt: skip
    frames = str(folder / "frames.bin")
    print("syslog: encoding the ceiling's bytes (the engine's batches, before any clock) ...")
    prep = run_phase(__file__, "prepare-syslog", env, "--config", json.dumps(config),
                     "--out", frames)  # fmt: skip

    def receiver(name: str) -> Rsyslog:
        (folder / name).mkdir()
        return Rsyslog(folder / name, protocol="tcp", template=RAW).start()

    def bare(name: str) -> tuple[dict, int]:
        rsyslog = receiver(name)
        try:
            result = run_phase(__file__, "bare-syslog", env, "--port", str(rsyslog.port),
                               "--frames", frames, "--output", str(rsyslog.output),
                               "--expect", str(expect))  # fmt: skip
        finally:
            rsyslog.stop()
        result["lines"] = count_lines(rsyslog.output)
        size = rsyslog.output.stat().st_size
        rsyslog.output.unlink()
        return result, size

    print("syslog: the bare loop ...")
    before, bare_size = bare("bare-before")
    print("syslog: the engine, one worker ...")
    rsyslog = receiver("engine")
    try:
        engine = run_phase(__file__, "engine", env, "--kind", "Syslog",
                           "--config", json.dumps({**config, "port": rsyslog.port}),
                           "--output", str(rsyslog.output), "--expect", str(expect),
                           *(["--profile-to", str(folder / "syslog.prof")] if args.profile else []))  # fmt: skip
    finally:
        rsyslog.stop()
    engine["lines"] = count_lines(rsyslog.output)
    engine_size = rsyslog.output.stat().st_size
    rsyslog.output.unlink()
    print("syslog: the bare loop again ...")
    after, _ = bare("bare-after")
    ceiling = min(before["seconds"], after["seconds"])
    problems = []
    for what, lines in (("engine", engine["lines"]), ("bare loop", before["lines"]),
                        ("bare loop (after)", after["lines"])):  # fmt: skip
        if lines != expect:
            problems.append(f"rsyslog wrote {lines:,} lines from the {what}, not {expect:,}")
    if engine_size != bare_size:
        problems.append(f"rsyslog wrote {engine_size:,} bytes from the engine, "
                        f"{bare_size:,} from the bare loop")  # fmt: skip
    return {
        "name": "rsyslog, TCP, octet-counting, RFC 5424, JSON",
        "detail": f"{prep['batches']:,} batches, {prep['bytes'] / 2**20:,.0f} MB framed "
        f"({prep['bytes'] / max(prep['messages'], 1):.0f} bytes a message)",
        "engine": engine,
        "rate": expect / engine["seconds"],
        "ceiling": expect / ceiling,
        "ceilings": (expect / before["seconds"], expect / after["seconds"]),
        "reference": None,
        "problems": problems,
    }


def bench_http(args, env: dict, folder: Path, expect: int) -> dict:
    from deliver_http import ReceiverProcess

    bodies = str(folder / "bodies")
    print("http: building the ceiling's NDJSON and gzip bodies (before any clock) ...")
    prep = run_phase(__file__, "prepare-http", env, "--out", bodies)
    receiver = ReceiverProcess()
    url = f"{receiver.url}/webhook"
    problems = []

    def check(what: str) -> None:
        count = receiver.count(reset=True)
        if count != expect:
            problems.append(
                f"the receiver counted {count:,} messages from the {what}, not {expect:,}"
            )

    try:
        receiver.count(reset=True)
        print("http: the bare loop ...")
        before = run_phase(__file__, "bare-http", env, "--url", url, "--bodies", f"{bodies}.gz")
        check("bare loop")
        print("http: the engine, one worker ...")
        config = {"url": url, "payload": "ndjson", "gzip": True, "auth": "none"}
        engine = run_phase(__file__, "engine", env, "--kind", "Webhook",
                           "--config", json.dumps(config),
                           *(["--profile-to", str(folder / "http.prof")] if args.profile else []))  # fmt: skip
        check("engine")
        print("http: the bare loop again, and gzipping each body itself ...")
        after = run_phase(__file__, "bare-http", env, "--url", url, "--bodies", f"{bodies}.gz")
        check("bare loop (after)")
        gzipping = run_phase(__file__, "bare-http", env, "--url", url,
                             "--bodies", f"{bodies}.ndjson", "--gzip-each")  # fmt: skip
        check("bare loop (gzip each)")
    finally:
        receiver.stop()
    ceiling = min(before["seconds"], after["seconds"])
    return {
        "name": "HTTP receiver, Webhook kind, gzip NDJSON",
        "detail": f"{prep['batches']:,} POSTs, {prep['bytes'] / 2**20:,.0f} MB NDJSON, "
        f"{prep['gzip_bytes'] / 2**20:,.0f} MB gzipped",
        "engine": engine,
        "rate": expect / engine["seconds"],
        "ceiling": expect / ceiling,
        "ceilings": (expect / before["seconds"], expect / after["seconds"]),
        "reference": expect / gzipping["seconds"],
        "problems": problems,
    }


def chart(samples, width: int = 60) -> str:
    """RSS over the drain as one line of ``width`` bars (the highest sample of each stretch),
    from 0 to the target: a flat line is the goal."""
    buckets = [[] for _ in range(min(width, len(samples)))]
    for n, (_, _, mb) in enumerate(samples):
        buckets[n * len(buckets) // len(samples)].append(mb)
    line = "".join(BARS[min(8, round(max(b) / TARGET_MB * 8))] for b in buckets)
    low, high = min(s[2] for s in samples), max(s[2] for s in samples)
    return f"RSS over the drain ({low:.0f}-{high:.0f} MB, scale 0-{TARGET_MB}): {line}"


def report(result: dict, *, profiled: bool) -> list[str]:
    """Print one receiver's figures; the targets it missed."""
    engine = result["engine"]
    missed = list(result["problems"])
    ratio = result["rate"] / result["ceiling"]
    is_flat, at10, highest = flat(engine["samples"], engine["peak_mb"])
    print(f"\n== {result['name']}: {result['detail']}")
    print(f"engine        {result['rate']:>10,.0f} messages/s  ({engine['delivered']:,} delivered "
          f"in {engine['seconds']:.1f} s, {engine['runs']} run{'s' if engine['runs'] != 1 else ''}"
          f"{'' if engine['lines'] is None else '; timed until rsyslog wrote the last line'})")  # fmt: skip
    before, after = result["ceilings"]
    print(f"ceiling       {result['ceiling']:>10,.0f} messages/s  (bare loop, same bytes: "
          f"{before:,.0f} before the engine, {after:,.0f} after)")  # fmt: skip
    print(f"ratio         {ratio:>10.2f}")
    if result["reference"]:
        print(f"reference     {result['reference']:>10,.0f} messages/s  (the bare loop gzipping "
              f"each body itself: ratio {result['rate'] / result['reference']:.2f})")  # fmt: skip
    print(f"peak RSS      {engine['peak_mb']:>10.0f} MB   (at start {engine['rss_start']:.0f} MB, "
          f"at 10 % {at10:.0f} MB, highest after {highest:.0f} MB: {'flat' if is_flat else 'GROWING'})")  # fmt: skip
    if engine["samples"]:
        print(chart(engine["samples"]))
    if profiled:
        return missed  # cProfile's overhead: the figures say nothing about the targets
    if result["rate"] < TARGET_RATE:
        missed.append(f"{result['rate']:,.0f} messages/s < {TARGET_RATE:,}")
    if ratio < TARGET_RATIO:
        missed.append(f"ratio {ratio:.2f} < {TARGET_RATIO}")
    if engine["peak_mb"] >= TARGET_MB:
        missed.append(f"peak RSS {engine['peak_mb']:.0f} MB >= {TARGET_MB} MB")
    if not is_flat:
        missed.append(f"RSS grew from {at10:.0f} MB to {highest:.0f} MB over the drain")
    for line in missed:
        print(f"MISSED: {line}")
    return [f"{result['name']}: {line}" for line in missed]


def print_profile(path: Path) -> None:
    import pstats

    print(f"\nprofile of the worker ({path.name}), by cumulative time:")
    stats = pstats.Stats(str(path), stream=sys.stdout)
    stats.strip_dirs().sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(20)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["syslog", "http"])
    parser.add_argument("--profile", action="store_true", help="run the worker under cProfile")
    phases = ["store", "prepare-syslog", "prepare-http", "bare-syslog", "bare-http", "engine"]
    parser.add_argument("--phase", choices=phases)
    for option in ("--data-dir", "--config", "--out", "--frames", "--output", "--url",
                   "--bodies", "--kind"):  # fmt: skip
        parser.add_argument(option, default="")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--expect", type=int, default=0)
    parser.add_argument("--gzip-each", action="store_true")
    parser.add_argument("--profile-to", default="")
    args = parser.parse_args()
    data_dir = os.environ.get("SUMOSOURCES_DATA_DIR", "")
    if args.phase:
        config = json.loads(args.config) if args.config else {}
        result = {
            "store": lambda: phase_store(data_dir, args.messages),
            "prepare-syslog": lambda: phase_prepare_syslog(data_dir, config, args.out),
            "prepare-http": lambda: phase_prepare_http(data_dir, args.out),
            "bare-syslog": lambda: phase_bare_syslog(
                args.port, args.frames, args.output, args.expect
            ),
            "bare-http": lambda: phase_bare_http(args.url, args.bodies, args.gzip_each),
            "engine": lambda: phase_engine(
                data_dir, args.kind, config, args.output, args.expect, args.profile_to
            ),
        }[args.phase]()
        print(json.dumps(result))
        return

    folder = Path(tempfile.mkdtemp(prefix="sumo-bench-deliver-"))
    env = {"SUMOSOURCES_DATA_DIR": str(folder)}
    missed: list[str] = []
    try:
        print(f"storing {args.messages:,} messages (Sophos-like events and alerts) ...")
        stored = run_phase(__file__, "store", env, "--messages", str(args.messages))
        print(f"stored        {stored['messages']:>10,} messages in {stored['seconds']:.1f} s "
              f"({stored['raw_bytes']:.0f} bytes of raw JSON each on average, "
              f"database {stored['db_mb']:,.0f} MB)")  # fmt: skip
        if stored["messages"] != args.messages:
            raise SystemExit("the store holds a different number of messages")
        open_django(str(folder))  # the rsyslog fixture lives among the tests, which need Django
        results = []
        for name, bench in (("syslog", bench_syslog), ("http", bench_http)):
            if args.only in (None, name):
                results.append((name, bench(args, env, folder, args.messages)))
        for name, result in results:
            if result["engine"]["delivered"] != args.messages:
                result["problems"].append(
                    f"the destination counts {result['engine']['delivered']:,} delivered"
                )
            missed += report(result, profiled=args.profile)
            if args.profile:
                print_profile(folder / f"{name}.prof")
    finally:
        cleanup(str(folder))
    targets = (f"targets: >= {TARGET_RATE:,} messages/s, ratio >= {TARGET_RATIO}, "
               f"RSS < {TARGET_MB} MB and flat")  # fmt: skip
    if args.profile:
        print("\nprofiled: the figures include cProfile's overhead, so no target was checked")
        return
    if missed:
        raise SystemExit(f"\nBELOW TARGET ({targets}):\n  " + "\n  ".join(missed))
    print(f"\nPASS ({targets})")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
