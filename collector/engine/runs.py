"""Runs: what a collection task does for a source or a tenant, the dispatcher and the purge."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from collector.choices import (
    DATA_GAP_EVENT,
    ErrorType,
    Severity,
    SourceState,
)
from collector.crypto import DecryptionError
from collector.engine.claims import RunStopped, claim, now, release
from collector.engine.health import (
    Verdict,
    first_party,
    open_event,
    record_failure,
    resolve_events,
    state_sentence,
)
from collector.engine.ingest import Gate, build_gate, prefetched, store_page
from collector.engine.lifecycle import (
    CLEAR_STREAK,
    EARLY_STATES,
    after_release,
    finish_stop,
    kick,
    kick_tenant,
    transition,
)
from collector.errors import CollectionError
from collector.kinds import get_kind
from collector.kinds.base import Page
from collector.kinds.base import Tenant as TenantInfo
from collector.models import (
    Checkpoint,
    CollectionRun,
    HealthEvent,
    IngestBucket,
    Message,
    Source,
    Tenant,
)
from collector.redact import redact

log = logging.getLogger(__name__)


def _tenant_info(row: Tenant) -> TenantInfo:
    return TenantInfo(id=row.tenant_id, name=row.name, api_host=row.api_host, region=row.region)


def _save_identity(source: Source, identity) -> list[Tenant]:
    """Store who the credential is and upsert its tenants; tenants no longer listed go inactive."""
    moment = now()
    Source.objects.filter(pk=source.pk).update(
        identity_type=identity.id_type, identity_id=identity.id, region=identity.region or ""
    )
    source.identity_type = identity.id_type
    existing = {t.tenant_id: t for t in Tenant.objects.filter(source=source)}
    listed = set()
    for info in identity.tenants:
        listed.add(info.id)
        row = existing.get(info.id)
        if row is None:
            Tenant.objects.create(
                source=source,
                tenant_id=info.id,
                name=info.name,
                api_host=info.api_host,
                region=info.region,
                next_poll_at=moment,
            )
        elif (row.name, row.api_host, row.region, row.active) != (
            info.name,
            info.api_host,
            info.region,
            True,
        ):
            Tenant.objects.filter(pk=row.pk).update(
                name=info.name, api_host=info.api_host, region=info.region, active=True
            )
    gone = [pk for tid, pk in ((t.tenant_id, t.pk) for t in existing.values()) if tid not in listed]
    if gone:
        Tenant.objects.filter(pk__in=gone).update(active=False)
    return list(Tenant.objects.filter(source=source, active=True))


@dataclass
class Outcome:
    items: int = 0
    more: bool = False  # the time budget ran out with data left: run again at once
    collected: bool = False


def collect_tenant(
    *,
    session,
    source: Source,
    tenant: Tenant,
    gate: Gate,
    unit_model,
    unit_pk,
    token,
    version,
    deadline: float,
) -> Outcome:
    """Drain every supported stream of one tenant, page by page. Raises CollectionError."""
    outcome = Outcome()
    info = _tenant_info(tenant)
    for stream in source.supported_apis:
        checkpoint = (
            Checkpoint.objects.filter(source=source, stream=stream, tenant_id=tenant.tenant_id)
            .values_list("position", flat=True)
            .first()
        )
        run = CollectionRun.objects.create(
            source=source, source_name=source.name, stream=stream, tenant_id=tenant.tenant_id
        )
        try:
            pages = session.pages(stream=stream, tenant=info, checkpoint=checkpoint or None)
            for page in prefetched(pages):
                if page.gap is not None:
                    _report_gap(source, page)
                stored = store_page(
                    source=source,
                    page=page,
                    gate=gate,
                    unit_model=unit_model,
                    unit_pk=unit_pk,
                    token=token,
                    version=version,
                )
                run.pages += 1
                run.items += stored.items
                run.bytes += page.bytes
                outcome.items += stored.items
                if not outcome.collected:
                    outcome.collected = True
                    mark_collecting(source, f"{stream} of {info.name or info.id} stored.")
                if time.monotonic() > deadline:
                    outcome.more = True
                    break
            if not outcome.collected:
                outcome.collected = True
                mark_collecting(source, f"First poll of {stream} finished; no new items.")
        except RunStopped as exc:
            _finish_run(run, CollectionRun.Outcome.STOPPED, str(exc))
            raise
        except CollectionError as exc:
            _finish_run(run, CollectionRun.Outcome.ERROR, exc.message)
            raise
        except Exception as exc:
            _finish_run(run, CollectionRun.Outcome.ERROR, f"{type(exc).__name__}")
            raise
        _finish_run(run, CollectionRun.Outcome.SUCCESS)
        if outcome.more:
            break
    return outcome


def _finish_run(run: CollectionRun, outcome: str, error: str = "") -> None:
    run.outcome = outcome
    run.error = redact(error, limit=2000)  # the message may quote a vendor: no token stored
    run.ended_at = now()
    run.save(update_fields=["pages", "items", "bytes", "outcome", "error", "ended_at"])


def mark_collecting(source: Source, reason: str) -> None:
    transition(
        source.pk,
        SourceState.COLLECTING,
        reason,
        from_states=(*EARLY_STATES, SourceState.AUTHENTICATED, SourceState.ERROR),
    )


def _report_gap(source: Source, page: Page) -> None:
    gap = page.gap
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
            "lostFrom": gap.lost_from.isoformat(),
            "lostUntil": gap.lost_until.isoformat(),
        },
    )


def _load(source_id: int) -> Source | None:
    return Source.objects.select_related("collector").filter(pk=source_id).first()


def _secret_of(source: Source):
    """The decrypted secret; a lost or rotated-out key is our failure (FirstPartyGeneric)."""
    try:
        return source.get_secret()
    except DecryptionError:
        raise first_party(
            "The stored client secret cannot be decrypted with the configured encryption keys.",
            "Restore the previous key in SUMOSOURCES_ENCRYPTION_KEYS, or edit the source and "
            "enter the secret again.",
        )


def _deadline() -> float:
    # Leave room before django-q2 kills the task: a run ends at a page boundary and re-queues.
    return time.monotonic() + settings.TASK_TIMEOUT * 0.6


def run_source(source_id: int) -> str:
    """One run of a source: authenticate, discover tenants, then collect (inline or fanned out)."""
    token = claim(
        Source, source_id, Q(paused=False, halted_at__isnull=True) & ~Q(state=SourceState.STOPPING)
    )
    if token is None:
        Source.objects.filter(pk=source_id, claimed_at__isnull=True).update(queued_at=None)
        return "busy"
    next_poll: dt.datetime | None = None
    result = "ok"
    try:
        source = _load(source_id)
        version = source.config_version
        interval = dt.timedelta(seconds=source.polling_interval)
        secret = _secret_of(source)
        transition(
            source_id,
            SourceState.INITIALIZED,
            "A worker loaded the configuration and decrypted the credentials.",
            from_states=(SourceState.PENDING, SourceState.STARTED),
        )
        kind = get_kind(source.kind)
        with kind.open(config=source.config, secret=secret.reveal()) as session:
            identity = session.authenticate()
            tenants = _save_identity(source, identity)
            where = identity.region or f"{len(tenants)} tenants"
            transition(
                source_id,
                SourceState.AUTHENTICATED,
                f"Authenticated as a {identity.id_type} credential ({where}).",
                from_states=(SourceState.INITIALIZED,),
            )
            if identity.id_type == "tenant":
                gate = build_gate(source)
                outcome = Outcome()
                for tenant in tenants:
                    part = collect_tenant(
                        session=session,
                        source=source,
                        tenant=tenant,
                        gate=gate,
                        unit_model=Source,
                        unit_pk=source_id,
                        token=token,
                        version=version,
                        deadline=_deadline(),
                    )
                    outcome.items += part.items
                    outcome.more |= part.more
                    Tenant.objects.filter(pk=tenant.pk).update(last_success_at=now())
                _source_succeeded(source)
                next_poll = now() if outcome.more else now() + interval
                result = f"ok: {outcome.items} items"
            else:
                _source_succeeded(source, discovery_only=True)
                next_poll = now() + interval
                due = [
                    t
                    for t in tenants
                    if t.halted_at is None and (t.next_poll_at is None or t.next_poll_at <= now())
                ]
                for tenant in due:
                    kick_tenant(tenant.pk)
                result = f"ok: {len(due)} tenants queued"
    except RunStopped as exc:
        result = f"stopped: {exc}"
        next_poll = now()
    except CollectionError as exc:
        next_poll = _source_failed(source_id, exc)
        result = f"error: {exc.error_type.value}"
    except Exception as exc:  # our own failure: classified, never a crash of the worker
        log.exception("source %s run failed", source_id)
        error = first_party(
            f"Sumo Sources failed while collecting ({type(exc).__name__}).",
            "Check the worker log; the source retries by itself.",
        )
        next_poll = _source_failed(source_id, error)
        result = "error: FirstPartyGeneric"
    finally:
        release(Source, source_id, token, next_poll)
        after_release(source_id)
    return result


def _source_succeeded(source: Source, *, discovery_only: bool = False) -> None:
    moment = now()
    Source.objects.filter(pk=source.pk).update(last_success_at=moment, **CLEAR_STREAK)
    # A discovery success clears source-wide incidents; a full run clears every error incident of
    # the credential (for tenant credentials there is no other scope).
    resolve_events(source, scope_prefix="", names=[e.event_name for e in ErrorType])
    if not discovery_only:
        mark_collecting(source, "Collection succeeded.")


# States a failure may move to Error: a user's delete or pause always wins over a failure.
ERRABLE = [s for s in SourceState.values if s not in (SourceState.STOPPING, SourceState.PAUSED)]


def _source_failed(source_id: int, error: CollectionError) -> dt.datetime | None:
    source = _load(source_id)
    if source is None:
        return None
    # One transaction: nobody may see the health event without the Error state, or the reverse.
    with transaction.atomic():
        verdict = record_failure(source, error, scope="")
        transition(
            source_id, SourceState.ERROR, state_sentence(error, verdict), from_states=ERRABLE
        )
    return verdict.next_attempt_at


def run_tenant(tenant_pk: int) -> str:
    """One run of one tenant of a partner or organization credential."""
    token = claim(
        Tenant,
        tenant_pk,
        Q(active=True, halted_at__isnull=True, source__paused=False, source__halted_at__isnull=True)
        & ~Q(source__state=SourceState.STOPPING),
    )
    if token is None:
        Tenant.objects.filter(pk=tenant_pk, claimed_at__isnull=True).update(queued_at=None)
        return "busy"
    tenant = Tenant.objects.select_related("source__collector").get(pk=tenant_pk)
    source = tenant.source
    next_poll: dt.datetime | None = None
    result = "ok"
    try:
        version = source.config_version
        secret = _secret_of(source)
        gate = build_gate(source)
        with get_kind(source.kind).open(config=source.config, secret=secret.reveal()) as session:
            outcome = collect_tenant(
                session=session,
                source=source,
                tenant=tenant,
                gate=gate,
                unit_model=Tenant,
                unit_pk=tenant_pk,
                token=token,
                version=version,
                deadline=_deadline(),
            )
        Tenant.objects.filter(pk=tenant_pk).update(last_success_at=now(), **CLEAR_STREAK)
        Source.objects.filter(pk=source.pk).update(last_success_at=now())
        resolve_events(source, scope_prefix=f"tenant:{tenant.tenant_id}")
        mark_collecting(source, "Collection succeeded.")
        interval = dt.timedelta(seconds=source.polling_interval)
        next_poll = now() if outcome.more else now() + interval
        result = f"ok: {outcome.items} items"
    except RunStopped as exc:
        result = f"stopped: {exc}"
    except CollectionError as exc:
        next_poll = _tenant_failed(tenant, exc)
        result = f"error: {exc.error_type.value}"
    except Exception as exc:
        log.exception("tenant %s run failed", tenant_pk)
        next_poll = _tenant_failed(
            tenant,
            first_party(
                f"Sumo Sources failed while collecting ({type(exc).__name__}).",
                "Check the worker log; the tenant retries by itself.",
            ),
        )
        result = "error: FirstPartyGeneric"
    finally:
        release(Tenant, tenant_pk, token, next_poll)
        row = Source.objects.filter(pk=source.pk).values("state").first()
        if row and row["state"] == SourceState.STOPPING:
            finish_stop(source.pk)
        elif next_poll is not None and next_poll <= now():
            kick_tenant(tenant_pk)
    return result


def _tenant_failed(tenant: Tenant, error: CollectionError) -> dt.datetime | None:
    """A tenant's failure: its own streak and event; the source errs only if no tenant works."""
    source = tenant.source
    scope = f"tenant:{tenant.tenant_id}"
    with transaction.atomic():
        if error.tenant_scoped:
            verdict = _tenant_refused(tenant, error, scope)
        else:
            verdict = record_failure(tenant, error, scope=scope)
        healthy = Tenant.objects.filter(source=source, active=True, failure_count=0).exists()
        if not healthy:
            transition(
                source.pk, SourceState.ERROR, state_sentence(error, verdict), from_states=ERRABLE
            )
    return verdict.next_attempt_at


