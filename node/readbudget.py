"""A budget of event-loop time for clients' reads.

``/info`` answers, the native history routes and the websocket's snapshots run on the
event loop that also runs consensus: a read walking 2,000 history rows and encoding a few
hundred KB holds it for tens of ms, and a client asking for one 50 times a second took
validators from ~10 blocks a second to ~3. The budget is a token bucket in seconds of loop
time: reads may spend ``share`` of each second (with a burst of ``burst_s``); a read that
finds the bucket empty is refused at once (HTTP 429, ``NOT_READY``, retryable) without
running, so the loop keeps the rest for consensus, admission and the other routes.
What a read cost is measured after it ran and charged then (the bucket may go negative:
the next reads wait until it refills)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_SHARE = 0.25  # at most a quarter of the loop's time on reads, sustained
DEFAULT_BURST_S = 0.25
REFUSED = "this node's reads are over their share of its time; retry later"


class OverBudget(Exception):
    """A read refused without running (``ReadBudget.run``): ``str()`` is ``REFUSED``."""

    def __init__(self) -> None:
        super().__init__(REFUSED)


class ReadBudget:
    """A token bucket of loop seconds: ``share`` of each second, ``burst_s`` at most."""

    __slots__ = ("_at", "_tokens", "burst_s", "clock", "refused", "share", "spent_s")

    def __init__(self, share: float = DEFAULT_SHARE, burst_s: float = DEFAULT_BURST_S,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.share = share
        self.burst_s = burst_s
        self.clock = clock
        self._tokens = burst_s
        self._at = clock()
        self.refused = 0
        self.spent_s = 0.0

    def _refill(self) -> float:
        now = self.clock()
        self._tokens = min(self.burst_s, self._tokens + (now - self._at) * self.share)
        self._at = now
        return now

    def may_read(self) -> bool:
        """False: refuse this read now (the loop spent its share on reads lately)."""
        self._refill()
        if self._tokens > 0:
            return True
        self.refused += 1
        return False

    def charge(self, started: float) -> None:
        """A read that began at ``started`` (this budget's clock) has finished."""
        now = self._refill()
        cost = max(0.0, now - started)
        self.spent_s += cost
        self._tokens -= cost

    def run(self, read: Callable[[], T]) -> T:
        """``read()``, its loop time charged to the budget; ``OverBudget`` without running
        it when the share is spent (the one way both /info and /ws spend it)."""
        if not self.may_read():
            raise OverBudget
        started = self.clock()
        try:
            return read()
        finally:
            self.charge(started)
