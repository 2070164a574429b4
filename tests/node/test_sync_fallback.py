"""A node restored from a snapshot at h whose peers have all pruned block h+1 falls back to a
newer snapshot instead of asking for h+1 forever (node/syncfallback.py)."""

from __future__ import annotations

import asyncio
import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from node.blockstore import BlockStore
from node.config import NodeConfig
from node.driver import ConsensusDriver
from node.readbudget import ReadBudget
from node.runtime import NodeRuntime
from node.snapshots import Snapshot, encode_snapshot, restore_into
from node.syncfallback import PeerRound, discard_synced_state
from state.codec import decode, encode
from state.genesis import Genesis
from tests.httpstub import http_stub
from tests.node import snapchain
from tests.node.snapchain import next_block


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, Snapshot]]:
    home = tmp_path_factory.mktemp("chain") / "n"
    return home, snapchain.build(home)


class PrunedPeers:
    """Two connected peers that keep blocks only from ``base`` on and answer as
    ``ConsensusDriver.serve_sync`` does."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.asked: list[list[int]] = []

    def connected_peers(self) -> list[str]:
        return ["peer-a", "peer-b"]

    async def request(self, peer: str, protocol: str, payload: bytes, timeout_s: float = 10.0) -> bytes:
        start, count = decode(payload, max_bytes=64)
        self.asked.append([start, count])
        return encode(self.base) if start < self.base else encode([])

    async def stop(self) -> None:
        pass


def rpc_handler(snap: Snapshot, chain_home: Path) -> type[BaseHTTPRequestHandler]:
    """A node RPC offering ``snap`` as its newest snapshot, and block snap.height+1."""
    raw_block, raw_cert = next_block(chain_home, snap.height + 1)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/snapshots":
                body = json.dumps({"snapshots": [{"height": snap.height}]}).encode()
            elif self.path == f"/snapshot?height={snap.height}":
                body = encode_snapshot(snap)
            elif self.path == f"/blocks?from={snap.height + 1}&to={snap.height + 1}":
                body = json.dumps({"blocks": [{"height": snap.height + 1, "raw_block": raw_block.hex(),
                                               "raw_certificate": raw_cert.hex()}]}).encode()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def node_home(tmp_path: Path, source: str) -> NodeConfig:
    home = tmp_path / "n3"
    home.mkdir()
    (home / "genesis.json").write_text(json.dumps(snapchain.genesis_doc()))
    (home / "config.json").write_text(json.dumps({"moniker": "n3", "rpc": {"port": 0}, "p2p": {"listen": "/ip4/127.0.0.1/tcp/0", "peers": []},
                                                   "storage": {"state_sync_from": source}}))
    return NodeConfig.load(home)


def restore_old(config: NodeConfig, snap: Snapshot) -> None:
    """What a first start from an older snapshot left: its state, pending block h+1."""
    config.state_dir.mkdir(parents=True)
    restore_into(snap, Genesis.from_json(snapchain.genesis_doc()), config.state_dir, config.blocks_dir,
                 config.state_sync_pending_path)


async def certify_against(config: NodeConfig, peers: PrunedPeers) -> tuple[NodeRuntime, bool]:
    """The pending node's certify loop against ``peers`` (for at most 10 s): the runtime,
    stopped, and whether the loop ended by itself."""
    rt = NodeRuntime(config)
    rt.p2p = peers  # type: ignore[assignment]
    assert rt.sync_pending is not None
    try:
        await asyncio.wait_for(rt._certify_snapshot(rt.sync_pending), 10)
        ended = True
    except TimeoutError:
        ended = False
    await rt.stop()
    return rt, ended


def test_every_peer_pruned_block_h_plus_1_falls_back_to_the_newest_snapshot(
        chain: tuple[Path, dict[int, Snapshot]], tmp_path: Path) -> None:
    """Restored at 2 (pending); both peers keep blocks from 5 on: the node stops to resync,
    and its next start restores the RPC's newest snapshot (5), certified by block 6."""
    chain_home, snaps = chain
    with http_stub(rpc_handler(snaps[5], chain_home)) as url:
        config = node_home(tmp_path, url)
        restore_old(config, snaps[2])
        peers = PrunedPeers(base=5)
        rt, ended = asyncio.run(certify_against(config, peers))
        assert ended and rt.resync and rt.stop_requested.is_set() and peers.asked == [[3, 1], [3, 1]]
        discard_synced_state(config)  # what node.main does before the next run
        again = NodeRuntime(config)
        try:
            assert (again.sm.height, again.sync_pending) == (5, None)
            assert again.sm.app_hash == snaps[5].app_hash and again.blocks.base == 6
        finally:
            asyncio.run(again.stop())


