"""The Endpoints stream: details of the endpoints that endpoint alerts name, from the Endpoint API.

An alert names its device only by ``managedAgent.id``. Like the Sumo Logic source, for alerts whose
``product`` is ``endpoint`` we read the endpoint's record (hostname, OS, addresses, health, tamper
protection, last user ...) from ``GET /endpoint/v1/endpoints`` (``docs/sophos-endpoint-api.md``)
and store it as a message of its own, ``_sourceName=Endpoints``, next to the alerts.

Within one tenant run the session is shared and the engine collects Alerts, Events, then Endpoints:

1. While paging Alerts the session remembers, for each managed agent of an endpoint alert, the
   newest ``raisedAt`` naming it (epoch ms): the *mentions*. The Alerts checkpoint carries them
   (``"endpoints"``, pruned to the refresh period and :data:`MENTIONS_LIMIT`), so a run that stores
   alerts but ends before the Endpoints stream (its time budget spent on an events backlog, a
   crash) loses no lookup: the next run's Alerts stream starts from them again.
2. The Endpoints stream queues in ``pending`` every mentioned endpoint not looked up since the
   newest alert naming it, and yields that checkpoint with no items first: it is committed before
   any lookup, so a failed lookup loses nothing.
3. It then looks the pending ids up, :data:`IDS_LIMIT` at a time with the ``ids`` filter, and
   yields a page per :data:`PAGE_IDS` ids: the records worth storing and the checkpoint without
   those ids.

Endpoints checkpoint::

    {"pending": ["<endpoint id>", ...],                       # oldest first, at most PENDING_LIMIT
     "seen": {"<endpoint id>": ["<digest>", <stored at>, <checked at>]}}   # epoch seconds

A record is stored when its *digest* (sha256 of every field but the volatile ``lastSeenAt`` and ``online``, i.e. of what an
analyst reads: hostname, OS, addresses, health, tamper protection, person, products, group,
isolation) differs from the last stored copy's, or that copy is as old as the refresh period
(``SOPHOS_ENDPOINT_REFRESH_HOURS``, 24 by default). ``lastSeenAt`` moves with every check-in, so it
is left out: a busy endpoint named by 500 alerts a day is stored once or twice, not 500 times.
``checked at`` is the last lookup (stored or not): an alert raised before it needs no new one.
``seen`` forgets entries neither stored nor checked within the refresh period, which bounds it;
``digest`` ``""`` marks an endpoint the API did not return (deleted, or refused alone).

Vendor id of a record (:func:`collector.kinds.sophos_central.mapping.map_item`):
``<endpoint id>:<first 16 hex of the sha256 of the whole record>``. A refresh is stored because
the record differs at least in ``lastSeenAt`` (the message time); a re-fetch of the very same
record (a reset checkpoint, a retried batch) has the same id and the store's unique key drops it.
An endpoint that has not checked in since its last stored copy is not stored again: that copy
already says everything, at the same message time.
"""

from __future__ import annotations

import re
from typing import Any

from collector.kinds.sophos_central.mapping import endpoint_digest

STREAM = "Endpoints"
PATH = "/endpoint/v1/endpoints"
IDS_LIMIT = 100  # ids one lookup filters on (the simulator refuses more, see the contract)
PAGE_IDS = 500  # ids looked up per page yielded (each page rewrites the checkpoint)
PAGE_SIZE_LIMIT = 500  # the Endpoint API's pages.maxSize
PENDING_LIMIT = 5000  # ids an Endpoints checkpoint keeps waiting; beyond, the oldest are dropped
MENTIONS_LIMIT = 5000  # endpoints an Alerts checkpoint carries
SEEN_LIMIT = 10_000  # endpoints whose last copy an Endpoints checkpoint remembers
REFRESH = 24 * 3600.0  # default of SOPHOS_ENDPOINT_REFRESH_HOURS, in seconds

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_endpoint_id(value: Any) -> bool:
    """Whether ``value`` is an endpoint id we may send (a UUID: nothing else reaches a URL)."""
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def mentioned(item: Any) -> str | None:
    """The endpoint an alert names: ``managedAgent.id`` of an alert whose product is endpoint."""
    if not isinstance(item, dict) or item.get("product") != "endpoint":
        return None
    agent = item.get("managedAgent")
    endpoint_id = agent.get("id") if isinstance(agent, dict) else None
    return endpoint_id if is_endpoint_id(endpoint_id) else None


