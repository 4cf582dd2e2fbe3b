"""The schedules: the dispatcher that queues due work, and the retention purge."""

from __future__ import annotations

import datetime as dt

from django.conf import settings

from collector.choices import SourceState
from collector.engine.claims import now
from collector.engine.health import expire_gaps
from collector.engine.lifecycle import finish_stop, kick, kick_tenant
from collector.models import CollectionRun, IngestBucket, Message, Source, Tenant


def dispatch() -> dict:
    """Queue every due source and tenant; remove stopped sources; expire old data-gap warnings.

    Runs from one django-q2 schedule. Safe to run concurrently with itself: every queueing is a
    compare-and-swap on ``queued_at``.
    """
    moment = now()
    stopped = Source.objects.filter(state=SourceState.STOPPING).values_list("pk", flat=True)
    removed = sum(finish_stop(pk) for pk in list(stopped))
    queued = sum(kick(pk) for pk in list(Source.objects.due(moment).values_list("pk", flat=True)))
    tenants = sum(
        kick_tenant(pk) for pk in list(Tenant.objects.due(moment).values_list("pk", flat=True))
    )
    expired = expire_gaps(moment)
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
