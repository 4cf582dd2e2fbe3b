"""Runs: what a collection task does for a source or for one tenant of a source.

Both tasks share one skeleton (:func:`_run`): claim the unit of work, do the work, classify any
failure into its streak and health event, and release the claim with the next poll time. What
differs is the body: a source run authenticates and either collects its tenants inline or, for a
credential that fans out, queues one task per due tenant; a tenant run collects that tenant.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from collector.choices import ErrorType, Severity, SourceState
from collector.crypto import DecryptionError
from collector.engine.claims import RunStopped, claim, now, release
from collector.engine.health import (
    Verdict,
    first_party,
    record_failure,
    record_notice,
    report_gap,
    resolve_events,
    state_sentence,
)
from collector.engine.ingest import RunMetadata, prefetched, run_metadata, store_page
from collector.engine.lifecycle import (
    CLEAR_STREAK,
    EARLY_STATES,
    after_release,
    finish_stop,
    kick_tenant,
    transition,
)
from collector.errors import CollectionError
from collector.kinds import get_kind
from collector.kinds.base import Tenant as TenantInfo
from collector.models import Checkpoint, ClaimedWork, CollectionRun, Source, Tenant
from collector.redact import redact

log = logging.getLogger(__name__)

# States a failure may move to Error: a user's delete or pause always wins over a failure.
ERRABLE = [s for s in SourceState.values if s not in (SourceState.STOPPING, SourceState.PAUSED)]


@dataclass
class Outcome:
    items: int = 0
    more: bool = False  # the time budget ran out with data left: run again at once
    collected: bool = False


@dataclass
class Claimed:
    """What a run body gets: the claimed unit and the token that proves the claim."""

    model: type[ClaimedWork]
    pk: int
    token: str


def _deadline() -> float:
    # Leave room before django-q2 kills the task: a run ends at a page boundary and re-queues.
    return time.monotonic() + settings.TASK_TIMEOUT * 0.6


def _run(
    model: type[ClaimedWork],
    pk: int,
    *,
    body: Callable[[Claimed], tuple[dt.datetime | None, str]],
    failed: Callable[[CollectionError], dt.datetime | None],
    stopped_poll: Callable[[], dt.datetime | None],
    released: Callable[[dt.datetime | None], None],
) -> str:
    """The skeleton of every run. ``body`` does the work and answers (next poll, result);
    ``failed`` records a classified failure and answers the next attempt time; ``released`` runs
    once the claim is let go. Our own unexpected failures are classified FirstPartyGeneric: a
    run never crashes the worker."""
    token = claim(model, pk, model.runnable_q())
    if token is None:
        model.objects.filter(pk=pk, claimed_at__isnull=True).update(queued_at=None)
        return "busy"
    next_poll: dt.datetime | None = None
    try:
        next_poll, result = body(Claimed(model, pk, token))
    except RunStopped as exc:
        next_poll, result = stopped_poll(), f"stopped: {exc}"
    except CollectionError as exc:
        next_poll, result = failed(exc), f"error: {exc.error_type.value}"
    except Exception as exc:
        log.exception("%s %s run failed", model.__name__.lower(), pk)
        next_poll = failed(
            first_party(
                f"Sumo Sources failed while collecting ({type(exc).__name__}).",
                "Check the worker log; collection retries by itself.",
            )
        )
        result = "error: FirstPartyGeneric"
    finally:
        release(model, pk, token, next_poll)
        released(next_poll)
    return result


def _secret_of(source: Source):
    """The decrypted secret; a lost or rotated-out key is our failure (FirstPartyGeneric)."""
    try:
        return source.get_secret()
    except DecryptionError:
        raise first_party(
            "The stored secret cannot be decrypted with the configured encryption keys.",
            "Restore the previous key in SUMOSOURCES_ENCRYPTION_KEYS, or edit the source and "
            "enter the secret again.",
        )


def _next_poll(source: Source, outcome: Outcome) -> dt.datetime:
    return now() if outcome.more else now() + dt.timedelta(seconds=source.polling_interval)


# --- a source ---------------------------------------------------------------------------------
def run_source(source_id: int) -> str:
    """One run of a source: authenticate, discover tenants, then collect (inline or fanned out)."""
    return _run(
        Source,
        source_id,
        body=_source_body,
        failed=lambda error: _source_failed(source_id, error),
        stopped_poll=now,
        released=lambda _next: after_release(source_id),
    )


def _source_body(unit: Claimed) -> tuple[dt.datetime, str]:
    source = _load(unit.pk)
    secret = _secret_of(source)
    transition(
        source.pk,
        SourceState.INITIALIZED,
        "A worker loaded the configuration and decrypted the credentials.",
        from_states=(SourceState.PENDING, SourceState.STARTED),
    )
    kind = get_kind(source.kind)
    with kind.open(config=source.config, secret=secret.reveal()) as session:
        identity = session.authenticate()
        tenants = _save_identity(source, identity)
        transition(
            source.pk,
            SourceState.AUTHENTICATED,
            f"Authenticated as {identity.label}.",
            from_states=(SourceState.INITIALIZED,),
        )
        if identity.fans_out:
            _source_succeeded(source, discovery_only=True)
            due = [
                t
                for t in tenants
                if t.halted_at is None and (t.next_poll_at is None or t.next_poll_at <= now())
            ]
            for tenant in due:
                kick_tenant(tenant.pk)
            return now() + dt.timedelta(seconds=source.polling_interval), (
                f"ok: {len(due)} tenants queued"
            )
        metadata = run_metadata(source)
        outcome = Outcome()
        for tenant in tenants:
            part = collect_tenant(
                session=session, source=source, tenant=tenant, metadata=metadata, unit=unit
            )
            outcome.items += part.items
            outcome.more |= part.more
            Tenant.objects.filter(pk=tenant.pk).update(last_success_at=now())
        _source_succeeded(source)
        return _next_poll(source, outcome), f"ok: {outcome.items} items"


def _load(source_id: int) -> Source | None:
    return Source.objects.select_related("collector").filter(pk=source_id).first()


def _save_identity(source: Source, identity) -> list[Tenant]:
    """Store who the credential is and upsert its tenants; tenants no longer listed go inactive."""
    moment = now()
    Source.objects.filter(pk=source.pk).update(
        identity_type=identity.id_type,
        identity_id=identity.id,
        region=identity.region or "",
        fans_out=identity.fans_out,
    )
    source.identity_type, source.fans_out = identity.id_type, identity.fans_out
    existing = {t.tenant_id: t for t in Tenant.objects.filter(source=source)}
    listed = set()
    # A kind without tenants collects the source itself: one implicit tenant with an empty id.
    for info in identity.tenants or (TenantInfo(id="", name="", api_host=""),):
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
    gone = [row.pk for tid, row in existing.items() if tid not in listed]
    if gone:
        Tenant.objects.filter(pk__in=gone).update(active=False)
    return list(Tenant.objects.filter(source=source, active=True))


def _source_succeeded(source: Source, *, discovery_only: bool = False) -> None:
    Source.objects.filter(pk=source.pk).update(last_success_at=now(), **CLEAR_STREAK)
    # A discovery success clears source-wide incidents; a full run clears every error incident of
    # the credential (when it does not fan out there is no other scope).
    resolve_events(source, scope_prefix="", names=[e.event_name for e in ErrorType])
    if not discovery_only:
        mark_collecting(source, "Collection succeeded.")


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


# --- one tenant of a source that fans out -----------------------------------------------------
def run_tenant(tenant_pk: int) -> str:
    """One run of one tenant of a credential that fans out."""
    tenant = Tenant.objects.select_related("source__collector").filter(pk=tenant_pk).first()
    if tenant is None:
        return "gone"
    source = tenant.source

    def released(next_poll):
        row = Source.objects.filter(pk=source.pk).values("state").first()
        if row and row["state"] == SourceState.STOPPING:
            finish_stop(source.pk)
        elif next_poll is not None and next_poll <= now():
            kick_tenant(tenant_pk)

    return _run(
        Tenant,
        tenant_pk,
        body=lambda unit: _tenant_body(unit, tenant, source),
        failed=lambda error: _tenant_failed(tenant, error),
        stopped_poll=lambda: None,
        released=released,
    )


def _tenant_body(unit: Claimed, tenant: Tenant, source: Source) -> tuple[dt.datetime, str]:
    secret = _secret_of(source)
    metadata = run_metadata(source)
    with get_kind(source.kind).open(config=source.config, secret=secret.reveal()) as session:
        outcome = collect_tenant(
            session=session, source=source, tenant=tenant, metadata=metadata, unit=unit
        )
    Tenant.objects.filter(pk=tenant.pk).update(last_success_at=now(), **CLEAR_STREAK)
    Source.objects.filter(pk=source.pk).update(last_success_at=now())
    resolve_events(source, scope_prefix=f"tenant:{tenant.tenant_id}")
    mark_collecting(source, "Collection succeeded.")
    return _next_poll(source, outcome), f"ok: {outcome.items} items"


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
    """One tenant refusing us is a lasting condition of that tenant, not of the credential:
    warn, and look again at the next regular poll."""
    retry_at = now() + dt.timedelta(seconds=tenant.source.polling_interval)
    verdict = Verdict(False, Severity.WARNING, retry_at, tenant.failure_count + 1)
    return record_failure(tenant, error, scope=scope, verdict=verdict)


# --- collecting the streams of one tenant -----------------------------------------------------
def collect_tenant(
    *, session, source: Source, tenant: Tenant, metadata: RunMetadata, unit: Claimed
) -> Outcome:
    """Drain every stream the source collects of one tenant, page by page.

    Raises CollectionError; raises RunStopped when the claim was lost or the config changed.
    """
    outcome = Outcome()
    info = TenantInfo(id=tenant.tenant_id, name=tenant.name, api_host=tenant.api_host,
                      region=tenant.region)  # fmt: skip
    deadline = _deadline()
    version = source.config_version
    streams = source.streams
    if not streams:
        raise first_party(
            f"The {source.kind} kind names no stream to collect for this source.",
            "Edit the source and choose what to collect.",
        )
    for stream in streams:
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
                    report_gap(source, page.gap)
                stored = store_page(
                    source=source,
                    page=page,
                    metadata=metadata,
                    unit_model=unit.model,
                    unit_pk=unit.pk,
                    token=unit.token,
                    version=version,
                )
                for notice in page.notices:
                    record_notice(source, notice)
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
