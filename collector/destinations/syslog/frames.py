"""Syslog messages as bytes: header (RFC 5424 or RFC 3164), payload (JSON or CEF) and framing.

**Headers.** RFC 5424: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`` with the message
time in RFC 3339 UTC with milliseconds (``2026-05-01T10:00:00.123Z``), our host name, APP-NAME
``sumosources``, PROCID ``-``, MSGID the stream (``_sourceName``, e.g. ``Alerts``) or ``-`` and
no structured data (``-``). No BOM is written before MSG: receivers keep it as part of the text
more often than they strip it, and MSG is UTF-8 anyway. RFC 3164: ``<PRI>Mmm dd hh:mm:ss HOSTNAME
sumosources: MSG``, the time in UTC (the format has no zone and no year) with English month names.
Header fields are printable US-ASCII only (RFC 5424's PRINTUSASCII), cut to the RFC's lengths.

**PRI** = facility local0 (16) x 8 + severity: informational (6), so ``<134>``, for JSON; for
CEF the severity follows the CEF severity's bands (0-3 informational, 4-6 warning, 7-8 error,
9-10 critical; see :func:`collector.destinations.cef.syslog_severity`).

**JSON payload**: one flat object on one line, the Sumo metadata first and the vendor item last::

    {"_source":"EU East","_sourceCategory":"security/east","_collector":"Hosted EU",
     "_sourceName":"Alerts","tenant":"Acme","_siemEventID":"malware", <custom fields>,
     "_messageId":123,"_messageTime":"2026-05-01T10:00:00.123Z",
     "_receiptTime":"2026-05-01T10:00:01.456Z","message":{<the vendor JSON as stored>}}

``_messageId`` is stable, so a SIEM can drop the duplicates an at-least-once re-send brings;
``_test`` is true on the "Send test message" message. Custom field names never start with ``_``,
so they cannot clash with these keys; one literally named ``message`` is written as
``message_field``. The vendor JSON is spliced in as stored (it is compact JSON, so it is copied,
not re-encoded); only one that holds a raw line break is re-serialised.

**CEF payload**: :func:`collector.destinations.cef.format_cef` of the source kind's CEF view, or of
:func:`collector.destinations.cef.generic_event` when it has none.

**Framing** (RFC 6587): octet-counting ``LEN SP MSG``, or ``MSG LF``, which is safe only because no
MSG holds an LF: the header fields are sanitised, JSON escapes line breaks inside strings, a raw
item with a line break is re-serialised, and CEF escapes them. UDP sends MSG alone, one datagram
per message.
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable, Sequence

import orjson

from collector.destinations.base import Outgoing
from collector.destinations.cef import format_cef, generic_event, syslog_severity

UTC = dt.UTC
APP_NAME = "sumosources"
FACILITY = 16  # local0
INFO = 6
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

RFC5424, RFC3164 = "rfc5424", "rfc3164"
JSON, CEF = "json", "cef"
OCTET_COUNTING, LF = "octet-counting", "lf"


def printusascii(text: str, limit: int) -> str:
    """``text`` with only the characters RFC 5424 allows in header fields (33-126), cut to
    ``limit``; ``-`` (the NILVALUE) when nothing is left."""
    if not (text.isascii() and text.isprintable() and " " not in text):
        text = "".join(c for c in text if "!" <= c <= "~")
    return text[:limit] or "-"


def our_hostname() -> str:
    """This machine's name as a syslog HOSTNAME (RFC 5424 allows 255 characters)."""
    return printusascii(socket.gethostname(), 255)


_UTC_Z = orjson.OPT_UTC_Z


