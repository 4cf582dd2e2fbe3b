"""Per-item metadata of Sophos Central alerts, events and endpoint records: vendor id, message
time, SIEM event id.

:func:`map_item` runs once for every stored item (30,000+ items/s), so everything that can be
decided ahead of time lives in lookup tables built at import; a call costs a few dict lookups and
one C-level timestamp parse. Nothing here raises on odd input: an item we cannot read still gets
stored, with the receipt time and ``uncategorized``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import orjson

from collector.kinds.base import ItemMeta

UTC = dt.UTC

# The 33 `_siemEventID` values of the Sumo Logic Sophos Central source, as its documentation lists
# them. Anything else (newer categories such as ztnaGateway, event groups such as WEB) maps to
# UNCATEGORIZED, so SIEM rules keyed on this vocabulary see only values they know.
SIEM_EVENT_IDS: tuple[str, ...] = (
    "azure",
    "adSync",
    "applicationControl",
    "appReputation",
    "blockListed",
    "connectivity",
    "cwg",
    "denc",
    "downloadReputation",
    "endpointFirewall",
    "fenc",
    "forensicSnapshot",
    "general",
    "iaas",
    "iaasAzure",
    "isolation",
    "malware",
    "mtr",
    "mobiles",
    "policy",
    "protection",
    "pua",
    "runtimeDetections",
    "security",
    "smc",
    "systemHealth",
    "uav",
    "uncategorized",
    "updating",
    "utm",
    "virt",
    "wireless",
    "xgEmail",
)
UNCATEGORIZED = "uncategorized"

# Event groups whose folded spelling is not the folded spelling of the category they stand for.
_GROUP_ALIASES = {
    "BLOCKLIST": "blockListed",
    "MOBILE": "mobiles",
    "MDR": "mtr",
    "DEVICE_ENCRYPTION": "denc",
    "FILE_ENCRYPTION": "fenc",
    "FIREWALL": "endpointFirewall",
}


def _fold(value: str) -> str:
    """Spelling-insensitive form: ``RUNTIME_DETECTIONS`` and ``runtimeDetections`` fold alike."""
    return value.replace("_", "").replace("-", "").replace(" ", "").lower()


def _upper_snake(value: str) -> str:
    return "".join("_" + c if c.isupper() else c for c in value).upper()


_BY_FOLD: dict[str, str] = {_fold(v): v for v in SIEM_EVENT_IDS}
_BY_FOLD.update({_fold(k): v for k, v in _GROUP_ALIASES.items()})

# Exact spellings seen on the wire -> vocabulary value. Seeded with every category as itself and as
# an upper-snake event group; other spellings are folded once and remembered (bounded, so a stream
# of garbage values cannot grow it without limit).
_SIEM_CACHE: dict[str, str] = {}
for _value in SIEM_EVENT_IDS:
    _SIEM_CACHE[_value] = _value
    _SIEM_CACHE[_upper_snake(_value)] = _value
for _alias, _value in _GROUP_ALIASES.items():
    _SIEM_CACHE[_alias] = _value
_SIEM_CACHE_LIMIT = 4096


def siem_event_id(value: Any) -> str:
    """The `_siemEventID` for an alert category or an event group (``uncategorized`` if unknown)."""
    try:
        return _SIEM_CACHE[value]
    except KeyError:
        pass
    except TypeError:  # unhashable (a list or a dict where a string belongs)
        return UNCATEGORIZED
    if not isinstance(value, str):
        return UNCATEGORIZED
    result = _BY_FOLD.get(_fold(value), UNCATEGORIZED)
    if len(_SIEM_CACHE) < _SIEM_CACHE_LIMIT:
        _SIEM_CACHE[value] = result
    return result


_fromisoformat = dt.datetime.fromisoformat


def parse_time(value: Any) -> dt.datetime | None:
    """An aware UTC datetime from an ISO 8601 string; zone-less means UTC; None if unreadable."""
    if type(value) is not str:
        return None
    try:
        parsed = _fromisoformat(value)
    except ValueError:
        return None
    tz = parsed.tzinfo
    if tz is None:
        return parsed.replace(tzinfo=UTC)
    if tz is UTC:
        return parsed
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def iso_ms(moment: dt.datetime) -> str:
    """``2024-05-01T10:00:00.123Z``: the form the Common Alerts API accepts (no microseconds)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _fallback_id(item: Any) -> str:
    # An item without an id still needs a stable key, so a re-fetch of it de-duplicates.
    try:
        text = json.dumps(item, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(item)
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


# Which item field holds the message time and which the category, per stream.
_FIELDS = {"Alerts": ("raisedAt", "category"), "Events": ("when", "group")}
ENDPOINT_EVENT_ID = "endpoint"  # `_siemEventID` of endpoint records
# Fields of an endpoint record that change without anything an analyst reads changing: every
# check-in moves lastSeenAt (and online, where the API sends it).
VOLATILE_ENDPOINT_FIELDS = frozenset({"lastSeenAt", "online"})


def _canonical(value: Any) -> bytes:
    """One spelling of a JSON value whatever its key order (nested keys sorted too)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, sort_keys=True, default=str).encode("utf-8", "replace")


def endpoint_digest(item: dict[str, Any]) -> str:
    """What an endpoint record says, as 16 hex digits: every field but the volatile ones."""
    stable = {k: v for k, v in item.items() if k not in VOLATILE_ENDPOINT_FIELDS}
    return hashlib.sha256(_canonical(stable)).hexdigest()[:16]


def _endpoint_meta(item: Any) -> ItemMeta:
    """An endpoint record: ``<id>:<digest of the whole record>`` (a refresh, which differs at
    least in lastSeenAt, is a new message; a re-fetch of the same record is the same one),
    lastSeenAt and ``endpoint``."""
    if type(item) is not dict:
        return ItemMeta(_fallback_id(item), None, ENDPOINT_EVENT_ID)
    endpoint_id = item.get("id")
    if type(endpoint_id) is str and endpoint_id:
        vendor_id = f"{endpoint_id[:80]}:{hashlib.sha256(_canonical(item)).hexdigest()[:16]}"
    else:
        vendor_id = _fallback_id(item)
    return ItemMeta(vendor_id, parse_time(item.get("lastSeenAt")), ENDPOINT_EVENT_ID)


def map_item(stream: str, item: Any) -> ItemMeta:
    """Vendor id, message time and SIEM event id of one alert, event or endpoint; never raises."""
    if stream == "Endpoints":
        return _endpoint_meta(item)
    time_key, category_key = _FIELDS.get(stream, _FIELDS["Events"])
    if type(item) is not dict:
        return ItemMeta(_fallback_id(item), None, UNCATEGORIZED)
    vendor_id = item.get("id")
    if type(vendor_id) is not str or not vendor_id:
        vendor_id = str(vendor_id) if type(vendor_id) is int else _fallback_id(item)
    return ItemMeta(
        vendor_id, parse_time(item.get(time_key)), siem_event_id(item.get(category_key))
    )
