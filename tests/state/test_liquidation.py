"""Liquidation, step by step, with hand-computed numbers; ADL ranking; socialized loss last.

Setup: oracle BTC = $60,000; T buys 1 BTC-PERP (10,000 lots) from S at 60,000 with $5,500
(equity $5,479 after the $21 taker fee). Maintenance at price p: 3% of p plus the size
add-on (~$7). Equity at p: p - 54,521.
"""

from __future__ import annotations

from typing import Any

from state import risk
from state.genesis import INSURANCE_ACCOUNT
from state.receipts import Cancelled, Fill
from state.tx import Borrow, SetUnwindOrder, Tif, Withdraw
from tests.harness import BTC, BTC_PERP, BTC_SPOT, USDC, Chain, key
from tests.state.invariants import check_all
from tests.state.riskkit import BTC_UNIT, PX_60K, USD, mm, risk_chain, set_prices

T, S, M, LN, S1, S2, B = (key(i) for i in range(100, 107))
LOTS = 10_000


def _setup(t_usdc: int = 5_500 * USD) -> Chain:
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(T, USDC, t_usdc)
    for k in (S, M, LN):
        c.fund(k, USDC, 1_000_000 * USD)
    assert c.order(S, BTC_PERP, False, 60_000, LOTS).status == "resting"
    assert c.order(T, BTC_PERP, True, 60_000, LOTS, tif=Tif.IOC).status == "filled"
    assert c.order(T, BTC_PERP, True, 50_000, 100).status == "resting"  # an open order to cancel
    return c


def _liq_events(result: Any, who: bytes) -> list[tuple[Any, ...]]:
    return [e for _, e in result.events if isinstance(e, tuple) and e[0] == "liquidation" and e[1] == who]


def test_step1_and_step2_cancel_then_partial_through_the_book() -> None:
    """At 56,200: equity 1,679 < maintenance 1,686 + 7.1 = 1,693, above 2/3 of it: a partial
    liquidation. 25% of the leg (2,500 lots) is sold as an IOC bounded by the bankruptcy
    price ceil(56,200 - 1,679) = 54,521; it fills at M's bid 55,000: taker fee 350 ppm of
    $13,750 = 4,812,500, liquidation fee 0.5% = 68,750,000 to the insurance fund. After it,
    equity ~$1,305 > maintenance ~$1,270: it stops."""
    c = _setup()
    c.order(M, BTC_PERP, True, 55_000, 100_000)
    fund_before = _fund(c)
    set_prices(c, btc=56_200 * USD)
    result = c.last
    events = _liq_events(result, T.address)
    assert events[0][2] == "start" and events[0][3] == 1_679 * USD
    cancels = [e for _, e in result.events if isinstance(e, Cancelled) and e.owner == T.address]
    assert [x.reason for x in cancels] == ["liquidation"]
    book = [e for e in events if e[2] == "book"]
    assert book == [("liquidation", T.address, "book", BTC_PERP, False, 2_500, 54_521)]
    fills = [e for _, e in result.events if isinstance(e, Fill) and e.taker == T.address]
    assert [(f.price, f.size, f.taker_fee) for f in fills] == [(55_000, 2_500, 4_812_500)]
    assert _fund(c) - fund_before >= 68_750_000
    pos = c.ex.accounts[T.address].positions[BTC_PERP]
    assert pos.size == 7_500
    after = mm(c, T)
    assert after.equity >= after.requirement
    assert after.equity == 1_679 * USD - 300 * USD - 4_812_500 - 68_750_000


def test_step3_backstop_the_fund_takes_everything_at_the_bankruptcy_price() -> None:
    """At 55,400: equity 879 is below 2/3 of maintenance (~1,669): the backstop. The fund
    (almost empty) could not absorb what selling the 1 BTC long inside the protocol band
    might realize (3% of $55,400 plus the taker fee, ~$1,681, against $879 of equity), so
    the long is deleveraged against the short (S) at the mark before anything goes to the
    book: nobody loses against the mark. The fund takes the collateral: T ends with nothing,
    the fund gains T's 879. (Before the band rule the fund took the long and deleveraged it
    itself at the end of the scan, at the same price: same outcome, one step earlier.)"""
    c = _setup()
    fund_before = _fund(c)
    s_before = risk.maintenance(c.ex, c.ex.accounts[S.address]).equity
    set_prices(c, btc=55_400 * USD)
    result = c.last
    stages = [e[2] for e in _liq_events(result, T.address)]
    assert stages == ["start", "backstop"]
    assert T.address not in c.ex.accounts or not c.ex.accounts[T.address].has_liabilities()
    fund_stages = [e[2] for e in _liq_events(result, INSURANCE_ACCOUNT)]
    assert fund_stages == []  # it received no position to unwind
    adl = [e for _, e in result.events if isinstance(e, tuple) and e[0] == "adl"]
    assert adl == [("adl", BTC_PERP, T.address, S.address, LOTS, 55_400 * USD)]  # at the mark
    assert c.ex.accounts[S.address].positions[BTC_PERP].size == 0
    assert risk.maintenance(c.ex, c.ex.accounts[S.address]).equity - s_before == 4_600 * USD  # its gain vs 60k
    fund = c.ex.accounts[INSURANCE_ACCOUNT]
    assert not any(p.size for p in fund.positions.values())
    assert risk.maintenance(c.ex, fund).equity - fund_before == 879 * USD


