"""HTTP delivery throughput: the Webhook kind, gzip NDJSON, to a minimal local receiver
(design section 10: at least 50,000 messages/s and 0.5 of a bare loop posting the same bytes).

    .venv/bin/python bench/deliver_http.py [--messages 200000] [--runs 3]

The receiver runs in its own process (as a real one would): a keep-alive HTTP/1.1 server that
reads each body, gunzips it, counts its lines (so every message is verified delivered) and answers
200. Measured side by side, each the best of ``--runs``:

* **kind**: ``WebhookKind().open(...).send(batch)`` for batches cut as the delivery engine cuts
  them (with the kind's limits): encoding each message,
  joining, gzip, POST, reading the answer;
* **ceiling**: a bare ``requests`` loop posting the very same NDJSON bodies (built before the
  clock starts), gzipped at the same level per request, on one keep-alive session: everything the
  protocol itself costs, nothing of ours;
* for reference, **wire only**: the same loop posting bodies already gzipped.

Prints messages/s of each and the ratio kind / ceiling; exits non-zero below the targets.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import ROOT, free_port

TARGET_RATE = 50_000
TARGET_RATIO = 0.5


# --- the minimal receiver (its own process) --------------------------------------------------
class _Count(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    lines = 0
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        with _Count.lock:
            _Count.lines += body.count(b"\n")
        self._answer(b"")

    def do_GET(self):  # /count, and /reset with ?reset
        with _Count.lock:
            count = _Count.lines
            if "reset" in self.path:
                _Count.lines = 0
        self._answer(str(count).encode())

    def _answer(self, data: bytes):
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def phase_receiver(port: int) -> None:
    ThreadingHTTPServer(("127.0.0.1", port), _Count).serve_forever()


class ReceiverProcess:
    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--phase", "receiver", "--port", str(self.port)], cwd=ROOT
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.count(reset=True)
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the receiver did not start") from None
                time.sleep(0.05)

    def count(self, *, reset: bool = False) -> int:
        path = "/count?reset" if reset else "/count"
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as response:
            return int(response.read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# --- what is sent ----------------------------------------------------------------------------
def messages(count: int):
    """Stored messages shaped like Sophos Central events (about 700 bytes of raw JSON each)."""
    import datetime as dt

    from collector.destinations.base import Outgoing

    base = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    types = ["Event::Endpoint::Threat::Detected", "Event::Endpoint::WebFilteringBlocked",
             "Event::Endpoint::UpdateSuccess", "Event::Endpoint::Application::Allowed"]  # fmt: skip
    out = []
    for n in range(count):
        moment = base + dt.timedelta(milliseconds=n * 7)
        raw = json.dumps(
            {
                "id": f"{n:08x}-5c1b-4f4e-9f1e-0a3b8e5d{n % 10000:04d}",
                "type": types[n % 4],
                "severity": ["low", "medium", "high"][n % 3],
                "name": f"Malware detected: 'Mal/Generic-S' at C:\\Users\\user{n % 97}\\file.exe",
                "location": f"WKS-{n % 500:04d}",
                "group": "MALWARE",
                "endpoint_id": f"a1b2c3d4-{n % 9999:04d}-4e5f-8a9b-0c1d2e3f4a5b",
                "endpoint_type": "computer",
                "user_id": f"5e6f7a8b-{n % 7777:04d}-4c1d-9e2f-3a4b5c6d7e8f",
                "source": f"CORP\\user{n % 97}",
                "customer_id": "816f36ee-dd2e-4ccd-bb12-c3b1b8b2f8e0",
                "tenant": {"id": "816f36ee-dd2e-4ccd-bb12-c3b1b8b2f8e0", "name": "Acme"},
                "created_at": moment.isoformat().replace("+00:00", "Z"),
                "when": moment.isoformat().replace("+00:00", "Z"),
                "threat": "Mal/Generic-S",
                "origin": "ML",
            },
            separators=(",", ":"),
        )
        metadata = {
            "_source": "Sophos East",
            "_sourceCategory": "sophos/central/events",
            "_collector": "Hosted EU",
            "_sourceName": "Events",
            "tenant": "Acme",
            "_siemEventID": "malware",
        }
        out.append(Outgoing(n + 1, raw, metadata, moment, moment))
    return out


def batches(stored, kind):
    """Consecutive batches within the kind's message and byte limits, cut as the delivery engine
    cuts them (collector.delivery.runs.batches; not imported, the engine is being reworked)."""
    batch, size = [], 0
    for message in stored:
        cost = kind.encoded_size(message)
        if batch and (len(batch) >= kind.max_batch_messages or size + cost > kind.max_batch_bytes):
            yield batch
            batch, size = [], 0
        batch.append(message)
        size += cost
    if batch:
        yield batch


def phase_send(receiver_url: str, count: int, runs: int) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sumosources.settings")
    import django

    django.setup()
    import requests

    from collector.destinations.http import compress
    from collector.destinations.webhook import WebhookKind, WebhookSession

    kind = WebhookKind()
    config = {"url": f"{receiver_url}/webhook", "payload": "ndjson", "gzip": True, "auth": "none"}
    stored = messages(count)
    cut = list(batches(stored, kind))
    bodies = [b"\n".join(WebhookSession.encode(m) for m in batch) + b"\n" for batch in cut]
    raw_bytes = sum(len(b) for b in bodies)
    compressed = [compress(body) for body in bodies]

    def verify(receiver_count: int) -> None:
        if receiver_count != count:
            raise SystemExit(f"the receiver counted {receiver_count} messages, not {count}")

    def counted() -> int:
        return int(requests.get(f"{receiver_url}/count?reset", timeout=10).text)

    def kind_run() -> float:
        started = time.perf_counter()
        with kind.open(config=config, secret="") as session:
            for batch in cut:
                session.send(batch)
        seconds = time.perf_counter() - started
        verify(counted())
        return seconds

    def bare_run(payloads, gzip_each: bool) -> float:
        headers = {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
        url = f"{receiver_url}/webhook"
        started = time.perf_counter()
        with requests.Session() as session:
            for body in payloads:
                data = compress(body) if gzip_each else body
                response = session.post(url, data=data, headers=headers, timeout=(5, 30))
                response.raise_for_status()
        seconds = time.perf_counter() - started
        verify(counted())
        return seconds

    counted()  # start from zero
    kind_s, bare_s, wire_s = [], [], []
    for _ in range(runs):  # interleaved, so a noisy neighbour hurts all three alike
        kind_s.append(kind_run())
        bare_s.append(bare_run(bodies, gzip_each=True))
        wire_s.append(bare_run(compressed, gzip_each=False))
    return {
        "messages": count,
        "batches": len(cut),
        "raw_mb": raw_bytes / 1e6,
        "gzip_mb": sum(len(c) for c in compressed) / 1e6,
        "kind": count / min(kind_s),
        "ceiling": count / min(bare_s),
        "wire": count / min(wire_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--phase", choices=["receiver"], default=None)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.phase == "receiver":
        phase_receiver(args.port)
        return
    receiver = ReceiverProcess()
    try:
        result = phase_send(receiver.url, args.messages, args.runs)
    finally:
        receiver.stop()
    ratio = result["kind"] / result["ceiling"]
    print(
        f"{result['messages']} messages in {result['batches']} batches, "
        f"{result['raw_mb']:.1f} MB NDJSON, {result['gzip_mb']:.1f} MB gzipped"
    )
    print(f"webhook kind (encode + gzip + POST): {result['kind']:>10,.0f} messages/s")
    print(f"bare loop (gzip + POST, same bytes): {result['ceiling']:>10,.0f} messages/s")
    print(f"wire only (POST of pre-gzipped):     {result['wire']:>10,.0f} messages/s")
    print(f"ratio kind / bare loop: {ratio:.2f} (targets: {TARGET_RATE:,} messages/s, "
          f"ratio {TARGET_RATIO})")  # fmt: skip
    if result["kind"] < TARGET_RATE or ratio < TARGET_RATIO:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
