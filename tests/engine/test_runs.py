"""Engine edge cases with a scripted kind, tasks run inline (the cluster tests run them for real)."""

import datetime as dt
import json

import pytest
from django.utils import timezone

from collector import engine, kinds
from collector.choices import DATA_GAP_EVENT, SYSTEM_EVENTS_INDEX, ErrorType, Severity, SourceState
from collector.engine import claims, runs
from collector.errors import CollectionError
from collector.kinds.base import DataGap, Identity, Tenant
from collector.models import (
    Checkpoint,
    CollectionRun,
    DroppedField,
    Field,
    HealthEvent,
    Message,
    Source,
    SourceTransition,
)
from collector.models import Tenant as TenantRow
from tests.support.fake_kind import FakeKind, item


@pytest.fixture
def fake(monkeypatch):
    kind = kinds.register(FakeKind())
    # The scripted hooks stand for edits made elsewhere between two pages; iterate in this thread
    # so they happen exactly there (prefetching has its own tests below).
    monkeypatch.setattr(runs, "prefetched", lambda pages: pages)
    yield kind
    kinds.unregister(kind.name)


@pytest.fixture
def source(make_source, fake, queued):
    return make_source(kind=fake.name, next_poll_at=timezone.now())


def states(source):
    return list(
        SourceTransition.objects.filter(source=source)
        .order_by("at", "id")
        .values_list("to_state", flat=True)
    )


def refresh(source):
    source.refresh_from_db()
    return source


def open_events(source):
    return list(HealthEvent.objects.filter(source=source, resolved_at__isnull=True))


def test_new_source_walks_the_lifecycle_and_stores_every_item(source, fake, queued):
    fake.data[("Alerts", "t1")] = [[item(1), item(2)], [item(3)]]
    fake.data[("Events", "t1")] = [[item(10)]]
    assert engine.kick(source.pk)
    assert queued == [(engine.RUN_SOURCE, source.pk)]
    assert engine.run_source(source.pk).startswith("ok")
    assert states(source) == ["Started", "Initialized", "Authenticated", "Collecting"]
    assert Message.objects.filter(source=source).count() == 4
    assert Checkpoint.objects.get(source=source, stream="Alerts").position == {"next": 2}
    runs = CollectionRun.objects.filter(source=source).order_by("stream")
    assert [(r.stream, r.pages, r.items, r.outcome) for r in runs] == [
        ("Alerts", 2, 3, "success"), ("Events", 1, 1, "success"),
    ]  # fmt: skip
    source = refresh(source)
    assert source.claimed_at is None and source.queued_at is None
    assert source.next_poll_at > timezone.now() + dt.timedelta(seconds=250)


def test_refetching_a_page_stores_nothing_twice(source, fake):
    fake.data[("Events", "t1")] = [[item(1), item(2)]]
    engine.run_source(source.pk)
    Checkpoint.objects.all().delete()  # as if the checkpoint write had been lost
    engine.run_source(source.pk)
    assert Message.objects.filter(source=source).count() == 2
    assert Checkpoint.objects.get(source=source, stream="Events").items_total == 0


def test_metadata_fields_gate_and_siem(make_collector, make_source, fake, queued):
    collector = make_collector(
        "Hosted", category="collector/cat", fields={"team": "blue", "absent": "x"}
    )
    source = make_source(kind=fake.name, collector=collector, fields={"team": "red", "_budget": "b1"},
                         forward_to_siem=True, category="")  # fmt: skip
    Field.objects.create(name="team")
    fake.data[("Events", "t1")] = [[item(1, group="runtimeDetections"), item(2)]]
    engine.run_source(source.pk)
    message = Message.objects.get(vendor_id="item-1")
    assert message.source_category == "collector/cat"
    assert (message.source_name, message.collector_name, message.stream) == (
        source.name,
        "Hosted",
        "Events",
    )
    assert message.tenant_id == "t1" and message.tenant_name == "Tenant One"
    assert message.siem_event_id == "runtimeDetections"
    assert message.fields == {
        "team": "red", "_budget": "b1", "_siemForward": "true", "_siemVendor": "Sophos",
        "_siemProduct": "Sophos Central", "_siemFormat": "JSON",
    }  # fmt: skip
    assert json.loads(message.raw) == item(1, group="runtimeDetections")
    assert message.message_time == dt.datetime(2026, 11, 26, 8, 0, 1, tzinfo=dt.UTC)
    dropped = DroppedField.objects.get(name="absent")
    assert dropped.count == 2 and "Hosted" in dropped.last_resource


