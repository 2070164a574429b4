"""Index (oracle) prices per asset and mark prices per perp, computed at block time.

Units: every price here is "collateral smallest units per whole unit of the asset"
(micro-USDC per BTC); a market price of ``p`` ticks is ``p * tick_size`` in these units.

Index price of an asset: the oracle price (median of the validators' fresh submissions,
state/oracle.py); before any oracle price exists (test chains without validators), the book
price of the asset's spot market, else of its perp market.

Book price of a market: the median of (best bid, best ask, last trade), of those that exist.

Mark price of a perp, recomputed once per block after the transactions (Hyperliquid's
formula without the external CEX term, whose place the oracle itself takes)::

    basis_ema  += (mid - oracle - basis_ema) * min(dt, tau) / tau      (when both sides quote)
    mark        = median(oracle + basis_ema, book price, oracle)

With no oracle price the mark is the book price (and the previous mark if the book is
empty). Within a block every check uses the marks and index prices of the previous block's
end, so a block's result never depends on the order of checks inside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from state.exchange import Exchange


class MarketState:
    """Per-market values that change with time (one record per market, with the last trade
    price that ``Exchange.last_price`` holds)."""

    __slots__ = (
        "ema_basis", "ema_ms", "epoch_mark", "funding_index", "mark", "phi", "premium_count", "premium_sum",
    )

    def __init__(self) -> None:
        # Ranges (the record is msgpack, 64 bits; T = the market's top price,
        # max_price_ticks * tick_size <= 2^62, genesis; the oracle is in 1..T, state/oracle.py):
        self.mark = 0  # price units (0: none yet); 0..1.5T (median of oracle, book, oracle+basis)
        self.ema_basis = 0  # EMA of (mid - oracle), price units; -T..T (a floored convex step)
        self.ema_ms = 0  # block time of the last EMA update
        self.funding_index = 0  # cumulative funding, quote units per lot (longs pay when it rises); +-2^62
        self.premium_sum = 0  # sum of premium samples (ppb) this funding interval; +-count * cap < 2^50
        self.premium_count = 0  # at most funding.MAX_PREMIUM_SAMPLES (2^20)
        self.epoch_mark = 0  # the mark at the last funding settlement (positions settle to it)
        self.phi = 0  # cumulative |funding rate| (ppb), for the liquidation watch; at most 2^62

    def record(self) -> list[int]:
        return [self.mark, self.ema_basis, self.ema_ms, self.funding_index, self.premium_sum,
                self.premium_count, self.epoch_mark, self.phi]

    def load(self, r: list[int]) -> None:
        (self.mark, self.ema_basis, self.ema_ms, self.funding_index, self.premium_sum,
         self.premium_count, self.epoch_mark, self.phi) = r


def median(values: list[int]) -> int:
    """Median of 1..n integers; an even count takes the floor of the middle two's mean."""
    v = sorted(values)
    n = len(v)
    if n % 2:
        return v[n // 2]
    return (v[n // 2 - 1] + v[n // 2]) // 2


def book_price(ex: Exchange, market_id: int) -> int:
    """median(best bid, best ask, last trade) in price units; 0 when none exists."""
    spec = ex.markets[market_id]
    book = ex.books[market_id]
    vals = []
    if book.bid_prices:
        vals.append(book.bid_prices[-1])
    if book.ask_prices:
        vals.append(book.ask_prices[0])
    last = ex.last_price.get(market_id, 0)
    if last:
        vals.append(last)
    return median(vals) * spec.tick_size if vals else 0


def compute_index(ex: Exchange, asset: int) -> int:
    px = ex.pools[asset].oracle_px
    if px:
        return px
    for m in ex.markets_of_asset.get(asset, ()):
        px = book_price(ex, m)
        if px:
            return px
    return 0


def refresh_index_prices(ex: Exchange) -> None:
    """Recompute every asset's index price (after oracle aggregation, at block end and load)."""
    c = ex.collateral_asset
    for a in range(len(ex.genesis.assets)):
        ex.index_px[a] = 10 ** ex.genesis.assets[c].decimals if a == c else compute_index(ex, a)


def update_marks(ex: Exchange) -> None:
    """Advance each perp's basis EMA to block time and recompute its mark."""
    tau = ex.genesis.risk.mark_ema_ms
    now = ex.time_ms
    for m in sorted(ex.perp_market_ids):
        spec = ex.markets[m]
        st = ex.mstate[m]
        oracle = ex.pools[spec.base].oracle_px
        book = ex.books[m]
        if oracle and book.bid_prices and book.ask_prices:
            mid = (book.bid_prices[-1] + book.ask_prices[0]) * spec.tick_size // 2
            sample = mid - oracle
            if st.ema_ms == 0:
                new_basis = sample
            else:
                dt = min(max(now - st.ema_ms, 0), tau)
                new_basis = st.ema_basis + (sample - st.ema_basis) * dt // tau
            if new_basis != st.ema_basis or st.ema_ms != now:
                st.ema_basis, st.ema_ms = new_basis, now
                ex.touch_market(m)
        bp = book_price(ex, m)
        if oracle:
            vals = [oracle + st.ema_basis, oracle] + ([bp] if bp else [])
            mark = median(vals) if len(vals) == 3 else (oracle + st.ema_basis + oracle) // 2
            mark = max(mark, 1)
        else:
            mark = bp or st.mark
        if mark != st.mark:
            st.mark = mark
            ex.touch_market(m)


def refresh_leg_prices(ex: Exchange) -> None:
    """The valuation price of each market for the margin hot path: a perp's mark, a spot
    market's index price (0 = none: the engine falls back per call)."""
    for m, spec in enumerate(ex.markets):
        ex.leg_px[m] = mark_price(ex, m) if m in ex.perp_market_ids else ex.index_px[spec.base]


def mark_price(ex: Exchange, market_id: int) -> int:
    """The mark used for valuation now: the block's mark, else the index, else last trade."""
    st = ex.mstate[market_id]
    if st.mark:
        return st.mark
    spec = ex.markets[market_id]
    return ex.index_px[spec.base] or ex.last_price.get(market_id, 0) * spec.tick_size
