"""A position the vendor rejects falls back to the checkpoint's time floor, once, and says so.

Against the bundled simulator over a real socket, through the engine (tasks run inline): its
``bad_cursor`` fault makes one answer carry a ``next_cursor`` (or ``pages.nextKey``) that the API
cannot decode, so sending it back is answered 400. Before the fallback such a checkpoint failed
every later run with "Invalid cursor", and restarting kept it.
"""

import datetime as dt
import json

import pytest

from collector import engine, services
from collector.choices import ErrorType, SourceState
from collector.errors import CollectionError
from collector.kinds.sophos_central import kind
from collector.kinds.sophos_central.client import WINDOW, WINDOW_MARGIN
from collector.models import Checkpoint, HealthEvent, Message
from sophos_simulator.server import GARBAGE_CURSOR

RESET = "CheckpointResetWarning"
FAST = {"timeout": (1.0, 2.0), "retries": 1, "backoff": 0.0}


def source_for(sim, make_source, streams):
    cred = sim.credential()
    return make_source(
        client_id=cred.client_id, secret=cred.client_secret, supported_apis=list(streams)
    )


def stored_ids(source, stream):
    return list(
        Message.objects.filter(source=source, stream=stream).values_list("vendor_id", flat=True)
    )


def rejected(sim, path_end):
    """How many answers of the API whose path ends with ``path_end`` were 400s."""
    return sum(
        counts.get("400", 0)
        for path, counts in sim.stats()["requests"].items()
        if path.endswith(path_end)
    )


def calls(sim, path_end):
    return sum(
        sum(counts.values())
        for path, counts in sim.stats()["requests"].items()
        if path.endswith(path_end)
    )


def reset_warnings(source):
    return list(HealthEvent.objects.filter(source=source, event_name=RESET, resolved_at=None))


def position_of(source, stream):
    return Checkpoint.objects.get(source=source, stream=stream).position


