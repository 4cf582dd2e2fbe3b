"""The collection engine: lifecycle, claims, scheduling, ingest, retries and health.

It knows nothing about any vendor: a source kind (collector.kinds) authenticates, pages and maps
items; this module decides when to run, stores what comes back and records how it went.

Concurrency rules, in one place:
- Work is claimed with compare-and-swap updates on ``claimed_at``/``claim_token`` (a row count of 1
  wins); a claim older than the task timeout is stale and may be taken over.
- Every page is stored in one short transaction together with its checkpoint, and that transaction
  also renews the claim; if the claim was lost meanwhile, the transaction rolls back and the run
  stops, so a slow worker can never write behind a newer one's back.
- No transaction is ever open across an HTTP call: pages are fetched first, then written.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import queue
import random
import threading
import time
import uuid
from dataclasses import dataclass

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from collector.choices import (
    DATA_GAP_EVENT,
    SYSTEM_EVENTS_INDEX,
    ErrorType,
    Severity,
    SourceState,
)
from collector.crypto import DecryptionError
from collector.errors import CollectionError
from collector.kinds import get_kind
from collector.kinds.base import Page
from collector.kinds.base import Tenant as TenantInfo
from collector.models import (
    Checkpoint,
    CollectionRun,
    DroppedField,
    Field,
    HealthEvent,
    IngestBucket,
    Message,
    Source,
    SourceTransition,
    Tenant,
)

log = logging.getLogger(__name__)

RUN_SOURCE = "collector.tasks.run_source"
RUN_TENANT = "collector.tasks.run_tenant"
FINISH_STOP = "collector.tasks.finish_stop"

EARLY_STATES = (SourceState.PENDING, SourceState.STARTED, SourceState.INITIALIZED)
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 15 * 60
SIEM_FIELDS = {"_siemVendor": "Sophos", "_siemProduct": "Sophos Central", "_siemFormat": "JSON"}


class RunStopped(Exception):
    """The run must end at this page boundary (edit, pause, delete, lost claim)."""


# --- time and claims --------------------------------------------------------------------------
def now() -> dt.datetime:
    return timezone.now()


def claim_ttl() -> dt.timedelta:
    """A claim not renewed for this long belongs to a dead worker."""
    return dt.timedelta(seconds=settings.CLAIM_TTL)


def queue_ttl() -> dt.timedelta:
    """A queued marker older than this belongs to a task the broker lost."""
    return dt.timedelta(seconds=settings.QUEUE_TTL)


def _claim(model, pk, extra: Q | None = None) -> str | None:
    """Compare-and-swap claim of one row; returns the claim token or None when someone holds it."""
    token = uuid.uuid4().hex
    moment = now()
    free = Q(claimed_at__isnull=True) | Q(claimed_at__lt=moment - claim_ttl())
    query = model.objects.filter(free, pk=pk)
    if extra is not None:
        query = query.filter(extra)
    won = query.update(claimed_at=moment, claim_token=token)
    return token if won == 1 else None


def _renew(model, pk, token: str) -> bool:
    return model.objects.filter(pk=pk, claim_token=token).update(claimed_at=now()) == 1


def enqueue(func: str, *args) -> None:
    """Queue a task (ids only: payloads are pickled and signed, not encrypted)."""
    from django_q.tasks import async_task

    async_task(func, *args, task_name=f"{func.rsplit('.', 1)[-1]}:{':'.join(map(str, args))}")


# --- lifecycle --------------------------------------------------------------------------------
def record_transition(source: Source, from_state: str, to_state: str, reason: str) -> None:
    SourceTransition.objects.create(
        source=source, from_state=from_state, to_state=to_state, reason=reason[:1024]
    )


def transition(source_id: int, to_state: str, reason: str, *, from_states=None, **extra) -> bool:
    """Move a source to ``to_state`` if it is in one of ``from_states`` (any, when None).

    The state check and the write are one UPDATE, so two workers cannot both make a transition;
    the transition row is written only by the one that did.
    """
    with transaction.atomic():
        row = Source.objects.filter(pk=source_id).values("state").first()
        if row is None:
            return False
        current = row["state"]
        if from_states is not None and current not in from_states:
            return False
        query = Source.objects.filter(pk=source_id, state=current)
        updated = query.update(
            state=to_state, state_detail=reason[:1024], state_changed_at=now(), **extra
        )
        if updated and current != to_state:
            SourceTransition.objects.create(
                source_id=source_id, from_state=current, to_state=to_state, reason=reason[:1024]
            )
        elif updated and extra:
            pass  # same state, fresh detail: no timeline row
        return bool(updated)


def kick(source_id: int) -> bool:
    """Queue a run of the source now unless one is queued or it may not run; Pending -> Started."""
    moment = now()
    not_queued = Q(queued_at__isnull=True) | Q(queued_at__lt=moment - queue_ttl())
    won = (
        Source.objects.filter(not_queued, pk=source_id, paused=False, halted_at__isnull=True)
        .exclude(state=SourceState.STOPPING)
        .update(queued_at=moment)
    )
    if not won:
        return False
    transition(
        source_id,
        SourceState.STARTED,
        "A collection task was created.",
        from_states=(SourceState.PENDING,),
    )
    try:
        enqueue(RUN_SOURCE, source_id)
    except Exception:
        log.exception("could not queue a run of source %s", source_id)
        Source.objects.filter(pk=source_id).update(queued_at=None)
        transition(
            source_id,
            SourceState.PENDING,
            "The task queue could not be reached; the dispatcher will try again.",
            from_states=(SourceState.STARTED,),
        )
        return False
    return True


def kick_on_commit(source_id: int) -> None:
    transaction.on_commit(lambda: kick(source_id))


_CLEAR_STREAK = {
    "error_type": "",
    "failure_count": 0,
    "streak_started_at": None,
    "next_attempt_at": None,
    "halted_at": None,
    "last_error": "",
}


def reset_to_pending(source_id: int, *, reason: str) -> None:
    """After an edit or a restart: a fresh start with checkpoints kept, queued at once."""
    moment = now()
    with transaction.atomic():
        transition(
            source_id,
            SourceState.PENDING,
            reason,
            config_version=F("config_version") + 1,
            paused=False,
            next_poll_at=moment,
            **_CLEAR_STREAK,
        )
        Tenant.objects.filter(source_id=source_id).update(next_poll_at=moment, **_CLEAR_STREAK)
    # A running worker notices the new config_version at its next page boundary and re-kicks on
    # release; if none runs, this kick starts the new run.
    if not Source.objects.filter(pk=source_id, claimed_at__isnull=False).exists():
        kick(source_id)


def pause(source_id: int) -> None:
    transition(
        source_id,
        SourceState.PAUSED,
        "Paused by a user; checkpoints are kept.",
        paused=True,
        config_version=F("config_version") + 1,
    )


def resume(source_id: int) -> None:
    reset_to_pending(source_id, reason="Resumed by a user.")


def request_stop(source_id: int) -> None:
    transition(
        source_id,
        SourceState.STOPPING,
        "Deleted by a user; stopping.",
        config_version=F("config_version") + 1,
    )
    try:
        enqueue(FINISH_STOP, source_id)
    except Exception:
        # The dispatcher removes stopped sources too; the queue being down only delays it.
        log.exception("could not queue the removal of source %s", source_id)


def finish_stop(source_id: int) -> bool:
    """Delete a Stopping source once no worker holds it. Collected messages stay."""
    with transaction.atomic():
        free = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now() - claim_ttl())
        source = Source.objects.filter(free, pk=source_id, state=SourceState.STOPPING).first()
        if source is None:
            return False
        busy_tenants = Tenant.objects.filter(
            source_id=source_id, claimed_at__gte=now() - claim_ttl()
        ).exists()
        if busy_tenants:
            return False
        source.delete()
    return True


# --- health -----------------------------------------------------------------------------------
def _resource(source: Source) -> dict:
    return {
        "id": str(source.pk),
        "name": source.name,
        "type": "Source",
        "collectorId": str(source.collector_id),
        "collectorName": source.collector.name,
    }


def _event_record(event: HealthEvent, status: str) -> dict:
    """The health change as a log record: the API's shape plus the Health-Change keys."""
    return {
        **event.as_sumo(at=now()),
        "status": status,
        "eventType": "Health-Change",
        "eventFormatVersion": "1.0",
    }


