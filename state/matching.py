"""The matching engine: validate, check margin, match at price-time priority, settle, rest.

Every check that can reject an order runs before the first mutation, so a rejected order
changes nothing. Matching walks the opposite side best price first and, within a price,
oldest first. Self-trade prevention cancels the resting order (Hyperliquid's rule); so does
reaching a lapsed one (past its good-til-time expiry, or its owner's dead-man switch due:
state/lapse.py), which the bounded sweep of state/lifetimes.py has not removed yet, while
the block's allowance for that lasts (``Exchange.lapse_left``); after it the taker passes
over lapsed orders, leaving them, to the good ones behind (``_match_past_lapsed``, within
``lapse.CROSS_SCAN`` orders read). The taker's remainder rests (GTC/ALO) or is cancelled
(IOC); it is cancelled too (reason ``lapse_pending``) when lapsed orders it left still
cross it: resting, it would cross the book.

Orders reserve nothing: the portfolio-margin check (state/risk.py) counts every open order
at its worst case, and a fill simply moves balances, which may go negative (a borrow from
the asset's pool, see state/lending.py). Each account keeps per-market aggregates of its
open orders (lots and notional per side) for that check.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from typing import TYPE_CHECKING, Final

from state import dated, lapse, risk, trigbook
from state.account import Expiries
from state.book import Order
from state.errors import Code, TxError
from state.funding import trade_position
from state.genesis import MarketSpec
from state.receipts import OK, ActionResult, Cancelled, Fill
from state.tx import PlaceOrder, Tif
from state.units import MAX_ORDER_NOTIONAL, MAX_POSITION_NOTIONAL, MAX_POSITION_VALUE, PPM

if TYPE_CHECKING:
    from state.account import Account
    from state.exchange import Exchange

# Enum members as module constants, as receipts.OK: the compiled build reads these from C
# statics, where ``Tif.IOC`` is a module-dict look-up of the class and an attribute look-up.
GTC: Final = Tif.GTC
IOC: Final = Tif.IOC
ALO: Final = Tif.ALO
#: the message of an order whose remainder was cancelled (reason ``lapse_pending``) because
#: lapsed orders the block could no longer remove still cross it (``execute_order``)
LAPSE_PENDING: Final = "lapsed orders this block can no longer remove still cross it: the rest is cancelled, retry in a later block"

# The most a perp position can be worth at its market's top price (max_price_ticks), counting
# every open order of the account on the market as filled: 2^60 quote units ($1.15T). The
# mark is at most 1.5x the top price (state/prices.py: oracle and book at most the top, the
# basis EMA at most the top), so a position's value at any mark, its entry notional after a
# mark-to-market, and the PnL one settlement can move are below 2^61 whatever the oracle
# does later within its range. (The notional cap above is at the order's price, which a
# price walk can multiply; this one is not.) With the default 10^7 ticks of $1, a BTC-PERP
# position can reach 1.15e9 lots, 115,292 BTC. (``state.units.MAX_POSITION_VALUE``)


def must_valid_order(ex: Exchange, acct: Account, o: PlaceOrder, replacing: Order | None = None) -> tuple[MarketSpec, int]:
    """All stateless and stateful checks of a new order. Returns (market, size).
    (Hot path: ``o``'s fields are read once; a transaction's class is interpreted, so each
    read from compiled code is a generic attribute look-up.)"""
    expires = o.expires_at_ms
    if expires is not None and expires <= ex.time_ms:  # good-til-time, already past (state/lifetimes.py)
        raise TxError(Code.ORDER_EXPIRED, f"order expires at {expires} ms, not after the block time {ex.time_ms}")
    market = ex.market(o.market)
    price, size, tif, cloid = o.price, o.size, o.tif, o.cloid
    is_buy = o.is_buy
    if size == 0:
        raise TxError(Code.ZERO_SIZE, "order size is zero lots")
    if price == 0 or price > market.max_price_ticks:
        raise TxError(Code.PRICE_OUT_OF_RANGE, f"price must be 1..{market.max_price_ticks} ticks")
    must_in_band(ex, market, price)
    notional = price * size * market.tick_value
    if notional > MAX_ORDER_NOTIONAL:
        raise TxError(Code.AMOUNT_OUT_OF_RANGE, f"order notional {notional} exceeds {MAX_ORDER_NOTIONAL}")
    if market.expiry_ms:
        dated.must_open(ex, market)  # a dated future at or past expiry takes no order
    if o.reduce_only:
        if not market.is_derivative:
            raise TxError(Code.REDUCE_ONLY_NOT_PERP, "reduce-only applies to perp and future markets")
        capacity = risk.reduce_capacity(acct, market.market_id, is_buy)
        if capacity == 0:
            raise TxError(Code.REDUCE_ONLY_WOULD_INCREASE, "reduce-only order would open or increase a position")
        size = min(size, capacity)
    elif notional < market.min_notional:
        raise TxError(Code.BELOW_MIN_NOTIONAL, f"notional {notional} below minimum {market.min_notional}")
    if market.is_derivative:
        pos = acct.positions.get(market.market_id)
        current = abs(pos.size) if pos else 0
        if (current + size) * price * market.tick_value > MAX_POSITION_NOTIONAL:
            raise TxError(Code.AMOUNT_OUT_OF_RANGE, "position notional limit")
        if _reach(acct, market.market_id, pos.size if pos else 0, is_buy, size, replacing) * \
                market.max_price_ticks * market.tick_value > MAX_POSITION_VALUE:
            raise TxError(Code.AMOUNT_OUT_OF_RANGE, "position value limit at the market's top price "
                                                    "(position and open orders)")
    if tif != GTC:
        crosses = lapse.crosses(ex, ex.books[market.market_id], is_buy, price)  # lapsed orders do not count
        if tif == ALO and crosses:
            raise TxError(Code.ALO_WOULD_CROSS, "post-only order would take liquidity")
        if tif == IOC and not crosses:
            raise TxError(Code.IOC_NO_FILL, "immediate-or-cancel order has nothing to match")
    if cloid is not None and cloid in acct.cloids and (replacing is None or replacing.cloid != cloid):
        raise TxError(Code.DUPLICATE_CLOID, "client order id already used by an open order")
    if len(acct.open_orders) + len(acct.triggers) >= ex.genesis.max_open_orders_per_account and tif != IOC \
            and replacing is None:
        raise TxError(Code.TOO_MANY_OPEN_ORDERS, f"at most {ex.genesis.max_open_orders_per_account} open orders")
    risk.must_afford_order(ex, acct, market, is_buy, price, size, replacing)
    return market, size


def must_in_band(ex: Exchange, market: MarketSpec, price: int) -> None:
    """Refuse a limit or trigger price (ticks) further than the market's band from the oracle
    price of its base asset: a careless IOC cannot sweep the book to its far end, and a bad
    quote cannot rest where no honest trader would take it. An asset without an oracle price
    has no band (it cannot be margined either, state/prices.py). Liquidations do not come
    through here: their bound is the bankruptcy price (state/liquidation.py)."""
    ref = ex.index_px[market.base]
    if ref and abs(price * market.tick_size - ref) * PPM > market.price_band_ppm * ref:
        band = market.price_band_ppm
        lo = max(1, -(-ref * (PPM - band) // (PPM * market.tick_size)))
        hi = min(market.max_price_ticks, ref * (PPM + band) // (PPM * market.tick_size))
        raise TxError(Code.PRICE_OUT_OF_BAND, f"price {price} is outside the band {lo}..{hi} ticks "
                                              f"({band / 10_000:g}% around the oracle price)")


def _reach(acct: Account, market: int, position: int, is_buy: bool, size: int, replacing: Order | None) -> int:
    """The largest |position| the account can reach in ``market`` if its open orders on one
    side (with the new order, without the one it replaces) all fill."""
    agg = acct.orders.get(market)
    bids, asks = (agg[0], agg[2]) if agg is not None else (0, 0)
    if replacing is not None:
        if replacing.is_buy:
            bids -= replacing.size
        else:
            asks -= replacing.size
    if is_buy:
        bids += size
    else:
        asks += size
    return max(abs(position + bids), abs(position - asks))


def place_order(ex: Exchange, acct: Account, o: PlaceOrder, replacing: Order | None = None) -> ActionResult:
    """Check, then execute. Raises TxError (with nothing changed) on rejection."""
    market, size = must_valid_order(ex, acct, o, replacing)
    if replacing is not None:
        cancel_order(ex, replacing, "modified")
    return execute_order(ex, acct, market, o, size)


def execute_order(ex: Exchange, acct: Account, market: MarketSpec, o: PlaceOrder, size: int,
                  oid: int = 0) -> ActionResult:
    """Match a checked order, then rest or cancel its remainder. ``oid``: a fired trigger
    order keeps its own id (state/triggers.py); 0 takes the next one."""
    if not oid:
        oid = ex.next_order_id()
    tif, reduce_only, is_buy = o.tif, o.reduce_only, o.is_buy
    order = Order(oid, ex.next_seq(), market.market_id, acct.address, is_buy, o.price, size, size,
                  int(tif), reduce_only, o.cloid, o.expires_at_ms or 0)
    fills = _match(ex, acct, market, order)  # every fill marks both accounts (state/tracker.py)
    filled = size - order.size
    clipped = o.size - size  # a reduce-only order cut to the position at placement
    if filled and ex.trigger_groups and oid in ex.trigger_groups:
        trigbook.on_parent_fill(ex, oid, filled)  # an OCO parent's own fills activate its children
    if order.size == 0:
        return ActionResult(OK, oid=oid, status="filled", filled=filled, fills=tuple(fills), clipped=clipped)
    if tif == IOC or (reduce_only and risk.reduce_capacity(acct, market.market_id, is_buy) == 0):
        ex.emit(Cancelled(market.market_id, oid, acct.address, order.size, "ioc" if tif == IOC else "reduce_only"))
        status = "filled" if filled and tif == IOC else "cancelled"
        return ActionResult(OK, oid=oid, status=status, filled=filled, fills=tuple(fills),
                            cancelled=order.size, clipped=clipped)
    if ex.books[market.market_id].crosses(is_buy, order.price):
        # lapsed orders the taker met once the block's allowance for removing them was spent
        # still cross it (``_match_past_lapsed``): resting here would cross the book (and,
        # had it stopped at them, two live orders could be left crossed for good)
        ex.emit(Cancelled(market.market_id, oid, acct.address, order.size, "lapse_pending"))
        return ActionResult(OK, LAPSE_PENDING, oid=oid, status="filled" if filled else "cancelled", filled=filled,
                            fills=tuple(fills), cancelled=order.size, clipped=clipped)
    ex.books[market.market_id].add(order)
    acct.open_orders[oid] = market.market_id
    acct.add_order(market.market_id, is_buy, order.size, order.price * order.size * market.tick_value)
    if order.cloid is not None:
        acct.cloids[order.cloid] = oid
    ex.touch_order(order)
    if order.expires_at:  # good-til-time: state/lifetimes.py expires it (lazy heap)
        heapq.heappush(ex.order_expiries, (order.expires_at, oid, market.market_id))
        if acct.expiries is None:
            acct.expiries = Expiries()
        acct.expiries.add(oid, order.expires_at)
    return ActionResult(OK, oid=oid, status="resting", filled=filled, resting=order.size, fills=tuple(fills),
                        clipped=clipped)


def _match(ex: Exchange, taker: Account, market: MarketSpec, order: Order, liq_fee_ppm: int = 0) -> list[Fill]:
    book = ex.books[market.market_id]
    fills: list[Fill] = []
    is_buy, limit = order.is_buy, order.price
    now, switches = ex.time_ms, lapse.switches_due(ex)
    while order.size and book.crosses(is_buy, limit):
        level = book.best_level(is_buy)
        assert level is not None
        maker = level.head()
        assert maker is not None, "a level with no live order is removed when it empties"
        if (maker.expires_at and maker.expires_at < now) or (switches and lapse.switch_due(ex, maker.owner)):
            # lapsed, not yet swept (state/lapse.py): removed as the sweep would, never filled;
            # once the block's allowance for that is spent, the taker passes over the lapsed
            # orders it meets (left on the book) to the good ones, within a bound
            if ex.lapse_left <= 0:
                _match_past_lapsed(ex, taker, market, order, liq_fee_ppm, fills, switches)
                break
            ex.lapse_left -= 1
            cancel_order(ex, maker, "expired" if maker.expires_at and maker.expires_at < now else "dead_man")
            continue
        if not _trade_with(ex, taker, market, order, maker, liq_fee_ppm, fills):
            break
    return fills


def _trade_with(ex: Exchange, taker: Account, market: MarketSpec, order: Order, maker: Order, liq_fee_ppm: int,
                fills: list[Fill]) -> bool:
    """The taker meets ``maker``, a good order: self-trade prevention or a reduce-only
    maker at its owner's position cancels it, otherwise they trade. False when the taker
    can take no more (reduce-only, its position closed)."""
    maker_acct = ex.accounts[maker.owner]
    if maker.owner == taker.address:
        cancel_order(ex, maker, "self_trade")
        return True
    qty = min(order.size, maker.size)
    if maker.reduce_only:
        qty = min(qty, risk.reduce_capacity(maker_acct, market.market_id, maker.is_buy))
        if qty == 0:
            cancel_order(ex, maker, "reduce_only")
            return True
    if order.reduce_only:
        qty = min(qty, risk.reduce_capacity(taker, market.market_id, order.is_buy))
        if qty == 0:
            return False
    fills.append(_settle(ex, market, maker, maker_acct, order, taker, qty, liq_fee_ppm))
    return True


def _match_past_lapsed(ex: Exchange, taker: Account, market: MarketSpec, order: Order, liq_fee_ppm: int,
                       fills: list[Fill], switches: bool) -> None:
    """The rest of ``_match`` once the block's allowance for removing lapsed orders is
    spent: the crossing levels best first, each oldest first, lapsed orders passed over and
    left on the book, the good ones met as ``_trade_with`` meets them. At most
    ``lapse.CROSS_SCAN`` resting orders are read (lapsed ones are not consumed by reading
    them); past that the taker stops there. Stopping at the first lapsed order would let a
    backlog larger than the allowances hide the live book behind it: a liquidation would
    fill nothing block after block, until its account was deep enough for the backstop to
    take everything it had left."""
    book = ex.books[market.market_id]
    is_buy, limit = order.is_buy, order.price
    now = ex.time_ms
    side = book.asks if is_buy else book.bids
    if is_buy:
        prices = book.ask_prices[:bisect.bisect_right(book.ask_prices, limit)]
    else:
        prices = book.bid_prices[bisect.bisect_left(book.bid_prices, limit):]
        prices.reverse()
    budget = lapse.CROSS_SCAN
    for p in prices:
        level = side.get(p)
        if level is None:
            continue
        # (a copy of the live ones, at most what is left of the budget: meeting a maker may
        # change the level; dead entries are not state, a restarted node has none)
        for maker in list(itertools.islice((o for o in level.orders if o.live), budget)):
            if not order.size:
                return
            budget -= 1
            if not maker.live:
                continue  # (cancelled by an earlier maker's trade: self-trade prevention)
            if (maker.expires_at and maker.expires_at < now) or (switches and lapse.switch_due(ex, maker.owner)):
                continue
            if not _trade_with(ex, taker, market, order, maker, liq_fee_ppm, fills):
                return
        if budget <= 0 or not order.size:
            return


def _settle(ex: Exchange, market: MarketSpec, maker: Order, maker_acct: Account, taker_order: Order, taker: Account,
            qty: int, liq_fee_ppm: int = 0) -> Fill:
    """Move money for one fill at the maker's price; fees (rounded up) to the fee account,
    a liquidation's fee to the insurance fund."""
    price = maker.price
    notional = price * qty * market.tick_value
    maker_fee = risk.fee(notional, ex.genesis.maker_fee_ppm)
    taker_fee = risk.fee(notional, ex.genesis.taker_fee_ppm)
    liq_fee = risk.fee(notional, liq_fee_ppm) if liq_fee_ppm else 0
    if not market.is_derivative:
        _settle_spot_side(market, maker_acct, maker.is_buy, qty, notional, maker_fee)
        _settle_spot_side(market, taker, taker_order.is_buy, qty, notional, taker_fee + liq_fee)
    else:
        _settle_perp_side(ex, market, maker_acct, maker.is_buy, qty, notional, maker_fee)
        _settle_perp_side(ex, market, taker, taker_order.is_buy, qty, notional, taker_fee + liq_fee)
    fee_acct = ex.account(ex.fee_account)
    fee_acct.credit(market.quote, maker_fee + taker_fee)
    ex.touch(fee_acct)  # (also with zero fees: the record is rewritten as before)
    if liq_fee:
        ex.account(ex.insurance_account).credit(market.quote, liq_fee)
    taker_order.size -= qty
    ex.books[market.market_id].reduce(maker, qty)
    maker_acct.add_order(market.market_id, maker.is_buy, -qty, -notional)
    if ex.trigger_groups and maker.oid in ex.trigger_groups:
        trigbook.on_parent_fill(ex, maker.oid, qty)
    if maker.size == 0:
        _forget_order(maker_acct, maker)
        ex.touch_order_removed(maker)
    else:
        ex.touch_order(maker)
    ex.last_price[market.market_id] = price
    ex.touch_market(market.market_id)
    fill = Fill(market.market_id, price, qty, taker_order.is_buy, maker.owner, taker.address,
                maker.oid, taker_order.oid, maker_fee, taker_fee)
    ex.emit(fill)
    return fill


