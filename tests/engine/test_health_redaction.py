"""Defence in depth: the engine redacts whatever a kind forgot to, where it stores errors."""

import json

import pytest
from django.utils import timezone

from collector import engine, kinds
from collector.choices import ErrorType, Severity
from collector.engine import health, runs
from collector.errors import CollectionError
from collector.models import CollectionRun, HealthEvent
from collector.redact import REDACTED
from tests.support.fake_kind import FakeKind

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
BEARER = "Bearer q1w2e3r4t5y6u7i8o9p0"
CARELESS = f"vendor said: {BEARER} token={JWT}\x00\r\nnext line\u202e " + "z" * 3000


@pytest.fixture
def fake(monkeypatch):
    kind = kinds.register(FakeKind())
    monkeypatch.setattr(runs, "prefetched", lambda pages: pages)
    yield kind
    kinds.unregister(kind.name)


def test_open_event_redacts_and_caps_every_string_of_the_details(make_source):
    source = make_source()
    details = {"error": CARELESS, "nested": {"ids": [JWT]}, "attempts": 2, "retrying": True}
    event = health.open_event(
        source, event_name="ThirdPartyGenericError", severity=Severity.WARNING, details=details
    )
    stored = HealthEvent.objects.get(pk=event.pk).details
    assert stored["error"].startswith(f"vendor said: Bearer {REDACTED} token={REDACTED} next line")
    assert len(stored["error"]) == health.DETAIL_LIMIT
    assert stored["nested"] == {"ids": [REDACTED]}
    assert (stored["attempts"], stored["retrying"]) == (2, True)
    text = json.dumps(stored)
    assert JWT not in text and "q1w2e3r4" not in text and "\\u0000" not in text
    # The same on an update of the open event.
    health.open_event(
        source, event_name="ThirdPartyGenericError", severity=Severity.ERROR, details=details
    )
    assert JWT not in json.dumps(HealthEvent.objects.get(pk=event.pk).details)


def test_a_careless_kind_error_is_redacted_in_the_event_the_source_and_the_run(
    make_source, fake, queued
):
    source = make_source(kind=fake.name, next_poll_at=timezone.now())
    fake.errors[("Events", "t1")] = CollectionError(
        ErrorType.THIRD_PARTY_GENERIC, CARELESS, api="Events", tenant_id="t1", status=503,
        correlation_id=JWT,
    )  # fmt: skip
    engine.run_source(source.pk)
    source.refresh_from_db()
    (event,) = HealthEvent.objects.filter(source=source)
    (run,) = CollectionRun.objects.filter(source=source, stream="Events")
    for text in (json.dumps(event.details), source.last_error, run.error):
        assert REDACTED in text
        assert JWT not in text and "q1w2e3r4" not in text and "\x00" not in text
    assert event.details["correlationId"] == REDACTED
