"""The delivery engine in-process: commit order, routes, acknowledgements, errors, retention.

A file destination (tests.support.file_destination) is the receiver: what it wrote is what
was acknowledged. Tasks run synchronously here; the cluster tests are in test_cluster.py.
"""

import datetime as dt

import pytest
from django.utils import timezone

from collector import services
from collector.choices import DestinationState, Severity
from collector.delivery import runs
from collector.delivery.retention import DATA_LOSS_EVENT
from collector.delivery.routes import Route
from collector.engine import schedule
from collector.forms import destination_form_class
from collector.models import DeliveryBucket, Destination, HealthEvent, Message
from tests.support.file_destination import NAME, PATH, delivered
from tests.support.messages import make_message, make_messages


@pytest.fixture(autouse=True)
def file_kind(settings):
    settings.DESTINATION_KINDS = [PATH]


@pytest.fixture
def destination(db, tmp_path, queued):
    def make(name="SOC", route="", siem=False, start_from="all", token="good-token", **extra):
        form = destination_form_class(NAME)(data={
            "name": name, "route": route, "siem": siem, "start_from": start_from,
            "path": str(tmp_path / f"{name}.ndjson"), "token": token, **extra,
        })  # fmt: skip
        assert form.is_valid(), form.errors
        return services.create_destination(form=form)

    return make


def out(destination):
    return delivered(destination.config["path"])


def refresh(destination):
    destination.refresh_from_db()
    return destination


def test_delivers_everything_routed_in_commit_order_and_advances_the_cursor(destination):
    make_messages(120)
    soc = destination()
    assert runs.deliver(soc.pk) == "ok: 120 messages"
    lines = out(soc)
    ids = [line["id"] for line in lines]
    assert ids == sorted(ids) and len(set(ids)) == 120
    assert refresh(soc).cursor == Message.objects.order_by("-id").first().pk
    assert soc.delivered_total == 120 and soc.state == DestinationState.DELIVERING
    assert lines[0]["meta"]["_source"] == "Sophos East" and lines[0]["meta"]["_siemEventID"]
    assert sum(DeliveryBucket.objects.values_list("messages", flat=True)) == 120
    # Nothing new: a second run sends nothing and says it is up to date.
    assert runs.deliver(soc.pk) == "ok: 0 messages"
    assert len(out(soc)) == 120 and refresh(soc).state == DestinationState.IDLE


def test_start_from_new_skips_what_is_already_stored(destination):
    make_messages(10)
    soc = destination(start_from="new")
    runs.deliver(soc.pk)
    assert out(soc) == []
    make_message(99)
    runs.deliver(soc.pk)
    assert [line["raw"] for line in out(soc)] == [Message.objects.get(vendor_id="v-99").raw]


def test_routes_select_by_metadata_and_siem(destination):
    make_messages(5, source_category="prod/eu", siem_event_id="")
    make_messages(5, start=100, source_category="lab/x", siem_event_id="malware")
    make_message(200, index="sumologic_system_events", siem_event_id="")
    prod = destination("Prod", route="_sourceCategory=prod/*")
    siem = destination("Siem", siem=True)
    everything = destination("All")
    health = destination("Health", route="_index=sumologic_system_events")
    for d in (prod, siem, everything, health):
        runs.deliver(d.pk)
    assert len(out(prod)) == 5 and {x["meta"]["_sourceCategory"] for x in out(prod)} == {"prod/eu"}
    assert len(out(siem)) == 5 and all(x["meta"]["_siemEventID"] == "malware" for x in out(siem))
    assert len(out(everything)) == 10  # all collected data, not the health records
    assert len(out(health)) == 1 and out(health)[0]["meta"]["_index"] == "sumologic_system_events"
    # The SQL form of a route agrees with the Python one, for the backlog and the purge.
    for d in (prod, siem, everything, health):
        route = Route.of(d)
        assert Message.objects.filter(route.q()).count() == sum(
            route.selects(row) for row in Message.objects.values()
        )


def test_batches_respect_the_kind_limit_and_each_ack_moves_the_cursor(destination, monkeypatch):
    make_messages(130)
    soc = destination()
    seen = []
    original = runs.acknowledge

    def spy(pk, token, version, *, upto, count, size):
        seen.append(count)
        return original(pk, token, version, upto=upto, count=count, size=size)

    monkeypatch.setattr(runs, "acknowledge", spy)
    runs.deliver(soc.pk)
    assert [c for c in seen if c] == [50, 50, 30]  # FileKind.max_batch_messages is 50


def test_a_failed_batch_is_sent_again_and_nothing_is_lost(destination, tmp_path):
    make_messages(60)
    soc = destination()
    fail = tmp_path / "SOC.fail"
    fail.write_text("503")
    assert runs.deliver(soc.pk) == "error: ThirdPartyGeneric"
    soc = refresh(soc)
    assert soc.cursor == 0 and soc.next_attempt_at is not None and soc.halted_at is None
    (event,) = HealthEvent.objects.filter(resource_type="Destination", resolved_at=None)
    assert event.severity == Severity.WARNING and event.subsystem == "Delivery"
    assert soc.state != DestinationState.ERROR  # a retrying warning, not an error yet
    fail.unlink()
    assert runs.deliver(soc.pk) == "ok: 60 messages"
    assert len({line["id"] for line in out(soc)}) == 60
    assert not HealthEvent.objects.filter(resource_type="Destination", resolved_at=None).exists()


