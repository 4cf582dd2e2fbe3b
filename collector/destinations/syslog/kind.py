"""The ``Syslog`` destination kind: UDP, TCP or TLS; RFC 5424 or RFC 3164; octet-counting or LF
framing; JSON or CEF messages (see :mod:`.frames` for what goes on the wire)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collector.choices import ErrorType
from collector.destinations.base import DeliverySession, DestinationKind, Outgoing, SendResult
from collector.destinations.syslog import frames, transport
from collector.errors import CollectionError
from collector.kinds.base import INTEGER, TEXT, ConfigKey

PROTOCOLS = ("udp", "tcp", "tls")
FRAMINGS = (frames.OCTET_COUNTING, frames.LF)
FORMATS = (frames.RFC5424, frames.RFC3164)
PAYLOADS = (frames.JSON, frames.CEF)

# The largest UDP payload over IPv4 (65,535 minus the IP and UDP headers). A longer message is
# cut to fit, counted and said in the batch's summary.
MAX_DATAGRAM = 65_507


@dataclass(frozen=True)
class SyslogSettings:
    """A destination's config (the API's keys) read with its defaults; ConfigError when a key
    the form would have refused is wrong (a config stored by hand, or an older version)."""

    host: str
    port: int
    protocol: str = "tcp"
    framing: str = frames.OCTET_COUNTING
    syslog_format: str = frames.RFC5424
    payload: str = frames.JSON
    ca_bundle: str = ""
    client_cert: str = ""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SyslogSettings:
        def choice(key: str, allowed: tuple[str, ...], default: str) -> str:
            value = str(config.get(key) or default).strip().lower()
            if value not in allowed:
                raise CollectionError(
                    ErrorType.THIRD_PARTY_CONFIG,
                    f"The syslog destination's {key} {value!r} is not one of {', '.join(allowed)}.",
                    remedy="Edit the destination and choose one.",
                    api="syslog",
                )
            return value

        host = str(config.get("host") or "").strip().strip("[]")
        port = config.get("port")
        if not host or type(port) is not int or not 1 <= port <= 65535:
            raise CollectionError(
                ErrorType.THIRD_PARTY_CONFIG,
                "The syslog destination needs a host and a port between 1 and 65535.",
                remedy="Edit the destination and enter the receiver's host and port.",
                api="syslog",
            )
        return cls(
            host=host,
            port=port,
            protocol=choice("protocol", PROTOCOLS, "tcp"),
            framing=choice("framing", FRAMINGS, frames.OCTET_COUNTING),
            syslog_format=choice("format", FORMATS, frames.RFC5424),
            payload=choice("payload", PAYLOADS, frames.JSON),
            ca_bundle=str(config.get("caBundle") or "").strip(),
            client_cert=str(config.get("clientCert") or "").strip(),
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.protocol}://{host}:{self.port}"


class SyslogSession(DeliverySession):
    """One delivery run's connection to a syslog receiver.

    **Acknowledgement.** Syslog over TCP and TLS has no application-level acknowledgement: a
    batch counts as acknowledged once ``sendall`` has handed all of it to the kernel. What the
    receiver had not yet processed when it crashed is lost to it, so the delivery engine keeps
    the cursor before the batch in flight until ``send`` returns and redelivers that batch after
    a crash or an error (at least once; ``_messageId`` in JSON and ``externalId`` in CEF let the
    SIEM drop duplicates). A receiver that closed the connection while the session was idle is
    noticed before the next batch (:func:`transport.peer_closed`) and the session reconnects;
    one that closes a new connection at once (a refused client certificate, a sender it does not
    allow) is noticed before anything is written to it (:func:`transport.open_stream`).
    Over UDP a batch is a loop of datagrams that nobody acknowledges at all.
    """

    def __init__(self, settings: SyslogSettings, *, client_key: str = "", hostname=None):
        self.settings = settings
        self._client_key = client_key
        self.encoder = frames.Encoder(
            syslog_format=settings.syslog_format,
            payload=settings.payload,
            framing=settings.framing,
            hostname=hostname,
        )
        self._sock = None
        self._context = None
        self.connections = 0  # connections opened, for tests and the summary

    def __repr__(self) -> str:  # never the key
        return f"<SyslogSession {self.settings.url}>"

    # --- connections --------------------------------------------------------------------------
    def _error(self, exc: BaseException) -> CollectionError:
        s = self.settings
        return transport.classify(exc, s.host, s.port, s.protocol)

    def _connect(self):
        s = self.settings
        if s.protocol == "udp":
            self._sock = transport.open_datagram(s.host, s.port)
        else:
            if s.protocol == "tls" and self._context is None:
                self._context = transport.tls_context(
                    ca_bundle=s.ca_bundle,
                    client_cert=s.client_cert,
                    client_key=self._client_key if s.client_cert else "",
                    where=transport._where(s.host, s.port),
                )
            self._sock = transport.open_stream(s.host, s.port, self._context)
        self.connections += 1
        return self._sock

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def close(self) -> None:
        self._drop()

    # --- sending ------------------------------------------------------------------------------
    def send(self, batch: Sequence[Outgoing]) -> SendResult:
        """Write ``batch`` to the receiver; returns once all of it was written (see the class
        docstring for what that acknowledges). Raises CollectionError, classified."""
        if not batch:
            return SendResult(summary="Nothing to send.")
        if self.settings.protocol == "udp":
            return self._send_datagrams(batch)
        data = self.encoder.stream(batch)
        reused = self._sock is not None
        if reused and transport.peer_closed(self._sock):
            self._drop()
            reused = False
        try:
            if self._sock is None:
                self._connect()
            self._sock.sendall(data)
        except Exception as exc:
            self._drop()
            if not reused or isinstance(exc, CollectionError):
                raise self._error(exc) from None
            # The receiver may have closed the reused connection after the check above: one
            # fresh connection gets the whole batch again (at least once, as after any error).
            try:
                self._connect()
                self._sock.sendall(data)
            except Exception as retry_exc:
                self._drop()
                raise self._error(retry_exc) from None
        count = len(batch)
        return SendResult(
            summary=f"Wrote {count} message{'' if count == 1 else 's'} ({len(data):,} bytes) to "
            f"{self.settings.url}; syslog receivers send no acknowledgement."
        )

    def _send_datagrams(self, batch: Sequence[Outgoing]) -> SendResult:
        encode = self.encoder.message
        truncated = 0
        size = 0
        try:
            sock = self._sock or self._connect()
            send = sock.send
            for message in batch:
                data = encode(message)
                if len(data) > MAX_DATAGRAM:
                    data = frames.truncate_utf8(data, MAX_DATAGRAM)
                    truncated += 1
                size += send(data)
        except Exception as exc:
            self._drop()
            raise self._error(exc) from None
        count = len(batch)
        summary = (
            f"Sent {count} datagram{'' if count == 1 else 's'} ({size:,} bytes) to "
            f"{self.settings.url}; UDP has no acknowledgement."
        )
        if truncated:
            summary += (
                f" {truncated} message{' was' if truncated == 1 else 's were'} longer than "
                f"{MAX_DATAGRAM:,} bytes and cut to fit a datagram."
            )
        return SendResult(summary=summary)


class SyslogKind(DestinationKind):
    name = "Syslog"
    label = "Syslog (UDP, TCP, TLS)"
    description = (
        "RFC 5424 or RFC 3164 syslog over UDP, TCP or TLS, with each message as JSON or CEF."
    )
    # The API's config keys (sumo-api.md, Destinations), in its order, and their form fields.
    config_keys = {
        "host": ConfigKey("host", TEXT),
        "port": ConfigKey("port", INTEGER),
        "protocol": ConfigKey("protocol", TEXT),
        "framing": ConfigKey("framing", TEXT),
        "format": ConfigKey("syslog_format", TEXT),
        "payload": ConfigKey("payload", TEXT),
        "caBundle": ConfigKey("ca_bundle", TEXT),
        "clientCert": ConfigKey("client_cert", TEXT),
        "clientKey": ConfigKey("client_key", TEXT),
    }
    secret_key = "clientKey"
    max_batch_messages = 2000
    max_batch_bytes = 4_000_000

    @property
    def form_class(self):
        # Imported when first needed: forms import models, which the registry must not at startup.
        from collector.destinations.syslog.forms import SyslogDestinationForm

        return SyslogDestinationForm

    def needs_cef(self, config: dict[str, Any]) -> bool:
        return config.get("payload") == frames.CEF

    def api_config(self, destination) -> dict[str, Any]:
        """The config keys; ``clientKey`` is ``********`` when a key is stored, else empty."""
        from collector.crypto import MASK

        config = destination.config or {}
        return {
            "host": config.get("host", ""),
            "port": config.get("port"),
            "protocol": config.get("protocol", "tcp"),
            "framing": config.get("framing", frames.OCTET_COUNTING),
            "format": config.get("format", frames.RFC5424),
            "payload": config.get("payload", frames.JSON),
            "caBundle": config.get("caBundle", ""),
            "clientCert": config.get("clientCert", ""),
            "clientKey": MASK if destination.has_secret else "",
        }

    def open(self, *, config: dict[str, Any], secret: str) -> SyslogSession:
        """A session (no connection yet: the first ``send`` connects). ``secret`` is the client
        key, used only with a client certificate over TLS."""
        return SyslogSession(SyslogSettings.from_config(config), client_key=secret or "")

    def encoded_size(self, message: Outgoing) -> int:
        """The framed size, near enough, of the JSON payload or the generic CEF event: the raw
        JSON, the metadata values with their keys and quotes, and about 190 bytes of syslog
        header, times and ids. A kind's CEF view is mostly shorter than its raw item, so for it
        this errs on the large side (smaller batches, never oversized ones)."""
        raw = message.raw
        size = len(raw) if raw.isascii() else len(raw.encode())
        for key, value in message.metadata.items():
            size += len(key) + (len(value) if type(value) is str else 8) + 6
        return size + 190

    def describe(self, destination) -> str:
        """``tcp://siem.example:6514 · RFC 5424 · CEF`` (and ``· LF`` for LF framing)."""
        config = destination.config or {}
        host = str(config.get("host") or "?")
        host = f"[{host}]" if ":" in host else host
        protocol = str(config.get("protocol") or "tcp")
        parts = [
            f"{protocol}://{host}:{config.get('port') or '?'}",
            "RFC 3164" if config.get("format") == frames.RFC3164 else "RFC 5424",
            "CEF" if config.get("payload") == frames.CEF else "JSON",
        ]
        if protocol != "udp" and config.get("framing") == frames.LF:
            parts.append("LF")
        return " · ".join(parts)
