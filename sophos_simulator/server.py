"""HTTP plumbing of the simulator: listener, TLS, keep-alive, faults, counters, control API.

One listener serves every host: the token endpoint and global API at ``/``, each region's data
host under ``/region/<name>``, and the control interface under ``/_simulator/``. HTTP/1.1
keep-alive with exact Content-Length; TCP_NODELAY so a page is not held back waiting for an ACK.

The control interface has no credential, so it guards against the ways a web page in a browser on
this machine could reach it (see :meth:`Handler._control_refusal`): loopback clients only, a
``Host`` naming this listener (DNS rebinding), no foreign ``Origin`` and JSON bodies only
(cross-site form and ``text/plain`` posts, which need no CORS preflight). The vendor API paths
keep no such check: like Sophos's, they answer whoever presents a bearer token, and they hold only
generated data.
"""

from __future__ import annotations

import base64
import email.utils
import ipaddress
import json
import logging
import re
import socket
import socketserver
import ssl
import struct
import threading
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from sophos_simulator import endpoints
from sophos_simulator.endpoints import Answer, Rejected, Request

if TYPE_CHECKING:
    from sophos_simulator.core import Simulator

log = logging.getLogger("sophos_simulator")

ROUTES = {
    ("POST", "/api/v2/oauth2/token"): ("Token", endpoints.token),
    ("GET", "/whoami/v1"): ("Whoami", endpoints.whoami),
    ("GET", "/partner/v1/tenants"): ("Tenants", partial(endpoints.tenants, kind="partner")),
    ("GET", "/organization/v1/tenants"): (
        "Tenants",
        partial(endpoints.tenants, kind="organization"),
    ),
    ("GET", "/siem/v1/events"): ("Events", partial(endpoints.siem, stream="Events")),
    ("GET", "/siem/v1/alerts"): ("SiemAlerts", partial(endpoints.siem, stream="SiemAlerts")),
    ("GET", "/common/v1/alerts"): ("Alerts", endpoints.common_alerts),
    ("POST", "/common/v1/alerts/search"): ("Alerts", endpoints.alerts_search),
    ("GET", "/endpoint/v1/endpoints"): ("Endpoints", endpoints.endpoint_list),
}
# Paths with one trailing segment of their own (an id): (method, prefix) -> (API, endpoint).
PREFIX_ROUTES = {
    ("GET", "/endpoint/v1/endpoints/"): ("Endpoints", endpoints.endpoint_single),
}
_PATHS = {path for _method, path in ROUTES}


def route(method: str, path: str):
    """The (API, endpoint) serving ``method path``, or None."""
    entry = ROUTES.get((method, path))
    if entry is not None:
        return entry
    for (route_method, prefix), prefixed in PREFIX_ROUTES.items():
        rest = path[len(prefix) :]
        if method == route_method and path.startswith(prefix) and rest and "/" not in rest:
            return prefixed
    return None


def _known_path(path: str) -> bool:
    """Whether some method is served at ``path`` (a wrong method is then 405, not 404)."""
    return path in _PATHS or any(
        path.startswith(prefix) and path[len(prefix) :] and "/" not in path[len(prefix) :]
        for _method, prefix in PREFIX_ROUTES
    )


