"""A strict local receiver of the HTTP destination protocols, for tests (and chaos tests).

One threaded HTTP/1.1 server on 127.0.0.1 (keep-alive, optionally TLS) plays every protocol, told
apart by path:

====================================================  ==============================================
``POST /services/collector/event``, ``.../ack``        Splunk HEC (``Splunk <secret>``; indexer acks)
``POST [/<prefix>]/_bulk``                             Elasticsearch ``_bulk`` (``ApiKey <secret>`` or
                                                       basic ``elastic_user``:secret)
``POST /receiver/v1/http/<secret>``                    Sumo Logic HTTP Logs source
``POST /<tenant>/oauth2/v2.0/token``                   Microsoft identity platform (client credentials)
``POST /dataCollectionRules/<dcr>/streams/<stream>``   Azure Monitor Logs Ingestion API
``POST /webhook...``                                   a webhook (``webhook_auth``: none, bearer, basic)
====================================================  ==============================================

Each is checked as strictly as the real receiver (or more): method, path, auth header, content
type, gzip, body framing (``_bulk``'s trailing newline, NDJSON lines, arrays), per-request size
limits (1 MB for Sumo, Sentinel and HEC), the HEC event shape (string-only indexed fields), OAuth2
parameters, the record shapes our kinds promise. What is accepted is recorded, in arrival order:
``hec_events``, ``bulk_store`` (keyed by ``(index, _id)`` like Elasticsearch: a second ``create``
of an id answers 409, so re-sends are idempotent), ``sumo_records``, ``sentinel_records``,
``webhook_items``; ``requests`` and ``accepted`` count requests and items per protocol, and
``log`` holds one :class:`Seen` per request (headers, sizes, status; not the body).

Failures are scripted per protocol with :meth:`Receiver.script`: the next requests of that protocol
take the given actions in order, then behaviour is normal again:

* :class:`Answer` — a fixed status, body and headers (429 with ``Retry-After``, 5xx, 401/403 ...);
* :class:`Hang` — no answer until :meth:`Receiver.release` or :meth:`Receiver.stop` (a client's read
  timeout fires with no sleep race);
* :class:`Slow` — the normal answer, after a delay (a sluggish receiver, for chaos tests);
* :class:`Reset` — the body is read, then the connection is closed with a TCP reset, no answer;
* :class:`ItemErrors` — ``_bulk`` only: the listed item positions of the next request fail with a
  status (429, 400 ...) and are not stored.

Persistent conditions are attributes: ``elastic_reject`` (a ``_id`` → (status, type, reason)
refused on every attempt, like a mapping error), ``elastic_indexes`` (existing indexes; None lets
any be created), ``hec_ack`` / ``hec_ack_after`` (acks read true after that many polls; None: never),
``token_lifetime``, :meth:`revoke_tokens`, ``webhook_headers`` (required custom headers).

:meth:`stop` and :meth:`start` restart on the same port, keeping what was stored ("the receiver
restarted"). ``python -m tests.support.receivers --port 8089`` runs one on its own.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import gzip
import itertools
import json
import re
import secrets as secrets_module
import socket
import ssl
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HEC, HEC_ACK, BULK, SUMO, TOKEN, SENTINEL, WEBHOOK = (
    "hec", "hec-ack", "bulk", "sumo", "token", "sentinel", "webhook",
)  # fmt: skip
ONE_MB = 1_000_000
AZURE_SCOPE = "https://monitor.azure.com//.default"
API_VERSION = "2023-01-01"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HEC_KEYS = {"time", "host", "source", "sourcetype", "index", "event", "fields"}
_WEBHOOK_KEYS = {"id", "time", "metadata", "message"}


# --- scripted actions -------------------------------------------------------------------------
@dataclass
class Answer:
    status: int
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Hang:
    """Answer nothing until released (then the normal answer, which nobody reads any more)."""


@dataclass
class Slow:
    """Answer normally, but only after ``seconds`` (or at :meth:`Receiver.release`): for a chaos
    test's sluggish receiver. A test of a client's timeout wants :class:`Hang` (no timing)."""

    seconds: float


@dataclass
class Reset:
    """Read the request, then reset the connection without answering."""


@dataclass
class ItemErrors:
    """``_bulk``: item positions of the next request → the status they fail with (not stored)."""

    statuses: dict[int, int]
    reason: str = "rejected execution of coordinating operation"


@dataclass
class Seen:
    protocol: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    wire_size: int  # the body as sent
    size: int  # the body after gzip decoding
    status: int = 0
    peer: int = 0  # the client's port: one value across requests means one kept-alive connection


@dataclass
class SumoRecord:
    category: str
    name: str
    host: str
    fields: dict[str, str]
    message: Any


class Refused(Exception):
    """An answer other than success, raised from deep in a protocol check."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _hec_error(status: int, code: int, text: str, **extra) -> Refused:
    return Refused(status, {"text": text, "code": code, **extra})


