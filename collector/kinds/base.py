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
    """Who a credential authenticated as.

    ``id_type`` is the kind's own word for the credential, shown to users as it is.
    ``fans_out`` says how the framework schedules it: False runs every tenant inline in the
    source's own task (one tenant, or a few served together); True gives each tenant a task,
    claim and retry streak of its own, so one failing tenant never holds up the others.
    """

    id: str
    id_type: str
    region: str = ""
    tenants: tuple[Tenant, ...] = ()
    fans_out: bool = False

    @property
    def label(self) -> str:
        """The credential in the kind's own words: "an account credential with 3 tenants"."""
        regions = sorted({t.region for t in self.tenants if t.region} | {self.region} - {""})
        where = f" in {', '.join(regions)}" if regions else ""
        article = "an" if self.id_type[:1].lower() in "aeiou" else "a"
        if not self.fans_out:
            return f"{article} {self.id_type} credential{where}"
        count = len(self.tenants)
        return (
            f"{article} {self.id_type} credential with {count} tenant{'' if count == 1 else 's'}"
            f"{where}"
        )


@dataclass(frozen=True)
class DataGap:
    """A period the vendor can no longer serve, reported once when a checkpoint was clamped."""

    stream: str
    tenant_id: str
    lost_from: dt.datetime
    lost_until: dt.datetime


@dataclass(frozen=True)
class Notice:
    """A condition the kind worked around without stopping collection, for the source's health.

    The framework opens (or refreshes) a Warning health event named ``name`` for the incident
    ``scope`` (a key of the kind's choosing, e.g. ``"Events:<tenant id>"``) with ``message``,
    ``remedy`` and ``details`` (no secrets); a Notice with ``resolve=True`` closes it again, for
    a condition that has cleared. ``expires`` marks a one-off fact (it happened, collection went
    on): such a warning resolves by itself after a day, like a data gap.
    """

    name: str
    scope: str
    message: str = ""
    remedy: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    resolve: bool = False
    expires: bool = False


@dataclass
class Page:
    """One page of items as the vendor sent them, and the checkpoint that follows it.

    ``items`` are the vendor JSON objects, unmodified. ``checkpoint`` is a JSON-serialisable dict the
    kind understands; the framework stores it in the same transaction as the items and hands it back
    on the next call. ``bytes`` is the size of the response body. ``notices`` are conditions for
    the source's health (:class:`Notice`), recorded once the page is stored.
    """

    stream: str
    tenant: Tenant
    items: list[dict[str, Any]]
    checkpoint: dict[str, Any]
    bytes: int = 0
    gap: DataGap | None = None
    notices: list[Notice] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamSpec:
    """One stream a kind collects: its name (``_sourceName``) and how charts draw it."""

    name: str
    colour: str  # a CSS colour for chart bars and legends


@dataclass(frozen=True)
class ItemLine:
    """A one-line description of one vendor item, for previews (Test connection)."""

    time: str
    type: str
    text: str


@dataclass(frozen=True)
class Fieldset:
    """A titled group of a kind's form fields on the Add/Edit Source page.

    ``test_connection`` puts the Test connection button under this group (the credentials).
    """

    title: str
    fields: tuple[str, ...]
    test_connection: bool = False


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
# Destination kinds also take switches (Splunk HEC ``ack``) and maps (webhook ``headers``).
BOOLEAN, OBJECT = "boolean", "object"


@dataclass(frozen=True)
class ConfigKey:
    """One key of a kind's JSON config in the API: the form field it feeds and its JSON type."""

    form_field: str
    json_type: str


class SourceKind(ABC):
    """A registered kind of source (``Source.kind`` holds its ``name``).

    This is everything the framework knows of a kind; nothing outside the kind's package names
    its vendor, its config keys or its streams. A kind is registered by the dotted path of its
    class in ``settings.SOURCE_KINDS``; its package is also installed as a Django app, so its
    own ``templates/`` and ``static/`` folders are found.

    Configuration: ``form_class`` (a collector.forms.SourceForm subclass that validates the Add
    Source page and the API alike and declares its fieldsets), ``config_keys`` (the API's config
    keys beyond name, description, category and fields, in the documented order) and
    ``secret_key`` (the one key shown as ``********``; its form field is
    ``config_keys[secret_key].form_field``).
    """

    name: str = ""
    description: str = ""  # one line for the kind's tile
    icon: str = ""  # static path of the tile icon, in the kind's own static folder
    help_template: str = ""  # a template of the kind's own, shown beside its form
    streams: tuple[StreamSpec, ...] = ()
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

    @property
    def secret_field(self) -> str:
        """The form field that carries the secret ("" when the kind has none)."""
        spec = self.config_keys.get(self.secret_key)
        return spec.form_field if spec else ""

    @property
    def stream_names(self) -> tuple[str, ...]:
        return tuple(stream.name for stream in self.streams)

    def source_streams(self, config: dict[str, Any]) -> tuple[str, ...]:
        """The streams a source with this config collects, in collection order (all by default)."""
        return self.stream_names

    @abstractmethod
    def api_config(self, source) -> dict[str, Any]:
        """The kind's own keys of a source's API ``config``, the secret as ``********``."""

    @abstractmethod
    def open(self, *, config: dict[str, Any], secret: str) -> KindSession:
        """A session for one run, with the source's non-secret config and its decrypted secret."""

    def checkpoint_from(self, stream: str, moment: dt.datetime) -> dict[str, Any]:
        """The checkpoint position that makes ``stream`` resume at ``moment`` (aware UTC).

        Raises ValueError, with a sentence for users, for a moment the kind cannot resume at
        (older than the vendor serves) or a stream it does not have; kinds that cannot resume
        from a chosen time raise NotImplementedError.
        """
        raise NotImplementedError(f"{self.name} sources cannot resume from a chosen time.")

    @abstractmethod
    def map_item(self, stream: str, item: dict[str, Any]) -> ItemMeta:
        """Vendor id, message time and SIEM event id of one item; must be fast and never raise."""

    def cef_event(self, stream: str, item: dict[str, Any]):
        """The item as a collector.destinations.base.CefEvent (which item fields are which CEF
        keys is the kind's knowledge), or None to let the CEF writer build a generic one."""
        return None

    def describe_item(self, item: dict[str, Any]) -> ItemLine:
        """A one-line description of an item for previews; kinds say which keys mean what."""
        return ItemLine(time="", type="", text=str(item.get("id", ""))[:200])

    @abstractmethod
    def test_connection(
        self, *, config: dict[str, Any], secret: str, deadline: float = 15.0
    ) -> ConnectionReport:
        """Try the credentials within ``deadline`` seconds overall; never raises."""

    def demo(self, *, port: int) -> KindDemo | None:
        """A running stand-in vendor and a demo source for ``make demo``; None when the kind has none."""
        return None
