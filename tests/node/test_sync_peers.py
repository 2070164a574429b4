"""Block sync against peers that hold requests or serve blocks the core refuses: they
are asked again only once the good peers have nothing more (node/driver.py ``_sync_loop``)."""

from __future__ import annotations

import asyncio
import hashlib
from types import SimpleNamespace
from typing import Any

from consensus.block import Block, make_block
from consensus.certificate import CommitCertificate
from consensus.events import SyncedBlock
from consensus.messages import Vote, VoteType
from node.driver import SYNC_BATCH, ConsensusDriver
from state.codec import decode, encode
from state.keys import PrivateKey

CHAIN = "sync-peers"
KEY = PrivateKey(hashlib.sha256(b"sync-peers").digest())
TIP = 6 * SYNC_BATCH


def chain() -> list[tuple[bytes, bytes]]:
    """Blocks 1..TIP, each with a one-vote certificate (the fake core below checks none)."""
    out = []
    prev = b""
    for h in range(1, TIP + 1):
        block = make_block(chain_id=CHAIN, height=h, round=0, time_ms=h, prev_block_hash=prev,
                           prev_app_hash=b"\x00" * 32, proposer=KEY.pubkey, txs=())
        cert = CommitCertificate.from_votes([Vote.create(KEY, CHAIN, VoteType.PRECOMMIT, h, 0, block.hash)])
        out.append((block.encode(), cert.encode()))
        prev = block.hash
    return out


class Peers:
    """``a-holder`` never answers (its request times out), ``a-forger`` serves blocks whose
    certificate the core refuses (round 7 here), the ``b-`` peers serve the chain as
    ``serve_sync`` does. Records the node's height at every request to a bad peer."""

    def __init__(self, blocks: list[tuple[bytes, bytes]], sm: Any) -> None:
        self.blocks = blocks
        self.sm = sm
        self.bad_asked: list[tuple[str, int]] = []

    def connected_peers(self) -> list[str]:
        return ["a-forger", "a-holder", "b-one", "b-two"]

    async def request(self, peer: str, protocol: str, payload: bytes, timeout_s: float = 10.0) -> bytes:
        start, count = decode(payload, max_bytes=64)
        if peer.startswith("a-"):
            self.bad_asked.append((peer, self.sm.height))
        if peer == "a-holder":
            raise TimeoutError(f"no answer in {timeout_s} s")  # what it costs: timeout_s of the round
        out = [list(pair) for pair in self.blocks[start - 1:start - 1 + min(count, SYNC_BATCH)]]
        if peer == "a-forger" and out:
            raw_block, raw_cert = out[0]
            cert = CommitCertificate.decode(raw_cert)
            forged = Vote.create(KEY, CHAIN, VoteType.PRECOMMIT, cert.height, 7, cert.block_hash)
            out[0] = [raw_block, CommitCertificate.from_votes([forged]).encode()]
        return encode(out)


def test_peers_that_hold_requests_or_serve_refused_blocks_do_not_slow_catching_up() -> None:
    """Each sync round asked every peer in id order: a peer holding the request cost its
    10 s timeout per 50 blocks from each good peer, slower than a chain makes blocks. Now a
    failing peer is asked again only when the good ones have nothing: once at the start,
    and at the tip."""
    sm = SimpleNamespace(height=0)

    def feed(event: Any) -> None:
        assert isinstance(event, SyncedBlock)
        block: Block = event.block
        if block.height == sm.height + 1 and event.certificate.round == 0:  # the core's check, faked
            sm.height = block.height

    async def settled() -> None:
        pass

    async def peers_pruned(height: int, lowest: int) -> bool:
        raise AssertionError("no peer pruned anything")

    peers = Peers(chain(), sm)
    rt = SimpleNamespace(p2p=peers, faults=SimpleNamespace(isolated=lambda: False), sm=sm,
                         peers_pruned=peers_pruned)
    driver: Any = SimpleNamespace(rt=rt, stopped=False, catching_up=False, bad_messages=0, sync_strikes={},
                                  feed=feed, settled=settled)
    asyncio.run(asyncio.wait_for(ConsensusDriver._sync_loop(driver), 30))
    assert sm.height == TIP and not driver.catching_up
    before_tip = [(peer, h) for peer, h in peers.bad_asked if h < TIP]
    assert before_tip == [("a-forger", 0), ("a-holder", 0)]
    assert driver.sync_strikes["a-holder"] >= 1 and driver.sync_strikes["a-forger"] >= 1
    assert "b-one" not in driver.sync_strikes or driver.sync_strikes["b-one"] == 0


def test_answering_block_requests_takes_a_bounded_share_of_the_loop(tmp_path: Any, monkeypatch: Any) -> None:
    """A 50-block answer is read and encoded on the event loop that runs consensus, and any
    peer may ask again and again. Each answer's loop time is charged to a budget, in all and
    per peer, and a request waits its turn: a peer asking in a loop gets at most its share
    of the loop (a fake clock: every block read costs 10 ms, and waiting advances it)."""
    from node import readbudget
    from node.blockstore import BlockStore
    from node.driver import SYNC_SERVE_PEER_BURST_S, SYNC_SERVE_PEER_SHARE
    from node.readbudget import ReadBudget

    now = [0.0]
    store = BlockStore(str(tmp_path / "blocks"))
    for h, (raw_block, raw_cert) in enumerate(chain()[:SYNC_BATCH], start=1):
        store.save_block(h, raw_block, raw_cert)
    real_block = store.block

    def costly_block(height: int) -> bytes | None:
        now[0] += 0.010
        return real_block(height)

    store.block = costly_block  # type: ignore[method-assign]

    async def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(readbudget.asyncio, "sleep", fake_sleep)
    driver: Any = ConsensusDriver.__new__(ConsensusDriver)
    driver.rt = SimpleNamespace(blocks=store, faults=SimpleNamespace(isolated=lambda: False))
    driver.sync_budget = ReadBudget(0.25, 0.25, lambda: now[0], client_share=SYNC_SERVE_PEER_SHARE,
                                    client_burst_s=SYNC_SERVE_PEER_BURST_S, exempt=())

    async def loop_requests(n: int) -> None:
        for _ in range(n):
            answer = decode(await driver.serve_sync("greedy", encode([1, SYNC_BATCH])), max_bytes=1 << 26)
            assert len(answer) == SYNC_BATCH

    asyncio.run(loop_requests(20))
    store.close()
    spent = 20 * SYNC_BATCH * 0.010  # 10 s of loop time, in 20 answers of 0.5 s
    assert driver.sync_budget.spent_s >= spent
    # what the peer got: its share of the time, plus its burst and the last answer's debt
    assert spent <= SYNC_SERVE_PEER_SHARE * now[0] + SYNC_SERVE_PEER_BURST_S + 0.5
    assert spent / now[0] < 0.14  # without the budget: 1.0, the whole loop
