"""The handshake re-applies every stored block the state store lacks, which is what makes
an unsynced state batch safe (``StateMachine(sync_commits=False)``, as the node runs it):
an OS crash can leave the state some blocks behind the synced block store, and restarting
brings it to the same app hash. And the durable height that pruning respects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from consensus.block import Block
from node.blockstore import BlockStore
from node.config import MempoolConfig
from node.events import EventBus
from node.execblock import exec_block
from node.execution import Execution
from node.mempool import Mempool
from state.genesis import Genesis
from state.machine import StateMachine
from tests.node.test_replay import build_chain


def _stored_app_hash(blocks: BlockStore, height: int) -> bytes:
    record = blocks.results(height)
    assert record is not None
    app_hash: bytes = record[0]
    return app_hash


def test_handshake_catches_up_a_state_store_several_blocks_behind(tmp_path: Path) -> None:
    home = tmp_path / "node"
    build_chain(home, heights=6)
    genesis = Genesis.from_json(json.loads((home / "genesis.json").read_text()))
    blocks = BlockStore(str(home / "data" / "blocks"))
    try:
        # the state as an OS crash could leave it: durable up to height 2 only
        sm = StateMachine.open(genesis, str(tmp_path / "state"), sync_commits=False)
        for h in (1, 2):
            raw = blocks.block(h)
            assert raw is not None
            block = Block.decode(raw)
            sm.apply_block(exec_block(block))
        sm.close()
        sm = StateMachine.open(genesis, str(tmp_path / "state"), sync_commits=False)
        assert sm.height == 2
        execution = Execution(sm, blocks, Mempool(sm, MempoolConfig()), EventBus(), None)
        assert execution.handshake() == 4
        assert sm.height == 6
        assert sm.app_hash == _stored_app_hash(blocks, 6)
        sm.close()
        reopened = StateMachine.open(genesis, str(tmp_path / "state"))
        assert (reopened.height, reopened.app_hash) == (6, _stored_app_hash(blocks, 6))
        reopened.close()
    finally:
        blocks.close()


def test_unsynced_commits_sync_every_so_often_and_on_demand(tmp_path: Path) -> None:
    home = tmp_path / "node"
    build_chain(home, heights=7)
    genesis = Genesis.from_json(json.loads((home / "genesis.json").read_text()))
    blocks = BlockStore(str(home / "data" / "blocks"))
    sm = StateMachine.open(genesis, str(tmp_path / "state"), sync_commits=False)
    sm.SYNC_EVERY = 3
    synced: list[tuple[int, bool]] = []
    commit = sm.store.commit  # type: ignore[union-attr]

    def spy(writes: Any, height: int, app_hash: bytes, *, sync: bool = True) -> None:
        synced.append((height, sync))
        commit(writes, height, app_hash, sync=sync)

    sm.store.commit = spy  # type: ignore[union-attr, method-assign]
    try:
        for h in range(1, 6):
            raw = blocks.block(h)
            assert raw is not None
            block = Block.decode(raw)
            sm.apply_block(exec_block(block))
        assert synced == [(1, False), (2, False), (3, True), (4, False), (5, False)]
        assert sm.durable_height == 3
        sm.sync_store()
        assert sm.durable_height == 5
        assert StateMachine.open(genesis, None, sync_commits=True).sync_commits
    finally:
        sm.close()
        blocks.close()
