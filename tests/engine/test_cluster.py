"""The engine for real: a django-q2 cluster process, the Sophos Central client and the simulator
over a real socket, on whichever database and broker this run uses (SQLite + ORM, PostgreSQL +
Redis)."""

import datetime as dt

import pytest
from django.db.models import Count
from django.utils import timezone

from collector import engine, services
from collector.choices import SYSTEM_EVENTS_INDEX, Severity, SourceState
from collector.kinds.sophos_central.forms import SophosCentralSourceForm
from collector.models import (
    CollectionRun,
    DroppedField,
    Field,
    HealthEvent,
    Message,
    Source,
    SourceTransition,
)
from tests.conftest import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

# Short enough that a killed worker's claims expire within a test, long enough for a page.
FAST_RECOVERY = {"SUMOSOURCES_CLAIM_TTL": "3", "SUMOSOURCES_QUEUE_TTL": "3"}


def add_source(collector, sim, *, name="Sophos East", secret=None, **extra):
    data = {
        "name": name,
        "category": "sophos/east",
        "client_id": sim.config.client_id,
        "client_secret": secret or sim.config.client_secret,
        "supported_apis": ["Alerts", "Events"],
        "polling_interval": 300,
        **extra,
    }
    form = SophosCentralSourceForm(data=data, collector=collector)
    assert form.is_valid(), form.errors
    return services.create_source(collector=collector, form=form)


def edit_source(source, **changes):
    source.refresh_from_db()
    data = {
        "name": source.name,
        "category": source.category,
        "client_id": source.config["clientId"],
        "client_secret": "",
        "supported_apis": source.config["supported_apis"],
        "polling_interval": source.polling_interval,
        **changes,
    }
    form = SophosCentralSourceForm(data=data, collector=source.collector, instance=source)
    assert form.is_valid(), form.errors
    return services.update_source(source=source, form=form)


def state_of(source):
    return Source.objects.filter(pk=source.pk).values_list("state", flat=True).first()


def collected(source=None):
    """The alerts and events stored: what :func:`served` counts. Endpoint records (one per
    endpoint that endpoint alerts name, the Endpoints stream) are counted apart."""
    query = Message.objects.filter(index="").exclude(stream="Endpoints")
    return query.filter(source=source) if source else query


def endpoint_records(source):
    return Message.objects.filter(index="", source=source, stream="Endpoints")


def served(sim) -> int:
    totals = sim.stats()["totals"]
    return totals["Events"]["served"] + totals["Alerts"]["served"]


def open_event(source, name=None):
    query = HealthEvent.objects.filter(source=source, resolved_at__isnull=True)
    return query.filter(event_name=name).first() if name else query.first()


def retry_now(source):
    """What the dispatcher does when a source's next attempt is due, without waiting for it."""
    Source.objects.filter(pk=source.pk).update(next_poll_at=timezone.now())
    engine.dispatch()


def runs_finished(source) -> bool:
    """A run records its end just after storing its last page; wait for that, not for the items."""
    return not CollectionRun.objects.filter(
        source=source, outcome=CollectionRun.Outcome.RUNNING
    ).exists()


