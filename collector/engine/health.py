"""Failures and health: the retry streak, backoff and give-up, and health events with their
searchable log records (design section 4)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from collector.choices import (
    DATA_GAP_EVENT,
    SYSTEM_EVENTS_INDEX,
    ErrorType,
    Severity,
)
from collector.delivery.clock import deliver_after_commit, hold_clock
from collector.engine.claims import now
from collector.errors import CollectionError
from collector.models import (
    HealthEvent,
    Message,
    Source,
    Tenant,
)
from collector.redact import redact, redact_values
from collector.shapes import iso

log = logging.getLogger(__name__)


BACKOFF_BASE_SECONDS = 30


BACKOFF_CAP_SECONDS = 15 * 60
DETAIL_LIMIT = 2000  # characters of one stored error string (a sentence, a description)


def _resource(resource) -> dict:
    """The resourceIdentity of a Source or a Destination (anything with ``health_resource``)."""
    return resource.health_resource()


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
    # A destination routing health events (alerting through a webhook) hears of it in seconds.
    deliver_after_commit()


def open_event(
    source, *, event_name: str, severity: str, details: dict, scope: str = "", error_type=""
) -> HealthEvent:
    """Open an incident of a resource (a Source or a Destination) or update the open one (count,
    last seen, severity, details).

    Every string in ``details`` is redacted (tokens, control characters) and capped first: a kind
    should have done so with what its vendor sent, this is the defence in depth.
    """
    details = redact_values(details, limit=DETAIL_LIMIT)
    moment = now()
    with transaction.atomic():
        hold_clock()  # it writes a message: take the commit-order lock before any other
        event = HealthEvent.objects.filter(
            resource_type=source.RESOURCE_TYPE,
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
                source=source if isinstance(source, Source) else None,
                subsystem="Collection" if isinstance(source, Source) else "Delivery",
                resource_type=resource["type"],
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


def resolve_events(source, *, scope_prefix: str | None = None, names=None) -> int:
    """Resolve the open incidents of a Source or Destination (of one scope family and names,
    when given)."""
    query = HealthEvent.objects.filter(
        resource_type=source.RESOURCE_TYPE, resource_id=str(source.pk), resolved_at__isnull=True
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
        with transaction.atomic():
            hold_clock()
            event.resolved_at = moment
            event.save(update_fields=["resolved_at"])
            _log_event(event, "Healthy")
    return len(events)


def resolve_deleted(*, source_ids=(), collector_id: int | None = None, reason: str) -> int:
    """Resolve the open incidents of sources (and a collector) that are being deleted, saying why.

    Nothing is left that could recover, so they would otherwise stay open forever and keep
    counting in the status API. Call it in the deleting transaction, before the rows go: the
    resolution's log record still names the source.
    """
    which = Q(resource_type="Source", resource_id__in=[str(pk) for pk in source_ids])
    if collector_id is not None:
        which |= Q(collector_id=str(collector_id))
    hold_clock()
    events = list(HealthEvent.objects.filter(which, resolved_at__isnull=True))
    moment = now()
    for event in events:
        event.resolved_at = moment
        event.details = {**(event.details or {}), "resolution": reason}
        event.save(update_fields=["resolved_at", "details"])
        _log_event(event, "Resolved")
    return len(events)


def resolve_deleted_destination(destination, *, reason: str) -> int:
    """Resolve a destination's open incidents as it is deleted (see :func:`resolve_deleted`)."""
    hold_clock()
    events = list(
        HealthEvent.objects.filter(
            resource_type=destination.RESOURCE_TYPE,
            resource_id=str(destination.pk),
            resolved_at__isnull=True,
        )
    )
    moment = now()
    for event in events:
        event.resolved_at = moment
        event.details = {**(event.details or {}), "resolution": reason}
        event.save(update_fields=["resolved_at", "details"])
        _log_event(event, "Resolved")
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
        if unit.gives_up:
            return Verdict(True, Severity.ERROR, None, attempts)
        # A unit that never gives up (a destination with data to deliver) turns Error and
        # keeps trying at the longest backoff.
        delay = backoff_seconds(attempts, error.retry_after)
        return Verdict(False, Severity.ERROR, moment + dt.timedelta(seconds=delay), attempts)
    delay = backoff_seconds(attempts, error.retry_after)
    return Verdict(False, Severity.WARNING, moment + dt.timedelta(seconds=delay), attempts)


