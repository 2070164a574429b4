"""Perp funding and the mark-to-market settlement of positions into USDC.

Sampling (every block, after the marks): for each perp, the premium of the book against
the oracle (index) price, in parts per billion::

    premium = (max(impact_bid - oracle, 0) - max(oracle - impact_ask, 0)) / oracle
    sample  = clamp(premium, -cap, +cap)      when both impact prices exist, else 0

where the impact bid (ask) is the price of the level at which the book's bids (asks), best
first, reach ``impact_notional``. A book that cannot fill the impact notional on both sides
samples 0 (no premium): a one-sided quote is not a price anyone can trade both ways at, and
a bid nobody can sell into without an ask behind it (or one placed never meaning to fill)
must not set the rate (audit: a 1,600-lot bid at +4.2% with no asks near it held funding at
the 4% cap for two hours). A zero sample rather than none, so that such blocks pull the
interval's mean toward the interest rate instead of leaving it to the two-sided blocks.

Ranges (every stored integer fits msgpack's 64 bits whatever the book and the oracle hold):

- a sample is in [-cap, +cap] (``funding.cap_ppb`` <= 10^9, genesis): the rate is capped
  there anyway, and an order at ``max_price_ticks`` (10^12 ticks, ~1.7e16 ppb against a
  $60k oracle) can no longer overflow the sum (the audit's chain halt);
- ``premium_count`` is at most ``MAX_PREMIUM_SAMPLES`` (2^20): when an interval reaches it
  (over 29 h of 100 ms blocks, or blocks sharing a time), sum and count are halved
  (toward zero), which keeps the mean and halves the weight of the older samples; so
  ``|premium_sum| <= 2^20 * 10^9 < 2^50``;
- ``funding_index`` stays in +-``MAX_FUNDING_INDEX`` (2^62) quote units per lot: one
  settlement adds at most cap x one lot's value at the oracle price, and at the bound it
  saturates (all positions share the one index, so funding stays zero-sum; it only stops
  accruing, after more than 10^14 hours at the cap for a $6 lot);
- ``phi`` (cumulative |rate|, ppb) saturates at ``MAX_PHI`` (2^62): 4.6e9 intervals at 100%.

Settlement (at each interval boundary of block time, counted from genesis; hourly by
default)::

    P    = mean of the interval's premium samples (toward zero)
    rate = clamp(P + clamp(interest - P, -clamp, +clamp), -cap, +cap)
    funding_index += rate * oracle price of one lot          (quote units per lot, toward zero)

The index is an integer number of quote units per lot, so what a long pays,
``size * (index_now - index_at_its_last_settlement)``, is exactly what the shorts of the same
lots receive: funding is zero-sum with no rounding dust at all (the only rounding is that of
the per-lot amount, which both sides share). Positions settle lazily on their next touch
(a fill, a liquidation, an ADL): funding owed moves into the USDC balance and the position
is marked to the mark price of the last settlement boundary (``epoch_mark``), so its PnL
lands in USDC (a loss beyond the balance is a USDC borrow and pays interest).

Interest-bearing PnL (Backpack's perpetuals): at every boundary, right after the index
moves, every open position of the market is settled that way, touched or not, in address
order: O(positions) once an interval. So a floating profit is USDC supplied to the pool
from that moment and earns the supply rate, and a floating loss is USDC owed (a borrow,
once the balance is spent) and pays the borrow rate, as if each position were closed and
reopened at the boundary's mark. Between boundaries, the funding owed and the unrealized
PnL since the last one count in equity just the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from state import lapse
from state.events import FundingPaid, FundingSettled
from state.prices import mark_price
from state.risk import value_of
from state.units import PPB

if TYPE_CHECKING:
    from state.account import Account, Position
    from state.book import Book
    from state.exchange import Exchange

MAX_PREMIUM_SAMPLES: Final = 1 << 20
MAX_FUNDING_INDEX: Final = 1 << 62
MAX_PHI: Final = 1 << 62


def owed_funding(ex: Exchange, market: int, pos: Position) -> int:
    """Funding the position owes now (negative: is owed)."""
    return pos.size * (ex.mstate[market].funding_index - pos.funding_index)


def _track(ex: Exchange, market: int, pos: Position, sign: int) -> None:
    """Keep the per-market sums of signed entries and size x funding index (derived) that
    the collateral pool's dust sweep needs."""
    ex.perp_entry_sum[market] += sign * pos.signed_entry()
    ex.perp_fref_sum[market] += sign * pos.size * pos.funding_index


