"""Dated futures (state/futures.py): settlement TWAP, expiry, conservation, restarts.

Setup: the default four markets plus BTC-FUT (market 4, BTC terms: $1 ticks, 0.0001 BTC
lots, tick_value 100 micro-USDC) expiring 60 s after genesis with a 10 s settlement window.
Blocks are 1 s apart (the harness), so the window holds the blocks at T0+51 s .. T0+59 s
(the block at T0+50 s, the window's start, has dt 0) and the block at T0+60 s settles.
"""

from __future__ import annotations

import tempfile
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from state import funding, futures
from state.errors import Code
from state.events import FutureSettled, PositionSettled
from state.genesis import FUTURE, Genesis, default_markets, future_market
from state.prices import MarketState
from state.receipts import Cancelled
from state.tx import Tif
from tests.harness import BTC_PERP, T0, USDC, Chain, key, total_of
from tests.state.invariants import check_derived
from tests.state.riskkit import PX_60K, USD, risk_chain, set_prices

FUT = 4
EXPIRY = T0 + 60_000
WINDOW = 10_000
A, B, C, D, E = (key(i) for i in range(110, 115))


def _markets(expiry: int = EXPIRY, window: int = WINDOW) -> list[dict[str, Any]]:
    return [*default_markets(), future_market("BTC-FUT", "BTC", expiry, window)]


def _chain(path: str | None = None, expiry: int = EXPIRY, **overrides: Any) -> Chain:
    c = risk_chain(path, markets=_markets(expiry), **overrides)
    set_prices(c, btc=PX_60K)
    for k in (A, B, C, D, E):
        c.fund(k, USDC, 100_000 * USD)
    return c


def _until(c: Chain, t: int) -> None:
    """Run empty blocks until the next block is at time ``t``."""
    while c.time + 1000 < t:
        c.block()


def _trade(c: Chain) -> None:
    """A short 1 BTC to B (0.6) and C (0.4) at 60,000; B sells 0.2 to D at 60,500; C sells
    0.1 back to A at 59,800. Final: A -9,000 lots (entry $54,000), B +4,000 ($24,000),
    C +3,000 ($18,000), D +2,000 ($12,100). Sizes sum to zero; signed entries to +$100."""
    assert c.order(A, FUT, False, 60_000, 10_000).status == "resting"
    assert c.order(B, FUT, True, 60_000, 6_000, tif=Tif.IOC).status == "filled"
    assert c.order(C, FUT, True, 60_000, 4_000, tif=Tif.IOC).status == "filled"
    assert c.order(D, FUT, True, 60_500, 2_000).status == "resting"
    assert c.order(B, FUT, False, 60_500, 2_000, tif=Tif.IOC, reduce_only=True).status == "filled"
    assert c.order(A, FUT, True, 59_800, 1_000).status == "resting"
    assert c.order(C, FUT, False, 59_800, 1_000, tif=Tif.IOC).status == "filled"
    sizes = {k: c.ex.accounts[k.address].positions[FUT].size for k in (A, B, C, D)}
    assert sizes == {A: -9_000, B: 4_000, C: 3_000, D: 2_000}
    assert [c.ex.accounts[k.address].positions[FUT].signed_entry() for k in (A, B, C, D)] == [
        -54_000 * USD, 24_000 * USD, 18_000 * USD, 12_100 * USD]


def _run_window(c: Chain) -> None:
    """Index $60,000 at the ends of the blocks at T0+51..54 s, then $61,001 from the end of
    the block at T0+55 s (the submission) through T0+59 s (see ``S_TICKS``)."""
    _until(c, EXPIRY - WINDOW + 5_000)  # next block: T0+55 s, the price submission
    set_prices(c, btc=61_001 * USD)
    assert c.time == EXPIRY - WINDOW + 5_000
    _until(c, EXPIRY)  # the blocks up to T0+59 s


# TWAP by hand: blocks at 51, 52, 53, 54 s accumulate $60,000 with dt 1,000 each (4,000 ms);
# the blocks at 55 .. 59 s accumulate $61,001 (5 x 1,000 ms). Sum = 60,000 x 4,000 +
# 61,001 x 5,000 = 545,005,000 ($ x ms), weight 9,000 -> $60,556.111..., rounded to the
# nearest tick: 60,556 ticks.
S_TICKS = 60_556


