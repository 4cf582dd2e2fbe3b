"""Claims: compare-and-swap ownership of a source or tenant, and when a claim is stale.

A claim is won by an UPDATE whose row count is 1 and renewed with every stored page; one older
than CLAIM_TTL belongs to a dead worker and may be taken over. Losing it stops a run at the next
page boundary without writing (collector.engine.ingest re-checks it in the page transaction).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

log = logging.getLogger(__name__)


RUN_SOURCE = "collector.tasks.run_source"


RUN_TENANT = "collector.tasks.run_tenant"


FINISH_STOP = "collector.tasks.finish_stop"


class RunStopped(Exception):
    """The run must end at this page boundary (edit, pause, delete, lost claim)."""


def now() -> dt.datetime:
    return timezone.now()


def claim_ttl() -> dt.timedelta:
    """A claim not renewed for this long belongs to a dead worker."""
    return dt.timedelta(seconds=settings.CLAIM_TTL)


def queue_ttl() -> dt.timedelta:
    """A queued marker older than this belongs to a task the broker lost."""
    return dt.timedelta(seconds=settings.QUEUE_TTL)


def claim(model, pk, extra: Q | None = None) -> str | None:
    """Compare-and-swap claim of one row; returns the claim token or None when someone holds it."""
    token = uuid.uuid4().hex
    moment = now()
    free = Q(claimed_at__isnull=True) | Q(claimed_at__lt=moment - claim_ttl())
    query = model.objects.filter(free, pk=pk)
    if extra is not None:
        query = query.filter(extra)
    won = query.update(claimed_at=moment, claim_token=token)
    return token if won == 1 else None


def renew(model, pk, token: str) -> bool:
    return model.objects.filter(pk=pk, claim_token=token).update(claimed_at=now()) == 1


def release(model, pk: int, token: str, next_poll: dt.datetime | None) -> None:
    updates = {"claimed_at": None, "claim_token": "", "queued_at": None}
    if next_poll is not None:
        updates["next_poll_at"] = next_poll
    model.objects.filter(pk=pk, claim_token=token).update(**updates)
