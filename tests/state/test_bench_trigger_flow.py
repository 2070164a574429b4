"""The benchmark's trigger flow (bench/trigger_flow.py) is a valid, deterministic flow.

Why: ``python -m bench.state_apply --compare-triggers`` reports the cost of trigger orders;
that figure means something only if the flow's transactions are accepted (a rejected
PlaceTrigger or oracle update is cheap and would flatter it) and its triggers really fire
as the oracle walks.
"""

from __future__ import annotations

from bench.state_apply import CHAIN, T0, make_chain
from bench.trigger_flow import VALIDATOR, TriggerFlowGenerator
from state.errors import Code
from state.machine import ExecBlock
from state.receipts import Fill
from state.units import PPM


def test_two_blocks_of_the_trigger_flow_are_accepted_and_fire_triggers() -> None:
    genesis, keys, sm = make_chain(50, None, validator=VALIDATOR)
    gen = TriggerFlowGenerator(keys, genesis, seed=7, trigger_pct=10)
    placed = fired = ok = total = 0
    start = list(sm.ex.index_px)
    for i in range(2):
        raws = gen.block(CHAIN, 400)
        res = sm.apply_block(ExecBlock(sm.height + 1, T0 + 1000 + i, tuple(raws)))
        assert len(res.receipts) == len(raws)
        assert res.receipts[0].code == Code.OK  # the validator's oracle move
        for raw, r in zip(raws, res.receipts, strict=True):
            total += 1
            ok += r.code == Code.OK
            # the base mix's own rejections: cancels of orders already filled, ETH orders of
            # 2-3 lots below the $10 minimum, an IOC meeting nothing (as in the current flow)
            assert r.code in (Code.OK, Code.UNKNOWN_ORDER, Code.BELOW_MIN_NOTIONAL, Code.IOC_NO_FILL), r.message
            if raw in gen.trigger_raws:
                assert r.code == Code.OK, r.message  # every generated trigger is a valid one
                placed += 1
        fired += sum(1 for _, e in res.events if isinstance(e, tuple) and e[0] == "triggered")
        # the oracle (index) moved by 0.5%..1.5% of itself this block, BTC and ETH alike
        for asset in (1, 2):
            old, new = start[asset], sm.ex.index_px[asset]
            assert old * 5_000 <= abs(new - old) * PPM <= old * 15_000
        start = list(sm.ex.index_px)
    assert ok >= 0.75 * total
    assert 60 <= placed <= 100  # ~10% of 798
    assert fired > 0
    assert len(sm.ex.triggers) > 0  # and others wait


def test_fired_triggers_become_orders_that_trade() -> None:
    """Over a few blocks many triggers fire, and some of them trade as takers at the block's
    end (a market trigger is an IOC into the book)."""
    genesis, keys, sm = make_chain(50, None, validator=VALIDATOR)
    gen = TriggerFlowGenerator(keys, genesis, seed=3, trigger_pct=20)
    fired_oids: set[int] = set()
    traded = 0
    for i in range(6):
        res = sm.apply_block(ExecBlock(sm.height + 1, T0 + 1000 + i, tuple(gen.block(CHAIN, 300))))
        block_fired = {e[2] for tx, e in res.events if tx == -1 and isinstance(e, tuple) and e[0] == "triggered"}
        fired_oids |= block_fired
        # block-level fills of fired orders: their oids show up as the taker in trade events
        traded += sum(1 for tx, e in res.events if tx == -1 and isinstance(e, Fill) and e.taker_oid in block_fired)
    assert len(fired_oids) >= 10
    assert traded > 0


def test_the_walk_stays_inside_its_bound_and_is_seeded() -> None:
    genesis, keys, _sm = make_chain(5, None, validator=VALIDATOR)
    a = TriggerFlowGenerator(keys, genesis, seed=11)
    b = TriggerFlowGenerator(keys, genesis, seed=11)
    for _ in range(2_000):
        pa, pb = a.oracle_action(), b.oracle_action()
        assert pa == pb
        for asset, px in pa.prices:
            start = a.start[asset]
            assert abs(px - start) * PPM <= a.bound_ppm * start
    assert a.block(CHAIN, 50) == b.block(CHAIN, 50)
