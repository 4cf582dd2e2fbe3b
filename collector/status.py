"""What a source's health looks like: computed once, here, from stored facts.

The Collection page's icon and tooltip, the live-status JSON and the health status API all call
:func:`describe` (the icon and the live JSON through :func:`status_payload`), so they always agree.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from collector.choices import HEALTH_LOOK, STATE_LOOK, Health, Look, Severity, SourceState
from collector.models import HealthEvent, Source

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
