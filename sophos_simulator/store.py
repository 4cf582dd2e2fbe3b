"""Compact item storage for one tenant and stream, with what was served of it.

Items are kept in arrival (creation) order as JSON bytes in one ``bytearray``, each followed by a
comma, with offsets and creation times in ``array`` columns: a page of consecutive items is a
single slice, and a million items cost little more than their JSON. Alerts also keep their Common
Alerts rendering and a ``raisedAt``-ordered index, because that API pages by ``raisedAt`` and a
late alert lands in the middle of it.

Not thread-safe by itself: the simulator holds its lock around every call.
"""

from __future__ import annotations

import bisect
from array import array

# Composite sort key of the raisedAt index: raisedAt ms in the high bits, arrival number below,
# so equal instants keep a stable order and a page key names one exact position.
SEQ_BITS = 22
SEQ_MASK = (1 << SEQ_BITS) - 1
MAX_ITEMS = 1 << SEQ_BITS  # items per tenant and stream (4,194,304)
ID_SLICE = slice(7, 43)  # every item starts with {"id":"<36 chars>"


class Served:
    """Which items of a list were served at least once, and how many times items were served."""

    def __init__(self):
        self.flags = bytearray()
        self.distinct = 0
        self.total = 0

    def grow(self, size: int) -> None:
        if len(self.flags) < size:
            self.flags.extend(bytes(size - len(self.flags)))

    def mark_range(self, start: int, end: int) -> None:
        if end <= start:
            return
        self.grow(end)
        self.distinct += self.flags.count(0, start, end)
        self.flags[start:end] = b"\x01" * (end - start)
        self.total += end - start

    def mark(self, indexes) -> None:
        flags = self.flags
        for i in indexes:
            if i >= len(flags):
                self.grow(i + 1)
                flags = self.flags
            if not flags[i]:
                flags[i] = 1
                self.distinct += 1
            self.total += 1


class ItemStore:
    """Items of one tenant and stream in arrival order; see the module docstring."""

    def __init__(self):
        self.buf = bytearray()
        self.offsets = array("Q", [0])
        self.created = array("q")  # ms, non-decreasing
        self.kinds = array("H")  # event type index (events), 0 for alerts
        self.served = Served()
        self.next_arrival: float | None = None  # sim time of the next rate-based arrival

    def __len__(self) -> int:
        return len(self.created)

    def append(self, data: bytes, created_ms: int, kind: int = 0) -> int:
        if len(self.created) >= MAX_ITEMS:
            raise OverflowError(
                f"the simulator holds at most {MAX_ITEMS} items per tenant and stream"
            )
        if self.created and created_ms < self.created[-1]:
            raise ValueError("items must be appended in creation order")
        self.buf += data
        self.buf += b","
        self.offsets.append(len(self.buf))
        self.created.append(created_ms)
        self.kinds.append(kind)
        return len(self.created) - 1

    def first_at(self, ms: int) -> int:
        """Index of the first item created at or after ``ms``."""
        return bisect.bisect_left(self.created, ms)

    def slice(self, start: int, end: int) -> bytes:
        """Items ``start``..``end``-1 as ``a,b,c`` (no brackets)."""
        if end <= start:
            return b""
        return bytes(self.buf[self.offsets[start] : self.offsets[end] - 1])

    def item(self, index: int) -> bytes:
        return bytes(self.buf[self.offsets[index] : self.offsets[index + 1] - 1])

    def item_id(self, index: int) -> str:
        start = self.offsets[index]
        return self.buf[start + ID_SLICE.start : start + ID_SLICE.stop].decode()

    def ids(self) -> list[str]:
        return [self.item_id(i) for i in range(len(self))]


class AlertStore(ItemStore):
    """Alerts: the SIEM rendering in arrival order (inherited) plus Common Alerts by raisedAt."""

    def __init__(self):
        super().__init__()
        self.common: list[bytes] = []
        self.raised = array("q")
        self.by_raised = array("q")  # sorted composite keys, see SEQ_BITS
        self.common_served = Served()

    def add(self, siem: bytes, common: bytes, created_ms: int, raised_ms: int) -> int:
        seq = self.append(siem, created_ms)
        self.common.append(common)
        self.raised.append(raised_ms)
        key = (raised_ms << SEQ_BITS) | seq
        if not self.by_raised or key > self.by_raised[-1]:
            self.by_raised.append(key)
        else:  # a late alert: it belongs before alerts raised after it
            self.by_raised.insert(bisect.bisect_left(self.by_raised, key), key)
        return seq

    def raised_range(self, from_ms: int | None, to_ms: int | None) -> tuple[int, int]:
        """Positions in ``by_raised`` of the alerts raised in [from_ms, to_ms)."""
        lo = 0 if from_ms is None else bisect.bisect_left(self.by_raised, from_ms << SEQ_BITS)
        hi = (
            len(self.by_raised)
            if to_ms is None
            else bisect.bisect_left(self.by_raised, to_ms << SEQ_BITS)
        )
        return lo, max(lo, hi)