def _log_event(event: HealthEvent, status: str) -> None:
    """Write the health change as a searchable log record in the system events index."""
    record = _event_record(event, status)
    moment = now()
    Message.objects.create(
        source_id=event.source_id,
        index=SYSTEM_EVENTS_INDEX,
        stream="",
        vendor_id=uuid.uuid4().hex,
        source_name=event.resource_name,
        collector_name=event.collector_name,
        source_category="",
        siem_event_id="",
        fields={"status": status, "eventName": event.event_name},
        raw=json.dumps(record, separators=(",", ":")),
        message_time=moment,
        receipt_time=moment,
    )


def open_event(
    source: Source, *, event_name: str, severity: str, details: dict, scope: str = "", error_type=""
) -> HealthEvent:
    """Open an incident or update the open one (count, last seen, severity, details)."""
    moment = now()
    with transaction.atomic():
        event = HealthEvent.objects.filter(
            resource_type="Source",
            resource_id=str(source.pk),
            event_name=event_name,
            scope=scope,
            resolved_at__isnull=True,
        ).first()
        if event is None:
            resource = _resource(source)
            event = HealthEvent.objects.create(
                event_name=event_name,
                error_type=error_type,
                severity=severity,
                source=source,
                resource_id=resource["id"],
                resource_name=resource["name"],
                collector_id=resource["collectorId"],
                collector_name=resource["collectorName"],
                scope=scope,
                details=details,
                first_seen=moment,
                last_seen=moment,
            )
        else:
            event.severity = severity
            event.details = details
            event.last_seen = moment
            event.count = F("count") + 1
            event.save(update_fields=["severity", "details", "last_seen", "count"])
            event.refresh_from_db(fields=["count"])
        _log_event(event, "Unhealthy")
    return event


