"""The Sophos Central APIs as the simulator serves them, strict where the real API is strict.

Each endpoint takes the simulator and a parsed :class:`Request` and returns an :class:`Answer`;
the HTTP plumbing (faults, latency, writing, counting) is in :mod:`.server`. Page bodies are built
by joining pre-rendered item bytes, never by encoding items per request.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import datetime as dt
import hmac
import json
import math
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from sophos_simulator.catalog import EVENT_TYPE_INDEX, GEOGRAPHY, iso_ms
from sophos_simulator.inventory import VIEWS
from sophos_simulator.store import SEQ_MASK

if TYPE_CHECKING:
    from sophos_simulator.core import SimCredential, SimTenant, Simulator

JSON = "application/json"
CURSOR_TAG = "V2_CURSOR"
# ISO 8601 as the Common Alerts API takes it: at most milliseconds, Z or an offset (or no zone).
_ISO = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,3}))?(Z|[+-]\d\d:\d\d)?$")


@dataclass
class Request:
    method: str
    path: str  # without the /region/<name> prefix
    region: str | None
    query: dict[str, list[str]]
    headers: Any  # http.client.HTTPMessage
    body: bytes

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = JSON
    # Run just before the whole body is written: counts the items as served.
    on_sent: Callable[[], None] | None = None


class Rejected(Exception):
    """An endpoint refuses the request; ``answer`` is what the client gets."""

    def __init__(self, answer: Answer):
        super().__init__(answer.status)
        self.answer = answer


def json_answer(status: int, data: Any, **headers: str) -> Answer:
    return Answer(status, json.dumps(data, separators=(",", ":")).encode(), dict(headers))


def data_error(sim: Simulator, status: int, error: str, message: str) -> Answer:
    """The data APIs' error body: error, message, correlationId, requestId, createdAt."""
    return json_answer(
        status,
        {
            "error": error,
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "requestId": str(uuid.uuid4()),
            "createdAt": iso_ms(int(sim.now() * 1000)),
        },
    )


def token_error(status: int, code: str, message: str) -> Answer:
    """The token endpoint's error body: errorCode, message, trackingId."""
    return json_answer(
        status, {"errorCode": code, "message": message, "trackingId": str(uuid.uuid4())}
    )


