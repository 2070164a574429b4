"""Accounts: one signed balance per asset (pool position + idle), perp positions, settings.

Perp positions use average-entry accounting: ``entry_notional`` is the quote value paid
for the open size; reducing realizes PnL into the quote balance. The part of the entry
notional that a reduction closes is rounded against the account (a long's cost basis up,
a short's down), and because the realized PnL is computed from that very same number, the
identity ``sum(quote balances) - sum(signed entry notionals)`` is exactly conserved by
every trade: no dust is created or destroyed (up to the lending pool's share rounding,
which is always in the protocol's favour, see state/lending.py).

A position also remembers the market's cumulative funding index and funding epoch at its
last settlement (state/funding.py settles funding and marks it to market lazily, on the
next touch). Balances are kept by state/lending.py (``scaled``/``idle``); ``balance()`` and
``credit()`` go through the shared ``Pools``.
"""

from __future__ import annotations

from typing import Any, Final

from state.byexpiry import ByExpiry
from state.lending import Pools

#: the reserved sub-account name prefix of an isolated-margin account (state/isolated.py):
#: here, beside the account, because state/lapse.py resolves an isolated account's master
#: from it and must not import the transaction handlers
ISOLATED_PREFIX: Final = "isolated:"


class Position:
    __slots__ = ("entry_notional", "epoch", "funding_index", "realized_pnl", "size")

    def __init__(self, size: int = 0, entry_notional: int = 0, realized_pnl: int = 0,
                 funding_index: int = 0, epoch: int = 0) -> None:
        # ranges: |size| * max_price_ticks * tick_value <= 2^60 for positions opened by orders
        # (units.MAX_POSITION_VALUE), so entry_notional <= 1.5 * 2^60 (the mark is at most
        # 1.5x the top price); positions moved whole by liquidation are outside that check
        self.size = size  # signed lots: > 0 long, < 0 short
        self.entry_notional = entry_notional  # quote units, >= 0
        self.realized_pnl = realized_pnl  # cumulative, informational
        self.funding_index = funding_index  # market's cumulative funding (quote units per lot) last settled
        self.epoch = epoch  # funding epoch of the last mark-to-market settlement

    def signed_entry(self) -> int:
        return self.entry_notional if self.size >= 0 else -self.entry_notional

    def unrealized_pnl(self, price: int, tick_value: int) -> int:
        return self.size * price * tick_value - self.signed_entry()

    def apply_fill(self, delta: int, price: int, tick_value: int) -> int:
        """Trade ``delta`` lots (signed) at ``price`` ticks; returns the PnL realized by it."""
        return self.apply_trade(delta, abs(delta) * price * tick_value)

    def apply_trade(self, delta: int, notional: int) -> int:
        """Trade ``delta`` lots (signed) for ``notional`` quote units in total; returns the
        realized PnL. Liquidation transfers and ADL use it with off-tick prices."""
        size = self.size
        if size == 0 or (size > 0) == (delta > 0):
            self.size = size + delta
            self.entry_notional += notional
            return 0
        closed = min(abs(delta), abs(size))
        if closed == abs(delta):
            closed_value = notional
        elif size > 0:  # a long sells: the part of the proceeds that closes rounds down
            closed_value = notional * closed // abs(delta)
        else:  # a short buys back: the part of the cost that closes rounds up
            closed_value = -(-notional * closed // abs(delta))
        if size > 0:  # closing a long: cost basis rounds up, so the credit rounds down
            basis = -(-self.entry_notional * closed // size)
            pnl = closed_value - basis
        else:  # closing a short: proceeds basis rounds down
            basis = self.entry_notional * closed // -size
            pnl = basis - closed_value
        self.entry_notional -= basis
        self.size = size + (closed if size < 0 else -closed)
        opened = abs(delta) - closed
        if opened:
            self.size = opened if delta > 0 else -opened
            self.entry_notional = notional - closed_value
        self.realized_pnl += pnl
        return pnl

    def is_blank(self) -> bool:
        return not (self.size or self.entry_notional or self.realized_pnl)

    def record(self) -> list[int]:
        return [self.size, self.entry_notional, self.realized_pnl, self.funding_index, self.epoch]


class Expiries:
    """Derived: an account's open good-til-time orders by expiry, so that how many of them
    have expired, and which, is known without reading its other orders (state/lapse.py
    ``expired_of``): the oids per expiry not yet passed (state/byexpiry.py) and the oids
    whose expiry a block time has passed. Rebuilt on load from the orders."""

    __slots__ = ("by_expiry", "expired")

    def __init__(self) -> None:
        self.by_expiry: ByExpiry[set[int]] = ByExpiry()
        self.expired: set[int] = set()

    def add(self, oid: int, expires_at: int) -> None:
        self.by_expiry.bucket(expires_at, set).add(oid)

    def discard(self, oid: int, expires_at: int) -> None:
        """The order left the book (cancelled, filled)."""
        if oid in self.expired:
            self.expired.discard(oid)
            return
        buckets = self.by_expiry.buckets
        b = buckets.get(expires_at)
        if b is not None:
            b.discard(oid)
            if not b:
                del buckets[expires_at]

    def advance(self, now: int) -> set[int]:
        """The oids whose expiry is before ``now`` (moved over once per expiry)."""
        for b in self.by_expiry.pop_before(now):
            self.expired |= b
        return self.expired


class Account:
    __slots__ = (
        "address", "cloids", "dead_man", "expiries", "idle", "lend_off", "leverage", "open_orders", "orders", "pools",
        "positions", "scaled", "triggers", "unwind", "watch",
    )

    def __init__(self, address: bytes, pools: Pools) -> None:
        self.address = address
        self.pools = pools
        self.scaled: dict[int, int] = {}  # asset -> signed pool shares (see state/lending.py)
        self.idle: dict[int, int] = {}  # asset -> amount held outside the pool
        self.lend_off: set[int] = set()  # assets with auto-lending turned off
        self.positions: dict[int, Position] = {}  # perp market -> position
        self.unwind: tuple[int, ...] = ()  # markets, in the order the account wants them liquidated
        self.leverage: dict[int, int] = {}  # derivative market -> leverage chosen below the market's max
        self.watch: list[Any] | None = None  # liquidation-watch arming (state/watch.py)
        # dead-man switch (state/lifetimes.py): [deadline ms (0 = none), UTC day, sets that day]
        self.dead_man: list[int] | None = None
        self.open_orders: dict[int, int] = {}  # oid -> market (derived from the books)
        self.cloids: dict[bytes, int] = {}  # cloid -> oid of an open or trigger order (derived)
        self.triggers: dict[int, int] = {}  # oid -> market of a waiting trigger order (derived)
        # derived: its open good-til-time orders by expiry (None until it rests one)
        self.expiries: Expiries | None = None
        # market -> [bid lots, bid notional, ask lots, ask notional] of open orders (derived)
        self.orders: dict[int, list[int]] = {}

    def balance(self, asset: int) -> int:
        """The signed balance: negative means borrowed."""
        return self.pools.real(self, asset)

    @property
    def balances(self) -> dict[int, int]:
        """Every non-zero signed balance (a view; write through ``credit``)."""
        assets = sorted(set(self.scaled) | set(self.idle))
        out = {a: self.pools.real(self, a) for a in assets}
        return {a: v for a, v in out.items() if v}

    def credit(self, asset: int, amount: int) -> None:
        self.pools.credit(self, asset, amount)

    def set_unwind(self, markets: tuple[int, ...]) -> None:
        """The order in which a liquidation unwinds the account's legs (``set_unwind_order``)."""
        self.unwind = markets
        self.pools.tracker.accounts.add(self.address)

    def set_leverage(self, market: int, leverage: int | None) -> None:
        """The leverage the account allows itself on ``market`` (``update_leverage``); None
        restores the market's maximum."""
        if leverage is None:
            self.leverage.pop(market, None)
        else:
            self.leverage[market] = leverage
        self.pools.tracker.accounts.add(self.address)

    def set_auto_lend(self, asset: int, on: bool) -> None:
        """Record whether credits of ``asset`` go to the pool; the caller moves the funds
        (``Pools.move_idle_to_pool`` / ``move_supply_to_idle``)."""
        if on:
            self.lend_off.discard(asset)
        else:
            self.lend_off.add(asset)
        self.pools.tracker.accounts.add(self.address)

    def set_dead_man(self, value: list[int] | None) -> None:
        """The dead-man switch's [deadline_ms, day, count] (``schedule_cancel``); None = never set."""
        self.dead_man = value
        self.pools.tracker.accounts.add(self.address)

    def position(self, market: int) -> Position:
        pos = self.positions.get(market)
        if pos is None:
            pos = self.positions[market] = Position()
        return pos

    def has_liabilities(self) -> bool:
        """A debt or a perp position: only such an account can ever owe the protocol."""
        return any(s < 0 for s in self.scaled.values()) or any(p.size for p in self.positions.values())

    def add_order(self, market: int, is_buy: bool, size: int, notional: int) -> None:
        agg = self.orders.get(market)
        if agg is None:
            agg = self.orders[market] = [0, 0, 0, 0]
        i = 0 if is_buy else 2
        agg[i] += size
        agg[i + 1] += notional
        if not (agg[0] or agg[2]):
            del self.orders[market]

    def is_empty(self) -> bool:
        return (
            not self.scaled
            and not self.idle
            and not self.lend_off
            and not self.unwind
            and not self.leverage
            and all(p.is_blank() for p in self.positions.values())
            and not self.open_orders
            and self.dead_man is None
            and not self.triggers
        )

    def record(self) -> list[object]:
        """Persisted form. Open orders, cloids and order aggregates are rebuilt from the books;
        the watch arming is a record of its own (``records.WATCH``): most blocks that change
        an account's balances keep its arming, and it was half of this record's bytes. The
        dead-man switch is a 5th element, present only once the account has used it."""
        scaled, idle = self.scaled, self.idle
        assets = sorted(scaled.keys() | idle.keys())
        rec: list[object] = [
            [[a, idle.get(a, 0), scaled.get(a, 0)] for a in assets],
            [[m, *p.record()] for m, p in sorted(self.positions.items()) if not p.is_blank()],
            sorted(self.lend_off),
            list(self.unwind),
        ]
        # later settings are appended only when set, so most records stay short: [4] leverage
        # per market (present, maybe empty, when [5] is), [5] the dead-man switch
        if self.leverage or self.dead_man is not None:
            rec.append([[m, lev] for m, lev in sorted(self.leverage.items())])
        if self.dead_man is not None:
            rec.append(list(self.dead_man))
        return rec

    @classmethod
    def from_record(cls, address: bytes, pools: Pools, r: list[Any]) -> Account:
        acct = cls(address, pools)
        for a, idle, scaled in r[0]:
            if idle:
                acct.idle[a] = idle
            if scaled:
                acct.scaled[a] = scaled
        acct.positions = {m: Position(s, e, p, f, ep) for m, s, e, p, f, ep in r[1]}
        acct.lend_off = set(r[2])
        acct.unwind = tuple(r[3])
        if len(r) > 4:
            acct.leverage = {m: lev for m, lev in r[4]}
        if len(r) > 5 and r[5]:
            acct.dead_man = [int(x) for x in r[5]]
        return acct