def failure_details(error: CollectionError, verdict: Verdict) -> dict:
    details = error.details()
    details["attempts"] = verdict.attempts
    if verdict.next_attempt_at:
        details["nextAttemptAt"] = iso(verdict.next_attempt_at)
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


def record_failure(
    unit, error: CollectionError, *, scope: str, verdict: Verdict | None = None
) -> Verdict:
    """Update a unit's (Source or Tenant) streak and the matching health event.

    The verdict (retry when, or halt) is decided from the streak unless the caller gives one.
    """
    verdict = verdict or _decide(unit, error)
    moment = now()
    type(unit).objects.filter(pk=unit.pk).update(
        error_type=error.error_type.value,
        failure_count=verdict.attempts,
        streak_started_at=unit.streak_started_at or moment,
        next_attempt_at=verdict.next_attempt_at,
        halted_at=moment if verdict.halted else None,
        last_error=redact(error.message, limit=DETAIL_LIMIT),
        next_poll_at=verdict.next_attempt_at,
    )
    source = unit.source if isinstance(unit, Tenant) else unit
    open_event(
        source,
        event_name=error.error_type.event_name,
        severity=verdict.severity,
        details=failure_details(error, verdict),
        scope=scope,
        error_type=error.error_type.value,
    )
    return verdict


def state_sentence(error: CollectionError, verdict: Verdict) -> str:
    if verdict.next_attempt_at:
        when = verdict.next_attempt_at.strftime("%H:%M:%S UTC")
        return f"{error.message} Retrying (attempt {verdict.attempts}); next attempt at {when}."
    if error.retries:
        return f"{error.message} Gave up after {settings.RETRY_GIVE_UP_MINUTES} minutes; edit or restart the source."
    return f"{error.message} {error.remedy}".strip()


def first_party(message: str, remedy: str = "") -> CollectionError:
    return CollectionError(ErrorType.FIRST_PARTY_GENERIC, message, remedy=remedy)


# --- data gaps --------------------------------------------------------------------------------
DATA_GAP_EXPIRY = dt.timedelta(hours=24)


def report_gap(source: Source, gap) -> None:
    """A period the vendor no longer serves was skipped: a Warning that says which (design 4)."""
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
            "lostFrom": iso(gap.lost_from),
            "lostUntil": iso(gap.lost_until),
        },
    )


def expire_gaps(moment: dt.datetime) -> int:
    """A data gap (and any one-off notice) is a past fact, not a lasting condition: its warning
    resolves after a day."""
    return HealthEvent.objects.filter(
        Q(event_name=DATA_GAP_EVENT) | Q(scope__startswith=EXPIRING_NOTICE),
        resolved_at__isnull=True,
        last_seen__lt=moment - DATA_GAP_EXPIRY,
    ).update(resolved_at=moment)


# --- notices ----------------------------------------------------------------------------------
NOTICE, EXPIRING_NOTICE = "notice:", "notice-once:"


def record_notice(source: Source, notice) -> None:
    """Open, refresh or resolve the Warning of a kind's Notice (collector.kinds.base.Notice)."""
    scope = f"{EXPIRING_NOTICE if notice.expires else NOTICE}{notice.scope}"
    if notice.resolve:
        resolve_events(source, scope_prefix=scope, names=[notice.name])
        return
    open_event(
        source,
        event_name=notice.name,
        severity=Severity.WARNING,
        scope=scope,
        details={
            **notice.details,
            "trackerId": notice.name,
            "error": notice.message,
            "description": notice.remedy,
        },
    )
