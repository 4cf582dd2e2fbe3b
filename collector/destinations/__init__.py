"""Registry of destination kinds: one package (or module) per receiver protocol.

The delivery engine (collector.delivery), pages and API look a kind up by its name
(``Destination.kind``, the API's ``destinationType``) and talk to it only through
:class:`collector.destinations.base.DestinationKind`. Kinds are listed by the dotted path of
their class in ``settings.DESTINATION_KINDS`` and loaded on first use (collector.registry); the
framework never names a receiver.
"""

from __future__ import annotations

from collector.destinations.base import DestinationKind
from collector.registry import Registry

_registry: Registry[DestinationKind] = Registry("DESTINATION_KINDS", "destination kind")

register = _registry.register
unregister = _registry.unregister
get_destination_kind = _registry.get


def all_destination_kinds() -> list[DestinationKind]:
    return sorted(_registry.kinds().values(), key=lambda kind: kind.label or kind.name)
