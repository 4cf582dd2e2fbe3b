"""Commit order of stored messages: the one lock every message-writing transaction takes first.

Destinations keep a cursor on ``Message.id`` and read "everything after it". That is only safe
if ids become visible in id order. On PostgreSQL they need not: two transactions draw ids from
the sequence, and the one with the lower ids may commit last, so a reader that already moved
past the higher ids would skip the late rows for ever.

So every transaction that inserts messages takes a transaction-scoped advisory lock before it
draws its first id, and holds it until it commits. Ids are then drawn and committed one
transaction after the other: whatever a reader sees, no lower id can still appear. Writers of
messages are serialised (page transactions are short: one page and its checkpoint), readers
never wait. SQLite has one writer at a time anyway (IMMEDIATE transactions), so there the lock
is a no-op.

Rule: take it first in the transaction, before any row lock, so it cannot take part in a
deadlock cycle with the claim and state rows the same transactions update.
"""

from __future__ import annotations

import logging

from django.db import connection, transaction

log = logging.getLogger(__name__)

# pg_advisory_xact_lock takes a bigint: "SumoMsg" as bytes, a key no other code uses.
LOCK_KEY = 0x53756D6F4D7367


def hold_clock() -> None:
    """Take the commit-order lock for the rest of the current transaction (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return
    if not connection.in_atomic_block:
        raise RuntimeError("messages must be written in a transaction that holds the clock")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


def deliver_after_commit() -> None:
    """Once the current transaction's messages are committed, queue the destinations' delivery:
    it starts within seconds, not at the dispatcher's next minute. A queue that cannot be reached
    is logged and never fails the writer (the dispatcher queues them later)."""
    transaction.on_commit(_kick_deliveries)


def _kick_deliveries() -> None:
    from collector.delivery.runs import kick_deliveries  # runs builds on the engine, not back

    try:
        kick_deliveries()
    except Exception:
        log.exception("could not queue deliveries")
