"""What a source's (and a destination's) health looks like: computed once, here, from stored facts.

The Collection page's icon and tooltip, the live-status JSON and the health status API all call
:func:`describe` (the icon and the live JSON through :func:`status_payload`), so they always agree.
Destinations have the same pair, :func:`describe_destination` and
:func:`destination_status_payload`, and their delivery figures (backlog, delivered in the last
hour) are computed here once for the Destinations page, the source page and both APIs.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Q, Sum
from django.utils import timezone

from collector.buckets import BUCKET, bucket_floor
from collector.choices import (
    DESTINATION_STATE_LOOK,
    HEALTH_LOOK,
    STATE_LOOK,
    DestinationState,
    Health,
    Look,
    Severity,
    SourceState,
)
from collector.delivery.routes import Route
from collector.models import DeliveryBucket, Destination, HealthEvent, Message, Source

PROGRESS_STATES = {
    SourceState.PENDING,
    SourceState.STARTED,
    SourceState.INITIALIZED,
    SourceState.AUTHENTICATED,
    SourceState.STOPPING,
}


@dataclass
class SourceHealth:
    health: str
    look: Look
    state_look: Look
    lines: list[str] = field(default_factory=list)


def health_of(state: str, events: list[HealthEvent]) -> str:
    if state == SourceState.PAUSED:
        return Health.PAUSED
    if any(e.severity == Severity.ERROR for e in events):
        return Health.ERROR
    if state == SourceState.ERROR or events:
        return Health.WARNING
    if state in PROGRESS_STATES:
        return Health.PROGRESS
    return Health.HEALTHY


def event_line(event: HealthEvent) -> str:
    details = event.details or {}
    parts = [f"{event.severity}: {details.get('error') or event.event_name}"]
    if details.get("retrying") and details.get("nextAttemptAt"):
        parts.append(
            f"Retrying (attempt {details.get('attempts', 1)}), next attempt at {details['nextAttemptAt']}."
        )
    if details.get("description"):
        parts.append(details["description"])
    return " ".join(parts)


def describe(source: Source, events: list[HealthEvent]) -> SourceHealth:
    """Icon and tooltip lines for a source, given its open health events."""
    health = health_of(source.state, events)
    state_look = STATE_LOOK[source.state]
    lines = [f"{state_look.label}: {source.state_detail or state_look.description}"]
    lines.extend(event_line(event) for event in events)
    # The state detail often is the event's own sentence; say each thing once.
    lines = list(dict.fromkeys(lines))
    return SourceHealth(health=health, look=HEALTH_LOOK[health], state_look=state_look, lines=lines)


def status_payload(source: Source, events) -> dict:
    """What the status icon shows for a source, as plain data (the live-status JSON's shape).

    ``{"state", "stateLabel", "health", "label", "icon", "colour", "tooltip"}``, the tooltip being
    :func:`describe`'s lines joined by newlines; ``events`` are the source's open health events.
    The ``status_icon`` template tag renders it, static/collector/status.js applies it in place.
    """
    info = describe(source, list(events or []))
    return {
        "state": source.state,
        "stateLabel": info.state_look.label,
        "health": info.health,
        "label": info.look.label,
        "icon": info.look.icon,
        "colour": info.look.colour,
        "tooltip": "\n".join(info.lines),
    }


def open_events_by_source(source_ids) -> dict[int, list[HealthEvent]]:
    """Open events of many sources in one query, keyed by source id."""
    grouped: dict[int, list[HealthEvent]] = defaultdict(list)
    ids = [str(pk) for pk in source_ids]
    if not ids:
        return grouped
    for event in HealthEvent.objects.filter(
        resource_type="Source", resource_id__in=ids, resolved_at__isnull=True
    ).order_by("severity", "-last_seen"):
        grouped[int(event.resource_id)].append(event)
    return grouped


# --- destinations -----------------------------------------------------------------------------
# A backlog is counted up to this many messages, so a destination far behind costs the page a
# bounded amount of database work; more reads as "100,000+".
BACKLOG_CAP = 100_000
LAST_HOUR_SLOTS = 12  # five-minute DeliveryBucket slots, oldest first


def destination_health_of(destination, events: list[HealthEvent]) -> str:
    """Paused grey; Error red (the state, or an open Error event); Warning while a retrying
    (Warning) event is open; Pending in progress; Delivering and Idle healthy."""
    if destination.paused or destination.state == DestinationState.PAUSED:
        return Health.PAUSED
    if destination.state == DestinationState.ERROR or any(
        e.severity == Severity.ERROR for e in events
    ):
        return Health.ERROR
    if events:
        return Health.WARNING
    if destination.state == DestinationState.PENDING:
        return Health.PROGRESS
    return Health.HEALTHY


def describe_destination(destination, events: list[HealthEvent]) -> SourceHealth:
    """Icon and tooltip lines for a destination, given its open health events (as
    :func:`describe` does for a source: the state with its detail, then one line per event)."""
    health = destination_health_of(destination, events)
    state = DestinationState.PAUSED if destination.paused else destination.state
    state_look = (
        DESTINATION_STATE_LOOK.get(state) or DESTINATION_STATE_LOOK[DestinationState.PENDING]
    )
    lines = [f"{state_look.label}: {destination.state_detail or state_look.description}"]
    lines.extend(event_line(event) for event in events)
    lines = list(dict.fromkeys(lines))
    return SourceHealth(health=health, look=HEALTH_LOOK[health], state_look=state_look, lines=lines)


def destination_status_payload(destination, events) -> dict:
    """:func:`status_payload` for a destination: what its status icon shows, as plain data."""
    info = describe_destination(destination, list(events or []))
    return {
        "state": destination.state,
        "stateLabel": info.state_look.label,
        "health": info.health,
        "label": info.look.label,
        "icon": info.look.icon,
        "colour": info.look.colour,
        "tooltip": "\n".join(info.lines),
    }


def open_events_by_destination(destination_ids) -> dict[int, list[HealthEvent]]:
    """Open events of many destinations in one query, keyed by destination id."""
    grouped: dict[int, list[HealthEvent]] = defaultdict(list)
    ids = [str(pk) for pk in destination_ids]
    if not ids:
        return grouped
    for event in HealthEvent.objects.filter(
        resource_type=Destination.RESOURCE_TYPE, resource_id__in=ids, resolved_at__isnull=True
    ).order_by("severity", "-last_seen"):
        grouped[int(event.resource_id)].append(event)
    return grouped


@dataclass
class Backlog:
    """Messages a route selects that are not delivered yet: counted up to :data:`BACKLOG_CAP`."""

    count: int
    more: bool  # more than the cap
    oldest: dt.datetime | None = None  # receipt time of the oldest undelivered message

    @property
    def text(self) -> str:
        return f"{self.count:,}+" if self.more else f"{self.count:,}"


def backlog_of(destination, *, only: Q | None = None, oldest: bool = True) -> Backlog:
    """The destination's backlog: messages its route selects above its cursor (``only`` narrows
    them, e.g. to one source). Two bounded queries (one with ``oldest=False``): the count stops
    at the cap, the oldest is the first row by id."""
    pending = Message.objects.filter(Route.of(destination).q(), id__gt=destination.cursor)
    if only is not None:
        pending = pending.filter(only)
    count = pending.values("id")[: BACKLOG_CAP + 1].count()
    first = None
    if oldest and count:
        first = pending.order_by("id").values_list("receipt_time", flat=True).first()
    return Backlog(count=min(count, BACKLOG_CAP), more=count > BACKLOG_CAP, oldest=first)


def delivered_last_hour(destination_ids) -> dict[int, list[int]]:
    """Messages delivered per five-minute bucket over the last hour (12 values, oldest first) per
    destination, in one query; destinations without deliveries get zeros."""
    newest = bucket_floor(timezone.now())
    oldest = newest - (LAST_HOUR_SLOTS - 1) * BUCKET
    series: dict[int, list[int]] = defaultdict(lambda: [0] * LAST_HOUR_SLOTS)
    ids = list(destination_ids)
    if not ids:
        return series
    rows = (
        DeliveryBucket.objects.filter(destination_id__in=ids, start__gte=oldest)
        .values("destination_id", "start")
        .annotate(n=Sum("messages"))
    )
    for row in rows:
        slot = int((row["start"] - oldest) / BUCKET)
        if 0 <= slot < LAST_HOUR_SLOTS:
            series[row["destination_id"]][slot] += row["n"]
    return series


@dataclass
class DeliveryFigures:
    """What the Destinations page, the API and the status API say about a destination's delivery."""

    backlog: Backlog
    last_hour: list[int]
    delivered_total: int
    last_success: dt.datetime | None

    @property
    def delivered_last_hour(self) -> int:
        return sum(self.last_hour)


def delivery_figures(destinations) -> dict[int, DeliveryFigures]:
    """Figures of many destinations: one query for every last-hour series, then the two bounded
    backlog queries per destination (there are few destinations)."""
    destinations = list(destinations)
    series = delivered_last_hour([d.pk for d in destinations])
    return {
        d.pk: DeliveryFigures(
            backlog=backlog_of(d),
            last_hour=series[d.pk],
            delivered_total=d.delivered_total,
            last_success=d.last_success_at,
        )
        for d in destinations
    }
