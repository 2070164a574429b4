"""Portfolio margin, named cases with hand-computed numbers.

Oracle: BTC = $60,000 (6e10 micro-USDC per BTC). BTC-PERP lot = 0.0001 BTC, so 1 BTC is
10,000 lots and its notional is 6e10. Genesis defaults: BTC S_IM 5%, S_MM 3%, haircut
0.95 / 0.975, hedge add-on 1% / 0.5%, size add-on 1000 / 500 ppm x sqrt(N / $1M),
borrow add-on 3 / 1 days of interest.

Size add-on on a 6e10 notional: isqrt(6e10) = 244,948, so initial
ceil(6e10 * 1000 * 244948 / 1e12) = 14,696,880 and maintenance 7,348,440.
"""

from __future__ import annotations

from math import isqrt

from hypothesis import given
from hypothesis import strategies as st

from state import risk, views
from state.errors import Code
from state.tx import Batch, Borrow, PlaceOrder, Tif, Withdraw
from tests.harness import BTC, BTC_PERP, USDC, key
from tests.state.riskkit import BTC_UNIT, PX_60K, USD, im, mm, risk_chain, set_prices

L, S, H, B, LN, OR = (key(i) for i in range(60, 66))
ONE_BTC_LOTS = 10_000
NOTIONAL = 60_000_000_000  # 1 BTC at $60k
SIZE_IM, SIZE_MM = 14_696_880, 7_348_440


def perp_trade(chain, buyer, seller, lots=ONE_BTC_LOTS, price=60_000):  # type: ignore[no-untyped-def]
    assert chain.order(seller, BTC_PERP, False, price, lots).status == "resting"
    assert chain.order(buyer, BTC_PERP, True, price, lots, tif=Tif.IOC).status == "filled"


def test_naked_long_perp() -> None:
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(L, USDC, 10_000 * USD)
    c.fund(S, USDC, 10_000 * USD)
    perp_trade(c, L, S)
    a = mm(c, L)
    assert a.equity == 10_000 * USD - 21_000_000  # taker fee 350 ppm of 6e10
    # 3% scenario: the grid's worst point k = -1 loses 0.03 * 6e10
    assert a.requirement == 1_800_000_000 + SIZE_MM == 1_807_348_440
    assert im(c, L).requirement == 3_000_000_000 + SIZE_IM == 3_014_696_880
    assert a.underlyings[BTC][:3] == [0, NOTIONAL, NOTIONAL]


def test_naked_short_perp() -> None:
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(L, USDC, 10_000 * USD)
    c.fund(S, USDC, 10_000 * USD)
    perp_trade(c, L, S)
    a = mm(c, S)
    assert a.equity == 10_000 * USD - 6_000_000  # maker fee 100 ppm
    assert a.requirement == 1_807_348_440  # symmetric: the grid has k = +1 too
    assert im(c, S).requirement == 3_014_696_880


def test_hedged_account_needs_a_small_fraction_of_its_legs() -> None:
    """Long 1 BTC spot, short 1 BTC-PERP: no scenario loss, only the 1% hedge add-on."""
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(H, BTC, BTC_UNIT)
    c.fund(H, USDC, 1_000 * USD)
    c.fund(L, USDC, 10_000 * USD)
    perp_trade(c, L, H)
    ex = c.ex
    hedged_im = im(c, H).requirement
    hedged_mm = mm(c, H).requirement
    assert hedged_im == 600_000_000  # 1% of the 6e10 offset
    assert hedged_mm == 300_000_000  # 0.5%
    spot_leg = risk.underlying_requirement(ex, BTC, NOTIONAL, 0, 0, True)
    perp_leg = risk.underlying_requirement(ex, BTC, 0, -NOTIONAL, NOTIONAL, True)
    assert spot_leg == 3_000_000_000 + SIZE_IM  # the 5% haircut of unhedged spot collateral
    assert perp_leg == 3_000_000_000 + SIZE_IM
    assert hedged_im * 10 < spot_leg + perp_leg  # under a tenth of the legs apart (9.95%)
    assert im(c, L).requirement == 3_014_696_880  # the naked long on the other side


def test_spot_collateral_with_borrow() -> None:
    """1 BTC deposited, 30,000 USDC borrowed and withdrawn. The lender supplied 100,000, so
    utilization is 30% and the USDC rate 4% * 30/90 = 13,333 ppm a year."""
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(LN, USDC, 100_000 * USD)
    c.fund(B, BTC, BTC_UNIT)
    r = c.block(c.sign(B, Borrow(USDC, 30_000 * USD)), c.sign(B, Withdraw(USDC, 30_000 * USD, b"out")))
    assert [x.code for x in r.receipts] == [Code.OK, Code.OK]
    ex = c.ex
    acct = ex.accounts[B.address]
    assert ex.pools.debt(acct, USDC) == 30_000 * USD and acct.balance(USDC) == -30_000 * USD
    assert ex.pools[USDC].rate_ppm == 13_333
    a = mm(c, B)
    assert a.equity == 30_000 * USD
    # unhedged spot: haircut 2.5% of 6e10; 1 day of interest: ceil(3e10 * 13333 / 365e6)
    assert a.requirement == 1_500_000_000 + SIZE_MM + 1_095_864 == 1_508_444_304
    # initial: 5% haircut, 3 days: ceil(3e10 * 13333 * 3 / 365e6) = 3,287,590
    assert im(c, B).requirement == 3_000_000_000 + SIZE_IM + 3_287_590 == 3_017_984_470


