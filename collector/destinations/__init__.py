"""Registry of destination kinds: one package (or module) per receiver protocol.

The delivery engine (collector.delivery), pages and API look a kind up by its name
(``Destination.kind``, the API's ``destinationType``) and talk to it only through
:class:`collector.destinations.base.DestinationKind`. Kinds are listed by the dotted path of
their class in ``settings.DESTINATION_KINDS`` and loaded on first use; the framework never
names a receiver.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from collector.destinations.base import DestinationKind

_CONFIGURED: dict[str, DestinationKind] = {}
_MANUAL: dict[str, DestinationKind] = {}
_loaded_from: tuple[str, ...] | None = None


def _kinds() -> dict[str, DestinationKind]:
    global _loaded_from
    paths = tuple(settings.DESTINATION_KINDS)
    if _loaded_from != paths:
        _CONFIGURED.clear()
        for path in paths:
            kind = import_string(path)()
            _CONFIGURED[kind.name] = kind
        _loaded_from = paths
    return {**_CONFIGURED, **_MANUAL}


def register(kind: DestinationKind) -> DestinationKind:
    """Register a kind instance by hand (tests); settings.DESTINATION_KINDS is the normal way."""
    _MANUAL[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    _MANUAL.pop(name, None)


def get_destination_kind(name: str) -> DestinationKind:
    try:
        return _kinds()[name]
    except KeyError:
        raise LookupError(f"unknown destination kind {name!r}") from None


def all_destination_kinds() -> list[DestinationKind]:
    return sorted(_kinds().values(), key=lambda kind: kind.label or kind.name)
