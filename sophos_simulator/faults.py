"""Faults a test (or a curious user) switches on and off while the simulator runs.

A fault applies to the calls of one API (or all), for one tenant (or all), a number of times (or
until cleared). The first active fault that matches a call decides its fate.

Kinds:

* ``status``: answer ``status`` (400, 401, 403, 404, 429, 500, 502, 503, 504 ...) with the API's
  error body; ``retry_after`` adds a Retry-After header; ``empty`` sends no body at all.
* ``slow``: wait ``delay`` seconds, then answer normally.
* ``drop``: send the headers and half of the body, then close the connection.
* ``reset``: close the connection without answering (a TCP reset).
* ``malformed``: 200 with a body that is not JSON.
* ``truncated``: 200 with the real body cut in half (a consistent Content-Length).
* ``wrong_shape``: 200 with valid JSON lacking what the API promises.
* ``body``: answer ``status`` (default 200) with the given ``body`` text verbatim.
* ``bad_cursor``: answer normally, but with a ``next_cursor`` (SIEM events and alerts) or a
  ``pages.nextKey`` (Common Alerts) that the API cannot decode, so the request that sends it
  back is refused with 400 (``Invalid cursor`` / ``Invalid pageFromKey``). Other APIs answer
  as usual.

The Endpoint API is ``api="Endpoints"``: ``set_fault("status", api="Endpoints", status=403)`` is
a credential without the Endpoint role, while alerts and events still answer.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import asdict, dataclass

KINDS = (
    "status", "slow", "drop", "reset", "malformed", "truncated", "wrong_shape", "body",
    "bad_cursor",
)  # fmt: skip
# API names as the client reports them, plus the SIEM alerts endpoint and groups. ``Endpoints``
# is the Endpoint API (its list and its /endpoints/{id} calls).
APIS = ("Token", "Whoami", "Tenants", "Events", "Alerts", "SiemAlerts", "Endpoints")
API_GROUPS = {"data": ("Events", "Alerts", "SiemAlerts", "Endpoints"), "all": APIS}


def canonical_api(name: str | None) -> str | None:
    if name in (None, "", "*", "all"):
        return None
    for api in APIS:
        if api.lower() == str(name).lower().replace("_", ""):
            return api
    if str(name).lower() in API_GROUPS:
        return str(name).lower()
    raise ValueError(f"unknown API {name!r}: one of {', '.join(APIS)}, data or all")


@dataclass
class Fault:
    kind: str = "status"
    api: str | None = None
    tenant: str | None = None  # tenant id (names are resolved when the fault is set)
    status: int | None = None
    retry_after: str | None = None
    empty: bool = False
    delay: float = 0.0
    times: int | None = None  # None: until cleared
    body: str | None = None
    id: int = 0
    hits: int = 0

    def matches(self, api: str, tenant_id: str | None) -> bool:
        if self.api is not None:
            if self.api in API_GROUPS:
                if api not in API_GROUPS[self.api]:
                    return False
            elif self.api != api:
                return False
        return self.tenant is None or self.tenant == tenant_id

    def as_dict(self) -> dict:
        return asdict(self)


class FaultBook:
    """The active faults, thread-safe."""

    def __init__(self):
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def add(self, fault: Fault) -> Fault:
        if fault.kind not in KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}: one of {', '.join(KINDS)}")
        fault.api = canonical_api(fault.api)
        if fault.kind == "status" and not fault.status:
            raise ValueError("a status fault needs a status")
        if fault.retry_after is not None:
            fault.retry_after = str(fault.retry_after)
        if fault.times is not None and fault.times < 1:
            raise ValueError("times must be at least 1 (or absent for until cleared)")
        with self._lock:
            fault.id = next(self._ids)
            self._faults.append(fault)
        return fault

    def take(self, api: str, tenant_id: str | None) -> Fault | None:
        """The fault for this call, counted as used; None if the call goes through normally."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(api, tenant_id):
                    fault.hits += 1
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def clear(
        self, *, api: str | None = None, tenant: str | None = None, id: int | None = None
    ) -> int:
        """Remove the faults matching all given filters (none given: all); returns how many."""
        api = canonical_api(api)
        with self._lock:
            keep = [
                f
                for f in self._faults
                if not (
                    (api is None or f.api == api)
                    and (tenant is None or f.tenant == tenant)
                    and (id is None or f.id == id)
                )
            ]
            removed = len(self._faults) - len(keep)
            self._faults = keep
        return removed

    def list(self) -> list[dict]:
        with self._lock:
            return [f.as_dict() for f in self._faults]