def resolve_events(source: Source, *, scope_prefix: str | None = None, names=None) -> int:
    """Resolve the open incidents of a source (of one scope family and names, when given)."""
    query = HealthEvent.objects.filter(
        resource_type="Source", resource_id=str(source.pk), resolved_at__isnull=True
    )
    if scope_prefix is not None:
        query = (
            query.filter(scope=scope_prefix)
            if scope_prefix == ""
            else query.filter(scope__startswith=scope_prefix)
        )
    if names is not None:
        query = query.filter(event_name__in=list(names))
    events = list(query)
    moment = now()
    for event in events:
        event.resolved_at = moment
        event.save(update_fields=["resolved_at"])
        _log_event(event, "Healthy")
    return len(events)


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter, never sooner than the vendor's Retry-After."""
    base = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempt - 1))
    delay = base * random.uniform(0.8, 1.2)
    if retry_after:
        delay = max(delay, float(retry_after))
    return delay


@dataclass
class Verdict:
    """What a failure means for its unit of work."""

    halted: bool
    severity: str
    next_attempt_at: dt.datetime | None
    attempts: int


def _decide(unit, error: CollectionError) -> Verdict:
    moment = now()
    attempts = (unit.failure_count or 0) + 1
    started = unit.streak_started_at or moment
    if not error.retries:
        return Verdict(True, Severity.ERROR, None, attempts)
    give_up = dt.timedelta(minutes=settings.RETRY_GIVE_UP_MINUTES)
    if moment - started >= give_up:
        return Verdict(True, Severity.ERROR, None, attempts)
    delay = backoff_seconds(attempts, error.retry_after)
    return Verdict(False, Severity.WARNING, moment + dt.timedelta(seconds=delay), attempts)


def _failure_details(error: CollectionError, verdict: Verdict) -> dict:
    details = error.details()
    details["attempts"] = verdict.attempts
    if verdict.next_attempt_at:
        details["nextAttemptAt"] = verdict.next_attempt_at.isoformat(timespec="seconds")
        details["retrying"] = True
    elif error.retries:
        details["gaveUp"] = True
        details["description"] = (
            f"Gave up after retrying for {settings.RETRY_GIVE_UP_MINUTES} minutes. "
            f"{error.remedy} Edit or restart the source to resume."
        ).strip()
    else:
        details["retrying"] = False
    return details


def _record_failure(unit, error: CollectionError, *, scope: str) -> Verdict:
    """Update a unit's (Source or Tenant) streak and the matching health event."""
    verdict = _decide(unit, error)
    moment = now()
    type(unit).objects.filter(pk=unit.pk).update(
        error_type=error.error_type.value,
        failure_count=verdict.attempts,
        streak_started_at=unit.streak_started_at or moment,
        next_attempt_at=verdict.next_attempt_at,
        halted_at=moment if verdict.halted else None,
        last_error=error.message[:2000],
        next_poll_at=verdict.next_attempt_at,
    )
    source = unit if isinstance(unit, Source) else unit.source
    open_event(
        source,
        event_name=error.error_type.event_name,
        severity=verdict.severity,
        details=_failure_details(error, verdict),
        scope=scope,
        error_type=error.error_type.value,
    )
    return verdict


def _state_sentence(error: CollectionError, verdict: Verdict) -> str:
    if verdict.next_attempt_at:
        when = verdict.next_attempt_at.strftime("%H:%M:%S UTC")
        return f"{error.message} Retrying (attempt {verdict.attempts}); next attempt at {when}."
    if error.retries:
        return f"{error.message} Gave up after {settings.RETRY_GIVE_UP_MINUTES} minutes; edit or restart the source."
    return f"{error.message} {error.remedy}".strip()


def first_party(message: str, remedy: str = "") -> CollectionError:
    return CollectionError(ErrorType.FIRST_PARTY_GENERIC, message, remedy=remedy)


# --- ingest -----------------------------------------------------------------------------------
@dataclass
class Gate:
    """Metadata applied to every item of a run, computed once per run (design section 6)."""

    fields_json: str
    dropped: list[str]
    siem: bool
    source_name: str
    source_category: str
    collector_name: str


