"""An admitted transaction survives a kill -9 of the only node that holds it: the node
journals what it admits before answering (node/mempool_journal.py) and submits it again
when it comes back, and the chain commits it."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from devnet.cluster import Cluster
from node.client import RpcError
from state.tx import PlaceOrder, Tif

pytestmark = pytest.mark.e2e


def test_an_admitted_tx_survives_a_kill_of_the_only_node_holding_it(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    try:
        c.start(0)  # alone: no peer to gossip to, no quorum to commit with
        c.current_height(0)
        raw = c.sign("alice", PlaceOrder(0, False, 61_000, 2, Tif.GTC, False, None))
        status, body = c.post(0, "/broadcast_tx_sync", {"tx": raw.hex()})
        assert status == 200 and body["name"] == "OK", body
        c.kill(0, signal.SIGKILL)
        c.start_all()
        deadline = time.monotonic() + 60
        found = None
        while found is None and time.monotonic() < deadline:
            try:
                found = c.get(1, f"/tx?hash={body['hash']}")
            except RpcError as err:
                assert err.http_status == 404, err
                time.sleep(0.3)
        assert found is not None, "the admitted tx never committed\n" + c.log_tail(0, 60)
        assert found["receipt"]["code"] == 0
        assert "mempool journal: 1 transactions admitted before the restart, 1 pending again" in c.log_tail(0, 400)
        c.wait_height(found["height"] + 2, timeout=30)  # compacted once the mempool emptied
        assert (Path(c.manifest.nodes[0].home) / "data" / "mempool" / "journal.bin").stat().st_size == 0
    finally:
        c.stop_all()
