"""Registry of source kinds.

The framework (engine, views, API) looks a kind up by its name (``Source.kind``, the API's
``schemaRef.type``) and talks to it only through :class:`collector.kinds.base.SourceKind`.
Kinds are listed by the dotted path of their class in ``settings.SOURCE_KINDS`` and loaded on
first use, so importing the framework never imports a vendor (and no import cycle can form).
Adding a kind means adding a package and naming its class there; nothing else changes.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from collector.kinds.base import SourceKind

_CONFIGURED: dict[str, SourceKind] = {}
_MANUAL: dict[str, SourceKind] = {}
_loaded_from: tuple[str, ...] | None = None


def _kinds() -> dict[str, SourceKind]:
    """The configured kinds (re-read when settings.SOURCE_KINDS changes) and any registered by
    hand, by name."""
    global _loaded_from
    paths = tuple(settings.SOURCE_KINDS)
    if _loaded_from != paths:
        _CONFIGURED.clear()
        for path in paths:
            kind = import_string(path)()
            _CONFIGURED[kind.name] = kind
        _loaded_from = paths
    return {**_CONFIGURED, **_MANUAL}


def register(kind: SourceKind) -> SourceKind:
    """Register a kind instance by hand (tests); settings.SOURCE_KINDS is the normal way."""
    _MANUAL[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    _MANUAL.pop(name, None)


def get_kind(name: str) -> SourceKind:
    try:
        return _kinds()[name]
    except KeyError:
        raise LookupError(f"unknown source kind {name!r}") from None


def all_kinds() -> list[SourceKind]:
    return sorted(_kinds().values(), key=lambda kind: kind.name)