def build_gate(source: Source) -> Gate:
    merged = {**(source.collector.fields or {}), **(source.fields or {})}
    merged.pop("_siemForward", None)
    enabled = {
        name.lower() for name in Field.objects.filter(enabled=True).values_list("name", flat=True)
    }
    applied: dict[str, str] = {}
    dropped: list[str] = []
    for name, value in merged.items():
        if name.startswith("_") or name.lower() in enabled:
            applied[name] = str(value)
        else:
            dropped.append(name)
    if source.forward_to_siem:
        applied["_siemForward"] = "true"
        applied.update(SIEM_FIELDS)
    return Gate(
        fields_json=json.dumps(applied, separators=(",", ":")),
        dropped=dropped,
        siem=source.forward_to_siem,
        source_name=source.name,
        source_category=source.effective_category,
        collector_name=source.collector.name,
    )


@functools.cache
def _sql() -> dict[str, str]:
    """The three statements of the ingest path, built once from model metadata.

    Table and column names come from our own models, never from input, so composing them is safe;
    values always travel as parameters. ON CONFLICT works on SQLite and PostgreSQL alike.
    """
    q = connection.ops.quote_name
    message = q(Message._meta.db_table)
    checkpoint = q(Checkpoint._meta.db_table)
    bucket = q(IngestBucket._meta.db_table)
    columns = (
        "source_id", "index", "stream", "tenant_id", "tenant_name", "vendor_id", "source_name",
        "source_category", "collector_name", "siem_event_id", "fields", "raw", "message_time",
        "receipt_time",
    )  # fmt: skip
    return {
        "messages": (
            f"INSERT INTO {message} ({', '.join(q(c) for c in columns)}) "  # noqa: S608
            f"VALUES ({', '.join(['%s'] * len(columns))}) ON CONFLICT DO NOTHING"
        ),
        "checkpoint": (
            f"INSERT INTO {checkpoint} "  # noqa: S608
            "(source_id, stream, tenant_id, position, data_until, items_total, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (source_id, stream, tenant_id) DO UPDATE SET "
            "position = excluded.position, updated_at = excluded.updated_at, "
            f"items_total = {checkpoint}.items_total + excluded.items_total, "
            f"data_until = CASE WHEN {checkpoint}.data_until IS NULL "
            f"OR excluded.data_until > {checkpoint}.data_until "
            f"THEN excluded.data_until ELSE {checkpoint}.data_until END"
        ),
        "bucket": (
            f"INSERT INTO {bucket} (source_id, stream, start, items, bytes) "  # noqa: S608
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (source_id, stream, start) DO UPDATE SET "
            f"items = {bucket}.items + excluded.items, bytes = {bucket}.bytes + excluded.bytes"
        ),
    }


def _encode(item) -> str:
    """An item re-encoded exactly as parsed (same keys, order and values), compactly; orjson is
    ten times faster than the standard library here, a sixth of the whole ingest cost."""
    return orjson.dumps(item).decode()


def _datetime_adapter():
    """Django's adapter, with a fast path for SQLite: it is ~4 us an item, a third of the budget.

    SQLite stores naive UTC text via ``str()``; kinds hand us aware UTC datetimes, so dropping the
    zone gives the same text Django would write.
    """
    adapt = connection.ops.adapt_datetimefield_value
    if connection.vendor != "sqlite":
        return adapt
    utc = dt.UTC

    def fast(value):
        if value.tzinfo is utc:
            return str(value.replace(tzinfo=None))
        return adapt(value)

    return fast


def _bucket_start(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=moment.minute - moment.minute % 5, second=0, microsecond=0)


@dataclass
class Stored:
    items: int
    newest: dt.datetime | None


def store_page(
    *, source: Source, page: Page, gate: Gate, unit_model, unit_pk: int, token: str, version: int
) -> Stored:
    """Store one page and the checkpoint after it in one transaction (exactly once into the store).

    The transaction also renews the claim and re-reads the source's config version, so a run that
    lost its claim or whose source was edited, paused or deleted writes nothing and stops.
    """
    kind = get_kind(source.kind)
    map_item = kind.map_item
    receipt = now()
    adapt = _datetime_adapter()
    receipt_db = adapt(receipt)
    tenant = page.tenant
    stream = page.stream
    source_pk = source.pk
    dumps = _encode
    rows = []
    newest = None
    for item in page.items:
        meta = map_item(stream, item)
        when = meta.message_time or receipt
        if newest is None or when > newest:
            newest = when
        rows.append(
            (
                source_pk,
                "",
                stream,
                tenant.id,
                tenant.name,
                meta.vendor_id,
                gate.source_name,
                gate.source_category,
                gate.collector_name,
                meta.siem_event_id if gate.siem else "",
                gate.fields_json,
                dumps(item),
                adapt(when),
                receipt_db,
            )
        )
    sql = _sql()
    with transaction.atomic():
        if unit_model.objects.filter(pk=unit_pk, claim_token=token).update(claimed_at=receipt) != 1:
            raise RunStopped("the claim was taken over")
        current = (
            Source.objects.filter(pk=source.pk).values_list("config_version", flat=True).first()
        )
        if current != version:
            raise RunStopped("the source was edited, paused or deleted")
        inserted = 0
        with connection.cursor() as cursor:
            if rows:
                cursor.executemany(sql["messages"], rows)
                inserted = max(cursor.rowcount, 0)
            cursor.execute(
                sql["checkpoint"],
                [
                    source.pk,
                    stream,
                    tenant.id,
                    json.dumps(page.checkpoint),
                    adapt(newest) if newest else None,
                    inserted,
                    receipt_db,
                ],
            )
            if inserted:
                cursor.execute(
                    sql["bucket"],
                    [source.pk, stream, adapt(_bucket_start(receipt)), inserted, page.bytes],
                )
        if gate.dropped and inserted:
            _count_dropped(gate.dropped, inserted, source)
    return Stored(inserted, newest)


