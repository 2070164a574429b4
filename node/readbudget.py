"""A budget of event-loop time for clients' reads, node-wide and per client.

``/info`` answers, the native history routes, the websocket's snapshots and its per-block
pushes run on the event loop that also runs consensus: a read walking 2,000 history rows
and encoding a few hundred KB holds it for tens of ms, and a client asking for one 50
times a second took validators from ~10 blocks a second to ~3. The budget is a token
bucket in seconds of loop time: reads may spend ``share`` of each second (with a burst of
``burst_s``); a read that finds the bucket empty is refused at once (HTTP 429,
``NOT_READY``, retryable) without running, so the loop keeps the rest for consensus,
admission and the other routes. What a read cost is measured after it ran and charged then
(the bucket may go negative: the next reads wait until it refills).

The node-wide bucket alone let one client spend all of it and starve every other reader, so
each client (its remote address) also has a bucket of ``client_share`` of the loop: a
client over its own share is refused (429, ``RATE_LIMITED``) while the others are served.
At most ``max_clients`` clients are tracked, the least recently seen forgotten first (a
forgotten client starts again with a full bucket: the node-wide bucket still bounds them
all). ``exempt`` addresses (loopback by default, docs/operator.md says why) spend only the
node-wide bucket."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from state.errors import Code

T = TypeVar("T")

DEFAULT_SHARE = 0.25  # at most a quarter of the loop's time on reads, sustained
DEFAULT_BURST_S = 0.25
DEFAULT_CLIENT_SHARE = DEFAULT_SHARE / 4  # one client: a quarter of what reads may spend
DEFAULT_CLIENT_BURST_S = DEFAULT_BURST_S / 4
MAX_CLIENTS = 4096  # tracked per-client buckets (~150 bytes each)
LOOPBACK = ("127.0.0.1", "::1")
REFUSED = "this node's reads are over their share of its time; retry later"
CLIENT_REFUSED = "this client's reads are over its share of this node's time; retry later"
MIN_WAIT_S = 0.001


class OverBudget(Exception):
    """A read refused without running (``ReadBudget.run``): ``code`` is ``NOT_READY`` (the
    node's share is spent) or ``RATE_LIMITED`` (this client's share is)."""

    def __init__(self, code: Code = Code.NOT_READY) -> None:
        super().__init__(CLIENT_REFUSED if code == Code.RATE_LIMITED else REFUSED)
        self.code = code


class Bucket:
    """Seconds of loop time: refills at ``rate`` per second up to ``burst``."""

    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at

    def refill(self, now: float, rate: float, burst: float) -> None:
        self.tokens = min(burst, self.tokens + (now - self.at) * rate)
        self.at = now

    def wait_s(self, rate: float) -> float:
        """How long until the bucket holds a positive amount again (0: it does now)."""
        return 0.0 if self.tokens > 0 else max(MIN_WAIT_S, -self.tokens / rate if rate > 0 else 1.0)


class ClientBuckets:
    """A token bucket per client, the ``max_clients`` most recently seen (the least recently
    seen forgotten first: a forgotten client starts again with a full bucket), refilling at
    ``rate`` up to ``burst``; ``exempt`` clients have none. What both per-client limits keep
    (the read shares here, the byte rate in node/submitlimit.py)."""

    __slots__ = ("_buckets", "burst", "exempt", "max_clients", "rate")

    def __init__(self, rate: float, burst: float, exempt: Iterable[str], max_clients: int) -> None:
        self.rate = rate
        self.burst = burst
        self.exempt = frozenset(exempt)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def get(self, client: str | None, now: float) -> Bucket | None:
        """``client``'s bucket, refilled to ``now``, now the most recently seen (None: exempt
        or unknown)."""
        if client is None or client in self.exempt:
            return None
        buckets = self._buckets
        bucket = buckets.get(client)
        if bucket is None:
            bucket = buckets[client] = Bucket(self.burst, now)
            if len(buckets) > self.max_clients:
                buckets.popitem(last=False)
        else:
            buckets.move_to_end(client)
            bucket.refill(now, self.rate, self.burst)
        return bucket


class ReadBudget:
    """The node-wide bucket (``share`` of each second, ``burst_s`` at most) and a bucket per
    client (``client_share``, ``client_burst_s``), see the module docstring."""

    __slots__ = ("_clients", "_node", "burst_s", "client_burst_s", "client_share", "clock", "exempt",
                 "max_clients", "refused", "refused_clients", "share", "spent_s")

    def __init__(self, share: float = DEFAULT_SHARE, burst_s: float = DEFAULT_BURST_S,
                 clock: Callable[[], float] = time.perf_counter, *,
                 client_share: float = DEFAULT_CLIENT_SHARE, client_burst_s: float = DEFAULT_CLIENT_BURST_S,
                 exempt: Iterable[str] = LOOPBACK, max_clients: int = MAX_CLIENTS) -> None:
        self.share = share
        self.burst_s = burst_s
        self.client_share = client_share
        self.client_burst_s = client_burst_s
        self.exempt = frozenset(exempt)
        self.max_clients = max_clients
        self.clock = clock
        self._node = Bucket(burst_s, clock())
        self._clients = ClientBuckets(client_share, client_burst_s, self.exempt, max_clients)
        self.refused = 0  # refusals because the node's share was spent
        self.refused_clients = 0  # refusals because one client's share was
        self.spent_s = 0.0

    @property
    def tracked_clients(self) -> int:
        return len(self._clients)

    def _client(self, client: str | None, now: float) -> Bucket | None:
        """``client``'s bucket, refilled, most recently seen (None: exempt or unknown)."""
        return self._clients.get(client, now)

    def _refill(self) -> float:
        now = self.clock()
        self._node.refill(now, self.share, self.burst_s)
        return now

    def refusal(self, client: str | None = None) -> Code | None:
        """None: ``client`` may read now; else the code to refuse it with (counted)."""
        now = self._refill()
        mine = self._client(client, now)
        if mine is not None and mine.tokens <= 0:
            self.refused_clients += 1
            return Code.RATE_LIMITED
        if self._node.tokens <= 0:
            self.refused += 1
            return Code.NOT_READY
        return None

    def may_read(self, client: str | None = None) -> bool:
        """False: refuse this read now (the loop, or this client, spent its share lately)."""
        return self.refusal(client) is None

    def wait_s(self, client: str | None = None) -> float:
        """How long work that cannot be refused (a websocket push) waits before it runs
        (0: now): until both the node's and ``client``'s buckets hold time again. Not a
        refusal: nothing is counted."""
        now = self._refill()
        mine = self._client(client, now)
        return max(self._node.wait_s(self.share), mine.wait_s(self.client_share) if mine is not None else 0.0)

    def charge(self, started: float, client: str | None = None) -> None:
        """A read that began at ``started`` (this budget's clock) has finished."""
        now = self._refill()
        cost = max(0.0, now - started)
        self.spent_s += cost
        self._node.tokens -= cost
        mine = self._client(client, now)
        if mine is not None:
            mine.tokens -= cost

    def begin(self, client: str | None = None) -> float:
        """A read by ``client`` starts now: its start time for ``charge``; ``OverBudget`` when
        its share or the node's is spent (the one check /info, /ws and the heavy native
        routes pass: ``run``, or node/rpc.py's wrapper of an async handler)."""
        code = self.refusal(client)
        if code is not None:
            raise OverBudget(code)
        return self.clock()

    def run(self, read: Callable[[], T], client: str | None = None) -> T:
        """``read()``, its loop time charged to the node's and ``client``'s budgets;
        ``OverBudget`` without running it when either share is spent."""
        self.begin(client)
        return self.spend(client, read)

    async def wait_turn(self, client: str | None = None) -> None:
        """Sleep until work that cannot be refused (a websocket push) may run: both the
        node's and ``client``'s buckets hold time again (``wait_s``)."""
        while (wait := self.wait_s(client)) > 0:
            await asyncio.sleep(wait)

    def spend(self, client: str | None, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)``, its loop time charged to the node's and ``client``'s budgets,
        never refused (``run`` checks first; a push has waited its turn)."""
        started = self.clock()
        try:
            return work(*args)
        finally:
            self.charge(started, client)