def settle_position(ex: Exchange, acct: Account, market: int) -> tuple[int, int]:
    """Settle funding and mark-to-market of one position before it changes (a touch), or at
    a boundary. Returns (funding paid, negative if received; PnL realized into USDC)."""
    pos = acct.positions.get(market)
    if pos is None:
        return 0, 0
    st = ex.mstate[market]
    spec = ex.markets[market]
    _track(ex, market, pos, -1)
    owed = pnl = 0
    if pos.size:
        owed = pos.size * (st.funding_index - pos.funding_index)
        if owed:
            acct.credit(spec.quote, -owed)
        if pos.epoch < ex.funding_epoch and st.epoch_mark:
            v = value_of(pos.size * spec.lot_size, st.epoch_mark, ex.unit[spec.base])
            pnl = v - pos.signed_entry()
            if pnl:
                acct.credit(spec.quote, pnl)
                pos.realized_pnl += pnl
            pos.entry_notional = abs(v)
    pos.funding_index = st.funding_index
    pos.epoch = ex.funding_epoch
    _track(ex, market, pos, 1)
    ex.touch(acct)
    return owed, pnl


def trade_position(ex: Exchange, acct: Account, market: int, delta: int, notional: int) -> None:
    """``acct`` trades ``delta`` lots (signed) of the perp for ``notional`` quote units:
    settles the position first, realizes PnL into the quote balance (fees are separate)."""
    pos = acct.position(market)  # a new position starts at the current funding index and epoch
    settle_position(ex, acct, market)
    ex.tracker.scan.add(acct.address)
    before = pos.size
    _track(ex, market, pos, -1)
    pnl = pos.apply_trade(delta, notional)
    _track(ex, market, pos, 1)
    acct.credit(ex.markets[market].quote, pnl)
    holders(ex, market, acct.address, before, pos.size)
    ex.touch(acct)


def holders(ex: Exchange, market: int, address: bytes, before: int, after: int) -> None:
    """Keep the derived sets of position holders (all, longs, shorts) of a market."""
    if (before > 0) == (after > 0) and (before < 0) == (after < 0):
        return
    longs, shorts = ex.position_sides[market]
    if before > 0:
        longs.discard(address)
    elif before < 0:
        shorts.discard(address)
    if after > 0:
        longs.add(address)
    elif after < 0:
        shorts.add(address)
    if after:
        ex.position_holders[market].add(address)
    else:
        ex.position_holders[market].discard(address)


def remove_position(ex: Exchange, acct: Account, market: int) -> Position:
    """Take a (settled) position off ``acct`` (it moves elsewhere whole); returns a copy."""
    from state.account import Position as _Position

    pos = acct.positions[market]
    ex.tracker.scan.add(acct.address)
    _track(ex, market, pos, -1)
    moved = _Position(pos.size, pos.entry_notional, 0, pos.funding_index, pos.epoch)
    holders(ex, market, acct.address, pos.size, 0)
    pos.size = 0
    pos.entry_notional = 0
    ex.touch(acct)
    return moved


def impact_level(ex: Exchange, book: Book, bids: bool, tick_value: int, notional: int) -> int:
    """Ticks of the level at which the side reaches ``notional``; 0 if it cannot. (Funding's
    impact price is that level; the mark's, ``prices.impact_price``, is the average fill.)"""
    prices = reversed(book.bid_prices) if bids else iter(book.ask_prices)
    levels = book.bids if bids else book.asks
    switches = lapse.switches_due(ex)
    acc = 0
    for p in prices:
        # reduce-only and lapsed orders are not depth (state/book.py Level.firm, state/lapse.py)
        acc += p * lapse.firm_depth(ex, levels[p], switches) * tick_value
        if acc >= notional:
            return p
    return 0


