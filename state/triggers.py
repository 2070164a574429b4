"""Trigger orders: stop-loss and take-profit orders that wait outside the book.

A trigger order names a market, side, size (lots), trigger price (ticks), kind (tp or sl),
whether it becomes a market or a limit order, its limit price (ticks, 0 for a market
trigger), reduce-only and a cloid. It rests outside the book until the market's
*reference price* crosses its trigger, then enters matching as a new order with the SAME
oid, so a client follows one id from placement to fills.

Reference price: a derivative market's mark (``ex.mstate[m].mark``), a spot market's base
asset index price (``ex.index_px[base]``), both in price units; a trigger at ``t`` ticks
compares ``t * tick_size`` with it. A reference of 0 (no price) fires nothing.

Direction (as on Hyperliquid)::

    buy  stop-loss   (sl, buy)   and sell take-profit (tp, sell): fire when price >= trigger
    sell stop-loss   (sl, sell)  and buy  take-profit (tp, buy):  fire when price <= trigger

When it fires: a limit trigger becomes a GTC limit at its limit price (it may rest); a
market trigger becomes an IOC whose limit is the reference moved by the genesis
``orders.trigger_slippage_ppm`` (default 5%) against the order (a buy's rounded up to a
tick, a sell's down, clamped to 1..max_price_ticks). The new order goes through the normal
checks; a rejection removes the trigger and emits ``Cancelled(reason="trigger_rejected")``.

When in the block: in ``end_block`` right after the mark and leg prices are refreshed and
before the funding sample and the liquidation scan (state/machine.py). First the position
TP/SLs of accounts touched in the block whose position closed or flipped are cancelled
("position_closed"); then every trigger whose condition holds, across all markets, fires
in increasing oid order. A fired trigger no longer exists, so it fires at most once; a
trigger placed in a block can fire at that block's end.

Index: per market two lists sorted by (trigger ticks, oid): ``rises`` (fire when the price
rises to them) consumed from the low end while trigger <= price, and ``falls`` consumed
from the high end while trigger >= price, so a block costs O(fired + log n) per market.
Inactive triggers (an OCO child whose parent has not filled yet) are not indexed. The
index is derived and rebuilt by ``Exchange.load_records``.

Margin: a non-reduce-only trigger counts in the initial-margin check like a resting order
at its worst price (the limit price, or for a market trigger the trigger moved by the
slippage), through the account's open-order aggregates. A reduce-only trigger is not
counted: it can only shrink a position, which never needs margin. Triggers count toward
``max_open_orders_per_account`` with the book orders, and share ``acct.cloids``.

Position TP/SL: a reduce-only perp trigger of size 0 means "the whole position when it
fires". At most one TP and one SL per (account, market): a new one replaces the old
("replaced"). It is removed when the position closes or flips side.

The existing ``Modify`` does not reach trigger orders (it answers UNKNOWN_ORDER with a
pointer to ``modify_trigger``); ``ModifyTrigger`` replaces the prices and size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from state import lapse, lifetimes, matching, risk
from state.errors import Code, TxError
from state.events import Triggered
from state.genesis import MarketSpec
from state.receipts import OK, ActionResult, Cancelled
from state.trigbook import (
    SL,
    TP,
    Trigger,
    add_trigger,
    cancel_account_triggers,
    cancel_market_triggers,
    cancel_trigger,
    find_trigger,
    forget,
    margin,
    on_parent_fill,
    on_parent_gone,
    reference_price,
    slipped_ticks,
)
from state.tx import ModifyTrigger, PlaceGroup, PlaceOrder, PlaceTrigger, Tif
from state.units import MAX_ORDER_NOTIONAL

if TYPE_CHECKING:
    from state.account import Account
    from state.exchange import Exchange

__all__ = [
    "SL", "TP", "Trigger", "cancel_account_triggers", "cancel_market_triggers", "cancel_trigger", "find_trigger",
    "handle_modify_trigger", "handle_place_group", "handle_place_trigger", "on_parent_fill", "on_parent_gone", "run",
]


# ---------------------------------------------------------------------------------- checks
def _must_valid_prices(ex: Exchange, market: MarketSpec, trigger: int, is_market: bool, limit: int) -> None:
    """Trigger price 1..max_price_ticks; limit price > 0 iff not a market trigger; both
    inside the market's price band around the oracle (``matching.must_in_band``)."""
    top = market.max_price_ticks
    if trigger == 0 or trigger > top:
        raise TxError(Code.BAD_TRIGGER, f"trigger price must be 1..{top} ticks")
    if is_market:
        if limit != 0:
            raise TxError(Code.BAD_TRIGGER, "a market trigger has no limit price (send 0)")
    elif limit == 0 or limit > top:
        raise TxError(Code.BAD_TRIGGER, f"a limit trigger's limit price must be 1..{top} ticks")
    matching.must_in_band(ex, market, trigger)
    if limit:
        matching.must_in_band(ex, market, limit)


