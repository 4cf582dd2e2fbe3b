"""The contract between the collection framework and a vendor-specific source kind.

A kind knows its vendor: HTTP calls, pagination, checkpoint format, payload mapping and the
classification of vendor failures into :class:`collector.errors.CollectionError`. The framework
knows none of that: it stores items and checkpoints, runs the lifecycle and records health.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from collector.kinds.demo import KindDemo


@dataclass(frozen=True)
class Tenant:
    """One unit of collection: a vendor tenant with the host that serves its data."""

    id: str
    name: str
    api_host: str
    region: str = ""


@dataclass(frozen=True)
class Identity:
    """Who a credential authenticated as: ``id_type`` is ``tenant``, ``partner`` or ``organization``."""

    id: str
    id_type: str
    region: str = ""
    tenants: tuple[Tenant, ...] = ()


@dataclass(frozen=True)
class DataGap:
    """A period the vendor can no longer serve, reported once when a checkpoint was clamped."""

    stream: str
    tenant_id: str
    lost_from: dt.datetime
    lost_until: dt.datetime


@dataclass
class Page:
    """One page of items as the vendor sent them, and the checkpoint that follows it.

    ``items`` are the vendor JSON objects, unmodified. ``checkpoint`` is a JSON-serialisable dict the
    kind understands; the framework stores it in the same transaction as the items and hands it back
    on the next call. ``bytes`` is the size of the response body.
    """

    stream: str
    tenant: Tenant
    items: list[dict[str, Any]]
    checkpoint: dict[str, Any]
    bytes: int = 0
    gap: DataGap | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class ItemMeta(NamedTuple):
    """What the framework needs to know of one item to store it."""

    vendor_id: str
    message_time: dt.datetime | None  # aware UTC; None means "use the receipt time"
    siem_event_id: str


@dataclass
class ConnectionReport:
    """The answer of a *test connection*, in plain words for the form."""

    ok: bool
    summary: str
    identity: Identity | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)
    error: Exception | None = None


class KindSession(ABC):
    """A connection to the vendor for one run; not shared between threads."""

    @abstractmethod
    def authenticate(self) -> Identity:
        """Obtain a token and find out who the credential is (and its tenants)."""

    @abstractmethod
    def pages(
        self, *, stream: str, tenant: Tenant, checkpoint: dict[str, Any] | None
    ) -> Iterator[Page]:
        """Yield pages from ``checkpoint`` (None: the first run) until the vendor has no more.

        Works without a prior :meth:`authenticate` call: a token is obtained on demand.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the HTTP connections."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


TEXT, TEXT_LIST, INTEGER = "text", "text list", "integer"


@dataclass(frozen=True)
class ConfigKey:
    """One key of a kind's JSON config in the API: the form field it feeds and its JSON type."""

    form_field: str
    json_type: str


class SourceKind(ABC):
    """A registered kind of source (``Source.kind`` holds its ``name``).

    Besides collecting, a kind declares how it is configured: ``form_class`` (validates the Add
    Source page and the API alike), ``config_keys`` (the API's config keys beyond name,
    description, category and fields, in the documented order) and ``secret_key`` (the one shown
    as ``********``).
    """

    config_keys: dict[str, ConfigKey] = {}
    secret_key: str = ""
    # _siemVendor and _siemProduct of items forwarded to SIEM.
    siem_vendor: str = ""
    siem_product: str = ""
    siem_event_id_source: str = ""  # where _siemEventID comes from, in words for the form

    @property
    @abstractmethod
    def form_class(self) -> type:
        """The form class (a collector.forms.SourceForm) of this kind."""

    @abstractmethod
    def api_config(self, source) -> dict[str, Any]:
        """The kind's own keys of a source's API ``config``, the secret as ``********``."""

    name: str = ""
    streams: tuple[str, ...] = ()
    # Config keys (API names) the kind adds to the common source fields, excluding the secret.
    description: str = ""
    icon: str = ""  # static path of the tile icon

    @abstractmethod
    def open(self, *, config: dict[str, Any], secret: str) -> KindSession:
        """A session for one run, with the source's non-secret config and its decrypted secret."""

    @abstractmethod
    def map_item(self, stream: str, item: dict[str, Any]) -> ItemMeta:
        """Vendor id, message time and SIEM event id of one item; must be fast and never raise."""

    @abstractmethod
    def test_connection(
        self, *, config: dict[str, Any], secret: str, deadline: float = 15.0
    ) -> ConnectionReport:
        """Try the credentials within ``deadline`` seconds overall; never raises."""

    def demo(self, *, port: int) -> KindDemo | None:
        """A running stand-in vendor and a demo source for ``make demo``; None when the kind has none."""
        return None
