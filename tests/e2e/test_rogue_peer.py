"""A peer that sends garbage, oversized or replayed frames is dropped, then banned, and
consensus does not stall."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from devnet.cluster import Cluster
from node.p2p import CONSENSUS, TX, P2PNode

pytestmark = pytest.mark.e2e


def test_garbage_from_a_peer_is_counted_and_banned_while_blocks_continue(tmp_path: Path) -> None:
    c = Cluster(tmp_path / "net")
    try:
        c.start_all()
        target = c.manifest.nodes[0]
        start = c.current_height(0)
        addr = f"/ip4/127.0.0.1/tcp/{target.p2p_port}/p2p/{target.peer_id}"

        async def attack() -> None:
            rogue = P2PNode(str(tmp_path / "rogue"), "/ip4/127.0.0.1/tcp/0", peers=[addr])
            await rogue.start()
            try:
                await rogue.wait_for_peers([target.peer_id], timeout_s=20)
                for i in range(40):
                    rogue.send(target.peer_id, CONSENSUS, b"V" + bytes([i]) * 50)  # undecodable vote
                    rogue.send(target.peer_id, TX, b"\xc1garbage")  # undecodable tx frame
                    await asyncio.sleep(0.05)
            finally:
                await rogue.stop()

        asyncio.run(attack())
        info = c.get(0, "/net_info")["metrics"]
        bad = sum(p["bad_frames"] for p in info["protocols"].values())
        assert bad >= 3, info
        assert info["bans"] >= 1, info
        c.wait_height(start + 10, timeout=30)  # consensus kept going
    finally:
        c.stop_all()