def premium_sample(ex: Exchange, book: Book, tick_size: int, tick_value: int, notional: int, oracle: int,
                   cap: int) -> int:
    """One block's premium sample (ppb) of a book against the oracle price: 0 unless both
    impact prices exist, clamped to +-``cap`` (see the module doc)."""
    if oracle <= 0:
        return 0
    ib = impact_level(ex, book, True, tick_value, notional) * tick_size
    ia = impact_level(ex, book, False, tick_value, notional) * tick_size
    if not (ib and ia):
        return 0
    premium = 0
    if ib > oracle:
        premium += (ib - oracle) * PPB // oracle
    if ia < oracle:
        premium -= (oracle - ia) * PPB // oracle
    return max(-cap, min(cap, premium))


def sample_premiums(ex: Exchange) -> None:
    risk = ex.genesis.risk
    target, cap = risk.funding_impact_notional, risk.funding_cap_ppb
    for m in sorted(ex.perp_market_ids):
        spec = ex.markets[m]
        st = ex.mstate[m]
        premium = premium_sample(ex, ex.books[m], spec.tick_size, spec.tick_value, target, ex.index_px[spec.base], cap)
        if st.premium_count >= MAX_PREMIUM_SAMPLES:
            st.premium_sum = _toward_zero(st.premium_sum, 2)
            st.premium_count //= 2
        st.premium_sum += premium
        st.premium_count += 1
        ex.touch_market(m)


def _toward_zero(num: int, den: int) -> int:
    q = abs(num) // den
    return q if num >= 0 else -q


def maybe_settle(ex: Exchange) -> list[tuple[int, int]]:
    """At an interval boundary: fix each perp's rate and advance its funding index.
    Returns [(market, |rate| ppb)] for the liquidation watch."""
    risk = ex.genesis.risk
    epoch = (ex.time_ms - ex.genesis.genesis_time_ms) // risk.funding_interval_ms
    if epoch <= ex.funding_epoch:
        return []
    ex.funding_epoch = epoch
    settled = []
    for m in sorted(ex.perp_market_ids):
        spec = ex.markets[m]
        st = ex.mstate[m]
        p = _toward_zero(st.premium_sum, st.premium_count) if st.premium_count else 0  # |p| <= cap
        c = risk.funding_clamp_ppb
        rate = p + max(-c, min(c, risk.funding_interest_ppb - p))
        rate = max(-risk.funding_cap_ppb, min(risk.funding_cap_ppb, rate))
        px = ex.index_px[spec.base] or mark_price(ex, m)
        per_lot = _toward_zero(rate * spec.lot_size * px, PPB * ex.unit[spec.base])
        index = max(-MAX_FUNDING_INDEX, min(MAX_FUNDING_INDEX, st.funding_index + per_lot))
        per_lot = index - st.funding_index  # saturated at the bound (see the module doc)
        st.funding_index = index
        st.phi = min(st.phi + abs(rate), MAX_PHI)
        st.epoch_mark = mark_price(ex, m)
        st.premium_sum = st.premium_count = 0
        ex.touch_market(m)
        ex.emit(FundingSettled("funding", m, rate, per_lot, st.funding_index))
        settled.append((m, abs(rate)))
        accounts = ex.accounts
        scan = ex.tracker.scan
        for address in sorted(ex.position_holders[m]):  # interest-bearing PnL: every position, now
            queued = address in scan
            acct = accounts[address]
            paid, pnl = settle_position(ex, acct, m)
            if not queued and (pnl >= paid or acct.balance(spec.quote) >= 0):
                # the settlement moves into the balance what equity already counted (the funding
                # owed, the PnL to the boundary's mark; tests/state/test_interest_bearing_pnl.py),
                # so unless it opens or grows a debt, whose interest add-on raises the requirement,
                # it gives the liquidation scan nothing to assess; the funding move itself reaches
                # the watch through ``settled``
                scan.discard(address)
            if paid or pnl:
                ex.emit(FundingPaid("funding_payment", address, m, paid, pnl))
    return settled
