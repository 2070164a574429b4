"""The node's evidence pool (persisted pending evidence) and the block store's evidence index."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from consensus.block import make_block
from consensus.evidence import DuplicateVote
from consensus.messages import Vote, VoteType
from node import evidence_index
from node.blockstore import BlockStore
from node.evidence_pool import MAX_PENDING, EvidencePool
from node.jsonfmt import block_json, evidence_json
from state.keys import PrivateKey
from tests.harness import count_calls

CHAIN = "pool-test"
KEY = PrivateKey(hashlib.sha256(b"equivocator").digest())


def ev(height: int, round_: int = 0, vote_type: VoteType = VoteType.PREVOTE) -> DuplicateVote:
    a = Vote.create(KEY, CHAIN, vote_type, height, round_, hashlib.sha256(b"a").digest())
    b = Vote.create(KEY, CHAIN, vote_type, height, round_, hashlib.sha256(b"b").digest())
    return DuplicateVote.make(a, b)


def test_pending_evidence_survives_a_restart_and_leaves_when_committed(tmp_path: Path) -> None:
    pool = EvidencePool(tmp_path)
    assert pool.add(ev(5)) and pool.add(ev(3, vote_type=VoteType.PRECOMMIT))
    assert not pool.add(ev(5))  # known
    again = EvidencePool(tmp_path)
    assert [e.height for e in again.pending()] == [3, 5]  # oldest first
    assert again.remove([ev(5).key, ev(9).key]) == 1
    assert [e.key for e in EvidencePool(tmp_path).pending()] == [ev(3, vote_type=VoteType.PRECOMMIT).key]


def test_a_full_pool_keeps_the_oldest(tmp_path: Path) -> None:
    pool = EvidencePool(tmp_path)
    for h in range(1, MAX_PENDING + 1):
        pool._pending[ev(h).key] = ev(h)  # fill without a file write per item
    assert not pool.add(ev(MAX_PENDING + 10))
    other = PrivateKey(hashlib.sha256(b"another equivocator").digest())
    older = DuplicateVote.make(Vote.create(other, CHAIN, VoteType.PREVOTE, 1, 0, hashlib.sha256(b"a").digest()),
                               Vote.create(other, CHAIN, VoteType.PREVOTE, 1, 0, hashlib.sha256(b"b").digest()))
    assert pool.add(older) and len(pool) == MAX_PENDING
    assert ev(MAX_PENDING).key not in pool


def test_one_proof_per_validator_and_height(tmp_path: Path) -> None:
    """An equivocating validator can sign conflicting pairs for every round and step of a
    height; one proof punishes it, and each further one would have made every node rewrite
    and fsync its pool file."""
    pool = EvidencePool(tmp_path)
    assert pool.add(ev(5))
    assert not pool.add(ev(5, round_=1)) and not pool.add(ev(5, vote_type=VoteType.PRECOMMIT))
    assert pool.add(ev(6, round_=3))
    assert len(pool) == 2


def test_an_unreadable_pool_file_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / "pending.bin").write_bytes(b"\xc1 torn")
    pool = EvidencePool(tmp_path)
    assert len(pool) == 0 and (tmp_path / "pending.bad").read_bytes() == b"\xc1 torn"
    assert pool.add(ev(1)) and len(EvidencePool(tmp_path)) == 1


def test_committed_evidence_is_indexed_by_height_and_by_equivocation(tmp_path: Path) -> None:
    store = BlockStore(str(tmp_path / "blocks"))
    try:
        items = [ev(1), ev(2, vote_type=VoteType.PRECOMMIT)]
        block = make_block(chain_id=CHAIN, height=3, round=0, time_ms=1, prev_block_hash=bytes(32),
                           prev_app_hash=bytes(32), proposer=KEY.pubkey, txs=(),
                           evidence=tuple(e.encode() for e in items))
        assert evidence_index.decoded(block) == items
        with store.db.write_batch() as wb:
            for k, v in evidence_index.puts(3, items):
                wb.put(k, v)
        assert evidence_index.committed_at(store.db, items[0].key) == 3
        assert evidence_index.committed_at(store.db, ev(7).key) is None
        assert [(h, e) for h, e in evidence_index.committed(store.db, 3)] == [(3, items[0]), (3, items[1])]
        assert list(evidence_index.committed(store.db, 4)) == []
        assert len(list(evidence_index.committed(store.db, None, limit=1))) == 1
    finally:
        store.close()


def test_json_shapes() -> None:
    e = ev(4, round_=2, vote_type=VoteType.PRECOMMIT)
    doc = evidence_json(e)
    assert doc["validator"] == KEY.pubkey.hex() and (doc["height"], doc["round"], doc["type"]) == (4, 2, "precommit")
    assert DuplicateVote.decode(bytes.fromhex(doc["raw"])) == e and doc["hash"] == e.hash.hex()
    from consensus.certificate import CommitCertificate

    block = make_block(chain_id=CHAIN, height=5, round=0, time_ms=1, prev_block_hash=bytes(32),
                       prev_app_hash=bytes(32), proposer=KEY.pubkey, txs=(), evidence=(e.encode(),))
    cert = CommitCertificate.from_votes([Vote.create(KEY, CHAIN, VoteType.PRECOMMIT, 5, 0, block.hash)])
    out = block_json(block, cert, block.encode(), cert.encode())
    assert out["evidence"] == [doc] and out["header"]["evidence_root"] == block.header.evidence_root.hex()
    plain = make_block(chain_id=CHAIN, height=5, round=0, time_ms=1, prev_block_hash=bytes(32),
                       prev_app_hash=bytes(32), proposer=KEY.pubkey, txs=())
    assert "evidence" not in block_json(plain, cert, plain.encode(), cert.encode())


def _driver_for_frames(pool: EvidencePool, height: int) -> tuple[Any, list[Any]]:
    """A ``ConsensusDriver`` reduced to what ``on_evidence_frame`` reads: the pool, a core
    at ``height`` whose one validator is ``KEY``, nothing committed; returns it and the list
    of the events it fed to the core."""
    from consensus.validators import Validator, ValidatorSet
    from node.driver import ConsensusDriver

    d: Any = ConsensusDriver.__new__(ConsensusDriver)
    d.rt = SimpleNamespace(evidence_pool=pool, faults=SimpleNamespace(isolated=lambda: False),
                           p2p=SimpleNamespace(broadcast=lambda *a: None), sm=SimpleNamespace(height=height - 1))
    d.core = SimpleNamespace(height=height, chain_id=CHAIN, validators=ValidatorSet([Validator(KEY.pubkey, 1)]))
    d.bad_messages = 0
    d._committed = lambda evidence: False
    fed: list[Any] = []
    d.feed = fed.append
    return d, fed


def test_a_peer_s_evidence_from_beyond_our_height_is_not_kept(tmp_path: Path) -> None:
    """Evidence cannot be committed before its height has passed, and heights are
    unbounded: a validator signing pairs for far heights could fill every node's pool.
    A node drops such a frame without blaming the peer (one ahead of us may send it; it is
    gossiped again), and keeps the same evidence once its height is current."""
    import asyncio

    pool = EvidencePool(tmp_path)
    d, fed = _driver_for_frames(pool, 4)
    asyncio.run(d.on_evidence_frame("peer", ev(9).encode()))
    assert len(pool) == 0 and d.bad_messages == 0 and not fed
    d.core.height = 9
    asyncio.run(d.on_evidence_frame("peer", ev(9).encode()))
    assert [e.height for e in pool.pending()] == [9] and len(fed) == 1


def test_a_peer_s_evidence_for_long_past_heights_costs_no_pool_write(tmp_path: Path) -> None:
    """A validator can sign a conflicting pair for every height the chain ever had, each a
    new offence; every one a node kept was a rewrite and fsync of its pool file on the
    event loop (sent newest first, each also evicts the newest piece of a full pool). A
    peer's piece more than ``MAX_PEER_EVIDENCE_AGE`` heights old is dropped unread and
    the peer is not blamed; a recent one is kept as before."""
    import asyncio

    from node.evidence_pool import MAX_PEER_EVIDENCE_AGE

    pool = EvidencePool(tmp_path)
    saves = 0
    real_save = pool._save

    def counting_save() -> None:
        nonlocal saves
        saves += 1
        real_save()

    pool._save = counting_save  # type: ignore[method-assign]
    height = MAX_PEER_EVIDENCE_AGE + 200
    d, fed = _driver_for_frames(pool, height)

    async def flood() -> None:
        for h in range(height, 0, -1):  # newest first: each one older than every piece kept
            await d.on_evidence_frame("peer", ev(h).encode())

    asyncio.run(flood())
    oldest = height - MAX_PEER_EVIDENCE_AGE
    assert saves == MAX_PEER_EVIDENCE_AGE + 1 and len(fed) == saves and d.bad_messages == 0
    assert min(e.height for e in pool.pending()) == oldest
    assert pool.add(ev(oldest - 1))  # the bound is the node's policy for peers' frames, not the pool's


def test_a_peer_s_evidence_with_a_forged_signature_never_reaches_the_slow_rule(tmp_path: Path,
                                                                               monkeypatch: object) -> None:
    """``evidence.check`` verifies with ``state.keys.verify``, which answers a signature
    libsodium rejects in plain Python (~17 ms): the driver checks a peer's piece with the
    batch verifier first, so a forged one is refused (and the peer blamed) at C speed."""
    import asyncio

    import pytest

    import consensus.messages
    from node.p2p import BadFrame

    calls = count_calls(monkeypatch, consensus.messages, "verify")
    pool = EvidencePool(tmp_path)
    d, _ = _driver_for_frames(pool, 4)
    good = ev(3)
    sig = good.vote_b.signature
    forged = DuplicateVote(good.vote_a, Vote(good.vote_b.type, 3, 0, good.vote_b.block_hash, KEY.pubkey,
                                             sig[:-1] + bytes([sig[-1] ^ 1])))
    with pytest.raises(BadFrame, match="BAD_SIGNATURE"):
        asyncio.run(d.on_evidence_frame("peer", forged.encode()))
    assert calls.n == 0 and len(pool) == 0 and d.bad_messages == 1
