"""The order book of one market: price levels in time priority, nothing about money.

Layout: a dict price -> Level for each side plus a sorted list of live prices. The best
price is one index away, inserting a new level is a ``bisect.insort`` on a short list, and
each level is a deque in time priority. Cancels are lazy: a cancelled order is marked dead
and skipped (and popped) when matching reaches it, so a cancel costs O(1) and the FIFO
never has to be searched; a level holding more dead entries than live orders (plus
``LEVEL_SLACK``) is rebuilt. The dead entries are not state (a restart holds none), so every
walk that counts orders against a bound counts live ones only. Priority after a restart is rebuilt from each order's ``seq``
(a chain-wide counter), so a reopened node holds the very same queue order.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from typing import Final

from state.byexpiry import ByExpiry

#: ``Level.floor`` of a level without good-til-time orders (above any block time)
NO_EXPIRY: Final = 1 << 63


class Order:
    """A resting (or about to rest) limit order. Mutable: ``size`` shrinks as it fills."""

    __slots__ = (
        "cloid", "expires_at", "is_buy", "live", "market", "oid", "orig_size", "owner",
        "price", "reduce_only", "seq", "size", "tif",
    )

    def __init__(
        self,
        oid: int,
        seq: int,
        market: int,
        owner: bytes,
        is_buy: bool,
        price: int,
        size: int,
        orig_size: int,
        tif: int,
        reduce_only: bool,
        cloid: bytes | None,
        expires_at: int = 0,
    ) -> None:
        self.oid = oid
        self.seq = seq
        self.market = market
        self.owner = owner
        self.is_buy = is_buy
        self.price = price
        self.size = size
        self.orig_size = orig_size
        self.tif = tif
        self.reduce_only = reduce_only
        self.cloid = cloid
        self.expires_at = expires_at  # good-til-time: last block time (ms) it may rest at; 0 = none
        self.live = True

    def record(self) -> list[object]:
        """The persisted form (canonical positional array). The expiry is appended only
        when set, so an order without one keeps the 11-field record it always had."""
        rec: list[object] = [
            self.oid, self.seq, self.market, self.owner, self.is_buy, self.price, self.size,
            self.orig_size, self.tif, self.reduce_only, self.cloid,
        ]
        if self.expires_at:
            rec.append(self.expires_at)
        return rec

    @classmethod
    def from_record(cls, r: list[object]) -> Order:
        """Accepts the 11-field record (no expiry) and the 12-field one."""
        return cls(*r)  # type: ignore[arg-type]


#: dead entries a level's deque may hold beyond its live orders before it is rebuilt
#: (``Book._unlink``): cancelled and filled orders leave the deque only from its front
LEVEL_SLACK: Final = 32


def _no_sums() -> list[int]:
    return [0, 0, 0]


class Level:
    __slots__ = ("by_expiry", "count", "cut", "dead", "firm", "floor", "orders", "price", "total", "xcount", "xfirm",
                 "xtotal")

    def __init__(self, price: int) -> None:
        self.price = price
        # the live orders in time priority, and dead ones (``live`` False) not dropped yet:
        # derived, so nothing that decides a result may depend on the dead ones (a restarted
        # node rebuilds the deque from live orders only); ``dead`` counts them, ``count``
        # the live ones, and ``Book._unlink`` keeps dead <= count + LEVEL_SLACK
        self.orders: deque[Order] = deque()
        self.count = 0
        self.dead = 0
        self.total = 0  # live resting size at this price
        # the part of ``total`` that is not reduce-only: a stack of reduce-only orders can fill
        # at most its owner's position (each is clipped, later ones cancelled, when reached), so
        # only this part is depth the impact prices (mark, funding premium) may count
        self.firm = 0
        # derived, a lower bound on the expiries of its good-til-time orders: a level whose
        # floor is not past the block time holds no expired order (state/lapse.py)
        self.floor = NO_EXPIRY
        # derived (state/lapse.py ``count_expired``): the live good-til-time orders whose
        # expiry is at or after ``cut``, by expiry (state/byexpiry.py): [count, size,
        # not-reduce-only size]; and the same sums of the live orders whose expiry is before
        # ``cut``, counted as expired
        self.by_expiry: ByExpiry[list[int]] = ByExpiry()
        self.cut = 0
        self.xcount = 0
        self.xtotal = 0
        self.xfirm = 0

    def _expiry_sums(self, order: Order, n: int, size: int) -> None:
        """Add ``n`` orders and ``size`` lots of ``order``'s kind to the sums its expiry
        belongs in (``n``, ``size`` negative to take away)."""
        e = order.expires_at
        firm = 0 if order.reduce_only else size
        if e < self.cut:
            self.xcount += n
            self.xtotal += size
            self.xfirm += firm
            return
        b = self.by_expiry.bucket(e, _no_sums)
        b[0] += n
        b[1] += size
        b[2] += firm
        if not b[0]:
            del self.by_expiry.buckets[e]

    def head(self) -> Order | None:
        """The oldest live order, discarding dead ones it passes."""
        orders = self.orders
        while orders:
            first = orders[0]
            if first.live:
                return first
            orders.popleft()
            self.dead -= 1
        return None


class Book:
    """Bids and asks of one market. Prices are ticks, sizes lots."""

    __slots__ = ("ask_prices", "asks", "bid_prices", "bids", "market", "orders")

    def __init__(self, market: int) -> None:
        self.market = market
        self.bids: dict[int, Level] = {}
        self.asks: dict[int, Level] = {}
        self.bid_prices: list[int] = []  # ascending; best bid is the last
        self.ask_prices: list[int] = []  # ascending; best ask is the first
        self.orders: dict[int, Order] = {}

    # ------------------------------------------------------------------ reads
    def best_bid(self) -> int | None:
        return self.bid_prices[-1] if self.bid_prices else None

    def best_ask(self) -> int | None:
        return self.ask_prices[0] if self.ask_prices else None

    def is_crossed(self) -> bool:
        bb, ba = self.best_bid(), self.best_ask()
        return bb is not None and ba is not None and bb >= ba

    def crosses(self, is_buy: bool, price: int) -> bool:
        """Would an order at ``price`` on this side trade against the opposite side now?"""
        if is_buy:
            return bool(self.ask_prices) and price >= self.ask_prices[0]
        return bool(self.bid_prices) and price <= self.bid_prices[-1]

    def best_level(self, taker_is_buy: bool) -> Level | None:
        """The best opposite level for a taker on the given side."""
        if taker_is_buy:
            return self.asks[self.ask_prices[0]] if self.ask_prices else None
        return self.bids[self.bid_prices[-1]] if self.bid_prices else None

    def iter_orders(self) -> Iterator[Order]:
        """All live orders in a deterministic order (by oid)."""
        for oid in sorted(self.orders):
            yield self.orders[oid]

    # ------------------------------------------------------------------ writes
    def add(self, order: Order) -> None:
        """Rest ``order`` at the back of its price level."""
        side, prices = (self.bids, self.bid_prices) if order.is_buy else (self.asks, self.ask_prices)
        level = side.get(order.price)
        if level is None:
            level = side[order.price] = Level(order.price)
            bisect.insort(prices, order.price)
        level.orders.append(order)
        level.count += 1
        if order.expires_at:
            if order.expires_at < level.floor:
                level.floor = order.expires_at
            level._expiry_sums(order, 1, order.size)
        level.total += order.size
        if not order.reduce_only:
            level.firm += order.size
        self.orders[order.oid] = order

    def reduce(self, order: Order, by: int) -> None:
        """Shrink a resting order in place (a fill or a size-down modify keeps its priority)."""
        order.size -= by
        side = self.bids if order.is_buy else self.asks
        level = side[order.price]
        level.total -= by
        if not order.reduce_only:
            level.firm -= by
        if order.expires_at:
            level._expiry_sums(order, -1 if order.size == 0 else 0, -by)
        if order.size == 0:
            self._unlink(order)

    def remove(self, order: Order) -> None:
        """Take a resting order off the book (cancel, or fully filled)."""
        side = self.bids if order.is_buy else self.asks
        level = side[order.price]
        level.total -= order.size
        if not order.reduce_only:
            level.firm -= order.size
        if order.expires_at:
            level._expiry_sums(order, -1, -order.size)
        self._unlink(order)

    def _unlink(self, order: Order) -> None:
        order.live = False
        del self.orders[order.oid]
        side, prices = (self.bids, self.bid_prices) if order.is_buy else (self.asks, self.ask_prices)
        level = side[order.price]
        level.count -= 1
        level.dead += 1
        if level.total == 0 and level.head() is None:
            del side[order.price]
            i = bisect.bisect_left(prices, order.price)
            del prices[i]
        elif level.dead > level.count + LEVEL_SLACK:
            # orders cancelled behind a live head stay in the deque: placing and cancelling
            # behind one long-lived order grew it (memory, and every walk of the level)
            # without bound; rebuilt in the same order, amortized O(1) per removal
            level.orders = deque(o for o in level.orders if o.live)
            level.dead = 0
