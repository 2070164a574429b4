"""Blocks execute on the execution thread (node/execution.py) while the loop goes on:
nothing but mempool admission reads the exchange state meanwhile (node/stategate.py), consensus is fed what
arrived meanwhile in arrival order once the next height has started (node/driver.py), a
failed execution leaves the gate shut and stops the node, and the state a threaded commit
stores is the one a synchronous commit would."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from consensus.actions import BroadcastVote, RecordWal
from consensus.block import Block
from consensus.certificate import CommitCertificate
from consensus.events import TxsReady
from consensus.wal import WalEndHeight, WalStep
from node import driver as driver_mod
from node.blockstore import BlockStore
from node.config import MempoolConfig
from node.diskfull import StorageFailure
from node.driver import ConsensusDriver
from node.events import EventBus
from node.execution import Execution
from node.mempool import Mempool
from node.stategate import NodeStopping, StateGate
from state.genesis import Genesis
from state.machine import StateMachine
from tests.harness import Chain, key
from tests.node.test_mempool_admission import orders
from tests.node.test_replay import build_chain


# ---------------------------------------------------------------------------- the gate
def test_the_gate_holds_readers_while_closed_and_fails_them_for_good() -> None:
    async def run() -> list[str]:
        gate, seen = StateGate(), []

        async def reader(name: str) -> None:
            try:
                await gate.wait_open()
                seen.append(name)
            except NodeStopping:
                seen.append(name + " stopped")

        gate.close()
        first = asyncio.ensure_future(reader("a"))
        await asyncio.sleep(0.01)
        assert seen == [] and not gate.is_open
        gate.open()
        await first
        gate.close()
        second = asyncio.ensure_future(reader("b"))
        await asyncio.sleep(0.01)
        gate.fail()
        await second
        gate.open()  # a failed gate never opens again
        await reader("c")
        return seen

    assert asyncio.run(run()) == ["a", "b stopped", "c stopped"]


def test_admission_answers_while_a_block_executes_and_refuses_once_execution_failed() -> None:
    """Admission does not wait for the gate (it reads only what a block replaces whole,
    state.machine.must_admit): a batch is judged while a block executes. Once execution
    failed, nothing more is admitted."""
    chain = Chain()
    trader = key(7)
    chain.fund(trader, 0, 10**12)
    gate = StateGate()
    pool = Mempool(chain.sm, MempoolConfig(), gate=gate)

    async def run() -> None:
        gate.close()
        done = await asyncio.wait_for(pool.add_many(orders(chain, trader, 3), None), 5)
        assert [a.ok for a in done] == [True, True, True] and len(pool) == 3
        gate.fail()
        with pytest.raises(NodeStopping):
            await pool.add_many(orders(chain, trader, 1), None)
        assert len(pool) == 3

    asyncio.run(run())


def test_admission_on_another_thread_sees_each_signer_before_or_after_its_own_txs() -> None:
    """Blocks apply on one thread while this one judges transactions of the same signers
    against the live state, as the node's loop does. A signer's kept nonces are replaced,
    never changed in place, so each verdict is the one the state before or after that
    signer's transactions in the block gives, never an error of a half-changed record: a
    nonce the chain has used is never admitted once its block is done, and a fresh one
    never refused for a used nonce."""
    import threading

    from state.errors import Code, TxError
    from state.machine import must_admit
    from state.tx import decode_tx

    chain = Chain()
    traders = [key(20 + i) for i in range(4)]
    for k in traders:
        chain.fund(k, 0, 10**12)
    blocks = [[tx for k in traders for tx in orders(chain, k, 40)] for _ in range(4)]
    decoded = [[decode_tx(raw) for raw in txs] for txs in blocks]  # once, before the threads race
    used: set[tuple[bytes, int]] = set()
    stop = threading.Event()

    def apply_blocks() -> None:
        try:
            for txs, signed in zip(blocks, decoded, strict=True):
                chain.block(*txs)
                used.update((tx.signer, tx.nonce) for tx in signed)
        finally:
            stop.set()

    verdicts: list[Code] = []
    worker = threading.Thread(target=apply_blocks)
    worker.start()
    probes = [tx for signed in decoded for tx in signed[::7]]
    while not stop.is_set():
        for tx in probes:
            done_before = (tx.signer, tx.nonce) in used
            ex = chain.sm.ex
            try:
                must_admit(ex, tx, ex.time_ms)
                verdicts.append(Code.OK)
                assert not done_before, "a nonce its block had used was admitted"
            except TxError as err:
                verdicts.append(err.code)
                assert err.code in (Code.NONCE_USED, Code.NONCE_TOO_LOW), err
    worker.join()
    assert Code.OK in verdicts and Code.NONCE_USED in verdicts
    for tx in probes:  # every probe is used once the blocks are done
        with pytest.raises(TxError):
            must_admit(chain.sm.ex, tx, chain.sm.ex.time_ms)


# ---------------------------------------------------------------------------- the driver
class FakeExecution:
    def __init__(self) -> None:
        self.gate = StateGate()
        self.calls: list[str] = []
        self.fut: asyncio.Future[Any] | None = None
        self.last_apply_ms = 1.0

    def check_block(self, block: Any) -> None:
        self.calls.append(f"check {block.height}")

    def apply_in_thread(self, block: Any, cert: Any = None) -> asyncio.Future[Any]:
        if cert is not None:
            self.calls.append(f"save {block.height}")  # on the thread, before applying
        self.gate.close()
        self.fut = asyncio.get_running_loop().create_future()
        return self.fut

    def finish(self, applied: Any, *, publish: bool) -> None:
        self.gate.open()
        self.calls.append(f"finish {applied.block.height}")


def fake_driver(wal_sync: Any = None) -> tuple[Any, list[Any], FakeExecution, list[str]]:
    fed: list[Any] = []
    ex = FakeExecution()
    host_calls: list[str] = []
    d: Any = ConsensusDriver.__new__(ConsensusDriver)
    d.rt = SimpleNamespace(execution=ex, after_commit=lambda h: host_calls.append(f"after {h}"),
                           fail=lambda reason: host_calls.append("fail"),
                           fail_storage=lambda err: host_calls.append("fail_storage"),
                           wal=SimpleNamespace(append=lambda record, sync: ex.calls.append(f"wal {record}"),
                                               sync=wal_sync or (lambda: ex.calls.append("wal sync"))),
                           faults=SimpleNamespace(isolated=lambda: False, votes_to_send=lambda v: [v]),
                           p2p=SimpleNamespace(broadcast=lambda proto, frame: ex.calls.append(f"send {frame!r}")),
                           evidence_pool=[], genesis=SimpleNamespace(evidence_max_age=100_000))
    d.core = SimpleNamespace(handle=lambda event: fed.append(event) or [])
    d.loop = asyncio.get_running_loop()
    d.timers, d.evidence = set(), []
    d.stopped, d.halted, d.committing, d._end_height = False, None, False, None
    d._queued, d._queued_bytes, d.dropped_events, d.rounds_total = deque(), 0, 0, 0
    d._wal_sync, d._after_sync, d._syncer = None, deque(), ThreadPoolExecutor(1)
    d.start_height = lambda: fed.append("start")
    return d, fed, ex, host_calls


def block(height: int) -> Any:
    return SimpleNamespace(height=height, evidence=(), hash=b"\x01" * 32, txs=())


def applied(height: int) -> Any:
    return SimpleNamespace(block=block(height), result=SimpleNamespace(app_hash=b"\x02" * 32))


def test_events_that_arrive_during_a_commit_are_fed_in_order_after_the_next_height_starts() -> None:
    async def run() -> None:
        d, fed, ex, host_calls = fake_driver()
        d.feed("before")
        d._commit(block(5), SimpleNamespace(round=0))
        assert d.committing and not ex.gate.is_open
        for event in ("vote a", TxsReady(1), TxsReady(2), "proposal", TxsReady(3)):
            d.feed(event)
        assert fed == ["before"]  # the core saw nothing while the block executed
        assert ex.fut is not None
        ex.fut.set_result(applied(5))
        await asyncio.sleep(0)
        assert ex.calls == ["check 5", "save 5", "finish 5"] and host_calls == ["after 5"]
        assert fed[:4] == ["before", "start", "vote a", TxsReady(1)]  # repeated TxsReady: one is enough
        assert fed[4:] == ["proposal", TxsReady(3)]
        assert not d.committing and ex.gate.is_open and not d._queued

    asyncio.run(run())


def test_the_end_of_height_marker_is_written_once_the_block_is_saved_and_never_if_it_is_not() -> None:
    """The block is saved on the execution thread; until that is done the WAL keeps the
    height's votes (a crash before the save restarts this height, and the core must know
    what it signed), so the core's end marker waits for the thread's success."""
    async def run() -> None:
        d, _, ex, host_calls = fake_driver()
        d._commit(block(5), SimpleNamespace(round=0))
        d.perform(RecordWal(WalEndHeight(5), True))
        assert ex.calls == ["check 5", "save 5"]  # no WAL write while the block is being saved
        assert ex.fut is not None
        ex.fut.set_result(applied(5))
        await asyncio.sleep(0)
        assert ex.calls == ["check 5", "save 5", f"wal {WalEndHeight(5)}", "finish 5"]

        ex.calls.clear()
        d._commit(block(6), SimpleNamespace(round=0))
        d.perform(RecordWal(WalEndHeight(6), True))
        assert ex.fut is not None
        ex.fut.set_exception(StorageFailure("/data/blocks", OSError(28, "No space left on device")))
        await asyncio.sleep(0)
        assert ex.calls == ["check 6", "save 6"] and host_calls[-1] == "fail_storage"  # no marker

    asyncio.run(run())


def _vote_actions(n: int) -> list[Any]:
    """What the core emits when it votes: the synced record, then the vote."""
    vote = SimpleNamespace(is_nil=False, encode=lambda: f"vote {n}".encode())
    return [RecordWal(WalStep(n, 0, 0), True), BroadcastVote(vote)]  # type: ignore[arg-type]


def test_a_vote_waits_for_its_wal_fsync_off_the_loop_and_so_does_everything_after_it() -> None:
    """The WAL record is written on the loop and synced on the wal-sync thread; the vote,
    the rest of its action list, and every event that arrives meanwhile wait for it, and
    then go in order (the core sees what it would have with the fsync inline)."""
    release = threading.Event()

    async def run() -> None:
        d, fed, ex, _ = fake_driver(wal_sync=lambda: release.wait(5) and ex.calls.append("wal sync"))
        d.core = SimpleNamespace(handle=lambda event: fed.append(event) or _vote_actions(len(fed)),
                                 own_messages=lambda: ex.calls.append("re-send") or [])
        d.feed("proposal")
        assert ex.calls == [f"wal {WalStep(1, 0, 0)}"]  # written, not yet durable: the vote waits
        d.feed("a vote")
        d.on_peer_connected("peer")  # would re-send the vote being synced: it waits too
        await asyncio.sleep(0.05)
        assert fed == ["proposal"] and ex.calls == [f"wal {WalStep(1, 0, 0)}"]
        release.set()
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(ex.calls) >= 7:
                break
        assert ex.calls == [f"wal {WalStep(1, 0, 0)}", "wal sync", "send b'Vvote 1'", "re-send",
                            f"wal {WalStep(2, 0, 0)}", "wal sync", "send b'Vvote 2'"]
        assert fed == ["proposal", "a vote"] and d._wal_sync is None and not d._queued

    asyncio.run(run())


def test_settled_waits_for_an_event_held_behind_a_wal_fsync() -> None:
    """Block sync feeds a block and awaits ``settled`` to see whether it was stored: a block
    queued behind an fsync in flight is not taken for a refused one."""
    release = threading.Event()

    async def run() -> None:
        d, fed, ex, _ = fake_driver(wal_sync=lambda: release.wait(5) and ex.calls.append("wal sync"))
        d.core = SimpleNamespace(handle=lambda event: fed.append(event) or _vote_actions(len(fed)))
        d.feed("proposal")
        d.feed("synced block")
        waiter = asyncio.ensure_future(d.settled())
        await asyncio.sleep(0.05)
        assert not waiter.done() and fed == ["proposal"]
        release.set()
        await asyncio.wait_for(waiter, 5)
        assert fed == ["proposal", "synced block"]

    asyncio.run(run())


def test_a_failed_wal_fsync_sends_nothing_that_waited_for_it() -> None:
    def full() -> None:
        raise StorageFailure("/data/wal/wal.log", OSError(28, "No space left on device"))

    async def run() -> None:
        d, fed, ex, host_calls = fake_driver(wal_sync=full)
        d.core = SimpleNamespace(handle=lambda event: fed.append(event) or _vote_actions(len(fed)))
        d.feed("proposal")
        d.feed("a vote")
        await asyncio.sleep(0.1)
        assert host_calls == ["fail_storage"]
        assert not any(c.startswith("send") for c in ex.calls) and fed == ["proposal"]

    asyncio.run(run())


def test_the_queue_is_bounded_in_events_and_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flood (a Byzantine validator's proposals carry whole blocks) is dropped past either
    bound, and what was queued is fed in order once the block is done."""
    monkeypatch.setattr(driver_mod, "MAX_QUEUED", 3)
    monkeypatch.setattr(driver_mod, "MAX_QUEUED_BYTES", 1000)

    async def run() -> None:
        d, fed, ex, _ = fake_driver()
        d._commit(block(1), SimpleNamespace(round=0))
        for i in range(5):
            d.feed(f"vote {i}")
        assert d.dropped_events == 2
        assert ex.fut is not None
        ex.fut.set_result(applied(1))
        await asyncio.sleep(0)
        assert fed == ["start", "vote 0", "vote 1", "vote 2"]
        assert d._queued_bytes == 0

        fed.clear()
        d._commit(block(2), SimpleNamespace(round=0))
        d.feed("big proposal", 900)
        d.feed("second big proposal", 200)  # 1,100 bytes: over
        d.feed("vote", 100)
        assert d.dropped_events == 3 and d._queued_bytes == 1000
        ex.fut.set_result(applied(2))
        await asyncio.sleep(0)
        assert fed == ["start", "big proposal", "vote"] and d._queued_bytes == 0

    asyncio.run(run())