def _tenant_refused(tenant: Tenant, error: CollectionError, scope: str) -> Verdict:
    """One tenant refusing us (e.g. partner assistance off) is a lasting condition of that tenant,
    not of the credential: warn, and look again at the next regular poll."""
    retry_at = now() + dt.timedelta(seconds=tenant.source.polling_interval)
    verdict = Verdict(False, Severity.WARNING, retry_at, tenant.failure_count + 1)
    return record_failure(tenant, error, scope=scope, verdict=verdict)


def dispatch() -> dict:
    """Queue every due source and tenant; remove stopped sources; expire old data-gap warnings.

    Runs from one django-q2 schedule. Safe to run concurrently with itself: every queueing is a
    compare-and-swap on ``queued_at``.
    """
    moment = now()
    stopped = list(Source.objects.filter(state=SourceState.STOPPING).values_list("pk", flat=True))
    removed = sum(finish_stop(pk) for pk in stopped)
    due_sources = list(
        Source.objects.filter(paused=False, halted_at__isnull=True, next_poll_at__lte=moment)
        .exclude(state=SourceState.STOPPING)
        .values_list("pk", flat=True)
    )
    queued = sum(kick(pk) for pk in due_sources)
    due_tenants = list(
        Tenant.objects.filter(
            active=True,
            halted_at__isnull=True,
            next_poll_at__lte=moment,
            source__identity_type__in=("partner", "organization"),
            source__paused=False,
            source__halted_at__isnull=True,
        )
        .exclude(source__state=SourceState.STOPPING)
        .values_list("pk", flat=True)
    )
    tenants = sum(kick_tenant(pk) for pk in due_tenants)
    expired = HealthEvent.objects.filter(
        event_name=DATA_GAP_EVENT,
        resolved_at__isnull=True,
        last_seen__lt=moment - dt.timedelta(hours=24),
    ).update(resolved_at=moment)
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
