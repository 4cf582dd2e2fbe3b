"""Registry of source kinds.

The framework (engine, views, API) looks a kind up by its name (``Source.kind``, the API's
``schemaRef.type``) and talks to it only through :class:`collector.kinds.base.SourceKind`.
Kinds are listed by the dotted path of their class in ``settings.SOURCE_KINDS`` and loaded on
first use (collector.registry), so importing the framework never imports a vendor. Adding a
kind means adding a package and naming its class there; nothing else changes.
"""

from __future__ import annotations

from collector.kinds.base import SourceKind
from collector.registry import Registry

_registry: Registry[SourceKind] = Registry("SOURCE_KINDS", "source kind")

register = _registry.register
unregister = _registry.unregister
get_kind = _registry.get


def all_kinds() -> list[SourceKind]:
    return sorted(_registry.kinds().values(), key=lambda kind: kind.name)
