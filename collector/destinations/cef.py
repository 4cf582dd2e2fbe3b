"""The generic CEF writer: one :class:`CefEvent` as one line of ArcSight Common Event Format.

``CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|key=value key=value ...``

Escaping follows the CEF specification (Micro Focus "Implementing ArcSight CEF", revision 25):

* header fields: ``\\`` becomes ``\\\\`` and ``|`` becomes ``\\|``; the header cannot carry a line
  break, so CR and LF become a space;
* extension values: ``\\`` becomes ``\\\\``, ``=`` becomes ``\\=``, CR becomes ``\\r`` and LF
  becomes ``\\n`` (a pipe needs no escape there);
* extension keys must be alphanumeric: other characters are dropped from a key, and a key left
  empty (or one that collides with an earlier key once cleaned) is left out.

So the line never holds a raw CR or LF, which LF-framed syslog relies on. Other characters,
control characters included, are written as they are: CEF defines no escape for them.

Severity is an integer 0-10 (clamped) or one of ``Unknown``, ``Low``, ``Medium``, ``High``,
``Very-High``; anything else is written as ``Unknown``. Extension values that are None are left
out; booleans are written ``true``/``false``; datetimes as milliseconds since the epoch (the form
CEF's ``rt`` and ``end`` take); everything else with ``str()``.

Also here: :func:`generic_event`, the CEF view of a message whose source kind has none (health
event records, kinds without a mapping), and :func:`syslog_severity`, the syslog severity a CEF
severity stands for.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from typing import Any

from collector.destinations.base import CefEvent, Outgoing

_SEVERITY_WORDS = {
    "unknown": "Unknown",
    "low": "Low",
    "medium": "Medium",
    "high": "High",
    "very-high": "Very-High",
    "veryhigh": "Very-High",
    "very_high": "Very-High",
}


# One scan decides whether a value needs escaping at all; most values do not, and four
# str.replace passes over each of them would cost more than this regex search.
_HEADER_SPECIAL = re.compile(r"[\\|\r\n]").search
_EXT_SPECIAL = re.compile(r"[\\=\r\n]").search


def _header(value: Any) -> str:
    text = value if type(value) is str else str(value)
    if not _HEADER_SPECIAL(text):
        return text
    return (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("\r\n", " ")
        .replace("\r", " ")
        .replace("\n", " ")
    )


def _ext_value(value: Any) -> str:
    if type(value) is not str:
        if value is True or value is False:
            value = "true" if value else "false"
        elif isinstance(value, dt.datetime):
            value = str(epoch_ms(value))
        else:
            value = str(value)
    if not _EXT_SPECIAL(value):
        return value
    return value.replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r").replace("\n", "\\n")


_KEYS: dict[str, str] = {}  # extension key as given -> as written (a few dozen in practice)


def _ext_key(key: Any) -> str:
    try:
        return _KEYS[key]
    except (KeyError, TypeError):
        pass
    text = key if type(key) is str else str(key)
    name = (
        text
        if text.isascii() and text.isalnum()
        else "".join(c for c in text if c.isascii() and c.isalnum())
    )
    if type(key) is str and len(_KEYS) < 1024:
        _KEYS[key] = name
    return name


def severity_text(severity: Any) -> str:
    """The CEF header's severity: ``0``-``10`` or a word of the specification."""
    if type(severity) is int:
        return str(min(10, max(0, severity)))
    if isinstance(severity, float) and severity == severity:  # not NaN
        return str(min(10, max(0, int(severity))))
    text = str(severity).strip()
    if text.isascii() and text.isdigit():
        return str(min(10, int(text)))
    return _SEVERITY_WORDS.get(text.lower(), "Unknown")


def syslog_severity(severity: Any) -> int:
    """The syslog severity for a CEF severity, using CEF's own bands: 0-3 (Low) informational
    (6), 4-6 (Medium) warning (4), 7-8 (High) error (3), 9-10 (Very-High) critical (2);
    Unknown informational."""
    text = severity_text(severity)
    if text.isdigit():
        level = int(text)
        return 6 if level <= 3 else 4 if level <= 6 else 3 if level <= 8 else 2
    return {"Medium": 4, "High": 3, "Very-High": 2}.get(text, 6)


_PREFIXES: dict[tuple, str] = {}  # (vendor, product, version) -> "CEF:0|v|p|ver|"
_SEVERITIES = tuple(str(n) for n in range(11))
_VALID_KEYS: set[str] = set()  # extension keys seen to be alphanumeric already


