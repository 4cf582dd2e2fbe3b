"""Registry of source kinds.

The framework (engine, views, API) looks a kind up by its name (``Source.kind``, the API's
``schemaRef.type``) and talks to it only through :class:`collector.kinds.base.SourceKind`.
Adding a kind means adding a package here and registering it; nothing else changes.
"""

from collector.kinds.base import SourceKind

_REGISTRY: dict[str, SourceKind] = {}


def register(kind: SourceKind) -> SourceKind:
    _REGISTRY[kind.name] = kind
    return kind


def get_kind(name: str) -> SourceKind:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise LookupError(f"unknown source kind {name!r}") from None


def all_kinds() -> list[SourceKind]:
    return sorted(_REGISTRY.values(), key=lambda kind: kind.name)


def load_builtin_kinds() -> None:
    from collector.kinds.sophos_central import kind as sophos_kind

    register(sophos_kind)