def _count_dropped(names: list[str], items: int, source: Source) -> None:
    moment = now()
    where = f"Source {source.name!r} on collector {source.collector.name!r}"
    for name in names:
        updated = DroppedField.objects.filter(name=name).update(
            count=F("count") + items, last_seen=moment, last_source=source, last_resource=where
        )
        if not updated:
            DroppedField.objects.get_or_create(
                name=name,
                defaults={"count": items, "last_source": source, "last_resource": where},
            )


# --- runs -------------------------------------------------------------------------------------
def _tenant_info(row: Tenant) -> TenantInfo:
    return TenantInfo(id=row.tenant_id, name=row.name, api_host=row.api_host, region=row.region)


def _save_identity(source: Source, identity) -> list[Tenant]:
    """Store who the credential is and upsert its tenants; tenants no longer listed go inactive."""
    moment = now()
    Source.objects.filter(pk=source.pk).update(
        identity_type=identity.id_type, identity_id=identity.id, region=identity.region or ""
    )
    source.identity_type = identity.id_type
    existing = {t.tenant_id: t for t in Tenant.objects.filter(source=source)}
    listed = set()
    for info in identity.tenants:
        listed.add(info.id)
        row = existing.get(info.id)
        if row is None:
            Tenant.objects.create(
                source=source,
                tenant_id=info.id,
                name=info.name,
                api_host=info.api_host,
                region=info.region,
                next_poll_at=moment,
            )
        elif (row.name, row.api_host, row.region, row.active) != (
            info.name,
            info.api_host,
            info.region,
            True,
        ):
            Tenant.objects.filter(pk=row.pk).update(
                name=info.name, api_host=info.api_host, region=info.region, active=True
            )
    gone = [pk for tid, pk in ((t.tenant_id, t.pk) for t in existing.values()) if tid not in listed]
    if gone:
        Tenant.objects.filter(pk__in=gone).update(active=False)
    return list(Tenant.objects.filter(source=source, active=True))