def test_siem_fields_absent_without_forwarding(source, fake):
    fake.data[("Events", "t1")] = [[item(1)]]
    engine.run_source(source.pk)
    message = Message.objects.get()
    assert message.siem_event_id == "" and "_siemForward" not in message.fields


def test_config_error_halts_until_restart(source, fake, queued, django_capture_on_commit_callbacks):
    fake.auth_error = CollectionError(
        ErrorType.THIRD_PARTY_CONFIG, "Sophos Central rejected the client secret.",
        remedy="Edit the source and enter a new Client Secret.", status=401,
        vendor_code="oauth.invalid_client_secret", api="Token",
    )  # fmt: skip
    engine.run_source(source.pk)
    source = refresh(source)
    assert source.state == SourceState.ERROR and source.halted_at is not None
    (event,) = open_events(source)
    assert (event.event_name, event.severity) == ("ThirdPartyConfigError", Severity.ERROR)
    assert event.details["vendorCode"] == "oauth.invalid_client_secret"
    assert "s3cret" not in json.dumps(event.details)
    # No retries: neither a kick nor the dispatcher queues it.
    queued.clear()
    assert not engine.kick(source.pk)
    Source.objects.filter(pk=source.pk).update(next_poll_at=timezone.now() - dt.timedelta(hours=1))
    engine.dispatch()
    assert queued == []
    # A restart clears it and runs again at once.
    fake.auth_error = None
    fake.data[("Events", "t1")] = [[item(1)]]
    with django_capture_on_commit_callbacks(execute=True):
        engine.reset_to_pending(source.pk, reason="Restarted by a user.")
    assert queued == [(engine.RUN_SOURCE, source.pk)]
    engine.run_source(source.pk)
    assert refresh(source).state == SourceState.COLLECTING
    assert open_events(source) == []
    records = Message.objects.filter(index=SYSTEM_EVENTS_INDEX).order_by("id")
    statuses = [json.loads(r.raw)["status"] for r in records]
    assert statuses == ["Unhealthy", "Healthy"]
    record = json.loads(records[0].raw)
    assert (
        record["eventType"] == "Health-Change" and record["resourceIdentity"]["name"] == source.name
    )


def test_generic_error_retries_with_backoff_then_recovers(source, fake):
    fake.errors[("Events", "t1")] = CollectionError(
        ErrorType.THIRD_PARTY_GENERIC, "Sophos Central answered 503.", status=503, api="Events",
        tenant_id="t1", retry_after=120,
    )  # fmt: skip
    before = timezone.now()
    engine.run_source(source.pk)
    source = refresh(source)
    assert source.state == SourceState.ERROR and source.halted_at is None
    assert source.next_poll_at >= before + dt.timedelta(seconds=120)  # Retry-After honoured
    (event,) = open_events(source)
    assert event.severity == Severity.WARNING and event.details["attempts"] == 1
    assert event.details["retrying"] is True and "nextAttemptAt" in event.details
    assert "Retrying (attempt 1)" in source.state_detail
    engine.run_source(source.pk)
    (event,) = open_events(source)
    assert event.count == 2 and event.details["attempts"] == 2
    del fake.errors[("Events", "t1")]
    fake.data[("Events", "t1")] = [[item(1)]]
    engine.run_source(source.pk)
    source = refresh(source)
    assert source.state == SourceState.COLLECTING and source.failure_count == 0
    assert open_events(source) == []
    assert states(source)[-2:] == ["Error", "Collecting"]


def test_gives_up_after_the_retry_window(source, fake, settings):
    settings.RETRY_GIVE_UP_MINUTES = 90
    fake.errors[("Events", "t1")] = CollectionError(
        ErrorType.THIRD_PARTY_GENERIC, "Timed out.", api="Events"
    )
    engine.run_source(source.pk)
    # The clock moves 91 minutes on: the streak started that long ago.
    Source.objects.filter(pk=source.pk).update(
        streak_started_at=timezone.now() - dt.timedelta(minutes=91), claimed_at=None
    )
    engine.run_source(source.pk)
    source = refresh(source)
    assert source.halted_at is not None and source.state == SourceState.ERROR
    (event,) = open_events(source)
    assert event.severity == Severity.ERROR and event.details["gaveUp"] is True
    assert "Edit or restart the source" in event.details["description"]
    assert "Gave up" in source.state_detail


def test_undecryptable_secret_is_a_first_party_error(source, fake):
    Source.objects.filter(pk=source.pk).update(secret_encrypted="garbage")
    engine.run_source(source.pk)
    (event,) = open_events(source)
    assert event.event_name == "FirstPartyGenericError" and event.severity == Severity.WARNING


