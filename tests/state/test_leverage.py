"""Leverage: each derivative market's max_leverage, and the account's own (update_leverage).

Hand-computed numbers at BTC $60,000 (a lot is 0.0001 BTC, $6): the leverage floor of an
underlying is the derivative value not offset by spot (|derivative| - |spot|, at least 0,
when of opposite signs; |derivative| when of the same sign) / leverage, rounded up.
"""

from __future__ import annotations

from state import risk
from state.errors import Code
from state.genesis import default_markets
from state.tx import UpdateLeverage
from tests.harness import BTC, BTC_PERP, BTC_SPOT, ETH_PERP, USDC, key
from tests.state.riskkit import BTC_UNIT, PX_60K, USD, im, risk_chain, set_prices

A, MAKER = key(60), key(61)


def _chain(btc_perp_max_leverage: int = 20):  # type: ignore[no-untyped-def]
    markets = [{**m, "max_leverage": btc_perp_max_leverage} if m["symbol"] == "BTC-PERP" else m
               for m in default_markets()]
    c = risk_chain(markets=markets)
    set_prices(c, btc=PX_60K)
    c.fund(MAKER, USDC, 10_000_000 * USD)
    c.fund(MAKER, BTC, 100 * BTC_UNIT)
    return c


def test_max_leverage_one_refuses_a_position_beyond_equity() -> None:
    """The audit's case: ~$160k of equity, a market showing max leverage 1. A 10 BTC bid
    ($600k) is refused; a 2 BTC bid ($120k, floor $120k) fits."""
    c = _chain(btc_perp_max_leverage=1)
    c.fund(A, USDC, 160_000 * USD)
    assert c.order(A, BTC_PERP, True, 60_000, 100_000).code == Code.INSUFFICIENT_MARGIN
    assert c.order(A, BTC_PERP, True, 60_000, 20_000).status == "resting"
    # the floor, $120k / 1 (above the 5% scenarios), plus the bid's worst-case taker fee
    # (350 ppm of $120k: $42)
    assert im(c, A).requirement == 120_042 * USD


def test_default_leverage_twenty_is_not_tighter_than_the_scenarios() -> None:
    """At 20x the floor is 5% of the notional; the initial scenarios already ask 5% plus the
    size add-on, so a naked position's requirement is unchanged."""
    c = _chain()
    c.fund(A, USDC, 10_000 * USD)
    assert c.order(MAKER, BTC_PERP, False, 60_000, 10_000).status == "resting"
    assert c.order(A, BTC_PERP, True, 60_000, 10_000).status == "filled"  # 1 BTC
    req = im(c, A).requirement
    assert req > 60_000 * USD // 20
    assert req == risk.underlying_requirement(c.ex, BTC, 0, 60_000 * USD, 60_000 * USD, True)


def test_a_spot_hedge_needs_no_leverage_even_at_one() -> None:
    """Long 1 BTC spot, short 1 BTC-PERP on a 1x market: min(|60k - 60k|, 60k) = 0, the
    floor is zero and the hedge keeps its 1% add-on."""
    c = _chain(btc_perp_max_leverage=1)
    c.fund(A, BTC, BTC_UNIT)
    c.fund(A, USDC, 1_000 * USD)
    assert c.order(MAKER, BTC_PERP, True, 60_000, 10_000).status == "resting"
    assert c.order(A, BTC_PERP, False, 60_000, 10_000).status == "filled"
    assert im(c, A).requirement == 600 * USD


def test_more_spot_than_the_short_perp_offsets_adds_no_floor() -> None:
    """Long 3 BTC spot, short 1 BTC-PERP on a 1x market: the perp is offset whole, so the
    floor is zero and the requirement is the scenarios', as on a 20x market. The floor was
    min(|3 - 1|, 1) x $60k = $60,000: buying spot against a short perp (fully funded) raised
    it, and the extended adversary saw an accepted spot buy take an account from $2,028 of
    floor to $17,028, below initial margin."""
    reqs = []
    for lev in (1, 20):
        c = _chain(btc_perp_max_leverage=lev)
        c.fund(A, BTC, 3 * BTC_UNIT)
        c.fund(A, USDC, 1_000 * USD)
        assert c.order(MAKER, BTC_PERP, True, 60_000, 10_000).status == "resting"
        assert c.order(A, BTC_PERP, False, 60_000, 10_000).status == "filled"
        reqs.append(im(c, A).requirement)
    assert reqs[0] == reqs[1] < 60_000 * USD
    assert risk.leverage_floor(3, -1, 1) == risk.leverage_floor(-3, 1, 1) == 0
    assert risk.leverage_floor(1, -3, 1) == risk.leverage_floor(-1, 3, 1) == 2
    assert risk.leverage_floor(1, 3, 1) == risk.leverage_floor(0, -3, 1) == 3


def test_update_leverage_raises_the_requirement_and_can_be_undone() -> None:
    """1 BTC long: at 2x the floor is $30,000 (equity ~$40k: allowed); at 1x $60,000 is more
    than the equity: refused, the setting unchanged; 0 restores the market's 20x."""
    c = _chain()
    c.fund(A, USDC, 40_000 * USD)
    assert c.order(MAKER, BTC_PERP, False, 60_000, 10_000).status == "resting"
    assert c.order(A, BTC_PERP, True, 60_000, 10_000).status == "filled"
    assert c.result(A, UpdateLeverage(BTC_PERP, 2)).status == "ok"
    assert c.ex.accounts[A.address].leverage == {BTC_PERP: 2}
    assert im(c, A).requirement == 30_000 * USD
    r = c.result(A, UpdateLeverage(BTC_PERP, 1))
    assert r.code == Code.INSUFFICIENT_MARGIN
    assert c.ex.accounts[A.address].leverage == {BTC_PERP: 2}
    assert c.result(A, UpdateLeverage(BTC_PERP, 0)).status == "ok"
    assert c.ex.accounts[A.address].leverage == {}


def test_leverage_setting_limits_new_orders() -> None:
    """At 3x with $10,000: a 0.6 BTC bid is $36k at the mark, floor $12k: refused. A 0.49 BTC
    bid at $50,000 is $29,400 at the mark: floor $9,800 plus its fee at most ($8.58): fits."""
    c = _chain()
    c.fund(A, USDC, 10_000 * USD)
    assert c.result(A, UpdateLeverage(BTC_PERP, 3)).status == "ok"
    assert c.order(A, BTC_PERP, True, 59_000, 6_000).code == Code.INSUFFICIENT_MARGIN
    assert c.order(A, BTC_PERP, True, 50_000, 4_900).status == "resting"


def test_update_leverage_bounds() -> None:
    c = _chain()
    c.fund(A, USDC, 1_000 * USD)
    assert c.result(A, UpdateLeverage(BTC_PERP, 21)).code == Code.LEVERAGE_OUT_OF_RANGE
    assert c.result(A, UpdateLeverage(BTC_SPOT, 2)).code == Code.LEVERAGE_OUT_OF_RANGE
    assert c.result(A, UpdateLeverage(99, 2)).code == Code.UNKNOWN_MARKET
    assert c.result(A, UpdateLeverage(ETH_PERP, 20)).message == "unchanged"  # the maximum is the default


def test_the_setting_survives_a_restart() -> None:
    c = _chain()
    c.fund(A, USDC, 1_000 * USD)
    assert c.result(A, UpdateLeverage(BTC_PERP, 5)).status == "ok"
    reopened = c.fork()
    assert reopened.ex.accounts[A.address].leverage == {BTC_PERP: 5}