def prefetched(pages, depth: int = 2):
    """Iterate ``pages`` in a helper thread, ``depth`` pages ahead of the caller.

    Fetching and parsing the next page (network, JSON) overlaps with storing this one (SQLite and
    psycopg release the GIL while they write). Only the caller touches the database; the thread
    only runs the kind's HTTP generator. Errors are re-raised in the caller, in order. When the
    caller stops early, the thread is told to stop after the page it is fetching.
    """
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def produce():
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        box.put((page, None), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the caller, who decides
            box.put((None, exc))
            return
        finally:
            close = getattr(pages, "close", None)
            if close is not None and stop.is_set():
                close()
        box.put((end, None))

    thread = threading.Thread(target=produce, name="page-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            page, error = box.get()
            if error is not None:
                raise error
            if page is end:
                return
            yield page
    finally:
        stop.set()
        while thread.is_alive():
            try:
                box.get(timeout=0.2)
            except queue.Empty:
                pass
        thread.join()


@dataclass
class Outcome:
    items: int = 0
    more: bool = False  # the time budget ran out with data left: run again at once
    collected: bool = False


def collect_tenant(
    *,
    session,
    source: Source,
    tenant: Tenant,
    gate: Gate,
    unit_model,
    unit_pk,
    token,
    version,
    deadline: float,
) -> Outcome:
    """Drain every supported stream of one tenant, page by page. Raises CollectionError."""
    outcome = Outcome()
    info = _tenant_info(tenant)
    for stream in source.supported_apis:
        checkpoint = (
            Checkpoint.objects.filter(source=source, stream=stream, tenant_id=tenant.tenant_id)
            .values_list("position", flat=True)
            .first()
        )
        run = CollectionRun.objects.create(
            source=source, source_name=source.name, stream=stream, tenant_id=tenant.tenant_id
        )
        try:
            pages = session.pages(stream=stream, tenant=info, checkpoint=checkpoint or None)
            for page in prefetched(pages):
                if page.gap is not None:
                    _report_gap(source, page)
                stored = store_page(
                    source=source,
                    page=page,
                    gate=gate,
                    unit_model=unit_model,
                    unit_pk=unit_pk,
                    token=token,
                    version=version,
                )
                run.pages += 1
                run.items += stored.items
                run.bytes += page.bytes
                outcome.items += stored.items
                if not outcome.collected:
                    outcome.collected = True
                    _mark_collecting(source, f"{stream} of {info.name or info.id} stored.")
                if time.monotonic() > deadline:
                    outcome.more = True
                    break
            if not outcome.collected:
                outcome.collected = True
                _mark_collecting(source, f"First poll of {stream} finished; no new items.")
        except RunStopped as exc:
            _finish_run(run, CollectionRun.Outcome.STOPPED, str(exc))
            raise
        except CollectionError as exc:
            _finish_run(run, CollectionRun.Outcome.ERROR, exc.message)
            raise
        except Exception as exc:
            _finish_run(run, CollectionRun.Outcome.ERROR, f"{type(exc).__name__}")
            raise
        _finish_run(run, CollectionRun.Outcome.SUCCESS)
        if outcome.more:
            break
    return outcome


def _finish_run(run: CollectionRun, outcome: str, error: str = "") -> None:
    run.outcome = outcome
    run.error = error[:2000]
    run.ended_at = now()
    run.save(update_fields=["pages", "items", "bytes", "outcome", "error", "ended_at"])


def _mark_collecting(source: Source, reason: str) -> None:
    transition(
        source.pk,
        SourceState.COLLECTING,
        reason,
        from_states=(*EARLY_STATES, SourceState.AUTHENTICATED, SourceState.ERROR),
    )


def _report_gap(source: Source, page: Page) -> None:
    gap = page.gap
    span = f"{gap.lost_from:%Y-%m-%d %H:%M} to {gap.lost_until:%Y-%m-%d %H:%M} UTC"
    open_event(
        source,
        event_name=DATA_GAP_EVENT,
        severity=Severity.WARNING,
        scope=f"gap:{gap.stream}:{gap.tenant_id}",
        details={
            "trackerId": "DataGap",
            "error": f"{gap.stream} from {span} are no longer served by the vendor and were not collected.",
            "description": "The source was stopped or failing for longer than the vendor keeps data. "
            "Collection resumed at the oldest point available.",
            "api": gap.stream,
            "tenantId": gap.tenant_id,
            "lostFrom": gap.lost_from.isoformat(),
            "lostUntil": gap.lost_until.isoformat(),
        },
    )


def _load(source_id: int) -> Source | None:
    return Source.objects.select_related("collector").filter(pk=source_id).first()


def _deadline() -> float:
    # Leave room before django-q2 kills the task: a run ends at a page boundary and re-queues.
    return time.monotonic() + settings.TASK_TIMEOUT * 0.6


def run_source(source_id: int) -> str:
    """One run of a source: authenticate, discover tenants, then collect (inline or fanned out)."""
    token = _claim(
        Source, source_id, Q(paused=False, halted_at__isnull=True) & ~Q(state=SourceState.STOPPING)
    )
    if token is None:
        Source.objects.filter(pk=source_id, claimed_at__isnull=True).update(queued_at=None)
        return "busy"
    next_poll: dt.datetime | None = None
    result = "ok"
    try:
        source = _load(source_id)
        version = source.config_version
        interval = dt.timedelta(seconds=source.polling_interval)
        try:
            secret = source.get_secret()
        except DecryptionError:
            raise first_party(
                "The stored client secret cannot be decrypted with the configured encryption keys.",
                "Restore the previous key in SUMOSOURCES_ENCRYPTION_KEYS, or edit the source and "
                "enter the secret again.",
            )
        transition(
            source_id,
            SourceState.INITIALIZED,
            "A worker loaded the configuration and decrypted the credentials.",
            from_states=(SourceState.PENDING, SourceState.STARTED),
        )
        kind = get_kind(source.kind)
        with kind.open(config=source.config, secret=secret.reveal()) as session:
            identity = session.authenticate()
            tenants = _save_identity(source, identity)
            where = identity.region or f"{len(tenants)} tenants"
            transition(
                source_id,
                SourceState.AUTHENTICATED,
                f"Authenticated as a {identity.id_type} credential ({where}).",
                from_states=(SourceState.INITIALIZED,),
            )
            if identity.id_type == "tenant":
                gate = build_gate(source)
                outcome = Outcome()
                for tenant in tenants:
                    part = collect_tenant(
                        session=session,
                        source=source,
                        tenant=tenant,
                        gate=gate,
                        unit_model=Source,
                        unit_pk=source_id,
                        token=token,
                        version=version,
                        deadline=_deadline(),
                    )
                    outcome.items += part.items
                    outcome.more |= part.more
                    Tenant.objects.filter(pk=tenant.pk).update(last_success_at=now())
                _source_succeeded(source)
                next_poll = now() if outcome.more else now() + interval
                result = f"ok: {outcome.items} items"
            else:
                _source_succeeded(source, discovery_only=True)
                next_poll = now() + interval
                due = [
                    t
                    for t in tenants
                    if t.halted_at is None and (t.next_poll_at is None or t.next_poll_at <= now())
                ]
                for tenant in due:
                    kick_tenant(tenant.pk)
                result = f"ok: {len(due)} tenants queued"
    except RunStopped as exc:
        result = f"stopped: {exc}"
        next_poll = now()
    except CollectionError as exc:
        next_poll = _source_failed(source_id, exc)
        result = f"error: {exc.error_type.value}"
    except Exception as exc:  # our own failure: classified, never a crash of the worker
        log.exception("source %s run failed", source_id)
        error = first_party(
            f"Sumo Sources failed while collecting ({type(exc).__name__}).",
            "Check the worker log; the source retries by itself.",
        )
        next_poll = _source_failed(source_id, error)
        result = "error: FirstPartyGeneric"
    finally:
        _release(Source, source_id, token, next_poll)
        _after_release(source_id)
    return result


def _source_succeeded(source: Source, *, discovery_only: bool = False) -> None:
    moment = now()
    Source.objects.filter(pk=source.pk).update(last_success_at=moment, **_CLEAR_STREAK)
    # A discovery success clears source-wide incidents; a full run clears every error incident of
    # the credential (for tenant credentials there is no other scope).
    resolve_events(source, scope_prefix="", names=[e.event_name for e in ErrorType])
    if not discovery_only:
        _mark_collecting(source, "Collection succeeded.")


def _source_failed(source_id: int, error: CollectionError) -> dt.datetime | None:
    source = _load(source_id)
    if source is None:
        return None
    verdict = _record_failure(source, error, scope="")
    transition(
        source_id,
        SourceState.ERROR,
        _state_sentence(error, verdict),
        from_states=[
            s for s in SourceState.values if s not in (SourceState.STOPPING, SourceState.PAUSED)
        ],
    )
    return verdict.next_attempt_at


def _release(model, pk: int, token: str, next_poll: dt.datetime | None) -> None:
    updates = {"claimed_at": None, "claim_token": "", "queued_at": None}
    if next_poll is not None:
        updates["next_poll_at"] = next_poll
    model.objects.filter(pk=pk, claim_token=token).update(**updates)


def _after_release(source_id: int) -> None:
    """Follow-ups that were waiting for the worker to let go of the source."""
    row = Source.objects.filter(pk=source_id).values("state", "next_poll_at", "paused").first()
    if row is None:
        return
    if row["state"] == SourceState.STOPPING:
        finish_stop(source_id)
    elif not row["paused"] and (
        row["state"] == SourceState.PENDING
        or (row["next_poll_at"] and row["next_poll_at"] <= now())
    ):
        kick(source_id)


def kick_tenant(tenant_pk: int) -> bool:
    moment = now()
    not_queued = Q(queued_at__isnull=True) | Q(queued_at__lt=moment - queue_ttl())
    if not Tenant.objects.filter(not_queued, pk=tenant_pk).update(queued_at=moment):
        return False
    try:
        enqueue(RUN_TENANT, tenant_pk)
    except Exception:
        log.exception("could not queue tenant %s", tenant_pk)
        Tenant.objects.filter(pk=tenant_pk).update(queued_at=None)
        return False
    return True


def run_tenant(tenant_pk: int) -> str:
    """One run of one tenant of a partner or organization credential."""
    token = _claim(
        Tenant,
        tenant_pk,
        Q(active=True, halted_at__isnull=True, source__paused=False, source__halted_at__isnull=True)
        & ~Q(source__state=SourceState.STOPPING),
    )
    if token is None:
        Tenant.objects.filter(pk=tenant_pk, claimed_at__isnull=True).update(queued_at=None)
        return "busy"
    tenant = Tenant.objects.select_related("source__collector").get(pk=tenant_pk)
    source = tenant.source
    next_poll: dt.datetime | None = None
    result = "ok"
    try:
        version = source.config_version
        try:
            secret = source.get_secret()
        except DecryptionError:
            raise first_party(
                "The stored client secret cannot be decrypted with the configured encryption keys.",
                "Restore the previous key, or edit the source and enter the secret again.",
            )
        gate = build_gate(source)
        with get_kind(source.kind).open(config=source.config, secret=secret.reveal()) as session:
            outcome = collect_tenant(
                session=session,
                source=source,
                tenant=tenant,
                gate=gate,
                unit_model=Tenant,
                unit_pk=tenant_pk,
                token=token,
                version=version,
                deadline=_deadline(),
            )
        Tenant.objects.filter(pk=tenant_pk).update(last_success_at=now(), **_CLEAR_STREAK)
        Source.objects.filter(pk=source.pk).update(last_success_at=now())
        resolve_events(source, scope_prefix=f"tenant:{tenant.tenant_id}")
        _mark_collecting(source, "Collection succeeded.")
        interval = dt.timedelta(seconds=source.polling_interval)
        next_poll = now() if outcome.more else now() + interval
        result = f"ok: {outcome.items} items"
    except RunStopped as exc:
        result = f"stopped: {exc}"
    except CollectionError as exc:
        next_poll = _tenant_failed(tenant, exc)
        result = f"error: {exc.error_type.value}"
    except Exception as exc:
        log.exception("tenant %s run failed", tenant_pk)
        next_poll = _tenant_failed(
            tenant,
            first_party(
                f"Sumo Sources failed while collecting ({type(exc).__name__}).",
                "Check the worker log; the tenant retries by itself.",
            ),
        )
        result = "error: FirstPartyGeneric"
    finally:
        _release(Tenant, tenant_pk, token, next_poll)
        row = Source.objects.filter(pk=source.pk).values("state").first()
        if row and row["state"] == SourceState.STOPPING:
            finish_stop(source.pk)
        elif next_poll is not None and next_poll <= now():
            kick_tenant(tenant_pk)
    return result


def _tenant_failed(tenant: Tenant, error: CollectionError) -> dt.datetime | None:
    """A tenant's failure: its own streak and event; the source errs only if no tenant works."""
    source = tenant.source
    scope = f"tenant:{tenant.tenant_id}"
    if error.tenant_scoped:
        # One tenant refusing us (e.g. partner assistance off) is a lasting condition of that
        # tenant, not of the credential: warn, and look again at the next regular poll.
        moment = now()
        attempts = tenant.failure_count + 1
        retry_at = moment + dt.timedelta(seconds=source.polling_interval)
        Tenant.objects.filter(pk=tenant.pk).update(
            error_type=error.error_type.value,
            failure_count=attempts,
            streak_started_at=tenant.streak_started_at or moment,
            next_attempt_at=retry_at,
            last_error=error.message[:2000],
            next_poll_at=retry_at,
        )
        verdict = Verdict(False, Severity.WARNING, retry_at, attempts)
        open_event(
            source,
            event_name=error.error_type.event_name,
            severity=Severity.WARNING,
            details=_failure_details(error, verdict),
            scope=scope,
            error_type=error.error_type.value,
        )
    else:
        verdict = _record_failure(tenant, error, scope=scope)
        retry_at = verdict.next_attempt_at
    healthy = Tenant.objects.filter(source=source, active=True, failure_count=0).exists()
    if not healthy:
        transition(
            source.pk,
            SourceState.ERROR,
            _state_sentence(error, verdict),
            from_states=[
                s for s in SourceState.values if s not in (SourceState.STOPPING, SourceState.PAUSED)
            ],
        )
    return retry_at


# --- dispatcher and housekeeping --------------------------------------------------------------
def dispatch() -> dict:
    """Queue every due source and tenant; remove stopped sources; expire old data-gap warnings.

    Runs from one django-q2 schedule. Safe to run concurrently with itself: every queueing is a
    compare-and-swap on ``queued_at``.
    """
    moment = now()
    stopped = list(Source.objects.filter(state=SourceState.STOPPING).values_list("pk", flat=True))
    removed = sum(finish_stop(pk) for pk in stopped)
    due_sources = list(
        Source.objects.filter(paused=False, halted_at__isnull=True, next_poll_at__lte=moment)
        .exclude(state=SourceState.STOPPING)
        .values_list("pk", flat=True)
    )
    queued = sum(kick(pk) for pk in due_sources)
    due_tenants = list(
        Tenant.objects.filter(
            active=True,
            halted_at__isnull=True,
            next_poll_at__lte=moment,
            source__identity_type__in=("partner", "organization"),
            source__paused=False,
            source__halted_at__isnull=True,
        )
        .exclude(source__state=SourceState.STOPPING)
        .values_list("pk", flat=True)
    )
    tenants = sum(kick_tenant(pk) for pk in due_tenants)
    expired = HealthEvent.objects.filter(
        event_name=DATA_GAP_EVENT,
        resolved_at__isnull=True,
        last_seen__lt=moment - dt.timedelta(hours=24),
    ).update(resolved_at=moment)
    return {"sources": queued, "tenants": tenants, "removed": removed, "gaps_expired": expired}


def purge() -> dict:
    """Delete messages, runs and buckets past their retention."""
    moment = now()
    message_cutoff = moment - dt.timedelta(days=settings.MESSAGE_RETENTION_DAYS)
    run_cutoff = moment - dt.timedelta(days=settings.RUN_RETENTION_DAYS)
    messages, _ = Message.objects.filter(
        message_time__lt=message_cutoff, receipt_time__lt=message_cutoff
    ).delete()
    runs, _ = CollectionRun.objects.filter(started_at__lt=run_cutoff).delete()
    buckets, _ = IngestBucket.objects.filter(start__lt=message_cutoff).delete()
    return {"messages": messages, "runs": runs, "buckets": buckets}
