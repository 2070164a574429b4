"""Mempool bookkeeping at commit: committed txs leave, expired nonces are swept every
``EXPIRY_SCAN_BLOCKS`` blocks (not every block once the committed-hash cache is full)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from node import mempool as mp
from node.config import MempoolConfig
from node.mempool import EXPIRY_SCAN_BLOCKS, Mempool


def make() -> Mempool:
    sm: Any = SimpleNamespace(genesis=SimpleNamespace(chain_id="t", nonce_past_window_ms=1_000))
    return Mempool(sm, MempoolConfig())


def add(pool: Mempool, h: bytes, nonce: int) -> None:
    pool.pending[h] = b"x" * 10
    pool.bytes += 10
    pool.verified[h] = SimpleNamespace(hash=h, nonce=nonce)  # type: ignore[assignment]


def test_committed_leave_and_expired_are_swept_every_n_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mp, "SEEN_CACHE", 64)  # a multiple of 64, as the real one
    pool = make()
    add(pool, b"a", nonce=5_000)
    add(pool, b"old", nonce=100)
    pool.on_committed([b"a"], block_time_ms=5_000)
    assert b"a" not in pool.pending and b"a" in pool.committed and pool.bytes == 10
    scans = []
    for n in range(2, 3 * EXPIRY_SCAN_BLOCKS + 1):
        before = b"old" in pool.pending
        pool.on_committed([bytes([n % 256, n // 256])], block_time_ms=5_000)
        if before and b"old" not in pool.pending:
            scans.append(n)
        if n == EXPIRY_SCAN_BLOCKS + 10:
            add(pool, b"old", nonce=100)  # comes back: swept at the next multiple, not earlier
    assert len(pool.committed) == 64  # capped
    assert scans == [EXPIRY_SCAN_BLOCKS, 2 * EXPIRY_SCAN_BLOCKS]
    assert pool.bytes == 0
