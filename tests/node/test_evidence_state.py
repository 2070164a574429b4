"""A block's evidence is judged on the state, not on the node's block store: a node that
started from a snapshot (no blocks, so no evidence index, before it) refuses a block that
repeats an offence committed before its snapshot, as every other node does; evidence
older than the genesis max age is refused by all; pools drop both; a replay from a
snapshot catches a repeat as a replay from genesis does."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from consensus.block import Block, make_block
from consensus.events import EvidenceReceived
from consensus.evidence import DuplicateVote, check_block_evidence
from consensus.messages import Vote, VoteType
from consensus.validators import ValidatorSet
from node.blockstore import BlockStore
from node.driver import ConsensusDriver
from node.evidence_pool import EvidencePool
from node.execblock import exec_block
from node.replay import DirSource, replay
from node.runtime import NodeApp
from state import offences
from state.errors import Code
from state.genesis import Genesis
from state.machine import StateMachine
from tests.node import snapchain
from tests.node.snapchain import CHAIN, T0, VALIDATORS

VALSET = ValidatorSet((k.pubkey, 1) for k in VALIDATORS)


def equivocation(height: int, index: int = 1, round_: int = 0) -> DuplicateVote:
    key = VALIDATORS[index]
    return DuplicateVote.make(
        Vote.create(key, CHAIN, VoteType.PREVOTE, height, round_, hashlib.sha256(b"one").digest()),
        Vote.create(key, CHAIN, VoteType.PREVOTE, height, round_, hashlib.sha256(b"two").digest()))


def genesis(max_age: int | None = None) -> Genesis:
    doc = snapchain.genesis_doc()
    if max_age is not None:
        doc["evidence"] = {"max_age_blocks": max_age}
    return Genesis.from_json(doc)


def block_at(height: int, sm: StateMachine, *evidence: DuplicateVote) -> Block:
    return make_block(chain_id=CHAIN, height=height, round=0, time_ms=T0 + 1000 * height,
                      prev_block_hash=b"\x01" * 32, prev_app_hash=sm.app_hash, proposer=VALIDATORS[0].pubkey,
                      txs=(), evidence=tuple(e.encode() for e in evidence))


def chain_to(g: Genesis, height: int, evidence: dict[int, DuplicateVote]) -> StateMachine:
    """A state after blocks 1..height, ``evidence[h]`` committed in block h."""
    sm = StateMachine.open(g, None)
    for h in range(1, height + 1):
        sm.apply_block(exec_block(block_at(h, sm, *([evidence[h]] if h in evidence else []))))
    return sm


def app_on(sm: StateMachine, g: Genesis, tmp_path: Path) -> tuple[NodeApp, BlockStore]:
    """``NodeApp`` of a node whose state is ``sm`` and whose block store is empty: what a
    node started from a snapshot of ``sm`` holds (its evidence index starts there)."""
    blocks = BlockStore(str(tmp_path / "blocks"))
    return NodeApp(SimpleNamespace(sm=sm, genesis=g, blocks=blocks)), blocks  # type: ignore[arg-type]


def test_a_snapshot_synced_node_refuses_a_block_repeating_an_offence_committed_before_its_snapshot(
        tmp_path: Path) -> None:
    g = genesis()
    sm = chain_to(g, 4, {3: equivocation(2)})  # validator 1's offence at height 2, committed in block 3
    synced = StateMachine.open(g, None)
    synced.load(sm.ex.snapshot_records(), sm.height, sm.app_hash, where="the snapshot")  # state sync at 4
    app, blocks = app_on(synced, g, tmp_path)
    try:
        assert blocks.height == 0  # nothing of blocks 1..4 here, no evidence index
        assert offences.committed_at(synced.ex, (2, VALIDATORS[1].pubkey)) == 3
        for repeat in (equivocation(2), equivocation(2, round_=1)):  # the same offence, any round
            assert not app.validate_block(block_at(5, synced, repeat))
        assert app.validate_block(block_at(5, synced, equivocation(3)))  # another height: a new offence
        assert app.validate_block(block_at(5, synced, equivocation(2, index=2)))  # another validator
        assert app.validate_block(block_at(5, synced))
        assert not app.validate_block(block_at(6, synced))  # not the state's next height: refused
    finally:
        blocks.close()


def test_evidence_older_than_the_max_age_is_refused(tmp_path: Path) -> None:
    g = genesis(max_age=3)
    sm = chain_to(g, 5, {})
    app, blocks = app_on(sm, g, tmp_path)
    try:
        old, last = equivocation(2), equivocation(3)  # block 6: valid from height 6 - 3 = 3 on
        assert check_block_evidence((last.encode(),), 6, VALSET, CHAIN, max_age=3) == (Code.OK, [last])
        assert check_block_evidence((old.encode(),), 6, VALSET, CHAIN, max_age=3)[0] == Code.EVIDENCE_EXPIRED
        assert check_block_evidence((old.encode(),), 6, VALSET, CHAIN)[0] == Code.OK  # the default age
        assert not app.validate_block(block_at(6, sm, old))
        assert app.validate_block(block_at(6, sm, last))
    finally:
        blocks.close()


def fake_driver(sm: StateMachine, g: Genesis, pool: EvidencePool, blocks: BlockStore) -> tuple[Any, list[Any]]:
    d: Any = ConsensusDriver.__new__(ConsensusDriver)
    d.rt = SimpleNamespace(evidence_pool=pool, faults=SimpleNamespace(isolated=lambda: False), genesis=g,
                           p2p=SimpleNamespace(broadcast=lambda *a: None), sm=sm, blocks=blocks)
    d.core = SimpleNamespace(height=sm.height + 1, chain_id=CHAIN, validators=VALSET)
    d.bad_messages = 0
    fed: list[Any] = []
    d.feed = fed.append
    return d, fed


def test_the_pool_drops_evidence_the_state_records_or_that_is_too_old(tmp_path: Path) -> None:
    g = genesis(max_age=3)
    sm = chain_to(g, 5, {4: equivocation(3)})  # block 6 may still carry height 3's evidence
    synced = StateMachine.open(g, None)
    synced.load(sm.ex.snapshot_records(), sm.height, sm.app_hash, where="the snapshot")
    pool = EvidencePool(tmp_path / "evidence")
    blocks = BlockStore(str(tmp_path / "blocks"))
    try:
        d, fed = fake_driver(synced, g, pool, blocks)
        for piece in (equivocation(3, round_=1), equivocation(2, index=2)):  # committed; expired at 6
            asyncio.run(d.on_evidence_frame("peer", piece.encode()))
        assert len(pool) == 0 and not fed and d.bad_messages == 0
        fresh = equivocation(4)
        asyncio.run(d.on_evidence_frame("peer", fresh.encode()))
        assert pool.pending() == [fresh] and len(fed) == 1
    finally:
        blocks.close()


def test_a_replay_from_a_snapshot_catches_an_offence_committed_again_after_it(tmp_path: Path) -> None:
    """Block 2 commits validator 1's offence at height 1; block 5 carries it again (a chain
    no honest quorum would certify; the replay must say so, from genesis as from a
    snapshot taken in between)."""
    home = tmp_path / "node"
    piece = equivocation(1)
    again = equivocation(1, round_=2)
    snaps = snapchain.build(home, heights=6, evidence={2: (piece.encode(),), 5: (again.encode(),)})
    assert json.loads((home / "genesis.json").read_text())["chain_id"] == CHAIN
    for snapshot in (None, snaps[3]):
        src = DirSource(str(home))
        try:
            report = replay(src, None, snapshot=snapshot)
        finally:
            src.close()
        assert not report.ok and report.divergence_height == 5, report.reason
        assert "EVIDENCE_DUPLICATE" in report.reason


def test_evidence_that_waited_behind_the_block_committing_it_does_not_reach_the_core(tmp_path: Path) -> None:
    """A peer's piece arrives while the block carrying its offence executes: the state does
    not record it yet, so it is queued; fed once the block is stored, it must not reach the
    core, which forgot the offence on deciding that block and would propose it again in
    every block it proposes (each refused by all, a nil round each time)."""
    g = genesis()
    sm = chain_to(g, 4, {4: equivocation(3)})
    blocks = BlockStore(str(tmp_path / "blocks"))
    try:
        d, _ = fake_driver(sm, g, EvidencePool(tmp_path / "evidence"), blocks)
        handled: list[Any] = []
        d.core = SimpleNamespace(handle=lambda event: handled.append(event) or [])
        d.stopped, d.halted, d.committing, d._wal_sync = False, None, False, None
        del d.feed  # the real one
        d.feed(EvidenceReceived(equivocation(3, round_=1)))
        assert handled == []
        fresh = EvidenceReceived(equivocation(4))
        d.feed(fresh)
        assert handled == [fresh]
    finally:
        blocks.close()