def _must_valid_spec(ex: Exchange, acct: Account, market: MarketSpec, is_buy: bool, size: int, trigger: int,
                     is_market: bool, limit: int, reduce_only: bool, whole: bool,
                     replacing: Trigger | None) -> None:
    """Every check of a new (or modified) trigger but the open-order count and the cloid."""
    _must_valid_prices(ex, market, trigger, is_market, limit)
    if reduce_only and not market.is_derivative:
        raise TxError(Code.REDUCE_ONLY_NOT_PERP, "reduce-only applies to perp markets")
    if whole:
        if not reduce_only:
            raise TxError(Code.BAD_TRIGGER, "a whole-position trigger (size 0) must be reduce-only")
        if risk.reduce_capacity(acct, market.market_id, is_buy) == 0:
            raise TxError(Code.REDUCE_ONLY_WOULD_INCREASE, "a position TP/SL needs a position on the other side")
        return
    if size == 0:
        raise TxError(Code.ZERO_SIZE, "order size is zero lots")
    price = trigger if is_market else limit
    t_worst = slipped_ticks(market, trigger * market.tick_size, is_buy, ex.genesis.trigger_slippage_ppm) \
        if is_market else limit
    notional = max(price, t_worst) * size * market.tick_value
    if notional > MAX_ORDER_NOTIONAL:
        raise TxError(Code.AMOUNT_OUT_OF_RANGE, f"order notional {notional} exceeds {MAX_ORDER_NOTIONAL}")
    if not reduce_only:
        if price * size * market.tick_value < market.min_notional:
            raise TxError(Code.BELOW_MIN_NOTIONAL, f"notional below minimum {market.min_notional}")
        if replacing is not None:
            # margin is checked with the old trigger's share removed (restored afterwards)
            margin(ex, acct, replacing, -1)
            try:
                risk.must_afford_order(ex, acct, market, is_buy, t_worst, size, later=True)
            finally:
                margin(ex, acct, replacing, 1)
        else:
            risk.must_afford_order(ex, acct, market, is_buy, t_worst, size, later=True)


def must_open_slot(ex: Exchange, acct: Account, freed: int = 0) -> None:
    limit = ex.genesis.max_open_orders_per_account
    if len(acct.open_orders) + len(acct.triggers) - freed >= limit:
        raise TxError(Code.TOO_MANY_OPEN_ORDERS, f"at most {limit} open orders (book and trigger orders)")


def _position_tpsl(ex: Exchange, acct: Account, market: int, tpsl: int) -> Trigger | None:
    for oid in sorted(acct.triggers):
        t = ex.triggers[oid]
        if t.market == market and t.whole and t.tpsl == tpsl:
            return t
    return None


# ---------------------------------------------------------------------------------- actions
def _check_place(ex: Exchange, acct: Account, a: PlaceTrigger, extra: int = 0) -> Trigger | None:
    """Every check of a new trigger (``extra`` more orders placed with it); returns the
    position TP/SL of the same kind it replaces, if any."""
    market = ex.market(a.market)
    whole = a.size == 0 and a.reduce_only
    _must_valid_spec(ex, acct, market, a.is_buy, a.size, a.trigger_price, a.is_market, a.limit_price,
                     a.reduce_only, whole, None)
    old = _position_tpsl(ex, acct, market.market_id, a.tpsl) if whole else None
    must_open_slot(ex, acct, (1 if old is not None else 0) - extra)
    if a.cloid is not None and a.cloid in acct.cloids and (old is None or old.cloid != a.cloid):
        raise TxError(Code.DUPLICATE_CLOID, "client order id already used by an open order")
    return old


def _place(ex: Exchange, acct: Account, a: PlaceTrigger, old: Trigger | None) -> ActionResult:
    if old is not None:
        cancel_trigger(ex, old, "replaced")
    t = Trigger(ex.next_order_id(), a.market, acct.address, a.is_buy, a.size, a.trigger_price, a.tpsl,
                a.is_market, a.limit_price, a.reduce_only, a.cloid, a.size == 0 and a.reduce_only)
    add_trigger(ex, acct, t)
    return ActionResult(OK, oid=t.oid, status="waiting")