@pytest.mark.parametrize("failure", ["bug", "disk full"])
def test_a_failed_finish_on_the_loop_stops_the_node_too(failure: str) -> None:
    """The thread stored the block, then the loop's part failed (a bug in the websocket
    hand-off, a full disk under the evidence pool or a snapshot): halted or stopped, never
    a node that silently stops starting heights."""
    async def run() -> None:
        d, fed, ex, host_calls = fake_driver()
        err = RuntimeError("boom") if failure == "bug" else StorageFailure("/data/evidence", OSError(28, "No space"))

        def finish(applied: Any, *, publish: bool) -> None:
            raise err

        ex.finish = finish  # type: ignore[method-assign]
        d._commit(block(4), SimpleNamespace(round=0))
        d.feed("vote")
        assert ex.fut is not None
        ex.fut.set_result(applied(4))
        await asyncio.sleep(0)
        assert fed == [] and not d._queued
        assert host_calls == (["fail"] if failure == "bug" else ["fail_storage"])
        assert (d.halted is not None) == (failure == "bug")
        with pytest.raises(NodeStopping):
            await ex.gate.wait_open()

    asyncio.run(run())


@pytest.mark.parametrize("failure", ["bug", "disk full"])
def test_a_failed_execution_shuts_the_gate_and_stops_the_node(failure: str) -> None:
    async def run() -> None:
        d, fed, ex, host_calls = fake_driver()
        d._commit(block(3), SimpleNamespace(round=0))
        d.feed("vote")
        assert ex.fut is not None
        err = RuntimeError("boom") if failure == "bug" else StorageFailure("/data/state", OSError(28, "No space"))
        ex.fut.set_exception(err)
        await asyncio.sleep(0)
        assert fed == [] and not d._queued  # no next height, nothing fed
        assert host_calls == (["fail"] if failure == "bug" else ["fail_storage"])
        assert (d.halted is not None) == (failure == "bug")
        with pytest.raises(NodeStopping):
            await ex.gate.wait_open()  # nobody reads a state that may hold half a block

    asyncio.run(run())


