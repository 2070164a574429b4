"""Property tests of trigger orders (hypothesis): random oracle paths and trigger flows.

Each example is a short chain: accounts place random stop / take-profit orders (spot and
perp, market and limit) around a resting book, and the validator walks the BTC oracle.
Checked after every block: every ``Triggered`` event fired on its side of the reference,
and every trigger still waiting is not due (so nothing due was left behind); value is
conserved (the harness checks custody, and spot-only flows keep every asset's sum); the
same blocks give the same app hash on a fresh chain.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from state.errors import Code
from state.events import Triggered
from state.tx import OraclePrices, PlaceOrder, PlaceTrigger, Tif
from tests.harness import BTC, BTC_PERP, BTC_SPOT, USDC, Chain, key, total_of
from tests.state.riskkit import USD, V, risk_chain
from tests.state.test_bad_input import assert_rejected_without_effect

A, B, C = key(40), key(41), key(42)
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    phases=[Phase.explicit, Phase.reuse, Phase.generate])

trigger_st = st.tuples(
    st.sampled_from([A, B]), st.sampled_from([BTC_SPOT, BTC_PERP]), st.booleans(), st.integers(2, 20),
    st.integers(56_000, 64_000), st.integers(0, 1), st.booleans(), st.integers(55_000, 65_000))
block_st = st.tuples(st.integers(56_000, 64_000), st.lists(trigger_st, max_size=4))
flow_st = st.lists(block_st, min_size=1, max_size=8)


def _setup(markets_spot_only: bool) -> Chain:
    c = risk_chain()
    for k in (A, B, C):
        c.fund(k, USDC, 1_000_000 * USD)
        c.fund(k, BTC, 100 * 10**8)
    txs = [c.sign(C, PlaceOrder(BTC_SPOT, True, 57_000, 200, Tif.GTC, False, None)),
           c.sign(C, PlaceOrder(BTC_SPOT, False, 63_000, 200, Tif.GTC, False, None))]
    if not markets_spot_only:
        txs += [c.sign(C, PlaceOrder(BTC_PERP, True, 57_000, 200, Tif.GTC, False, None)),
                c.sign(C, PlaceOrder(BTC_PERP, False, 63_000, 200, Tif.GTC, False, None))]
    c.block(*txs)
    return c


def _run(flow: list[tuple[int, list[tuple[Any, ...]]]], spot_only: bool = False) -> Chain:
    c = _setup(spot_only)
    for price, trigs in flow:
        txs = [c.sign(V, OraclePrices(((BTC, price * USD),)))]
        for k, market, is_buy, size, trig, tpsl, is_market, limit in trigs:
            if spot_only:
                market = BTC_SPOT
            txs.append(c.sign(k, PlaceTrigger(market, is_buy, size, trig, tpsl, is_market,
                                              0 if is_market else limit, False, None)))
        c.block(*txs)
        _check_sides(c)
    return c


def _ref(c: Chain, market: int) -> int:
    return c.ex.mstate[market].mark if market == BTC_PERP else c.ex.index_px[BTC]


def _check_sides(c: Chain) -> None:
    fired = [e for _, e in c.last.events if isinstance(e, Triggered)]
    assert [e.oid for e in fired] == sorted(e.oid for e in fired)
    tick = c.ex.markets[BTC_SPOT].tick_size
    for e in fired:
        assert e.reference_price == _ref(c, e.market)
    for t in c.ex.triggers.values():  # nothing due is left waiting
        ref = _ref(c, t.market)
        if ref and t.active():
            assert (ref < t.trigger * tick) if t.rises() else (ref > t.trigger * tick), (t.record(), ref)


def _fired_sides_ok(c: Chain, placed: dict[int, tuple[bool, int, int]]) -> None:
    tick = c.ex.markets[BTC_SPOT].tick_size
    for _, e in c.last.events:
        if isinstance(e, Triggered):
            rises = placed[e.oid][0]
            assert (e.reference_price >= e.trigger_price * tick) if rises else (e.reference_price <= e.trigger_price * tick)


@SETTINGS
@given(flow_st)
def test_triggers_never_fire_on_the_wrong_side(flow: list[tuple[int, list[tuple[Any, ...]]]]) -> None:
    c = _setup(False)
    placed: dict[int, tuple[bool, int, int]] = {}
    for price, trigs in flow:
        txs = [c.sign(V, OraclePrices(((BTC, price * USD),)))]
        for k, market, is_buy, size, trig, tpsl, is_market, limit in trigs:
            txs.append(c.sign(k, PlaceTrigger(market, is_buy, size, trig, tpsl, is_market,
                                              0 if is_market else limit, False, None)))
        c.block(*txs)
        for r, (_k, market, is_buy, _size, trig, tpsl, *_rest) in zip(c.last.receipts[1:], trigs, strict=True):
            res = r.results[0]
            if res.status == "waiting" and res.oid is not None:
                placed[res.oid] = ((tpsl == 1) == is_buy, trig, market)
        for _, e in c.last.events:
            if isinstance(e, Triggered) and e.oid not in placed:
                raise AssertionError("a trigger fired that was never placed")
        _fired_sides_ok(c, placed)
        _check_sides(c)


@SETTINGS
@given(flow_st)
def test_spot_triggering_conserves_every_asset(flow: list[tuple[int, list[tuple[Any, ...]]]]) -> None:
    c = _run(flow, spot_only=True)
    assert total_of(c.ex, USDC) == 3 * 1_000_000 * USD
    assert total_of(c.ex, BTC) == 3 * 100 * 10**8


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(flow_st)
def test_same_blocks_same_app_hash(flow: list[tuple[int, list[tuple[Any, ...]]]]) -> None:
    a = _run(flow)
    b = risk_chain()
    for blk in a.blocks:
        b.sm.apply_block(blk)
    assert b.sm.app_hash == a.sm.app_hash
    assert b.ex.snapshot_records() == a.ex.snapshot_records()
    fork = a.fork()  # and a restored copy holds the same triggers and index
    assert {m: (i.rises, i.falls) for m, i in fork.ex.trigger_index.items()} == \
        {m: (i.rises, i.falls) for m, i in a.ex.trigger_index.items()}


BAD = [
    (PlaceTrigger(BTC_SPOT, False, 10, 0, 1, True, 0, False, None), Code.BAD_TRIGGER),
    (PlaceTrigger(BTC_SPOT, False, 10, 59_000, 1, False, 0, False, None), Code.BAD_TRIGGER),
    (PlaceTrigger(BTC_SPOT, False, 10, 59_000, 1, True, 5, False, None), Code.BAD_TRIGGER),
    (PlaceTrigger(BTC_SPOT, False, 0, 59_000, 1, True, 0, False, None), Code.ZERO_SIZE),
    (PlaceTrigger(BTC_SPOT, False, 10, 59_000, 1, True, 0, True, None), Code.REDUCE_ONLY_NOT_PERP),
    (PlaceTrigger(BTC_PERP, False, 0, 59_000, 1, True, 0, True, None), Code.REDUCE_ONLY_WOULD_INCREASE),
    (PlaceTrigger(BTC_PERP, True, 10**7, 61_000, 1, True, 0, False, None), Code.INSUFFICIENT_MARGIN),
]


@given(st.sampled_from(BAD))
@settings(max_examples=len(BAD) * 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_rejected_trigger_actions_change_nothing_but_the_nonce(case: tuple[PlaceTrigger, Code]) -> None:
    action, code = case
    c = risk_chain()
    c.fund(A, USDC, 100 * USD)
    c.fund(A, BTC, 10**8)
    assert_rejected_without_effect(c, c.sign(A, action), code)


group_st = st.tuples(st.integers(58_000, 62_000), st.integers(2, 30), st.integers(60_500, 64_000),
                     st.integers(56_000, 59_500), st.booleans())
oco_block_st = st.tuples(st.integers(56_000, 64_000), st.lists(group_st, max_size=2),
                         st.lists(st.tuples(st.booleans(), st.integers(1, 20)), max_size=2),
                         st.lists(st.integers(0, 3), max_size=1))
oco_flow_st = st.lists(oco_block_st, min_size=1, max_size=8)


@SETTINGS
@given(oco_flow_st)
def test_oco_brackets_fire_on_their_side_and_replay_identically(flow: list[Any]) -> None:
    """A places brackets (a bid with a TP above and an SL below, or the mirror) and
    cancels some parents; B trades into the book; the oracle walks. Checked every block:
    nothing due waits, children never exceed what their parent filled, and a replay of the
    same blocks gives the same app hash and records."""
    from state.tx import Cancel, PlaceGroup

    c = _setup(True)
    parents: list[int] = []
    for price, groups, takes, cancels in flow:
        txs = [c.sign(V, OraclePrices(((BTC, price * USD),)))]
        for px, size, tp, sl, is_buy in groups:
            tp_px, sl_px = (tp, sl) if is_buy else (2 * px - tp, 2 * px - sl)
            txs.append(c.sign(A, PlaceGroup(1, PlaceOrder(BTC_PERP, is_buy, px, size, Tif.GTC, False, None), (
                PlaceTrigger(BTC_PERP, not is_buy, 0, tp_px, 0, True, 0, True, None),
                PlaceTrigger(BTC_PERP, not is_buy, 0, sl_px, 1, True, 0, True, None)))))
        for is_buy, size in takes:
            txs.append(c.sign(B, PlaceOrder(BTC_PERP, is_buy, 64_000 if is_buy else 56_000, size, Tif.IOC, False,
                                            None)))
        for i in cancels:
            if i < len(parents):
                txs.append(c.sign(A, Cancel(BTC_PERP, parents[i], None)))
        c.block(*txs)
        for r in c.last.receipts:
            if r.kind == "group" and r.results and r.results[0].oid is not None:
                parents.append(r.results[0].oid)
        _check_sides(c)
        for parent, kids in c.ex.trigger_groups.items():
            order = c.ex.books[BTC_PERP].orders.get(parent)
            for oid in kids:
                t = c.ex.triggers[oid]
                assert t.parent == parent
                if order is not None:
                    assert t.size == order.orig_size - order.size
    replay = risk_chain()
    for blk in c.blocks:
        replay.sm.apply_block(blk)
    assert replay.sm.app_hash == c.sm.app_hash
    assert replay.ex.snapshot_records() == c.ex.snapshot_records()


def test_the_derived_check_counts_waiting_triggers_margin() -> None:
    """tests/state/invariants.py ``check_derived`` rebuilds each account's order aggregates;
    a waiting trigger that is not reduce-only holds margin there as an order does, so the
    check must count it (it failed as soon as one waited, which no flow of the adversary
    reached: it places no triggers)."""
    from tests.state.invariants import check_derived

    c = Chain()
    trader = key(33)
    c.fund(trader, USDC, 10_000 * 10**6)
    for trigger in (PlaceTrigger(BTC_PERP, True, 100, 61_000, 1, True, 0, False, None),
                    PlaceTrigger(BTC_PERP, False, 100, 59_000, 1, False, 58_000, False, None)):
        assert c.run(trader, trigger).code == Code.OK
    assert len(c.ex.triggers) == 2
    check_derived(c.ex)