def test_unexpected_exception_is_first_party_and_does_not_escape(source, fake):
    fake.errors[("Events", "t1")] = ZeroDivisionError("boom")
    assert engine.run_source(source.pk) == "error: FirstPartyGeneric"
    assert open_events(source)[0].event_name == "FirstPartyGenericError"


def test_edit_during_a_run_stops_at_the_page_boundary(source, fake, queued):
    fake.data[("Events", "t1")] = [[item(1)], [item(2)], [item(3)]]
    fake.before_page[("Events", "t1", 1)] = lambda: Source.objects.filter(pk=source.pk).update(
        config_version=source.config_version + 1
    )
    assert engine.run_source(source.pk).startswith("stopped")
    assert list(Message.objects.values_list("vendor_id", flat=True)) == ["item-1"]
    assert CollectionRun.objects.get(stream="Events").outcome == "stopped"


def test_delete_while_collecting_goes_through_stopping_and_keeps_messages(source, fake, queued):
    fake.data[("Events", "t1")] = [[item(1)], [item(2)]]
    fake.before_page[("Events", "t1", 1)] = lambda: engine.request_stop(source.pk)
    engine.run_source(source.pk)
    assert not Source.objects.filter(pk=source.pk).exists()
    message = Message.objects.get(vendor_id="item-1")
    assert message.source_id is None and message.source_name == source.name
    assert (engine.FINISH_STOP, source.pk) in queued


def test_delete_of_an_idle_source_is_asynchronous(source, queued):
    engine.request_stop(source.pk)
    assert refresh(source).state == SourceState.STOPPING
    assert engine.finish_stop(source.pk)
    assert not Source.objects.filter(pk=source.pk).exists()


def test_pause_and_resume(source, fake, queued, django_capture_on_commit_callbacks):
    fake.data[("Events", "t1")] = [[item(1)]]
    engine.pause(source.pk)
    assert refresh(source).state == SourceState.PAUSED
    assert engine.run_source(source.pk) == "busy"
    assert not engine.kick(source.pk)
    with django_capture_on_commit_callbacks(execute=True):
        engine.resume(source.pk)
    source = refresh(source)
    assert source.state == SourceState.STARTED and not source.paused
    engine.run_source(source.pk)
    assert refresh(source).state == SourceState.COLLECTING


def test_claims_are_compare_and_swap_and_stale_claims_expire(source, settings):
    first = claims.claim(Source, source.pk)
    assert first and claims.claim(Source, source.pk) is None
    Source.objects.filter(pk=source.pk).update(
        claimed_at=timezone.now() - dt.timedelta(seconds=settings.CLAIM_TTL + 1)
    )
    second = claims.claim(Source, source.pk)
    assert second and second != first
    assert not claims.renew(Source, source.pk, first)


def test_a_lost_claim_writes_nothing(source, fake):
    fake.data[("Events", "t1")] = [[item(1)], [item(2)]]
    fake.before_page[("Events", "t1", 1)] = lambda: Source.objects.filter(pk=source.pk).update(
        claim_token="someone-else"
    )
    assert engine.run_source(source.pk).startswith("stopped")
    assert list(Message.objects.values_list("vendor_id", flat=True)) == ["item-1"]


def test_partner_tenants_are_isolated(source, fake, queued):
    tenants = tuple(Tenant(id=f"t{i}", name=f"Tenant {i}", api_host="https://x") for i in (1, 2, 3))
    fake.identity = Identity(id="p1", id_type="partner", tenants=tenants, fans_out=True)
    for tenant in tenants:
        fake.data[("Events", tenant.id)] = [[item(int(tenant.id[1:]) * 100)]]
    fake.errors[("Events", "t2")] = CollectionError(
        ErrorType.THIRD_PARTY_CONFIG, "Access to tenant Tenant 2 is denied.", status=403,
        api="Events", tenant_id="t2", tenant_name="Tenant 2", tenant_scoped=True,
    )  # fmt: skip
    engine.run_source(source.pk)
    tenant_tasks = [args for func, *args in queued if func == engine.RUN_TENANT]
    assert len(tenant_tasks) == 3
    for (pk,) in tenant_tasks:
        engine.run_tenant(pk)
    assert sorted(Message.objects.filter(index="").values_list("tenant_id", flat=True)) == [
        "t1",
        "t3",
    ]
    source = refresh(source)
    assert source.state == SourceState.COLLECTING
    (event,) = open_events(source)
    assert event.severity == Severity.WARNING and event.scope == "tenant:t2"
    assert "Tenant 2" in event.details["error"]
    assert TenantRow.objects.get(tenant_id="t2").halted_at is None  # looked at again next poll
    # The partner fixes access: the warning resolves on the next run of that tenant.
    del fake.errors[("Events", "t2")]
    engine.run_tenant(TenantRow.objects.get(tenant_id="t2").pk)
    assert open_events(source) == []
    assert Message.objects.filter(tenant_id="t2").count() == 1