# ---------------------------------------------------------------------------- a real store
def test_a_threaded_commit_stores_what_the_chain_certified(tmp_path: Path) -> None:
    """Each block of a built chain committed through the execution thread, with a reader
    waiting at the gate meanwhile: the same app hashes as the chain that built them."""
    home = tmp_path / "node"
    build_chain(home, heights=5)
    genesis = Genesis.from_json(json.loads((home / "genesis.json").read_text()))
    source = BlockStore(str(home / "data" / "blocks"))
    blocks = BlockStore(str(tmp_path / "blocks"))
    sm = StateMachine.open(genesis, str(tmp_path / "state"))

    async def read_height_when_open(gate: StateGate, heights: list[int]) -> None:
        await gate.wait_open()
        heights.append(sm.height)

    async def run() -> None:
        execution = Execution(sm, blocks, Mempool(sm, MempoolConfig()), EventBus(), None)
        for h in range(1, 6):
            raw_block, raw_cert = source.block(h), source.certificate(h)
            assert raw_block is not None and raw_cert is not None
            blk, cert = Block.decode(raw_block), CommitCertificate.decode(raw_cert)
            execution.store_block(blk, cert)
            fut = execution.apply_in_thread(blk)
            heights: list[int] = []
            waiting = asyncio.ensure_future(read_height_when_open(execution.gate, heights))
            done = await fut
            assert heights == []  # the thread finished, but the loop has not taken it yet
            execution.finish(done, publish=True)
            await waiting
            assert heights == [h]
            expected = source.results(h)
            assert expected is not None and sm.app_hash == expected[0]
        await execution.drain()

    try:
        asyncio.run(run())
    finally:
        sm.close()
        blocks.close()
        source.close()


