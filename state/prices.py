"""Index (oracle) prices per asset and mark prices per perp (and dated future), at block time.

Units: every price here is "collateral smallest units per whole unit of the asset"
(micro-USDC per BTC); a market price of ``p`` ticks is ``p * tick_size`` in these units.

Index price of an asset: its oracle price (median of the validators' fresh submissions,
state/oracle.py), else its ``initial_oracle_prices`` entry from genesis (a chain starts with
reference prices; the first validator price replaces it), else none (0). The book never
sets an index: a price that anyone can trade to (a $1 bid the attacker's accomplice sells
into) would let them value a borrow at $1. An asset with no index counts as zero
collateral, cannot be borrowed or sold short, and its perps have no mark and take no new
position (state/risk.py). A stale oracle (every submission expired) keeps its last price,
and the price's age shows as ``oracle_ms``: the validators are the price source, and
their silence is a liveness failure, not a price of zero.

Mark price of a perp, recomputed once per block after the transactions (Hyperliquid's
formula without the external CEX term, whose place the oracle itself takes)::

    impact bid / ask = the average price of selling / buying ``risk.mark_impact_notional``
                       into the book (none when that side is thinner)
    impact mid       = (impact bid + impact ask) / 2, when both exist
    sample           = impact mid - oracle, or 0 without an impact mid
    basis_ema       += (sample - basis_ema) * (1 - e^(-dt / tau))     (dt: block time since
                                                                         the last update)
    mark = median(oracle + basis_ema, impact mid, oracle)   (no impact mid: the mean of the two)
    mark = clamp(mark, oracle * (1 - band), oracle * (1 + band))

Why each piece: depth-weighted impact prices mean quotes thinner than the impact notional
(and the last trade, which wash trades set for free) never reach the mark; the EMA is a
function of block time (150 s by default: blocks of 100 ms or 10 s move it alike per
second, ``ema_decay``), so a proposer's fast blocks do not speed it up; and the band
(``risk.mark_band_ppm``, 2% by default = S_IM - S_MM of BTC and ETH) bounds what even a
deep, costly push can do: a position opened at initial margin is not liquidated by the
mark alone. The EMA starts at 0 (the mark at the oracle) when a market first has an index.

Within a block every check uses the marks and index prices of the previous block's end, so
a block's result never depends on the order of checks inside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from state import lapse

if TYPE_CHECKING:
    from state.book import Book
    from state.exchange import Exchange

EMA_ONE: Final = 1 << 64  # fixed-point one of ``ema_decay``
_EXP_BITS: Final = 96  # internal precision of ``ema_decay``


class MarketState:
    """Per-market values that change with time (one record per market, with the last trade
    price that ``Exchange.last_price`` holds)."""

    __slots__ = (
        "ema_basis", "ema_ms", "epoch_mark", "funding_index", "mark", "phi", "premium_count", "premium_sum",
        "settle_ms", "settle_sum_hi", "settle_sum_lo", "settle_weight", "settled", "settlement_price",
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
        # futures only (state/futures.py): the settlement TWAP's exact sum of index x dt, split
        # in two limbs (sum = hi * 2^62 + lo < 2^102: hi < 2^40, lo < 2^62), its weight (ms,
        # <= the window <= 2^40), the block time of the last accumulation, and once settled the
        # flag (0/1) and the settlement price (price units, a whole number of ticks)
        self.settle_sum_hi = self.settle_sum_lo = self.settle_weight = self.settle_ms = 0
        self.settled = self.settlement_price = 0

    def record(self) -> list[int]:
        """The stored fields; a future's settlement fields are appended only once any is set,
        so the records (and app hashes) of perps, spots and untouched futures keep their bytes."""
        base = [self.mark, self.ema_basis, self.ema_ms, self.funding_index, self.premium_sum,
                self.premium_count, self.epoch_mark, self.phi]
        extra = [self.settle_sum_hi, self.settle_sum_lo, self.settle_weight, self.settle_ms, self.settled,
                 self.settlement_price]
        return base + extra if any(extra) else base

    def load(self, r: list[int]) -> None:
        """Accepts records with or without the settlement fields (see ``record``)."""
        (self.mark, self.ema_basis, self.ema_ms, self.funding_index, self.premium_sum,
         self.premium_count, self.epoch_mark, self.phi) = r[:8]
        if len(r) > 8:
            (self.settle_sum_hi, self.settle_sum_lo, self.settle_weight, self.settle_ms, self.settled,
             self.settlement_price) = r[8:14]


def median(values: list[int]) -> int:
    """Median of 1..n integers; an even count takes the floor of the middle two's mean."""
    v = sorted(values)
    n = len(v)
    if n % 2:
        return v[n // 2]
    return (v[n // 2 - 1] + v[n // 2]) // 2


def book_price(ex: Exchange, market_id: int) -> int:
    """median(best bid, best ask, last trade) in price units; 0 when none exists. For
    display only (state/views.py): no index or mark depends on it."""
    spec = ex.markets[market_id]
    vals = [p for p in lapse.best(ex, market_id) if p is not None]  # (lapsed orders are not shown)
    last = ex.last_price.get(market_id, 0)
    if last:
        vals.append(last)
    return median(vals) * spec.tick_size if vals else 0


def impact_price(ex: Exchange, book: Book, bids: bool, tick_size: int, tick_value: int, notional: int) -> int:
    """The average price (price units, floored) of filling ``notional`` against one side of
    ``book``, best level first; 0 when the whole side holds less."""
    prices = reversed(book.bid_prices) if bids else iter(book.ask_prices)
    levels = book.bids if bids else book.asks
    need = notional  # quote units still to fill
    ticks_lots = 0  # sum of price * lots taken
    lots = 0
    switches = lapse.switches_due(ex)
    for p in prices:
        per_lot = p * tick_value
        # reduce-only and lapsed orders are not depth (state/book.py Level.firm, state/lapse.py)
        take = lapse.firm_depth(ex, levels[p], switches)
        if take * per_lot >= need:
            take = -(-need // per_lot)
            ticks_lots += p * take
            lots += take
            return ticks_lots * tick_size // lots
        ticks_lots += p * take
        lots += take
        need -= take * per_lot
    return 0


def ema_decay(dt: int, tau: int) -> int:
    """``e^(-dt / tau)`` in fixed point (``EMA_ONE`` = 1), from integers only: ``dt / tau``
    is halved k times to at most 1/8, the Taylor series is summed at 96 bits, and the
    result squared k times. Every step rounds at 2^-96, so decays compose (the decay of
    a + b equals the product of theirs) to far below one part in 2^64: the EMA moves alike
    per unit of block time whatever the block interval."""
    if dt <= 0:
        return EMA_ONE
    if dt >= 48 * tau:
        return 0  # e^-48 < 2^-64
    one = 1 << _EXP_BITS
    k = 0
    while dt * 8 > tau << k:
        k += 1
    den = tau << k
    term = one
    total = one
    n = 1
    while term:
        term = term * dt // (den * n)
        total = total - term if n % 2 else total + term
        n += 1
    for _ in range(k):
        total = total * total >> _EXP_BITS
    return total >> (_EXP_BITS - 64)


def advance_basis(basis: int, sample: int, dt: int, tau: int) -> int:
    """The basis EMA after ``dt`` ms of block time with ``sample`` observed at its end:
    ``basis + (sample - basis) * (1 - e^(-dt/tau))``, rounded toward negative infinity."""
    return basis + (sample - basis) * (EMA_ONE - ema_decay(dt, tau)) // EMA_ONE


def compute_index(ex: Exchange, asset: int) -> int:
    """The oracle price, else the genesis initial price, else 0 (no index): never the book."""
    px = ex.pools[asset].oracle_px
    if px:
        return px
    initial = ex.genesis.initial_oracle_prices
    return initial[asset] if asset < len(initial) else 0


def refresh_index_prices(ex: Exchange) -> None:
    """Recompute every asset's index price (after oracle aggregation, at block end and load)."""
    c = ex.collateral_asset
    for a in range(len(ex.genesis.assets)):
        ex.index_px[a] = 10 ** ex.genesis.assets[c].decimals if a == c else compute_index(ex, a)


def update_marks(ex: Exchange) -> None:
    """Advance each perp's basis EMA to block time and recompute its mark (module doc)."""
    risk = ex.genesis.risk
    tau = risk.mark_ema_ms
    band = risk.mark_band_ppm
    target = risk.mark_impact_notional
    now = ex.time_ms
    for m in sorted(ex.deriv_market_ids):  # perps and futures alike
        spec = ex.markets[m]
        st = ex.mstate[m]
        if st.settled:
            continue  # an expired future: no positions, no book; its record stops changing
        oracle = ex.index_px[spec.base]
        if not oracle:
            mark = 0  # no index, no mark: the perp takes no new position (state/risk.py)
        else:
            book = ex.books[m]
            ib = impact_price(ex, book, True, spec.tick_size, spec.tick_value, target)
            ia = impact_price(ex, book, False, spec.tick_size, spec.tick_value, target)
            mid = (ib + ia) // 2 if ib and ia else 0
            if st.ema_ms == 0:
                new_basis = 0  # the EMA starts here, at the oracle
            else:
                new_basis = advance_basis(st.ema_basis, mid - oracle if mid else 0, now - st.ema_ms, tau)
            if new_basis != st.ema_basis or st.ema_ms != now:
                st.ema_basis, st.ema_ms = new_basis, now
                ex.touch_market(m)
            if mid:
                mark = median([oracle + st.ema_basis, mid, oracle])
            else:
                mark = (oracle + st.ema_basis + oracle) // 2
            width = oracle * band // 1_000_000
            mark = max(oracle - width, min(oracle + width, mark), 1)
            if spec.expiry_ms and st.settle_weight:
                # inside a future's settlement window the positions will settle at the window's
                # TWAP, part of which is already fixed: value them at the expected settlement
                # (the accumulated part, the rest of the window at today's mark), so a position
                # is margined against what it will pay, not against the current index alone
                left = max(spec.expiry_ms - now, 0)
                total = (st.settle_sum_hi << 62) + st.settle_sum_lo
                mark = max((total + mark * left) // (st.settle_weight + left), 1)
        if mark != st.mark:
            st.mark = mark
            ex.touch_market(m)


def refresh_leg_prices(ex: Exchange) -> None:
    """The valuation price of each market for the margin hot path: a perp's mark, a spot
    market's index price (0 = none: the engine falls back per call)."""
    for m, spec in enumerate(ex.markets):
        ex.leg_px[m] = mark_price(ex, m) if m in ex.deriv_market_ids else ex.index_px[spec.base]


def mark_price(ex: Exchange, market_id: int) -> int:
    """The mark used for valuation now: the block's mark, else (before the first block end
    that had an index) the index; 0 when the underlying has no index."""
    st = ex.mstate[market_id]
    if st.mark:
        return st.mark
    return ex.index_px[ex.markets[market_id].base] or compute_index(ex, ex.markets[market_id].base)
