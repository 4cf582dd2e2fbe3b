"""The Endpoint API's view of one tenant: a record for every managed agent of its endpoints.

The agents are the tenant's :class:`~sophos_simulator.catalog.ItemFactory` endpoints, the ones
endpoint alerts and events name. What never changes (OS, MAC, products, group) is drawn from the
seed once; what does is computed from the simulator clock whenever a record is asked for, so a
client sees records move the way real ones do, deterministically:

* ``lastSeenAt``: four in five endpoints are online and check in every 5 to 15 minutes, so it
  keeps moving; the others went offline a few hours before the simulator started.
* ``health``: every fourth endpoint (index 1, 5, 9 ...) turns ``suspicious`` now and then, judged
  anew each ``endpoint_change_hours`` of simulator time.
* ``ipv4Addresses``: every fourth computer (index 2, 6, 10 ...) gets a new DHCP lease each period.
* :meth:`Inventory.touch` flips tamper protection and marks the endpoint seen now: an explicit
  change for tests.

Not thread-safe by itself: the simulator holds its lock around every call.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from sophos_simulator.catalog import iso_ms, uuid_from
from sophos_simulator.store import Served

VIEWS = ("basic", "summary", "full")

_OS = {
    ("windows", False): ("Windows 11 Enterprise", 10, 0, 22631),
    ("windows", True): ("Windows Server 2022 Datacenter", 10, 0, 20348),
    ("linux", False): ("Ubuntu 22.04.4 LTS", 22, 4, None),
    ("linux", True): ("Red Hat Enterprise Linux 9.3", 9, 3, None),
    ("macOS", False): ("macOS Sonoma 14.4.1", 14, 4, None),
    ("macOS", True): ("macOS Sonoma 14.4.1", 14, 4, None),
}
_GROUPS = ("Finance", "Engineering", "Sales", "Servers", "Head office")
_SERVICES = ("Sophos MCS Client", "Sophos Endpoint Defense Service", "HitmanPro.Alert service")


@dataclass
class AgentRecord:
    """One managed agent: its fixed fields, and what moves it (revision, touched_at)."""

    index: int
    id: str
    type: str
    hostname: str
    platform: str
    ip: str
    user: str
    person: str
    mac: str
    ipv6: str
    group: dict[str, str]
    products: list[dict[str, str]]
    tamper: bool
    online: bool
    interval: float  # seconds between check-ins of an online endpoint
    phase: float
    offline_seen: float  # lastSeenAt of an offline endpoint
    revision: int = 0
    touched_at: float | None = None


class Inventory:
    """The endpoints of one tenant, served by ``/endpoint/v1/endpoints``; see the module docstring.

    ``requests`` counts list calls (``ids_asked`` the ids they filtered on), ``single`` the
    ``/endpoints/{id}`` calls; ``served`` which records were sent at least once.
    """

    def __init__(self, *, seed: int, tenant_id: str, agents: list[dict], created: float):
        self.tenant_id = tenant_id
        self.endpoints: list[AgentRecord] = []
        for i, agent in enumerate(agents):
            rng = random.Random(f"{seed}:inventory:{tenant_id}:{i}")
            self.endpoints.append(
                AgentRecord(
                    index=i,
                    id=agent["id"],
                    type=agent["type"],
                    hostname=agent["host"],
                    platform=agent["platform"],
                    ip=agent["ip"],
                    user=agent["user"],
                    person=agent["person"],
                    mac=":".join(f"{rng.randrange(256):02x}" for _ in range(6)),
                    ipv6=f"fe80::{rng.randrange(1 << 16):x}:{rng.randrange(1 << 16):x}",
                    group={
                        "id": uuid_from(random.Random(f"{seed}:group:{tenant_id}:{i % 5}")),
                        "name": "Servers" if agent["type"] == "server" else _GROUPS[i % 5],
                    },
                    products=[
                        {
                            "code": "coreAgent",
                            "version": f"2024.{1 + i % 3}.1.{10 + i}",
                            "status": "installed",
                        },
                        {
                            "code": "interceptX",
                            "version": f"2024.{1 + i % 3}.0.{4 + i}",
                            "status": "installed",
                        },
                        {
                            "code": "endpointProtection",
                            "version": "10.8.11.3",
                            "status": "installed",
                        },
                    ],  # fmt: skip
                    tamper=i % 7 != 3,
                    online=i % 5 != 4,
                    interval=float(rng.randrange(300, 901)),
                    phase=float(rng.randrange(900)),
                    offline_seen=created - rng.randrange(2 * 3600, 10 * 3600),
                )
            )
        self.by_id = {agent.id: agent for agent in self.endpoints}
        self.served = Served()
        self.requests = 0
        self.ids_asked = 0
        self.single = 0

    def __len__(self) -> int:
        return len(self.endpoints)

    def touch(self, endpoint_id: str, now: float) -> None:
        """Change one endpoint now: tamper protection flips, and it was seen this instant."""
        agent = self.by_id[endpoint_id]
        agent.revision += 1
        agent.touched_at = now

    def record(
        self, agent: AgentRecord, now: float, *, view: str = "full", period: float = 0.0
    ) -> dict[str, Any]:
        """The agent as the Endpoint API shows it at simulator time ``now`` in ``view``.

        ``period`` is the change period in seconds (0: the health and addresses never move).
        """
        record: dict[str, Any] = {
            "id": agent.id,
            "type": agent.type,
            "tenant": {"id": self.tenant_id},
            "hostname": agent.hostname,
        }
        if view == "basic":
            return record
        epoch = int(now // period) if period > 0 else 0
        overall = "good"
        if period > 0 and agent.index % 4 == 1 and _draw(agent.id, epoch) % 3 == 0:
            overall = "suspicious"
        ip = agent.ip
        if period > 0 and agent.index % 4 == 2 and agent.type == "computer":
            head, _, last = ip.rpartition(".")
            ip = f"{head}.{(int(last) + epoch * 37) % 254 + 1}"
        server = agent.type == "server"
        name, major, minor, build = _OS[(agent.platform, server)]
        os_info: dict[str, Any] = {
            "isServer": server,
            "platform": agent.platform,
            "name": name,
            "majorVersion": major,
            "minorVersion": minor,
        }
        if build is not None:
            os_info["build"] = build
        if agent.online:
            seen = now - ((now - agent.phase) % agent.interval)
        else:
            seen = min(agent.offline_seen, now)
        if agent.touched_at is not None:
            seen = max(seen, agent.touched_at)
        record.update(
            {
                "health": {
                    "overall": overall,
                    "threats": {"status": overall},
                    "services": {
                        "status": "good",
                        "serviceDetails": [
                            {"name": service, "status": "running"} for service in _SERVICES
                        ],
                    },
                },
                "os": os_info,
                "ipv4Addresses": [ip],
                "ipv6Addresses": [agent.ipv6],
                "macAddresses": [agent.mac],
                "associatedPerson": {
                    "name": agent.user,
                    "viaLogin": agent.user,
                    "id": agent.person,
                },
                "tamperProtectionEnabled": agent.tamper != bool(agent.revision % 2),
                "assignedProducts": [dict(product) for product in agent.products],
                "lastSeenAt": iso_ms(int(seen * 1000)),
            }
        )
        if view == "full":
            record["group"] = dict(agent.group)
            record["isolation"] = {
                "status": "notIsolated",
                "adminIsolated": False,
                "selfIsolated": False,
            }
        return record


def _draw(endpoint_id: str, epoch: int) -> int:
    """A deterministic number for one endpoint in one change period."""
    return hashlib.sha256(f"{endpoint_id}:{epoch}".encode()).digest()[0]