def iso_seconds(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_a_rejected_events_cursor_resumes_at_the_floor_on_the_next_run(
    simulator_factory, make_source, queued
):
    sim = simulator_factory(events=500, alerts=0)
    tenant = sim.tenants[0]
    source = source_for(sim, make_source, ["Events"])
    sim.set_fault("bad_cursor", api="Events", times=1)
    assert engine.run_source(source.pk) == "ok: 500 items"
    broken = position_of(source, "Events")
    assert broken["cursor"] == GARBAGE_CURSOR  # what used to break every later run
    floor = dt.datetime.fromisoformat(broken["position"])

    sim.advance(60)
    sim.add_items("Events", 30, tenant=tenant.id)
    assert engine.run_source(source.pk) == "ok: 30 items"

    ids = stored_ids(source, "Events")
    assert sorted(ids) == sorted(sim.item_ids(tenant.id, "Events"))  # nothing missing
    assert len(ids) == len(set(ids)) == 530  # nothing twice
    assert rejected(sim, "/siem/v1/events") == 1
    source.refresh_from_db()
    assert source.state == SourceState.COLLECTING
    (warning,) = reset_warnings(source)
    assert warning.severity == "Warning"
    assert warning.details["api"] == "Events" and warning.details["tenantId"] == tenant.id
    # from_date is whole seconds: the fallback asks from the floor's second.
    resumed = floor.replace(microsecond=0)
    assert warning.details["resumedFrom"] == iso_seconds(resumed)
    assert "rejected" in warning.details["error"] and "Events" in warning.details["error"]
    assert iso_seconds(resumed)[:16].replace("T", " ") in warning.details["error"]
    assert position_of(source, "Events")["cursor"] != GARBAGE_CURSOR

    # The stream is healthy again: the next run uses the new cursor, no fallback, no warning twice.
    sim.add_items("Events", 5, tenant=tenant.id)
    assert engine.run_source(source.pk) == "ok: 5 items"
    assert rejected(sim, "/siem/v1/events") == 1
    assert reset_warnings(source)[0].count == 1


def test_a_cursor_rejected_mid_run_falls_back_within_the_run(
    simulator_factory, make_source, queued
):
    sim = simulator_factory(events=2500, alerts=0)
    source = source_for(sim, make_source, ["Events"])
    sim.set_fault("bad_cursor", api="Events", times=1)  # the first of three pages
    assert engine.run_source(source.pk).startswith("ok")
    ids = stored_ids(source, "Events")
    assert sorted(ids) == sorted(sim.item_ids(None, "Events"))
    assert len(ids) == len(set(ids)) == 2500
    assert rejected(sim, "/siem/v1/events") == 1
    (warning,) = reset_warnings(source)
    assert warning.details["api"] == "Events"


def test_a_rejected_fallback_raises_once_without_looping(simulator_factory, make_source, queued):
    sim = simulator_factory(events=50, alerts=0)
    source = source_for(sim, make_source, ["Events"])
    sim.set_fault("bad_cursor", api="Events", times=1)
    engine.run_source(source.pk)
    # Now every events call is refused, the fallback's from_date query too.
    sim.set_fault("status", api="Events", status=400)
    before = calls(sim, "/siem/v1/events")
    assert engine.run_source(source.pk) == "error: ThirdPartyConfig"
    # One request with the stored cursor, one fallback: no second fallback, no loop.
    assert calls(sim, "/siem/v1/events") - before == 2
    source.refresh_from_db()
    assert source.state == SourceState.ERROR and source.error_type == "ThirdPartyConfig"
    assert reset_warnings(source) == []
    # The checkpoint is untouched: the next run (after the vendor recovers) falls back again.
    assert position_of(source, "Events")["cursor"] == GARBAGE_CURSOR
    sim.clear_faults()
    services.restart_source(source=source)
    assert engine.run_source(source.pk) == "ok: 0 items"
    assert len(reset_warnings(source)) == 1
    assert sorted(stored_ids(source, "Events")) == sorted(sim.item_ids(None, "Events"))


def test_the_session_sends_one_fallback_per_run(simulator):
    cred = simulator.credential()
    config = {"clientId": cred.client_id, "supported_apis": ["Events"]}
    simulator.set_fault("status", api="Events", status=400)
    with kind.open(config=config, secret=cred.client_secret, **FAST) as session:
        tenant = session.authenticate().tenants[0]
        checkpoint = {"cursor": GARBAGE_CURSOR, "position": iso_seconds(dt.datetime.now(dt.UTC))}
        with pytest.raises(CollectionError) as info:
            list(session.pages(stream="Events", tenant=tenant, checkpoint=checkpoint))
    assert info.value.error_type == ErrorType.THIRD_PARTY_CONFIG and info.value.status == 400
    assert calls(simulator, "/siem/v1/events") == 2


def test_a_checkpoint_without_a_floor_resumes_at_the_oldest_point_served(simulator):
    cred = simulator.credential()
    config = {"clientId": cred.client_id, "supported_apis": ["Events"]}
    with kind.open(config=config, secret=cred.client_secret, **FAST) as session:
        tenant = session.authenticate().tenants[0]
        # Written before checkpoints carried a time: nothing but the (now garbage) cursor.
        pages = list(
            session.pages(stream="Events", tenant=tenant, checkpoint={"cursor": GARBAGE_CURSOR})
        )
    items = [item["id"] for page in pages for item in page.items]
    assert sorted(items) == sorted(simulator.item_ids(None, "Events"))
    (notice,) = pages[0].notices
    assert all(not page.notices for page in pages[1:])
    assert notice.name == RESET and notice.expires and notice.scope == f"Events:{tenant.id}"
    resumed = dt.datetime.fromisoformat(notice.details["resumedFrom"]).timestamp()
    assert resumed == pytest.approx(simulator.now() - WINDOW + WINDOW_MARGIN, abs=5)
    assert all(page.checkpoint["position"] for page in pages)
    assert rejected(simulator, "/siem/v1/events") == 1


def test_a_rejected_alerts_page_key_resumes_from_the_newest_alert(
    simulator_factory, make_source, queued
):
    sim = simulator_factory(events=0, alerts=300)
    source = source_for(sim, make_source, ["Alerts"])
    sim.set_fault("bad_cursor", api="Alerts", times=1)  # the first page of 100
    # The alerts, and a record of each endpoint their endpoint alerts name.
    assert engine.run_source(source.pk) == f"ok: {300 + len(sim.named_endpoints())} items"
    ids = stored_ids(source, "Alerts")
    assert sorted(ids) == sorted(sim.item_ids(None, "Alerts"))
    assert len(ids) == len(set(ids))
    assert rejected(sim, "/common/v1/alerts") == 1
    (warning,) = reset_warnings(source)
    assert warning.details["api"] == "Alerts"
    assert dt.datetime.fromisoformat(warning.details["resumedFrom"]) <= dt.datetime.fromisoformat(
        position_of(source, "Alerts")["raisedAt"]
    )
    source.refresh_from_db()
    assert source.state == SourceState.COLLECTING


def test_every_events_checkpoint_carries_a_floor(simulator_factory):
    sim = simulator_factory(events=2500, alerts=0)
    cred = sim.credential()
    config = {"clientId": cred.client_id, "supported_apis": ["Events"]}
    with kind.open(config=config, secret=cred.client_secret, **FAST) as session:
        tenant = session.authenticate().tenants[0]
        pages = list(session.pages(stream="Events", tenant=tenant, checkpoint=None))
    assert len(pages) == 3
    floors = [dt.datetime.fromisoformat(page.checkpoint["position"]) for page in pages]
    assert floors == sorted(floors)


def test_a_reset_checkpoint_reads_again_from_the_chosen_time(
    simulator_factory, make_source, queued, admin_user
):
    sim = simulator_factory(events=500, alerts=0)
    source = source_for(sim, make_source, ["Events"])
    assert engine.run_source(source.pk) == "ok: 500 items"
    moment = dt.datetime.fromtimestamp(sim.now() - 3600, dt.UTC).replace(microsecond=0)
    since = [
        m.vendor_id
        for m in Message.objects.filter(source=source)
        if dt.datetime.fromisoformat(json.loads(m.raw)["created_at"]) >= moment
    ]
    assert 0 < len(since) < 500
    served = sim.stats()["totals"]["Events"]["served_total"]

    services.reset_checkpoint(source=source, stream=None, resume_from=moment, user=admin_user)
    assert engine.run_source(source.pk) == "ok: 0 items"  # read again, stored once
    assert sim.stats()["totals"]["Events"]["served_total"] - served == len(since)
    assert Message.objects.filter(source=source).count() == 500
    assert reset_warnings(source) == []  # the user's own reset is no vendor refusal
    sim.add_items("Events", 3)
    assert engine.run_source(source.pk) == "ok: 3 items"