def assert_no_duplicates():
    dupes = (
        Message.objects.filter(index="")
        .values("source_id", "stream", "tenant_id", "vendor_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not dupes.exists()


def test_a_new_source_walks_the_lifecycle_and_stores_what_was_served(
    make_collector, simulator_factory, cluster_factory
):
    sim = simulator_factory(events=1500, alerts=120, late_fraction=0)
    cluster_factory(extra_env=sim.env())
    source = add_source(make_collector(), sim)
    wait_for(lambda: state_of(source) == SourceState.COLLECTING, message="Collecting")
    wait_for(lambda: served(sim) == 1620 and collected(source).count() == 1620, message="all items")
    wait_for(
        lambda: endpoint_records(source).count() == len(sim.named_endpoints()),
        message="the endpoint records",
    )
    wait_for(lambda: runs_finished(source), message="the runs to finish")
    walk = list(
        SourceTransition.objects.filter(source=source)
        .order_by("at", "id")
        .values_list("to_state", flat=True)
    )
    assert walk == ["Pending", "Started", "Initialized", "Authenticated", "Collecting"]
    tenant = sim.tenants[0]
    for stream in ("Events", "Alerts"):
        stored = set(collected(source).filter(stream=stream).values_list("vendor_id", flat=True))
        assert stored == set(sim.item_ids(tenant.id, stream))
    # And one record of each endpoint that endpoint alerts name, stored after the alerts.
    stored = {m.vendor_id.split(":")[0] for m in endpoint_records(source)}
    assert stored == sim.named_endpoints()
    message = collected(source).first()
    assert (message.source_name, message.collector_name, message.tenant_id) == (
        source.name, source.collector.name, tenant.id,
    )  # fmt: skip
    runs = CollectionRun.objects.filter(source=source)
    assert runs.count() >= 3 and set(runs.values_list("outcome", flat=True)) == {"success"}
    assert set(runs.values_list("stream", flat=True)) == {"Alerts", "Events", "Endpoints"}


@pytest.mark.parametrize(
    "fault, event_name",
    [
        ({"kind": "status", "status": 503, "api": "data"}, "ThirdPartyGenericError"),
        ({"kind": "status", "status": 500, "empty": True, "api": "data"}, "ThirdPartyGenericError"),
        (
            {"kind": "status", "status": 429, "retry_after": 1, "api": "data"},
            "ThirdPartyGenericError",
        ),
        ({"kind": "malformed", "api": "data"}, "ThirdPartyGenericError"),
        ({"kind": "reset", "api": "data"}, "ThirdPartyGenericError"),
        ({"kind": "status", "status": 502, "api": "Whoami"}, "ThirdPartyGenericError"),
    ],
    ids=["503", "500-empty", "429", "malformed", "reset", "whoami-502"],
)
def test_a_vendor_fault_retries_with_a_warning_and_recovers(
    make_collector, simulator_factory, cluster_factory, fault, event_name
):
    sim = simulator_factory(events=300, alerts=30, late_fraction=0)
    sim.set_fault(**fault)
    cluster_factory(extra_env=sim.env())
    source = add_source(make_collector(), sim)
    event = wait_for(lambda: open_event(source, event_name), message=f"a {event_name}")
    assert event.severity == Severity.WARNING and event.details["retrying"] is True
    source.refresh_from_db()
    assert source.state == SourceState.ERROR and source.halted_at is None
    assert source.next_poll_at > timezone.now()  # backing off, not hammering
    assert "Retrying (attempt 1)" in source.state_detail
    sim.clear_faults()
    retry_now(source)
    wait_for(lambda: state_of(source) == SourceState.COLLECTING, message="recovery")
    wait_for(
        lambda: collected(source).count() == served(sim) == 330, message="all items after recovery"
    )
    # The event resolves when the run ends, just after its last page is stored.
    wait_for(
        lambda: HealthEvent.objects.filter(pk=event.pk, resolved_at__isnull=False).exists(),
        message="the event to resolve",
    )
    statuses = set(
        Message.objects.filter(index=SYSTEM_EVENTS_INDEX).values_list("fields__status", flat=True)
    )
    assert statuses == {"Unhealthy", "Healthy"}


def test_config_errors_wait_for_an_edit_and_retryable_ones_give_up(
    make_collector, simulator_factory, cluster_factory
):
    sim = simulator_factory(events=200, alerts=20, late_fraction=0)
    cluster_factory(extra_env=sim.env())
    source = add_source(make_collector(), sim, secret="wrong-secret")
    event = wait_for(lambda: open_event(source, "ThirdPartyConfigError"), message="a config error")
    assert event.severity == Severity.ERROR
    assert "secret" in event.details["error"].lower() and "wrong-secret" not in str(event.details)
    source.refresh_from_db()
    assert source.state == SourceState.ERROR and source.halted_at is not None
    tokens_before = sim.stats()["tokens_issued"]
    requests_before = sim.stats()["requests"]
    retry_now(source)  # the dispatcher leaves it alone
    assert not engine.kick(source.pk)
    assert (
        sim.stats()["requests"] == requests_before and sim.stats()["tokens_issued"] == tokens_before
    )
    # The user enters the right secret: it runs again at once and recovers.
    edit_source(source, client_secret=sim.config.client_secret)
    wait_for(
        lambda: state_of(source) == SourceState.COLLECTING, message="Collecting after the edit"
    )
    wait_for(lambda: open_event(source) is None, message="the event to resolve")
    # A retryable error gives up once the streak is older than the retry window.
    sim.set_fault(kind="status", status=503, api="Whoami")
    retry_now(source)
    wait_for(lambda: open_event(source, "ThirdPartyGenericError"), message="a generic error")
    Source.objects.filter(pk=source.pk).update(
        streak_started_at=timezone.now() - dt.timedelta(minutes=91)
    )
    retry_now(source)
    wait_for(
        lambda: Source.objects.filter(pk=source.pk, halted_at__isnull=False).exists(),
        message="give-up",
    )
    event = open_event(source, "ThirdPartyGenericError")
    assert event.severity == Severity.ERROR and event.details["gaveUp"] is True


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(
    make_collector, simulator_factory, cluster_factory, settings
):
    settings.CLAIM_TTL = settings.QUEUE_TTL = 3
    sim = simulator_factory(events=20000, alerts=2000, late_fraction=0, latency=0.02)
    first = cluster_factory(extra_env={**sim.env(), **FAST_RECOVERY})
    source = add_source(make_collector(), sim)
    wait_for(lambda: collected(source).count() >= 3000, message="collection under way")
    first.kill()
    mid = collected(source).count()
    assert mid < 22000, "the run finished before the kill; make the backlog bigger"
    cluster_factory(extra_env={**sim.env(), **FAST_RECOVERY})

    def drained():
        engine.dispatch()  # the scheduler's tick, at test speed
        return collected(source).count() == 22000

    wait_for(drained, timeout=120, interval=0.5, message="the backlog to drain after the restart")
    assert_no_duplicates()
    assert served(sim) == 22000


def test_two_clusters_never_collect_the_same_tenant_twice(
    make_collector, simulator_factory, cluster_factory
):
    sim = simulator_factory(id_type="partner", tenants=4, events=2000, alerts=200, latency=0.005,
                            late_fraction=0)  # fmt: skip
    cluster_factory(extra_env=sim.env())
    cluster_factory(extra_env=sim.env())
    source = add_source(make_collector(), sim)

    def drained():
        engine.dispatch()
        return collected(source).count() == 4 * 2200

    wait_for(drained, timeout=120, interval=0.5, message="all four tenants")
    wait_for(lambda: runs_finished(source), message="the runs to finish")
    assert_no_duplicates()
    assert served(sim) == 4 * 2200
    runs = list(
        CollectionRun.objects.filter(source=source).order_by("tenant_id", "stream", "started_at")
    )
    for earlier, later in zip(runs, runs[1:], strict=False):
        if (earlier.tenant_id, earlier.stream) == (later.tenant_id, later.stream):
            assert earlier.ended_at <= later.started_at, "two runs of one tenant overlapped"


def test_a_source_deleted_while_collecting_stops_and_keeps_its_messages(
    make_collector, simulator_factory, cluster_factory
):
    sim = simulator_factory(events=20000, alerts=0, late_fraction=0, latency=0.02)
    cluster_factory(extra_env=sim.env())
    source = add_source(make_collector(), sim)
    wait_for(lambda: collected(source).count() >= 1000, message="collection under way")
    services.delete_source(source=source)
    assert state_of(source) in (SourceState.STOPPING, None)
    wait_for(lambda: not Source.objects.filter(pk=source.pk).exists(), message="the source to go")
    kept = Message.objects.filter(index="", source_name=source.name)
    assert kept.count() >= 1000 and not kept.filter(source__isnull=False).exists()


def test_partner_siem_fields_pause_resume_and_one_forbidden_tenant(
    make_collector, simulator_factory, cluster_factory
):
    sim = simulator_factory(id_type="partner", tenants=3, events=200, alerts=40, late_fraction=0)
    forbidden = sim.tenants[1]
    sim.set_fault(kind="status", status=403, api="data", tenant=forbidden.id)
    Field.objects.create(name="team")
    cluster_factory(extra_env=sim.env())
    collector = make_collector("Partner", fields={"team": "blue", "unknownfield": "x"})
    source = add_source(collector, sim, forward_to_siem="on")
    healthy = {t.id for t in sim.tenants} - {forbidden.id}
    wait_for(
        lambda: (
            set(collected(source).values_list("tenant_id", flat=True).distinct()) == healthy
            and collected(source).count() == 2 * 240
        ),
        message="the two readable tenants",
    )
    event = wait_for(
        lambda: open_event(source, "ThirdPartyConfigError"), message="the tenant warning"
    )
    assert event.severity == Severity.WARNING and forbidden.name in event.details["error"]
    assert state_of(source) == SourceState.COLLECTING
    message = collected(source).filter(stream="Alerts").first()
    assert message.fields["_siemForward"] == "true" and message.fields["team"] == "blue"
    assert message.siem_event_id and "unknownfield" not in message.fields
    # Every stored message drops the field: alerts, events and endpoint records alike.
    endpoints = sum(len(sim.named_endpoints(tenant)) for tenant in healthy)
    wait_for(lambda: endpoint_records(source).count() == endpoints, message="endpoint records")
    wait_for(lambda: runs_finished(source), message="the runs to finish")
    stored = Message.objects.filter(index="", source=source).count()
    assert DroppedField.objects.get(name="unknownfield").count == stored > 2 * 240
    # Pause: no polls; resume: runs again from its checkpoints.
    services.pause_source(source=source)
    assert state_of(source) == SourceState.PAUSED
    sim.add_items("Events", 5, tenant=sim.tenants[0].id)
    retry_now(source)
    assert state_of(source) == SourceState.PAUSED
    services.resume_source(source=source)
    wait_for(lambda: collected(source).count() == 2 * 240 + 5, message="the new items after resume")
    assert_no_duplicates()
