"""The contract between the delivery engine and a destination kind (one receiver protocol).

A destination kind knows one protocol and format: how to frame, encode, authenticate and send a
batch of messages, and how to read the receiver's answer into "acknowledged" or a classified
failure. The delivery engine (collector.delivery) knows cursors, batches, claims, retries and
health, and never names a receiver.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from collector.kinds.base import ConfigKey  # noqa: F401 - kinds declare their API keys with it


@dataclass(frozen=True)
class CefEvent:
    """How one item reads in CEF, as its source kind maps it (the writer is generic).

    ``extensions`` maps CEF extension keys (``rt``, ``suser``, ``dhost``, ``msg`` ...) to values;
    the writer escapes header and extension values as the CEF specification says.
    """

    device_vendor: str
    device_product: str
    device_version: str
    signature_id: str
    name: str
    severity: int | str
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outgoing:
    """One stored message as a destination sends it.

    ``id`` is the message's stable id (commit-ordered; idempotent receivers use it as the
    document id). ``raw`` is the vendor JSON exactly as stored. ``metadata`` holds the Sumo-style
    keys: ``_source``, ``_sourceCategory``, ``_collector``, ``_sourceName``, ``_index`` (only for
    health-event records), ``_siemEventID`` (when forwarded to SIEM), ``tenant``, the custom and
    ``_siem*`` fields, plus ``message_time`` and ``receipt_time`` as aware UTC datetimes.
    ``cef`` is the source kind's CEF view of the item (None when it has none, e.g. health-event
    records: a writer then builds a generic one).
    """

    id: int
    raw: str
    metadata: dict[str, Any]
    message_time: dt.datetime
    receipt_time: dt.datetime
    cef: CefEvent | None = None
    test: bool = False  # the clearly marked message of "Send test message"


@dataclass(frozen=True)
class SendResult:
    """What the receiver answered for a batch that was acknowledged, in plain words."""

    summary: str = "Accepted."
    duplicates: int = 0  # messages the receiver already had (an idempotent re-send)
    # Messages the receiver refused for good (e.g. a document its mapping never accepts): counted
    # as delivered so they do not block the stream, and named in ``summary``.
    rejected: int = 0


class DeliverySession(ABC):
    """A connection to the receiver for one delivery run; not shared between threads."""

    @abstractmethod
    def send(self, batch: Sequence[Outgoing]) -> SendResult:
        """Send ``batch`` (already within the kind's limits) and return once the receiver has
        acknowledged every message of it. Raises :class:`collector.errors.CollectionError`
        classified as the design says: a rejected token or 401/403 is ThirdPartyConfig; timeouts,
        refused connections, 5xx and 429 (``retry_after`` from Retry-After) are
        ThirdPartyGeneric; our own failures FirstPartyGeneric. A batch that raises is sent again
        whole later, so a receiver may see it twice unless the kind makes it idempotent.
        Never holds a database transaction."""

    def close(self) -> None:  # noqa: B027 - most sessions have something to close; some don't
        """Release connections."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class DestinationKind(ABC):
    """A registered kind of destination (``Destination.kind`` holds its ``name``, the API's
    ``destinationType``).

    Configuration, as for source kinds: ``form_class`` validates the page and the API alike
    (a ``collector.forms.DestinationForm`` subclass with ``fieldsets``, ``secret_field`` and
    ``kind_config()``); ``config_keys`` maps the API's config keys to form fields; ``secret_key``
    is the one key shown as ``********``.
    """

    name: str = ""  # the API's destinationType, e.g. "Syslog"
    label: str = ""  # for people, e.g. "Syslog (UDP, TCP, TLS)"
    description: str = ""
    config_keys: dict[str, ConfigKey] = {}
    secret_key: str = ""
    # Batch limits: a batch never holds more messages, nor more bytes of encoded payload.
    max_batch_messages: int = 1000
    max_batch_bytes: int = 1_000_000

    @property
    @abstractmethod
    def form_class(self) -> type:
        """The form class of this kind."""

    @property
    def secret_field(self) -> str:
        spec = self.config_keys.get(self.secret_key)
        return spec.form_field if spec else ""

    @abstractmethod
    def api_config(self, destination) -> dict[str, Any]:
        """The kind's keys of a destination's API ``config``, the secret as ``********``."""

    @abstractmethod
    def open(self, *, config: dict[str, Any], secret: str) -> DeliverySession:
        """A session for one delivery run, with the non-secret config and the decrypted secret."""

    def needs_cef(self, config: dict[str, Any]) -> bool:
        """Whether sessions with ``config`` read ``Outgoing.cef`` (asking the source kind for a
        CEF view costs a JSON parse per message, so the engine builds it only when needed)."""
        return False

    def encoded_size(self, message: Outgoing) -> int:
        """About how many bytes ``message`` adds to a batch (for ``max_batch_bytes``)."""
        return len(message.raw) + 256

    def describe(self, destination) -> str:
        """Where it delivers, in a few words for lists ("tcp://siem:6514, RFC 5424, CEF")."""
        return self.label or self.name
