"""The simulator's state and its Python control API; the HTTP side is in :mod:`.server`."""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sophos_simulator.catalog import (
    EVENT_TYPE_INDEX,
    TENANT_NAMES,
    ItemFactory,
    iso_ms,
    uuid_from,
)
from sophos_simulator.config import SimulatorConfig
from sophos_simulator.faults import Fault, FaultBook
from sophos_simulator.inventory import Inventory
from sophos_simulator.store import AlertStore, ItemStore, Served

STREAMS = ("Events", "Alerts")


@dataclass(frozen=True)
class SimTenant:
    id: str
    name: str
    region: str
    index: int


@dataclass(frozen=True)
class SimCredential:
    client_id: str
    client_secret: str
    id_type: str
    id: str
    tenant_ids: tuple[str, ...]

    @property
    def tenant_set(self) -> frozenset[str]:
        return frozenset(self.tenant_ids)


class Simulator:
    """A Sophos Central stand-in; see the package docstring for the whole API."""

    def __init__(self, config: SimulatorConfig | None = None, **overrides: Any):
        if config is None:
            config = SimulatorConfig(**overrides)
        elif overrides:
            config = config.with_overrides(**overrides)
        self.config = config
        self.lock = threading.RLock()
        self.faults = FaultBook()
        self._offset = 0.0
        self._stopping = threading.Event()
        self._server = None
        self._thread: threading.Thread | None = None
        self._tokens: dict[str, tuple[SimCredential, float]] = {}
        self.tokens_issued = 0
        self._requests: Counter[tuple[str, int]] = Counter()
        self.port = config.port
        self._build()

    # --- model ----------------------------------------------------------------------------

    def _build(self) -> None:
        cfg = self.config
        rng = random.Random(f"{cfg.seed}:tenants")
        self.tenants: list[SimTenant] = []
        backlog: dict[str, tuple[int, int]] = {}
        for i, tc in enumerate(cfg.tenant_configs()):
            generated_id = uuid_from(rng)  # drawn even when unused, so ids do not shift
            tenant = SimTenant(
                id=tc.id or generated_id,
                name=tc.name
                or (TENANT_NAMES[i] if i < len(TENANT_NAMES) else f"Customer {i + 1:04d}"),
                region=tc.region or cfg.regions[i % len(cfg.regions)],
                index=i,
            )
            self.tenants.append(tenant)
            backlog[tenant.id] = (
                cfg.events if tc.events is None else tc.events,
                cfg.alerts if tc.alerts is None else tc.alerts,
            )
        self.tenant_by_id = {t.id: t for t in self.tenants}
        if len(self.tenant_by_id) != len(self.tenants):
            raise ValueError("tenant ids must be unique")
        by_name = {t.name: t for t in self.tenants}

        self.credentials: list[SimCredential] = []
        for cc in cfg.all_credentials():
            if cc.tenants is None:
                chosen = self.tenants[:1] if cc.id_type == "tenant" else list(self.tenants)
            else:
                chosen = []
                for ref in cc.tenants:
                    tenant = self.tenant_by_id.get(ref) or by_name.get(ref)
                    if tenant is None:
                        raise ValueError(f"credential {cc.client_id}: no tenant {ref!r}")
                    chosen.append(tenant)
            if cc.id_type == "tenant" and len(chosen) != 1:
                raise ValueError(f"tenant credential {cc.client_id} must have exactly one tenant")
            owner = cc.id or (
                chosen[0].id
                if cc.id_type == "tenant"
                else uuid_from(random.Random(f"{cfg.seed}:owner:{cc.client_id}"))
            )
            self.credentials.append(
                SimCredential(
                    cc.client_id, cc.client_secret, cc.id_type, owner, tuple(t.id for t in chosen)
                )
            )
        self.credentials_by_client_id = {c.client_id: c for c in self.credentials}

        now = self.now()
        self._factories: dict[str, ItemFactory] = {}
        self.events: dict[str, ItemStore] = {}
        self.alerts: dict[str, AlertStore] = {}
        self.inventories: dict[str, Inventory] = {}
        window_ms = int(cfg.backlog_hours * 3600 * 1000)
        now_ms = int(now * 1000)
        for tenant in self.tenants:
            factory = ItemFactory(
                seed=cfg.seed, tenant_id=tenant.id, tenant_name=tenant.name, config=cfg
            )
            self._factories[tenant.id] = factory
            self.inventories[tenant.id] = Inventory(
                seed=cfg.seed, tenant_id=tenant.id, agents=factory.endpoints, created=now
            )
            events, alerts = ItemStore(), AlertStore()
            n_events, n_alerts = backlog[tenant.id]
            times = random.Random(f"{cfg.seed}:times:{tenant.id}")
            for created in sorted(now_ms - times.randrange(window_ms + 1) for _ in range(n_events)):
                data, kind = factory.event(created)
                events.append(data, created, kind)
            for created in sorted(now_ms - times.randrange(window_ms + 1) for _ in range(n_alerts)):
                siem, common, raised = factory.alert(created)
                alerts.add(siem, common, created, raised)
            events.next_arrival = now + 60.0 / self.rate("Events") if self.rate("Events") else None
            alerts.next_arrival = now + 60.0 / self.rate("Alerts") if self.rate("Alerts") else None
            self.events[tenant.id] = events
            self.alerts[tenant.id] = alerts

    def rate(self, stream: str) -> float:
        """New items a minute per tenant for ``stream``."""
        cfg = self.config
        value = cfg.events_rate if stream == "Events" else cfg.alerts_rate
        return float(cfg.rate if value is None else value)

    def sync(self, tenant_id: str | None = None) -> None:
        """Let rate-based items arrive up to the current simulator time (caller holds the lock)."""
        now = self.now()
        for tid in [tenant_id] if tenant_id else list(self.tenant_by_id):
            factory = self._factories[tid]
            for stream, store in (("Events", self.events[tid]), ("Alerts", self.alerts[tid])):
                if store.next_arrival is None or store.next_arrival > now:
                    continue
                step = 60.0 / self.rate(stream)
                while store.next_arrival <= now:
                    created = int(store.next_arrival * 1000)
                    if stream == "Events":
                        data, kind = factory.event(created)
                        store.append(data, created, kind)
                    else:
                        siem, common, raised = factory.alert(created)
                        store.add(siem, common, created, raised)
                    store.next_arrival += step

    def served_of(self, tenant_id: str, stream: str) -> Served:
        """Served-item counters: ``Events``, ``Alerts`` (Common Alerts) or ``SiemAlerts``."""
        if stream == "Events":
            return self.events[tenant_id].served
        if stream == "Alerts":
            return self.alerts[tenant_id].common_served
        return self.alerts[tenant_id].served

    def tenant(self, ref: str | int | None = None) -> SimTenant:
        """A tenant by id, name or position (None: the first)."""
        if ref is None:
            return self.tenants[0]
        if isinstance(ref, int):
            return self.tenants[ref]
        for tenant in self.tenants:
            if ref in (tenant.id, tenant.name):
                return tenant
        raise KeyError(f"no tenant {ref!r}")

    def credential(self, client_id: str | None = None) -> SimCredential:
        return self.credentials_by_client_id[client_id] if client_id else self.credentials[0]

    # --- clock and tokens -----------------------------------------------------------------

    def now(self) -> float:
        """Simulator time: the wall clock plus everything :meth:`advance` added."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        """Move the simulator clock forward (token expiry, the 24-hour window, arrivals)."""
        with self.lock:
            self._offset += float(seconds)
            self.sync()
            return self.now()

    def issue_token(self, cred: SimCredential) -> str:
        token = "eyJ" + secrets.token_urlsafe(48)
        with self.lock:
            self._tokens[token] = (cred, self.now() + self.config.token_lifetime)
            self.tokens_issued += 1
            # Expired tokens are dropped now and then so a long run does not grow without bound.
            if len(self._tokens) > 10_000:
                now = self.now()
                self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
        return token

    def token_owner(self, token: str) -> SimCredential | None:
        with self.lock:
            entry = self._tokens.get(token)
        if entry is None or entry[1] <= self.now():
            return None
        return entry[0]

    def expire_tokens(self) -> None:
        """Make every issued token invalid (the next data call gets a 401)."""
        with self.lock:
            self._tokens.clear()

    # --- items ------------------------------------------------------------------------------

    def add_items(
        self,
        stream: str = "Events",
        count: int = 1,
        *,
        tenant: str | None = None,
        late_seconds: float = 0.0,
        event_type: str | None = None,
        endpoint: str | None = None,
    ) -> int:
        """Let ``count`` items arrive now for one tenant (id or name) or, with None, every tenant.

        ``late_seconds`` dates them (event ``when``, alert ``raisedAt``) that far in the past: they
        arrive late. ``endpoint`` (an id of :meth:`endpoint_ids`) makes alerts endpoint alerts
        about that endpoint, of its tenant. Returns the number of items added.
        """
        if stream not in STREAMS:
            raise ValueError(f"stream must be one of {STREAMS}")
        type_index = EVENT_TYPE_INDEX[event_type] if event_type else None
        targets = [self.tenant(tenant)] if tenant is not None else list(self.tenants)
        if endpoint is not None:
            if stream != "Alerts":
                raise ValueError("endpoint= applies to alerts only")
            targets = [self.endpoint_tenant(endpoint, tenant)]
        with self.lock:
            self.sync()
            created = int(self.now() * 1000)
            stamp = created - int(late_seconds * 1000)
            for target in targets:
                factory = self._factories[target.id]
                for _ in range(count):
                    if stream == "Events":
                        data, kind = factory.event(created, type_index, when_ms=stamp)
                        self.events[target.id].append(data, created, kind)
                    else:
                        siem, common, raised = factory.alert(
                            created, raised_ms=stamp, endpoint=endpoint
                        )
                        self.alerts[target.id].add(siem, common, created, raised)
        return count * len(targets)

    def item_ids(self, tenant: str | None = None, stream: str = "Events") -> list[str]:
        """Ids of every item of one tenant's stream that exists now, in arrival order."""
        target = self.tenant(tenant)
        with self.lock:
            self.sync(target.id)
            store = self.events[target.id] if stream == "Events" else self.alerts[target.id]
            return store.ids()

    # --- endpoints --------------------------------------------------------------------------

    def endpoint_ids(self, tenant: str | None = None) -> list[str]:
        """Ids of the endpoints of one tenant (None: the first) that the Endpoint API serves."""
        return [agent.id for agent in self.inventories[self.tenant(tenant).id].endpoints]

    def named_endpoints(self, tenant: str | None = None) -> set[str]:
        """Ids of the endpoints that endpoint alerts of one tenant (None: the first) name now:
        what a client that looks up the endpoints of every alert it read must have asked for."""
        target = self.tenant(tenant)
        with self.lock:
            self.sync(target.id)
            named = set()
            for data in self.alerts[target.id].common:
                alert = json.loads(data)
                if alert["product"] == "endpoint":
                    named.add(alert["managedAgent"]["id"])
            return named

    def endpoint_tenant(self, endpoint_id: str, tenant: str | None = None) -> SimTenant:
        """The tenant an endpoint belongs to (looked for in ``tenant`` only, when given)."""
        candidates = [self.tenant(tenant)] if tenant is not None else self.tenants
        for candidate in candidates:
            if endpoint_id in self.inventories[candidate.id].by_id:
                return candidate
        raise KeyError(f"no endpoint {endpoint_id!r}")

    def endpoint(self, endpoint_id: str, *, view: str = "full") -> dict[str, Any]:
        """An endpoint's record as the Endpoint API would serve it now (served nothing)."""
        inventory = self.inventories[self.endpoint_tenant(endpoint_id).id]
        with self.lock:
            return inventory.record(
                inventory.by_id[endpoint_id], self.now(), view=view, period=self.change_period
            )

    def touch_endpoint(self, endpoint_id: str, tenant: str | None = None) -> None:
        """Change one endpoint now (tamper protection flips, it was seen this instant), so the
        next lookup finds a record that differs from the last."""
        target = self.endpoint_tenant(endpoint_id, tenant)
        with self.lock:
            self.inventories[target.id].touch(endpoint_id, self.now())

    @property
    def change_period(self) -> float:
        """Seconds between the changes of drifting endpoints (0: they never change)."""
        return self.config.endpoint_change_hours * 3600.0

    # --- faults -----------------------------------------------------------------------------

    def set_fault(
        self,
        kind: str = "status",
        *,
        api: str | None = None,
        tenant: str | None = None,
        status: int | None = None,
        retry_after: float | str | None = None,
        empty: bool = False,
        delay: float = 0.0,
        times: int | None = None,
        body: str | None = None,
    ) -> int:
        """Switch a fault on (kinds in :mod:`.faults`); returns its id for :meth:`clear_faults`."""
        tenant_id = self.tenant(tenant).id if tenant is not None else None
        fault = Fault(
            kind=kind,
            api=api,
            tenant=tenant_id,
            status=int(status) if status is not None else None,
            retry_after=retry_after,
            empty=bool(empty),
            delay=float(delay),
            times=int(times) if times is not None else None,
            body=body,
        )
        return self.faults.add(fault).id

    def clear_faults(
        self, *, api: str | None = None, tenant: str | None = None, id: int | None = None
    ) -> int:
        """Switch faults off: all, or those of one API, tenant or id. Returns how many."""
        tenant_id = self.tenant(tenant).id if tenant is not None else None
        return self.faults.clear(api=api, tenant=tenant_id, id=id)

    def pause(self, seconds: float) -> None:
        """Sleep in a request thread; cut short when the simulator stops."""
        if seconds > 0:
            self._stopping.wait(seconds)

    # --- counters ---------------------------------------------------------------------------

    def count_request(self, path: str, status: int) -> None:
        with self.lock:
            self._requests[(path, status)] += 1

    def stats(self) -> dict[str, Any]:
        """Counters, as served by ``GET /_simulator/stats``.

        ``tenants[id]["streams"][stream]`` has ``available`` (items that exist now), ``served``
        (distinct items sent in full at least once) and ``served_total`` (with repeats), for
        ``Events``, ``Alerts`` (Common Alerts API), ``SiemAlerts`` and ``Endpoints`` (endpoint
        records of the Endpoint API); ``totals`` sums them. ``tenants[id]["endpoint_lookups"]``
        counts the Endpoint API calls that reached the tenant (right host and X-Tenant-ID):
        ``requests`` list calls, ``ids`` the ids they filtered on, ``single`` ``/endpoints/{id}``
        calls. ``requests[path][status]`` counts answers (status 0: connection reset without one).
        """
        with self.lock:
            self.sync()
            totals = {
                s: {"available": 0, "served": 0, "served_total": 0}
                for s in ("Events", "Alerts", "SiemAlerts", "Endpoints")
            }
            lookups = {"requests": 0, "ids": 0, "single": 0}
            tenants = {}
            for tenant in self.tenants:
                streams = {}
                inventory = self.inventories[tenant.id]
                for stream in totals:
                    if stream == "Endpoints":
                        size, served = len(inventory), inventory.served
                    else:
                        store = (
                            self.events[tenant.id] if stream == "Events" else self.alerts[tenant.id]
                        )
                        size, served = len(store), self.served_of(tenant.id, stream)
                    entry = {
                        "available": size,
                        "served": served.distinct,
                        "served_total": served.total,
                    }
                    for key, value in entry.items():
                        totals[stream][key] += value
                    streams[stream] = entry
                mine = {
                    "requests": inventory.requests,
                    "ids": inventory.ids_asked,
                    "single": inventory.single,
                }
                for key, value in mine.items():
                    lookups[key] += value
                tenants[tenant.id] = {
                    "name": tenant.name,
                    "region": tenant.region,
                    "streams": streams,
                    "endpoint_lookups": mine,
                }
            requests: dict[str, dict[str, int]] = {}
            for (path, status), count in sorted(self._requests.items()):
                requests.setdefault(path, {})[str(status)] = count
            return {
                "now": iso_ms(int(self.now() * 1000)),
                "clock_offset": self._offset,
                "tokens_issued": self.tokens_issued,
                "tenants": tenants,
                "totals": totals,
                "endpoint_lookups": lookups,
                "requests": requests,
                "faults": self.faults.list(),
            }

    # --- addresses --------------------------------------------------------------------------

    @property
    def public_host(self) -> str:
        host = self.config.public_host or self.config.host
        if host in ("", "0.0.0.0"):  # noqa: S104 (naming the wildcard address, not binding it)
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        return f"[{host}]" if ":" in host and not host.startswith("[") else host

    @property
    def url(self) -> str:
        """Base URL: the global API host (and the token host)."""
        return f"{self.config.scheme}://{self.public_host}:{self.port}"

    @property
    def token_url(self) -> str:
        return self.url + "/api/v2/oauth2/token"

    @property
    def api_url(self) -> str:
        return self.url

    def region_host(self, region: str) -> str:
        """A region's data host: the same listener, told apart by a path prefix."""
        return f"{self.url}/region/{region}"

    @property
    def extra_hosts(self) -> list[str]:
        """What SOPHOS_EXTRA_HOSTS must allow so a client accepts this simulator's hosts."""
        return [f"{self.public_host}:{self.port}"]

    def env(self) -> dict[str, str]:
        """Environment variables that point a Sumo Sources process at this simulator."""
        env = {
            "SUMOSOURCES_SOPHOS_TOKEN_URL": self.token_url,
            "SUMOSOURCES_SOPHOS_API_URL": self.api_url,
            "SUMOSOURCES_SOPHOS_EXTRA_HOSTS": ",".join(self.extra_hosts),
        }
        if self.config.tls_cert:
            env["SUMOSOURCES_SOPHOS_VERIFY_TLS"] = self.config.tls_cert
        return env

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Simulator:
        """Listen (port 0: a free port) and serve in a background thread; returns self."""
        from sophos_simulator.server import make_server

        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = make_server(self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"sophos-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` (or KeyboardInterrupt)."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop listening and close open connections; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
