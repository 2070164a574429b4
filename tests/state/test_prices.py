"""Oracle aggregation (median of fresh validator prices) and the mark price formula."""

from __future__ import annotations

from state.errors import Code
from state.prices import mark_price, median
from state.tx import OraclePrices, Tif
from tests.harness import BTC, BTC_PERP, ETH, USDC, key
from tests.state.riskkit import USD, risk_chain, set_prices

V1, V2, V3, M = key(80), key(81), key(82), key(83)


def test_median_of_fresh_submissions() -> None:
    c = risk_chain(validators=[V1, V2, V3])
    set_prices(c, btc=60_000 * USD, by=V1)
    assert c.ex.pools[BTC].oracle_px == 60_000 * USD
    set_prices(c, btc=61_000 * USD, by=V2)
    assert c.ex.pools[BTC].oracle_px == 60_500 * USD  # even count: floor of the middle two's mean
    set_prices(c, btc=70_000 * USD, eth=3_000 * USD, by=V3)
    assert c.ex.pools[BTC].oracle_px == 61_000 * USD  # one outlier cannot move the median
    assert c.ex.pools[ETH].oracle_px == 3_000 * USD
    assert c.ex.index_px[BTC] == 61_000 * USD and c.ex.index_px[USDC] == USD
    assert median([5, 1, 3]) == 3 and median([1, 4]) == 2


def test_stale_submissions_expire_after_the_configured_block_time() -> None:
    c = risk_chain(validators=[V1, V2, V3], risk={"oracle": {"staleness_s": 10}})
    set_prices(c, btc=60_000 * USD, by=V1)
    for _ in range(5):
        c.block()
    set_prices(c, btc=62_000 * USD, by=V2)  # 6 s later: both fresh
    assert c.ex.pools[BTC].oracle_px == 61_000 * USD
    for _ in range(4):
        c.block()  # V1's price is 11 s old now, V2's 5 s
    assert (BTC, 0) not in c.ex.oracle_subs
    assert c.ex.pools[BTC].oracle_px == 62_000 * USD
    for _ in range(10):
        c.block()  # every submission expired: the last oracle price stays, its age shows
    assert not c.ex.oracle_subs
    assert c.ex.pools[BTC].oracle_px == 62_000 * USD and c.ex.pools[BTC].oracle_ms <= c.time - 5_000


def test_min_submissions_gates_the_oracle() -> None:
    c = risk_chain(validators=[V1, V2, V3], risk={"oracle": {"min_submissions": 2}})
    set_prices(c, btc=60_000 * USD, by=V1)
    assert c.ex.pools[BTC].oracle_px == 0
    set_prices(c, btc=60_200 * USD, by=V2)
    assert c.ex.pools[BTC].oracle_px == 60_100 * USD


def test_mark_is_the_median_of_oracle_plus_basis_ema_book_and_oracle() -> None:
    """Oracle 60,000; book 60,100 / 60,300: the mid's basis is +200 and the first sample sets
    the EMA, so mark = median(60,200, median(bid, ask) = 60,200, 60,000) = 60,200. Then the
    oracle moves to 60,100: basis sample +100, EMA += (100 - 200) * 1 s / 150 s (floored):
    199,333,333; mark = median(60,299.33.., 60,200, 60,100) = 60,200."""
    c = risk_chain()
    set_prices(c, btc=60_000 * USD)
    assert mark_price(c.ex, BTC_PERP) == 60_000 * USD  # no book: the oracle
    c.fund(M, USDC, 100_000 * USD)
    r = c.block(c.sign(M, _alo(True, 60_100)), c.sign(M, _alo(False, 60_300)))
    assert all(x.code == Code.OK for x in r.receipts)
    st = c.ex.mstate[BTC_PERP]
    assert st.ema_basis == 200 * USD
    assert st.mark == 60_200 * USD
    set_prices(c, btc=60_100 * USD)
    assert st.ema_basis == 200 * USD - 666_667 == 199_333_333
    assert st.mark == 60_200 * USD
    # a wild book cannot drag the mark past oracle + basis: median of three
    c.block(c.sign(M, _alo(True, 60_150)), c.sign(M, _alo(False, 90_000)))
    assert 60_100 * USD <= st.mark <= 60_300 * USD


def test_without_an_oracle_the_mark_follows_the_book() -> None:
    c = risk_chain()
    c.fund(M, USDC, 100_000 * USD)
    c.block(c.sign(M, _alo(True, 59_000)), c.sign(M, _alo(False, 61_000)))
    assert mark_price(c.ex, BTC_PERP) == 60_000 * USD  # median(bid, ask) with no last trade
    assert c.ex.index_px[BTC] == 60_000 * USD  # the perp book stands in for the index too


def _alo(is_buy: bool, price: int) -> OraclePrices | object:
    from state.tx import PlaceOrder

    return PlaceOrder(BTC_PERP, is_buy, price, 100, Tif.ALO, False, None)