def iso_ms(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with milliseconds and ``Z``; a naive datetime is taken as UTC.

    Called two or three times per message sent, so it uses orjson's C formatter (a third of
    datetime.isoformat's cost): ``"2026-05-01T10:00:00.123456Z"``, cut to milliseconds; orjson
    leaves the fraction out when it is zero."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    text = orjson.dumps(moment, option=_UTC_Z)
    if len(text) == 22:  # '"YYYY-MM-DDTHH:MM:SSZ"'
        return text[1:20].decode() + ".000Z"
    return text[1:24].decode() + "Z"


def bsd_time(moment: dt.datetime) -> str:
    """RFC 3164's ``Mmm dd hh:mm:ss`` (day padded with a space), in UTC."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (
        f"{MONTHS[moment.month - 1]} {moment.day:2d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )


def _dumps(value) -> bytes:
    try:
        return orjson.dumps(value, default=str)
    except (TypeError, orjson.JSONEncodeError):  # an integer beyond 64 bits, a lone surrogate
        import json

        # ASCII output: a lone surrogate becomes a backslash-u escape, not an encoding error.
        return json.dumps(value, default=str, separators=(",", ":")).encode()


def _raw_bytes(raw: str) -> bytes:
    """The stored vendor JSON as bytes for splicing; guaranteed free of CR and LF."""
    if "\n" in raw or "\r" in raw:
        try:
            return orjson.dumps(orjson.loads(raw))
        except orjson.JSONDecodeError:
            return _dumps(raw)  # not JSON (the store holds JSON): send it as a string
    try:
        return raw.encode()
    except UnicodeEncodeError:  # a lone surrogate: "?" keeps the line valid UTF-8 and JSON
        return raw.encode("utf-8", "replace")


def json_payload(message: Outgoing, message_time: str | None = None) -> bytes:
    """The JSON payload of ``message`` (see the module docstring), one line of UTF-8;
    ``message_time`` is its ``iso_ms`` when the caller has it already."""
    meta = message.metadata
    stamp = message_time or iso_ms(message.message_time)
    if "message" in meta or message.test or type(message.id) is not int:
        if "message" in meta:
            meta = dict(meta)
            meta["message_field"] = meta.pop("message")
        head = {
            **meta,
            "_messageId": message.id,
            "_messageTime": stamp,
            "_receiptTime": iso_ms(message.receipt_time),
        }
        if message.test:
            head["_test"] = True
        # The object without its closing brace, then the vendor JSON as the last key.
        return b"".join((_dumps(head)[:-1], b',"message":', _raw_bytes(message.raw), b"}"))
    # The common case, byte for byte the same as above without building a dict per message:
    # the metadata object, opened up, then the id and times (digits only: nothing to escape).
    head = _dumps(meta)
    tail = (
        f'{"," if len(head) > 2 else ""}"_messageId":{message.id},"_messageTime":"{stamp}",'
        f'"_receiptTime":"{iso_ms(message.receipt_time)}","message":'
    )
    return b"".join((head[:-1], tail.encode(), _raw_bytes(message.raw), b"}"))


def cef_payload(message: Outgoing) -> tuple[int, bytes]:
    """The syslog severity and the CEF line of ``message``."""
    event = message.cef if message.cef is not None else generic_event(message)
    # "replace": a lone surrogate in some value must not stop delivery (it becomes "?").
    return syslog_severity(event.severity), format_cef(event).encode("utf-8", "replace")


class Encoder:
    """Turns :class:`Outgoing` messages into syslog messages and framed batches.

    Built once per session: everything that does not depend on the message (PRI, host name,
    header layout, the choice of payload and framing) is decided here, so the per-message work is
    a timestamp, one JSON dump or CEF line, and a few byte concatenations.
    """

    def __init__(
        self,
        *,
        syslog_format: str = RFC5424,
        payload: str = JSON,
        framing: str = OCTET_COUNTING,
        hostname: str | None = None,
    ):
        self.syslog_format = syslog_format
        self.payload = payload
        self.framing = framing
        self.hostname = printusascii(hostname, 255) if hostname is not None else our_hostname()
        self._msgids: dict[str, bytes] = {}
        self.message: Callable[[Outgoing], bytes] = (
            self._rfc5424 if syslog_format == RFC5424 else self._rfc3164
        )

    def _msgid(self, stream) -> bytes:
        try:
            return self._msgids[stream]
        except (KeyError, TypeError):
            value = printusascii(str(stream or ""), 32).encode()
            if isinstance(stream, str) and len(self._msgids) < 1024:
                self._msgids[stream] = value
            return value

    def _body(self, message: Outgoing, message_time: str | None = None) -> tuple[int, bytes]:
        if self.payload == CEF:
            severity, body = cef_payload(message)
            return FACILITY * 8 + severity, body
        return FACILITY * 8 + INFO, json_payload(message, message_time)

    def _rfc5424(self, message: Outgoing) -> bytes:
        """``<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID - MSG``"""
        stamp = iso_ms(message.message_time)
        pri, body = self._body(message, stamp)
        msgid = self._msgid(message.metadata.get("_sourceName"))
        head = f"<{pri}>1 {stamp} {self.hostname} {APP_NAME} - "
        return b"".join((head.encode(), msgid, b" - ", body))

    def _rfc3164(self, message: Outgoing) -> bytes:
        """``<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG``"""
        pri, body = self._body(message)
        head = f"<{pri}>{bsd_time(message.message_time)} {self.hostname} {APP_NAME}: "
        return head.encode() + body

    def stream(self, batch: Sequence[Outgoing]) -> bytes:
        """The whole batch framed for a TCP or TLS stream, as one buffer for one ``sendall``."""
        encode = self.message
        if self.framing == LF:
            return b"".join([encode(m) + b"\n" for m in batch])
        parts = []
        append = parts.append
        for m in batch:
            msg = encode(m)
            append(b"%d " % len(msg))
            append(msg)
        return b"".join(parts)


def truncate_utf8(data: bytes, limit: int) -> bytes:
    """``data`` cut to at most ``limit`` bytes without splitting a UTF-8 character."""
    if len(data) <= limit:
        return data
    cut = data[:limit]
    # Step back over continuation bytes (10xxxxxx) to the start of the character that was cut.
    end = len(cut)
    back = end - 1
    while back >= 0 and cut[back] & 0xC0 == 0x80:
        back -= 1
    if back >= 0:
        lead = cut[back]
        width = 1 if lead < 0x80 else 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4
        if back + width > end:
            return cut[:back]
    return cut