def test_a_rejected_token_halts_until_the_destination_is_edited(destination):
    make_messages(3)
    soc = destination(token="wrong")
    assert runs.deliver(soc.pk) == "error: ThirdPartyConfig"
    soc = refresh(soc)
    assert soc.halted_at is not None and soc.state == DestinationState.ERROR
    assert runs.deliver(soc.pk) == "busy"  # a halted destination is not runnable
    form = destination_form_class(NAME)(
        data={"name": "SOC", "route": "", "path": soc.config["path"], "token": "good"},
        instance=soc,
    )
    assert form.is_valid(), form.errors
    services.update_destination(destination=soc, form=form)
    assert runs.deliver(soc.pk) == "ok: 3 messages"


def test_an_outage_past_90_minutes_is_an_error_that_keeps_retrying(destination, tmp_path):
    make_messages(3)
    soc = destination()
    (tmp_path / "SOC.fail").write_text("503")
    runs.deliver(soc.pk)
    # The streak began 91 minutes ago (the clock moved).
    Destination.objects.filter(pk=soc.pk).update(
        streak_started_at=timezone.now() - dt.timedelta(minutes=91), next_attempt_at=None
    )
    runs.deliver(soc.pk)
    soc = refresh(soc)
    assert soc.state == DestinationState.ERROR and soc.halted_at is None
    assert soc.next_attempt_at is not None  # never gives up while its data is retained
    event = HealthEvent.objects.get(resource_type="Destination", resolved_at=None)
    assert event.severity == Severity.ERROR
    (tmp_path / "SOC.fail").unlink()
    Destination.objects.filter(pk=soc.pk).update(next_poll_at=timezone.now())
    assert runs.deliver(soc.pk) == "ok: 3 messages"
    assert refresh(soc).state == DestinationState.DELIVERING
    assert not HealthEvent.objects.filter(resource_type="Destination", resolved_at=None).exists()


def test_an_edit_during_a_run_stops_it_at_the_next_acknowledgement(destination, monkeypatch):
    make_messages(120)
    soc = destination()
    original = runs.acknowledge
    calls = {"n": 0}

    def edit_after_first(*args, **kwargs):
        original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            Destination.objects.filter(pk=soc.pk).update(config_version=99)

    monkeypatch.setattr(runs, "acknowledge", edit_after_first)
    assert runs.deliver(soc.pk).startswith("stopped")
    assert refresh(soc).cursor == out(soc)[-1]["id"]  # acknowledged exactly what was written
    assert len(out(soc)) == 50


def test_pausing_keeps_the_backlog_and_the_purge_waits_for_it(destination, settings):
    settings.MESSAGE_RETENTION_DAYS = 1
    make_messages(5, minutes_ago=3 * 24 * 60)
    soc = destination()
    services.pause_destination(destination=soc)
    assert runs.deliver(soc.pk) == "busy"
    assert schedule.purge()["messages"] == 0  # still owed to a paused destination
    services.resume_destination(destination=soc)
    runs.deliver(soc.pk)
    assert len(out(soc)) == 5
    assert schedule.purge()["messages"] == 5


def test_the_hard_cap_deletes_anyway_and_says_what_was_lost(destination, settings):
    settings.MESSAGE_RETENTION_DAYS = 1
    settings.DELIVERY_HARD_CAP_DAYS = 2
    make_messages(4, minutes_ago=3 * 24 * 60)
    make_messages(2, start=50, minutes_ago=60)
    soc = destination()
    services.pause_destination(destination=soc)
    assert schedule.purge()["messages"] == 4
    event = HealthEvent.objects.get(event_name=DATA_LOSS_EVENT, resolved_at=None)
    assert event.severity == Severity.ERROR and event.resource_name == "SOC"
    assert event.details["count"] == 4 and "4 messages" in event.details["error"]
    assert Message.objects.filter(index="").count() == 2  # besides the event's own log record


def test_new_messages_queue_deliveries_after_commit(destination, make_source, queued):
    soc = destination()
    queued.clear()
    from collector.delivery.runs import kick_deliveries

    assert kick_deliveries() == 1 and queued == [(runs.DELIVER, soc.pk)]
    assert kick_deliveries() == 0  # already queued: one delivery task per destination


def test_the_test_message_is_marked_and_not_counted(destination):
    soc = destination()
    result = services.send_test_message(destination=soc)
    assert result.ok and "The receiver answered" in result.message
    (line,) = out(soc)
    assert line["test"] is True and "Sumo Sources test message" in line["raw"]
    assert refresh(soc).delivered_total == 0


def test_a_webhook_style_route_receives_health_events_as_alerts(
    destination, make_source, queued, django_capture_on_commit_callbacks
):
    from collector import engine

    alerts = destination("Alerts", route="_index=sumologic_system_events Error")
    queued.clear()
    source = make_source("East")
    with django_capture_on_commit_callbacks(execute=True):
        engine.open_event(source, event_name="ThirdPartyConfigError", severity=Severity.ERROR,
                          details={"error": "Sophos rejected the secret."})  # fmt: skip
    assert (runs.DELIVER, alerts.pk) in queued  # queued as soon as the record committed
    runs.deliver(alerts.pk)
    (line,) = out(alerts)
    assert line["meta"]["_index"] == "sumologic_system_events"
    assert '"severityLevel":"Error"' in line["raw"] and "ThirdPartyConfigError" in line["raw"]