def test_step4_adl_ranks_by_profit_times_leverage_at_the_bankruptcy_price() -> None:
    """Shorts S1 ($40k) and S2 ($3k) each sold 0.5 BTC at 60,000; T ($2,750) and M bought.
    A crash to 50,000 leaves T at 2,750 - 10.5 - 5,000 = -2,260.5 with an empty insurance
    fund: T's long is closed against S2 first (same profit, higher leverage) at the
    bankruptcy price 50,000 + 2,260.5 / 0.5 = 54,521 per BTC; S1 and M are untouched.
    (An instantaneous crash: this chain lets the oracle move 100% in a block.)"""
    c = risk_chain(risk={"oracle": {"max_move_ppm": 1_000_000}})
    set_prices(c, btc=PX_60K)
    c.fund(T, USDC, 2_750 * USD)
    c.fund(S1, USDC, 40_000 * USD)
    c.fund(S2, USDC, 3_000 * USD)
    c.fund(M, USDC, 1_000_000 * USD)
    c.fund(LN, USDC, 100_000 * USD)
    c.order(S1, BTC_PERP, False, 60_000, 5_000)
    c.order(S2, BTC_PERP, False, 60_000, 5_000)
    c.order(T, BTC_PERP, True, 60_000, 5_000, tif=Tif.IOC)  # fills S1 (first in time)
    c.order(M, BTC_PERP, True, 60_000, 5_000, tif=Tif.IOC)  # fills S2
    assert _fund(c) < 10  # nothing but rounding dust in the fund
    lender = c.ex.accounts[LN.address].balance(USDC)
    s1_before = c.ex.accounts[S1.address].balance(USDC)
    set_prices(c, btc=50_000 * USD)
    result = c.last
    adl = [e for _, e in result.events if isinstance(e, tuple) and e[0] == "adl"]
    # (+2 micro-USDC: the deficit is padded so rounding cannot leave T below zero)
    assert adl == [("adl", BTC_PERP, T.address, S2.address, 5_000, 5_000 * 10_000 * 54_521 * USD // 10**8 + 2)]
    s2 = c.ex.accounts[S2.address]
    assert s2.positions[BTC_PERP].size == 0
    assert s2.positions[BTC_PERP].realized_pnl == 5_000 * (60_000 - 54_521) * 100 - 2  # $2,739.5 of its $5,000
    assert c.ex.accounts[S1.address].positions[BTC_PERP].size == -5_000
    assert c.ex.accounts[S1.address].balance(USDC) == s1_before
    assert c.ex.accounts[M.address].positions[BTC_PERP].size == 5_000
    assert c.ex.accounts[LN.address].balance(USDC) >= lender  # no position: no loss
    assert T.address not in c.ex.accounts or risk.maintenance(c.ex, c.ex.accounts[T.address]).equity >= 0
    assert risk.maintenance(c.ex, c.ex.accounts[INSURANCE_ACCOUNT]).equity >= -2


def test_adl_score_ranks_higher_leverage_first() -> None:
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    for k, amount in ((S1, 40_000), (S2, 3_000), (M, 1_000_000)):
        c.fund(k, USDC, amount * USD)
    c.order(S1, BTC_PERP, False, 60_000, 5_000)
    c.order(S2, BTC_PERP, False, 60_000, 5_000)
    c.order(M, BTC_PERP, True, 60_000, 10_000, tif=Tif.IOC)
    set_prices(c, btc=50_000 * USD)
    from state.liquidation import _adl_score

    s1 = _adl_score(c.ex, c.ex.accounts[S1.address], BTC_PERP)
    s2 = _adl_score(c.ex, c.ex.accounts[S2.address], BTC_PERP)
    losing = _adl_score(c.ex, c.ex.accounts[M.address], BTC_PERP)
    # profit% (5k / 30k) x leverage (25k notional / equity): S2's equity 3k + 5k - the $3 maker fee
    assert s2 == (0, 5_000 * USD * 25_000 * USD * 10**12 // (30_000 * USD * 7_997 * USD))
    assert s1 == (0, 5_000 * USD * 25_000 * USD * 10**12 // (30_000 * USD * 44_997 * USD))
    assert s2[1] > s1[1] and losing == (1, 0)


def test_socialized_loss_only_when_fund_and_adl_are_exhausted() -> None:
    """1 BTC collateral, $50k borrowed and withdrawn; BTC crashes to $20k: equity -$30k, no
    perp to deleverage, an empty fund: the fund takes the account and the lenders of USDC
    absorb the $30k through the supply index. (An instantaneous crash: this chain lets the
    oracle move 100% in a block; the default band would walk it down over ~11 blocks.)"""
    c = risk_chain(risk={"oracle": {"max_move_ppm": 1_000_000}})
    set_prices(c, btc=PX_60K)
    c.fund(LN, USDC, 100_000 * USD)
    c.fund(B, BTC, BTC_UNIT)
    r = c.block(c.sign(B, Borrow(USDC, 50_000 * USD)), c.sign(B, Withdraw(USDC, 50_000 * USD, b"out")))
    assert all(x.ok for x in r.receipts)
    lender = c.ex.accounts[LN.address].balance(USDC)
    set_prices(c, btc=20_000 * USD)
    result = c.last
    soc = [e for _, e in result.events if isinstance(e, tuple) and e[0] == "socialized"]
    assert len(soc) == 1 and soc[0][1] == USDC and abs(soc[0][2] - 30_000 * USD) < 10 * USD
    loss = lender - c.ex.accounts[LN.address].balance(USDC)
    assert 29_990 * USD < loss < 30_010 * USD
    fund = risk.maintenance(c.ex, c.ex.accounts[INSURANCE_ACCOUNT])
    assert fund.equity >= 0
    check_all(c, {USDC: 50_000 * USD, BTC: BTC_UNIT}, list(result.events))


def test_unwind_order_and_safety_bound() -> None:
    """T holds 2 BTC, is short 1 BTC-PERP (hedging half) and borrowed $115k. At 56,500 its
    equity (~$1,479) is below maintenance (~$1,702) but above the backstop line. It asked
    for its spot BTC to go first: 25% of it (0.5 BTC) is sold into M's bid, which lowers the
    requirement (the unhedged half shrinks), and that is enough."""
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(LN, USDC, 2_000_000 * USD)
    c.fund(M, USDC, 1_000_000 * USD)
    c.fund(T, BTC, 2 * BTC_UNIT)
    assert c.run(T, SetUnwindOrder((BTC_SPOT, BTC_PERP))).ok
    assert c.ex.accounts[T.address].unwind == (BTC_SPOT, BTC_PERP)
    c.order(M, BTC_PERP, True, 60_000, LOTS)
    assert c.order(T, BTC_PERP, False, 60_000, LOTS, tif=Tif.IOC).status == "filled"
    r = c.block(c.sign(T, Borrow(USDC, 115_000 * USD)), c.sign(T, Withdraw(USDC, 115_000 * USD, b"out")))
    assert all(x.ok for x in r.receipts), r.receipts
    c.order(M, BTC_SPOT, True, 57_000, 30_000)  # bids for T's spot
    set_prices(c, btc=56_500 * USD)
    ev = _liq_events(c.last, T.address)
    assert [e[2] for e in ev] == ["start", "book"]
    assert ev[1][3] == BTC_SPOT and ev[1][5] == 5_000  # its chosen leg, 25% of 20,000 lots
    assert c.ex.accounts[T.address].balance(BTC) == 3 * BTC_UNIT // 2
    after = mm(c, T)
    assert after.equity >= after.requirement


def test_safety_bound_skips_a_leg_whose_unwinding_adds_risk() -> None:
    """Perfectly hedged (1 BTC spot, 1 BTC short): selling either leg alone would replace the
    0.5% hedge add-on with a 2.5-3% unhedged charge, so neither passes the bound."""
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(M, USDC, 1_000_000 * USD)
    c.fund(T, BTC, BTC_UNIT)
    c.order(M, BTC_PERP, True, 60_000, LOTS)
    c.order(T, BTC_PERP, False, 60_000, LOTS, tif=Tif.IOC)
    from state.liquidation import _legs

    now = mm(c, T).requirement
    legs = _legs(c.ex, c.ex.accounts[T.address])
    assert [leg[0] for leg in legs] == [BTC_PERP, BTC_SPOT]  # by risk contribution: 3% > 2.5%
    for m, is_buy, lots, notional in legs:
        chunk = lots // 4
        after = risk.assess(c.ex, c.ex.accounts[T.address], False, fill=(m, is_buy, chunk, notional // 4))
        assert after.requirement > now


def _fund(c: Chain) -> int:
    acct = c.ex.accounts.get(INSURANCE_ACCOUNT)
    return risk.maintenance(c.ex, acct).equity if acct else 0
