"""The waiting trigger orders' storage: the ``Trigger`` record, the per-market index, and
the functions that add, remove and cancel triggers and grow OCO children.

Split from state/triggers.py (the actions and the firing, which call into matching) so
that matching can call the OCO parent-fill hooks without an import cycle. See
state/triggers.py for the semantics.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

from state.genesis import MarketSpec
from state.receipts import Cancelled
from state.units import PPM

if TYPE_CHECKING:
    from state.account import Account
    from state.exchange import Exchange

TP = 0
SL = 1


class Trigger:
    """One waiting trigger order (a ``records.TRIGGER`` record).

    ``size`` is the lots it will trade (an OCO child's grows as its parent fills; a position
    TP/SL has ``whole`` set and size 0). ``parent`` is the oid of the order whose fills
    activate it (0: none)."""

    __slots__ = ("cloid", "is_buy", "is_market", "limit", "market", "oid", "owner", "parent", "reduce_only",
                 "size", "tpsl", "trigger", "whole")

    def __init__(self, oid: int, market: int, owner: bytes, is_buy: bool, size: int, trigger: int, tpsl: int,
                 is_market: bool, limit: int, reduce_only: bool, cloid: bytes | None, whole: bool = False,
                 parent: int = 0) -> None:
        self.oid = oid
        self.market = market
        self.owner = owner
        self.is_buy = is_buy
        self.size = size  # lots, 0..MAX (bounded by the order notional cap at placement)
        self.trigger = trigger  # ticks, 1..max_price_ticks
        self.tpsl = tpsl  # TP or SL
        self.is_market = is_market
        self.limit = limit  # ticks, 0 for a market trigger
        self.reduce_only = reduce_only
        self.cloid = cloid
        self.whole = whole  # position TP/SL: the whole position when it fires
        self.parent = parent  # oid of the parent order of an OCO child, 0 for none

    def rises(self) -> bool:
        """True: fires when the reference rises to the trigger; False: when it falls to it."""
        return (self.tpsl == SL) == self.is_buy

    def active(self) -> bool:
        return self.whole or self.size > 0

    def counts_margin(self) -> bool:
        return not self.reduce_only and self.size > 0

    def record(self) -> list[Any]:
        return [self.market, self.owner, self.is_buy, self.size, self.trigger, self.tpsl, self.is_market,
                self.limit, self.reduce_only, self.cloid, self.whole, self.parent]

    @classmethod
    def from_record(cls, oid: int, r: list[Any]) -> Trigger:
        return cls(oid, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11])


class TriggerIndex:
    """Per market: the two sorted (trigger ticks, oid) lists (see the module doc)."""

    __slots__ = ("falls", "rises")

    def __init__(self) -> None:
        self.rises: list[tuple[int, int]] = []
        self.falls: list[tuple[int, int]] = []


# ---------------------------------------------------------------------------------- helpers
def reference_price(ex: Exchange, market: MarketSpec) -> int:
    if market.is_derivative:  # perps and futures: the mark
        return ex.mstate[market.market_id].mark
    return ex.index_px[market.base]


def slipped_ticks(market: MarketSpec, price: int, is_buy: bool, slippage_ppm: int) -> int:
    """``price`` (price units) moved by the slippage against the order, in ticks: a buy's
    rounded up, a sell's down, clamped to 1..max_price_ticks."""
    if is_buy:
        ticks = -(-price * (PPM + slippage_ppm) // (PPM * market.tick_size))
    else:
        ticks = price * (PPM - slippage_ppm) // (PPM * market.tick_size)
    return min(max(ticks, 1), market.max_price_ticks)


def worst_ticks(ex: Exchange, market: MarketSpec, t: Trigger) -> int:
    """The price (ticks) a trigger's margin is counted at: its limit, or for a market trigger
    the trigger price moved by the slippage."""
    if not t.is_market:
        return t.limit
    return slipped_ticks(market, t.trigger * market.tick_size, t.is_buy, ex.genesis.trigger_slippage_ppm)


def _index(ex: Exchange, t: Trigger) -> None:
    idx = ex.trigger_index[t.market]
    bisect.insort(idx.rises if t.rises() else idx.falls, (t.trigger, t.oid))


def _unindex(ex: Exchange, t: Trigger) -> None:
    idx = ex.trigger_index[t.market]
    lst = idx.rises if t.rises() else idx.falls
    i = bisect.bisect_left(lst, (t.trigger, t.oid))
    if i < len(lst) and lst[i] == (t.trigger, t.oid):
        del lst[i]


def margin(ex: Exchange, acct: Account, t: Trigger, sign: int) -> None:
    if t.counts_margin():
        market = ex.markets[t.market]
        acct.add_order(t.market, t.is_buy, sign * t.size, sign * worst_ticks(ex, market, t) * t.size * market.tick_value)


def add_trigger(ex: Exchange, acct: Account, t: Trigger) -> None:
    """Store a new (already checked) trigger: record, index, account maps, margin."""
    ex.triggers[t.oid] = t
    if not acct.triggers:  # Account.is_empty() reads the triggers: whether its record exists may change
        ex.touch(acct)
    acct.triggers[t.oid] = t.market
    if t.cloid is not None:
        acct.cloids[t.cloid] = t.oid
    if t.active():
        _index(ex, t)
    margin(ex, acct, t, 1)
    if t.parent:
        ex.trigger_groups.setdefault(t.parent, []).append(t.oid)
    ex.tracker.triggers[t.oid] = t


def forget(ex: Exchange, t: Trigger) -> None:
    """Take a trigger out of every structure (no event)."""
    acct = ex.accounts[t.owner]
    if t.active():
        _unindex(ex, t)
    margin(ex, acct, t, -1)
    del ex.triggers[t.oid]
    acct.triggers.pop(t.oid, None)
    if not acct.triggers:  # its last trigger: an account holding nothing else loses its record
        ex.touch(acct)
    if t.cloid is not None and acct.cloids.get(t.cloid) == t.oid:
        del acct.cloids[t.cloid]
    if t.parent:
        kids = ex.trigger_groups.get(t.parent)
        if kids is not None and t.oid in kids:
            kids.remove(t.oid)
            if not kids:
                del ex.trigger_groups[t.parent]
    ex.tracker.triggers[t.oid] = None


def cancel_trigger(ex: Exchange, t: Trigger, reason: str) -> None:
    forget(ex, t)
    ex.emit(Cancelled(t.market, t.oid, t.owner, t.size, reason))


def cancel_account_triggers(ex: Exchange, acct: Account, reason: str, market: int | None = None) -> int:
    """Cancel the account's triggers (of ``market``, or all), in oid order; returns how many.
    For cancel-all, a dead-man switch, a liquidation."""
    oids = sorted(oid for oid, m in acct.triggers.items() if market is None or m == market)
    for oid in oids:
        cancel_trigger(ex, ex.triggers[oid], reason)
    return len(oids)


def cancel_market_triggers(ex: Exchange, market_id: int, reason: str) -> int:
    """Cancel every trigger of a market (a dated future's expiry), in oid order."""
    oids = sorted(oid for oid, t in ex.triggers.items() if t.market == market_id)
    for oid in oids:
        cancel_trigger(ex, ex.triggers[oid], reason)
    return len(oids)


def find_trigger(ex: Exchange, acct: Account, market_id: int, oid: int | None, cloid: bytes | None) -> Trigger | None:
    """The account's trigger in ``market_id`` named by oid or cloid, or None."""
    if oid is None:
        if cloid is None:
            return None
        oid = acct.cloids.get(cloid)
        if oid is None:
            return None
    t = ex.triggers.get(oid)
    if t is None or t.owner != acct.address or t.market != market_id:
        return None
    return t


# ---------------------------------------------------------------------------------- OCO
def on_parent_fill(ex: Exchange, parent_oid: int, qty: int) -> None:
    """A parent order filled ``qty`` lots: its children grow by as much and go live.
    (Called from matching guarded by ``oid in ex.trigger_groups``.)"""
    for oid in sorted(ex.trigger_groups.get(parent_oid, ())):
        t = ex.triggers[oid]
        acct = ex.accounts[t.owner]
        if t.active():
            _unindex(ex, t)
        margin(ex, acct, t, -1)
        t.size += qty
        margin(ex, acct, t, 1)  # (a spot child: counted from now on, it sells what the parent bought)
        _index(ex, t)
        ex.tracker.triggers[oid] = t


def on_parent_gone(ex: Exchange, parent_oid: int) -> None:
    """The parent left the book unfilled or partly filled: children still at size 0 go
    ("parent_cancelled"); partly activated ones keep their size."""
    for oid in sorted(ex.trigger_groups.get(parent_oid, ())):
        t = ex.triggers[oid]
        if t.size == 0:
            cancel_trigger(ex, t, "parent_cancelled")
