"""Crash a validator at each step of the storage order and at its WAL/vote writes; it
must restart, repair, catch up, and never make another node see equivocation."""

from __future__ import annotations

from pathlib import Path

import pytest

from devnet.cluster import Cluster
from node.crashpoints import POINTS
from state.tx import PlaceOrder, Tif

pytestmark = pytest.mark.e2e


def test_crash_at_every_point_then_recover(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    try:
        c.start_all()
        for n, point in enumerate(POINTS):
            c.kill(3)
            c.start(3, env={"BOOKCHAIN_FAIL_AT": f"{point}:3"})
            c.commit(0, c.sign("alice", PlaceOrder(0, False, 62_000 + n, 3, Tif.GTC, False, None)))
            assert c.procs[3].wait(timeout=60) == 97, f"node3 did not crash at {point}\n{c.log_tail(3)}"
            c.start(3)
            c.wait_height(c.current_height(0), nodes=[3], timeout=60)
        top = min(c.current_height(i) for i in range(4))
        for h in range(1, top + 1, max(1, top // 20)):
            assert len({c.get(i, f"/block?height={h}")["hash"] for i in range(4)}) == 1
        assert len({c.get(i, f"/block_results?height={top}")["app_hash"] for i in range(4)}) == 1
        assert all(c.get(i, "/status")["consensus"]["evidence"] == 0 for i in range(3))
    finally:
        c.stop_all()
