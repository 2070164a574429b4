"""Mempool bookkeeping: a tx is verified once per node; at commit, committed txs leave and
expired nonces are swept every ``EXPIRY_SCAN_BLOCKS`` blocks (not every block once the
committed-hash cache is full)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from node import mempool as mp
from node.config import MempoolConfig
from node.mempool import EXPIRY_SCAN_BLOCKS, Mempool


def make() -> Mempool:
    sm: Any = SimpleNamespace(genesis=SimpleNamespace(chain_id="t", nonce_past_window_ms=1_000,
                                                  bridge_authority=bytes(32), validators=()))
    return Mempool(sm, MempoolConfig())


def add(pool: Mempool, h: bytes, nonce: int) -> None:
    raw = b"raw:" + h.ljust(6, b".")  # ten bytes; the verified cache is keyed by the raw tx
    pool.pending[h] = raw
    pool.bytes += len(raw)
    pool.verified[raw] = SimpleNamespace(hash=h, raw=raw, nonce=nonce)  # type: ignore[assignment]


def test_committed_leave_and_expired_are_swept_every_n_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mp, "SEEN_CACHE", 64)  # a multiple of 64, as the real one
    pool = make()
    add(pool, b"a", nonce=5_000)
    add(pool, b"old", nonce=100)
    pool.on_committed([b"a"], [b"raw:a....."], block_time_ms=5_000)
    assert b"a" not in pool.pending and b"a" in pool.committed and pool.bytes == 10
    assert b"raw:a....." not in pool.verified and b"raw:old..." in pool.verified
    scans = []
    for n in range(2, 3 * EXPIRY_SCAN_BLOCKS + 1):
        before = b"old" in pool.pending
        pool.on_committed([bytes([n % 256, n // 256])], [], block_time_ms=5_000)
        if before and b"old" not in pool.pending:
            scans.append(n)
        if n == EXPIRY_SCAN_BLOCKS + 10:
            add(pool, b"old", nonce=100)  # comes back: swept at the next multiple, not earlier
    assert len(pool.committed) == 64  # capped
    assert scans == [EXPIRY_SCAN_BLOCKS, 2 * EXPIRY_SCAN_BLOCKS]
    assert pool.bytes == 0


def test_a_tx_already_verified_is_admitted_without_verifying_it_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tx first seen in a proposal is verified there; when its gossip arrives later, the
    mempool admits it from the cache instead of paying for the signature twice."""
    import asyncio

    from state.tx import PlaceOrder, Tif, tx_hash
    from tests.harness import Chain, key

    chain = Chain()
    chain.fund(key(7), 0, 10**12)  # admission refuses keys the chain has never seen
    pool = Mempool(chain.sm, MempoolConfig())
    raws = [chain.sign(key(7), PlaceOrder(0, True, 50_000, 1 + i, Tif.GTC, False, None)) for i in range(3)]
    pool.remember(mp.verify_raw(raws[0], chain.genesis.chain_id))  # type: ignore[arg-type]
    pool.remember(mp.verify_raw(raws[1], chain.genesis.chain_id))  # type: ignore[arg-type]
    verified: list[bytes] = []
    real = mp._verify_chunk

    def counting(chunk: list[bytes], chain_id: str) -> Any:
        verified.extend(chunk)
        return real(chunk, chain_id)

    monkeypatch.setattr(mp, "_verify_chunk", counting)
    admitted = asyncio.run(pool.add_many(raws, None))
    assert [a.ok for a in admitted] == [True, True, True]
    assert verified == [raws[2]]  # only the one never seen before
    assert pool.add_sync(raws[0]).code.name == "DUPLICATE_TX"
    assert set(pool.pending) == {tx_hash(r) for r in raws}


def test_a_tx_with_expires_after_is_refused_late_not_reaped_and_dropped_at_commit() -> None:
    """``expires_after`` (state/lifetimes.py): admission refuses an expired tx; a pending one
    is skipped by reap once the last block's time passed it, and dropped at the next commit."""
    from state.errors import Code
    from state.tx import PlaceOrder, Tif, sign_tx
    from tests.harness import Chain, key

    chain = Chain()
    k = key(7)
    chain.fund(k, 0, 10**12)
    pool = Mempool(chain.sm, MempoolConfig())
    now = chain.time
    order = PlaceOrder(0, True, 59_000, 10, Tif.GTC, False, None)
    late = sign_tx(k, now + 1, order, chain.genesis.chain_id, expires_after=now - 1)
    assert pool.add_sync(late).code == Code.TX_EXPIRED
    soon = sign_tx(k, now + 2, order, chain.genesis.chain_id, expires_after=now + 500)
    keep = sign_tx(k, now + 3, order, chain.genesis.chain_id)
    assert pool.add_sync(soon).code == Code.OK and pool.add_sync(keep).code == Code.OK
    assert pool.reap(10, 1 << 20) == [soon, keep]
    chain.block()  # the chain moves 1000 ms past ``now``: ``soon`` can only be TX_EXPIRED now
    assert pool.reap(10, 1 << 20) == [keep]
    pool.on_committed([], [], block_time_ms=chain.time)
    assert list(pool.pending.values()) == [keep] and pool.bytes == len(keep)
