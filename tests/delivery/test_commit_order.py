"""Two pages that would commit out of id order: the cursor must not skip the late one.

On PostgreSQL, ids come from a sequence when rows are inserted, not when they commit. Page A
draws the lower ids, page B the higher ones, B commits first, a delivery run moves its cursor
past B, then A commits: without the commit-order lock, A's rows sit below the cursor for ever.
The test stages exactly that with two real page transactions in two threads, and shows the
skip happens when the lock is switched off (on SQLite writers never overlap, so only the
guarded case can be staged there, and the unguarded one shows SQLite serialising by itself).
"""

import threading

import pytest
from django.db import connection, connections

from collector import services
from collector.delivery import clock, runs
from collector.engine import ingest
from collector.engine.claims import claim
from collector.forms import destination_form_class
from collector.kinds.base import Page
from collector.kinds.base import Tenant as TenantInfo
from collector.models import Message, Source
from tests.conftest import wait_for
from tests.support.file_destination import NAME, PATH, delivered


@pytest.fixture(autouse=True)
def file_kind(settings):
    settings.DESTINATION_KINDS = [PATH]


def _page(name: str, count: int) -> Page:
    items = [
        {"id": f"{name}-{n}", "when": "2026-12-01T08:00:00.000Z", "group": "MALWARE"}
        for n in range(count)
    ]
    return Page(stream="Events", tenant=TenantInfo(id="t", name="T", api_host=""), items=items,
                checkpoint={"n": count})  # fmt: skip


def _writer(source: Source, page: Page, pause: threading.Event | None, errors: list):
    """Store ``page`` as a run would; with ``pause``, hold the transaction open after the insert
    until the event is set."""
    try:
        token = claim(Source, source.pk)
        metadata = ingest.run_metadata(source)
        if pause is not None:
            metadata.dropped = [
                "held"
            ]  # makes store_page call _count_dropped inside its transaction
        ingest.store_page(source=source, page=page, metadata=metadata, unit_model=Source,
                          unit_pk=source.pk, token=token, version=source.config_version)  # fmt: skip
    except Exception as exc:  # reported to the test thread
        errors.append(exc)
    finally:
        connections.close_all()


def _stage(make_source, tmp_path, monkeypatch, *, lock: bool):
    if not lock:
        monkeypatch.setattr(clock, "hold_clock", lambda: None)
        monkeypatch.setattr(ingest, "hold_clock", lambda: None)
    a_source = make_source("A", next_poll_at=None)
    b_source = make_source("B", collector=a_source.collector, next_poll_at=None)
    form = destination_form_class(NAME)(data={"name": "SOC", "route": "", "start_from": "all",
                                              "path": str(tmp_path / "out.ndjson")})  # fmt: skip
    assert form.is_valid(), form.errors
    soc = services.create_destination(form=form)

    inside, release = threading.Event(), threading.Event()
    original = ingest._count_dropped

    def hold(names, items, source):
        if source.pk == a_source.pk:
            inside.set()  # A has inserted its rows (lower ids) and not committed
            release.wait(timeout=30)
        return original([n for n in names if n != "held"], items, source)

    monkeypatch.setattr(ingest, "_count_dropped", hold)
    errors: list = []
    a = threading.Thread(target=_writer, args=(a_source, _page("a", 3), release, errors))
    b = threading.Thread(target=_writer, args=(b_source, _page("b", 3), None, errors))
    a.start()
    assert inside.wait(timeout=30), "page A never reached its insert"
    b.start()
    # B either waits for the lock (guarded) or commits its higher ids first (unguarded).
    b.join(timeout=3)
    b_committed_first = not b.is_alive()
    if connection.vendor == "postgresql":
        runs.deliver(soc.pk)  # a delivery run while A is still open
    release.set()
    a.join(timeout=30)
    b.join(timeout=30)
    assert not errors, errors
    wait_for(lambda: Message.objects.filter(index="").count() == 6, message="both pages")
    runs.deliver(soc.pk)
    return soc, b_committed_first


@pytest.mark.django_db(transaction=True)
def test_a_page_committing_late_is_still_delivered(make_source, tmp_path, monkeypatch, queued):
    soc, b_first = _stage(make_source, tmp_path, monkeypatch, lock=True)
    assert not b_first  # page B waited for page A's commit: ids commit in order
    sent = sorted(line["id"] for line in delivered(soc.config["path"]))
    assert sent == sorted(Message.objects.filter(index="").values_list("id", flat=True))


@pytest.mark.django_db(transaction=True)
def test_without_the_lock_the_late_page_would_be_skipped(
    make_source, tmp_path, monkeypatch, queued
):
    soc, b_first = _stage(make_source, tmp_path, monkeypatch, lock=False)
    if connection.vendor != "postgresql":
        # SQLite's IMMEDIATE transactions let one writer at a time: B waited all the same.
        assert not b_first
        return
    assert b_first
    sent = {line["id"] for line in delivered(soc.config["path"])}
    stored = set(Message.objects.filter(index="").values_list("id", flat=True))
    assert stored - sent  # A's rows fell below the cursor: what the lock prevents
