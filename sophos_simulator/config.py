"""Simulator configuration: dataclasses, JSON loading and validation.

A JSON config file holds the same keys as :class:`SimulatorConfig` (unknown keys are an error, so
a typo does not silently fall back to a default)::

    {
      "port": 8765, "seed": 7, "events": 2000, "alerts": 200, "rate": 6,
      "regions": ["eu01", "us01"],
      "tenants": [{"name": "Acme Ltd", "region": "eu01"}, {"name": "Globex", "region": "us01",
                   "events": 50000}],
      "credentials": [{"client_id": "partner-1", "client_secret": "s3cret", "id_type": "partner"},
                      {"client_id": "acme-only", "client_secret": "s3cret", "id_type": "tenant",
                       "tenants": ["Acme Ltd"]}]
    }
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ID_TYPES = ("tenant", "partner", "organization")
DEFAULT_CLIENT_ID = "simulator-client"
DEFAULT_CLIENT_SECRET = "simulator-secret"


@dataclass
class TenantConfig:
    """One simulated tenant; unset values are generated from the seed (``events``/``alerts``:
    this tenant's backlog, overriding the simulator-wide numbers)."""

    id: str | None = None
    name: str | None = None
    region: str | None = None
    events: int | None = None
    alerts: int | None = None


@dataclass
class CredentialConfig:
    """An API credential. ``tenants`` names the tenants it manages (ids or names); None means all
    of them for a partner or organization credential, and the first tenant for a tenant one."""

    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    id_type: str = "tenant"
    id: str | None = None
    tenants: list[str] | None = None


@dataclass
class SimulatorConfig:
    """Everything a simulator run is made of. Times are seconds, rates items per minute."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port, see Simulator.url
    public_host: str | None = None  # host name advertised in URLs (default: host, or 127.0.0.1)
    seed: int = 1
    # The main credential (used when `credentials` is empty).
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    id_type: str = "tenant"
    credentials: list[CredentialConfig] = field(default_factory=list)
    # Tenants: a count, or a list of TenantConfig (or dicts), spread over `regions` in turn.
    tenants: int | list[TenantConfig] = 1
    regions: list[str] = field(default_factory=lambda: ["eu01", "us01"])
    # Items: backlog per tenant, spread over the last `backlog_hours`, then `rate` new ones a minute.
    events: int = 500
    alerts: int = 50
    backlog_hours: float = 12.0
    rate: float = 0.0
    events_rate: float | None = None  # default: rate
    alerts_rate: float | None = None  # default: rate
    late_fraction: float = 0.02  # share of items visible some time after their own timestamp
    late_max_seconds: float = 60.0
    unknown_category_fraction: float = 0.02
    zoneless_fraction: float = 0.05  # share of alerts whose raisedAt has no zone designator
    # Managed agents per tenant: the devices alerts and events name, and what the Endpoint API
    # serves. Some change every `endpoint_change_hours` of simulator time (0: never).
    endpoints: int = 24
    endpoint_change_hours: float = 8.0
    # Limits, as the real API has them.
    events_limit_min: int = 200
    events_limit_max: int = 1000
    events_limit_default: int = 200
    alerts_max_page_size: int = 1000
    alerts_default_page_size: int = 50
    tenants_max_page_size: int = 100
    endpoints_max_page_size: int = 500
    endpoints_default_page_size: int = 50
    endpoints_max_ids: int = 100  # ids one Endpoint API request may filter on
    window_hours: float = 24.0
    token_lifetime: float = 3600.0
    latency: float = 0.0  # added to every answer
    tls_cert: str | None = None
    tls_key: str | None = None

    def __post_init__(self):
        if isinstance(self.tenants, list):
            self.tenants = [_coerce(TenantConfig, t) for t in self.tenants]
        self.credentials = [_coerce(CredentialConfig, c) for c in self.credentials]
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first unusable value."""
        for cred in self.all_credentials():
            if cred.id_type not in ID_TYPES:
                raise ValueError(
                    f"id_type must be one of {', '.join(ID_TYPES)}, not {cred.id_type!r}"
                )
            if not cred.client_id or not cred.client_secret:
                raise ValueError("a credential needs a client_id and a client_secret")
        count = self.tenants if isinstance(self.tenants, int) else len(self.tenants)
        if count < 1:
            raise ValueError("the simulator needs at least one tenant")
        if not self.regions or not all(isinstance(r, str) and r for r in self.regions):
            raise ValueError("regions must be a non-empty list of names such as eu01")
        for name in ("events", "alerts", "port", "events_limit_min", "tenants_max_page_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if not 1 <= self.events_limit_min <= self.events_limit_max:
            raise ValueError("events_limit_min must be between 1 and events_limit_max")
        if self.alerts_max_page_size < 1:
            raise ValueError("alerts_max_page_size must be at least 1")
        for name in ("endpoints", "endpoints_max_page_size", "endpoints_max_ids"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 1 <= self.endpoints_default_page_size <= self.endpoints_max_page_size:
            raise ValueError(
                "endpoints_default_page_size must be between 1 and endpoints_max_page_size"
            )
        if self.endpoint_change_hours < 0:
            raise ValueError("endpoint_change_hours must not be negative")
        for name in ("late_fraction", "unknown_category_fraction", "zoneless_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key go together")

    def all_credentials(self) -> list[CredentialConfig]:
        if self.credentials:
            return list(self.credentials)
        return [CredentialConfig(self.client_id, self.client_secret, self.id_type)]

    def tenant_configs(self) -> list[TenantConfig]:
        if isinstance(self.tenants, int):
            return [TenantConfig() for _ in range(self.tenants)]
        return list(self.tenants)

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> SimulatorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown simulator settings: {', '.join(unknown)}")
        return cls(**{**data, **{k: v for k, v in overrides.items() if v is not None}})

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> SimulatorConfig:
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the simulator config must be a JSON object")
        return cls.from_dict(data, **overrides)

    def with_overrides(self, **overrides: Any) -> SimulatorConfig:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _coerce(kind, value):
    if isinstance(value, kind):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"expected an object for {kind.__name__}, got {value!r}")
    allowed = {f.name for f in fields(kind)}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ValueError(f"unknown {kind.__name__} settings: {', '.join(unknown)}")
    return kind(**value)


def defaults() -> dict[str, Any]:
    """Default value of every setting (for the command's --help)."""
    result = {}
    for f in fields(SimulatorConfig):
        if f.default is not MISSING:
            result[f.name] = f.default
        elif f.default_factory is not MISSING:
            result[f.name] = f.default_factory()
    return result
