"""Onward delivery: cursors in commit order, batches, acknowledgements, retries and health.

* :mod:`.clock` — every transaction that stores messages takes one lock first, so messages
  commit in id order and a cursor on the id never skips a late commit.
* :mod:`.routes` — which stored messages a destination receives.
* :mod:`.runs` — what a delivery task does: read the next batch after the cursor, send it,
  advance the cursor once the receiver acknowledged, in one short transaction.
* :mod:`.retention` — how far the purge may go without deleting what a destination still owes.
"""