def handle_place_trigger(ex: Exchange, acct: Account, a: PlaceTrigger) -> ActionResult:
    return _place(ex, acct, a, _check_place(ex, acct, a))


def handle_modify_trigger(ex: Exchange, acct: Account, a: ModifyTrigger) -> ActionResult:
    market = ex.market(a.market)
    t = find_trigger(ex, acct, a.market, a.oid, a.cloid)
    if t is None:
        raise TxError(Code.UNKNOWN_ORDER, "no such trigger order for this account in this market")
    if t.parent and a.size != t.size:
        raise TxError(Code.BAD_TRIGGER, "an OCO child's size follows its parent's fills; keep its size")
    if t.whole and a.size != 0:
        raise TxError(Code.BAD_TRIGGER, "a position TP/SL covers the whole position; its size stays 0")
    if t.parent:  # an OCO child: its size follows the parent (checked at placement); prices only
        _must_valid_prices(ex, market, a.trigger_price, t.is_market, a.limit_price)
    else:
        _must_valid_spec(ex, acct, market, t.is_buy, a.size, a.trigger_price, t.is_market, a.limit_price,
                         t.reduce_only, t.whole, t)
    forget(ex, t)
    t.trigger, t.limit, t.size = a.trigger_price, a.limit_price, a.size
    add_trigger(ex, acct, t)
    return ActionResult(OK, oid=t.oid, status="waiting")


def handle_place_group(ex: Exchange, acct: Account, a: PlaceGroup) -> tuple[ActionResult, ...]:
    """normalTpsl: the parent order, then its children, stored inactive (size 0) and grown
    by the parent's fills (``on_parent_fill``); positionTpsl: each child as a position
    TP/SL. One result per order: the parent's matching result, then "waiting" per child.
    Everything is checked before anything changes."""
    if a.grouping == 2:
        for c in a.children:
            if c.size != 0 or not c.reduce_only:
                raise TxError(Code.BAD_TRIGGER, "a position TP/SL has size 0 and is reduce-only")
            if c.market != a.children[0].market:
                raise TxError(Code.BAD_TRIGGER, "a group's orders are on one market")
        if len({c.cloid for c in a.children if c.cloid is not None}) < len([c for c in a.children if c.cloid]):
            raise TxError(Code.DUPLICATE_CLOID, "two orders of the group share a client order id")
        olds = [_check_place(ex, acct, c, len(a.children) - 1) for c in a.children]
        return tuple(_place(ex, acct, c, old) for c, old in zip(a.children, olds, strict=True))
    parent = a.parent
    assert parent is not None
    market, size = matching.must_valid_order(ex, acct, parent)
    cloids = [c.cloid for c in a.children if c.cloid is not None]
    if parent.cloid is not None:
        cloids.append(parent.cloid)
    if len(set(cloids)) != len(cloids) or any(c in acct.cloids for c in cloids):
        raise TxError(Code.DUPLICATE_CLOID, "client order id already used by an open order")
    limit = ex.genesis.max_open_orders_per_account
    if len(acct.open_orders) + len(acct.triggers) + 1 + len(a.children) > limit:
        raise TxError(Code.TOO_MANY_OPEN_ORDERS, f"at most {limit} open orders (book and trigger orders)")
    for c in a.children:
        if c.market != parent.market or c.is_buy == parent.is_buy:
            raise TxError(Code.BAD_TRIGGER, "a TP/SL child is on the parent's market, on the other side")
        if c.size != 0:
            raise TxError(Code.BAD_TRIGGER, "a TP/SL child has size 0: it grows as the parent fills")
        if c.reduce_only != market.is_derivative:
            raise TxError(Code.BAD_TRIGGER, "a TP/SL child is reduce-only on a perp and not on spot")
        _must_valid_prices(ex, market, c.trigger_price, c.is_market, c.limit_price)
        if not c.reduce_only:  # a spot child: the parent's full size must clear the minimum
            price = c.trigger_price if c.is_market else c.limit_price
            if price * size * market.tick_value < market.min_notional:
                raise TxError(Code.BELOW_MIN_NOTIONAL, f"notional below minimum {market.min_notional}")
    parent_oid = ex.next_order_id()
    kids: list[Trigger] = []
    for c in a.children:
        t = Trigger(ex.next_order_id(), market.market_id, acct.address, c.is_buy, 0, c.trigger_price, c.tpsl,
                    c.is_market, c.limit_price, c.reduce_only, c.cloid, False, parent_oid)
        add_trigger(ex, acct, t)
        kids.append(t)
    first = matching.execute_order(ex, acct, market, parent, size, parent_oid)
    if parent_oid not in ex.books[market.market_id].orders:
        on_parent_gone(ex, parent_oid)  # filled or cancelled at once: unfilled children go
    return (first, *(ActionResult(OK, oid=t.oid, status="waiting" if t.oid in ex.triggers else "cancelled")
                     for t in kids))


