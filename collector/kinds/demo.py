"""What a source kind hands ``make demo``: a running stand-in vendor and a source to point at it.

The demo command (``collector/management/commands/demo.py``) names no vendor: it asks each kind
for :meth:`collector.kinds.base.SourceKind.demo`, applies what the answer says and creates the
source through the kind's own form, so a kind's demo is validated like any user's source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class KindDemo:
    """A kind's running demo.

    * ``description``: one line printed when the demo starts (where the stand-in listens).
    * ``source_name``: the demo source's name on the demo collector.
    * ``collector_category``: the demo source's Source Category (``_sourceCategory`` of its
      items), e.g. ``demo/<kind>``; the demo collector's own category is ``demo``.
    * ``source_data``: the kind form's data for the other fields, the secret included; it is
      only ever given to that form in this process, never printed or passed on.
    * ``env``: environment variables the web server and worker (child processes) need to reach
      the stand-in, e.g. its URLs.
    * ``settings``: Django settings to apply in this process for the same purpose.
    * ``stop``: stops the stand-in; safe to call twice.
    """

    description: str
    source_name: str
    collector_category: str
    source_data: dict[str, Any]
    stop: Callable[[], None]
    env: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        # Keeps the secret in source_data out of tracebacks and logs.
        return f"KindDemo(source_name={self.source_name!r}, description={self.description!r})"
