"""The ``Sophos Central`` source kind: what the framework sees of Sophos."""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any

from collector.errors import CollectionError
from collector.kinds.base import (
    INTEGER,
    TEXT,
    TEXT_LIST,
    ConfigKey,
    ConnectionReport,
    ItemLine,
    ItemMeta,
    SourceKind,
    StreamSpec,
)
from collector.kinds.sophos_central import classify
from collector.kinds.sophos_central.cef import cef_event
from collector.kinds.sophos_central.client import WINDOW, SophosSession
from collector.kinds.sophos_central.mapping import iso_ms, map_item

_TRUE = {"1", "true", "yes", "on"}

# The kind's own settings: a Django setting of this name wins (tests and the demo set them), else
# the environment variable, else the real Sophos Central.
SETTINGS = {
    "SOPHOS_TOKEN_URL": (
        "SUMOSOURCES_SOPHOS_TOKEN_URL",
        "https://id.sophos.com/api/v2/oauth2/token",
    ),
    "SOPHOS_API_URL": ("SUMOSOURCES_SOPHOS_API_URL", "https://api.central.sophos.com"),
    "SOPHOS_EXTRA_HOSTS": ("SUMOSOURCES_SOPHOS_EXTRA_HOSTS", ""),
    "SOPHOS_VERIFY_TLS": ("SUMOSOURCES_SOPHOS_VERIFY_TLS", "true"),
}


def setting(name: str) -> Any:
    """One of :data:`SETTINGS`, read now (not at import), so overrides take effect at once."""
    from django.conf import settings

    value = getattr(settings, name, None)
    if value is not None:
        return value
    variable, default = SETTINGS[name]
    value = os.environ.get(variable, default)
    if name == "SOPHOS_EXTRA_HOSTS":
        return [host.strip() for host in value.split(",") if host.strip()]
    return value


_FALSE = {"0", "false", "no", "off"}


def tls_verify(value: Any) -> bool | str:
    """``SOPHOS_VERIFY_TLS``: true/false, or the path of a CA bundle (a simulator's certificate)."""
    if isinstance(value, bool):
        return value
    text = str(value or "").strip()
    if text.lower() in _TRUE or not text:
        return True
    if text.lower() in _FALSE:
        return False
    return text


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        return ()
    return tuple(str(v).strip() for v in value if str(v).strip())


