"""The Sophos Central source kind: vendor client, item mapping and the demo.

* :mod:`.kind` — :class:`SophosCentralKind`, registered as ``kind`` (name ``Sophos Central``).
* :mod:`.client` — :class:`SophosSession`: token, whoami, tenants, event and alert pages and the
  checkpoint formats.
* :mod:`.transport` — one keep-alive HTTP session, timeouts, short retries, host allow-list,
  process-wide token cache and server clock.
* :mod:`.classify` — every failure as a :class:`collector.errors.CollectionError`.
* :mod:`.mapping` — per-item vendor id, message time and `_siemEventID`.
* :mod:`.demo` — ``make demo``'s stand-in: the top-level :mod:`sophos_simulator` package (a local
  Sophos Central for tests, benchmarks and demos, ``python -m sophos_simulator``) with a partner
  credential and a demo source.
"""

from collector.kinds.sophos_central.kind import SophosCentralKind

kind = SophosCentralKind()

__all__ = ["SophosCentralKind", "kind"]