def test_settlement_twap_pnl_and_zero_sum() -> None:
    c = _chain()
    _trade(c)
    # resting orders that the expiry cancels
    assert c.order(E, FUT, True, 50_000, 500).status == "resting"
    assert c.order(E, FUT, False, 65_000, 500).status == "resting"
    _run_window(c)
    st = c.ex.mstate[FUT]
    assert st.settle_weight == 9_000 and not st.settled
    assert (st.settle_sum_hi << 62) + st.settle_sum_lo == (60_000 * 4_000 + 61_001 * 5_000) * USD
    assert futures.settlement_price(c.ex, FUT) == S_TICKS * 1_000_000
    before = {k: c.balance(k, USDC) for k in (A, B, C, D, E)}
    entries = sum(c.ex.accounts[k.address].positions[FUT].signed_entry() for k in (A, B, C, D))
    total_before = total_of(c.ex, USDC)
    r = c.block()
    assert c.time == EXPIRY
    evs = [e for _, e in r.events]
    (fs,) = [e for e in evs if isinstance(e, FutureSettled)]
    assert fs == ("settlement", FUT, S_TICKS * 1_000_000, 4, 9_000)
    pnl = {A: -9_000 * S_TICKS * 100 + 54_000 * USD, B: 4_000 * S_TICKS * 100 - 24_000 * USD,
           C: 3_000 * S_TICKS * 100 - 18_000 * USD, D: 2_000 * S_TICKS * 100 - 12_100 * USD}
    assert pnl == {A: -500_400_000, B: 222_400_000, C: 166_800_000, D: 11_200_000}
    ps = [e for e in evs if isinstance(e, PositionSettled)]
    assert [(e.account, e.size, e.pnl) for e in ps] == sorted(
        (k.address, c2, pnl[k]) for k, c2 in ((A, -9_000), (B, 4_000), (C, 3_000), (D, 2_000)))
    for k in (A, B, C, D):
        assert c.balance(k, USDC) - before[k] == pnl[k]
        assert c.ex.accounts[k.address].positions[FUT].size == 0
    # exact zero sum: credits == -sum(signed entries); custody and total balances unchanged
    assert sum(pnl.values()) == -entries == -100 * USD
    # (before: balances + the positions' claims = custody; after: the balances alone)
    assert total_of(c.ex, USDC) == total_before + sum(pnl.values()) == c.ex.pools[USDC].custody
    assert c.ex.perp_entry_sum[FUT] == 0 and not c.ex.position_holders[FUT]
    # the open orders are cancelled at expiry, E's funds untouched
    cancels = [e for e in evs if isinstance(e, Cancelled)]
    assert sorted((e.owner, e.reason) for e in cancels) == [(E.address, "expired_market")] * 2
    assert not c.ex.books[FUT].orders and c.balance(E, USDC) == before[E]
    assert st.settled == 1 and st.settlement_price == S_TICKS * 1_000_000
    check_derived(c.ex)


def test_orders_rejected_after_expiry() -> None:
    c = _chain()
    _until(c, EXPIRY + 1000)
    c.block()
    for is_buy in (True, False):
        res = c.order(A, FUT, is_buy, 60_000, 100)
        assert res.code == Code.MARKET_CLOSED and "expired" in res.message
    assert c.order(A, BTC_PERP, True, 50_000, 100).status == "resting"  # other markets trade on


def test_order_at_expiry_block_itself_rejected() -> None:
    """The block at exactly expiry settles first (begin_block), then refuses its orders."""
    c = _chain()
    _until(c, EXPIRY)
    assert c.time + 1000 == EXPIRY
    res = c.order(A, FUT, True, 60_000, 100)
    assert res.code == Code.MARKET_CLOSED
    assert c.ex.mstate[FUT].settled == 1


def test_no_window_block_settles_at_index_at_expiry() -> None:
    """A settlement TWAP with no weight falls back to the index at expiry, rounded to a tick."""
    c = _chain()
    st = c.ex.mstate[FUT]
    st.settle_weight = st.settle_sum_hi = st.settle_sum_lo = 0
    c.ex.index_px[1] = 60_000_400_000  # $60,000.40 -> 60,000 ticks
    assert futures.settlement_price(c.ex, FUT) == 60_000 * 1_000_000
    c.ex.index_px[1] = 60_000_500_000  # half a tick rounds up
    assert futures.settlement_price(c.ex, FUT) == 60_001 * 1_000_000