class SophosCentralKind(SourceKind):
    name = "Sophos Central"
    streams = (StreamSpec("Alerts", "#d63384"), StreamSpec("Events", "#0d6efd"))
    description = (
        "Alerts and events from the Sophos Central APIs, with a tenant, partner or organization "
        "API credential."
    )
    icon = "kinds/sophos_central/icon.svg"
    help_template = "kinds/sophos_central/help.html"
    # The seed's JSON configuration keys, in its order.
    config_keys = {
        "clientId": ConfigKey("client_id", TEXT),
        "clientSecret": ConfigKey("client_secret", TEXT),
        "supported_apis": ConfigKey("supported_apis", TEXT_LIST),
        "pollingInterval": ConfigKey("polling_interval", INTEGER),
    }
    secret_key = "clientSecret"
    siem_vendor = "Sophos"
    siem_product = "Sophos Central"
    siem_event_id_source = "the alert category or the event group"

    @property
    def form_class(self):
        # Imported when first needed: forms import models, which the registry must not at startup.
        from collector.kinds.sophos_central.forms import SophosCentralSourceForm

        return SophosCentralSourceForm

    def api_config(self, source) -> dict[str, Any]:
        from collector.crypto import MASK

        return {
            "clientId": source.config.get("clientId", ""),
            "clientSecret": MASK,
            "supported_apis": list(self.source_streams(source.config)),
            "pollingInterval": source.polling_interval,
        }

    def source_streams(self, config: dict[str, Any]) -> tuple[str, ...]:
        """The Supported APIs ticked on the form, in the kind's order (both when none is set)."""
        chosen = set(_strings(config.get("supported_apis")))
        return tuple(s for s in self.stream_names if s in chosen) or self.stream_names

    def describe_item(self, item: dict[str, Any]) -> ItemLine:
        """An alert by its raisedAt, category and description; an event by when, group, name."""

        def first(*keys: str) -> str:
            for key in keys:
                if item.get(key):
                    return str(item[key])[:300]
            return ""

        return ItemLine(
            time=first("raisedAt", "when", "created_at"),
            type=first("category", "group", "type"),
            text=first("description", "name", "type", "id"),
        )

    def open(self, *, config: dict[str, Any], secret: str, **options: Any) -> SophosSession:
        """A session for one run. ``config`` uses the API's key names (``clientId``,
        ``supported_apis``, optional ``exclude_types``); ``options`` tune the HTTP behaviour
        (``timeout``, ``retries``, ``backoff``, ``retry_after_cap``, ``deadline``, ``sleep``,
        ``events_limit``, ``alerts_page_size``, ``alerts_overlap``).

        Settings are read now, not at import, so tests and the simulator can override them.
        """
        return SophosSession(
            client_id=str(config.get("clientId") or "").strip(),
            secret=secret or "",
            token_url=setting("SOPHOS_TOKEN_URL"),
            api_url=setting("SOPHOS_API_URL"),
            extra_hosts=tuple(setting("SOPHOS_EXTRA_HOSTS") or ()),
            verify=tls_verify(setting("SOPHOS_VERIFY_TLS")),
            supported_apis=self.source_streams(config),
            exclude_types=_strings(config.get("exclude_types")),
            **options,
        )

    def checkpoint_from(self, stream: str, moment: dt.datetime) -> dict[str, Any]:
        """Events: a checkpoint without a cursor whose ``position`` is ``moment``, so the next
        run asks ``from_date=moment``. Alerts: ``raisedAt`` at ``moment`` and nothing seen, so
        the next run asks from ``moment`` less the usual overlap (what it reads twice is stored
        once). Both APIs serve the last 24 hours: an older moment is refused."""
        oldest = time.time() - WINDOW
        if moment.timestamp() < oldest:
            limit = dt.datetime.fromtimestamp(oldest, dt.UTC)
            raise ValueError(
                "Sophos Central serves the last 24 hours only: choose a time after "
                f"{limit:%Y-%m-%d %H:%M} UTC."
            )
        if stream == "Events":
            return {"cursor": None, "position": iso_ms(moment)}
        if stream == "Alerts":
            return {"raisedAt": iso_ms(moment), "seen": {}}
        raise ValueError(f"Sophos Central has no stream {stream!r}.")

    def map_item(self, stream: str, item: dict[str, Any]) -> ItemMeta:
        return map_item(stream, item)

    def cef_event(self, stream: str, item: dict[str, Any]):
        """The item in CEF as Sophos's SIEM script writes it (see sophos_central.cef)."""
        return cef_event(stream, item)

    def test_connection(
        self, *, config: dict[str, Any], secret: str, deadline: float = 15.0, **options: Any
    ) -> ConnectionReport:
        """Authenticate and read a few recent items of the first tenant within ``deadline`` s.

        Never raises: every failure is reported in plain words, with the classified error.
        """
        options.setdefault("deadline", time.monotonic() + deadline)
        identity = None
        try:
            with self.open(config=config, secret=secret, **options) as session:
                identity = session.authenticate()
                summary = f"Authenticated as {identity.label}."
                samples: list[dict[str, Any]] = []
                for stream in session.supported_apis:
                    for tenant in identity.tenants[:1]:
                        try:
                            samples.extend(session.recent(stream, tenant))
                        except CollectionError as exc:
                            if not exc.tenant_scoped:
                                raise
                            summary += f" Tenant {tenant.name or tenant.id} could not be read: {exc.message}"
                plural = "" if len(samples) == 1 else "s"
                summary += f" {len(samples)} recent item{plural}."
                return ConnectionReport(True, summary, identity, samples[:10])
        except CollectionError as exc:
            prefix = ""
            if identity is not None:
                prefix = f"Authenticated as {identity.label}. Reading {exc.api or 'data'} failed: "
            return ConnectionReport(
                False, f"{prefix}{exc.message} {exc.remedy}".strip(), identity, error=exc
            )
        except Exception as exc:  # the form must get an answer whatever went wrong
            error = classify.bad_config(
                f"The connection test failed unexpectedly ({type(exc).__name__}).",
                "Try again; if it keeps failing, check the server log.",
            )
            return ConnectionReport(False, f"{error.message} {error.remedy}", identity, error=error)

    def demo(self, *, port: int):
        """The bundled simulator with a partner credential and a source reading from it."""
        # Imported when asked: web and worker processes never load the simulator otherwise.
        from collector.kinds.sophos_central import demo

        return demo.start(port=port)
