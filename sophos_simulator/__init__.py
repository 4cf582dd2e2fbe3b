"""A local Sophos Central: token, whoami, tenants, SIEM events and alerts, Common Alerts,
endpoints.

A program of its own, without Django: ``python -m sophos_simulator`` (or the product's
``python manage.py sophos_simulator`` wrapper) runs it for demos and manual tests, and tests and
benchmarks start it in-process. It follows ``sophos-central-api.md``, strict where the real API
is strict, from deterministic seeded data. Python API::

    from sophos_simulator import Simulator, SimulatorConfig

    with Simulator(SimulatorConfig(id_type="partner", tenants=3, events=1000, alerts=100)) as sim:
        sim.url, sim.token_url, sim.api_url   # base URL (port 0 picks a free port)
        sim.extra_hosts                       # ["127.0.0.1:PORT"] for SOPHOS_EXTRA_HOSTS
        sim.env()                             # SUMOSOURCES_SOPHOS_* variables for another process
        sim.credential()                      # .client_id, .client_secret, .id_type, .id
        sim.tenants                           # [SimTenant(id, name, region, index)]
        sim.region_host("eu01")               # a data host: <url>/region/eu01
        sim.stats()                           # counters, as GET /_simulator/stats
        sim.set_fault("status", api="Events", status=503, times=2)   # -> fault id
        sim.set_fault("status", api="Events", tenant="Acme Ltd", status=403)
        sim.clear_faults()                    # or api=/tenant=/id=
        sim.advance(3600)                     # move the simulator clock forward
        sim.add_items("Alerts", 5, tenant=None, late_seconds=30)
        sim.item_ids(tenant_id, "Events")     # every item id that exists now
        sim.endpoint_ids(tenant_id)           # the endpoints the Endpoint API serves
        sim.named_endpoints(tenant_id)        # those that endpoint alerts name now
        sim.add_items("Alerts", 5, endpoint=endpoint_id)   # endpoint alerts about one endpoint
        sim.endpoint(endpoint_id)             # its record now; touch_endpoint(id) changes it
        sim.set_fault("status", api="Endpoints", status=403)   # a credential without the role
        sim.expire_tokens()

``Simulator(config, **overrides)`` also takes the settings as keywords
(``Simulator(id_type="partner", tenants=3)``); ``start()``/``stop()`` work without ``with``.
Fault kinds and options are in :mod:`.faults`, the config file format in :mod:`.config`, the
control interface over HTTP (``/_simulator/stats``, ``/_simulator/faults`` ...) in
:mod:`.server`, the command line in :mod:`.cli`, and the README (section "The Sophos Central
simulator").

Counters for "items served == items stored" checks: ``stats()["tenants"][id]["streams"]`` has,
per stream (``Events``, ``Alerts`` from the Common Alerts API, ``SiemAlerts``, ``Endpoints``
from the Endpoint API), ``available`` (items that exist), ``served`` (distinct items sent in full
at least once) and ``served_total``; ``["endpoint_lookups"]`` counts Endpoint API calls. The
Endpoint API's contract is ``docs/sophos-endpoint-api.md``.
"""

from sophos_simulator.config import (
    CredentialConfig,
    SimulatorConfig,
    TenantConfig,
)
from sophos_simulator.core import SimCredential, SimTenant, Simulator
from sophos_simulator.faults import KINDS as FAULT_KINDS

__all__ = [
    "FAULT_KINDS",
    "CredentialConfig",
    "SimCredential",
    "SimTenant",
    "Simulator",
    "SimulatorConfig",
    "TenantConfig",
]
