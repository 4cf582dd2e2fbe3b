"""The ``Sophos Central`` source kind: what the framework sees of Sophos."""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any

from collector.choices import ErrorType
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
from collector.kinds.sophos_central import endpoints as ep
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
    # How old the last stored copy of an endpoint's details may get before an alert naming the
    # endpoint stores it again, unchanged (a changed record is stored at once).
    "SOPHOS_ENDPOINT_REFRESH_HOURS": ("SUMOSOURCES_SOPHOS_ENDPOINT_REFRESH_HOURS", "24"),
}
# The APIs a user chooses (the seed's Supported APIs); endpoint details come with Alerts.
CHOSEN_STREAMS = ("Alerts", "Events")


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


def endpoint_refresh_seconds() -> float:
    """``SOPHOS_ENDPOINT_REFRESH_HOURS`` in seconds; a value that is not a number of hours above
    zero fails the run loudly (FirstPartyGeneric: it is this installation's setting)."""
    raw = setting("SOPHOS_ENDPOINT_REFRESH_HOURS")
    try:
        hours = float(raw)
    except (TypeError, ValueError):
        hours = float("nan")
    if not hours > 0 or hours == float("inf"):
        raise CollectionError(
            ErrorType.FIRST_PARTY_GENERIC,
            f"SUMOSOURCES_SOPHOS_ENDPOINT_REFRESH_HOURS must be a number of hours above 0, not "
            f"{str(raw)[:40]!r}.",
            remedy="Correct the setting and restart the workers.",
        )
    return hours * 3600.0


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
    streams = (
        StreamSpec("Alerts", "#d63384"),
        StreamSpec("Events", "#0d6efd"),
        StreamSpec(ep.STREAM, "#fd7e14"),
    )
    description = (
        "Alerts (with the details of their endpoints) and events from the Sophos Central APIs, "
        "with a tenant, partner or organization API credential."
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
    siem_event_id_source = "the alert category or the event group (endpoint for endpoint details)"

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
            "supported_apis": [
                s for s in self.source_streams(source.config) if s in CHOSEN_STREAMS
            ],
            "pollingInterval": source.polling_interval,
        }

    def source_streams(self, config: dict[str, Any]) -> tuple[str, ...]:
        """The Supported APIs ticked on the form, in the kind's order (both when none is set),
        then Endpoints whenever Alerts is one of them: like the Sumo source, endpoint details of
        endpoint alerts come with Alerts. Last, so alerts and events are stored before any
        endpoint lookup can fail."""
        chosen = set(_strings(config.get("supported_apis")))
        apis = tuple(s for s in CHOSEN_STREAMS if s in chosen) or CHOSEN_STREAMS
        return (*apis, ep.STREAM) if "Alerts" in apis else apis

    def describe_item(self, item: dict[str, Any]) -> ItemLine:
        """An alert by its raisedAt, category and description; an event by when, group, name;
        an endpoint record by lastSeenAt, its type and hostname, OS and health."""
        if isinstance(item.get("hostname"), str) and ("os" in item or "health" in item):
            return _describe_endpoint(item)

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
        ``events_limit``, ``alerts_page_size``, ``alerts_overlap``, ``endpoint_refresh`` in
        seconds, by default ``SOPHOS_ENDPOINT_REFRESH_HOURS``).

        Settings are read now, not at import, so tests and the simulator can override them.
        """
        options.setdefault("endpoint_refresh", endpoint_refresh_seconds())
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
        once). Both APIs serve the last 24 hours: an older moment is refused. Endpoints, whatever
        the moment: nothing pending and nothing seen, so the endpoints that alerts of the last
        refresh period name are looked up and stored again (a copy identical to a stored one is
        dropped by the unique key); a reset of Alerts re-reads alerts, which queue theirs."""
        if stream == ep.STREAM:
            return {"pending": [], "seen": {}}
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
                readable: list[tuple] = []
                for stream in session.supported_apis:
                    if stream not in CHOSEN_STREAMS:
                        continue
                    for tenant in identity.tenants[:1]:
                        try:
                            items = session.recent(stream, tenant)
                        except CollectionError as exc:
                            if not exc.tenant_scoped:
                                raise
                            summary += f" Tenant {tenant.name or tenant.id} could not be read: {exc.message}"
                            continue
                        samples.extend(items)
                        if stream == "Alerts":
                            readable.extend((tenant, item) for item in items)
                plural = "" if len(samples) == 1 else "s"
                summary += f" {len(samples)} recent item{plural}."
                if session.endpoint_details:
                    summary += _endpoint_check(session, readable)
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


def _endpoint_check(session: SophosSession, alerts: list[tuple]) -> str:
    """The connection test's word on endpoint details: one lookup of an endpoint that a recent
    alert names. Never fails the test; says nothing when no alert names an endpoint."""
    for tenant, alert in alerts:
        endpoint_id = ep.mentioned(alert)
        if endpoint_id is None:
            continue
        try:
            readable = session.endpoint_readable(tenant, endpoint_id)
        except CollectionError as exc:
            return f" Endpoint details: could not be checked ({exc.message})"
        if readable:
            return " Endpoint details: readable."
        return " Endpoint details: not readable (the credential lacks the Endpoint role)."
    return ""


def _describe_endpoint(item: dict[str, Any]) -> ItemLine:
    def text(value: Any) -> str:
        return str(value)[:100] if value not in (None, "") else ""

    os_info = item.get("os") if isinstance(item.get("os"), dict) else {}
    health = item.get("health") if isinstance(item.get("health"), dict) else {}
    parts = [text(item.get("hostname"))]
    if os_info.get("name") or os_info.get("platform"):
        parts.append(text(os_info.get("name") or os_info.get("platform")))
    if health.get("overall"):
        parts.append(f"health {text(health['overall'])}")
    return ItemLine(
        time=text(item.get("lastSeenAt")),
        type=text(item.get("type")) or "endpoint",
        text=", ".join(p for p in parts if p)[:300],
    )
