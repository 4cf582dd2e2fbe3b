"""``GET /api/v1/status``: per-source health, lag and volume, totals, and the task cluster."""

import datetime as dt
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_q.status import Stat

from collector.auth import create_access_key
from collector.choices import SourceState
from collector.models import Checkpoint, HealthEvent
from tests.api.test_api import Api, basic, legacy_error
from tests.conftest import wait_for

URL = reverse("api:status")


@pytest.fixture
def viewer_api(client, viewer_user):
    row, key = create_access_key(user=viewer_user)
    return Api(client, basic(row.access_id, key))


def add_event(source, severity="Error", name="ThirdPartyConfigError", resolved=False):
    return HealthEvent.objects.create(
        event_name=name,
        severity=severity,
        source=source,
        resource_id=str(source.pk),
        resource_name=source.name,
        collector_id=str(source.collector_id),
        collector_name=source.collector.name,
        details={"error": "Sophos Central rejected the client secret", "description": "Edit it."},
        resolved_at=timezone.now() if resolved else None,
    )


def add_checkpoint(source, stream, tenant, *, items, behind_seconds):
    now = timezone.now()
    return Checkpoint.objects.create(
        source=source,
        stream=stream,
        tenant_id=tenant,
        data_until=now - dt.timedelta(seconds=behind_seconds)
        if behind_seconds is not None
        else None,
        items_total=items,
        updated_at=now,
    )


def test_status_reports_each_source_and_the_totals(viewer_api, make_collector, make_source):
    eu, us = make_collector("A EU"), make_collector("B US")
    good = make_source("Good", collector=eu, state=SourceState.COLLECTING)
    good.last_success_at = timezone.now()
    good.save()
    add_checkpoint(good, "Alerts", "t1", items=10, behind_seconds=60)
    add_checkpoint(good, "Events", "t1", items=5, behind_seconds=120)
    add_checkpoint(good, "Events", "t2", items=7, behind_seconds=None)
    broken = make_source("Broken", collector=us, state=SourceState.ERROR)
    add_event(broken)
    add_event(broken, resolved=True)
    make_source("Resting", collector=us, state=SourceState.PAUSED)

    response = viewer_api.get("/status")
    assert response.status_code == 200, response.content
    body = response.json()
    by_name = {s["name"]: s for s in body["sources"]}
    assert [s["name"] for s in body["sources"]] == ["Good", "Broken", "Resting"]

    first = by_name["Good"]
    assert first["collector"] == {"id": eu.pk, "name": "A EU"}
    assert first["state"] == "Collecting"
    assert first["health"]["value"] == "Healthy"
    assert first["lastSuccess"].endswith("Z")
    assert first["messages"] == {"Alerts": 10, "Events": 12}
    lag = {(p["stream"], p["tenantId"]): p for p in first["lag"]}
    assert 59 <= lag[("Alerts", "t1")]["lagSeconds"] < 90
    assert 119 <= lag[("Events", "t1")]["lagSeconds"] < 150
    assert lag[("Events", "t2")]["lagSeconds"] is None
    assert lag[("Events", "t2")]["updatedAt"].endswith("Z")

    assert by_name["Broken"]["health"]["value"] == "Error"
    assert any(
        "rejected the client secret" in line for line in by_name["Broken"]["health"]["tooltip"]
    )
    assert by_name["Broken"]["lastSuccess"] is None
    assert by_name["Resting"]["health"]["value"] == "Paused"

    totals = body["totals"]
    assert totals["sources"] == 3
    assert totals["sourcesByState"]["Collecting"] == 1
    assert totals["sourcesByState"]["Error"] == 1
    assert totals["sourcesByState"]["Paused"] == 1
    assert totals["sourcesByState"]["Pending"] == 0
    assert totals["openHealthEventsBySeverity"] == {"Warning": 0, "Error": 1}
    assert body["cluster"] == {"alive": False, "clusters": []}


def test_status_needs_authentication_and_the_view_permission(db, admin_client):
    client = Client()
    legacy_error(Api(client, None).get("/status"), 401, "unauthorized")
    user = User.objects.create_user("noperm", password="x-pass-123456")
    row, key = create_access_key(user=user)
    legacy_error(Api(client, basic(row.access_id, key)).get("/status"), 403, "forbidden")
    assert Api(admin_client, None).get("/status").status_code == 200


def test_status_costs_a_fixed_number_of_queries(
    viewer_api, make_collector, make_source, django_assert_max_num_queries
):
    def add_sources(count, start):
        for index in range(start, start + count):
            collector = make_collector(f"C{index}")
            source = make_source(f"S{index}", collector=collector)
            add_checkpoint(source, "Alerts", "t1", items=index, behind_seconds=30)
            add_checkpoint(source, "Events", "t1", items=index, behind_seconds=30)
            add_event(source, severity="Warning", name="ThirdPartyGenericError")

    add_sources(1, 0)
    viewer_api.get("/status")  # the first use of a key records last_used_at; measure after it
    with CaptureQueriesContext(connection) as one_source:
        assert viewer_api.get("/status").status_code == 200
    add_sources(15, 1)
    with django_assert_max_num_queries(len(one_source.captured_queries)):
        response = viewer_api.get("/status")
    assert len(response.json()["sources"]) == 16


def test_status_shows_a_live_cluster(viewer_api, monkeypatch):
    stat = SimpleNamespace(
        cluster_id="c1",
        host="worker-1",
        status="Idle",
        workers=[11, 12],
        tob=timezone.now(),
        uptime=lambda: 42.4,
    )
    monkeypatch.setattr(Stat, "get_all", staticmethod(lambda: [stat]))
    cluster = viewer_api.get("/status").json()["cluster"]
    assert cluster == {
        "alive": True,
        "clusters": [
            {"id": "c1", "host": "worker-1", "status": "Idle", "workers": 2, "uptimeSeconds": 42}
        ],
    }
    stat.status = "Stopped"
    assert viewer_api.get("/status").json()["cluster"]["alive"] is False


def test_status_reports_an_unreachable_broker(viewer_api, monkeypatch):
    def unreachable():
        raise ConnectionError("redis is down")

    monkeypatch.setattr(Stat, "get_all", staticmethod(unreachable))
    response = viewer_api.get("/status")
    assert response.status_code == 200
    cluster = response.json()["cluster"]
    assert cluster["alive"] is False
    assert "ConnectionError" in cluster["error"]


@pytest.mark.cluster
def test_status_sees_a_real_cluster_in_another_process(cluster_factory, admin_user, client):
    row, key = create_access_key(user=admin_user)
    api = Api(client, basic(row.access_id, key))
    # A cluster an earlier test killed keeps its entry for a few seconds: start from none alive.
    wait_for(
        lambda: api.get("/status").json()["cluster"]["alive"] is False,
        timeout=30,
        message="no cluster alive before this one starts",
    )
    cluster = cluster_factory()
    wait_for(
        lambda: api.get("/status").json()["cluster"]["alive"],
        timeout=30,
        message="the cluster to show as alive",
    )
    # A crashed cluster stops refreshing its entry, which then expires: dead within seconds.
    # (Killing also spares the slow graceful stop at teardown.)
    cluster.kill()
    wait_for(
        lambda: api.get("/status").json()["cluster"]["alive"] is False,
        timeout=30,
        message="the killed cluster to show as dead",
    )