def test_gap_over_the_window_settles_at_the_index() -> None:
    """No block falls in the window (the chain jumps from T0+45 s to T0+65 s): the settlement
    price is the index at expiry, $60,000; the settled market's record then stops changing."""
    c = _chain()
    _trade(c)
    _until(c, EXPIRY - WINDOW - 4_000)
    c.block()
    c.time = EXPIRY + 4_000  # the next block is at T0+65 s
    before = c.balance(A, USDC)
    r = c.block()
    (fs,) = [e for _, e in r.events if isinstance(e, FutureSettled)]
    assert fs.price == 60_000 * 1_000_000 and c.ex.mstate[FUT].settle_weight == 0
    assert c.balance(A, USDC) - before == -9_000 * 60_000 * 100 + 54_000 * USD == 0
    c.block()
    assert not any(k[:1] == b"k" and int.from_bytes(k[1:], "big") == FUT for k, _ in c.last.write_digests)


def test_no_funding_on_futures() -> None:
    """Funding every 10 s: the perp's index moves, the future's never does."""
    c = _chain(expiry=T0 + 10**9, risk={"funding": {"interval_ms": 10_000}})
    assert c.order(A, FUT, False, 60_300, 10_000).status == "resting"
    assert c.order(B, FUT, True, 60_300, 10_000, tif=Tif.IOC).status == "filled"
    assert c.order(C, BTC_PERP, False, 60_000, 10_000).status == "resting"
    assert c.order(D, BTC_PERP, True, 60_000, 10_000, tif=Tif.IOC).status == "filled"
    b_before = c.balance(B, USDC)
    funded = []
    for _ in range(25):
        funded += [e for _, e in c.block().events if isinstance(e, tuple) and e[0] == "funding"]
    assert {e[1] for e in funded} == {BTC_PERP, 3}
    st = c.ex.mstate[FUT]
    assert st.funding_index == 0 and st.premium_count == 0 and st.epoch_mark == 0
    assert c.ex.mstate[BTC_PERP].funding_index != 0
    pos = c.ex.accounts[B.address].positions[FUT]
    assert funding.owed_funding(c.ex, FUT, pos) == 0 and pos.funding_index == 0
    # the perp's position paid funding at each boundary (interest-bearing PnL: settled, untouched)
    assert c.ex.accounts[D.address].positions[BTC_PERP].funding_index == c.ex.mstate[BTC_PERP].funding_index != 0
    # a touch (B sells 2,000 lots to A's bid) realizes trading PnL only: 2,000 x (60,300 - 60,300)
    assert c.order(A, FUT, True, 60_300, 2_000).status == "resting"
    fee = 2_000 * 60_300 * 100 * 350 // 1_000_000
    assert c.order(B, FUT, False, 60_300, 2_000, tif=Tif.IOC).status == "filled"
    assert c.balance(B, USDC) == b_before - fee
    assert st.mark > 0  # marks run for futures as for perps


def test_liquidation_of_a_future_position() -> None:
    """T buys 1 BTC-FUT at 60,000 with $5,500; at 56,200 it is below maintenance and
    liquidated through the book, as a perp position would be (test_liquidation step 2)."""
    t, s, m = key(120), key(121), key(122)
    c = _chain(expiry=T0 + 10**9)
    c.fund(t, USDC, 5_500 * USD)
    for k in (s, m):
        c.fund(k, USDC, 1_000_000 * USD)
    assert c.order(s, FUT, False, 60_000, 10_000).status == "resting"
    assert c.order(t, FUT, True, 60_000, 10_000, tif=Tif.IOC).status == "filled"
    c.order(m, FUT, True, 55_000, 100_000)
    set_prices(c, btc=56_200 * USD)
    events = [e for _, e in c.last.events if isinstance(e, tuple) and e[0] == "liquidation" and e[1] == t.address]
    assert events[0][2] == "start"
    assert ("liquidation", t.address, "book", FUT, False, 2_500, 54_521) in events
    assert c.ex.accounts[t.address].positions[FUT].size == 7_500
    check_derived(c.ex)