STATUS_ERRORS = {
    400: ("badRequest", "Error parsing the query params or request body"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Access is denied"),
    404: ("notFound", "Not found"),
    429: ("tooManyRequests", "Too many requests"),
    500: ("internalServerError", "Internal server error"),
    502: ("badGateway", "Bad gateway"),
    503: ("serviceUnavailable", "Service unavailable"),
    504: ("gatewayTimeout", "Gateway timeout"),
}


def status_answer(sim: Simulator, api: str, status: int) -> Answer:
    error, message = STATUS_ERRORS.get(status, ("error", "Error"))
    if api == "Token":
        code = {400: "customer.validation", 401: "oauth.unauthorized"}.get(status, error)
        return token_error(status, code, message)
    return data_error(sim, status, error, message)


def _bad(sim: Simulator, message: str) -> Rejected:
    return Rejected(data_error(sim, 400, "badRequest", message))


def _int(sim: Simulator, req: Request, name: str, default: int, low: int, high: int) -> int:
    raw = req.param(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad(sim, f"{name} must be a whole number")
    if not low <= value <= high:
        raise _bad(sim, f"{name} must be between {low} and {high}")
    return value


# --- token, whoami, tenants -----------------------------------------------------------------


def token(sim: Simulator, req: Request) -> Answer:
    ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return token_error(400, "customer.validation", "Bad Request")
    try:
        form = {
            k: v[-1] for k, v in parse_qs(req.body.decode("utf-8"), strict_parsing=False).items()
        }
    except UnicodeDecodeError:
        return token_error(400, "customer.validation", "Bad Request")
    client_id = form.get("client_id", "")
    secret = form.get("client_secret", "")
    if form.get("grant_type") != "client_credentials" or not client_id or not secret:
        return token_error(400, "customer.validation", "Bad Request")
    if form.get("scope", "token") != "token":
        return token_error(400, "customer.validation", "Bad Request")
    cred = sim.credentials_by_client_id.get(client_id)
    if cred is None:
        return token_error(401, "oauth.client_app_does_not_exist", "Unauthorized")
    if not hmac.compare_digest(cred.client_secret.encode(), secret.encode()):
        return token_error(401, "oauth.invalid_client_secret", "Unauthorized")
    access = sim.issue_token(cred)
    return json_answer(
        200,
        {
            "access_token": access,
            "errorCode": "success",
            "expires_in": int(sim.config.token_lifetime),
            "message": "OK",
            "refresh_token": secrets.token_hex(16),
            "token_type": "bearer",
            "trackingId": str(uuid.uuid4()),
        },
    )


def authorise(sim: Simulator, req: Request) -> SimCredential:
    header = req.headers.get("Authorization") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Rejected(data_error(sim, 401, "unauthorized", "Missing or malformed bearer token"))
    cred = sim.token_owner(value.strip())
    if cred is None:
        raise Rejected(data_error(sim, 401, "unauthorized", "Invalid or expired token"))
    return cred


def whoami(sim: Simulator, req: Request) -> Answer:
    cred = authorise(sim, req)
    hosts = {"global": sim.url}
    if cred.id_type == "tenant":
        hosts["dataRegion"] = sim.region_host(sim.tenant_by_id[cred.id].region)
    return json_answer(200, {"id": cred.id, "idType": cred.id_type, "apiHosts": hosts})


def tenants(sim: Simulator, req: Request, *, kind: str) -> Answer:
    cred = authorise(sim, req)
    header = "X-Partner-ID" if kind == "partner" else "X-Organization-ID"
    if cred.id_type != kind:
        raise Rejected(
            data_error(sim, 403, "forbidden", f"This credential is not a {kind} credential")
        )
    owner = req.headers.get(header)
    if not owner:
        raise _bad(sim, f"Missing header {header}")
    if owner != cred.id:
        raise Rejected(data_error(sim, 403, "forbidden", "Access is denied"))
    limit = sim.config.tenants_max_page_size
    page = _int(sim, req, "page", 1, 1, 10**9)
    size = _int(sim, req, "pageSize", limit, 1, limit)
    managed = [sim.tenant_by_id[t] for t in cred.tenant_ids]
    chunk = managed[(page - 1) * size : page * size]
    pages: dict[str, Any] = {"current": page, "size": size, "maxSize": limit}
    if (req.param("pageTotal") or "").lower() == "true":
        pages["total"] = math.ceil(len(managed) / size)
        pages["items"] = len(managed)
    items = [_tenant_json(sim, t, kind, cred.id) for t in chunk]
    return json_answer(200, {"items": items, "pages": pages})


def _tenant_json(sim: Simulator, tenant: SimTenant, kind: str, owner: str) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "name": tenant.name,
        "showAs": tenant.name.split(" ")[0],
        "dataGeography": GEOGRAPHY.get(tenant.region, "US"),
        "dataRegion": tenant.region,
        "billingType": "term",
        kind: {"id": owner},
        "apiHost": sim.region_host(tenant.region),
        "status": "active",
    }


# --- data APIs --------------------------------------------------------------------------------


def data_tenant(sim: Simulator, req: Request) -> SimTenant:
    """The tenant a data call is for, after the checks the real API makes."""
    if req.region is None:
        raise Rejected(
            data_error(sim, 404, "notFound", "Data APIs are served on the tenant's apiHost")
        )
    cred = authorise(sim, req)
    tenant_id = req.headers.get("X-Tenant-ID")
    if not tenant_id:
        raise _bad(sim, "Missing header X-Tenant-ID")
    tenant = sim.tenant_by_id.get(tenant_id)
    if tenant is None or tenant_id not in cred.tenant_set:
        raise Rejected(data_error(sim, 403, "forbidden", "Access is denied"))
    if tenant.region != req.region:
        raise Rejected(
            data_error(sim, 403, "forbidden", f"Tenant is served by region {tenant.region}")
        )
    return tenant


def encode_cursor(time_ms: int, seq: int) -> str:
    return base64.b64encode(f"{CURSOR_TAG}|{time_ms}|{seq}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, int] | None:
    try:
        tag, time_ms, seq = base64.b64decode(cursor, validate=True).decode().split("|")
        if tag != CURSOR_TAG:
            return None
        return int(time_ms), int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def siem(sim: Simulator, req: Request, *, stream: str) -> Answer:
    """``/siem/v1/events`` and ``/siem/v1/alerts``: limit, from_date, cursor, exclude_types."""
    tenant = data_tenant(sim, req)
    cfg = sim.config
    limit = _int(
        sim, req, "limit", cfg.events_limit_default, cfg.events_limit_min, cfg.events_limit_max
    )
    cursor_text = req.param("cursor")
    cursor = None
    if cursor_text:
        cursor = decode_cursor(cursor_text)
        if cursor is None:
            raise _bad(sim, "Invalid cursor")
    from_date = None
    raw_from = req.param("from_date")
    if not cursor and raw_from not in (None, ""):
        try:
            from_date = int(raw_from)
        except ValueError:
            raise _bad(sim, "from_date must be a Unix timestamp in seconds")
    excluded: set[int] = set()
    if stream == "Events":
        for value in req.query.get("exclude_types", []):
            for name in value.split(","):
                if name.strip() in EVENT_TYPE_INDEX:
                    excluded.add(EVENT_TYPE_INDEX[name.strip()])
    with sim.lock:
        now_ms = int(sim.now() * 1000)
        oldest_ms = now_ms - int(cfg.window_hours * 3600 * 1000)
        if from_date is not None and from_date * 1000 < oldest_ms:
            raise _bad(sim, f"from_date must be within the last {cfg.window_hours:g} hours")
        sim.sync(tenant.id)
        store = sim.events[tenant.id] if stream == "Events" else sim.alerts[tenant.id]
        count = len(store)
        if cursor:
            time_ms, start = cursor
            if time_ms < oldest_ms:
                # As documented: an expired cursor falls back to the oldest point served.
                start = max(start, store.first_at(oldest_ms))
        elif from_date is not None:
            start = store.first_at(from_date * 1000)
        else:
            start = store.first_at(oldest_ms)
        start = min(max(0, start), count)
        served = sim.served_of(tenant.id, stream)
        if excluded:
            picked = []
            index = start
            kinds = store.kinds
            while index < count and len(picked) < limit:
                if kinds[index] not in excluded:
                    picked.append(index)
                index += 1
            end = index
            items = b",".join(store.item(i) for i in picked)

            def on_sent():
                with sim.lock:
                    served.mark(picked)

        else:
            end = min(count, start + limit)
            items = store.slice(start, end)

            def on_sent():
                with sim.lock:
                    served.mark_range(start, end)

        has_more = end < count
        time_ms = store.created[end - 1] if has_more and end > start else now_ms
    body = b"".join(
        (
            b'{"has_more":',
            b"true" if has_more else b"false",
            b',"next_cursor":"',
            encode_cursor(time_ms, end).encode(),
            b'","items":[',
            items,
            b"]}",
        )
    )
    return Answer(200, body, on_sent=on_sent)


def parse_iso_ms(sim: Simulator, name: str, value: str | None) -> int | None:
    """Epoch ms of a ``from``/``to`` value; microseconds and other forms are refused."""
    if value in (None, ""):
        return None
    match = _ISO.match(value)
    if not match:
        if re.match(r"^.*\.\d{4,}", value):
            raise _bad(sim, f"{name} must have at most millisecond precision")
        raise _bad(sim, f"{name} must be an ISO 8601 date-time")
    year, month, day, hour, minute, second, frac, zone = match.groups()
    try:
        moment = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            int((frac or "0").ljust(3, "0")) * 1000,
            tzinfo=dt.UTC,
        )  # fmt: skip
    except ValueError:
        raise _bad(sim, f"{name} is not a valid date-time")
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        moment -= sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return int(moment.timestamp() * 1000)


def common_alerts(sim: Simulator, req: Request) -> Answer:
    """``GET /common/v1/alerts``: from, to, sort, pageSize, pageFromKey, pageTotal, filters."""
    return _alerts(sim, req, {k: v[-1] for k, v in req.query.items()})


def alerts_search(sim: Simulator, req: Request) -> Answer:
    """``POST /common/v1/alerts/search``: the same parameters as a JSON body."""
    try:
        body = json.loads(req.body or b"{}")
    except ValueError:
        raise _bad(sim, "Error parsing the request body")
    if not isinstance(body, dict):
        raise _bad(sim, "The request body must be a JSON object")
    params = {}
    for key, value in body.items():
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        params[key] = str(value)
    return _alerts(sim, req, params)


_FILTERS = ("product", "category", "severity", "ids", "groupKey")


def _alerts(sim: Simulator, req: Request, params: dict[str, str]) -> Answer:
    tenant = data_tenant(sim, req)
    cfg = sim.config
    req = Request(
        req.method, req.path, req.region, {k: [v] for k, v in params.items()}, req.headers, b""
    )
    size = _int(sim, req, "pageSize", cfg.alerts_default_page_size, 1, cfg.alerts_max_page_size)
    from_ms = parse_iso_ms(sim, "from", params.get("from"))
    to_ms = parse_iso_ms(sim, "to", params.get("to"))
    sort = params.get("sort") or "raisedAt:asc"
    if sort not in ("raisedAt", "raisedAt:asc", "raisedAt:desc"):
        raise _bad(sim, "sort must be raisedAt:asc or raisedAt:desc")
    descending = sort == "raisedAt:desc"
    key = None
    if params.get("pageFromKey"):
        try:
            key = int(params["pageFromKey"])
        except ValueError:
            raise _bad(sim, "Invalid pageFromKey")
    filters = {}
    for name in _FILTERS:
        if params.get(name):
            filters["id" if name == "ids" else name] = set(params[name].split(","))
    with sim.lock:
        sim.sync(tenant.id)
        store = sim.alerts[tenant.id]
        keys = store.by_raised
        lo, hi = store.raised_range(from_ms, to_ms)
        if key is not None:
            if descending:
                hi = max(lo, min(hi, bisect.bisect_left(keys, key, lo, hi)))
            else:
                lo = min(hi, max(lo, bisect.bisect_right(keys, key, lo, hi)))
        positions = range(hi - 1, lo - 1, -1) if descending else range(lo, hi)
        picked: list[int] = []
        last_key = None
        matching = None
        if filters:
            matches = [
                p for p in positions if _alert_matches(store.common[keys[p] & SEQ_MASK], filters)
            ]
            matching = len(matches)
            chosen = matches[:size]
            more = len(matches) > size
        else:
            chosen = positions[:size]
            more = len(positions) > size
        for p in chosen:
            picked.append(keys[p] & SEQ_MASK)
            last_key = keys[p]
        items = b",".join(store.common[s] for s in picked)
        served = sim.served_of(tenant.id, "Alerts")
        total = matching if matching is not None else hi - lo
    pages: dict[str, Any] = {"size": size, "maxSize": cfg.alerts_max_page_size}
    if key is not None:
        pages["fromKey"] = params["pageFromKey"]
    if more and last_key is not None:
        pages["nextKey"] = str(last_key)
    if (params.get("pageTotal") or "").lower() == "true":
        pages["total"] = math.ceil(total / size)
        pages["items"] = total

    def on_sent():
        with sim.lock:
            served.mark(picked)

    body = b'{"items":[' + items + b'],"pages":' + json.dumps(pages).encode() + b"}"
    return Answer(200, body, on_sent=on_sent)


def _alert_matches(data: bytes, filters: dict[str, set[str]]) -> bool:
    item = json.loads(data)
    return all(str(item.get(name)) in wanted for name, wanted in filters.items())


# --- Endpoint API -------------------------------------------------------------------------------

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
ENDPOINT_KEY_TAG = "EP"


def _endpoint_key(position: int) -> str:
    return base64.urlsafe_b64encode(f"{ENDPOINT_KEY_TAG}|{position}".encode()).decode()


def _endpoint_position(sim: Simulator, key: str) -> int:
    try:
        tag, position = base64.urlsafe_b64decode(key.encode()).decode().split("|")
        if tag != ENDPOINT_KEY_TAG or int(position) < 0:
            raise ValueError(key)
        return int(position)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _bad(sim, "Invalid pageFromKey")


def _view(sim: Simulator, req: Request, default: str) -> str:
    view = req.param("view") or default
    if view not in VIEWS:
        raise _bad(sim, f"view must be one of {', '.join(VIEWS)}")
    return view


def endpoint_list(sim: Simulator, req: Request) -> Answer:
    """``GET /endpoint/v1/endpoints``: ids (repeated or a comma list), pageSize, pageFromKey,
    pageTotal, view. Unknown ids are left out, as a filter does; more ids than the limit, a
    pageSize above the maximum, a malformed id, view or key are refused with 400."""
    tenant = data_tenant(sim, req)
    cfg = sim.config
    size = _int(
        sim, req, "pageSize", cfg.endpoints_default_page_size, 1, cfg.endpoints_max_page_size
    )
    view = _view(sim, req, "summary")
    wanted: list[str] | None = None
    if "ids" in req.query:
        wanted = []
        for value in req.query["ids"]:
            wanted.extend(part.strip() for part in value.split(",") if part.strip())
        if not wanted:
            raise _bad(sim, "ids must name at least one endpoint")
        if not all(_UUID.match(part) for part in wanted):
            raise _bad(sim, "ids must be endpoint UUIDs")
        wanted = list(dict.fromkeys(wanted))
        if len(wanted) > cfg.endpoints_max_ids:
            raise _bad(sim, f"ids takes at most {cfg.endpoints_max_ids} endpoints per request")
    key = req.param("pageFromKey")
    start = _endpoint_position(sim, key) if key else 0
    with sim.lock:
        inventory = sim.inventories[tenant.id]
        inventory.requests += 1
        inventory.ids_asked += len(wanted or ())
        if wanted is None:
            chosen = inventory.endpoints
        else:
            asked = set(wanted)
            chosen = [agent for agent in inventory.endpoints if agent.id in asked]
        page = chosen[start : start + size]
        now = sim.now()
        items = [
            inventory.record(agent, now, view=view, period=sim.change_period) for agent in page
        ]
        more = start + size < len(chosen)
        picked = [agent.index for agent in page]
    pages: dict[str, Any] = {"size": size, "maxSize": cfg.endpoints_max_page_size}
    if key:
        pages["fromKey"] = key
    if more:
        pages["nextKey"] = _endpoint_key(start + size)
    if (req.param("pageTotal") or "").lower() == "true":
        pages["total"] = max(1, math.ceil(len(chosen) / size))
        pages["items"] = len(chosen)

    def on_sent():
        with sim.lock:
            inventory.served.mark(picked)

    answer = json_answer(200, {"items": items, "pages": pages})
    answer.on_sent = on_sent
    return answer


def endpoint_single(sim: Simulator, req: Request) -> Answer:
    """``GET /endpoint/v1/endpoints/{id}``: one endpoint (view ``full`` by default), 404 when the
    tenant has no such endpoint."""
    tenant = data_tenant(sim, req)
    endpoint_id = req.path.rsplit("/", 1)[-1]
    if not _UUID.match(endpoint_id):
        raise _bad(sim, "The endpoint id must be a UUID")
    view = _view(sim, req, "full")
    with sim.lock:
        inventory = sim.inventories[tenant.id]
        inventory.single += 1
        agent = inventory.by_id.get(endpoint_id)
        if agent is None:
            raise Rejected(data_error(sim, 404, "notFound", "Endpoint not found"))
        item = inventory.record(agent, sim.now(), view=view, period=sim.change_period)

    def on_sent():
        with sim.lock:
            inventory.served.mark([agent.index])

    answer = json_answer(200, item)
    answer.on_sent = on_sent
    return answer