def format_cef(event: CefEvent) -> str:
    """``event`` as one CEF line (no CR or LF in it), escaped as the specification says.

    This runs for every message of a CEF destination, so the common case is kept cheap: the
    vendor, product and version are the same for all of a kind's events (their escaped text is
    cached), and when every extension key is valid as it is (a dict's keys are then unique, so no
    clash check is needed) a value is only escaped if one scan finds something to escape.
    """
    triple = (event.device_vendor, event.device_product, event.device_version)
    try:
        prefix = _PREFIXES[triple]
    except (KeyError, TypeError):
        prefix = "|".join(("CEF:0", *(_header(part) for part in triple), ""))
        if len(_PREFIXES) < 256:
            with contextlib.suppress(TypeError):
                _PREFIXES[triple] = prefix
    severity = event.severity
    severity = (
        _SEVERITIES[severity]
        if type(severity) is int and 0 <= severity <= 10
        else severity_text(severity)
    )
    head = f"{prefix}{_header(event.signature_id)}|{_header(event.name)}|{severity}|"
    parts = []
    add = parts.append
    special = _EXT_SPECIAL
    valid = _VALID_KEYS
    for key, value in event.extensions.items():
        if value is None:
            continue
        if key not in valid:
            if type(key) is str and key.isascii() and key.isalnum():
                if len(valid) < 1024:
                    valid.add(key)
            else:
                return head + _careful_extension(event.extensions)
        if type(value) is not str or special(value):
            value = _ext_value(value)
        add(f"{key}={value}")
    return head + " ".join(parts)


def _careful_extension(extensions: dict) -> str:
    """The extension when some key needs cleaning: cleaned keys may clash, the first one wins."""
    parts = []
    seen = set()
    for key, value in extensions.items():
        if value is None:
            continue
        name = _ext_key(key)
        if not name or name in seen:
            continue
        seen.add(name)
        parts.append(f"{name}={_ext_value(value)}")
    return " ".join(parts)


def epoch_ms(moment: dt.datetime) -> int:
    """Milliseconds since the epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


GENERIC_VENDOR = "Sumo Sources"
GENERIC_VERSION = "1.0"


def generic_event(message: Outgoing) -> CefEvent:
    """The CEF view of a message whose source kind gave none: vendor ``Sumo Sources``, product
    the source (``_source``), signature ``_siemEventID`` or else the stream (``_sourceName``),
    and the stored vendor JSON, whole, in ``msg``.

    ============================  ======================================================
    CEF                           from
    ============================  ======================================================
    Device Vendor                 ``Sumo Sources``
    Device Product                ``_source`` (``Sumo Sources`` when empty)
    Device Version                ``1.0``
    Signature ID                  ``_siemEventID``, else ``_sourceName``, else ``message``
    Name                          ``_sourceName`` (health records: ``_index``), else ``Message``
    Severity                      ``Unknown`` (the writer cannot judge a generic item)
    ``rt``                        the message time, ms since the epoch
    ``externalId``                the stored message id (a SIEM can de-duplicate re-sends)
    ``cs1`` / ``cs1Label``        ``_sourceCategory`` / ``sourceCategory``
    ``cs2`` / ``cs2Label``        ``_collector`` / ``collector``
    ``cs3`` / ``cs3Label``        ``tenant`` / ``tenant``
    ``msg``                       the raw vendor JSON
    ============================  ======================================================
    """
    meta = message.metadata
    stream = str(meta.get("_sourceName") or "")
    index = str(meta.get("_index") or "")
    extensions: dict[str, Any] = {"rt": epoch_ms(message.message_time), "externalId": message.id}
    for number, (key, label) in enumerate(
        (("_sourceCategory", "sourceCategory"), ("_collector", "collector"), ("tenant", "tenant")),
        start=1,
    ):
        if meta.get(key):
            extensions[f"cs{number}Label"] = label
            extensions[f"cs{number}"] = meta[key]
    raw = message.raw
    if "\n" in raw or "\r" in raw:  # pretty-printed JSON: one line reads better (and is shorter)
        try:
            raw = json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False)
        except ValueError:
            pass  # not JSON after all: the escaping still keeps it on one line
    extensions["msg"] = raw
    return CefEvent(
        device_vendor=GENERIC_VENDOR,
        device_product=str(meta.get("_source") or GENERIC_VENDOR),
        device_version=GENERIC_VERSION,
        signature_id=str(meta.get("_siemEventID") or stream or "message"),
        name=index or stream or "Message",
        severity="Unknown",
        extensions=extensions,
    )
