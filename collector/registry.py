"""A registry of pluggable kinds (source kinds, destination kinds) named in settings.

Each kind is listed by the dotted path of its class in a setting and loaded on first use, so
importing the framework never imports a kind (and no import cycle can form); the list is read
again when the setting changes (tests override it). Kinds may also be registered by hand.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from django.conf import settings
from django.utils.module_loading import import_string

K = TypeVar("K")


class Registry(Generic[K]):
    def __init__(self, setting: str, what: str):
        self.setting = setting
        self.what = what  # "source kind", for the LookupError
        self._configured: dict[str, K] = {}
        self._manual: dict[str, K] = {}
        self._loaded_from: tuple[str, ...] | None = None

    def kinds(self) -> dict[str, K]:
        """Every kind by name: the configured ones, then those registered by hand."""
        paths = tuple(getattr(settings, self.setting))
        if self._loaded_from != paths:
            self._configured.clear()
            for path in paths:
                kind = import_string(path)()
                self._configured[kind.name] = kind
            self._loaded_from = paths
        return {**self._configured, **self._manual}

    def register(self, kind: K) -> K:
        """Register a kind instance by hand (tests); the setting is the normal way."""
        self._manual[kind.name] = kind
        return kind

    def unregister(self, name: str) -> None:
        self._manual.pop(name, None)

    def get(self, name: str) -> K:
        try:
            return self.kinds()[name]
        except KeyError:
            raise LookupError(f"unknown {self.what} {name!r}") from None
