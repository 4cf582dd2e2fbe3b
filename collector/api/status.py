"""``GET /api/v1/status``: the health status of every source, every destination (for users who
may view destinations) and of the task cluster, for scripts (the health status page links to it
as its JSON).

The answer costs a fixed number of queries whatever the number of sources: sources with their
collectors, their open events, all checkpoints, the open-event totals, and django-q2's cluster
status (read by collector.cluster from the database cache, so a cluster in another process is
seen).
"""

from collections import Counter, defaultdict

from django.db.models import Count
from django.http import JsonResponse
from django.utils import timezone

from collector.api.common import LEGACY, Method, route
from collector.choices import DestinationState, Severity, SourceState
from collector.cluster import cluster_status
from collector.models import Checkpoint, Destination, HealthEvent, Source
from collector.shapes import delivery_json, iso
from collector.status import (
    delivery_figures,
    describe,
    describe_destination,
    open_events_by_destination,
    open_events_by_source,
)


def _streams(checkpoints, now) -> tuple[list[dict], dict[str, int]]:
    """Lag per stream and tenant, and messages stored per stream, of one source's checkpoints."""
    lag, messages = [], defaultdict(int)
    for point in checkpoints:
        lag.append(
            {
                "stream": point.stream,
                "tenantId": point.tenant_id,
                "dataUntil": iso(point.data_until),
                "lagSeconds": (
                    round((now - point.data_until).total_seconds(), 3) if point.data_until else None
                ),
                "updatedAt": iso(point.updated_at),
            }
        )
        messages[point.stream] += point.items_total
    return lag, dict(messages)


def source_status(source: Source, events, checkpoints, now) -> dict:
    health = describe(source, events)
    lag, messages = _streams(checkpoints, now)
    return {
        "id": source.pk,
        "name": source.name,
        "collector": {"id": source.collector_id, "name": source.collector.name},
        "state": source.state,
        "health": {"value": health.health, "tooltip": health.lines},
        "lastSuccess": iso(source.last_success_at),
        "lag": lag,
        "messages": messages,
    }


def destination_status(destination: Destination, events, figures) -> dict:
    """A destination's entry: its state and delivery figures as ``/destinations`` answers them,
    and its health as the Destinations page's icon shows it."""
    health = describe_destination(destination, events)
    return {
        "id": destination.pk,
        "name": destination.name,
        "destinationType": destination.kind,
        "state": destination.state,
        "health": {"value": health.health, "tooltip": health.lines},
        "delivery": delivery_json(figures),
    }


def _destinations(user) -> tuple[list[dict], dict] | None:
    """Every destination's entry and their totals, or None without the view permission: three
    queries plus two bounded backlog queries per destination (there are few)."""
    if not user.has_perm("collector.view_destination"):
        return None
    rows = list(Destination.objects.defer("secret_encrypted").order_by("name"))
    events = open_events_by_destination([d.pk for d in rows])
    figures = delivery_figures(rows)
    by_state = Counter(d.state for d in rows)
    totals = {
        "destinations": len(rows),
        "destinationsByState": {state: by_state.get(state, 0) for state in DestinationState.values},
    }
    entries = [destination_status(d, events.get(d.pk, []), figures[d.pk]) for d in rows]
    return entries, totals


def status(request):
    now = timezone.now()
    sources = list(Source.objects.select_related("collector").order_by("collector__name", "name"))
    events = open_events_by_source([s.pk for s in sources])
    checkpoints = defaultdict(list)
    for point in Checkpoint.objects.order_by("source_id", "stream", "tenant_id"):
        checkpoints[point.source_id].append(point)
    by_state = Counter(s.state for s in sources)
    by_severity = dict.fromkeys(Severity.values, 0)
    for row in (
        HealthEvent.objects.filter(resolved_at__isnull=True)
        .values("severity")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        by_severity[row["severity"]] = row["n"]
    body = {
        "time": iso(now),
        "sources": [
            source_status(s, events.get(s.pk, []), checkpoints.get(s.pk, []), now) for s in sources
        ],
        "totals": {
            "sources": len(sources),
            "sourcesByState": {state: by_state.get(state, 0) for state in SourceState.values},
            "openHealthEventsBySeverity": by_severity,
        },
        "cluster": cluster_status(),
    }
    destinations = _destinations(request.user)
    if destinations is not None:
        body["destinations"], totals = destinations
        body["totals"].update(totals)
    return JsonResponse(body)


status_view = route(style=LEGACY, GET=Method(status, "collector.view_source"))
