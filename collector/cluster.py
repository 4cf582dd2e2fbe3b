"""Whether the django-q2 task cluster is running, read once for the status API and the health page.

django-q2 keeps each cluster's status in the shared database cache; a running cluster refreshes
its entry every few seconds and the entry expires when it stops doing so, so a cluster in another
process (or a crashed one) is seen here.
"""

import logging

from django_q.conf import Conf
from django_q.status import Stat

log = logging.getLogger(__name__)


def cluster_status() -> dict:
    """The clusters django-q2 knows, as the status API answers them.

    ``{"alive": bool, "clusters": [{"id", "host", "status", "workers", "uptimeSeconds"}]}``;
    ``alive`` is true when at least one cluster is not stopped. When the status cannot be read
    the answer is ``alive: false`` with no clusters and an ``error`` sentence; nothing is raised,
    because an unreachable broker is a finding of the pages that ask, not a failure of them.
    """
    try:
        stats = Stat.get_all()
    except Exception as exc:
        log.warning("cluster status unavailable: %s", exc.__class__.__name__)
        return {
            "alive": False,
            "clusters": [],
            "error": f"The task broker could not be read ({exc.__class__.__name__}).",
        }
    clusters = [
        {
            "id": str(stat.cluster_id),
            "host": stat.host,
            "status": stat.status,
            "workers": len(stat.workers or []),
            "uptimeSeconds": round(stat.uptime()) if stat.tob else None,
        }
        for stat in stats
    ]
    return {"alive": any(c["status"] != Conf.STOPPED for c in clusters), "clusters": clusters}


def cluster_summary() -> dict:
    """What the health status page says: ``{"known", "clusters", "workers"}``.

    Counts only clusters that are not stopped, so the page and the status API's ``alive`` agree
    (``clusters`` is 0 exactly when ``alive`` is false); ``known`` is false when the status could
    not be read.
    """
    status = cluster_status()
    running = [c for c in status["clusters"] if c["status"] != Conf.STOPPED]
    return {
        "known": "error" not in status,
        "clusters": len(running),
        "workers": sum(c["workers"] for c in running),
    }
