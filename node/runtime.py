"""One running node: wires the state machine, stores, mempool, consensus driver, p2p and
RPC together, runs start-up recovery, and shuts down cleanly.

Start-up recovery, in order: open the state store (restores the exact committed state and
books), open the block store, handshake (re-apply stored blocks the state has not seen),
read and repair the consensus WAL, then join consensus; block sync runs whenever the core
sees that peers are ahead.

A node whose state came from a snapshot that block h+1 has not certified yet (the pending
marker, node/syncverify.py) starts p2p and the RPC but joins consensus only after a peer's
block h+1 certifies the snapshot; until then its RPC serves no exchange state.

A write to the data directory that fails (a full disk) stops the node: ``fail_storage``
stops consensus at once, refuses transactions, and asks ``node.main`` to shut down and exit
with ``EXIT_DISK_FULL`` (node/diskfull.py says why a stop, not a pause). A data directory
that cannot take a write refuses the start the same way.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from consensus.block import Block
from consensus.core import ConsensusCore
from consensus.validators import ValidatorSet
from node import evidence_index, sigbatch, syncverify
from node.blockstore import BlockStore
from node.coalesce import SubmitCoalescer
from node.config import NodeConfig
from node.connlimit import ConnLimit
from node.diskfull import EXIT_DISK_FULL, StorageFailure, must_write_probe, opening, writing
from node.driver import ConsensusDriver
from node.events import EventBus
from node.evidence_pool import EvidencePool
from node.execution import Execution
from node.faults import Faults
from node.frontend.process import FrontendCounts, FrontendProcess
from node.mempool import Admission, Mempool
from node.mempool_journal import MempoolJournal
from node.metrics import NodeMetrics
from node.p2p import BadFrame, protocols
from node.p2p.core import Limits
from node.p2p.host import P2PNode
from node.p2p.process import P2PProcess
from node.ports import Network
from node.rpc import RpcServer
from node.snapshots import fetch_snapshot, restore_into
from node.stategate import NodeStopping, StateGate
from node.syncfallback import PeerRound, newest_snapshot_height
from node.syncverify import Anchor, SnapshotError
from node.wal_file import WalFile
from state import offences
from state.build import build_name
from state.codec import decode, encode
from state.errors import Code, StateIntegrityError
from state.genesis import Genesis
from state.keys import PrivateKey
from state.machine import StateMachine
from state.tx import tx_hash

log = logging.getLogger("bookchain.node")

CERTIFY_RETRY_S = 0.5  # how often peers are asked again for block h+1 of a pending snapshot
GOSSIP_INTERVAL_S = 0.02
GOSSIP_MAX_TXS = 5000
COALESCE_MAX_TXS = 1000  # clients' requests joined into one admission batch go at once at this many txs
EVIDENCE_GOSSIP_S = 5.0  # pending evidence is re-sent this often (peers that were down)


class NodeApp:
    """What consensus asks of the application (consensus.app.App)."""

    def __init__(self, rt: NodeRuntime) -> None:
        self.rt = rt

    def propose_txs(self, height: int) -> list[bytes]:
        c = self.rt.config.consensus
        return self.rt.mempool.reap(c.max_block_txs, c.max_block_bytes)

    def validate_block(self, block: Block) -> bool:
        """Transactions are executed, not validated, by the state machine (a bad tx gets a
        rejection receipt), so a block is valid when its txs fit the chain's limits and no
        piece of its evidence repeats an offence the state records as committed, or is too
        old (consensus checked each piece, its age included, before asking).

        The rule reads the committed state after block ``block.height - 1`` (state/offences.py),
        which every node holds alike, however it got there (a snapshot carries the offences),
        never this node's block store. What that relies on: the core calls this only from
        ``handle``, for a block of its current height; the driver starts that height with
        ``sm.height + 1`` once the previous block is applied and stored, and feeds the core
        nothing while a block executes on the execution thread (``ConsensusDriver.feed``
        queues events until ``_applied``). So ``sm`` is at ``block.height - 1`` and still
        here. Were it not (a bug), the block is refused rather than judged on another
        height's state: a nil prevote costs a round, a wrong one could split the vote."""
        from state.tx import MAX_TX_BYTES

        sm = self.rt.sm
        if block.height != sm.height + 1:
            log.error("h=%d asked to validate block %d on the state at %d: refused",
                      sm.height, block.height, sm.height)
            return False
        max_age = self.rt.genesis.evidence_max_age
        return (all(len(tx) <= MAX_TX_BYTES for tx in block.txs)
                and all(offences.committed_at(sm.ex, ev.offence) is None
                        and not offences.expired(ev.height, block.height, max_age)
                        for ev in evidence_index.decoded(block)))


