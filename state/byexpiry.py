"""Buckets keyed by an expiry time, with a min-heap of their keys: what expired before a
block time is taken bucket by bucket, each bucket once, however many entries it holds.

Why one structure: a price level keeps its good-til-time orders' sums per expiry
(state/book.py ``Level``) and an account keeps its good-til-time orders' ids per expiry
(state/account.py ``Expiries``), so that a backlog of orders expired at one moment costs
their readers one heap pop, not one visit per order (state/lapse.py). Both are derived
(rebuilt on load) and never change a result.

A bucket whose entries all left is deleted by its owner; its heap key stays behind and is
skipped when popped. Stale keys are bounded: once the heap holds more than twice the
buckets (plus ``SLACK``), it is rebuilt from the live keys, amortized O(1) a push.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import Final, Generic, TypeVar

#: stale heap keys tolerated beyond the live buckets' count before the heap is rebuilt
SLACK: Final = 32

B = TypeVar("B")


class ByExpiry(Generic[B]):
    __slots__ = ("buckets", "heap")

    def __init__(self) -> None:
        self.buckets: dict[int, B] = {}
        self.heap: list[int] = []  # the buckets' keys, and stale keys of deleted ones

    def bucket(self, expiry: int, make: Callable[[], B]) -> B:
        """The bucket of ``expiry``, made (``make()``) and its key pushed if there is none."""
        b = self.buckets.get(expiry)
        if b is None:
            b = self.buckets[expiry] = make()
            heapq.heappush(self.heap, expiry)
            if len(self.heap) > 2 * len(self.buckets) + SLACK:
                self.heap = sorted(self.buckets)  # (sorted: a heap)
        return b

    def pop_before(self, now: int) -> Iterator[B]:
        """Take out, earliest first, the buckets whose expiry is before ``now``."""
        heap, buckets = self.heap, self.buckets
        while heap and heap[0] < now:
            b = buckets.pop(heapq.heappop(heap), None)
            if b is not None:
                yield b
