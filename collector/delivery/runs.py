"""What a delivery task does: send the messages routed to one destination, in commit order.

One task per destination at a time (a compare-and-swap claim, like a source's). A run reads a
window of stored messages after the destination's cursor (ids are commit-ordered: see
:mod:`.clock`), keeps the ones its route selects, sends them in batches within the kind's
limits, and after each acknowledged batch advances the cursor in one short transaction that
also renews the claim and checks the configuration version. No transaction is open while a
batch is on the wire, so a crash redelivers at most the batch in flight.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import json
import logging
import time
from collections.abc import Iterator, Sequence

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q

from collector.buckets import bucket_floor
from collector.choices import DestinationState, ErrorType, Severity
from collector.crypto import DecryptionError
from collector.delivery.routes import Route
from collector.destinations import get_destination_kind
from collector.destinations.base import Outgoing
from collector.engine.claims import RunStopped, claim, now, queue_ttl, release
from collector.engine.health import first_party, record_failure, resolve_events
from collector.errors import CollectionError
from collector.kinds import get_kind
from collector.models import DeliveryBucket, Destination, Message, Source
from collector.redact import redact

log = logging.getLogger(__name__)

DELIVER = "collector.tasks.deliver"
# An idle destination looks again this often even without a kick (health-event records, and a
# kick lost with a broker outage).
IDLE_POLL = dt.timedelta(seconds=60)
COLUMNS = (
    "id", "source_id", "index", "stream", "tenant_id", "tenant_name", "source_name",
    "source_category", "collector_name", "siem_event_id", "fields", "raw", "message_time",
    "receipt_time",
)  # fmt: skip


# --- queueing ---------------------------------------------------------------------------------
def kick_delivery(destination_id: int) -> bool:
    """Queue a delivery run now unless one is queued or the destination may not run."""
    from collector.engine.lifecycle import enqueue

    moment = now()
    not_queued = Q(queued_at__isnull=True) | Q(queued_at__lt=moment - queue_ttl())
    if (
        not Destination.objects.runnable()
        .filter(not_queued, pk=destination_id)
        .update(queued_at=moment)
    ):
        return False
    try:
        enqueue(DELIVER, destination_id)
    except Exception:
        log.exception("could not queue a delivery to destination %s", destination_id)
        Destination.objects.filter(pk=destination_id).update(queued_at=None)
        return False
    return True


def kick_deliveries() -> int:
    """Queue every runnable destination that is not queued: new messages were just committed.

    A destination in a retry backoff is left to its next attempt time."""
    moment = now()
    ids = (
        Destination.objects.runnable()
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=moment - queue_ttl()))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=moment))
        .values_list("pk", flat=True)
    )
    return sum(kick_delivery(pk) for pk in list(ids))


# --- what is sent -----------------------------------------------------------------------------
# Positions in a row of :func:`read_window`, in COLUMNS order.
(ID, SOURCE_ID, INDEX, STREAM, TENANT_ID, TENANT_NAME, SOURCE_NAME, SOURCE_CATEGORY,
 COLLECTOR_NAME, SIEM_EVENT_ID, FIELDS, RAW, MESSAGE_TIME, RECEIPT_TIME) = range(len(COLUMNS))  # fmt: skip


class Outgoer:
    """Turns stored message rows into :class:`Outgoing`, with each source's kind for CEF.

    This is the delivery hot path (tens of thousands of messages a second): the metadata of the
    many messages that share a source, tenant, stream and fields is built once and shared (kinds
    read it, never change it), and custom fields are parsed once per distinct text.
    """

    def __init__(self, *, cef: bool = False):
        self._kinds: dict[int | None, object] = {}
        self._metadata: dict[tuple, dict] = {}
        self._fields: dict[str, dict] = {}
        self.cef = cef

    def _kind_of(self, source_id):
        if source_id not in self._kinds:
            name = Source.objects.filter(pk=source_id).values_list("kind", flat=True).first()
            try:
                self._kinds[source_id] = get_kind(name) if name else None
            except LookupError:
                self._kinds[source_id] = None
        return self._kinds[source_id]

    def _fields_of(self, value) -> dict:
        if isinstance(value, dict):  # a driver that decodes JSON itself
            return value
        if not value:
            return {}
        parsed = self._fields.get(value)
        if parsed is None:
            parsed = orjson.loads(value)
            if len(self._fields) < 10_000:  # bounded: a stream of distinct fields cannot grow it
                self._fields[value] = parsed
        return parsed

    def metadata(self, row) -> dict:
        key = row[INDEX : FIELDS + 1] if isinstance(row[FIELDS], str | None) else None
        cached = self._metadata.get(key) if key is not None else None
        if cached is not None:
            return cached
        metadata = {
            "_source": row[SOURCE_NAME],
            "_sourceCategory": row[SOURCE_CATEGORY],
            "_collector": row[COLLECTOR_NAME],
            "_sourceName": row[STREAM],
            "tenant": row[TENANT_NAME] or row[TENANT_ID],
            **self._fields_of(row[FIELDS]),
        }
        if row[INDEX]:
            metadata["_index"] = row[INDEX]
        if row[SIEM_EVENT_ID]:
            metadata["_siemEventID"] = row[SIEM_EVENT_ID]
        if key is not None and len(self._metadata) < 10_000:
            self._metadata[key] = metadata
        return metadata

    def __call__(self, row) -> Outgoing:
        cef = None
        kind = self._kind_of(row[SOURCE_ID]) if self.cef and not row[INDEX] else None
        if kind is not None:
            try:
                cef = kind.cef_event(row[STREAM], json.loads(row[RAW]))
            except Exception:  # a kind's CEF view must never stop delivery: use the generic one
                cef = None
        return Outgoing(
            id=row[ID],
            raw=row[RAW],
            metadata=self.metadata(row),
            message_time=_aware(row[MESSAGE_TIME]),
            receipt_time=_aware(row[RECEIPT_TIME]),
            cef=cef,
        )


def _aware(moment) -> dt.datetime:
    """Times come back naive (UTC) from SQLite and aware from PostgreSQL."""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


@functools.cache
def _window_sql() -> str:
    # Our own table and column names, quoted by the backend; values travel as parameters.
    q = connection.ops.quote_name
    return (
        f"SELECT {', '.join(q(c) for c in COLUMNS)} FROM {q(Message._meta.db_table)} "  # noqa: S608
        f"WHERE {q('id')} > %s ORDER BY {q('id')} LIMIT %s"
    )


def read_window(cursor: int, size: int) -> list[tuple]:
    """The next ``size`` stored messages after ``cursor``, in id (= commit) order, as plain rows
    (COLUMNS order): one raw query, no model instances, for speed."""
    with connection.cursor() as db:
        db.execute(_window_sql(), [cursor, size])
        return db.fetchall()


def row_view(row) -> dict:
    """A row as the mapping of its columns that route matching reads."""
    return dict(zip(COLUMNS, row, strict=True))


def batches(messages: Sequence[Outgoing], kind) -> Iterator[list[Outgoing]]:
    """Consecutive batches within the kind's message and byte limits (a single message larger
    than the byte limit travels alone: the kind decides whether its receiver takes it)."""
    batch: list[Outgoing] = []
    size = 0
    for message in messages:
        cost = kind.encoded_size(message)
        if batch and (len(batch) >= kind.max_batch_messages or size + cost > kind.max_batch_bytes):
            yield batch
            batch, size = [], 0
        batch.append(message)
        size += cost
    if batch:
        yield batch


def acknowledge(
    destination_id: int, token: str, version: int, *, upto: int, count: int, size: int
) -> None:
    """Move the cursor past an acknowledged batch (and the unrouted rows before it), in one
    short transaction that renews the claim; RunStopped when the claim or version changed."""
    moment = now()
    with transaction.atomic():
        moved = Destination.objects.filter(
            pk=destination_id, claim_token=token, config_version=version, cursor__lt=upto
        ).update(cursor=upto, delivered_total=F("delivered_total") + count, claimed_at=moment)
        if not moved:
            if Destination.objects.filter(
                pk=destination_id, claim_token=token, config_version=version
            ).exists():
                return  # nothing new to record (the cursor already covers ``upto``)
            raise RunStopped("the destination was edited, paused or deleted, or its claim lost")
        if count:
            start = bucket_floor(moment)
            updated = DeliveryBucket.objects.filter(
                destination_id=destination_id, start=start
            ).update(messages=F("messages") + count, bytes=F("bytes") + size)
            if not updated:
                DeliveryBucket.objects.create(
                    destination_id=destination_id, start=start, messages=count, bytes=size
                )


# --- the run ----------------------------------------------------------------------------------
def deliver(destination_id: int) -> str:
    """One delivery run of a destination; never raises (failures are classified and recorded)."""
    token = claim(Destination, destination_id, Destination.runnable_q())
    if token is None:
        Destination.objects.filter(pk=destination_id, claimed_at__isnull=True).update(
            queued_at=None
        )
        return "busy"
    next_poll: dt.datetime | None = None
    try:
        delivered, more = _deliver(destination_id, token)
        next_poll = now() if more else now() + IDLE_POLL
        result = f"ok: {delivered} messages"
    except RunStopped as exc:
        next_poll, result = now(), f"stopped: {exc}"
    except CollectionError as exc:
        next_poll, result = _failed(destination_id, exc), f"error: {exc.error_type.value}"
    except Exception as exc:
        log.exception("delivery to destination %s failed", destination_id)
        error = first_party(
            f"Sumo Sources failed while delivering ({type(exc).__name__}).",
            "Check the worker log; delivery retries by itself.",
        )
        next_poll, result = _failed(destination_id, error), "error: FirstPartyGeneric"
    finally:
        release(Destination, destination_id, token, next_poll)
        if next_poll is not None and next_poll <= now():
            kick_delivery(destination_id)
    return result


def _deliver(destination_id: int, token: str) -> tuple[int, bool]:
    # A window makes tens of thousands of short-lived objects; collecting the youngest generation
    # every 700 allocations would cost more than building them. Restored after the run.
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 50_000), *thresholds[1:])
    try:
        return _deliver_windows(destination_id, token)
    finally:
        gc.set_threshold(*thresholds)


def _deliver_windows(destination_id: int, token: str) -> tuple[int, bool]:
    destination = Destination.objects.get(pk=destination_id)
    version = destination.config_version
    kind = get_destination_kind(destination.kind)
    try:
        secret = destination.get_secret().reveal()
    except DecryptionError:
        raise first_party(
            "The stored secret cannot be decrypted with the configured encryption keys.",
            "Restore the previous key in SUMOSOURCES_ENCRYPTION_KEYS, or edit the destination "
            "and enter the secret again.",
        )
    route = Route.of(destination)
    outgoing = Outgoer(cef=kind.needs_cef(destination.config))
    deadline = time.monotonic() + settings.TASK_TIMEOUT * 0.6
    cursor, delivered, more = destination.cursor, 0, False
    with kind.open(config=destination.config, secret=secret) as session:
        while True:
            rows = read_window(cursor, settings.DELIVERY_WINDOW)
            if not rows:
                break
            selected = [
                outgoing(row)
                for row in rows
                if route.selects_row(row[INDEX], row[SIEM_EVENT_ID], lambda row=row: row_view(row))
            ]
            for batch in batches(selected, kind):
                # An edit, pause or delete since the last batch: stop before sending more.
                if not Destination.objects.filter(
                    pk=destination_id, claim_token=token, config_version=version
                ).exists():
                    raise RunStopped("the destination was edited, paused or deleted")
                session.send(batch)
                size = sum(len(m.raw) for m in batch)
                acknowledge(destination_id, token, version, upto=batch[-1].id,
                            count=len(batch), size=size)  # fmt: skip
                delivered += len(batch)
            cursor = rows[-1][ID]
            acknowledge(destination_id, token, version, upto=cursor, count=0, size=0)
            if time.monotonic() > deadline:
                more = True
                break
    _succeeded(destination, delivered)
    return delivered, more


def _succeeded(destination: Destination, delivered: int) -> None:
    state = DestinationState.DELIVERING if delivered else DestinationState.IDLE
    fields = {"error_type": "", "failure_count": 0, "streak_started_at": None,
              "next_attempt_at": None, "halted_at": None, "last_error": "",
              "last_success_at": now()}  # fmt: skip
    Destination.objects.filter(pk=destination.pk).update(**fields)
    _set_state(destination.pk, state, "Delivered the backlog." if delivered else "Up to date.",
               only_changes=True)  # fmt: skip
    resolve_events(destination, names=[error_type.event_name for error_type in ErrorType])


def _failed(destination_id: int, error: CollectionError) -> dt.datetime | None:
    destination = Destination.objects.filter(pk=destination_id).first()
    if destination is None:
        return None
    with transaction.atomic():
        verdict = record_failure(destination, error, scope="")
        if verdict.severity == Severity.ERROR:
            _set_state(destination_id, DestinationState.ERROR, f"{error.message} {error.remedy}")
    return verdict.next_attempt_at


def _set_state(pk: int, state: str, detail: str, *, only_changes: bool = False) -> None:
    detail = redact(detail, limit=1024)  # it may quote a receiver's answer
    query = Destination.objects.filter(pk=pk).exclude(state=DestinationState.PAUSED)
    if only_changes:
        query = query.exclude(state=state, state_detail=detail)
    query.update(state=state, state_detail=detail, state_changed_at=now())
