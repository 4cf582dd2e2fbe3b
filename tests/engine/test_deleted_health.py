"""Health events do not outlive what they describe: deleting a source or a collector resolves
its open incidents, saying why, and the status API stops counting them."""

import pytest

from collector import engine, services
from collector.choices import SYSTEM_EVENTS_INDEX, Severity
from collector.models import HealthEvent, Message


def _open(source, name="ThirdPartyGenericError"):
    return engine.open_event(source, event_name=name, severity=Severity.WARNING,
                             details={"error": "boom"})  # fmt: skip


@pytest.fixture
def queued_nowhere(queued):
    return queued


def test_deleting_a_source_resolves_its_open_events(make_source, queued_nowhere):
    source, other = make_source("East"), make_source("West")
    event, kept = _open(source), _open(other)
    services.delete_source(source=source)
    assert engine.finish_stop(source.pk)
    event.refresh_from_db()
    assert event.resolved_at is not None
    assert event.details["resolution"] == "The source was deleted."
    assert HealthEvent.objects.get(pk=kept.pk).resolved_at is None  # others stay open
    record = Message.objects.filter(index=SYSTEM_EVENTS_INDEX, fields__status="Resolved")
    assert record.count() == 1 and record.get().source_name == "East"


def test_deleting_a_collector_resolves_its_and_its_sources_events(make_source, queued_nowhere):
    source = make_source("East")
    event = _open(source)
    services.delete_collector(collector=source.collector)
    event.refresh_from_db()
    assert event.resolved_at is not None
    assert event.details["resolution"] == "The collector was deleted."
    assert not HealthEvent.objects.filter(resolved_at__isnull=True).exists()


def test_the_status_api_no_longer_counts_them(make_source, queued_nowhere, admin_client):
    source = make_source("East")
    _open(source)
    before = admin_client.get("/api/v1/status").json()["totals"]["openHealthEventsBySeverity"]
    assert before.get("Warning") == 1
    services.delete_collector(collector=source.collector)
    after = admin_client.get("/api/v1/status").json()["totals"]["openHealthEventsBySeverity"]
    assert not after.get("Warning")
