"""Oracle aggregation (median of fresh validator prices) and the mark price formula."""

from __future__ import annotations

import math

import pytest

from state.errors import Code
from state.genesis import Genesis, make_genesis_doc, oracle_quorum
from state.prices import EMA_ONE, advance_basis, ema_decay, mark_price, median
from state.tx import CancelAll, PlaceOrder, Tif
from tests.harness import BTC, BTC_PERP, BTC_SPOT, ETH, USDC, Chain, key, make_genesis
from tests.state.riskkit import USD, risk_chain, set_prices

V1, V2, V3, M = key(80), key(81), key(82), key(83)


def test_median_of_fresh_submissions() -> None:
    c = risk_chain(validators=[V1, V2, V3], risk={"oracle": {"min_submissions": 1}})
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
    # a quorum of 1 (below the default of 2 for three validators): one fresh price moves it
    c = risk_chain(validators=[V1, V2, V3], risk={"oracle": {"staleness_s": 10, "min_submissions": 1}})
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


def test_the_default_quorum_is_more_than_a_third_of_the_validators() -> None:
    """Four validators, the default quorum (floor(4/3)+1 = 2): with the honest feeds stale,
    one validator's submissions do not move the oracle at all (with a quorum of 1 it walked
    the index 10% a block); a second fresh price does."""
    vals = [V1, V2, V3, M]
    c = risk_chain(validators=vals, risk={"oracle": {"staleness_s": 10}})
    assert c.genesis.risk.oracle_min_submissions == 2
    for _ in range(5):
        set_prices(c, btc=1, by=V1)
        c.block()
    assert c.ex.index_px[BTC] == 60_000 * USD and c.ex.pools[BTC].oracle_px == 0
    set_prices(c, btc=60_200 * USD, by=V2)  # V1's 1 (fresh) and 60,200: the median, banded
    assert c.ex.pools[BTC].oracle_px == 54_000 * USD
    assert [oracle_quorum(n) for n in (0, 1, 2, 3, 4, 6, 7, 100)] == [1, 1, 1, 2, 2, 3, 3, 34]


def test_the_written_quorum_is_the_default_and_cannot_exceed_the_validators() -> None:
    """make_genesis_doc writes the quorum for its validator set; a quorum larger than the
    validator set (the oracle could never move) is refused when the document is parsed."""
    vals = [{"name": f"v{i}", "pubkey": key(70 + i).pubkey.hex(), "power": 1} for i in range(7)]
    doc = make_genesis_doc(chain_id="q", validators=vals, bridge_pubkey=key(1).pubkey)
    assert doc["risk"]["oracle"]["min_submissions"] == 3
    assert Genesis.from_json(doc).risk.oracle_min_submissions == 3
    del doc["risk"]["oracle"]["min_submissions"]
    assert Genesis.from_json(doc).risk.oracle_min_submissions == 3
    doc["risk"]["oracle"]["min_submissions"] = 8
    with pytest.raises(ValueError, match="min_submissions"):
        Genesis.from_json(doc)


def test_mark_is_the_median_of_oracle_plus_basis_ema_impact_mid_and_oracle() -> None:
    """Oracle 60,000; a book of 1 BTC a side at 60,100 / 60,300 (deeper than the $10k impact
    notional): impact mid 60,200, basis sample +200. The EMA started at 0 at the first block
    and moves by (1 - e^(-1 s / 150 s)) of the gap per 1 s block: 1,328,898 after one block;
    mark = median(60,001.33, 60,200, 60,000) = 60,001.33. After 150 s the basis is ~63% of
    the way, and a wild book cannot drag the mark past the band (2%)."""
    c = risk_chain()
    set_prices(c, btc=60_000 * USD)
    assert mark_price(c.ex, BTC_PERP) == 60_000 * USD  # no book: the oracle
    c.fund(M, USDC, 1_000_000 * USD)
    r = c.block(c.sign(M, _alo(True, 60_100)), c.sign(M, _alo(False, 60_300)))
    assert all(x.code == Code.OK for x in r.receipts)
    st = c.ex.mstate[BTC_PERP]
    assert st.ema_basis == advance_basis(0, 200 * USD, 1000, 150_000) == 1_328_898
    assert st.mark == 60_000 * USD + st.ema_basis
    for _ in range(149):
        c.block()
    assert abs(st.ema_basis - 200 * USD * (1 - math.exp(-1))) < 200
    assert st.mark == 60_000 * USD + st.ema_basis
    # a wild book: the impact ask at 71,000 (inside the 20% price band) pulls the mid up,
    # the mark's 2% band holds the mark
    c.block(c.sign(M, CancelAll(BTC_PERP)))
    c.block(c.sign(M, _alo(True, 60_150)), c.sign(M, _alo(False, 71_000)))
    for _ in range(600):
        c.block()
    assert st.mark == 61_200 * USD  # 60,000 + 2%