def control_hosts(*, port: int, scheme: str, bound: str, public: str) -> frozenset[str]:
    """The ``Host`` values (lower case) the control interface accepts: this listener's port on
    127.0.0.1, localhost, [::1], the advertised ``public`` host and the ``bound`` address (unless
    it is the wildcard), also without the port when it is the scheme's default."""
    bound = bound.strip("[]")
    names = {"127.0.0.1", "localhost", "[::1]", public}
    if bound not in ("", "0.0.0.0", "::"):  # noqa: S104 (naming the wildcard address, not binding it)
        names.add(f"[{bound}]" if ":" in bound else bound)
    hosts = {f"{name}:{port}" for name in names}
    if port == {"http": 80, "https": 443}[scheme]:
        hosts |= names  # clients leave a default port out of Host and Origin
    return frozenset(host.lower() for host in hosts)


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type header is ``application/json`` (parameters such as charset allowed)."""
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


def is_loopback(address: str) -> bool:
    """Whether a client address is this machine (the control interface answers only those)."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SophosCentralSimulator/1.0"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are closed after this many seconds
    server: SimulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    # --- dispatch ---------------------------------------------------------------------------

    def _dispatch(self) -> None:
        sim = self.server.sim
        split = urlsplit(self.path)
        path = split.path
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > 10 * 1024 * 1024:
            self.close_connection = True
            self._write(endpoints.data_error(sim, 400, "badRequest", "Bad Content-Length"))
            return
        body = self.rfile.read(length) if length else b""
        if path == "/_simulator" or path.startswith("/_simulator/"):
            self._write(self._control(sim, path, parse_qs(split.query), body))
            return
        region = None
        route_path = path
        if path.startswith("/region/"):
            parts = path.split("/", 3)
            region = parts[2]
            route_path = "/" + (parts[3] if len(parts) > 3 else "")
        request = Request(
            self.command,
            route_path,
            region,
            parse_qs(split.query, keep_blank_values=True),
            self.headers,
            body,
        )
        entry = route(self.command, route_path)
        if entry is None:
            status = 405 if _known_path(route_path) else 404
            answer = endpoints.data_error(
                sim, status, STATUS_NAMES[status], HTTPStatus(status).phrase
            )
            self._finish(path, answer)
            return
        api, endpoint = entry
        sim.pause(sim.config.latency)
        fault = sim.faults.take(api, self.headers.get("X-Tenant-ID"))
        if fault is not None:
            if fault.kind == "reset":
                self._reset()
                sim.count_request(path, 0)
                return
            if fault.kind == "slow":
                sim.pause(fault.delay)
                fault = None
            elif fault.kind in ("status", "malformed", "wrong_shape", "body"):
                self._finish(path, _fault_answer(sim, api, fault))
                return
        try:
            answer = endpoint(sim, request)
        except Rejected as rejected:
            answer = rejected.answer
        if fault is not None and fault.kind == "truncated":
            answer = Answer(
                answer.status, answer.body[: max(1, len(answer.body) // 2)], answer.headers
            )
        if fault is not None and fault.kind == "bad_cursor" and answer.status == 200:
            answer.body = _BAD_CURSOR.sub(_garbage_cursor, answer.body)
        self._finish(path, answer, drop=fault is not None and fault.kind == "drop")

    def _finish(self, path: str, answer: Answer, drop: bool = False) -> None:
        # Counted before writing: a client that has read the answer must find it counted. So
        # "served" means handed to the socket whole; a dropped answer is not served.
        if answer.on_sent is not None and not drop:
            answer.on_sent()
        self.server.sim.count_request(path, answer.status)
        self._write(answer, drop=drop)

    def _write(self, answer: Answer, drop: bool = False) -> bool:
        """Send an answer; with ``drop``, only half its body before closing. True if sent whole."""
        body = answer.body
        try:
            reason = HTTPStatus(answer.status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [
            f"HTTP/1.1 {answer.status} {reason}",
            f"Server: {self.server_version}",
            f"Date: {email.utils.formatdate(self.server.sim.now(), usegmt=True)}",
            f"Content-Length: {len(body)}",
        ]
        if answer.content_type and body:
            lines.append(f"Content-Type: {answer.content_type}")
        lines.extend(f"{k}: {v}" for k, v in answer.headers.items())
        if drop:
            self.close_connection = True
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            if drop:
                self.wfile.write(head + body[: len(body) // 2])
                self.connection.shutdown(socket.SHUT_RDWR)
                return False
            if len(body) < 65536:
                self.wfile.write(head + body)
            else:
                self.wfile.write(head)
                self.wfile.write(body)
            return True
        except OSError:
            self.close_connection = True
            return False

    def _reset(self) -> None:
        """Abort the connection with a TCP reset instead of an answer."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    # --- control interface ------------------------------------------------------------------

    def _control(
        self, sim: Simulator, path: str, query: dict[str, list[str]], body: bytes
    ) -> Answer:
        refusal = self._control_refusal(sim, body)
        if refusal is not None:
            return refusal
        try:
            data = json.loads(body) if body else {}
            if not isinstance(data, dict):
                raise ValueError("the request body must be a JSON object")
            return _control_route(
                sim, self.command, path, {k: v[-1] for k, v in query.items()}, data
            )
        except (ValueError, KeyError, TypeError) as exc:
            return endpoints.json_answer(400, {"error": str(exc)})

    def _control_refusal(self, sim: Simulator, body: bytes) -> Answer | None:
        """Why a control request is refused (403 or 415, as JSON), or None when it may go on.

        Loopback clients only, and even those may be a browser running someone else's page:
        a rebound DNS name brings a foreign ``Host`` (403); a cross-site fetch or form brings a
        foreign ``Origin`` (403); a form or ``text/plain`` post, which a page may send without a
        CORS preflight, brings a body or Content-Type that is not JSON (415).
        """
        refuse = endpoints.json_answer
        if not is_loopback(self.client_address[0]):
            return refuse(403, {"error": "the control interface answers loopback clients only"})
        hosts = self.server.control_hosts
        if (self.headers.get("Host") or "").strip().lower() not in hosts:
            return refuse(
                403, {"error": "the control interface answers requests for this listener only"}
            )
        origin = self.headers.get("Origin")
        if origin is not None and origin.strip().lower() not in {
            f"{sim.config.scheme}://{host}" for host in hosts
        }:
            return refuse(403, {"error": "the control interface answers same-origin requests only"})
        content_type = self.headers.get("Content-Type")
        if self.command != "GET" and (body or content_type) and not is_json(content_type):
            return refuse(
                415,
                {"error": "control requests with a body must be Content-Type: application/json"},
            )
        return None


STATUS_NAMES = {404: "notFound", 405: "methodNotAllowed"}
# The position a page hands on: next_cursor (SIEM) or pages.nextKey (Common Alerts). Neither
# value holds a quote, and a key in quotes cannot occur inside an item's (escaped) strings.
_BAD_CURSOR = re.compile(rb'"(next_cursor|nextKey)":\s*"[^"]*"')
# Opaque base64 like a real cursor, but of no cursor this API issued.
GARBAGE_CURSOR = base64.b64encode(b"not-a-cursor-of-this-api").decode()


def _garbage_cursor(match: re.Match) -> bytes:
    return b'"' + match.group(1) + b'":"' + GARBAGE_CURSOR.encode() + b'"'


def _fault_answer(sim: Simulator, api: str, fault) -> Answer:
    if fault.kind == "malformed":
        return Answer(200, b'{"has_more": true, "items": [{"id": "5bc48f19-3905-4f72-9f79", ')
    if fault.kind == "wrong_shape":
        return Answer(200, b'{"unexpected": ["this is not what the contract promises"]}')
    if fault.kind == "body":
        return Answer(fault.status or 200, (fault.body or "").encode())
    if fault.empty:
        answer = Answer(fault.status, b"", content_type=None)
    else:
        answer = endpoints.status_answer(sim, api, fault.status)
    if fault.retry_after is not None:
        answer.headers["Retry-After"] = fault.retry_after
    return answer


_FAULT_KEYS = ("kind", "api", "tenant", "status", "retry_after", "empty", "delay", "times", "body")


def _control_route(sim: Simulator, method: str, path: str, query: dict, data: dict) -> Answer:
    ok = endpoints.json_answer
    if path == "/_simulator/stats" and method == "GET":
        return ok(200, sim.stats())
    if path == "/_simulator/faults":
        if method == "GET":
            return ok(200, {"faults": sim.faults.list()})
        if method == "DELETE" or (method == "POST" and "clear" in data):
            filters = data.get("clear") if isinstance(data.get("clear"), dict) else {}
            filters = {
                **{k: v for k, v in query.items() if k in ("api", "tenant", "id")},
                **filters,
            }
            if "id" in filters:
                filters["id"] = int(filters["id"])
            return ok(200, {"cleared": sim.clear_faults(**filters)})
        if method == "POST":
            unknown = sorted(set(data) - set(_FAULT_KEYS))
            if unknown:
                raise ValueError(f"unknown fault settings: {', '.join(unknown)}")
            return ok(200, {"id": sim.set_fault(**data), "faults": sim.faults.list()})
    if path == "/_simulator/advance" and method == "POST":
        now = sim.advance(float(data.get("seconds", query.get("seconds", 0))))
        return ok(200, {"now": endpoints.iso_ms(int(now * 1000))})
    if path == "/_simulator/items" and method == "POST":
        added = sim.add_items(
            data.get("stream", "Events"),
            int(data.get("count", 1)),
            tenant=data.get("tenant"),
            late_seconds=float(data.get("late_seconds", 0.0)),
            event_type=data.get("event_type"),
            endpoint=data.get("endpoint"),
        )
        return ok(200, {"added": added})
    if path == "/_simulator/endpoints" and method == "GET":
        tenant = sim.tenant(query.get("tenant"))
        return ok(200, {"tenant": tenant.id, "endpoints": sim.endpoint_ids(tenant.id)})
    if path == "/_simulator/endpoints/touch" and method == "POST":
        if not isinstance(data.get("id"), str):
            raise ValueError("touch needs the endpoint's id")
        sim.touch_endpoint(data["id"], tenant=data.get("tenant"))
        return ok(200, {"touched": data["id"], "endpoint": sim.endpoint(data["id"])})
    if path == "/_simulator/tenants" and method == "GET":
        return ok(
            200,
            {
                "tenants": [
                    {
                        "id": t.id,
                        "name": t.name,
                        "region": t.region,
                        "apiHost": sim.region_host(t.region),
                    }
                    for t in sim.tenants
                ],
                "credentials": [
                    {
                        "clientId": c.client_id,
                        "idType": c.id_type,
                        "id": c.id,
                        "tenants": list(c.tenant_ids),
                    }
                    for c in sim.credentials
                ],
            },
        )
    if path == "/_simulator/expire-tokens" and method == "POST":
        sim.expire_tokens()
        return ok(200, {"expired": True})
    return ok(404, {"error": f"no control endpoint {method} {path}"})


class SimulatorHTTPServer(ThreadingHTTPServer):
    """A thread per connection; TLS handshakes happen in that thread, not in the accept loop."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256
    control_hosts: frozenset[str]  # the Host values the control interface accepts

    def __init__(
        self, address: tuple[str, int], sim: Simulator, ssl_context: ssl.SSLContext | None
    ):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sim = sim
        self.ssl_context = ssl_context
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn), which can take seconds.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), port
        # Known only now that port 0 has become a real port.
        self.control_hosts = control_hosts(
            port=port,
            scheme=self.sim.config.scheme,
            bound=str(host),
            public=self.sim.public_host,
        )

    def finish_request(self, request, client_address) -> None:
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if self.ssl_context is not None:
            request.settimeout(10)
            try:
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        with self._connections_lock:
            self._connections.add(request)
        try:
            self.RequestHandlerClass(request, client_address, self)
        except (ConnectionError, TimeoutError, ssl.SSLError):
            pass  # the client went away; nothing to answer
        finally:
            with self._connections_lock:
                self._connections.discard(request)
            if self.ssl_context is not None:
                try:
                    request.close()
                except OSError:
                    pass

    def handle_error(self, request, client_address) -> None:
        log.exception("simulator: error while serving %s", client_address)

    def close_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections so they end."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def make_server(sim: Simulator) -> SimulatorHTTPServer:
    cfg = sim.config
    context = None
    if cfg.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    host = cfg.host.strip("[]") or "127.0.0.1"
    return SimulatorHTTPServer((host, cfg.port), sim, context)
