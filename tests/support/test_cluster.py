"""The django-q2 cluster status, read in one place: the status API and the health page agree."""

from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.status import Stat

from collector.cluster import cluster_status, cluster_summary


def stat(cluster_id: str, status: str, workers: int) -> SimpleNamespace:
    return SimpleNamespace(
        cluster_id=cluster_id,
        host=f"host-{cluster_id}",
        status=status,
        workers=list(range(workers)),
        tob=timezone.now(),
        uptime=lambda: 10.6,
    )


@pytest.fixture
def clusters(monkeypatch):
    """Set what django-q2 reports: a list of stats, or an exception to raise."""

    def report(value):
        def get_all():
            if isinstance(value, Exception):
                raise value
            return value

        monkeypatch.setattr(Stat, "get_all", staticmethod(get_all))

    return report


def test_a_stopped_cluster_is_listed_but_not_counted_as_running(clusters):
    clusters([stat("a", "Idle", 2), stat("b", "Stopped", 4)])
    status = cluster_status()
    assert status["alive"] is True
    assert [c["id"] for c in status["clusters"]] == ["a", "b"]
    assert status["clusters"][0] == {
        "id": "a",
        "host": "host-a",
        "status": "Idle",
        "workers": 2,
        "uptimeSeconds": 11,
    }
    assert cluster_summary() == {"known": True, "clusters": 1, "workers": 2}


def test_only_stopped_clusters_mean_none_is_running(clusters):
    clusters([stat("b", "Stopped", 4)])
    assert cluster_status()["alive"] is False
    assert cluster_summary() == {"known": True, "clusters": 0, "workers": 0}


def test_an_unreadable_status_is_reported_not_raised(clusters):
    clusters(ConnectionError("redis is down"))
    status = cluster_status()
    assert status["alive"] is False and status["clusters"] == []
    assert "ConnectionError" in status["error"]
    assert cluster_summary() == {"known": False, "clusters": 0, "workers": 0}


@pytest.mark.parametrize(
    ("reported", "sentence"),
    [
        ([stat("a", "Idle", 2), stat("b", "Stopped", 4)], "1 worker cluster, 2 workers"),
        ([stat("b", "Stopped", 4)], "No worker cluster is running"),
        (ConnectionError("down"), "Worker status unknown"),
    ],
)
def test_the_health_page_says_what_the_status_api_says(clusters, admin_client, reported, sentence):
    clusters(reported)
    html = admin_client.get(reverse("collector:health_status")).content.decode()
    assert sentence in " ".join(html.split())
    alive = admin_client.get(reverse("api:status")).json()["cluster"]["alive"]
    assert alive is (sentence.startswith("1 "))
