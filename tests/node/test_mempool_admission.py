"""Admission sized in time (node/admission.py): the commit-rate estimate, the window and its
floor, fairness per signer, the retryable MEMPOOL_BUSY, refusals that change nothing and
cost no signature check, and the proposer's reap cut to a share of the rate."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from node import mempool as mp
from node.admission import PEAK_TAU_S, CommitRate, Window, claimed_signer
from node.config import MempoolConfig
from node.mempool import Mempool
from node.rpcerrors import RETRYABLE
from state import hltx
from state.eip712 import EthKey
from state.errors import Code
from state.keys import PrivateKey
from state.tx import Deposit, PlaceOrder, Tif, decode_tx, sign_tx, tx_hash
from tests.harness import USDC, Chain, key

A, B = key(7), key(8)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def setup(keys: list[PrivateKey], **config: Any) -> tuple[Chain, Mempool, Clock]:
    chain = Chain()
    for k in keys:
        chain.fund(k, 0, 10**12)  # admission refuses keys the chain has never seen
    clock = Clock()
    defaults: dict[str, Any] = {"admission_window_ms": 1000, "admission_floor_txs": 10, "per_signer_min": 2,
                                "reap_window_ms": 400}
    return chain, Mempool(chain.sm, MempoolConfig(**{**defaults, **config}), clock=clock), clock


def orders(chain: Chain, k: PrivateKey, n: int) -> list[bytes]:
    return [chain.sign(k, PlaceOrder(0, True, 50_000, 1 + i, Tif.GTC, False, None)) for i in range(n)]


def snapshot(pool: Mempool) -> tuple[Any, ...]:
    return (list(pool.pending), pool.bytes, dict(pool.held), dict(pool.signer_of), len(pool.verified),
            list(pool._new_for_gossip), list(pool._expiring))


def admit(pool: Mempool, raws: list[bytes], *, bound: bool = True) -> list[Code]:
    return [a.code for a in asyncio.run(pool.add_many(raws, None, bound=bound))]


# ---------------------------------------------------------------------- the rate and the window
def test_commit_rate_is_a_time_weighted_average_of_committed_txs_per_second() -> None:
    rate = CommitRate(tau_s=2.0)
    rate.on_block(5000, 0.0)
    assert rate.per_s == 0  # the first commit has no interval to divide by
    t = 0.0
    for _ in range(60):  # 500 txs every 0.5 s: 1,000/s
        t += 0.5
        rate.on_block(500, t)
    assert rate.per_s == pytest.approx(1000, rel=1e-3)
    rate.on_block(0, t + 0.001)  # an empty block 1 ms later moves it by ~1 ms's worth
    assert rate.per_s > 990
    rate.on_block(0, t + 20.0)  # a long idle gap: the estimate follows the chain down
    assert rate.per_s < 1
    rate.on_block(7, t + 20.0)  # no time passed: nothing to learn from
    assert rate.per_s < 1
    # what the chain showed it can commit holds for a while (PEAK_TAU_S), then fades
    assert rate.capacity() == pytest.approx(1000 * math.exp(-20.0 / PEAK_TAU_S), rel=0.02)
    rate.on_block(0, t + 200.0)
    assert rate.capacity() < 5


def test_a_slow_block_does_not_shrink_the_bounds_the_recent_peak_sizes_them() -> None:
    chain, pool, clock = setup([A], admission_floor_txs=100, admission_window_ms=1000, reap_window_ms=300)

    def block(seconds: float, n: int) -> None:
        clock.now += seconds
        pool.on_committed([clock.now.hex().encode() + i.to_bytes(2, "big") for i in range(n)], [],
                          chain.ex.time_ms)

    for _ in range(80):  # 1,000 txs every 0.25 s: 4,000/s
        block(0.25, 1000)
    assert pool.rate.per_s == pytest.approx(4000, rel=0.01)
    assert pool.window_txs() == pytest.approx(2800, rel=0.01) and pool.block_cap() == pytest.approx(1200, rel=0.01)
    block(2.0, 1000)  # one slow block
    assert pool.rate.per_s < 2500
    # sized by what the chain has shown (fading over PEAK_TAU_S), not by the dip (< 1,750 and < 750)
    assert pool.window_txs() > 2600 and pool.block_cap() > 1100


def test_admitted_txs_that_waited_past_the_bound_shrink_the_window_and_calm_blocks_grow_it_back() -> None:
    """The window follows what the node promised its clients, not only the rate: a machine
    that slows makes admitted txs wait longer than the bound, and the window shrinks."""
    chain, pool, clock = setup([A], admission_floor_txs=10, admission_window_ms=1000, reap_window_ms=300,
                               per_signer_min=10_000)
    for _ in range(40):  # 1,000 txs every 0.25 s: 4,000/s, none of them admitted here
        clock.now += 0.25
        pool.on_committed([clock.now.hex().encode() + i.to_bytes(2, "big") for i in range(1000)], [],
                          chain.ex.time_ms)
    full = pool.window_txs()
    assert full == pytest.approx(2800, rel=0.02) and pool.window.latency.scale == 1.0  # blocks of others' txs
    raws = orders(chain, A, 6)
    assert admit(pool, raws) == [Code.OK] * 6
    hashes = [tx_hash(r) for r in raws]
    clock.now += 1.6  # they commit 1.6 s after admission: past the 1 s bound
    pool.on_committed(hashes[:3], raws[:3], chain.ex.time_ms)
    assert pool.window.latency.scale == pytest.approx(0.75)
    assert pool.window_txs() < 0.8 * full
    clock.now += 0.1
    pool.on_committed(hashes[3:4], raws[3:4], chain.ex.time_ms)  # still late: shrinks again
    assert pool.window.latency.scale == pytest.approx(0.75 * 0.75)
    # a tx that leaves without a commit here (expired) measures nothing
    pool.window.latency.forget(hashes[4])
    # calm blocks (within 80% of the bound) grow it back a twentieth per 100 ms, never past 1
    raw = chain.sign(A, PlaceOrder(0, True, 50_000, 1, Tif.GTC, False, None))
    assert admit(pool, [raw]) == [Code.OK]
    clock.now += 0.2
    pool.on_committed([tx_hash(raw)], [raw], chain.ex.time_ms)
    assert pool.window.latency.scale == pytest.approx(0.75 * 0.75 + 0.1)  # 0.2 s since the last one measured
    for _ in range(30):
        raw = chain.sign(A, PlaceOrder(0, True, 50_000, 1, Tif.GTC, False, None))
        assert admit(pool, [raw]) == [Code.OK]
        clock.now += 0.2
        pool.on_committed([tx_hash(raw)], [raw], chain.ex.time_ms)
    assert pool.window.latency.scale == 1.0
    assert pool.window_txs() == max(10, int(pool.rate.capacity() * 0.7))  # the rate's size again


def test_the_window_is_what_the_rate_commits_within_the_bound_never_below_the_floor() -> None:
    rate = CommitRate()
    window = Window(1000, 2000, 100, rate)
    assert window.size() == 2000  # idle: the floor still admits a burst
    rate.per_s = 4500.0
    assert window.size() == 4500
    assert Window(600, 2000, 100, rate).size() == 2700
    # a tx waits for those ahead and then for its own block: the block's share is not queue
    assert Window(1000, 2000, 100, rate, block_ms=300).size() == 3150
    assert Window(1000, 2000, 100, rate, block_ms=1500).size() == 2000
    assert window.verdict(4499, 0, 1) is None
    refused = window.verdict(4500, 4500, 1)
    assert refused is not None and refused[0] == Code.MEMPOOL_BUSY


def test_mempool_busy_is_its_own_retryable_code() -> None:
    assert int(Code.MEMPOOL_BUSY) == 907 and int(Code.MEMPOOL_FULL) == 900
    assert Code.MEMPOOL_BUSY in RETRYABLE and Code.MEMPOOL_FULL in RETRYABLE  # HTTP 503 on the sync routes


# ---------------------------------------------------------------------- admission
def test_a_full_window_refuses_with_mempool_busy_and_the_refusal_changes_nothing() -> None:
    chain, pool, clock = setup([A])
    raws = orders(chain, A, 14)
    assert admit(pool, raws[:10]) == [Code.OK] * 10
    before = snapshot(pool)
    for raw in raws[10:12]:
        adm = pool.add_sync(raw, bound=True)
        assert adm.code == Code.MEMPOOL_BUSY and "retry" in adm.message and adm.hash == tx_hash(raw)
    assert admit(pool, raws[12:]) == [Code.MEMPOOL_BUSY] * 2
    assert snapshot(pool) == before and pool.refused_busy == 4
    assert all(raw not in pool.verified for raw in raws[10:])  # not even cached
    # a commit frees room: the same tx is admitted on retry
    done = raws[:5]
    clock.now += 0.5
    pool.on_committed([tx_hash(r) for r in done], done, chain.ex.time_ms)
    assert pool.held == {A.address: 5}
    assert pool.add_sync(raws[10], bound=True).ok


def test_one_flooding_signer_cannot_starve_another() -> None:
    chain, pool, clock = setup([A, B])
    flood, normal = orders(chain, A, 40), orders(chain, B, 8)
    codes = admit(pool, flood[:30])
    assert codes.count(Code.OK) == 10 and codes.count(Code.MEMPOOL_BUSY) == 20  # alone, A may fill the window
    # the window is full, yet B, under its fair share (10 // 2 signers), gets in
    assert admit(pool, normal[:3]) == [Code.OK] * 3
    assert len(pool.pending) == 13
    assert admit(pool, flood[30:32]) == [Code.MEMPOOL_BUSY] * 2  # A holds twice its share
    assert admit(pool, normal[3:8]) == [Code.OK, Code.OK] + [Code.MEMPOOL_BUSY] * 3  # B up to its share, 5
    # A's backlog drains: A is admitted again only up to its share
    first = [tx_hash(r) for r in flood[:30] if tx_hash(r) in pool.pending][:7]
    clock.now += 1.0
    pool.on_committed(first, [], chain.ex.time_ms)
    assert pool.held == {A.address: 3, B.address: 5}
    assert admit(pool, flood[32:36]) == [Code.OK, Code.OK, Code.MEMPOOL_BUSY, Code.MEMPOOL_BUSY]
    # and the proposer's reap keeps arrival order, A's nonces first as they came
    reaped = pool.reap(100, 10**9)
    assert reaped == list(pool.pending.values())[:len(reaped)]
    nonces = [decode_tx(r).nonce for r in reaped if decode_tx(r).signer == A.address]
    assert nonces == sorted(nonces)


def test_many_signers_share_the_window_evenly() -> None:
    keys = [key(20 + i) for i in range(8)]
    chain, pool, _ = setup(keys, admission_floor_txs=40)
    per = {k.address: orders(chain, k, 10) for k in keys}
    codes = [pool.add_sync(per[k.address][i], bound=True).code for i in range(10) for k in keys]
    assert codes.count(Code.OK) == 40 and set(codes) == {Code.OK, Code.MEMPOOL_BUSY}
    assert pool.held == {k.address: 5 for k in keys}  # 40 // 8 each


def test_per_signer_min_lets_a_signer_hold_more_than_a_thin_share() -> None:
    keys = [key(30 + i) for i in range(4)]
    chain, pool, _ = setup(keys, admission_floor_txs=40, per_signer_min=15)
    for k in keys[:3]:
        admit(pool, orders(chain, k, 1))
    assert admit(pool, orders(chain, keys[3], 20)).count(Code.OK) == 15  # share max(15, 40 // 4)


def test_peers_gossip_meets_only_the_hard_caps() -> None:
    chain, pool, _ = setup([A, B], max_txs=25)
    raws = orders(chain, A, 26)
    assert admit(pool, raws[:25], bound=False) == [Code.OK] * 25  # beyond the 10-tx window
    assert admit(pool, raws[25:], bound=False) == [Code.MEMPOOL_FULL]
    # a client's tx now meets the hard cap first, and beyond twice the window is refused
    # before verification even for a signer holding nothing
    assert pool.add_sync(orders(chain, B, 1)[0], bound=True).code == Code.MEMPOOL_FULL
    _, pool2, _ = setup([A, B])
    admit(pool2, raws[:20], bound=False)
    adm = pool2.add_sync(orders(chain, B, 1)[0], bound=True)
    assert adm.code == Code.MEMPOOL_BUSY and "twice" in adm.message


def test_admission_in_time_can_be_turned_off() -> None:
    chain, pool, _ = setup([A], admission_window_ms=0)
    assert admit(pool, orders(chain, A, 30)) == [Code.OK] * 30
    assert pool.window_txs() == 0 and pool.block_cap() == 0


def test_a_refusal_on_the_claimed_signer_costs_no_signature_check(monkeypatch: pytest.MonkeyPatch) -> None:
    chain, pool, _ = setup([A, B])
    raws = orders(chain, A, 15)
    verified: list[bytes] = []
    real = mp._verify_chunk

    def counting(chunk: list[bytes], chain_id: str) -> Any:
        verified.extend(chunk)
        return real(chunk, chain_id)

    monkeypatch.setattr(mp, "_verify_chunk", counting)
    admit(pool, raws[:10])
    verified.clear()
    assert admit(pool, raws[10:]) == [Code.MEMPOOL_BUSY] * 5
    assert verified == []
    assert admit(pool, orders(chain, B, 1)) == [Code.OK]  # B is verified and admitted
    assert len(verified) == 1


def test_claimed_signer_reads_a_native_envelope_and_leaves_others_to_verification() -> None:
    chain = Chain()
    plain = chain.sign(A, PlaceOrder(0, True, 50_000, 1, Tif.GTC, False, None))
    expiring = sign_tx(A, chain.time + 5, PlaceOrder(0, True, 50_000, 1, Tif.GTC, False, None),
                       chain.genesis.chain_id, expires_after=chain.time + 60_000)
    assert claimed_signer(plain) == claimed_signer(expiring) == decode_tx(plain).signer == A.address
    user = EthKey(bytes([21]) * 32)
    hl = hltx.sign_l1(user, {"type": "cancel", "cancels": [{"a": 0, "o": 1}]}, chain.time + 1)
    assert claimed_signer(hl) is None
    assert claimed_signer(b"\x94\xc4\x20") is None and claimed_signer(b"") is None


def test_a_hyperliquid_signed_tx_counts_for_its_recovered_signer() -> None:
    user = EthKey(bytes([21]) * 32)
    chain, pool, _ = setup([A])
    chain.block(chain.sign(key(1), Deposit(user.address, USDC, 10**12)))
    wire = {"a": 0, "b": True, "p": "50000", "s": "0.01", "r": False, "t": {"limit": {"tif": "Gtc"}}}
    raws = [hltx.sign_l1(user, {"type": "order", "orders": [wire], "grouping": "na"}, chain.time + 1 + i)
            for i in range(12)]
    codes = admit(pool, raws)
    assert codes.count(Code.OK) == 10 and codes[10:] == [Code.MEMPOOL_BUSY] * 2
    assert pool.held == {user.address: 10}


def test_committed_and_expired_txs_release_their_signers_share_and_feed_the_rate() -> None:
    chain, pool, clock = setup([A, B])
    raws = orders(chain, A, 4)
    expiring = sign_tx(B, chain.time + 50, PlaceOrder(0, True, 50_000, 1, Tif.GTC, False, None),
                       chain.genesis.chain_id, expires_after=chain.ex.time_ms + 500)
    assert admit(pool, [*raws, expiring]) == [Code.OK] * 5
    assert pool.held == {A.address: 4, B.address: 1}
    pool.on_committed([], [], chain.ex.time_ms)  # the first commit: no interval yet
    clock.now += 0.5
    pool.on_committed([tx_hash(r) for r in raws], raws, chain.ex.time_ms + 1000)  # and B's tx expired
    assert pool.held == {} and pool.signer_of == {} and not pool.pending and pool.bytes == 0
    assert pool.rate.per_s > 0


# ---------------------------------------------------------------------- the proposer's reap
def test_the_reap_is_cut_to_reap_window_ms_of_the_rate_in_arrival_order() -> None:
    chain, pool, _ = setup([A, B])
    raws = [r for pair in zip(orders(chain, A, 10), orders(chain, B, 10), strict=True) for r in pair]
    admit(pool, raws, bound=False)
    assert pool.block_cap() == 5  # idle: half the floor
    assert pool.reap(1000, 10**9) == raws[:5]
    pool.rate.per_s = 40.0
    assert pool.block_cap() == 16  # 400 ms of 40/s, above half the floor
    assert pool.reap(1000, 10**9) == raws[:16]
    assert pool.reap(3, 10**9) == raws[:3]  # the consensus limit still binds