def test_basis_ema_is_a_function_of_block_time_not_block_count() -> None:
    """100 blocks of 100 ms or one of 10 s move the EMA alike (to the rounding of each
    step), and both match 1 - e^(-10/150) of the gap."""
    tau = 150_000
    fast = 0
    for _ in range(100):
        fast = advance_basis(fast, 6_000 * USD, 100, tau)
    slow = advance_basis(0, 6_000 * USD, 10_000, tau)
    assert abs(fast - slow) <= 100
    assert abs(slow - 6_000 * USD * (1 - math.exp(-10 / 150))) <= 2
    assert ema_decay(0, tau) == EMA_ONE and ema_decay(48 * tau, tau) == 0
    # decays compose: e^-a * e^-b == e^-(a+b) to well below 2^-60
    assert abs(ema_decay(300, tau) * ema_decay(700, tau) // EMA_ONE - ema_decay(1_000, tau)) < 16


def test_without_an_oracle_price_there_is_no_index_and_no_mark() -> None:
    """No validator price and no initial price: the book sets neither the index nor the
    mark (state/prices.py), whatever it quotes."""
    c = Chain(genesis=make_genesis(initial_oracle_prices={}))
    c.fund(M, USDC, 100_000 * USD)
    c.fund(M, BTC, 10**8)
    c.block(c.sign(M, PlaceOrder(BTC_SPOT, True, 59_000, 100, Tif.ALO, False, None)),
            c.sign(M, PlaceOrder(BTC_SPOT, False, 61_000, 100, Tif.ALO, False, None)))
    assert mark_price(c.ex, BTC_PERP) == 0
    assert c.ex.index_px[BTC] == 0
    # a genesis initial price is the index until the first validator price
    c = risk_chain()
    assert c.ex.index_px[BTC] == 60_000 * USD
    set_prices(c, btc=61_000 * USD)
    assert c.ex.index_px[BTC] == 61_000 * USD


def _alo(is_buy: bool, price: int) -> PlaceOrder:
    return PlaceOrder(BTC_PERP, is_buy, price, 10_000, Tif.ALO, False, None)


def test_genesis_price_parameters_are_validated() -> None:
    import pytest

    g = make_genesis()
    assert g.initial_oracle_prices == (0, 60_000 * USD, 3_000 * USD)
    assert (g.risk.mark_band_ppm, g.risk.mark_impact_notional) == (20_000, 10_000 * USD)
    assert make_genesis(initial_oracle_prices={}).initial_oracle_prices == (0, 0, 0)
    for bad in ({"USDC": 1}, {"DOGE": 1}, {"BTC": 0}, {"BTC": (1 << 62) + 1}):
        with pytest.raises(ValueError, match="initial_oracle_prices"):
            make_genesis(initial_oracle_prices=bad)
    for mark in ({"band_ppm": 0}, {"band_ppm": 1_000_001}, {"impact_notional": 0}):
        with pytest.raises(ValueError, match=r"risk\.mark"):
            make_genesis(risk={"mark": mark})
