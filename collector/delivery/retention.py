"""How far the retention purge may go: never past what a destination still has to deliver.

Every destination, paused ones included (pausing keeps the backlog), holds back the purge at
its cursor. A hard cap (``DELIVERY_HARD_CAP_DAYS``) may override that; then each destination
that loses messages gets a data-loss Error health event naming the period and the count.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Max, Min

from collector.choices import Severity
from collector.delivery.routes import Route
from collector.engine.health import open_event
from collector.models import Destination, Message

DATA_LOSS_EVENT = "DataLossError"


def purge_floor() -> int | None:
    """The highest message id the purge may delete, or None when no destination holds it back."""
    return Destination.objects.aggregate(floor=Min("cursor"))["floor"]


def enforce_hard_cap(moment: dt.datetime) -> int:
    """Before messages older than the hard cap go regardless, tell each destination that had
    not delivered some of them. Returns how many destinations lose data."""
    if not settings.DELIVERY_HARD_CAP_DAYS:
        return 0
    cutoff = moment - dt.timedelta(days=settings.DELIVERY_HARD_CAP_DAYS)
    doomed = Message.objects.filter(message_time__lt=cutoff, receipt_time__lt=cutoff)
    last = doomed.aggregate(last=Max("id"))["last"]
    if last is None:
        return 0
    losing = 0
    for destination in Destination.objects.filter(cursor__lt=last):
        lost = doomed.filter(Route.of(destination).q(), id__gt=destination.cursor)
        span = lost.aggregate(first=Min("receipt_time"), last=Max("receipt_time"))
        count = lost.count()
        if not count:
            continue
        losing += 1
        period = f"{span['first']:%Y-%m-%d %H:%M} to {span['last']:%Y-%m-%d %H:%M} UTC"
        open_event(
            destination,
            event_name=DATA_LOSS_EVENT,
            severity=Severity.ERROR,
            scope=f"loss:{cutoff:%Y-%m-%d}",
            details={
                "trackerId": "DataLoss",
                "error": f"{count} messages stored {period} were deleted by the "
                f"{settings.DELIVERY_HARD_CAP_DAYS}-day hard cap before {destination.name} "
                "delivered them.",
                "description": "Delivery fell further behind than the hard cap allows. Fix the "
                "destination, or raise SUMOSOURCES_DELIVERY_HARD_CAP_DAYS.",
                "count": count,
                "lostFrom": span["first"].isoformat(),
                "lostUntil": span["last"].isoformat(),
            },
        )
    return losing