def _es_error(status: int, kind: str, reason: str) -> Refused:
    cause = {"type": kind, "reason": reason}
    return Refused(status, {"error": {"root_cause": [cause], **cause}, "status": status})


def _azure_error(status: int, code: str, message: str) -> Refused:
    return Refused(status, {"error": {"code": code, "message": message}})


# --- the server -------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = False  # stop() joins every handler thread: nothing outlives a test
    block_on_close = True

    def __init__(self, address, handler, receiver: Receiver):
        self.receiver = receiver
        self.connections: set[socket.socket] = set()
        self.resets: set[int] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.connections_lock:
            self.connections.discard(request)
            reset = id(request) in self.resets
            self.resets.discard(id(request))
        if reset:  # no FIN first: the linger-0 close sends a bare RST
            request.close()
        else:
            super().shutdown_request(request)

    def handle_error(self, request, client_address):
        self.receiver.errors += 1  # a client that hung up, a TLS handshake refused: not ours

    def drop_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass

    def setup(self):
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    def do_GET(self):
        self._refuse_method()

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _refuse_method(self):
        self._read_body()
        self._send(405, {"error": "method not allowed"})

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raise Refused(411, {"error": "chunked bodies are not accepted"})
        length = self.headers.get("Content-Length")
        if length is None:
            raise Refused(411, {"error": "Content-Length is required"})
        return self.rfile.read(int(length))

    def _send(self, status: int, body: Any = b"", headers: dict[str, str] | None = None):
        if isinstance(body, dict | list):
            data = json.dumps(body).encode()
            content_type = "application/json"
        else:
            data = body.encode() if isinstance(body, str) else body
            content_type = "text/plain; charset=utf-8"
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if data:
                self.wfile.write(data)
            self.wfile.flush()
        except OSError:  # the client gave up (a timeout test): nothing to answer to
            self.close_connection = True

    def do_POST(self):
        receiver = self.server.receiver
        parts = urlsplit(self.path)
        protocol = receiver.protocol_of(parts.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        seen = Seen(
            protocol or "unknown", "POST", parts.path, parse_qs(parts.query), headers, 0, 0,
            peer=self.client_address[1],
        )  # fmt: skip
        try:
            body = self._read_body()
        except Refused as refused:
            self.close_connection = True
            self._send(refused.status, refused.body, refused.headers)
            return
        seen.wire_size = len(body)
        with receiver.lock:
            receiver.log.append(seen)
            if protocol:
                receiver.requests[protocol] += 1
            action = receiver.next_action(protocol)
        if isinstance(action, Reset):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with self.server.connections_lock:
                self.server.resets.add(id(self.request))
            self.close_connection = True
            return
        if isinstance(action, Hang):
            receiver.released.wait()
        elif isinstance(action, Slow):
            receiver.released.wait(action.seconds)
        if isinstance(action, Answer):
            seen.status = action.status
            self._send(action.status, action.body, action.headers)
            return
        try:
            if protocol is None:
                raise Refused(404, {"error": f"no such endpoint {parts.path}"})
            decoded = receiver.decode(headers, body)
            seen.size = len(decoded)
            status, answer, extra = receiver.handle(
                protocol, parts, headers, decoded, action=action
            )
        except Refused as refused:
            status, answer, extra = refused.status, refused.body, refused.headers
        except Exception as exc:  # a bug of the receiver: recorded, so a test can fail on it
            with receiver.lock:
                receiver.problems.append(f"{protocol}: {exc!r}")
            status, answer, extra = 500, {"error": "receiver bug"}, {}
        seen.status = status
        self._send(status, answer, extra)


class Receiver:
    """See the module docstring. ``secret`` is the one credential every protocol expects."""

    def __init__(
        self,
        *,
        port: int = 0,
        secret: str = "receiver-Secret-0123456789abcdef",
        tls: tuple[str, str] | None = None,
    ):
        self.secret = secret
        self.tls = tls
        self.port = port
        self.lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.released = threading.Event()
        self.errors = 0  # connections that failed below HTTP (client hung up, TLS refused)
        self.problems: list[str] = []  # exceptions in the receiver itself: tests assert none
        # What every protocol expects.
        self.elastic_user = "elastic"
        self.client_id = "00000000-0000-4000-8000-00000000c11e"
        self.dcr = "dcr-0123456789abcdef0123456789abcdef"
        self.stream = "Custom-SumoSources"
        self.token_lifetime = 3599
        self.hec_ack = False
        self.hec_ack_after: int | None = 0
        self.hec_indexes: set[str] | None = None
        self.max_hec_bytes = ONE_MB
        self.elastic_indexes: set[str] | None = None
        self.elastic_reject: dict[str, tuple[int, str, str]] = {}
        self.webhook_auth = "none"
        self.webhook_user = "hook"
        self.webhook_headers: dict[str, str] = {}
        self.webhook_status = 200
        self.max_webhook_bytes = 50 * ONE_MB
        self.reset_records()

    def reset_records(self) -> None:
        with self.lock:
            self.log: list[Seen] = []
            self.requests: collections.Counter[str] = collections.Counter()
            self.accepted: collections.Counter[str] = collections.Counter()
            self.hec_events: list[dict] = []
            self.bulk_store: dict[tuple[str, str], dict] = {}
            self.sumo_records: list[SumoRecord] = []
            self.sentinel_records: list[dict] = []
            self.webhook_items: list[dict] = []
            self.tokens: dict[str, float] = {}  # issued access token -> monotonic expiry
            self._actions: dict[str | None, collections.deque] = collections.defaultdict(
                collections.deque
            )
            self._ack_ids = itertools.count()
            self._ack_polls: dict[tuple[str, int], int] = {}

    # --- running --------------------------------------------------------------------------
    def start(self) -> Receiver:
        server = _Server(("127.0.0.1", self.port), _Handler, self)
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            # The handshake happens in each handler thread, so a slow client never blocks accept.
            server.socket = context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = server.server_address[1]
        self.released = threading.Event()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and close every connection; the port stays ours for :meth:`start`."""
        server, self._server = self._server, None
        if server is None:
            return
        self.released.set()
        server.shutdown()
        server.drop_connections()
        server.server_close()  # joins the handler threads
        if self._thread is not None:
            self._thread.join()

    def release(self) -> None:
        """Let every :class:`Hang` answer now."""
        self.released.set()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def sumo_url(self) -> str:
        return f"{self.url}/receiver/v1/http/{self.secret}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/72f988bf-0000-4000-8000-000000000001/oauth2/v2.0/token"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhook"

    # --- scripting ------------------------------------------------------------------------
    def script(self, protocol: str, *actions) -> None:
        with self.lock:
            self._actions[protocol].extend(actions)

    def next_action(self, protocol: str | None):
        queue = self._actions.get(protocol)
        return queue.popleft() if queue else None

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def docs(self, index: str | None = None) -> list[dict]:
        with self.lock:
            return [doc for (i, _id), doc in self.bulk_store.items() if index in (None, i)]

    # --- protocols ------------------------------------------------------------------------
    @staticmethod
    def protocol_of(path: str) -> str | None:
        if path == "/services/collector/event":
            return HEC
        if path == "/services/collector/ack":
            return HEC_ACK
        if path == "/_bulk" or path.endswith("/_bulk"):
            return BULK
        if path.startswith("/receiver/v1/http/"):
            return SUMO
        if re.fullmatch(r"/[^/]+/oauth2/v2\.0/token", path):
            return TOKEN
        if path.startswith("/dataCollectionRules/"):
            return SENTINEL
        if path == "/webhook" or path.startswith("/webhook/"):
            return WEBHOOK
        return None

    @staticmethod
    def decode(headers: dict[str, str], body: bytes) -> bytes:
        encoding = (headers.get("content-encoding") or "").strip().lower()
        if not encoding or encoding == "identity":
            return body
        if encoding != "gzip":
            raise Refused(415, {"error": f"Content-Encoding {encoding} is not supported"})
        try:
            return gzip.decompress(body)
        except (OSError, EOFError, zlib.error):
            raise Refused(400, {"error": "the gzip body could not be decoded"})

    def handle(self, protocol, parts, headers, body, *, action=None):
        handler = {
            HEC: self._hec,
            HEC_ACK: self._hec_ack,
            BULK: self._bulk,
            SUMO: self._sumo,
            TOKEN: self._token,
            SENTINEL: self._sentinel,
            WEBHOOK: self._webhook,
        }[protocol]
        return handler(parts, headers, body, action)

    # Splunk HEC ---------------------------------------------------------------------------
    def _hec_auth(self, headers):
        value = headers.get("authorization")
        if not value:
            raise _hec_error(401, 2, "Token is required")
        scheme, _, token = value.partition(" ")
        if scheme != "Splunk" or not token:
            raise _hec_error(401, 3, "Invalid authorization")
        if token != self.secret:
            raise _hec_error(403, 4, "Invalid token")

    def _hec_channel(self, headers, parts) -> str:
        channel = headers.get("x-splunk-request-channel") or "".join(
            parse_qs(parts.query).get("channel", [])
        )
        if not channel:
            raise _hec_error(400, 10, "Data channel is missing")
        if not _GUID.match(channel):
            raise _hec_error(400, 11, "Invalid data channel")
        return channel

    def _hec(self, parts, headers, body, action):
        self._hec_auth(headers)
        if len(body) > self.max_hec_bytes:
            raise Refused(413, {"text": "Content too large", "code": 6})
        channel = self._hec_channel(headers, parts) if self.hec_ack else ""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise _hec_error(400, 6, "Invalid data format")
        decoder = json.JSONDecoder()
        events, pos = [], 0
        while True:
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
            if pos >= len(text):
                break
            number = len(events)
            try:
                event, pos = decoder.raw_decode(text, pos)
            except ValueError:
                raise _hec_error(400, 6, "Invalid data format", **{"invalid-event-number": number})
            self._check_hec_event(event, number)
            events.append(event)
        if not events:
            raise _hec_error(400, 5, "No data")
        with self.lock:
            self.hec_events.extend(events)
            self.accepted[HEC] += len(events)
            answer = {"text": "Success", "code": 0}
            if self.hec_ack:
                ack_id = next(self._ack_ids)
                self._ack_polls[(channel, ack_id)] = 0
                answer["ackId"] = ack_id
        return 200, answer, {}

    def _check_hec_event(self, event, number):
        where = {"invalid-event-number": number}
        if not isinstance(event, dict):
            raise _hec_error(400, 6, "Invalid data format", **where)
        if "event" not in event:
            raise _hec_error(400, 12, "Event field is required", **where)
        if event["event"] in ("", None, {}, []):
            raise _hec_error(400, 13, "Event field cannot be blank", **where)
        if set(event) - _HEC_KEYS:
            raise _hec_error(400, 6, "Invalid data format", **where)
        moment = event.get("time")
        if moment is not None and (isinstance(moment, bool) or not isinstance(moment, int | float)):
            raise _hec_error(400, 6, "Invalid data format", **where)
        for key in ("host", "source", "sourcetype", "index"):
            if key in event and not isinstance(event[key], str):
                raise _hec_error(400, 6, "Invalid data format", **where)
        index = event.get("index")
        if index is not None and self.hec_indexes is not None and index not in self.hec_indexes:
            raise _hec_error(400, 7, "Incorrect index", **where)
        fields = event.get("fields", {})
        if not isinstance(fields, dict) or not all(
            isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
            for v in fields.values()
        ):
            raise _hec_error(400, 15, "Error in handling indexed fields", **where)

    def _hec_ack(self, parts, headers, body, action):
        self._hec_auth(headers)
        if not self.hec_ack:
            raise _hec_error(400, 14, "ACK is disabled")
        channel = self._hec_channel(headers, parts)
        try:
            ids = json.loads(body)["acks"]
            assert isinstance(ids, list) and all(type(i) is int for i in ids)
        except (ValueError, KeyError, TypeError, AssertionError):
            raise _hec_error(400, 6, "Invalid data format")
        answer = {}
        with self.lock:
            for ack_id in ids:
                key = (channel, ack_id)
                if key not in self._ack_polls:
                    answer[str(ack_id)] = False
                    continue
                self._ack_polls[key] += 1
                after = self.hec_ack_after
                answer[str(ack_id)] = after is not None and self._ack_polls[key] > after
        return 200, {"acks": answer}, {}

    # Elasticsearch _bulk ------------------------------------------------------------------
    def _bulk_auth(self, headers):
        value = headers.get("authorization") or ""
        basic = base64.b64encode(f"{self.elastic_user}:{self.secret}".encode()).decode()
        if value not in (f"ApiKey {self.secret}", f"Basic {basic}"):
            reason = (
                "missing authentication credentials for REST request [/_bulk]"
                if not value
                else "unable to authenticate with provided credentials"
            )
            refused = _es_error(401, "security_exception", reason)
            refused.headers = {"WWW-Authenticate": 'ApiKey, Basic realm="security"'}
            raise refused

    def _bulk(self, parts, headers, body, action):
        self._bulk_auth(headers)
        content_type = (headers.get("content-type") or "").split(";")[0].strip()
        if content_type != "application/x-ndjson":
            raise _es_error(
                406,
                "media_type_header_exception",
                f"Content-Type [{content_type}] is not supported",
            )
        if not body.endswith(b"\n"):
            raise _es_error(
                400,
                "illegal_argument_exception",
                "The bulk request must be terminated by a newline [\\n]",
            )
        prefix = parts.path[: -len("/_bulk")].strip("/")
        lines = body[:-1].split(b"\n")
        if len(lines) % 2:
            raise _es_error(400, "illegal_argument_exception", "Malformed action/metadata line")
        failures = action.statuses if isinstance(action, ItemErrors) else {}
        items = []
        with self.lock:
            for position in range(len(lines) // 2):
                try:
                    meta = json.loads(lines[2 * position])
                    doc = json.loads(lines[2 * position + 1])
                except ValueError:
                    raise _es_error(400, "x_content_parse_exception", "Failed to parse a line")
                if not isinstance(meta, dict) or list(meta) != ["create"]:
                    raise _es_error(
                        400, "illegal_argument_exception", "Only create actions are expected here"
                    )
                target = meta["create"]
                index, doc_id = target.get("_index") or prefix, target.get("_id")
                if not index or not isinstance(doc_id, str) or not doc_id:
                    raise _es_error(
                        400, "action_request_validation_exception", "index and _id are required"
                    )
                if not isinstance(doc, dict):
                    raise _es_error(400, "mapper_parsing_exception", "a document is a JSON object")
                result = {"_index": index, "_id": doc_id}
                if (index, doc_id) in self.bulk_store:
                    result.update(
                        status=409,
                        error={
                            "type": "version_conflict_engine_exception",
                            "reason": f"[{doc_id}]: version conflict, document already exists "
                            "(current version [1])",
                        },
                    )
                elif self.elastic_indexes is not None and index not in self.elastic_indexes:
                    result.update(
                        status=404,
                        error={
                            "type": "index_not_found_exception",
                            "reason": f"no such index [{index}]",
                        },
                    )
                elif doc_id in self.elastic_reject:
                    status, kind, reason = self.elastic_reject[doc_id]
                    result.update(status=status, error={"type": kind, "reason": reason})
                elif position in failures:
                    status = failures[position]
                    kind = "es_rejected_execution_exception" if status == 429 else "exception"
                    result.update(status=status, error={"type": kind, "reason": action.reason})
                else:
                    self.bulk_store[(index, doc_id)] = doc
                    self.accepted[BULK] += 1
                    result.update(status=201, result="created", _version=1)
                items.append({"create": result})
        errors = any(item["create"]["status"] >= 300 for item in items)
        return 200, {"took": 1, "errors": errors, "items": items}, {}

    # Sumo Logic HTTP source ---------------------------------------------------------------
    def _sumo(self, parts, headers, body, action):
        if parts.path != f"/receiver/v1/http/{self.secret}":
            raise Refused(401, "Unauthorized")
        if len(body) > ONE_MB:
            raise Refused(413, "Request Entity Too Large")

        def header(name):  # http.server reads headers as latin-1; the kind sends UTF-8
            try:
                return (headers.get(name) or "").encode("latin-1").decode("utf-8")
            except UnicodeError:
                raise Refused(400, f"{name} is not UTF-8")

        fields = {}
        for pair in filter(None, header("x-sumo-fields").split(",")):
            name, sep, value = pair.partition("=")
            if not sep or not name or "=" in value:
                raise Refused(400, f"X-Sumo-Fields is malformed near {pair!r}")
            fields[name] = value
        try:
            lines = body.decode("utf-8").split("\n")
            messages = [json.loads(line) for line in lines if line]
        except ValueError:
            raise Refused(400, "expected one JSON message per line")
        with self.lock:
            for message in messages:
                self.sumo_records.append(
                    SumoRecord(
                        header("x-sumo-category"),
                        header("x-sumo-name"),
                        header("x-sumo-host"),
                        fields,
                        message,
                    )
                )
            self.accepted[SUMO] += len(messages)
        return 200, b"", {}

    # Microsoft identity platform ----------------------------------------------------------
    def _token(self, parts, headers, body, action):
        if (headers.get("content-type") or "").split(";")[0] != "application/x-www-form-urlencoded":
            raise Refused(
                400,
                {
                    "error": "invalid_request",
                    "error_description": "AADSTS900144: form body expected",
                },
            )
        form = {k: v[-1] for k, v in parse_qs(body.decode("ascii", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            raise Refused(
                400, {"error": "unsupported_grant_type", "error_description": "AADSTS70003"}
            )
        if form.get("client_id") != self.client_id:
            raise Refused(
                400,
                {
                    "error": "unauthorized_client",
                    "error_description": f"AADSTS700016: Application with identifier "
                    f"'{form.get('client_id')}' was not found in the directory.",
                },
            )
        if form.get("client_secret") != self.secret:
            raise Refused(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                },
            )
        if form.get("scope") != AZURE_SCOPE:
            raise Refused(
                400, {"error": "invalid_scope", "error_description": "AADSTS70011: bad scope"}
            )
        token = secrets_module.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = time.monotonic() + self.token_lifetime
            self.accepted[TOKEN] += 1
        return (
            200,
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": token,
            },
            {},
        )

    # Azure Monitor Logs Ingestion ---------------------------------------------------------
    def _sentinel(self, parts, headers, body, action):
        match = re.fullmatch(r"/dataCollectionRules/([^/]+)/streams/([^/]+)", parts.path)
        if not match:
            raise _azure_error(404, "NotFound", "no such resource")
        scheme, _, token = (headers.get("authorization") or "").partition(" ")
        with self.lock:
            valid = scheme == "Bearer" and self.tokens.get(token, 0) > time.monotonic()
        if not valid:
            raise _azure_error(
                401, "InvalidToken", "The authentication token provided is invalid or expired."
            )
        if parse_qs(parts.query).get("api-version") != [API_VERSION]:
            raise _azure_error(400, "UnsupportedApiVersion", "api-version 2023-01-01 is required")
        dcr, stream = match.groups()
        if dcr != self.dcr:
            raise _azure_error(
                404, "NotFound", f"Data collection rule with immutable Id '{dcr}' not found."
            )
        if stream != self.stream:
            raise _azure_error(
                400, "InvalidStream", f"Stream '{stream}' is not declared in the rule."
            )
        if (headers.get("content-type") or "").split(";")[0] != "application/json":
            raise _azure_error(415, "UnsupportedMediaType", "application/json is required")
        if len(body) > ONE_MB:
            raise _azure_error(
                413, "ContentLengthLimitExceeded", "The request is larger than 1 MB."
            )
        try:
            records = json.loads(body)
        except ValueError:
            raise _azure_error(400, "InvalidContent", "The body is not JSON.")
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise _azure_error(400, "InvalidContent", "The body must be an array of objects.")
        for record in records:
            try:
                dt.datetime.fromisoformat(record["TimeGenerated"])
            except (KeyError, TypeError, ValueError):
                raise _azure_error(400, "InvalidContent", "Every record needs TimeGenerated.")
        with self.lock:
            self.sentinel_records.extend(records)
            self.accepted[SENTINEL] += len(records)
        return 204, b"", {}

    # Webhook ------------------------------------------------------------------------------
    def _webhook(self, parts, headers, body, action):
        given = headers.get("authorization") or ""
        if self.webhook_auth == "bearer" and given != f"Bearer {self.secret}":
            raise Refused(401, {"message": "bad bearer token"})
        if self.webhook_auth == "basic":
            pair = base64.b64encode(f"{self.webhook_user}:{self.secret}".encode()).decode()
            if given != f"Basic {pair}":
                raise Refused(401, {"message": "bad credentials"})
        for name, value in self.webhook_headers.items():
            if headers.get(name.lower()) != value:
                raise Refused(400, {"message": f"header {name} is required"})
        if len(body) > self.max_webhook_bytes:
            raise Refused(413, {"message": "too large"})
        content_type = (headers.get("content-type") or "").split(";")[0].strip()
        try:
            if content_type == "application/x-ndjson":
                if body and not body.endswith(b"\n"):
                    raise Refused(400, {"message": "NDJSON must end with a newline"})
                items = [json.loads(line) for line in body.decode("utf-8").split("\n")[:-1]]
            elif content_type == "application/json":
                items = json.loads(body)
                if not isinstance(items, list):
                    raise Refused(400, {"message": "expected a JSON array"})
            else:
                raise Refused(415, {"message": f"unsupported Content-Type {content_type!r}"})
        except ValueError:
            raise Refused(400, {"message": "malformed JSON"})
        for item in items:
            if (
                not isinstance(item, dict)
                or set(item) - {"test"} != _WEBHOOK_KEYS
                or not isinstance(item["id"], int)
                or not isinstance(item["metadata"], dict)
                or not isinstance(item["time"], str)
            ):
                raise Refused(400, {"message": "unexpected item shape"})
            try:
                dt.datetime.fromisoformat(item["time"])
            except ValueError:
                raise Refused(400, {"message": "time is not ISO 8601"})
        with self.lock:
            self.webhook_items.extend(items)
            self.accepted[WEBHOOK] += len(items)
        return self.webhook_status, {"accepted": len(items)}, {}


# --- how each destination kind reaches it (tests and chaos tests) -----------------------------
def destination(receiver: Receiver, kind: str, **overrides) -> tuple[dict[str, Any], str]:
    """``(config, secret)`` that point destination ``kind`` (the API's destinationType) at
    ``receiver``; ``overrides`` replace config keys (``secret=`` the secret)."""
    secret = overrides.pop("secret", receiver.secret)
    if kind == "SplunkHEC":
        config = {"url": receiver.url, "index": "main", "sourcetype": "_json", "source": "",
                  "host": "", "channel": "", "ack": False}  # fmt: skip
    elif kind == "ElasticBulk":
        config = {"url": receiver.url, "index": "sumo-logs", "username": "", "auth": "apikey"}
    elif kind == "SumoHTTP":
        config = {"endpoint": receiver.url}
        secret = overrides.pop("url", None) or (
            receiver.sumo_url.replace(receiver.secret, secret) if secret else ""
        )
    elif kind == "SentinelLogsIngestion":
        config = {"url": receiver.url, "dcrImmutableId": receiver.dcr,
                  "streamName": receiver.stream, "tokenUrl": receiver.token_url,
                  "clientId": receiver.client_id}  # fmt: skip
    elif kind == "Webhook":
        config = {"url": receiver.webhook_url, "payload": "ndjson", "headers": {},
                  "auth": receiver.webhook_auth, "username": receiver.webhook_user,
                  "gzip": True}  # fmt: skip
    else:
        raise LookupError(kind)
    config["caBundle"] = ""
    config.update(overrides)
    return config, secret


PROTOCOL_OF_KIND = {
    "SplunkHEC": HEC,
    "ElasticBulk": BULK,
    "SumoHTTP": SUMO,
    "SentinelLogsIngestion": SENTINEL,
    "Webhook": WEBHOOK,
}


def main() -> None:  # pragma: no cover - a tool for people
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--secret", default="receiver-Secret-0123456789abcdef")
    args = parser.parse_args()
    receiver = Receiver(port=args.port, secret=args.secret).start()
    print(f"listening on {receiver.url} (secret {args.secret}); Ctrl-C stops", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        receiver.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
