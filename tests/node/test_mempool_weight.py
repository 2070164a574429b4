"""Admission sized by cost (node/txweight.py, node/admission.py): a transaction weighs its
order actions, and the window, the signers' shares, the block cut and the commit rate are
all counted in weight, so heavy batches cannot buy a flooder more than its share."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.admission import CommitRate, Window
from node.config import MempoolConfig
from node.mempool import Mempool
from node.rpcerrors import RETRYABLE
from node.txweight import MAX_WEIGHT, claimed_weight, tx_weight
from state import hltx
from state.eip712 import EthKey
from state.errors import Code
from state.keys import PrivateKey
from state.tx import (
    Batch,
    Cancel,
    CancelAll,
    Deposit,
    PlaceGroup,
    PlaceOrder,
    PlaceTrigger,
    Tif,
    Transfer,
    decode_tx,
    sign_tx,
    tx_hash,
)
from tests.harness import BRIDGE, USDC, Chain, key


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def order(i: int) -> PlaceOrder:
    return PlaceOrder(0, True, 50_000 - i % 50, 1, Tif.GTC, False, None)


def funded_chain(keys: list[PrivateKey]) -> Chain:
    chain = Chain()
    chain.block(*[chain.sign(BRIDGE, Deposit(k.address, USDC, 10**12)) for k in keys])
    return chain


# ---------------------------------------------------------------------- the weight
def test_a_transaction_weighs_its_order_actions_never_below_one() -> None:
    chain = Chain()
    a = key(7)
    batch = Batch(tuple([order(i) for i in range(63)] + [Cancel(0, 5, None)]))
    cases: list[tuple[Any, int]] = [
        (order(1), 1), (Cancel(0, 5, None), 1), (CancelAll(0), 1), (Transfer(key(8).address, USDC, 5), 1),
        (batch, 64), (Batch((order(1),)), 1),
    ]
    for action, weight in cases:
        raw = chain.sign(a, action)
        assert tx_weight(decode_tx(raw)) == weight, action
        assert claimed_weight(raw) == weight  # the envelope's header says as much, before any decode
    # the expiring (five-element) envelope and a nonce of any width read the same
    raw = sign_tx(a, 2**40, batch, chain.genesis.chain_id, expires_after=chain.time + 60_000)
    assert claimed_weight(raw) == tx_weight(decode_tx(raw)) == 64
    assert claimed_weight(sign_tx(a, 5, Batch(tuple(order(i) for i in range(20))), "x")) == 20
    trigger = PlaceTrigger(0, False, 0, 40_000, 1, True, 0, True, None)
    group = PlaceGroup(1, order(1), (trigger,))
    raw = chain.sign(a, group)
    assert tx_weight(decode_tx(raw)) == 2 and claimed_weight(raw) == 1  # a lower bound: never above
    assert claimed_weight(b"") == claimed_weight(b"\x94\xc4\x20" + bytes(40)) == 1

    user = EthKey(bytes([21]) * 32)
    wire = {"a": 0, "b": True, "p": "50000", "s": "0.01", "r": False, "t": {"limit": {"tif": "Gtc"}}}
    hl: list[tuple[dict[str, Any], int]] = [
        ({"type": "order", "orders": [wire] * 12, "grouping": "na"}, 12),
        ({"type": "cancel", "cancels": [{"a": 0, "o": i} for i in range(5)]}, 5),
        ({"type": "cancelByCloid", "cancels": [{"asset": 0, "cloid": "0x" + "00" * 16}] * 3}, 3),
        ({"type": "batchModify", "modifies": [{"oid": 1, "order": wire}] * 4}, 4),
        ({"type": "cancel", "cancels": [{"a": 0, "o": i} for i in range(300)]}, MAX_WEIGHT),  # the block refuses it
        ({"type": "order", "orders": [], "grouping": "na"}, 1),
        ({"type": "order", "orders": "nonsense", "grouping": "na"}, 1),
        ({"type": "noop"}, 1),
    ]
    for body, weight in hl:
        raw = hltx.sign_l1(user, body, chain.time + 1)
        assert tx_weight(decode_tx(raw)) == weight, body
        assert claimed_weight(raw) == 1  # not a native envelope: judged after recovery


def test_the_window_counts_weight_and_a_tx_must_fit_its_share() -> None:
    rate = CommitRate()
    window = Window(1000, 1000, 100, rate)  # 10 signers: a fair share of 100
    assert window.verdict(0, 0, 10, 64) is None
    assert window.verdict(0, 64, 10, 64) is not None  # 128 > the share
    assert window.verdict(0, 36, 10, 64) is None  # exactly the share
    assert window.verdict(0, 0, 10, 256) is None  # a signer holding nothing may pass a thin share once
    assert window.verdict(990, 0, 10, 101) is None  # the window has room left: one tx may pass it
    # a full window: only what fits the signer's fair share (1000 // 10) gets in
    assert window.verdict(1000, 0, 10, 64) is None
    assert window.verdict(1000, 40, 10, 64) is not None
    refused = window.verdict(1000, 0, 10, 101)
    assert refused is not None and refused[0] == Code.MEMPOOL_BUSY and refused[0] in RETRYABLE
    assert "retry" in refused[1] and "actions" in refused[1]


def test_the_pool_counts_weight_in_the_shares_the_block_cut_and_the_rate() -> None:
    a, b = key(7), key(8)
    chain = funded_chain([a, b])
    clock = Clock()
    pool = Mempool(chain.sm, MempoolConfig(admission_window_ms=1000, admission_floor_txs=200, per_signer_min=10,
                                           reap_window_ms=400), clock=clock)
    heavy = [chain.sign(a, Batch(tuple(order(i) for i in range(64)))) for _ in range(4)]
    light = [chain.sign(b, order(i)) for i in range(3)]
    codes = [adm.code for adm in asyncio.run(pool.add_many(heavy + light, None, bound=True))]
    # a alone holds a share of the whole 200: three batches (192), not a fourth (256)
    assert codes == [Code.OK, Code.OK, Code.OK, Code.MEMPOOL_BUSY] + [Code.OK] * 3
    assert pool.held == {a.address: 192, b.address: 3} and pool.weight == 195
    assert pool.weight_of == {tx_hash(r): 64 for r in heavy[:3]}
    # now b holds some: a is past its share of 200 // 2, even for one order; b is not
    more = [chain.sign(a, order(5)), chain.sign(b, order(5))]
    assert [adm.code for adm in asyncio.run(pool.add_many(more, None, bound=True))] == [Code.MEMPOOL_BUSY, Code.OK]
    light.append(more[1])
    assert pool.block_cap() == 100  # idle: half the floor, in weight
    assert pool.reap(1000, 10**9) == [heavy[0]]  # 64, and 128 would pass 100
    pool.rate.per_s = 1000.0
    assert pool.block_cap() == 400
    assert pool.reap(1000, 10**9) == [*heavy[:3], *light]
    assert pool.reap(2, 10**9) == heavy[:2]  # the consensus limit in txs still binds
    # the rate is measured in weight: a block of the three batches and the three orders, 0.5 s apart
    pool.rate = pool.window.rate = CommitRate()
    pool.on_committed([], [], chain.ex.time_ms)
    clock.now += 0.5
    done = [*heavy[:3], *light]
    pool.on_committed([tx_hash(r) for r in done], done, chain.ex.time_ms)
    assert pool.weight == 0 and pool.held == {} and pool.weight_of == {} and not pool.pending
    assert pool.rate.per_s == pytest.approx(196 / 0.5 * (1 - math.exp(-0.5 / 2.0)), rel=1e-6)


def test_a_block_always_takes_its_first_tx_however_heavy() -> None:
    a = key(7)
    chain = funded_chain([a])
    pool = Mempool(chain.sm, MempoolConfig(admission_floor_txs=20), clock=Clock())
    raws = [chain.sign(a, Batch(tuple(order(i) for i in range(64)))) for _ in range(2)]
    # a batch heavier than the whole window enters an idle node, and then nothing more
    assert [adm.code for adm in asyncio.run(pool.add_many(raws, None, bound=True))] == [Code.OK, Code.MEMPOOL_BUSY]
    assert pool.block_cap() == 10
    assert pool.reap(1000, 10**9) == raws[:1]


def test_a_tx_committed_before_its_gossip_arrived_weighs_its_actions_in_the_rate() -> None:
    a = key(7)
    chain = funded_chain([a])
    clock = Clock()
    pool = Mempool(chain.sm, MempoolConfig(), clock=clock)
    raw = chain.sign(a, Batch(tuple(order(i) for i in range(64))))
    pool.remember(decode_tx(raw))  # verified when the proposal came, never pending here
    pool.on_committed([], [], chain.ex.time_ms)
    clock.now += 1.0
    pool.on_committed([tx_hash(raw)], [raw], chain.ex.time_ms)
    assert pool.rate.per_s == pytest.approx(64 * (1 - math.exp(-1.0 / 2.0)), rel=1e-6)


def test_a_hyperliquid_order_action_holds_its_orders_share_for_its_recovered_signer() -> None:
    user = EthKey(bytes([21]) * 32)
    chain = Chain()
    chain.block(chain.sign(BRIDGE, Deposit(user.address, USDC, 10**12)))
    pool = Mempool(chain.sm, MempoolConfig(admission_floor_txs=30, per_signer_min=1), clock=Clock())
    wire = {"a": 0, "b": True, "p": "50000", "s": "0.01", "r": False, "t": {"limit": {"tif": "Gtc"}}}
    raws = [hltx.sign_l1(user, {"type": "order", "orders": [wire] * 12, "grouping": "na"}, chain.time + 1 + i)
            for i in range(4)]
    codes = [adm.code for adm in asyncio.run(pool.add_many(raws, None, bound=True))]
    assert codes == [Code.OK, Code.OK, Code.MEMPOOL_BUSY, Code.MEMPOOL_BUSY]  # 36 would pass the 30
    assert pool.held == {user.address: 24} and pool.weight == 24


_KEYS = [key(40 + i) for i in range(4)]
_CHAIN = funded_chain(_KEYS)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 70), st.integers(0, 2**64 - 1), st.booleans()),
                min_size=1, max_size=12),
       st.lists(st.booleans(), max_size=12))
def test_the_pending_weight_is_what_each_signer_holds_summed(
        txs: list[tuple[int, int, int, bool]], commit: list[bool]) -> None:
    """Whatever is admitted, refused and committed: the pool's weight is its signers'
    held weights summed, each pending tx's weight counted once, and the claimed weight
    never exceeds the decoded one (a refusal on the claim is one verification makes)."""
    chain, clock = _CHAIN, Clock()
    pool = Mempool(chain.sm, MempoolConfig(admission_floor_txs=150, per_signer_min=10), clock=clock)
    raws = []
    for who, n, nonce, expiring in txs:
        action = Batch(tuple(order(i) for i in range(n))) if n else order(1)
        raw = sign_tx(_KEYS[who], chain.time + nonce % 10**6, action, chain.genesis.chain_id,
                      expires_after=chain.time + 10**7 if expiring else None)
        assert claimed_weight(raw) == tx_weight(decode_tx(raw)) == max(1, n)
        raws.append(raw)
    asyncio.run(pool.add_many(raws, None, bound=True))
    done = [r for r, c in zip(pool.pending.values(), commit, strict=False) if c]
    clock.now += 0.5
    pool.on_committed([tx_hash(r) for r in done], done, chain.ex.time_ms)
    weights = {h: tx_weight(decode_tx(r)) for h, r in pool.pending.items()}
    assert pool.weight == sum(weights.values()) == sum(pool.held.values())
    assert pool.weight_of == {h: w for h, w in weights.items() if w != 1}
    assert all(v > 0 for v in pool.held.values())
    assert pool.weight <= 2 * pool.window_txs() + 256


# ---------------------------------------------------------------------- the flood
FLOODERS = 100
BATCH = 64
PER_ROUND = 4
SIM_S = 8.0  # simulated seconds of flood
TX_COST_S = 100e-6  # what the simulated chain spends on any tx (signature, decode, nonce, receipt)
ACTION_COST_S = 250e-6  # and on each order action in it (a refused one too: there are no fees)
BLOCK_MIN_S = 0.1  # timeout_commit: at most 10 blocks a second


def test_heavy_batch_floods_from_many_signers_leave_an_honest_signer_admitted_and_committed_in_time() -> None:
    """100 funded signers each send four 64-order batches every block (retrying each
    refusal, as a client retries MEMPOOL_BUSY), an honest signer one order; the chain
    spends ``TX_COST_S`` per tx and ``ACTION_COST_S`` per order action. Counted in txs, the
    mempool admitted 2,000 batches (the floor) and cut blocks of 1,000 of them (10 s each):
    the honest orders waited seconds. Counted in weight, each is admitted at once and
    commits within the 800 ms bound plus its block."""
    flooders = [key(100 + i) for i in range(FLOODERS)]
    honest = key(250)
    chain = funded_chain([*flooders, honest])
    clock = Clock()
    pool = Mempool(chain.sm, MempoolConfig(), clock=clock)  # the defaults: 800 / 250 ms, floor 2,000
    chain_id = chain.genesis.chain_id
    batch = Batch(tuple(order(i) for i in range(BATCH)))
    nonce = [chain.time + 1]

    def sign(k: PrivateKey, action: Any) -> bytes:
        nonce[0] += 1
        return sign_tx(k, nonce[0], action, chain_id)

    async def run() -> tuple[list[Code], list[float]]:
        # each flooder's next batch, sent PER_ROUND times a block (retried until admitted)
        outstanding = [sign(k, batch) for k in flooders]
        admitted_at: dict[bytes, float] = {}
        honest_codes: list[Code] = []
        waits: list[float] = []
        start = clock.now
        while clock.now - start < SIM_S:
            for _ in range(PER_ROUND):
                adms = await pool.add_many(outstanding, None, bound=True)
                outstanding = [sign(k, batch) if adm.ok else raw
                               for k, raw, adm in zip(flooders, outstanding, adms, strict=True)]
            raw = sign(honest, order(len(honest_codes)))
            (adm,) = await pool.add_many([raw], None, bound=True)
            honest_codes.append(adm.code)
            if adm.ok:
                admitted_at[adm.hash] = clock.now
            block = pool.reap(10_000, 10**9)
            hashes = [tx_hash(r) for r in block]
            weight = sum(1 if h in admitted_at else BATCH for h in hashes)  # what the simulated chain executes
            clock.now += max(BLOCK_MIN_S, len(block) * TX_COST_S + weight * ACTION_COST_S)
            pool.on_committed(hashes, block, chain.ex.time_ms)
            waits += [clock.now - admitted_at.pop(h) for h in hashes if h in admitted_at]
        return honest_codes, waits

    honest_codes, waits = asyncio.run(run())
    settled = honest_codes[len(honest_codes) // 4:]  # after the first quarter: the rate is measured
    assert settled.count(Code.OK) == len(settled), honest_codes
    assert len(waits) >= len(honest_codes) - 5  # reaped and committed, not left behind the flood
    assert max(waits) <= 0.8 + 0.3, sorted(waits)[-5:]  # the bound, and one block of the cut
