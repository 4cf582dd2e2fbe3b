"""Sophos Central alerts and events in CEF, as Sophos's own SIEM integration script writes them.

Sophos's script (``siem.py`` of Sophos-Central-SIEM-Integration, format ``cef``) writes
``CEF:0|sophos|sophos central|1.0|<type>|<name>|<severity>|...`` and SIEM content written for it
(ArcSight, Exabeam and others) matches on exactly that vendor, product and signature, so the header
is the script's. The extensions keep the script's key mapping for the fields it maps and use
standard CEF keys for the rest, where the script dumps every remaining field under its JSON name
(``source_info_ip=``), which is not a valid CEF key. Times are milliseconds since the epoch (the
script writes the ISO strings, which CEF does not define for ``rt`` and ``end``).

=====================  ===================================  =========================================
CEF                    event (SIEM events API)              alert (Common Alerts; SIEM alerts too)
=====================  ===================================  =========================================
Device Vendor          ``sophos``                           ``sophos``
Device Product         ``sophos central``                   ``sophos central``
Device Version         ``1.0``                              ``1.0``
Signature ID           ``type``                             ``type``
Name                   ``name``                             ``description``
Severity               ``severity``: none 0, low 1,         ``severity``, the same
                       medium 5, high 8, very_high 10
                       (critical 10; unknown 0)
``rt``                 ``created_at``                       ``raisedAt`` (SIEM alerts: ``created_at``)
``end``                ``when``                             ``raisedAt`` (SIEM alerts: ``when``)
``suser``              ``source``                           ``person.name`` (SIEM alerts: ``source``)
``duid``               ``user_id``                          ``person.id``
``dhost``              ``location``                         ``managedAgent.name`` (``location``)
``src``                ``source_info.ip``                   ``data.source_info.ip``
``deviceExternalId``   ``endpoint_id``                      ``managedAgent.id`` (``data.endpoint_id``)
``filePath``           ``full_file_path``                   -
``externalId``         ``id``                               ``id``
``cat``                ``_siemEventID`` (the event group    ``_siemEventID`` (the alert category)
                       in the 33-value vocabulary)
``cs1`` customerId     ``customer_id``                      ``tenant.id`` (``customer_id``)
``cs2`` endpointType   ``endpoint_type``                    ``managedAgent.type`` (``data.endpoint_type``)
``cs3`` product        -                                    ``product``
``cs4`` threat         ``threat``                           ``threat``
=====================  ===================================  =========================================

A missing or null field leaves its key out. Nothing here raises: an item that is not an object, or
that trips anything unexpected, gives None, and the CEF writer then builds its generic event.
"""

from __future__ import annotations

from typing import Any

from collector.destinations.base import CefEvent
from collector.kinds.sophos_central.mapping import parse_time, siem_event_id

VENDOR = "sophos"
PRODUCT = "sophos central"
VERSION = "1.0"
MISSING = "NA"  # what Sophos's script writes for a missing header field

# Sophos's script's map, plus "critical", which some material shows for events.
SEVERITY = {"none": 0, "low": 1, "medium": 5, "high": 8, "very_high": 10, "critical": 10}


def _ms(value: Any) -> int | None:
    if type(value) is int:  # SIEM alerts' data.* times are already epoch milliseconds
        return value
    moment = parse_time(value)
    return int(moment.timestamp() * 1000) if moment is not None else None


def _text(value: Any) -> str | None:
    """A field as extension text: strings and numbers as they are; objects, lists, null and
    empty strings left out."""
    if type(value) is str:
        return value or None
    if type(value) in (int, float):
        return str(value)
    return None


def _get(item: dict, *path: str) -> Any:
    value: Any = item
    for key in path:
        if type(value) is not dict:
            return None
        value = value.get(key)
    return value


def _first(*values: Any) -> Any:
    for value in values:
        if value is not None and value != "":
            return value
    return None


def cef_event(stream: str, item: Any) -> CefEvent | None:
    """The CEF view of one alert (``stream`` ``Alerts``) or event (any other stream) as the
    module docstring's table says; None for an item this cannot read."""
    try:
        return _cef_event(stream, item)
    except Exception:  # the writer's generic event is the fallback, never an error
        return None


def _cef_event(stream: str, item: Any) -> CefEvent | None:
    if type(item) is not dict:
        return None
    alert = stream == "Alerts"
    category = item.get("category") if alert else item.get("group")
    name = _first(item.get("description"), item.get("name")) if alert else item.get("name")
    severity = item.get("severity")
    extensions: dict[str, Any] = {
        "rt": _ms(_first(item.get("raisedAt"), item.get("created_at"))),
        "end": _ms(_first(item.get("raisedAt"), item.get("when"))),
        "suser": _text(_first(_get(item, "person", "name"), item.get("source"))),
        "duid": _text(_first(_get(item, "person", "id"), item.get("user_id"))),
        "dhost": _text(_first(_get(item, "managedAgent", "name"), item.get("location"))),
        "src": _text(
            _first(_get(item, "source_info", "ip"), _get(item, "data", "source_info", "ip"))
        ),
        "deviceExternalId": _text(
            _first(
                _get(item, "managedAgent", "id"),
                item.get("endpoint_id"),
                _get(item, "data", "endpoint_id"),
            )
        ),
        "filePath": _text(item.get("full_file_path")),
        "externalId": _text(item.get("id")),
        "cat": siem_event_id(category),
    }
    for number, (label, value) in enumerate(
        (
            ("customerId", _first(_get(item, "tenant", "id"), item.get("customer_id"))),
            (
                "endpointType",
                _first(
                    _get(item, "managedAgent", "type"),
                    item.get("endpoint_type"),
                    _get(item, "data", "endpoint_type"),
                ),
            ),
            ("product", item.get("product") if alert else None),
            ("threat", item.get("threat")),
        ),
        start=1,
    ):
        text = _text(value)
        if text is not None:
            extensions[f"cs{number}Label"] = label
            extensions[f"cs{number}"] = text
    return CefEvent(
        device_vendor=VENDOR,
        device_product=PRODUCT,
        device_version=VERSION,
        signature_id=_text(item.get("type")) or MISSING,
        name=_text(name) or MISSING,
        severity=SEVERITY.get(severity.lower(), 0) if type(severity) is str else 0,
        extensions={key: value for key, value in extensions.items() if value is not None},
    )
