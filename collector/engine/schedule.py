"""The schedules: the dispatcher that queues due work, and the retention purge."""

from __future__ import annotations

import datetime as dt

from django.conf import settings

from collector.choices import SourceState
from collector.engine.claims import now
from collector.engine.health import expire_gaps
from collector.engine.lifecycle import finish_stop, kick, kick_tenant
from collector.models import CollectionRun, Destination, IngestBucket, Message, Source, Tenant


def dispatch() -> dict:
    """Queue every due source and tenant; remove stopped sources; expire old data-gap warnings.

    Runs from one django-q2 schedule. Safe to run concurrently with itself: every queueing is a
    compare-and-swap on ``queued_at``.
    """
    from collector.delivery.runs import kick_delivery  # delivery builds on the engine, not back

    moment = now()
    stopped = Source.objects.filter(state=SourceState.STOPPING).values_list("pk", flat=True)
    removed = sum(finish_stop(pk) for pk in list(stopped))
    queued = sum(kick(pk) for pk in list(Source.objects.due(moment).values_list("pk", flat=True)))
    tenants = sum(
        kick_tenant(pk) for pk in list(Tenant.objects.due(moment).values_list("pk", flat=True))
    )
    expired = expire_gaps(moment)
    deliveries = sum(
        kick_delivery(pk)
        for pk in list(Destination.objects.due(moment).values_list("pk", flat=True))
    )
    return {
        "sources": queued,
        "tenants": tenants,
        "deliveries": deliveries,
        "removed": removed,
        "gaps_expired": expired,
    }


def purge() -> dict:
    """Delete messages, runs and buckets past their retention.

    Messages a destination has not delivered yet stay (collector.delivery.retention), unless the
    hard cap forces them out, which raises a data-loss Error for each destination that lost some.
    """
    from collector.delivery.retention import enforce_hard_cap, purge_floor

    moment = now()
    message_cutoff = moment - dt.timedelta(days=settings.MESSAGE_RETENTION_DAYS)
    run_cutoff = moment - dt.timedelta(days=settings.RUN_RETENTION_DAYS)
    expired = Message.objects.filter(
        message_time__lt=message_cutoff, receipt_time__lt=message_cutoff
    )
    floor = purge_floor()
    held_back = expired if floor is None else expired.filter(id__lte=floor)
    messages, _ = held_back.delete()
    if settings.DELIVERY_HARD_CAP_DAYS:
        enforce_hard_cap(moment)
        cap = moment - dt.timedelta(days=settings.DELIVERY_HARD_CAP_DAYS)
        forced, _ = Message.objects.filter(message_time__lt=cap, receipt_time__lt=cap).delete()
        messages += forced
    runs, _ = CollectionRun.objects.filter(started_at__lt=run_cutoff).delete()
    buckets, _ = IngestBucket.objects.filter(start__lt=message_cutoff).delete()
    return {"messages": messages, "runs": runs, "buckets": buckets}
