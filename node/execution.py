"""From a committed block to state: the storage order, the handshake, results and waiters.

Order per block (CometBFT's): save block + certificate (synced) -> apply -> save results
and indexes (synced) -> commit the state batch (synced). A crash anywhere leaves a state
at some height h and a block store at h or h+1; ``handshake`` re-applies what is missing.

The same holds when a write fails instead of the process (a full disk): each store's write
raises ``StorageFailure`` (node/diskfull.py) before anything later in the order happens,
the node stops, and the restart is the recovery. A failed state commit leaves this
process's exchange a block ahead of its store, which is one more reason not to go on.

Threads: the consensus driver checks the block on the loop, then saves, applies, indexes
and stores it on the execution thread (``apply_in_thread``: the loop does not wait for the
block's fsync), and takes the results back on the loop (``finish``). Meanwhile the loop
goes on reading requests, verifying signatures and answering; nothing but mempool
admission reads the exchange state, and admission only what a block replaces whole
(node/stategate.py), and consensus holds its events until the block is done
(node/driver.py). The storage order is the same: the thread does what the loop did, in
the same order. Measured effect: docs/performance.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import msgpack

from consensus.block import Block
from consensus.certificate import CommitCertificate
from node import evidence_index, history, hlws, interest, orderindex
from node.blockstore import BlockStore
from node.crashpoints import maybe_crash
from node.diskfull import writing
from node.events import EventBus
from node.execblock import exec_block
from node.fillbook import FillBook
from node.jsonfmt import event_from_list, receipt_from_list
from node.mempool import Mempool, verify_batch
from node.metrics import NodeMetrics
from node.proofs import ProofWindow, view_of
from node.stategate import NodeStopping, StateGate
from state import lapse
from state.errors import StateIntegrityError
from state.keys import address_to_text
from state.machine import BlockResult, StateMachine
from state.receipts import Cancelled, Fill
from state.tx import SignedTx, tx_hash

log = logging.getLogger("bookchain.exec")


class AppHashMismatch(RuntimeError):
    """Our state after block h-1 differs from the one the chain certified: halt, as
    CometBFT does, rather than sign anything on a forked state."""

BOOK_TOPIC_LEVELS = 20  # the native /websocket book topic: levels per side

Depth = tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]


def event_to_list(e: Any) -> list[Any]:
    if isinstance(e, Fill):
        return ["fill", *e.to_list()]
    if isinstance(e, Cancelled):
        return ["cancel", *e.to_list()]
    return list(e)


@dataclass(slots=True, frozen=True)
class Applied:
    """What the execution thread hands back to the loop for one block."""

    block: Block
    result: BlockResult
    receipts: list[Any]
    events: list[list[Any]]
    hashes: list[bytes]
    apply_ms: float
    fills: dict[Any, Any] = field(default_factory=dict)  # (seq, account) -> FillContext (node/fillbook.py)


class Execution:
    def __init__(self, sm: StateMachine, blocks: BlockStore, mempool: Mempool, bus: EventBus,
                 verify_pool: Executor | None, *, proof_heights: int = 20, gate: StateGate | None = None) -> None:
        self.sm = sm
        self.blocks = blocks
        self.mempool = mempool
        self.bus = bus
        self.verify_pool = verify_pool
        self.waiters: dict[bytes, list[asyncio.Future[tuple[int, int, dict[str, Any]]]]] = {}
        self.last_block_time_ms = sm.time_ms
        self.last_block_hash = b""
        self.last_apply_ms = 0.0
        self.last_block_txs = 0
        self.block_interval_ms = 0.0
        self._last_commit_wall = 0.0
        self.metrics: NodeMetrics | None = None  # set by the runtime; None in tools and tests
        self._committed = asyncio.Event()  # set (and replaced) at every stored block
        self._closing = False
        self.candles = history.CandleBook(blocks.get)  # last candle per (market, interval)
        self.hl = hlws.Publisher()  # Hyperliquid /ws pushes (node/hlws.py), built only while subscribed
        self._books_sent: dict[int, Depth] = {}  # market -> the depth the book topic last published
        self.fillbook = FillBook(blocks.get)  # positions per (account, market) for fill context
        self.interest = interest.InterestBook(blocks.db)  # hourly interest entries (node/interest.py)
        self.proofs = ProofWindow(proof_heights)  # recent heights /proof can prove state at
        self.gate = gate if gate is not None else StateGate()  # closed while a block executes on the thread (node/stategate.py)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exec")
        self._in_flight: asyncio.Future[Applied] | None = None
        self.cpu_s = 0.0  # CPU seconds spent in apply_and_store (the execution thread's work)

    # ------------------------------------------------------------------ start-up
    def handshake(self) -> int:
        """Re-apply stored blocks above the state's height; returns how many."""
        replayed = 0
        if self.blocks.height < self.sm.height:
            raise StateIntegrityError(f"state at height {self.sm.height} is ahead of the block store at "
                                      f"{self.blocks.height}: the block store lost blocks (restore the data "
                                      "directory, or start a fresh home from a snapshot)")
        while self.sm.height < self.blocks.height:
            h = self.sm.height + 1
            raw_block, raw_cert = self.blocks.block(h), self.blocks.certificate(h)
            assert raw_block is not None and raw_cert is not None  # saved together (save_block)
            self._execute(Block.decode(raw_block), publish=False)
            replayed += 1
        anchor = self.blocks.anchor()
        if anchor is not None and anchor[0] == self.blocks.height:  # started from a snapshot
            self.last_block_hash, self.last_block_time_ms = anchor[1], anchor[2]
        elif self.blocks.height:
            raw = self.blocks.block(self.blocks.height)
            assert raw is not None
            block = Block.decode(raw)
            self.last_block_hash = block.hash
            self.last_block_time_ms = block.header.time_ms
        self._keep_for_proofs()  # the start-up state (re-applied blocks were kept as they went)
        return replayed

    def _keep_for_proofs(self) -> None:
        """Keep the committed height's tree version and records for /proof (node/proofs.py)."""
        sm = self.sm
        if self.proofs.latest != sm.height:
            self.proofs.record(sm.height, sm.tree, sm.tree.version, view_of(sm))

    # ------------------------------------------------------------------ commit
    def commit(self, block: Block, cert: CommitCertificate) -> BlockResult:
        """Persist and execute a final block, all on the calling thread (tools, tests)."""
        self.store_block(block, cert)
        return self._execute(block, publish=True)

    def store_block(self, block: Block, cert: CommitCertificate) -> None:
        """The first step of a commit: ``check_block``, then save the block with its
        certificate (synced)."""
        self.check_block(block)
        self._save(block, cert)

    def check_block(self, block: Block) -> None:
        """The block follows our store and our state. Raises ``AppHashMismatch`` (our state
        after the previous block is not the one the chain certified) or ``RuntimeError``."""
        if block.height != self.blocks.height + 1:
            raise RuntimeError(f"commit of {block.height} after stored height {self.blocks.height}")
        if block.header.prev_app_hash != self.sm.app_hash:
            raise AppHashMismatch(
                f"height {block.height}: chain says app hash {block.header.prev_app_hash.hex()} "
                f"after {block.height - 1}, ours is {self.sm.app_hash.hex()}")

    def _save(self, block: Block, cert: CommitCertificate) -> None:
        self.blocks.save_block(block.height, block.encode(), cert.encode())
        maybe_crash("block_saved")

    def apply_in_thread(self, block: Block, cert: CommitCertificate | None = None) -> asyncio.Future[Applied]:
        """Apply, index and store a block on the execution thread, saving it first with
        ``cert`` (checked by ``check_block``; without it, the block is saved already); the
        gate stays closed until ``finish`` (on the loop) has taken its results. Saving here
        keeps the block store's fsync off the loop (p50 1.4-1.8 ms, p99 ~20 ms under load)."""
        self.gate.close()
        loop = asyncio.get_running_loop()
        fut = (loop.run_in_executor(self._thread, self.apply_and_store, block) if cert is None
               else loop.run_in_executor(self._thread, self._save_and_apply, block, cert))
        self._in_flight = fut
        return fut

    def _save_and_apply(self, block: Block, cert: CommitCertificate) -> Applied:
        cpu0 = time.thread_time()
        self._save(block, cert)
        self.cpu_s += time.thread_time() - cpu0
        return self.apply_and_store(block)

    async def drain(self) -> None:
        """Wait for a block executing on the thread (before the stores close), then fail the
        gate: readers still waiting get ``NodeStopping``."""
        fut = self._in_flight
        if fut is not None and not fut.done():
            with contextlib.suppress(Exception):  # already reported by the driver's callback
                await asyncio.shield(fut)
        self._thread.shutdown(wait=True)
        self.gate.fail()

    def _execute(self, block: Block, *, publish: bool) -> BlockResult:
        applied = self.apply_and_store(block)
        self.finish(applied, publish=publish)
        return applied.result

    def apply_and_store(self, block: Block) -> Applied:
        """Apply the block, save its results and indexes, commit the state (the storage
        order above). Runs on the execution thread while the loop reads nothing of the
        state but what admission reads (node/stategate.py); touches nothing the loop writes
        but the verified-tx cache, which it reads and adds to (a tx evicted meanwhile is
        verified again)."""
        t0, cpu0 = time.perf_counter(), time.thread_time()
        self._verify_missing(block.txs)
        indexing = block.height > self.blocks.results_height
        if indexing:
            self.interest.before_block(self.sm.ex)  # the state this block starts from
        result = self.sm.apply_block(exec_block(block), self.mempool.verified, commit=False)
        receipts = [r.to_list() for r in result.receipts]
        # Fills reach the per-account index through the account history (node/history.py),
        # which /fills reads: one entry per fill and account, not two.
        pack = msgpack.Packer(use_bin_type=True).pack
        events: list[list[Any]] = []
        for i, e in result.events:
            if type(e) is Fill:
                events.append([i, ["fill", *e.to_list()]])
            else:
                events.append([i, event_to_list(e)])
        # receipts come one per tx in block order and carry the tx hash (no re-hashing)
        if len(receipts) == len(block.txs):
            hashes = [r[0] for r in receipts]
        else:  # not expected; keep the index right anyway
            hashes = [tx_hash(raw) for raw in block.txs]
        fills: dict[Any, Any] = {}  # each fill side's position context (node/fillbook.py), for the websocket too
        if indexing:
            record = pack([result.app_hash, receipts, events, result.write_digests])
            codes = [r[1] for r in receipts] if len(receipts) == len(hashes) else None
            orders = orderindex.outcomes(self.sm.ex, block.height, result.events, result.receipts)
            ex, time_ms = self.sm.ex, block.header.time_ms
            views = orderindex.block_views(ex, result.receipts, block.txs, self.mempool.verified)
            cloids = orderindex.cloids(views)
            fills, positions = self.fillbook.block(events, ex)
            extra = history.block_puts(block.height, time_ms, events, orders, self.candles, ex.markets,
                                       hashes=hashes, fills=fills)
            extra += positions
            extra += orderindex.placement_puts(orderindex.placements(ex, time_ms, views))
            extra += self.interest.block(ex, block.height, time_ms, result.write_digests)
            extra += evidence_index.puts(block.height, evidence_index.decoded(block))
            self.blocks.save_results(block.height, record, hashes, [], codes, orders, cloids, extra)
            maybe_crash("results_saved")
        with writing(self.sm.store.path if self.sm.store is not None else "the state store"):
            self.sm.commit_pending()
        maybe_crash("state_committed")
        self._keep_for_proofs()
        self.cpu_s += time.thread_time() - cpu0
        return Applied(block, result, receipts, events, hashes, (time.perf_counter() - t0) * 1000, fills)

    def finish(self, applied: Applied, *, publish: bool) -> None:
        """The loop's part of a commit, once the state is stored: open the gate, take the
        block's txs out of the mempool, wake waiters and publish."""
        self.gate.open()
        block, receipts, hashes = applied.block, applied.receipts, applied.hashes
        if publish and self.bus.wants(hlws.TOPIC):  # before the mempool forgets the decoded txs
            self.hl.remember(self.sm.ex, block.height, block.header.time_ms, block.txs, self.mempool.verified, receipts)
        self.mempool.on_committed(hashes, block.txs, block.header.time_ms)
        self.last_apply_ms = applied.apply_ms
        self.last_block_txs = len(block.txs)
        now = time.monotonic()
        interval = (now - self._last_commit_wall) * 1000 if self._last_commit_wall else None
        if interval is not None:
            self.block_interval_ms = interval
        self._last_commit_wall = now
        if self.metrics is not None and publish:
            self.metrics.on_block(hashes, (r[1] for r in receipts), self.last_apply_ms, interval)
        self.last_block_hash = block.hash
        self.last_block_time_ms = block.header.time_ms
        committed, self._committed = self._committed, asyncio.Event()
        committed.set()
        if publish:
            self._notify(block, hashes, receipts, applied.events, applied.fills)

    def _verify_missing(self, txs: tuple[bytes, ...]) -> None:
        missing = self.mempool.missing_verifications(txs)
        if not missing:
            return
        for checked in verify_batch(missing, self.sm.genesis.chain_id, self.verify_pool):
            if isinstance(checked, SignedTx):
                self.mempool.remember(checked)

    # ------------------------------------------------------------------ notifications
    async def wait_for_height(self, height: int, timeout: float) -> bool:
        """Wait up to ``timeout`` s until block ``height``'s results are stored (False at
        once when the node is stopping, so a long poll never holds up shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.blocks.results_height < height:
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing:
                return False
            try:
                await asyncio.wait_for(self._committed.wait(), remaining)
            except TimeoutError:
                return False
        return True

    def release_height_waiters(self) -> None:
        """The node is stopping: every ``wait_for_height`` returns now, and every
        ``wait_for`` raises ``NodeStopping``."""
        self._closing = True
        self._committed.set()
        waiters, self.waiters = self.waiters, {}
        for futs in waiters.values():
            for fut in futs:
                if not fut.done():
                    fut.set_exception(NodeStopping())

    def wait_for(self, h: bytes) -> asyncio.Future[tuple[int, int, dict[str, Any]]]:
        fut: asyncio.Future[tuple[int, int, dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(h, []).append(fut)
        return fut

    def forget_waiter(self, h: bytes, fut: asyncio.Future[Any]) -> None:
        lst = self.waiters.get(h)
        if lst and fut in lst:
            lst.remove(fut)
            if not lst:
                del self.waiters[h]

    def _notify(self, block: Block, hashes: list[bytes], receipts: list[Any], events: list[Any],
                fills: dict[Any, Any] | None = None) -> None:
        if self.waiters:
            by_hash = {r[0]: r for r in receipts}
            for i, h in enumerate(hashes):
                futs = self.waiters.pop(h, None)
                if futs and h in by_hash:
                    rj = receipt_from_list(by_hash[h])
                    for f in futs:
                        if not f.done():
                            f.set_result((block.height, i, rj))
        bus = self.bus
        if not bus.subs:
            self._books_sent = {}  # nobody subscribes: the book memo would go stale (_publish_books)
            return
        if bus.wants(hlws.TOPIC):
            self.hl.publish(bus, self.sm.ex, block.height, block.header.time_ms, hashes, receipts, events,
                            self.candles, fills)
        bus.publish("blocks", None, {"height": block.height, "hash": block.hash.hex(),
                                     "time_ms": block.header.time_ms, "txs": len(block.txs),
                                     "app_hash": self.sm.app_hash.hex()})
        for _i, e in events:
            ej = event_from_list(e)
            if ej["type"] == "fill":
                bus.publish("trades", ej["market"], {"height": block.height, **ej})
            # every account the event names, once each (the same rule as the history index:
            # maker and taker, owner, account and counterparty)
            for address in history.addresses_of(e):
                bus.publish("account", address_to_text(address), {"height": block.height, **ej})
        self._publish_books(block.height)

    def _publish_books(self, height: int) -> None:
        """The ``book`` topic: each market whose top 20 levels differ from what this topic
        last published, and no other. Comparing the depth itself catches every way a book
        changes (a resting order, a fill, a cancel, a fired trigger, a liquidation, an
        expiry) and only the market it changed: deriving it from a block's receipts sent
        every market's book whenever any order rested. The memo is dropped while nobody
        subscribes (it would go stale), so the first block after that publishes every book."""
        bus = self.bus
        if not bus.wants("book"):
            self._books_sent = {}
            return
        for m in sorted(self.sm.ex.books):
            depth = lapse.depth(self.sm.ex, m, BOOK_TOPIC_LEVELS)
            if self._books_sent.get(m) == depth:
                continue
            self._books_sent[m] = depth
            bids, asks = depth
            bus.publish("book", m, {"height": height, "market": m,
                                    "bids": [list(x) for x in bids], "asks": [list(x) for x in asks]})
