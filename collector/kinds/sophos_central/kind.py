"""The ``Sophos Central`` source kind: what the framework sees of Sophos."""

from __future__ import annotations

import time
from typing import Any

from collector.errors import CollectionError
from collector.kinds.base import (
    INTEGER,
    TEXT,
    TEXT_LIST,
    ConfigKey,
    ConnectionReport,
    ItemMeta,
    SourceKind,
)
from collector.kinds.sophos_central import classify
from collector.kinds.sophos_central.client import SophosSession
from collector.kinds.sophos_central.mapping import map_item

_TRUE = {"1", "true", "yes", "on"}
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
    streams = ("Alerts", "Events")
    description = (
        "Alerts and events from the Sophos Central APIs, with a tenant, partner or organization "
        "API credential."
    )
    icon = "collector/kinds/sophos-central.svg"
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
            "clientId": source.client_id,
            "clientSecret": MASK,
            "supported_apis": source.supported_apis,
            "pollingInterval": source.polling_interval,
        }

    def open(self, *, config: dict[str, Any], secret: str, **options: Any) -> SophosSession:
        """A session for one run. ``config`` uses the API's key names (``clientId``,
        ``supported_apis``, optional ``exclude_types``); ``options`` tune the HTTP behaviour
        (``timeout``, ``retries``, ``backoff``, ``retry_after_cap``, ``deadline``, ``sleep``,
        ``events_limit``, ``alerts_page_size``, ``alerts_overlap``).

        Settings are read now, not at import, so tests and the simulator can override them.
        """
        from django.conf import settings

        apis = _strings(config.get("supported_apis")) or self.streams
        return SophosSession(
            client_id=str(config.get("clientId") or "").strip(),
            secret=secret or "",
            token_url=settings.SOPHOS_TOKEN_URL,
            api_url=settings.SOPHOS_API_URL,
            extra_hosts=tuple(settings.SOPHOS_EXTRA_HOSTS or ()),
            verify=tls_verify(getattr(settings, "SOPHOS_VERIFY_TLS", True)),
            supported_apis=tuple(a for a in apis if a in self.streams),
            exclude_types=_strings(config.get("exclude_types")),
            **options,
        )

    def map_item(self, stream: str, item: dict[str, Any]) -> ItemMeta:
        return map_item(stream, item)

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
                summary = _identity_sentence(identity)
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
                prefix = f"{_identity_sentence(identity)} Reading {exc.api or 'data'} failed: "
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


def _identity_sentence(identity) -> str:
    regions = sorted({t.region for t in identity.tenants if t.region})
    where = f" in {', '.join(regions)}" if regions else ""
    if identity.id_type == "tenant":
        return f"Authenticated as a tenant credential{where}."
    count = len(identity.tenants)
    return (
        f"Authenticated as {'an' if identity.id_type == 'organization' else 'a'} "
        f"{identity.id_type} credential with {count} tenant{'' if count == 1 else 's'}{where}."
    )