# ---------------------------------------------------------------------------------- firing
def _stale_position_tpsl(ex: Exchange, t: Trigger) -> bool:
    acct = ex.accounts.get(t.owner)
    return acct is None or risk.reduce_capacity(acct, t.market, t.is_buy) == 0


def sweep_closed_positions(ex: Exchange) -> None:
    """Cancel the position TP/SLs of touched accounts whose position closed or flipped."""
    for addr in sorted(ex.tracker.accounts):
        acct = ex.accounts.get(addr)
        if acct is None or not acct.triggers:
            continue
        # only position TP/SLs can go stale: filter before sorting (an account's other
        # triggers, often all of them, cost no sort); the same oids in the same order
        for oid in sorted([oid for oid in acct.triggers if ex.triggers[oid].whole]):
            t = ex.triggers[oid]
            if _stale_position_tpsl(ex, t):
                cancel_trigger(ex, t, "position_closed")


def _due(ex: Exchange) -> list[tuple[int, int]]:
    """(oid, reference price) of every trigger whose condition holds, by oid."""
    out: list[tuple[int, int]] = []
    for m in sorted(ex.trigger_index):
        idx = ex.trigger_index[m]
        if not idx.rises and not idx.falls:
            continue
        market = ex.markets[m]
        ref = reference_price(ex, market)
        if ref <= 0:
            continue
        tick = market.tick_size
        for trig, oid in idx.rises:
            if trig * tick > ref:
                break
            out.append((oid, ref))
        for trig, oid in reversed(idx.falls):
            if trig * tick < ref:
                break
            out.append((oid, ref))
    out.sort()
    return out


def run(ex: Exchange) -> None:
    """The block's trigger step (state/machine.py end_block): sweep, then fire by oid."""
    if not ex.triggers:
        return
    sweep_closed_positions(ex)
    switches = lapse.switches_due(ex)
    for oid, ref in _due(ex):
        t = ex.triggers.get(oid)
        if t is None:  # (an OCO sibling fired earlier in this loop cancels it)
            continue
        if switches and lapse.switch_due(ex, t.owner):
            cancel_trigger(ex, t, "dead_man")  # its owner's switch is due, not yet run: never fires
            continue
        fire(ex, t, ref)


def fire(ex: Exchange, t: Trigger, ref: int) -> None:
    """The trigger's condition holds: it becomes an order with the same oid."""
    market = ex.markets[t.market]
    acct = ex.accounts[t.owner]
    if t.whole and _stale_position_tpsl(ex, t):
        cancel_trigger(ex, t, "position_closed")
        return
    forget(ex, t)
    ex.emit(Triggered("triggered", t.market, t.oid, t.owner, ref, t.trigger))
    if t.parent:
        for sib in sorted(ex.trigger_groups.get(t.parent, ())):
            cancel_trigger(ex, ex.triggers[sib], "oco")
    size = abs(acct.positions[t.market].size) if t.whole else t.size
    if t.is_market:
        price = slipped_ticks(market, ref, t.is_buy, ex.genesis.trigger_slippage_ppm)
        tif = Tif.IOC
    else:
        price, tif = t.limit, Tif.GTC
    o = PlaceOrder(t.market, t.is_buy, price, size, tif, t.reduce_only, t.cloid)
    if lapse.expiries_due(ex):
        # its owner's expired orders go before its margin is judged, as before a transaction
        # of the account; if the block's allowance cannot cover them they stay and count (the
        # conservative side: the order may be refused, never under-margined)
        lifetimes.clear_expired(ex, [acct])
    try:
        mkt, size = matching.must_valid_order(ex, acct, o)
    except TxError:
        ex.emit(Cancelled(t.market, t.oid, t.owner, size, "trigger_rejected"))
        return
    matching.execute_order(ex, acct, mkt, o, size, t.oid)


