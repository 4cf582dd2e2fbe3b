"""The source lifecycle: recorded transitions, queueing runs, edits, pauses and deletes.

`enqueue` is the one place tasks reach the broker (ids only: payloads are pickled and signed,
not encrypted); tests replace it to run without a broker.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F, Q

from collector.choices import (
    SourceState,
)
from collector.engine.claims import FINISH_STOP, RUN_SOURCE, RUN_TENANT, claim_ttl, now, queue_ttl
from collector.engine.health import resolve_deleted
from collector.models import (
    Source,
    SourceTransition,
    Tenant,
)
from collector.redact import redact

log = logging.getLogger(__name__)


EARLY_STATES = (SourceState.PENDING, SourceState.STARTED, SourceState.INITIALIZED)


def enqueue(func: str, *args) -> None:
    """Queue a task (ids only: payloads are pickled and signed, not encrypted)."""
    from django_q.tasks import async_task

    async_task(func, *args, task_name=f"{func.rsplit('.', 1)[-1]}:{':'.join(map(str, args))}")


def record_transition(source: Source, from_state: str, to_state: str, reason: str) -> None:
    SourceTransition.objects.create(
        source=source, from_state=from_state, to_state=to_state, reason=reason[:1024]
    )


def transition(source_id: int, to_state: str, reason: str, *, from_states=None, **extra) -> bool:
    """Move a source to ``to_state`` if it is in one of ``from_states`` (any, when None).

    The state check and the write are one UPDATE, so two workers cannot both make a transition;
    the transition row is written only by the one that did. ``reason`` often quotes a vendor's
    error: it is redacted (tokens, control characters) and capped like health-event details.
    """
    reason = redact(reason, limit=1024)
    with transaction.atomic():
        row = Source.objects.filter(pk=source_id).values("state").first()
        if row is None:
            return False
        current = row["state"]
        if from_states is not None and current not in from_states:
            return False
        query = Source.objects.filter(pk=source_id, state=current)
        updated = query.update(
            state=to_state, state_detail=reason[:1024], state_changed_at=now(), **extra
        )
        if updated and current != to_state:
            SourceTransition.objects.create(
                source_id=source_id, from_state=current, to_state=to_state, reason=reason[:1024]
            )
        elif updated and extra:
            pass  # same state, fresh detail: no timeline row
        return bool(updated)


def kick(source_id: int) -> bool:
    """Queue a run of the source now unless one is queued or it may not run; Pending -> Started."""
    moment = now()
    not_queued = Q(queued_at__isnull=True) | Q(queued_at__lt=moment - queue_ttl())
    won = Source.objects.runnable().filter(not_queued, pk=source_id).update(queued_at=moment)
    if not won:
        return False
    transition(
        source_id,
        SourceState.STARTED,
        "A collection task was created.",
        from_states=(SourceState.PENDING,),
    )
    try:
        enqueue(RUN_SOURCE, source_id)
    except Exception:
        log.exception("could not queue a run of source %s", source_id)
        Source.objects.filter(pk=source_id).update(queued_at=None)
        transition(
            source_id,
            SourceState.PENDING,
            "The task queue could not be reached; the dispatcher will try again.",
            from_states=(SourceState.STARTED,),
        )
        return False
    return True


def kick_on_commit(source_id: int) -> None:
    transaction.on_commit(lambda: kick(source_id))


CLEAR_STREAK = {
    "error_type": "",
    "failure_count": 0,
    "streak_started_at": None,
    "next_attempt_at": None,
    "halted_at": None,
    "last_error": "",
}


def reset_to_pending(source_id: int, *, reason: str) -> None:
    """After an edit or a restart: a fresh start with checkpoints kept, queued at once."""
    moment = now()
    with transaction.atomic():
        transition(
            source_id,
            SourceState.PENDING,
            reason,
            config_version=F("config_version") + 1,
            paused=False,
            next_poll_at=moment,
            **CLEAR_STREAK,
        )
        Tenant.objects.filter(source_id=source_id).update(next_poll_at=moment, **CLEAR_STREAK)

    def start_unless_running():
        # A running worker notices the new config_version at its next page boundary and re-kicks
        # on release; if none runs, this kick starts the new run.
        if not Source.objects.filter(pk=source_id, claimed_at__isnull=False).exists():
            kick(source_id)

    # After commit, so that a caller's enclosing transaction (an API PUT) is visible to the run.
    transaction.on_commit(start_unless_running)


def pause(source_id: int) -> None:
    transition(
        source_id,
        SourceState.PAUSED,
        "Paused by a user; checkpoints are kept.",
        paused=True,
        config_version=F("config_version") + 1,
    )


def resume(source_id: int) -> None:
    reset_to_pending(source_id, reason="Resumed by a user.")


def request_stop(source_id: int) -> None:
    transition(
        source_id,
        SourceState.STOPPING,
        "Deleted by a user; stopping.",
        config_version=F("config_version") + 1,
    )
    try:
        enqueue(FINISH_STOP, source_id)
    except Exception:
        # The dispatcher removes stopped sources too; the queue being down only delays it.
        log.exception("could not queue the removal of source %s", source_id)


def finish_stop(source_id: int) -> bool:
    """Delete a Stopping source once no worker holds it. Collected messages stay."""
    with transaction.atomic():
        free = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now() - claim_ttl())
        source = Source.objects.filter(free, pk=source_id, state=SourceState.STOPPING).first()
        if source is None:
            return False
        busy_tenants = Tenant.objects.filter(
            source_id=source_id, claimed_at__gte=now() - claim_ttl()
        ).exists()
        if busy_tenants:
            return False
        resolve_deleted(source_ids=[source_id], reason="The source was deleted.")
        source.delete()
    return True


def after_release(source_id: int) -> None:
    """Follow-ups that were waiting for the worker to let go of the source."""
    row = Source.objects.filter(pk=source_id).values("state", "next_poll_at", "paused").first()
    if row is None:
        return
    if row["state"] == SourceState.STOPPING:
        finish_stop(source_id)
    elif not row["paused"] and (
        row["state"] == SourceState.PENDING
        or (row["next_poll_at"] and row["next_poll_at"] <= now())
    ):
        kick(source_id)


def kick_tenant(tenant_pk: int) -> bool:
    moment = now()
    not_queued = Q(queued_at__isnull=True) | Q(queued_at__lt=moment - queue_ttl())
    if not Tenant.objects.runnable().filter(not_queued, pk=tenant_pk).update(queued_at=moment):
        return False
    try:
        enqueue(RUN_TENANT, tenant_pk)
    except Exception:
        log.exception("could not queue tenant %s", tenant_pk)
        Tenant.objects.filter(pk=tenant_pk).update(queued_at=None)
        return False
    return True
