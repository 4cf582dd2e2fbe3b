"""Syslog delivery throughput: ``send()`` to a real rsyslog over TCP, octet-counting (design
section 10: at least 50,000 messages/s and at least 0.5 of a bare socket loop).

    .venv/bin/python bench/deliver_syslog.py [--messages 200000] [--payload json|cef]

Builds the messages in memory (Sophos-like events, about 600 bytes of JSON each, with their CEF
view), then times, against the same rsyslogd (started here, as the tests start it):

* the product: ``SyslogKind().open(...).send(batch)`` over batches of ``max_batch_messages``,
  the encoding included;
* the ceiling: one socket writing the very same bytes, encoded beforehand, with ``sendall``.

Both are timed until rsyslog has written every message to its file, so neither gains by filling
socket buffers. Prints messages/s of each and their ratio.
"""

import argparse
import datetime as dt
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sumosources.settings")

import django  # noqa: E402

django.setup()

from collector.destinations.base import Outgoing  # noqa: E402
from collector.destinations.syslog import SyslogKind  # noqa: E402
from collector.kinds.sophos_central.cef import cef_event  # noqa: E402
from tests.support.rsyslog import RAW, Rsyslog  # noqa: E402

TARGET = 50_000
TARGET_RATIO = 0.5


def build(count: int) -> list[Outgoing]:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    messages = []
    for n in range(count):
        moment = start + dt.timedelta(milliseconds=n)
        item = {
            "id": f"5bc48f19-3905-4f72-9f79-{n:012d}",
            "type": "Event::Endpoint::Threat::Detected",
            "name": f"Malware detected: 'Eicar-AV-Test' at 'C:\\Users\\user{n % 50}\\eicar.com'",
            "severity": ("low", "medium", "high")[n % 3],
            "group": "MALWARE",
            "when": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "created_at": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "customer_id": "816f36ee-dd2e-4ccd-bb12-cea766c28ade",
            "endpoint_id": f"c80c2a87-0000-4000-8000-{n % 997:012d}",
            "endpoint_type": "server",
            "location": f"mercury-{n % 997}",
            "source": f"CORP\\user{n % 50}",
            "source_info": {"ip": f"10.1.{n % 250}.{n % 200}"},
            "origin": None,
            "user_id": None,
            "threat": "Eicar-AV-Test",
        }
        messages.append(
            Outgoing(
                id=n + 1,
                raw=json.dumps(item),
                metadata={
                    "_source": "Sophos East",
                    "_sourceCategory": "sophos/east",
                    "_collector": "Hosted EU",
                    "_sourceName": "Events",
                    "tenant": "Acme",
                    "_siemEventID": "malware",
                },
                message_time=moment,
                receipt_time=moment,
                cef=cef_event("Events", item),
            )
        )
    return messages


def batches(messages, size):
    return [messages[i : i + size] for i in range(0, len(messages), size)]


class LineCounter:
    """Counts the lines rsyslog has written, reading only what was appended since the last look
    (re-reading hundreds of megabytes would steal the CPU rsyslog is being timed on)."""

    def __init__(self, path: Path):
        self.path = path
        self.handle = None
        self.lines = 0

    def wait(self, total: int, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.handle is None and self.path.exists():
                self.handle = open(self.path, "rb")  # noqa: SIM115 - kept open across calls
            chunk = self.handle.read(1 << 22) if self.handle is not None else b""
            if chunk:
                self.lines += chunk.count(b"\n")
                if self.lines >= total:
                    return
                continue
            if time.monotonic() > deadline:
                raise RuntimeError(f"rsyslog wrote {self.lines} of {total} lines")
            time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--payload", choices=("json", "cef"), default="json")
    args = parser.parse_args()

    kind = SyslogKind()
    messages = build(args.messages)
    groups = batches(messages, kind.max_batch_messages)
    folder = Path(tempfile.mkdtemp(prefix="bench-syslog-"))
    receiver = Rsyslog(folder, protocol="tcp", template=RAW).start()
    received = LineCounter(receiver.output)
    config = {"host": "127.0.0.1", "port": receiver.port, "protocol": "tcp",
              "framing": "octet-counting", "format": "rfc5424", "payload": args.payload}  # fmt: skip
    try:
        # The ceiling: the same bytes, encoded before the clock starts, one sendall per batch.
        encoder = kind.open(config=config, secret="").encoder
        buffers = [encoder.stream(group) for group in groups]
        total_bytes = sum(len(b) for b in buffers)
        sock = socket.create_connection(("127.0.0.1", receiver.port))
        started = time.perf_counter()
        for buffer in buffers:
            sock.sendall(buffer)
        received.wait(len(messages))
        bare = time.perf_counter() - started
        sock.close()

        # The product: encoding and sending, batch by batch, as the delivery engine calls it.
        # The first batch opens the connection (and watches it settle, see open_stream) before
        # the clock starts, as the bare loop's connection is opened before its clock starts.
        with kind.open(config=config, secret="") as session:
            session.send(groups[0])
            received.wait(len(messages) + len(groups[0]))
            started = time.perf_counter()
            for group in groups[1:]:
                session.send(group)
            received.wait(2 * len(messages))  # both phases append to one file
            product = time.perf_counter() - started
    finally:
        if received.handle is not None:
            received.handle.close()
        receiver.stop()

    count = len(messages)
    product_rate, bare_rate = (count - len(groups[0])) / product, count / bare
    ratio = product_rate / bare_rate
    print(
        f"messages: {count:,} ({args.payload}, {total_bytes / count:.0f} bytes framed on average)"
    )
    print(f"product send():   {product_rate:10,.0f} messages/s  ({product:.2f} s)")
    print(f"bare socket loop: {bare_rate:10,.0f} messages/s  ({bare:.2f} s)")
    print(f"ratio: {ratio:.2f}  (targets: >= {TARGET:,} messages/s and >= {TARGET_RATIO})")
    ok = product_rate >= TARGET and ratio >= TARGET_RATIO
    print("PASS" if ok else "BELOW TARGET")


if __name__ == "__main__":
    main()