def _settle_run(path: str | None, reopen_at: int | None) -> tuple[bytes, int, dict[bytes, int]]:
    c = _chain(path)
    _trade(c)
    _until(c, EXPIRY - WINDOW + 5_000)
    set_prices(c, btc=61_001 * USD)
    while c.time + 1000 < EXPIRY:
        c.block()
        if reopen_at is not None and c.time == reopen_at:
            c.reopen()
    c.block()
    bal = {k.address: c.balance(k, USDC) for k in (A, B, C, D)}
    out = (c.sm.app_hash, c.ex.mstate[FUT].settlement_price, bal)
    c.sm.close()
    return out


def test_restart_mid_window_gives_the_same_settlement() -> None:
    with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
        straight = _settle_run(d1, None)
        restarted = _settle_run(d2, EXPIRY - 3_000)
    assert straight == restarted
    assert straight[1] == S_TICKS * 1_000_000


def test_market_record_without_settlement_fields_loads() -> None:
    st = MarketState()
    st.load([1, 2, 3, 4, 5, 6, 7, 8])
    assert st.settled == 0 and st.record() == [1, 2, 3, 4, 5, 6, 7, 8]  # no new fields written
    st.settle_weight = 9
    assert len(st.record()) == 14
    again = MarketState()
    again.load(st.record())
    assert again.record() == st.record()


def _doc(**market: Any) -> dict[str, Any]:
    from state.genesis import make_genesis_doc
    from tests.harness import BRIDGE, CHAIN_ID

    doc = make_genesis_doc(chain_id=CHAIN_ID, validators=[], bridge_pubkey=BRIDGE.pubkey, genesis_time_ms=T0)
    fut = {**future_market("BTC-FUT", "BTC", EXPIRY), **market}
    doc["markets"] = [*doc["markets"], {k: v for k, v in fut.items() if v is not None}]
    return doc


@pytest.mark.parametrize(("market", "message"), [
    ({"expiry_ms": T0}, "expiry_ms"),  # not after genesis
    ({"expiry_ms": T0 - 5}, "expiry_ms"),
    ({"expiry_ms": None}, "expiry_ms"),  # missing
    ({"expiry_ms": (1 << 62) + 1}, "expiry_ms"),  # beyond MAX_TIME_MS
    ({"expiry_ms": 1.5e12}, "expiry_ms"),  # a float
    ({"settlement_window_ms": 0}, "settlement_window_ms"),
    ({"settlement_window_ms": (1 << 40) + 1}, "settlement_window_ms"),
    ({"kind": "perp"}, "futures only"),  # a perp with an expiry
])
def test_genesis_rejects_bad_future_terms(market: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Genesis.from_json(_doc(**market))


def test_genesis_future_terms_and_defaults() -> None:
    doc = _doc(settlement_window_ms=None)
    g = Genesis.from_json(doc)
    spec = g.markets[FUT]
    assert (spec.kind, spec.expiry_ms, spec.settlement_window_ms, spec.max_leverage) == (FUTURE, EXPIRY, 3_600_000, 20)
    assert spec.is_derivative and g.markets[BTC_PERP].is_derivative and not g.markets[0].is_derivative
    assert all(m.expiry_ms == 0 == m.settlement_window_ms for m in g.markets[:4])
    assert len(default_markets()) == 4  # tests assume four markets; the devnet appends the future


@settings(max_examples=12, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(59_000, 61_000),
                          st.integers(1, 3_000)), min_size=1, max_size=8),
       st.integers(55_000, 65_000))
def test_property_expiry_conserves_usdc_and_closes_everything(
        trades: list[tuple[int, int, int, int]], final_px: int) -> None:
    c = _chain()
    ks = (A, B, C)
    custody = c.ex.pools[USDC].custody
    for maker, taker, px, lots in trades:
        if maker == taker:
            continue
        c.order(ks[maker], FUT, False, px, lots)
        c.order(ks[taker], FUT, True, px, lots, tif=Tif.IOC)
    _until(c, EXPIRY - WINDOW + 3_000)
    set_prices(c, btc=final_px * USD)
    _until(c, EXPIRY + 1000)
    c.block()
    assert c.ex.mstate[FUT].settled == 1
    assert all(not a.positions.get(FUT) or a.positions[FUT].size == 0 for a in c.ex.accounts.values())
    assert total_of(c.ex, USDC) == custody == c.ex.pools[USDC].custody
    assert c.ex.perp_entry_sum[FUT] == 0 and not c.ex.books[FUT].orders
    check_derived(c.ex)