def load_mentions(value: Any) -> dict[str, int]:
    """The mentions an Alerts checkpoint carries (anything malformed is left out)."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if is_endpoint_id(k) and type(v) is int}


def prune_mentions(mentions: dict[str, int], newest_ms: int, refresh: float) -> dict[str, int]:
    """Mentions newer than the refresh period before ``newest_ms``, at most MENTIONS_LIMIT."""
    floor = newest_ms - int(refresh * 1000)
    kept = {k: v for k, v in mentions.items() if v >= floor}
    if len(kept) > MENTIONS_LIMIT:
        kept = dict(sorted(kept.items(), key=lambda kv: kv[1])[-MENTIONS_LIMIT:])
    return kept


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class EndpointState:
    """The Endpoints checkpoint of one tenant while a run works on it (see the module docstring).

    ``seen`` values are tuples, so a checkpoint handed to a page is a snapshot the generator
    cannot change while the engine has yet to store it.
    """

    def __init__(self, pending: list[str], seen: dict[str, tuple[str, int, int]], refresh: float):
        self.pending = pending
        self.seen = seen
        self.refresh = refresh

    @classmethod
    def load(cls, checkpoint: dict[str, Any], *, now: float, refresh: float) -> EndpointState:
        raw_pending = checkpoint.get("pending")
        pending = (
            [v for v in raw_pending if is_endpoint_id(v)] if isinstance(raw_pending, list) else []
        )
        seen: dict[str, tuple[str, int, int]] = {}
        raw_seen = checkpoint.get("seen")
        floor = now - refresh
        if isinstance(raw_seen, dict):
            for key, value in raw_seen.items():
                if not is_endpoint_id(key) or not isinstance(value, list | tuple) or len(value) < 2:
                    continue
                digest, stored = value[0], value[1]
                checked = value[2] if len(value) > 2 else stored
                readable = isinstance(digest, str) and _number(stored) and _number(checked)
                if readable and max(stored, checked) >= floor:
                    seen[key] = (digest, int(stored), int(checked))
        return cls(list(dict.fromkeys(pending)), seen, refresh)

    def queue(self, mentions: dict[str, int]) -> tuple[int, int]:
        """Add to ``pending`` the mentioned endpoints not checked since the alert naming them;
        drop the oldest beyond PENDING_LIMIT. Returns (added, dropped)."""
        waiting = set(self.pending)
        added = 0
        for endpoint_id, mention_ms in sorted(mentions.items(), key=lambda kv: kv[1]):
            if endpoint_id in waiting:
                continue
            entry = self.seen.get(endpoint_id)
            if entry is not None and entry[2] * 1000 >= mention_ms:
                continue
            self.pending.append(endpoint_id)
            waiting.add(endpoint_id)
            added += 1
        dropped = max(0, len(self.pending) - PENDING_LIMIT)
        if dropped:
            del self.pending[:dropped]
        return added, dropped

    def absorb(self, batch: list[str], items: list[Any], now: float) -> list[dict[str, Any]]:
        """Take the answer to a lookup of ``batch`` at server time ``now``: the records to store
        (changed, or last stored a refresh period ago), and ``batch`` off ``pending``. Ids not
        answered are remembered as checked, so their alerts do not queue them every run."""
        found: dict[str, dict[str, Any]] = {}
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                found.setdefault(item["id"], item)
        moment = int(now)
        stored = []
        for endpoint_id in batch:
            item = found.get(endpoint_id)
            previous = self.seen.get(endpoint_id)
            if item is None:
                self.checked(endpoint_id, moment)
                continue
            digest = endpoint_digest(item)
            if previous is None or previous[0] != digest or moment - previous[1] >= self.refresh:
                stored.append(item)
                self.seen[endpoint_id] = (digest, moment, moment)
            else:
                self.seen[endpoint_id] = (previous[0], previous[1], moment)
        done = set(batch)
        self.pending = [p for p in self.pending if p not in done]
        return stored

    def checked(self, endpoint_id: str, moment: int) -> None:
        """Remember a lookup that gave no record (the id is no longer pending)."""
        previous = self.seen.get(endpoint_id)
        self.seen[endpoint_id] = (previous[0], previous[1], moment) if previous else ("", 0, moment)
        if endpoint_id in self.pending:
            self.pending.remove(endpoint_id)

    def checkpoint(self) -> dict[str, Any]:
        seen = self.seen
        if len(seen) > SEEN_LIMIT:
            newest = sorted(seen.items(), key=lambda kv: max(kv[1][1], kv[1][2]))[-SEEN_LIMIT:]
            self.seen = seen = dict(newest)
        return {"pending": list(self.pending), "seen": dict(seen)}