def test_withdrawal_beyond_initial_margin_is_rejected_with_shortfall() -> None:
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(LN, USDC, 100_000 * USD)
    c.fund(B, BTC, BTC_UNIT)
    r = c.block(c.sign(B, Borrow(USDC, 58_000 * USD)), c.sign(B, Withdraw(USDC, 58_000 * USD, b"out")))
    assert r.receipts[0].code == Code.OK  # drawn into idle: the balance is unchanged
    assert r.receipts[1].code == Code.INSUFFICIENT_MARGIN and "shortfall" in r.receipts[1].message
    verdict = views.can_withdraw(c.ex, B.address, USDC, 50_000 * USD)
    assert verdict["ok"] is True
    assert views.can_withdraw(c.ex, B.address, USDC, 58_000 * USD)["name"] == "INSUFFICIENT_MARGIN"


def test_open_orders_count_at_their_worst_side() -> None:
    """$1,000 account: perp bids 1000 lots at 59,000, asks 500 lots at 61,000.
    Bids filled: 5% of 6e9 + size 464,754 + fee 2,065,000 (the fill below the oracle is not a
    gain) = 302,529,754; asks filled: 1.5e8 + 164,316 + 1,067,500 = 151,231,816."""
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(OR, USDC, 1_000 * USD)
    r = c.run(OR, Batch((PlaceOrder(BTC_PERP, True, 59_000, 1_000, Tif.GTC, False, None),
                        PlaceOrder(BTC_PERP, False, 61_000, 500, Tif.GTC, False, None))))
    assert [x.status for x in r.results] == ["resting", "resting"]
    assert im(c, OR).requirement == 302_529_754
    assert mm(c, OR).requirement == 0  # orders are not maintenance liabilities
    # one more bid of 1000 lots doubles the bid side: ~$606 of $1000 is fine, 3x is not
    assert views.can_place_order(c.ex, OR.address, PlaceOrder(BTC_PERP, True, 59_000, 1_000, Tif.GTC, False, None))["ok"]
    no = views.can_place_order(c.ex, OR.address, PlaceOrder(BTC_PERP, True, 59_000, 3_000, Tif.GTC, False, None))
    assert no["name"] == "INSUFFICIENT_MARGIN" and "shortfall" in no["message"]


def test_reducing_order_is_allowed_below_initial_margin() -> None:
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(L, USDC, 3_100 * USD)
    c.fund(S, USDC, 100_000 * USD)
    perp_trade(c, L, S)
    set_prices(c, btc=59_000 * USD)  # L now below initial margin (equity ~$2,079)
    assert im(c, L).shortfall > 0
    assert views.can_place_order(c.ex, L.address, PlaceOrder(BTC_PERP, True, 59_000, 10, Tif.GTC, False, None))[
        "name"] == "INSUFFICIENT_MARGIN"
    assert c.order(L, BTC_PERP, False, 59_500, 5_000).status == "resting"  # reduces: always allowed


def test_margin_summary_and_liquidation_price() -> None:
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(L, USDC, 10_000 * USD)
    c.fund(S, USDC, 10_000 * USD)
    perp_trade(c, L, S)
    s = views.margin_summary(c.ex, L.address)
    assert (s["equity"], s["maintenance"], s["initial"]) == (9_979_000_000, 1_807_348_440, 3_014_696_880)
    assert s["margin_ratio_ppm"] == 1_807_348_440 * 1_000_000 // 9_979_000_000
    assert s["free_collateral"] == 9_979_000_000 - 3_014_696_880
    assert s["positions"][0]["size"] == ONE_BTC_LOTS and not s["liquidatable"]
    liq = s["liquidation_prices"][str(BTC)]
    assert 51_000 * USD < liq < 52_000 * USD  # ~ (equity - MM) / 1 BTC below 60k, MM shrinking with price
    # at that price the account is (almost exactly) at maintenance
    set_prices(c, btc=liq)
    a = mm(c, L)
    assert abs(a.equity - a.requirement) < a.requirement // 1000


@given(net=st.one_of(st.integers(1, 10**7), st.integers(1, 10**15), st.integers(1, 10**24)),
       size_ppm=st.one_of(st.sampled_from([1, 500, 1_000]), st.integers(1, 10**6)),
       size_ref=st.one_of(st.sampled_from([1, 3, 10**6, 10**12, 7 * 10**11]), st.integers(1, 10**15)))
def test_size_addon_is_the_documented_formula(net: int, size_ppm: int, size_ref: int) -> None:
    """The add-on is computed split into word-sized steps; it must equal the plain formula
    for every notional and parameter, or compiled and interpreted nodes could differ."""
    want = -(-net * size_ppm * isqrt(net * 10**12 // size_ref) // 10**12)
    assert risk.size_addon(net, size_ppm, size_ref) == want
