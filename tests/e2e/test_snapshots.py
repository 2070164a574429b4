"""Retention and state sync: validators prune old blocks and write snapshots; a new node
starts from a peer's snapshot (genesis replay is impossible: block 1 is pruned) and
follows the chain to the same app hash."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from devnet.cluster import Cluster
from node.client import RpcError
from state.tx import PlaceOrder, Tif

pytestmark = pytest.mark.e2e

STORAGE = {"storage": {"retain_blocks": 20, "snapshot_interval": 10, "keep_snapshots": 2}}


def test_pruned_chain_and_state_sync_from_snapshot(tmp_path: Path) -> None:
    c = Cluster(tmp_path, sections={0: STORAGE, 1: STORAGE, 2: STORAGE})
    try:
        for i in range(3):
            c.start(i)
        c.wait_height(2, nodes=[0, 1, 2])
        c.commit(0, c.sign("alice", PlaceOrder(0, False, 60_500, 4, Tif.GTC, False, None)))
        c.wait_height(45, nodes=[0, 1, 2], timeout=90)
        snaps = c.get(0, "/snapshots")["snapshots"]
        assert 1 <= len(snaps) <= 2 and all(s["height"] % 10 == 0 for s in snaps)
        status, _ = c.post(0, "/broadcast_tx_sync", {"tx": "00"})  # node still healthy
        assert status == 200
        with pytest.raises(RpcError) as gone:
            c.get(0, "/block?height=1")
        assert gone.value.http_status == 404
        c.set_config(3, "storage", {"state_sync_from": c.url(1)})
        c.start(3)
        c.wait_height(c.height(0) + 2, nodes=[3], timeout=60)
        assert len(_app_hashes_at_common_height(c)) == 1
        books = [c.get(i, "/book?market=0")["asks"] for i in range(4)]
        assert books[3] == books[0] == [[60_500, 4, 1]]
    finally:
        c.stop_all()


def _app_hashes_at_common_height(c: Cluster, attempts: int = 10) -> set[str]:
    """The app hash every node reports at the lowest height they all reached. The leader
    prunes results older than ``retain_blocks``, so on a loaded machine a lagging node can
    fall far enough behind that the leader no longer has its height: take a fresh height
    and ask again (a node that stays that far behind fails the test)."""
    for _ in range(attempts):
        top = min(c.height(i) for i in range(4))
        try:
            return {c.get(i, f"/block_results?height={top}")["app_hash"] for i in range(4)}
        except RpcError as err:
            if err.http_status != 404:
                raise
            time.sleep(0.5)
    raise AssertionError(f"no height that all 4 nodes still hold: {[c.height(i) for i in range(4)]}")
