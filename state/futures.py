"""Dated futures: the settlement price's time-weighted average, and expiry.

A future (genesis kind ``future``) trades like a perp: fills are positions in
``acct.positions``, margined by the same scenarios, liquidated and ADL'd the same, with a mark
from the same pipeline (state/prices.py). It never pays funding (state/funding.py runs over
the perps only). What is its own is here:

Settlement price. During ``[expiry - window, expiry)``, at each block's end (after the index
prices are refreshed) the base asset's index price is accumulated, weighted by the block time
since the previous accumulation (clipped to the window: the first block in the window counts
from the window's start)::

    sum    += index_px * dt
    weight += dt

``S = sum // weight`` (floor), then rounded to the NEAREST whole tick (half up) and clamped to
``1..max_price_ticks``. With no block in the window (or no index in it), S is the index price
at expiry (the previous block's end), else the last trade. Rounding to a tick makes every
position's value ``size * S_ticks * tick_value`` exact, as a fill's notional is: the credits
then sum to ``-sum(signed entries)`` exactly, because sizes sum to zero, with no dust.

Storage is exact and bounded: price <= 2^62 and dt <= window <= 2^40, so the sum is below
2^102, beyond msgpack's 64 bits. It is kept in two limbs, ``sum = hi * 2^62 + lo`` (lo < 2^62,
hi < 2^40), in the market record (prices.MarketState), with the weight and the time of the
last accumulation; a restart mid-window resumes the same sum.

Expiry. At the first block whose time is >= ``expiry_ms`` (``begin_block``, after the clock
moves, before the transactions): every open order of the market is cancelled (reason
``expired_market``), then every position is closed at S in sorted address order through
``funding.trade_position`` (so entry, realized PnL and the derived entry sums stay right) and
the market is marked settled. From then on orders are refused with MARKET_CLOSED
(``must_open``, in state/dated.py so that matching can call it without an import cycle).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from state import trigbook
from state.dated import must_open
from state.events import FutureSettled, PositionSettled
from state.funding import trade_position
from state.matching import cancel_order

if TYPE_CHECKING:
    from state.exchange import Exchange

__all__ = ["accumulate", "cancel_market_orders", "expire_due", "must_open", "settle_market", "settlement_price"]

LIMB_BITS: Final = 62
LIMB_MASK: Final = (1 << LIMB_BITS) - 1
EXPIRED_REASON: Final = "expired_market"


def accumulate(ex: Exchange) -> None:
    """At a block's end: add this block's index price to each open future's settlement
    average if the block is inside its window (module doc)."""
    now = ex.time_ms
    for m in sorted(ex.future_market_ids):
        spec = ex.markets[m]
        st = ex.mstate[m]
        start = spec.expiry_ms - spec.settlement_window_ms
        if st.settled or not start <= now < spec.expiry_ms:
            continue
        px = ex.index_px[spec.base]
        dt = min(now - max(st.settle_ms, start), spec.settlement_window_ms)
        if px <= 0 or dt <= 0:
            continue
        total = (st.settle_sum_hi << LIMB_BITS) + st.settle_sum_lo + px * dt
        st.settle_sum_hi, st.settle_sum_lo = total >> LIMB_BITS, total & LIMB_MASK
        st.settle_weight += dt
        st.settle_ms = now
        ex.touch_market(m)


def settlement_price(ex: Exchange, m: int) -> int:
    """The price (price units, a whole number of ticks) positions of future ``m`` settle at
    now: the window's time-weighted index average, else the index, else the last trade."""
    spec = ex.markets[m]
    st = ex.mstate[m]
    if st.settle_weight:
        avg = ((st.settle_sum_hi << LIMB_BITS) + st.settle_sum_lo) // st.settle_weight
    else:
        avg = ex.index_px[spec.base] or ex.last_price.get(m, 0) * spec.tick_size
    ticks = (avg + spec.tick_size // 2) // spec.tick_size
    return max(1, min(spec.max_price_ticks, ticks)) * spec.tick_size


def cancel_market_orders(ex: Exchange, market_id: int, reason: str) -> int:
    """Cancel every open order of the market (oldest id first), then its waiting trigger
    orders; returns how many."""
    book = ex.books[market_id]
    oids = sorted(book.orders)
    for oid in oids:
        cancel_order(ex, book.orders[oid], reason)
    return len(oids) + trigbook.cancel_market_triggers(ex, market_id, reason)


def settle_market(ex: Exchange, m: int) -> None:
    """Expire future ``m`` now: cancel its orders, close every position at the settlement
    price, mark it settled (module doc)."""
    spec = ex.markets[m]
    st = ex.mstate[m]
    cancel_market_orders(ex, m, EXPIRED_REASON)
    price = settlement_price(ex, m)
    ticks = price // spec.tick_size
    holders = sorted(ex.position_holders[m])
    open_interest = 0
    settled: list[PositionSettled] = []
    for addr in holders:
        acct = ex.accounts[addr]
        pos = acct.positions[m]
        size = pos.size
        if size > 0:
            open_interest += size
        pnl = size * ticks * spec.tick_value - pos.signed_entry()  # what apply_trade realizes
        trade_position(ex, acct, m, -size, abs(size) * ticks * spec.tick_value)
        settled.append(PositionSettled("position_settled", m, addr, size, pnl))
    st.settled = 1
    st.settlement_price = price
    ex.touch_market(m)
    ex.emit(FutureSettled("settlement", m, price, len(holders), open_interest))
    for event in settled:
        ex.emit(event)


def expire_due(ex: Exchange) -> list[int]:
    """Settle every future whose expiry the block time has reached (``begin_block``, after
    the clock moves, before the transactions). Returns the markets settled."""
    due = [m for m in sorted(ex.future_market_ids)
           if not ex.mstate[m].settled and ex.time_ms >= ex.markets[m].expiry_ms]
    for m in due:
        settle_market(ex, m)
    return due