def _settle_spot_side(market: MarketSpec, acct: Account, is_buy: bool, qty: int, notional: int, fee: int) -> None:
    base = qty * market.lot_size
    if is_buy:
        acct.credit(market.quote, -(notional + fee))
        acct.credit(market.base, base)
    else:
        acct.credit(market.base, -base)
        acct.credit(market.quote, notional - fee)


def _settle_perp_side(ex: Exchange, market: MarketSpec, acct: Account, is_buy: bool, qty: int, notional: int,
                      fee: int) -> None:
    trade_position(ex, acct, market.market_id, qty if is_buy else -qty, notional)
    acct.credit(market.quote, -fee)


def _forget_order(acct: Account, order: Order) -> None:
    acct.open_orders.pop(order.oid, None)
    if order.expires_at and acct.expiries is not None:
        acct.expiries.discard(order.oid, order.expires_at)
    if order.cloid is not None and acct.cloids.get(order.cloid) == order.oid:
        del acct.cloids[order.cloid]


def cancel_order(ex: Exchange, order: Order, reason: str) -> None:
    """Take a resting order off the book and out of its owner's open-order aggregates."""
    acct = ex.accounts[order.owner]
    market = ex.markets[order.market]
    ex.books[order.market].remove(order)
    acct.add_order(order.market, order.is_buy, -order.size, -order.price * order.size * market.tick_value)
    _forget_order(acct, order)
    ex.touch_order_removed(order)
    ex.emit(Cancelled(order.market, order.oid, order.owner, order.size, reason))
    if ex.trigger_groups and order.oid in ex.trigger_groups:
        trigbook.on_parent_gone(ex, order.oid)


def shrink_order(ex: Exchange, order: Order, new_size: int) -> None:
    """A size-down modify at the same price: keeps time priority, returns the excess."""
    acct = ex.accounts[order.owner]
    market = ex.markets[order.market]
    cut = order.size - new_size
    ex.books[order.market].reduce(order, cut)
    acct.add_order(order.market, order.is_buy, -cut, -order.price * cut * market.tick_value)
    order.orig_size = new_size
    ex.touch_order(order)
