"""Health events: ``/healthEvents`` in the Sumo Logic Health Events API shape.

Only open incidents (``resolved_at`` empty) are listed, newest first by last occurrence. Paging is
by an opaque, signed ``token`` holding the position after the last event answered (its last-seen
time and id), so pages neither skip nor repeat events when new ones open meanwhile.
"""

import datetime as dt

from django.core import signing
from django.db.models import Q
from django.http import JsonResponse

from collector.api.common import (
    ERRORS,
    Method,
    bad_request,
    expect_keys,
    expect_object,
    int_param,
    route,
)
from collector.models import HealthEvent

TOKEN_SALT = "collector.api.healthEvents"
MAX_RESOURCES = 100
INVALID = "api:invalid_request"


def event_json(event: HealthEvent) -> dict:
    return event.as_sumo()


def _after(token: str) -> Q:
    """The events after the position a ``next`` token names; 400 for a token we did not issue."""
    try:
        position = signing.loads(token, salt=TOKEN_SALT)
        moment = dt.datetime.fromisoformat(position["t"])
        pk = int(position["i"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise bad_request(
            "The token is not one this server issued; start again without it.",
            "api:invalid_token",
        )
    return Q(last_seen__lt=moment) | Q(last_seen=moment, pk__lt=pk)


def _page(request, events):
    """``{"data": [...], "next": token or null}`` of one page of ``events`` (limit 1-1000)."""
    limit = int_param(request, "limit", default=100, minimum=1, maximum=1000)
    events = events.filter(resolved_at__isnull=True)
    token = request.GET.get("token")
    if token:
        events = events.filter(_after(token))
    rows = list(events.order_by("-last_seen", "-pk")[: limit + 1])
    next_token = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_token = signing.dumps({"t": last.last_seen.isoformat(), "i": last.pk}, salt=TOKEN_SALT)
    return JsonResponse({"data": [event_json(e) for e in rows[:limit]], "next": next_token})


def list_events(request):
    return _page(request, HealthEvent.objects.all())


def _resource_filter(item, index: int) -> Q:
    where = f"data[{index}]"
    expect_keys(expect_object(item, where, INVALID), ("id", "name", "type"), where, INVALID)
    resource_id, resource_type = item.get("id"), item.get("type")
    if type(resource_id) is int:
        resource_id = str(resource_id)
    if not isinstance(resource_id, str) or not resource_id:
        raise bad_request(f"{where}.id is required and must be a string.", INVALID)
    if not isinstance(resource_type, str) or not resource_type:
        raise bad_request(f"{where}.type is required, e.g. Source.", INVALID)
    if not isinstance(item.get("name", ""), str | None):
        raise bad_request(f"{where}.name must be a string.", INVALID)
    return Q(resource_type=resource_type, resource_id=resource_id)


def events_of_resources(request, body):
    """The open events of the listed resources (matched by id and type; name is informative)."""
    expect_keys(body, ("data",), "body", INVALID)
    items = body.get("data")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_RESOURCES:
        raise bad_request(
            f"data must be an array of 1 to {MAX_RESOURCES} resources "
            '({"id": ..., "name": ..., "type": "Source"}).',
            INVALID,
        )
    match = Q()
    for index, item in enumerate(items):
        match |= _resource_filter(item, index)
    return _page(request, HealthEvent.objects.filter(match))


events = route(style=ERRORS, GET=Method(list_events, "collector.view_healthevent"))
# A POST only because the resource list travels in a body; it reads, so viewing is enough.
resources = route(
    style=ERRORS, POST=Method(events_of_resources, "collector.view_healthevent", body=True)
)