# ---------------------------------------------------------------------------- the RPC
def test_rpc_reads_of_the_state_and_its_height_wait_for_the_block(tmp_path: Path) -> None:
    """While a block executes, /health (the height), /account (the state) and /block_results
    wait; /genesis and /commits (the stored results only) answer at once. A client that
    read height h finds block h's results: the height is set when a block is applied,
    before its results are stored."""
    from aiohttp.test_utils import TestClient, TestServer

    from state.keys import address_to_text
    from tests.node.proofchain import ALICE, ProvingNode

    node = ProvingNode(tmp_path, heights=3)

    async def run() -> None:
        async with TestClient(TestServer(node.app())) as client:
            gate = node.execution.gate
            gate.close()
            for path in ("/genesis", "/commits?from=1&to=3"):
                assert (await client.get(path)).status == 200, path
            waiting = [asyncio.ensure_future(client.get(path)) for path in
                       ("/health", f"/account?address={address_to_text(ALICE.address)}", "/block_results?height=3")]
            await asyncio.sleep(0.2)
            assert not any(w.done() for w in waiting)
            gate.open()
            answers = await asyncio.gather(*waiting)
            assert [a.status for a in answers] == [200, 200, 200]
            assert (await answers[0].json())["height"] == 3
            gate.fail()
            assert (await client.get("/health")).status == 503  # stopping: no state read any more

    try:
        asyncio.run(run())
    finally:
        node.close()
