"""Funding: premium samples, the clamped rate, the per-lot index, lazy zero-sum settlement.

The genesis here settles every 10 s of block time (blocks are 1 s apart) instead of hourly.
"""

from __future__ import annotations

from typing import Any

from state import funding
from state.tx import PlaceOrder, Tif
from tests.harness import BTC_PERP, USDC, key
from tests.state.riskkit import PX_60K, USD, risk_chain, set_prices

L, S, M = key(85), key(86), key(87)


def _funding_events(result):  # type: ignore[no-untyped-def]
    return [e for _, e in result.events if isinstance(e, tuple) and e[0] == "funding" and e[1] == BTC_PERP]


def test_rate_formula_clamps_and_caps() -> None:
    c = risk_chain(risk={"funding": {"interval_ms": 10_000}})
    ex = c.ex
    set_prices(c, btc=PX_60K)
    st = ex.mstate[BTC_PERP]
    cases = [
        (0, 12_500),  # no premium: the interest rate, 0.00125% per interval
        (-100_000, 12_500),  # small premium: interest - P is within the 0.05% clamp
        (5_000_000, 4_500_000),  # 0.5% premium: 0.5% + clamp(-0.49875%) = 0.45%
        (-5_000_000, -4_500_000),
        (100_000_000, 40_000_000),  # 10% premium: capped at 4%
    ]
    for premium, rate in cases:
        while (c.time + 1000 - ex.genesis.genesis_time_ms) // 10_000 == ex.funding_epoch:
            c.block()
        st.premium_sum, st.premium_count = premium * 4, 3  # the block adds its own sample: 0
        r = c.block()
        (event,) = _funding_events(r)
        assert event[2] == rate, (premium, event)
        # per lot: rate x oracle value of one lot (0.0001 BTC = $6)
        assert event[3] == rate * 10_000 * PX_60K // (10**9 * 10**8) if rate >= 0 else -(-rate * 10_000 * PX_60K // 10**17)


def test_premium_from_impact_prices_and_zero_sum_payment() -> None:
    """Bids 2,000 lots at 60,300 and asks at 60,500 ($12k each side, over the $10k impact
    notional) against an oracle at 60,000: impact bid 60,300 -> premium 0.5% = 5,000,000
    ppb every block; rate 0.45%; 27,000 micro-USDC per lot; a 1 BTC long pays $270."""
    c = risk_chain(risk={"funding": {"interval_ms": 10_000}})
    set_prices(c, btc=PX_60K)
    for k in (L, S, M):
        c.fund(k, USDC, 100_000 * USD)
    c.block(c.sign(S, PlaceOrder(BTC_PERP, False, 60_000, 10_000, Tif.GTC, False, None)),
            c.sign(L, PlaceOrder(BTC_PERP, True, 60_000, 10_000, Tif.IOC, False, None)),
            c.sign(M, PlaceOrder(BTC_PERP, True, 60_300, 2_000, Tif.ALO, False, None)),
            c.sign(M, PlaceOrder(BTC_PERP, False, 60_500, 2_000, Tif.ALO, False, None)))
    ex = c.ex
    st = ex.mstate[BTC_PERP]
    book = ex.books[BTC_PERP]
    assert funding.impact_level(c.ex, book, True, 100, 10_000 * USD) == 60_300
    assert funding.impact_level(c.ex, book, False, 100, 10_000 * USD) == 60_500
    assert funding.impact_level(c.ex, book, False, 100, 13_000 * USD) == 0  # too deep: no impact ask
    events: list[Any] = []
    before: dict[Any, int] = {}
    entry = 0
    while len(events) < 2:  # the first interval may include samples from before the book
        before = {k: ex.accounts[k.address].balance(USDC) for k in (L, S)}
        entry = ex.accounts[L.address].positions[BTC_PERP].entry_notional
        events += _funding_events(c.block())
    second = events[1]
    assert second[2] == 4_500_000 and second[3] == 27_000
    lpos = ex.accounts[L.address].positions[BTC_PERP]
    spos = ex.accounts[S.address].positions[BTC_PERP]
    # every position settled at the boundary, untouched: the funding of the interval
    # ($270 a BTC) and the mark-to-market from the last boundary's mark to this one's
    owed = 10_000 * second[3]
    mark = st.epoch_mark
    pnl_long = 10_000 * 10_000 * mark // 10**8 - entry
    assert ex.accounts[L.address].balance(USDC) - before[L] == -owed + pnl_long
    assert ex.accounts[S.address].balance(USDC) - before[S] == owed - pnl_long  # zero-sum, no dust
    assert lpos.entry_notional == spos.entry_notional == 10_000 * 10_000 * mark // 10**8
    assert funding.owed_funding(ex, BTC_PERP, lpos) == funding.owed_funding(ex, BTC_PERP, spos) == 0


def test_every_position_settles_at_the_boundary_untouched() -> None:
    """Interest-bearing PnL: at the first boundary the long, untouched, has paid its funding
    and been marked to the boundary's mark in USDC; nothing is owed afterwards."""
    c = risk_chain(risk={"funding": {"interval_ms": 10_000}})
    set_prices(c, btc=PX_60K)
    for k in (L, S):
        c.fund(k, USDC, 100_000 * USD)
    c.order(S, BTC_PERP, False, 60_000, 10_000)
    c.order(L, BTC_PERP, True, 60_000, 10_000, tif=Tif.IOC)
    lpos = c.ex.accounts[L.address].positions[BTC_PERP]
    before = c.ex.accounts[L.address].balance(USDC)
    while not c.ex.funding_epoch:
        c.block()
    st = c.ex.mstate[BTC_PERP]
    assert lpos.funding_index == st.funding_index != 0 and lpos.epoch == 1
    assert funding.owed_funding(c.ex, BTC_PERP, lpos) == 0
    pnl = 10_000 * 10_000 * st.epoch_mark // 10**8 - 60_000 * 10_000 * 100
    assert c.ex.accounts[L.address].balance(USDC) - before == -10_000 * st.funding_index + pnl


def test_a_position_opened_after_a_settlement_owes_nothing_of_the_past() -> None:
    c = risk_chain(risk={"funding": {"interval_ms": 10_000}})
    set_prices(c, btc=PX_60K)
    for k in (L, S):
        c.fund(k, USDC, 100_000 * USD)
    c.order(S, BTC_PERP, False, 60_000, 100)
    c.order(L, BTC_PERP, True, 60_000, 100, tif=Tif.IOC)
    while c.ex.funding_epoch < 2:
        c.block()
    index = c.ex.mstate[BTC_PERP].funding_index
    assert index != 0
    c.fund(M, USDC, 100_000 * USD)
    c.order(M, BTC_PERP, False, 60_000, 100)
    c.order(L, BTC_PERP, True, 60_000, 100, tif=Tif.IOC)
    mpos = c.ex.accounts[M.address].positions[BTC_PERP]
    assert (mpos.funding_index, mpos.epoch) == (index, c.ex.funding_epoch)
    assert funding.owed_funding(c.ex, BTC_PERP, mpos) == 0