def test_a_data_gap_is_a_warning_naming_the_period(source, fake):
    lost_from = dt.datetime(2026, 11, 20, 0, 0, tzinfo=dt.UTC)
    fake.data[("Events", "t1")] = [[item(1)]]
    fake.gaps[("Events", "t1", 0)] = DataGap(
        "Events", "t1", lost_from, lost_from + dt.timedelta(hours=5)
    )
    engine.run_source(source.pk)
    (event,) = open_events(source)
    assert event.event_name == DATA_GAP_EVENT and event.severity == Severity.WARNING
    assert "2026-11-20 00:00 to 2026-11-20 05:00" in event.details["error"]
    assert refresh(source).state == SourceState.COLLECTING


def test_a_kinds_notice_is_a_warning_until_it_is_resolved(source, fake):
    from collector.kinds.base import Notice

    fake.data[("Events", "t1")] = [[item(1)], [item(2)]]
    warn = Notice("LookupWarning", "Events:t1", "Lookups were refused.", "Grant the role.",
                  {"api": "Lookups"})  # fmt: skip
    fake.notices[("Events", "t1", 0)] = [warn]
    engine.run_source(source.pk)
    (event,) = open_events(source)
    assert (event.event_name, event.severity) == ("LookupWarning", Severity.WARNING)
    assert event.details["error"] == "Lookups were refused." and event.details["api"] == "Lookups"
    assert refresh(source).state == SourceState.COLLECTING  # collection went on
    fake.data[("Events", "t1")] = [[item(1)], [item(2)], [item(3)]]
    fake.notices[("Events", "t1", 2)] = [Notice("LookupWarning", "Events:t1", resolve=True)]
    refresh(source)
    Source.objects.filter(pk=source.pk).update(next_poll_at=timezone.now())
    engine.run_source(source.pk)
    assert open_events(source) == []


def test_a_one_off_notice_expires_after_a_day(source, fake):
    from collector.kinds.base import Notice

    fake.data[("Events", "t1")] = [[item(1)]]
    fake.notices[("Events", "t1", 0)] = [
        Notice("ResetWarning", "Events:t1", "Reset.", expires=True)
    ]
    engine.run_source(source.pk)
    (event,) = open_events(source)
    HealthEvent.objects.filter(pk=event.pk).update(
        last_seen=timezone.now() - dt.timedelta(hours=25)
    )
    assert engine.dispatch()["gaps_expired"] == 1
    assert open_events(source) == []


def test_backoff_grows_with_jitter_and_a_cap():
    assert 24 <= engine.backoff_seconds(1) <= 36
    assert 48 <= engine.backoff_seconds(2) <= 72
    assert engine.backoff_seconds(30) <= engine.BACKOFF_CAP_SECONDS * 1.2
    assert engine.backoff_seconds(1, retry_after=500) >= 500


def test_purge_removes_only_expired_messages(source, fake, settings):
    settings.MESSAGE_RETENTION_DAYS = 7
    old = timezone.now() - dt.timedelta(days=8)
    fake.data[("Events", "t1")] = [[item(1, when=old), item(2, when=timezone.now())]]
    engine.run_source(source.pk)
    Message.objects.filter(vendor_id="item-1").update(receipt_time=old)
    result = engine.purge()
    assert result["messages"] == 1
    assert list(Message.objects.values_list("vendor_id", flat=True)) == ["item-2"]


def test_prefetch_keeps_order_and_reraises_errors_in_place():
    def pages():
        yield 1
        yield 2
        raise CollectionError(ErrorType.THIRD_PARTY_GENERIC, "boom")

    seen = []
    with pytest.raises(CollectionError, match="boom"):
        for page in engine.prefetched(pages()):
            seen.append(page)
    assert seen == [1, 2]


def test_prefetch_stops_the_producer_when_the_caller_stops():
    produced = []

    def pages():
        for n in range(1000):
            produced.append(n)
            yield n

    for page in engine.prefetched(pages(), depth=2):
        if page == 3:
            break
    assert len(produced) <= 3 + 2 + 2  # at most the queue and one page in hand beyond the caller
