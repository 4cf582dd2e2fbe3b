"""The collection engine: lifecycle, claims, scheduling, ingest, retries and health.

It knows nothing about any vendor: a source kind (collector.kinds) authenticates, pages and maps
items; this module decides when to run, stores what comes back and records how it went.

Concurrency rules, in one place:
- Work is claimed with compare-and-swap updates on ``claimed_at``/``claim_token`` (a row count of 1
  wins); a claim older than the task timeout is stale and may be taken over.
- Every page is stored in one short transaction together with its checkpoint, and that transaction
  also renews the claim; if the claim was lost meanwhile, the transaction rolls back and the run
  stops, so a slow worker can never write behind a newer one's back.
- No transaction is ever open across an HTTP call: pages are fetched first, then written.

The package, by concern: ``claims`` (who may work on what), ``lifecycle`` (states and queueing),
``health`` (retries, health events, data gaps), ``ingest`` (storing pages), ``runs`` (what a
task does, one skeleton for sources and tenants) and ``schedule`` (the dispatcher and the
purge). Callers use the names re-exported here.
"""

from collector.engine.claims import FINISH_STOP, RUN_SOURCE, RUN_TENANT, RunStopped
from collector.engine.health import (
    BACKOFF_CAP_SECONDS,
    backoff_seconds,
    open_event,
    resolve_deleted,
    resolve_deleted_destination,
    resolve_events,
)
from collector.engine.ingest import prefetched, store_page
from collector.engine.lifecycle import (
    CLEAR_STREAK,
    finish_stop,
    kick,
    kick_on_commit,
    kick_tenant,
    pause,
    record_transition,
    request_stop,
    reset_to_pending,
    resume,
    transition,
)
from collector.engine.runs import run_source, run_tenant
from collector.engine.schedule import dispatch, purge

__all__ = [
    "CLEAR_STREAK",
    "BACKOFF_CAP_SECONDS",
    "FINISH_STOP",
    "RUN_SOURCE",
    "RUN_TENANT",
    "RunStopped",
    "backoff_seconds",
    "dispatch",
    "finish_stop",
    "kick",
    "kick_on_commit",
    "kick_tenant",
    "open_event",
    "pause",
    "prefetched",
    "purge",
    "record_transition",
    "request_stop",
    "reset_to_pending",
    "resolve_deleted",
    "resolve_deleted_destination",
    "resolve_events",
    "resume",
    "run_source",
    "run_tenant",
    "store_page",
    "transition",
]
