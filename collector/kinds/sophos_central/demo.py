"""``make demo`` for Sophos Central: the bundled simulator and a source reading from it.

The simulator (:mod:`sophos_simulator`) runs in the demo process: a partner credential with three
tenants in two regions, a backlog, and new items every minute, so data flows at once.
"""

from __future__ import annotations

from collector.kinds.demo import KindDemo
from sophos_simulator import Simulator, SimulatorConfig

SOURCE_NAME = "Sophos Central (simulator)"


def start(*, port: int) -> KindDemo:
    """Start the simulator on 127.0.0.1:``port`` (0: a free one) and describe the demo source.

    Raises OSError when the port cannot be bound.
    """
    sim = Simulator(
        SimulatorConfig(
            port=port,
            id_type="partner",
            tenants=3,
            events=3000,
            alerts=300,
            rate=6,
            seed=42,
        )
    ).start()
    return KindDemo(
        description=f"Sophos Central simulator on {sim.url} (partner, 3 tenants)",
        source_name=SOURCE_NAME,
        collector_category="demo/sophos",
        source_data={
            "forward_to_siem": "on",
            "client_id": sim.config.client_id,
            "client_secret": sim.config.client_secret,
            "supported_apis": ["Alerts", "Events"],
            "polling_interval": 60,
        },
        stop=sim.stop,
        env=sim.env(),
        settings={
            "SOPHOS_TOKEN_URL": sim.token_url,
            "SOPHOS_API_URL": sim.api_url,
            "SOPHOS_EXTRA_HOSTS": list(sim.extra_hosts),
        },
    )