def test_no_fallback_from_a_file_or_to_a_snapshot_the_peers_cannot_continue(
        chain: tuple[Path, dict[int, Snapshot]], tmp_path: Path) -> None:
    """A file source cannot give a newer snapshot; an RPC whose newest snapshot (3) is below
    what the peers keep (from 5) would strand the node again: it says why, keeps asking
    and keeps its state."""
    chain_home, snaps = chain
    with http_stub(rpc_handler(snaps[3], chain_home)) as url:
        for source in (str(tmp_path / "old.snap"), url):
            home = tmp_path / ("file" if source.endswith(".snap") else "rpc")
            home.mkdir()
            config = node_home(home, source)
            restore_old(config, snaps[2])
            rt = NodeRuntime(config)
            try:
                assert asyncio.run(rt.peers_pruned(3, 5)) is False
                assert not rt.resync and not rt.stop_requested.is_set()
                assert rt._logged == {"file" if home.name == "file" else "old"}
            finally:
                asyncio.run(rt.stop())
            store = BlockStore(str(config.blocks_dir))
            assert store.anchor() is not None and store.anchor()[0] == 2  # type: ignore[index]
            store.close()


def test_a_pruned_peer_says_so_and_block_sync_reports_it(tmp_path: Path) -> None:
    """``serve_sync`` answers a request below its lowest block with that height (an empty
    list still means "not there yet"); the sync loop of a node whose peers all answer so
    hands the height to ``peers_pruned`` and stops."""
    store = BlockStore(str(tmp_path / "blocks"))
    store.start_at(10, b"\x01" * 32, 0)  # a node that started from a snapshot at 10
    host: Any = ConsensusDriver.__new__(ConsensusDriver)
    host.rt = SimpleNamespace(blocks=store, faults=SimpleNamespace(isolated=lambda: False))
    host.sync_budget = ReadBudget(exempt=())
    assert decode(asyncio.run(host.serve_sync("p", encode([4, 50]))), max_bytes=64) == 11
    assert decode(asyncio.run(host.serve_sync("p", encode([11, 50]))), max_bytes=64) == []
    store.close()

    reported: list[tuple[int, int]] = []

    async def peers_pruned(height: int, lowest: int) -> bool:
        reported.append((height, lowest))
        return True

    rt = SimpleNamespace(p2p=PrunedPeers(base=9), faults=SimpleNamespace(isolated=lambda: False),
                         sm=SimpleNamespace(height=3), peers_pruned=peers_pruned)
    driver = SimpleNamespace(rt=rt, stopped=False, catching_up=False, bad_messages=0, sync_strikes={})
    asyncio.run(asyncio.wait_for(ConsensusDriver._sync_loop(driver), 10))  # type: ignore[arg-type]
    assert reported == [(4, 9)] and not driver.catching_up


def test_a_round_is_pruned_only_when_no_peer_may_still_give_the_block() -> None:
    r = PeerRound()
    for answer in (7, 9, "junk"):
        r.answer(answer)
    assert r.pruned_from(4) == 7 and r.pruned_from(7) is None  # 7 is kept: not pruned
    r.answer([])  # one peer is behind: it may commit block 4 yet
    assert r.pruned_from(4) is None
    assert PeerRound().pruned_from(4) is None  # nobody answered
