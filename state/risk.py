"""Pre-trade checks: the one place that decides whether an account can afford an action.

This is the simple model of the exchange core: spot orders lock what they could spend;
perp orders and positions need initial margin (notional / max leverage) out of the
account's collateral (free quote balance plus unrealized PnL at the reference price, the
last trade). The portfolio-margin engine replaces the bodies of these functions; the
call sites in matching and the handlers stay as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from state.errors import Code, TxError
from state.genesis import PERP, MarketSpec

if TYPE_CHECKING:
    from state.account import Account
    from state.book import Order
    from state.exchange import Exchange

PPM = 1_000_000


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def fee(notional: int, ppm: int) -> int:
    """Fees are debits: rounded up."""
    return -(-notional * ppm // PPM)


def spot_unit_lock(market: MarketSpec, is_buy: bool, price: int, max_fee_ppm: int) -> int:
    """Funds one lot of a spot order reserves: a buy its notional plus the worst-case fee
    per lot (per-lot rounding makes the lock additive across partial fills), a sell the lot."""
    if is_buy:
        per_lot = price * market.tick_value
        return per_lot + fee(per_lot, max_fee_ppm)
    return market.lot_size


def perp_order_margin(market: MarketSpec, price: int, size: int) -> int:
    return ceil_div(size * price * market.tick_value, market.max_leverage)


def reference_price(ex: Exchange, market: MarketSpec, fallback: int) -> int:
    return ex.last_price.get(market.market_id, fallback)


def margin_state(ex: Exchange, acct: Account) -> tuple[int, int]:
    """(collateral, position margin) in one pass: collateral is the free collateral
    balance plus the unrealized PnL of every position at its reference price; position
    margin is the initial margin the open positions need at that price."""
    collateral = acct.balance(ex.collateral_asset)
    margin = 0
    for m, pos in acct.positions.items():
        if pos.size:
            spec = ex.markets[m]
            px = reference_price(ex, spec, pos.entry_notional // max(1, abs(pos.size) * spec.tick_value))
            collateral += pos.unrealized_pnl(px, spec.tick_value)
            margin += ceil_div(abs(pos.size) * px * spec.tick_value, spec.max_leverage)
    return collateral, margin


def reduce_capacity(acct: Account, market: int, is_buy: bool) -> int:
    """How many lots an order on this side can trade while only reducing the position."""
    pos = acct.positions.get(market)
    if pos is None or pos.size == 0 or (pos.size > 0) == is_buy:
        return 0
    return abs(pos.size)


def must_afford_order(
    ex: Exchange, acct: Account, market: MarketSpec, is_buy: bool, price: int, size: int,
    replacing: Order | None = None,
) -> int:
    """Raise INSUFFICIENT_* unless the account can place this order; returns the amount to
    reserve (spot: funds locked; perp: margin held). ``replacing`` is an order of the same
    account that is cancelled first (a modify), whose reservation is counted as released."""
    if market.kind == PERP:
        need = perp_order_margin(market, price, size)
        if size <= reduce_capacity(acct, market.market_id, is_buy):
            return need  # strictly reduces risk: always allowed
        released = 0
        if replacing is not None and ex.markets[replacing.market].kind == PERP:
            released = replacing.locked
        available, pos_margin = margin_state(ex, acct)
        requirement = pos_margin + acct.order_margin - released + need
        if available < requirement:
            raise TxError(Code.INSUFFICIENT_MARGIN, f"initial margin shortfall {requirement - available}")
        return need
    asset = market.quote if is_buy else market.base
    amount = size * spot_unit_lock(market, is_buy, price, ex.genesis.max_fee_ppm)
    released = 0
    if replacing is not None and replacing.market == market.market_id and replacing.is_buy == is_buy:
        released = replacing.locked
    have = acct.balance(asset) + released
    if have < amount:
        raise TxError(Code.INSUFFICIENT_BALANCE, f"needs {amount}, free {have} (shortfall {amount - have})")
    return amount


def must_afford_withdrawal(ex: Exchange, acct: Account, asset: int, amount: int) -> None:
    have = acct.balance(asset)
    if amount > have:
        raise TxError(Code.INSUFFICIENT_BALANCE, f"withdraw {amount}, free balance {have}")
    if asset == ex.collateral_asset and (acct.order_margin or any(p.size for p in acct.positions.values())):
        available, pos_margin = margin_state(ex, acct)
        free = available - pos_margin - acct.order_margin
        if amount > free:
            raise TxError(Code.INSUFFICIENT_MARGIN, f"withdraw {amount} exceeds free collateral {free}")
