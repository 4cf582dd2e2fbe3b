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
import json
import logging
import time
from collections.abc import Iterator, Sequence

from django.conf import settings
from django.db import transaction
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
class Outgoer:
    """Turns stored message rows into :class:`Outgoing`, with each source's kind for CEF."""

    def __init__(self, *, cef: bool = False):
        self._kinds: dict[int | None, object] = {}
        self.cef = cef

    def _kind_of(self, source_id):
        if source_id not in self._kinds:
            name = Source.objects.filter(pk=source_id).values_list("kind", flat=True).first()
            try:
                self._kinds[source_id] = get_kind(name) if name else None
            except LookupError:
                self._kinds[source_id] = None
        return self._kinds[source_id]

    def __call__(self, row: dict) -> Outgoing:
        metadata = {
            "_source": row["source_name"],
            "_sourceCategory": row["source_category"],
            "_collector": row["collector_name"],
            "_sourceName": row["stream"],
            "tenant": row["tenant_name"] or row["tenant_id"],
            **(row["fields"] or {}),
        }
        if row["index"]:
            metadata["_index"] = row["index"]
        if row["siem_event_id"]:
            metadata["_siemEventID"] = row["siem_event_id"]
        cef = None
        kind = self._kind_of(row["source_id"]) if self.cef and not row["index"] else None
        if kind is not None:
            try:
                cef = kind.cef_event(row["stream"], json.loads(row["raw"]))
            except Exception:  # a kind's CEF view must never stop delivery: use the generic one
                cef = None
        return Outgoing(
            id=row["id"],
            raw=row["raw"],
            metadata=metadata,
            message_time=row["message_time"],
            receipt_time=row["receipt_time"],
            cef=cef,
        )


def read_window(cursor: int, size: int) -> list[dict]:
    """The next ``size`` stored messages after ``cursor``, in id (= commit) order."""
    return list(Message.objects.filter(id__gt=cursor).order_by("id").values(*COLUMNS)[:size])


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
            selected = [outgoing(row) for row in rows if route.selects(row)]
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
            cursor = rows[-1]["id"]
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
    query = Destination.objects.filter(pk=pk).exclude(state=DestinationState.PAUSED)
    if only_changes:
        query = query.exclude(state=state, state_detail=detail[:1024])
    query.update(state=state, state_detail=detail[:1024], state_changed_at=now())