def must_be_directories(paths: tuple[Path, ...]) -> None:
    """Each of ``paths`` is a directory or absent (start-up creates it). Anything else (a
    regular file, a dangling link) is refused with ``StateIntegrityError`` saying what it is:
    the write that creating a store would attempt fails with EEXIST or ENOTDIR, which read as
    a failed write to the disk (exit 6, "free space"), and no amount of space fixes it."""
    for path in paths:
        if path.is_dir():
            continue
        if path.is_symlink() and not path.exists():
            what = "a link to nothing"
        elif path.exists():
            what = "a regular file" if path.is_file() else "not a directory"
        else:
            continue
        raise StateIntegrityError(f"{path} is not a directory ({what}): the node keeps a store there; "
                                  "move it away (or restore the directory) and start again")


#: the protocols a node serves (``_start_network`` registers a handler for each): what its
#: p2p worker is spawned for before the handlers exist
NODE_PROTOCOLS: list[tuple[str, str]] = [(protocols.CONSENSUS, "oneway"), (protocols.TX, "oneway"),
                                         (protocols.EVIDENCE, "oneway"), (protocols.SYNC, "request")]


class NodeRuntime:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        try:
            self.genesis = Genesis.load(str(config.genesis_path))
        except (ValueError, TypeError, KeyError, AttributeError, IndexError) as err:  # JSONDecodeError is a ValueError
            raise StateIntegrityError(f"{config.genesis_path} is not a genesis document: {type(err).__name__}: {err}") from None
        try:
            self.validator_key: PrivateKey | None = config.validator_key()
        except (ValueError, TypeError, KeyError) as err:
            raise StateIntegrityError(f"{config.validator_key_path} is not a validator key "
                                      f"({{\"seed\": hex32, \"pubkey\": hex32}}): {type(err).__name__}: {err}") from None
        self.storage_failure: StorageFailure | None = None  # the failed write that stops this node
        self.exit_status = 0  # non-zero when a failure (not a signal) stopped the node
        self.stop_requested = asyncio.Event()  # node.main waits on it (a signal, or a failed write)
        # every peer pruned the block after this node's snapshot: node.main discards the
        # restored state and starts again from a newer snapshot (node/syncfallback.py)
        self.resync = False
        self._logged: set[str] = set()  # reasons peers_pruned has logged (once each)
        data_dirs = (config.home / "data", config.state_dir, config.blocks_dir, config.wal_dir,
                     config.evidence_dir, config.mempool_dir, config.snapshots_dir)
        must_be_directories(data_dirs)  # a file where a store belongs is no full disk: say what it is
        must_write_probe(config.home / "data")  # a data dir that cannot take a write: refuse to start
        with writing(config.home / "data"):
            for d in (config.state_dir, config.blocks_dir, config.wal_dir, config.evidence_dir, config.mempool_dir):
                d.mkdir(parents=True, exist_ok=True)
        if config.storage.state_sync_from and not any(config.state_dir.iterdir()):
            self._state_sync(config.storage.state_sync_from)
        # a snapshot that block h+1 has not certified yet: no exchange state served, no votes
        self.sync_pending: Anchor | None = syncverify.read_pending(config.state_sync_pending_path)
        # The block store is the synced record (every block before it is applied, its results
        # before the state commits); the handshake re-applies what an OS crash took from the
        # state store, so not every block's state batch is fsynced (StateMachine, README).
        with opening(config.state_dir):  # opening writes (a new log, a recovered table, genesis)
            self.sm = StateMachine.open(self.genesis, str(config.state_dir), sync_commits=False)
        pending = self.sync_pending
        if pending is not None and (self.sm.height, self.sm.app_hash) != (pending.height, pending.app_hash):
            self.sm.close()
            raise SnapshotError(Code.SNAPSHOT_UNAVAILABLE, f"a state sync to height {pending.height} was "
                                f"interrupted (the state is at {self.sm.height}): remove {config.home / 'data'} "
                                "and start again")
        self.build = build_name()  # fixed for the process's life: /status reads it, never re-scans the modules
        with opening(config.blocks_dir):
            self.blocks = BlockStore(str(config.blocks_dir))
        gate = StateGate()  # closed while a block executes on the execution thread
        self.mempool = Mempool(self.sm, config.mempool, gate=gate)
        self.bus = EventBus()
        self.verify_pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="verify")
        self.execution = Execution(self.sm, self.blocks, self.mempool, self.bus, self.verify_pool,
                                   proof_heights=config.storage.proof_heights, gate=gate)
        self.metrics = NodeMetrics()
        self.execution.metrics = self.metrics
        self._coalescer: SubmitCoalescer[Admission] = SubmitCoalescer(self._admit, COALESCE_MAX_TXS)
        self.wal = WalFile(config.wal_dir)
        self.evidence_pool = EvidencePool(config.evidence_dir)
        # what this node admitted from clients and had not committed when it last stopped
        self.journal = MempoolJournal(config.mempool_dir)
        self._journaled: list[bytes] = self.journal.read_and_repair()
        self._resubmit_task: asyncio.Task[None] | None = None
        self.p2p: Network = None  # type: ignore[assignment]  # set by start()
        self.frontend: FrontendProcess | None = None  # clients' HTTP in a process of its own (rpc.frontend_process)
        self._p2p_process: P2PProcess | None = None  # spawned as start() begins (p2p.worker_process)
        self.driver: ConsensusDriver = None  # type: ignore[assignment]
        self.started_at = time.time()
        self._gossip_task: asyncio.Task[None] | None = None
        self._gossip_timer: asyncio.TimerHandle | None = None  # a throttled flush, scheduled
        self._gossip_sent_at = -math.inf  # the loop's time of the last tx frame broadcast
        self._oracle_task: asyncio.Task[None] | None = None
        self._certify_task: asyncio.Task[None] | None = None
        self.oracle_feed: dict[str, int] = dict(config.oracle.prices)
        self.faults = Faults(config.test, self.validator_key, self.genesis.chain_id, self.oracle_feed,
                             {a.symbol for a in self.genesis.assets})
        self.rpc = RpcServer(self, self.config.rpc_limits)

    def _state_sync(self, source: str) -> None:
        """Restore the snapshot ``source`` names, checked before anything is written: its
        records must give its app hash, and block h+1 from the same RPC must certify that
        app hash. When that RPC (or a file) cannot give block h+1, the state is written
        under the pending marker and the peers' block h+1 decides at start (node/syncverify.py)."""
        snap = fetch_snapshot(source)
        rpc = syncverify.rpc_base(source)
        next_block = syncverify.fetch_next_block(rpc, snap.height + 1) if rpc is not None else None
        with writing(self.config.home / "data"):
            restored = restore_into(snap, self.genesis, self.config.state_dir, self.config.blocks_dir,
                                    self.config.state_sync_pending_path, next_block)
        if restored:
            log.info("h=%d state synced from snapshot %s: its records give app hash %s, which block %d's "
                     "certificate signs; blocks after it come from peers",
                     snap.height, source, snap.app_hash.hex()[:12], snap.height + 1)
        else:
            log.warning("h=%d state synced from snapshot %s: its records give app hash %s; block %d is not "
                        "there yet, so this node serves no exchange state and does not vote until a peer's "
                        "block %d certifies it", snap.height, source, snap.app_hash.hex()[:12], snap.height + 1,
                        snap.height + 1)

    def after_commit(self, height: int) -> None:
        """Snapshots, retention and the mempool journal's compaction, after the block's
        state is committed. A block the state store may still lose to an OS crash (above
        ``sm.durable_height``) is pruned only after a sync: the handshake would need it."""
        st = self.config.storage
        if st.snapshot_interval and height % st.snapshot_interval == 0:
            from node.snapshots import Snapshot, prune_snapshots, write_snapshot

            snap = Snapshot(self.genesis.chain_id, height, self.sm.app_hash, self.execution.last_block_hash,
                            self.execution.last_block_time_ms, self.sm.ex.snapshot_records())

            loop = asyncio.get_running_loop()

            def write() -> None:
                try:
                    write_snapshot(self.config.snapshots_dir, snap)
                    with writing(self.config.snapshots_dir):
                        prune_snapshots(self.config.snapshots_dir, st.keep_snapshots)
                except StorageFailure as err:  # on a worker thread: the loop stops the node
                    loop.call_soon_threadsafe(self.fail_storage, err)
                    return
                log.info("h=%d snapshot written (%d records)", height, len(snap.records))

            loop.run_in_executor(None, write)
        if st.retain_blocks and height > st.retain_blocks:
            keep_from = height - st.retain_blocks + 1
            if keep_from > self.sm.durable_height + 1:
                with writing(self.config.state_dir):
                    self.sm.sync_store()  # once per retain_blocks heights at most
            pruned = self.blocks.prune_below(keep_from)
            if pruned:
                log.debug("h=%d pruned %d blocks", height, pruned)
        # the block took its txs out of the mempool: the journal keeps only what is pending,
        # once what it held at start is back in the mempool (until then only the file has it)
        if self._resubmit_task is None or self._resubmit_task.done():
            self.journal.compact(self.mempool.pending.values(), empty=not self.mempool.pending)

    def fail_storage(self, err: StorageFailure) -> None:
        """The first failed durable write: stop voting and proposing now (before the driver
        performs another action), refuse transactions, log one line, and have ``node.main``
        shut down and exit with ``EXIT_DISK_FULL``. Later failures (the same full disk,
        seen by another write) add nothing."""
        if self.storage_failure is not None:
            return
        self.storage_failure = err
        if self.driver is not None:
            self.driver.stop()
        log.critical("h=%d %s; stopped voting and proposing, shutting down (exit %d): free space or fix the "
                     "disk, then restart the node; it recovers from its stores and its peers",
                     self.sm.height, err.describe(), EXIT_DISK_FULL)
        self.stop_requested.set()

    def fail(self, reason: str) -> None:
        """A part the node cannot run without failed (the p2p worker process died, a block
        failed to execute): it stops (exit status 1; the caller logged why), and a restart
        brings it back from its stores."""
        self.exit_status = self.exit_status or 1
        if self.driver is not None:
            self.driver.stop()
        self.stop_requested.set()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        c = self.config
        if c.rpc_frontend_process:  # it loads while the stores open and replay; it listens in _start_rpc
            self.frontend = FrontendProcess(self.rpc, c.rpc_host, c.rpc_port, exempt=list(c.rpc_limits.exempt),
                                            log_path=str(c.log_path), socket_dir=c.home / "data", on_failure=self.fail)
            await self.frontend.spawn()
        timeout_s = c.p2p_peer_timeout_ms / 1000
        limits = Limits(peer_timeout_s=timeout_s, ping_interval_s=min(1.0, timeout_s / 3))
        if c.p2p_worker_process:  # it loads libp2p meanwhile too; it listens in _start_network
            self._p2p_process = P2PProcess(str(c.home), c.p2p_listen, peers=list(c.p2p_peers), limits=limits,
                                           log_path=str(c.log_path))
            self._p2p_process.on_failure = self.fail
            await self._p2p_process.spawn(NODE_PROTOCOLS)
        replayed = self.execution.handshake()
        log.info("h=%d handshake done: state at %d, block store at %d, re-applied %d blocks",
                 self.sm.height, self.sm.height, self.blocks.height, replayed)
        validators = ValidatorSet((v.pubkey, v.power) for v in self.genesis.validators)
        if self.validator_key is not None and all(v.pubkey != self.validator_key.pubkey for v in self.genesis.validators):
            log.warning("h=%d keys/validator.json holds %s..., which is not in the validator set: this node follows "
                        "the chain and never votes", self.sm.height, self.validator_key.pubkey.hex()[:16])
        core = ConsensusCore(self.genesis.chain_id, validators, NodeApp(self), self.config.consensus, self.validator_key,
                             evidence_max_age=self.genesis.evidence_max_age, verifier=sigbatch.valid_prefix)
        records = self.wal.read_and_repair()
        if records:
            core.restore(records)
            log.info("h=%d restored %d WAL records", self.sm.height, len(records))
        self.driver = ConsensusDriver(self, core)
        self.driver.restore_evidence()
        self.p2p = await self._start_network(limits)
        await self._start_rpc()
        log.info("h=%d node %s up: rpc http://%s:%d p2p %s validator=%s state machine %s, signatures %s",
                 self.sm.height, self.config.moniker, self.config.rpc_host, self.config.rpc_port,
                 self.config.p2p_listen, self.validator_key.pubkey.hex()[:16] if self.validator_key else None,
                 self.build, sigbatch.backend())
        if self.sync_pending is None:
            self._join()
        else:
            self._certify_task = asyncio.ensure_future(self._certify_snapshot(self.sync_pending))

    async def _start_rpc(self) -> None:
        """The RPC server on the RPC address, or behind the front-end process on it."""
        if self.frontend is None:
            await self.rpc.start(self.config.rpc_host, self.config.rpc_port)
        else:
            await self.frontend.start()

    def _connections(self) -> ConnLimit | FrontendCounts:
        """Whoever holds the clients' connections counts them: the front-end, if it runs."""
        return self.frontend.counts if self.frontend is not None else self.rpc.conn_limit

    async def _start_network(self, limits: Limits) -> Network:
        """libp2p in its worker process (the default) or on this thread; handlers registered."""
        c = self.config
        p2p: P2PNode | P2PProcess
        if self._p2p_process is not None:
            p2p = self._p2p_process
        else:
            p2p = P2PNode(str(c.home), c.p2p_listen, peers=list(c.p2p_peers), limits=limits)
        assert self.driver is not None
        p2p.on_peer_connected(self.driver.on_peer_connected)
        p2p.register(protocols.CONSENSUS, self.driver.on_consensus_frame)
        p2p.register(protocols.TX, self.on_tx_frame)
        p2p.register_request(protocols.SYNC, self.driver.serve_sync)
        p2p.register(protocols.EVIDENCE, self.driver.on_evidence_frame)
        await p2p.start()
        return p2p

    def _join(self) -> None:
        """Take part: gossip, the validator's price feed, block sync and consensus; submit
        again what the mempool journal held."""
        self._gossip_task = asyncio.ensure_future(self._gossip_loop())
        if self._journaled:
            self._resubmit_task = asyncio.ensure_future(self._resubmit_journaled())
        if self.validator_key is not None and self.oracle_feed:
            self._oracle_task = asyncio.ensure_future(self._oracle_loop())
        self.driver.request_sync(self.sm.height + 1)
        self.driver.start_height()

    async def _certify_snapshot(self, anchor: Anchor) -> None:
        """Ask peers for block h+1 until one proves it, then join (it certifies the snapshot)
        or halt (it certifies another state: the snapshot was forged)."""
        from node.driver import SYNC_MAX_BYTES

        height = anchor.height + 1
        log.warning("h=%d waiting for block %d from peers to certify the snapshot's app hash %s: no exchange "
                    "state served, no votes until then", anchor.height, height, anchor.app_hash.hex()[:12])
        while True:
            answers = PeerRound()
            for peer in sorted(self.p2p.connected_peers()):
                try:
                    resp = await self.p2p.request(peer, protocols.SYNC, encode([height, 1]), timeout_s=10)
                    answer = decode(resp, max_bytes=SYNC_MAX_BYTES + 1024)
                    answers.answer(answer)
                    raw_block, raw_cert = answer[0]
                    if type(raw_block) is not bytes or type(raw_cert) is not bytes:
                        raise TypeError("a synced block is [block, certificate] bytes")
                except Exception as err:  # down, not there yet, pruned, or garbage: ask the next peer
                    log.debug("h=%d block %d from %s: %r", anchor.height, height, peer[-8:], err)
                    continue
                try:
                    syncverify.must_certify_next(anchor, raw_block, raw_cert, self.genesis)
                except SnapshotError as err:
                    if err.code == Code.NEXT_BLOCK_UNPROVEN:  # the peer's fault, not the snapshot's
                        self.driver.bad_messages += 1
                        log.info("h=%d block %d from %s: %s", anchor.height, height, peer[-8:], err)
                        continue
                    self.driver.halted = str(err)
                    log.critical("HALT: state sync refused: %s; remove %s and state-sync from another source",
                                 err, self.config.home / "data")
                    return
                syncverify.clear_pending(self.config.state_sync_pending_path)
                self.sync_pending = None
                log.info("h=%d snapshot certified by block %d from peer %s: joining consensus",
                         anchor.height, height, peer[-8:])
                self._join()
                return
            lowest = answers.pruned_from(height)
            if lowest is not None and await self.peers_pruned(height, lowest):
                return
            await asyncio.sleep(CERTIFY_RETRY_S)

    async def peers_pruned(self, height: int, lowest: int) -> bool:
        """Every peer that answered keeps blocks only from ``lowest`` on, above ``height``,
        the block this node needs next. A node that has applied nothing past its snapshot
        falls back to a newer one (node/syncfallback.py): it stops with ``resync`` set and
        node.main starts it again from the newest snapshot of ``storage.state_sync_from``.
        Returns whether it did; otherwise it logs why not (once per reason) and the caller
        keeps asking."""
        if self.resync:
            return True
        anchor = self.blocks.anchor()
        if anchor is None or anchor[0] != self.sm.height or self.blocks.height != self.sm.height:
            self._log_once("stuck", "h=%d every peer keeps blocks only from %d on: block %d is gone, so this node "
                           "cannot catch up by block sync; remove %s and state-sync from a node's RPC",
                           self.sm.height, lowest, height, self.config.home / "data")
            return False
        rpc = syncverify.rpc_base(self.config.storage.state_sync_from)
        if rpc is None:
            self._log_once("file", "h=%d every peer keeps blocks only from %d on, so block %d never comes; "
                           "storage.state_sync_from is a file: point it at a node's RPC to fall back to a newer "
                           "snapshot", self.sm.height, lowest, height)
            return False
        loop = asyncio.get_running_loop()
        try:
            newest = await loop.run_in_executor(None, newest_snapshot_height, rpc)
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as err:
            self._log_once("listing", "h=%d every peer keeps blocks only from %d on; the snapshot list of %s "
                           "cannot be read (%s): asking again", self.sm.height, lowest, rpc, err)
            return False
        if newest is None or newest + 1 < lowest:
            self._log_once("old", "h=%d every peer keeps blocks only from %d on; the newest snapshot of %s (%s) "
                           "is not continued by their blocks yet: asking again", self.sm.height, lowest, rpc, newest)
            return False
        log.warning("h=%d every peer keeps blocks only from %d on (block %d pruned): falling back to the newest "
                    "snapshot of %s (height %d); discarding the restored state and syncing again",
                    self.sm.height, lowest, height, rpc, newest)
        self.resync = True
        self.stop_requested.set()
        return True

    def _log_once(self, reason: str, fmt: str, *args: Any) -> None:
        if reason not in self._logged:
            self._logged.add(reason)
            log.warning(fmt, *args)

    async def stop(self) -> None:
        """Stop taking input, wait for a block executing on the execution thread (it finishes
        its storage order: a block is stored with its state or re-applied at the next
        start), then close stores."""
        if self.driver is not None:
            self.driver.stop()
        for task in (self._gossip_task, self._oracle_task, self._certify_task, self._resubmit_task):
            if task is not None:
                task.cancel()
        if self._gossip_timer is not None:
            self._gossip_timer.cancel()
        if self.frontend is not None:
            await self.frontend.stop()
        await self.rpc.stop()
        if self.p2p is None and self._p2p_process is not None:  # spawned, start-up failed before it listened
            self.p2p = self._p2p_process
        if self.p2p is not None:
            try:
                await asyncio.wait_for(self.p2p.stop(), 10)
            except Exception:
                log.exception("p2p stop failed")
        await self.execution.drain()  # it verifies on the pool and writes the stores
        self.verify_pool.shutdown(wait=True, cancel_futures=True)
        self.wal.close()
        self.journal.close()
        self.blocks.close()
        self.execution.proofs.close()  # its LevelDB snapshots, before the store they read
        self.sm.close()

    # ------------------------------------------------------------------ transactions
    async def submit(self, raws: list[bytes], *, bound: bool = True) -> list[Admission]:
        """A client's batch: admitted within the admission window and the signers' shares
        (node/admission.py; ``bound=False`` for the node's own duties, e.g. its validator's
        price feed); nothing here waits for a block. Once a write failed, nothing is admitted:
        this node will not commit anything more, so it acknowledges nothing more. Clients'
        requests that arrive in the same turn of the loop are admitted as one batch
        (node/coalesce.py); each request's answer time is its own."""
        t0 = time.perf_counter()
        adms = await (self._coalescer.submit(raws) if bound else self._admit(raws, bound=False))
        self.metrics.on_admitted((a.hash for a in adms if a.ok), (time.perf_counter() - t0) * 1000)
        return adms

    async def _admit(self, raws: list[bytes], *, bound: bool = True) -> list[Admission]:
        """``submit``'s work for one batch: admit, journal (clients' txs), wake consensus
        and gossip."""
        if self.storage_failure is not None:
            return self._refuse_stopping(raws)
        try:
            adms = await self.mempool.add_many(raws, self.verify_pool, bound=bound)
        except NodeStopping:  # the block executing when the node stopped never finished here
            return self._refuse_stopping(raws)
        if bound:
            durable = await self._journal([raw for raw, a in zip(raws, adms, strict=True) if a.ok])
            if durable is not True:
                return self._refuse_stopping(raws, adms if durable == "unknown" else None)
        if any(a.ok for a in adms):
            # a tx can only be proposed by a peer once it has reached that peer's mempool
            self._gossip_soon()
            if self.driver is not None:
                self.driver.on_txs_available()
        return adms

    async def _journal(self, admitted: list[bytes]) -> bool | Literal["unknown"]:
        """Make a client's admitted txs durable before they are acknowledged
        (node/mempool_journal.py): written now, with nothing run in between since the
        mempool took them, then fsynced with whatever else is waiting. False when the write
        failed or the node is stopping: nothing saw the batch, and this node acknowledges
        nothing more. ``"unknown"`` when the write went through and the fsync failed: the
        loop ran meanwhile, so the batch may have been gossiped or proposed and may commit."""
        if not admitted:
            return True
        try:
            self.journal.write(admitted)
        except StorageFailure as err:
            self.fail_storage(err)
            return False
        try:
            await self.journal.sync()
        except StorageFailure as err:
            self.fail_storage(err)
            return "unknown"
        return self.storage_failure is None

    async def _resubmit_journaled(self) -> None:
        """What the journal held at start, submitted again like a client's batch (not
        counted against the admission window: it was admitted once): verified and checked
        again, so what a block committed meanwhile is refused, and the rest is gossiped."""
        raws, self._journaled = self._journaled, []
        try:
            adms = await self.mempool.add_many(raws, self.verify_pool)
        except NodeStopping:  # the file still holds them: no compaction ran
            return
        admitted = sum(a.ok for a in adms)
        log.info("h=%d mempool journal: %d transactions admitted before the restart, %d pending again "
                 "(the rest committed or no longer valid)", self.sm.height, len(raws), admitted)
        if admitted:
            self._gossip_soon()
            if self.driver is not None:
                self.driver.on_txs_available()

    def _refuse_stopping(self, raws: list[bytes], taken: list[Admission] | None = None) -> list[Admission]:
        """``NOT_READY`` for each tx of a batch this node will not acknowledge. ``taken``:
        the mempool's verdicts, when the batch may have left this node before it stopped;
        the txs it had admitted are answered as of unknown outcome (look up, then resend:
        a resent tx commits at most once), the others keep their refusal. Without a failed
        write (a signal, a failed block) the message names no cause."""
        why = self.storage_failure.describe() if self.storage_failure is not None else None
        if taken is None:
            message = f"this node is stopping{f': {why}' if why else ''}; submit to another node"
            return [Admission(tx_hash(raw), Code.NOT_READY, message) for raw in raws]
        assert why is not None  # only a failed journal fsync lets a batch out unacknowledged
        unknown = (f"this node is stopping ({why}) after it admitted the transaction, which may have reached "
                   "its peers and may still commit: look it up (/tx) on another node before resubmitting")
        return [Admission(a.hash, Code.NOT_READY, unknown) if a.ok else a for a in taken]

    async def on_tx_frame(self, peer_id: str, frame: bytes) -> None:
        if self.faults.isolated() or self.storage_failure is not None:
            return
        try:
            raws = decode(frame, max_bytes=protocols.DEFAULT_MAX_FRAME_BYTES[protocols.TX])
            if not isinstance(raws, list) or not all(type(r) is bytes for r in raws):
                raise ValueError("a tx frame is a list of transactions")
        except Exception as err:
            self.driver.bad_messages += 1
            raise BadFrame(f"undecodable tx frame: {err}") from None  # counted; repeat offenders are banned
        try:
            adms = await self.mempool.add_many(raws, self.verify_pool, gossip=False)
        except NodeStopping:
            return
        if any(a.ok for a in adms):
            self.driver.on_txs_available()

    async def _gossip_loop(self) -> None:
        """Gossip what peers' frames did not bring (e.g. txs of a block we synced), and
        anything a submit did not flush, every ``GOSSIP_INTERVAL_S``."""
        last_evidence = time.monotonic()
        lag = self.metrics.loop_lag.observe
        while True:
            asleep = time.monotonic()
            await asyncio.sleep(GOSSIP_INTERVAL_S)
            lag(max(0.0, time.monotonic() - asleep - GOSSIP_INTERVAL_S) * 1000)  # the loop's lag, for /metrics
            self._gossip_soon()
            if self.driver is not None and time.monotonic() - last_evidence >= EVIDENCE_GOSSIP_S:
                last_evidence = time.monotonic()
                self.driver.gossip_evidence()

    def _gossip_soon(self) -> None:
        """Gossip what clients' batches brought: at once when no tx frame went out in the
        last ``gossip_gap_ms``, else once that gap has passed, with whatever else came
        meanwhile (CometBFT's flush throttle, per node rather than per connection). Under a
        load of many small requests every peer then gets one frame per gap instead of one
        per request, and each frame costs the sender's and every receiver's p2p worker and
        event loop the same whatever it holds; a lone submission on a quiet node still
        leaves at once."""
        if self._gossip_timer is not None:
            return  # a flush is due: it takes these txs too
        loop = asyncio.get_running_loop()
        wait = self._gossip_sent_at + self.config.mempool.gossip_gap_ms / 1000 - loop.time()
        if wait <= 0:
            self._gossip_now()
        else:
            self._gossip_timer = loop.call_later(wait, self._gossip_due)

    def _gossip_due(self) -> None:
        self._gossip_timer = None
        self._gossip_now()

    def _gossip_now(self) -> None:
        if self.p2p is None:
            return  # not started yet: the loop sends them once it runs
        if self.storage_failure is not None:
            return  # stopping: a batch whose journal write failed was answered as refused
        txs = self.mempool.take_gossip()
        if not txs or self.faults.isolated():
            return
        self._gossip_sent_at = asyncio.get_running_loop().time()
        for i in range(0, len(txs), GOSSIP_MAX_TXS):
            self.p2p.broadcast(protocols.TX, encode(txs[i: i + GOSSIP_MAX_TXS]))

    async def _oracle_loop(self) -> None:
        """Sign this validator's prices every interval and submit them like any tx."""
        from state.tx import OraclePrices, sign_tx

        key = self.validator_key
        assert key is not None
        symbols = {a.symbol: a.asset_id for a in self.genesis.assets}
        last_nonce = 0
        while self.storage_failure is None:  # a stopping node signs nothing more
            prices = tuple(sorted((symbols[s], int(p)) for s, p in self.oracle_feed.items() if s in symbols))
            if prices:
                last_nonce = max(last_nonce + 1, time.time_ns() // 1_000_000)
                raw = sign_tx(key, last_nonce, OraclePrices(prices), self.genesis.chain_id)
                adm = (await self.submit([raw], bound=False))[0]  # a validator duty, not a client's load
                if not adm.ok:
                    log.warning("h=%d oracle update not admitted: %s %s", self.sm.height, adm.code.name, adm.message)
            await asyncio.sleep(self.config.oracle.interval_ms / 1000)

    # ------------------------------------------------------------------ views
    def status(self) -> dict[str, Any]:
        ex = self.execution
        return {
            "node_id": self.p2p.peer_id if self.p2p is not None else "",
            "moniker": self.config.moniker,
            "chain_id": self.genesis.chain_id,
            "latest_height": self.sm.height,
            "latest_block_hash": ex.last_block_hash.hex(),
            "latest_app_hash": self.sm.app_hash.hex(),
            "latest_block_time_ms": ex.last_block_time_ms,
            "catching_up": bool(self.driver and self.driver.catching_up),
            "halted": self.driver.halted if self.driver else None,
            # the height of a snapshot block h+1 has not certified yet (no exchange state served)
            "state_sync_pending": self.sync_pending.height if self.sync_pending is not None else None,
            "validator": ({"pubkey": self.validator_key.pubkey.hex(),
                           "power": next((v.power for v in self.genesis.validators if v.pubkey == self.validator_key.pubkey), 0)}
                          if self.validator_key else None),
            "peers": sorted(self.p2p.connected_peers()) if self.p2p is not None else [],
            "mempool_size": len(self.mempool),
            "build": self.build,
            "sig_verify": sigbatch.backend(),  # "batch" (node/sigbatch.py) or "per-call"
            "consensus": {"height": self.driver.core.height, "round": getattr(self.driver.core, "round", 0),
                          "evidence": len(self.driver.evidence),
                          "evidence_pending": len(self.evidence_pool)} if self.driver else None,
        }

    def _register_gauges(self) -> None:
        """The point-in-time figures of /metrics, read at scrape time (node/metrics.py)."""
        m, ex = self.metrics, self.execution
        m.gauge("bookchain_height", "Latest committed height", lambda: self.sm.height)
        m.gauge("bookchain_block_txs", "Transactions in the last block", lambda: ex.last_block_txs)
        m.gauge("bookchain_last_block_interval_ms", "Wall time between the last two commits",
                lambda: round(ex.block_interval_ms, 3))
        m.gauge("bookchain_last_apply_ms", "Execution + storage time of the last block", lambda: round(ex.last_apply_ms, 3))
        m.gauge("bookchain_mempool_txs", "Transactions waiting in the mempool", lambda: len(self.mempool))
        m.gauge("bookchain_mempool_bytes", "Bytes waiting in the mempool", lambda: self.mempool.bytes)
        m.gauge("bookchain_mempool_weight", "Weight waiting in the mempool (one per order action: node/txweight.py)",
                lambda: self.mempool.weight)
        m.gauge("bookchain_commit_rate", "Measured commit rate (weight/s, EWMA: one per order action, "
                "node/txweight.py) the admission window is sized by", lambda: round(self.mempool.rate.per_s, 1))
        m.gauge("bookchain_commit_capacity", "Recent peak of the commit rate (weight/s): admission and the block cut "
                "are sized by it", lambda: round(self.mempool.rate.capacity(), 1))
        m.gauge("bookchain_admission_window_txs", "Pending weight (one per order action) the mempool admits from "
                "clients now (0: off)", self.mempool.window_txs)
        m.counter_from("bookchain_mempool_busy", "Submissions refused with MEMPOOL_BUSY (retryable)",
                       lambda: self.mempool.refused_busy)
        m.counter_from("bookchain_admission_requests", "Clients' submissions admitted (node/coalesce.py)",
                       lambda: self._coalescer.requests)
        m.counter_from("bookchain_admission_batches", "Admission batches those submissions were joined into "
                       "(requests / batches: how many arrived together)", lambda: self._coalescer.batches)
        m.gauge("bookchain_peers", "Connected peers", lambda: len(self.p2p.connected_peers()) if self.p2p else 0)
        m.gauge("bookchain_websocket_clients", "Open websocket connections", lambda: self.rpc.ws_clients)
        m.gauge("bookchain_websocket_subscriptions", "Websocket subscriptions held, /ws and /websocket together",
                lambda: self.rpc.ws_quota.subscriptions)
        m.counter_from("bookchain_websocket_lagging_closed", "Websocket connections closed because their queue filled "
                       "(the client, or the read budget, did not keep up)", lambda: self.rpc.ws_quota.lagging_closed)
        m.counter_from("bookchain_reads_refused", "Reads refused with 429 NOT_READY: the node's read budget was spent",
                       lambda: self.rpc.read_budget.refused)
        m.counter_from("bookchain_rate_limited", "Requests refused with 429 RATE_LIMITED: their client was over its "
                       "share of reads or its rate of request bytes",
                       lambda: self.rpc.read_budget.refused_clients + self.rpc.submit_limit.refused)
        m.counter_from("bookchain_request_bytes_refused", "Requests refused with 503 NOT_READY: all clients together "
                       "were over the node's rate of request bytes", lambda: self.rpc.submit_limit.refused_node)
        m.gauge("bookchain_rpc_connections", "Open RPC connections of clients the per-client limits count "
                "(node/connlimit.py; not exempt ones)", lambda: self._connections().total)
        m.counter_from("bookchain_rpc_connections_refused", "RPC connections answered and closed as they opened: "
                       "their client address, or the node, held as many as it may", lambda: self._connections().refused)
        m.counter_from("bookchain_consensus_extra_rounds", "Rounds beyond round 0 needed to commit, summed over heights",
                       lambda: self.driver.rounds_total if self.driver else 0)
        m.counter_from("bookchain_consensus_bad_messages", "Undecodable consensus, tx or sync messages received",
                       lambda: self.driver.bad_messages if self.driver else 0)
        m.counter_from("bookchain_evidence", "Equivocation evidence seen",
                       lambda: len(self.driver.evidence) if self.driver else 0)
        m.counter_from("bookchain_execution_cpu_seconds", "CPU time spent applying, indexing and storing blocks "
                       "(on the execution thread)", lambda: round(ex.cpu_s, 6))
        m.counter_from("bookchain_mempool_journal_damaged_bytes", "Bytes of the mempool journal dropped at start as "
                       "damage in the middle of the file, or given up on by the salvage scan (a torn tail is not "
                       "counted; node/mempool_journal.py)",
                       lambda: self.journal.damaged_bytes)
        m.counter_from("bookchain_mempool_journal_salvaged_txs", "Transactions read at start from valid mempool "
                       "journal frames after damage, submitted again", lambda: self.journal.salvaged_txs)
        m.counter_from("bookchain_consensus_dropped_events", "Consensus events dropped while a block executed "
                       "(the queue was full)", lambda: self.driver.dropped_events if self.driver else 0)

    def metrics_text(self) -> str:
        if not getattr(self, "_gauges_registered", False):
            self._register_gauges()
            self._gauges_registered = True
        return self.metrics.text()
