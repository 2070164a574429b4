"""The consensus driver: feeds the sans-IO core with network messages, timers and the
clock, and performs the actions it returns (WAL, broadcast, timers, commit, sync).

The driver runs on the node's event-loop thread; the core is never entered concurrently.
Actions are performed strictly in order: a WAL record is fsync'd before the message it
records is handed to the network. The fsync runs on a thread of its own (``wal-sync``)
while the loop serves clients and the network: the record is written on the loop, and the
rest of its action list, and every event that arrives meanwhile, wait for the fsync (a
synced record is a barrier). Why: the loop did the fsync itself, two or three times a
block (its own prevote and precommit, its proposal), p50 0.5 ms and p99 15-25 ms each under
load, time in which no request or frame was served. The core is fed nothing until the
fsync is done, so it sees the events in the order it would with the fsync inline.

A commit saves the block on the loop, then applies, indexes and stores it on the
execution thread (node/execution.py) while the loop goes on serving clients and the
network. Until the block is done, the core is not fed: its events (votes and proposals of
the next height, timeouts, synced blocks) wait in arrival order and are fed after the next
height has started, as if they had arrived then. So the core sees exactly the sequence it
would with a synchronous commit, only later. The queue is bounded (``MAX_QUEUED`` events,
``MAX_QUEUED_BYTES`` of peer frames: a proposal carries a whole block): beyond it an event
is dropped, which consensus survives as it survives a lost message (votes and
proposals are re-sent every rebroadcast interval, timeouts are re-armed by the next height).

Evidence: an equivocation the core reports, or a peer's ``/bookchain/evidence/1`` frame
that checks out and is not committed yet, goes into the persisted pool
(node/evidence_pool.py) and out to every peer; a peer's evidence also goes to the core,
which proposes it. A committed block's evidence leaves the pool, and so does evidence too
old for the next block (the genesis ``evidence.max_age_blocks``).

A failed write (``StorageFailure``, node/diskfull.py: the WAL, a block, its results, the
state, the evidence pool) ends the action list where it failed: the vote or proposal a
failed WAL record was recording is never sent, and the driver stops (no timer, rebroadcast
or reconnect sends anything after it), then the node exits. The core still holds what it
signed in memory; only the WAL, read at the next start, decides what it may sign again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from consensus.actions import (
    BroadcastProposal,
    BroadcastVote,
    CommitBlock,
    Evidence,
    RecordWal,
    RequestSync,
    ScheduleTimeout,
)
from consensus.block import Block
from consensus.certificate import CommitCertificate
from consensus.core import ConsensusCore
from consensus.errors import MalformedMessage
from consensus.events import (
    EvidenceReceived,
    ProposalReceived,
    Start,
    SyncedBlock,
    TimeoutFired,
    TxsReady,
    VoteReceived,
)
from consensus.evidence import DuplicateVote, check_block_evidence
from consensus.messages import Proposal, Vote
from consensus.steps import TimeoutStep
from consensus.wal import WalEndHeight
from node import evidence_index, sigbatch
from node.crashpoints import maybe_crash
from node.diskfull import StorageFailure
from node.evidence_pool import MAX_PEER_EVIDENCE_AGE
from node.p2p import BadFrame, protocols
from node.readbudget import ReadBudget
from node.stategate import NodeStopping
from node.syncfallback import PeerRound
from state import offences
from state.codec import decode, encode
from state.errors import Code

if TYPE_CHECKING:
    from node.execution import Applied
    from node.ports import DriverHost

log = logging.getLogger("bookchain.consensus")

PROPOSAL_TAG = b"P"
VOTE_TAG = b"V"
SYNC_BATCH = 50
SYNC_MAX_BYTES = 24 * 1024 * 1024
#: A sync request a peer has not answered by then has failed (a strike, node/driver.py
#: ``_sync_loop``); one answered later than ``SYNC_SLOW_S`` is used but earns a strike too.
SYNC_TIMEOUT_S = 10.0
SYNC_SLOW_S = 3.0
MAX_SYNC_STRIKES = 64
#: Serving peers' block requests may take this share of the event loop (with this burst),
#: one peer half of it (``serve_sync``): a 25 MB answer costs ~100 ms of loop here, so one
#: peer still gets ~30 MB/s, four times what a saturated devnet commits.
SYNC_SERVE_SHARE = 0.25
SYNC_SERVE_BURST_S = 0.25
SYNC_SERVE_PEER_SHARE = SYNC_SERVE_SHARE / 2
SYNC_SERVE_PEER_BURST_S = SYNC_SERVE_BURST_S / 2
#: Events held while a block executes: a 5,000-tx block takes 0.5-1 s on a loaded devnet,
#: in which the peers send tens of votes and a proposal or two; a flood beyond this is dropped.
MAX_QUEUED = 10_000
MAX_QUEUED_BYTES = 64 * 1024 * 1024


_ROUND_STEPS = frozenset((TimeoutStep.PROPOSE, TimeoutStep.PREVOTE, TimeoutStep.PRECOMMIT))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _strike(strikes: dict[str, int], peer: str) -> None:
    """One more block-sync strike for ``peer`` (at most ``MAX_SYNC_STRIKES``)."""
    strikes[peer] = min(strikes.get(peer, 0) + 1, MAX_SYNC_STRIKES)


def _signed(signature: bytes, message: bytes, pubkey: bytes) -> bool:
    """The chain's signature rule through the batch verifier (node/sigbatch.py, C): the
    answer ``state.keys.verify`` gives, at the same cost for a forged signature as for a
    good one (``verify`` answers a signature libsodium rejects in plain Python, ~17 ms)."""
    return sigbatch.valid_prefix([(signature, message, pubkey)]) == 1


class _Resend:
    """A reconnecting peer's re-send of our own messages, held behind a WAL fsync in flight
    (the latest of them may be what that fsync makes durable)."""

    __slots__ = ("peer_id",)

    def __init__(self, peer_id: str) -> None:
        self.peer_id = peer_id


class ConsensusDriver:
    def __init__(self, rt: DriverHost, core: ConsensusCore) -> None:
        self.rt = rt
        self.core = core
        self.loop = asyncio.get_running_loop()
        self.timers: set[asyncio.TimerHandle] = set()
        self.evidence: list[Evidence] = []
        self.rounds_total = 0
        self.bad_messages = 0
        self._sync_task: asyncio.Task[None] | None = None
        # block sync's strikes per connected peer (``_sync_loop``): who is asked first
        self.sync_strikes: dict[str, int] = {}
        # the loop time answering peers' block requests may take, in all and per peer (serve_sync)
        self.sync_budget = ReadBudget(SYNC_SERVE_SHARE, SYNC_SERVE_BURST_S, client_share=SYNC_SERVE_PEER_SHARE,
                                      client_burst_s=SYNC_SERVE_PEER_BURST_S, exempt=())
        self.catching_up = False
        self.stopped = False
        self.halted: str | None = None
        self._nil_logged: tuple[int, int, int] | None = None  # last (height, round, type) logged as nil
        self.committing = False  # a block is executing on the execution thread
        self._end_height: RecordWal | None = None  # the core's end marker of that block's height
        self._queued: deque[tuple[Any, int]] = deque()  # (event, frame bytes) that arrived meanwhile
        self._queued_bytes = 0
        self.dropped_events = 0
        self._wal_sync: asyncio.Future[None] | None = None  # the fsync in flight on ``_syncer``
        self._after_sync: deque[Any] = deque()  # the actions that wait for it, in order
        self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-sync")
        self._round0_at: float | None = None  # time.monotonic() when round 0 of this height starts

    # ------------------------------------------------------------------ inputs
    def start_height(self) -> None:
        ex = self.rt.execution
        genesis_time = self.rt.genesis.genesis_time_ms
        self.feed(Start(
            height=self.rt.sm.height + 1,
            prev_block_hash=ex.last_block_hash,
            prev_app_hash=self.rt.sm.app_hash,
            prev_block_time_ms=ex.last_block_time_ms if self.rt.sm.height else genesis_time,
            now_ms=now_ms(),
        ))
        if len(self.rt.mempool):
            self.feed(TxsReady(now_ms()))

    def on_consensus_frame(self, peer_id: str, frame: bytes) -> None:
        """A peer's proposal or vote, decoded and fed to the core. A plain function: it
        never waits, so the p2p transport runs it without a task per frame."""
        if self.rt.faults.isolated():
            return
        try:
            tag, body = frame[:1], frame[1:]
            if tag == PROPOSAL_TAG:
                proposal = Proposal.decode(body)
                event: Any = ProposalReceived(proposal, now_ms(), self._proposal_must_be_sound(proposal))
            elif tag == VOTE_TAG:
                vote = Vote.decode(body)
                event = VoteReceived(vote, now_ms(), self._vote_must_be_sound(vote))
            else:
                raise MalformedMessage("unknown consensus frame tag")
        except MalformedMessage as err:
            self.bad_messages += 1
            log.debug("bad consensus frame from %s: %s", peer_id, err)
            raise BadFrame(f"undecodable consensus frame: {err}") from None  # counted; repeat offenders are banned
        self.feed(event, len(frame))

    def _proposal_must_be_sound(self, proposal: Proposal) -> bool:
        """``BadFrame`` for a proposal no honest node sends: of this height or a later one
        by another validator than that round's proposer, or, one the core would check, with
        a bad signature or (this height) with transactions or evidence its header does not
        commit to. True when its signature was checked here (the core need not).

        Why here: the core drops such a proposal without a word, and a byzantine proposer
        re-sending its signed header with ever new 4 MB bodies cost every node ~0.3 s of
        event loop per frame (the decode and the Merkle root), as often as it liked; a
        peer's bad frames get it banned. Nodes send only their own proposals, so the sender
        is at fault. Only what the core would check is checked (``checks_signature``: not a
        repeat, nor a round that holds its proposals already), signatures with the batch
        verifier (``_signed``); the body check is kept with the block, so the core's own
        check of it is free. A block of this height whose evidence has a signature the
        chain's rule rejects is the proposer's fault too (the rest of what makes evidence
        invalid is the core's to judge: it prevotes nil)."""
        core = self.core
        if not core.height or proposal.height < core.height:
            return False  # the core drops it unchecked
        if proposal.proposer != core.validators.proposer(proposal.height, proposal.round):
            raise self._blame(f"proposal for h={proposal.height} r={proposal.round} by another validator than its proposer")
        if not core.checks_signature(proposal):
            return False
        if not _signed(proposal.signature, proposal.sign_bytes(core.chain_id), proposal.proposer):
            raise self._blame(f"proposal for h={proposal.height} r={proposal.round} with a bad signature")
        if proposal.height == core.height and not proposal.block.body_matches():
            raise self._blame(f"proposal for h={proposal.height} r={proposal.round} whose body its header does not commit to")
        if proposal.height == core.height and proposal.block.evidence and check_block_evidence(
                proposal.block.evidence, core.height, core.validators, core.chain_id, max_age=core.evidence_max_age,
                verifier=sigbatch.valid_prefix)[0] == Code.BAD_SIGNATURE:
            # an honest proposer checked every signature of the evidence it includes (or
            # counted the votes itself); the core would only prevote nil, and the sender,
            # its proposer, would be free to make every node check new forgeries
            raise self._blame(f"proposal for h={proposal.height} r={proposal.round} with forged evidence")
        return True

    def _blame(self, why: str) -> BadFrame:
        """A frame no honest node sends, counted (``bad_messages``): the ``BadFrame`` to raise,
        which the p2p layer counts against the sending peer (repeat offenders are banned)."""
        self.bad_messages += 1
        return BadFrame(why)

    def _vote_must_be_sound(self, vote: Vote) -> bool:
        """``BadFrame`` for a vote no honest node sends: by a key outside the validator set,
        or, one the core would check (``checks_signature``: not a repeat of a counted vote,
        not an old height), with a bad signature. True when its signature was checked here
        (the core need not).

        Why: the core drops such a vote without a word after checking its signature with
        ``state.keys.verify``, whose answer for a signature libsodium rejects comes from
        the chain rule in plain Python (state/sigrule.py): ~17 ms for a well-formed forged
        signature. A keyless peer sending forged votes of a validator's key (~140 bytes
        each, a new round or value each) held a node's loop with a few KB/s, never blamed.
        Honest nodes send their own votes and relay counted ones, so the sender is at
        fault."""
        core = self.core
        if vote.validator not in core.validators:
            raise self._blame(f"vote by {vote.validator.hex()[:16]}, not a validator")
        if not core.checks_signature(vote):
            return False
        if not _signed(vote.signature, vote.sign_bytes(core.chain_id), vote.validator):
            raise self._blame(f"vote for h={vote.height} r={vote.round} with a bad signature")
        return True

    def on_peer_connected(self, peer_id: str) -> None:
        """A peer came back (after a cut, a restart, a dead connection): send it our own
        proposal and votes of the current height and round right away.

        The core re-sends them to everyone every ``rebroadcast_interval_ms`` anyway, but
        the frames sent while the peer was away died with the old connection, and after
        a 2-2 split neither half can finish a round without the other's votes, so the
        first round after the heal would wait up to one more interval for them. Bounded:
        one proposal and two votes per reconnect. A peer that is behind sees our votes of
        a later height and catches up by block sync; one that is ahead does the same for
        us."""
        if self.stopped or self.halted or self.rt.faults.isolated():
            return
        if self._wal_sync is not None:
            self._after_sync.append(_Resend(peer_id))
            return
        messages = self.core.own_messages()
        for message in messages:
            tag = PROPOSAL_TAG if isinstance(message, Proposal) else VOTE_TAG
            self.rt.p2p.send(peer_id, protocols.CONSENSUS, tag + message.encode())
        if messages:
            log.info("h=%d r=%d peer %s connected: re-sent our %d consensus messages",
                     self.core.height, self.core.round, peer_id[-8:], len(messages))

    def on_txs_available(self) -> None:
        """The mempool admitted transactions. Fed to the core only while its height has
        not had a ``TxsReady`` yet: once it has, another changes nothing, and clients that
        send one order per request would otherwise run the core's rules once per request.
        A height started with transactions waiting gets its own (``start_height``)."""
        if not self.rt.config.consensus.create_empty_blocks and not self.core.txs_ready:
            self.feed(TxsReady(now_ms()))

    def feed(self, event: Any, size: int = 0) -> None:
        """Hand ``event`` to the core, or queue it while a block executes (``size``: the
        bytes of the peer frame it came in, for the queue's bound)."""
        if self.stopped or self.halted:
            return
        if self.committing or self._wal_sync is not None:
            if type(event) is TxsReady and self._queued and type(self._queued[-1][0]) is TxsReady:
                return  # one is enough
            if len(self._queued) >= MAX_QUEUED or self._queued_bytes + size > MAX_QUEUED_BYTES:
                self.dropped_events += 1
                return
            self._queued.append((event, size))
            self._queued_bytes += size
            return
        if type(event) is EvidenceReceived and self._committed(event.evidence):
            # committed (or expired) by the block it waited behind: the core, which forgot the
            # offence when it decided that block, would propose it again in blocks no node accepts
            return
        try:
            actions = self.core.handle(event)
        except Exception:
            log.exception("consensus core failed on %s", type(event).__name__)
            raise
        self._perform_all(actions)

    def _perform_all(self, actions: list[Any]) -> None:
        """Perform ``actions`` in order, up to a synced WAL record: it is written here and
        made durable on the ``wal-sync`` thread; what follows it waits (``_synced``)."""
        try:
            for i, action in enumerate(actions):
                if self.stopped:  # a failed write inside this list (e.g. evidence): nothing more
                    return
                if (type(action) is RecordWal and action.sync and not self.halted
                        and not isinstance(action.record, WalEndHeight)):
                    self.rt.wal.append(action.record, sync=False)
                    self._after_sync.extend(actions[i + 1:])
                    self._wal_sync = asyncio.wrap_future(self._syncer.submit(self.rt.wal.sync), loop=self.loop)
                    self._wal_sync.add_done_callback(self._synced)
                    return
                self.perform(action)
        except StorageFailure as err:
            self.rt.fail_storage(err)  # stops this driver before anything else is performed

    def _synced(self, fut: asyncio.Future[None]) -> None:
        """The WAL fsync is done: perform what waited for it, then feed the events that
        arrived meanwhile (unless a block started executing, or another fsync, first)."""
        self._wal_sync = None
        if self.stopped:
            return
        err = None if fut.cancelled() else fut.exception()
        if err is not None:
            self._after_sync.clear()
            # ``WalFile.sync`` maps a failed fsync already; anything else leaves the record's
            # durability unknown just the same
            self.rt.fail_storage(err if isinstance(err, StorageFailure) else StorageFailure(self.rt.wal.path, err))
            return
        maybe_crash("wal_written")
        waiting, self._after_sync = list(self._after_sync), deque()
        try:
            self._perform_all(waiting)
        finally:  # whatever happened to those, the events behind them go in order
            self._feed_queued()

    # ------------------------------------------------------------------ actions
    def perform(self, action: Any) -> None:
        rt = self.rt
        if isinstance(action, RecordWal):
            if isinstance(action.record, WalEndHeight) and (self.committing or self.halted):
                # written once the block is saved (``_commit``); never when it will not be
                self._end_height = None if self.halted else action
                return
            rt.wal.append(action.record, sync=action.sync)  # unsynced, or synced once halted
            maybe_crash("wal_written")
        elif isinstance(action, _Resend):
            self.on_peer_connected(action.peer_id)
        elif isinstance(action, BroadcastVote):
            vote = action.vote
            if vote.is_nil:
                self._log_nil_vote(vote)
            if not rt.faults.isolated():
                for v in rt.faults.votes_to_send(vote):
                    rt.p2p.broadcast(protocols.CONSENSUS, VOTE_TAG + v.encode())
            maybe_crash("vote_sent")
        elif isinstance(action, BroadcastProposal):
            frame = PROPOSAL_TAG + action.proposal.encode()
            delay = rt.faults.propose_delay_s()
            if rt.faults.isolated():
                pass
            elif delay:
                self.loop.call_later(delay, rt.p2p.broadcast, protocols.CONSENSUS, frame)
            else:
                rt.p2p.broadcast(protocols.CONSENSUS, frame)
            log.info("h=%d r=%d proposed block with %d txs", action.proposal.height, action.proposal.round,
                     len(action.proposal.block.txs))
        elif isinstance(action, ScheduleTimeout):
            handle: asyncio.TimerHandle
            ev = (action.height, action.round, action.step)

            def fire() -> None:
                self.timers.discard(handle)
                self.feed(TimeoutFired(ev[0], ev[1], ev[2], now_ms()))

            handle = self.loop.call_later(self._timeout_delay_ms(action) / 1000, fire)
            self.timers.add(handle)
        elif isinstance(action, CommitBlock):
            self._commit(action.block, action.certificate)
        elif isinstance(action, Evidence):
            self.evidence.append(action)
            log.warning("h=%d equivocation by validator %s (round %d)", action.vote_a.height,
                        action.vote_a.validator.hex()[:16], action.vote_a.round)
            self._keep_evidence(DuplicateVote.make(action.vote_a, action.vote_b))  # the core has it already
        elif isinstance(action, RequestSync):
            self.request_sync(action.height)
        else:
            log.warning("unknown consensus action %r", action)

    def _timeout_delay_ms(self, action: ScheduleTimeout) -> int:
        """When a timeout fires is the driver's call (time is an input of the core, and
        timeouts only ever decide liveness, never safety).

        - ``timeout_commit_ms`` paces heights: round 0 of a height starts at least that long
          after round 0 of the one before, so the pause after a commit is what is left of
          it (none when the height took longer). Under a steady stream of small requests
          the devnet otherwise made a block every 50-60 ms, each costing every validator
          the same votes, WAL records, frames and per-block execution work whatever it
          holds; a height that runs long anyway (a loaded chain's blocks take ~100 ms)
          loses nothing, and a transaction reaching an idle chain starts its block at once.
          A height decided before its round 0 began here (the peers' precommits arrived
          first: this node is behind) is followed at once; pacing from that unstarted
          round 0 would push each next one further out, and a node catching up a dozen
          heights would make the chain wait seconds for its proposal.
          With transactions waiting the pause is at most ``timeout_commit_busy_ms`` (-1:
          no cap; 0: back-to-back blocks under load).
        - The round timeouts (propose, prevote, precommit) grow by ``timeout_execution_pct``
          of this node's execution time of the last block. The next proposer cannot
          propose before it has executed that block, and the other validators cannot vote
          before they have. With fixed timeouts, a saturated devnet (5,000-tx blocks taking
          0.5-1 s to execute on 4 nodes sharing 2 cores) had proposers finish the previous
          block a second after the others, who had already voted nil: about one height in
          ten needed a second round, 1-3 s each. A dead proposer still costs only the
          base timeout plus that margin.
        """
        cfg = self.rt.config.consensus
        step = action.step
        if step == TimeoutStep.NEW_HEIGHT:
            now = time.monotonic()
            since = self._round0_at
            if since is None:
                delay = action.delay_ms
            elif since > now:  # decided before its round 0 began (peers' votes): behind, catch up
                delay = 0
            else:
                delay = max(0, action.delay_ms - int((now - since) * 1000))
            busy = cfg.timeout_commit_busy_ms
            if 0 <= busy < delay and len(self.rt.mempool):
                delay = busy
            self._round0_at = now + delay / 1000
            return delay
        elif step in _ROUND_STEPS and cfg.timeout_execution_pct:
            return action.delay_ms + round(self.rt.execution.last_apply_ms * cfg.timeout_execution_pct / 100)
        return action.delay_ms

    def _commit(self, block: Block, cert: CommitCertificate) -> None:
        """Check the block here, then save and execute it on the execution thread;
        ``_applied`` takes it from there. The rest of this action list, the core's WAL end
        marker, waits for ``_applied`` (``_end_height``): the marker lets the WAL forget this
        height's votes, which only a saved block may do (after a crash before the save, the
        restarted core must still know what it signed at this height)."""
        from node.execution import AppHashMismatch

        if cert.round > 0:
            self.rounds_total += cert.round
        try:
            self.rt.execution.check_block(block)
        except AppHashMismatch as err:
            self.halted = str(err)
            log.critical("HALT: %s", err)
            return
        self.committing = True
        fut = self.rt.execution.apply_in_thread(block, cert)
        fut.add_done_callback(functools.partial(self._applied, block, cert))

    def _applied(self, block: Block, cert: CommitCertificate, fut: asyncio.Future[Any]) -> None:
        """Back on the loop after the execution thread stored ``block``: finish the commit,
        start the next height, feed what arrived meanwhile. Whatever fails here stops the
        node (a done callback's exception would only be logged, leaving a node that never
        starts its next height)."""
        self.committing = False
        end_height, self._end_height = self._end_height, None
        err = None if fut.cancelled() else fut.exception()
        if fut.cancelled() or err is not None:
            self._stop_after(block, err)
            return
        try:
            if end_height is not None:  # the block is saved: its height's WAL records may go
                self.rt.wal.append(end_height.record, sync=end_height.sync)
                maybe_crash("wal_written")
            self._finish_commit(block, cert, fut.result())
        except Exception as finish_err:
            self._stop_after(block, finish_err)
            return
        if self.stopped:
            return
        self.start_height()
        self._feed_queued()

    def _feed_queued(self) -> None:
        """Feed the events that waited for a block or a WAL fsync, until one of them starts
        another (whose end feeds the rest)."""
        while self._queued and not (self.committing or self._wal_sync is not None or self.stopped or self.halted):
            event, size = self._queued.popleft()
            self._queued_bytes -= size
            try:
                self.feed(event, size)
            except Exception:  # logged by feed; one event's failure is that event's, as on arrival
                continue

    def _stop_after(self, block: Block, err: BaseException | None) -> None:
        """Executing or finishing ``block`` failed: the state may hold half a block, or the
        node's bookkeeping of it (mempool, waiters, evidence pool) half its commit, so nobody
        reads it again and the node stops (exit 6 for a failed write, else halted); the
        restart applies the saved block again."""
        self._drop_queue()
        self.rt.execution.gate.fail()
        if isinstance(err, StorageFailure):
            self.rt.fail_storage(err)
        else:
            self.halted = f"committing block {block.height} failed: {err!r}"
            log.critical("HALT: %s", self.halted, exc_info=err)
            self.rt.fail(self.halted)

    def _finish_commit(self, block: Block, cert: CommitCertificate, applied: Applied) -> None:
        result = applied.result
        self.rt.execution.finish(applied, publish=True)
        pool = self.rt.evidence_pool
        if block.evidence:
            committed = evidence_index.decoded(block)
            done = {ev.offence for ev in committed}  # the pool's piece may prove another round
            pool.remove(ev.key for ev in pool.pending() if ev.offence in done)
            log.info("h=%d committed %d piece(s) of equivocation evidence", block.height, len(committed))
        max_age = self.rt.genesis.evidence_max_age
        if len(pool) and offences.expired(pool.pending()[0].height, block.height + 1, max_age):  # oldest first
            gone = pool.remove(ev.key for ev in pool.pending() if offences.expired(ev.height, block.height + 1, max_age))
            log.info("h=%d %d piece(s) of pending evidence expired (older than %d heights)", block.height, gone, max_age)
        log.info("h=%d committed block %s txs=%d round=%d app_hash=%s apply_ms=%.1f", block.height,
                 block.hash.hex()[:12], len(block.txs), cert.round, result.app_hash.hex()[:12],
                 self.rt.execution.last_apply_ms)
        self.rt.after_commit(block.height)

    def _drop_queue(self) -> None:
        self._queued.clear()
        self._queued_bytes = 0

    async def settled(self) -> None:
        """Wait until no block executes (a synced block fed just now has been stored, or
        refused), and no WAL fsync holds it back in the queue."""
        while self._wal_sync is not None:
            await asyncio.wait([self._wal_sync])  # its done callback (_synced) runs first
        await self.rt.execution.gate.wait_open()

    def _log_nil_vote(self, vote: Vote) -> None:
        """A nil vote is the first sign of a failing round (a proposal that came too late
        or not at all, or no polka in time): say so once, not at every rebroadcast."""
        key = (vote.height, vote.round, int(vote.type))
        if key == self._nil_logged:
            return
        self._nil_logged = key
        log.info("h=%d r=%d voted %s nil", vote.height, vote.round, vote.type.name.lower())

    # ------------------------------------------------------------------ evidence
    def _committed(self, evidence: DuplicateVote) -> bool:
        """Whether no block may carry ``evidence`` any more: its offence is recorded in the
        state as committed, or it is too old for the next block (state/offences.py, the rule
        ``NodeApp.validate_block`` applies). A filter for the pool and gossip, not the rule:
        asked while a block executes, it reads the state before or after that block (each
        look-up one atomic step), and the core and ``validate_block`` judge again at the
        height that proposes it."""
        sm = self.rt.sm
        return (offences.committed_at(sm.ex, evidence.offence) is not None
                or offences.expired(evidence.height, sm.height + 1, self.rt.genesis.evidence_max_age))

    def _keep_evidence(self, evidence: DuplicateVote) -> bool:
        """Pool and gossip evidence that is new and not committed; True if it was."""
        if evidence.key in self.rt.evidence_pool or self._committed(evidence):
            return False
        try:
            if not self.rt.evidence_pool.add(evidence):
                return False
        except StorageFailure as err:  # also reached from a peer's frame, outside ``feed``
            self.rt.fail_storage(err)
            return False
        if not self.rt.faults.isolated():
            self.rt.p2p.broadcast(protocols.EVIDENCE, evidence.encode())
        return True

    async def on_evidence_frame(self, peer_id: str, frame: bytes) -> None:
        """A peer's evidence: checked against the validator set before it is kept, relayed
        or handed to the core. Evidence that does not check is the peer's fault (counted;
        repeat offenders are banned), evidence already known or committed is dropped."""
        if self.rt.faults.isolated():
            return
        try:
            evidence = DuplicateVote.decode(frame)
        except MalformedMessage as err:
            raise self._blame(f"undecodable evidence: {err}") from None
        if evidence.height > self.core.height:
            # not committable before then, and unbounded: a validator signing pairs for far
            # heights could fill every pool. Peers gossip pending evidence again
            # (EVIDENCE_GOSSIP_S), so a node that was behind hears it once it gets there.
            return
        if evidence.height + MAX_PEER_EVIDENCE_AGE < self.core.height:
            # too old to be a peer's fresh find (node/evidence_pool.py): a validator signing
            # a pair for every past height would make every node fsync its pool per frame
            return
        if evidence.key in self.rt.evidence_pool or self._committed(evidence):
            return
        # signatures with the batch verifier: ``state.keys.verify`` answers a forged one with
        # the chain rule in plain Python (``_signed``), ~17 ms each
        code = evidence.check(self.core.validators, self.core.chain_id, sigbatch.valid_prefix)
        if code != Code.OK:
            raise self._blame(f"invalid evidence from {peer_id}: {code.name}")
        if self._keep_evidence(evidence):
            log.warning("h=%d evidence from a peer: validator %s equivocated at height %d round %d",
                        self.rt.sm.height, evidence.validator.hex()[:16], evidence.height, evidence.round)
            self.feed(EvidenceReceived(evidence))

    def restore_evidence(self) -> None:
        """At start: the pool's evidence that no stored block committed goes to the core
        (before the first Start, so this node's next proposal can include it)."""
        pool = self.rt.evidence_pool
        stale = [ev.key for ev in pool.pending() if self._committed(ev)]
        pool.remove(stale)
        for ev in pool.pending():
            self.core.handle(EvidenceReceived(ev))
        if len(pool):
            log.info("h=%d %d piece(s) of pending evidence restored", self.rt.sm.height, len(pool))

    def gossip_evidence(self) -> None:
        """Re-send the pending evidence (a peer that was down missed it)."""
        if self.rt.faults.isolated() or self.stopped:
            return
        for ev in self.rt.evidence_pool.pending():
            self.rt.p2p.broadcast(protocols.EVIDENCE, ev.encode())

    # ------------------------------------------------------------------ block sync
    def request_sync(self, height: int) -> None:
        if self._sync_task is None or self._sync_task.done():
            log.info("h=%d block sync started (peers seen at %d)", self.rt.sm.height + 1, height)
            self._sync_task = asyncio.ensure_future(self._sync_loop())

    async def _sync_loop(self) -> None:
        """Fetch blocks with certificates from peers until none has more.

        A round asks the peers in order of their strikes (fewest first, then by id) and
        ends at the first that gives blocks; only when none does has every peer been asked
        (which is what the pruned-peers fallback needs). A peer earns a strike for a failed
        or timed-out request, an answer that does not decode, a block the core refused or an
        answer slower than ``SYNC_SLOW_S``, and loses one for each quick answer with blocks.
        Why: any peer can hold a request (block sync needs no key); a round that asked
        every peer would spend ``SYNC_TIMEOUT_S`` on it per 50 blocks from each honest
        peer, fewer blocks a second than a devnet makes, and a lagging node would never
        catch up."""
        self.catching_up = True
        try:
            idle_rounds = 0
            while not self.stopped and idle_rounds < 2:
                got = False
                answers = PeerRound()  # every peer answering "pruned": node/syncfallback.py
                start = self.rt.sm.height + 1
                peers = self.rt.p2p.connected_peers()
                connected = set(peers)
                strikes = self.sync_strikes = {p: n for p, n in self.sync_strikes.items() if p in connected}
                for peer in sorted(peers, key=lambda p: (strikes.get(p, 0), p)):
                    if self.rt.faults.isolated() or got:
                        break
                    start = self.rt.sm.height + 1
                    asked = time.monotonic()
                    try:
                        resp = await self.rt.p2p.request(peer, protocols.SYNC, encode([start, SYNC_BATCH]),
                                                         timeout_s=SYNC_TIMEOUT_S)
                        items = decode(resp, max_bytes=SYNC_MAX_BYTES + 1024)
                    except Exception as err:  # a peer may be down or send garbage: try another
                        log.info("h=%d sync from %s failed: %r", start, peer[-8:], err)
                        _strike(strikes, peer)
                        continue
                    strike = time.monotonic() - asked > SYNC_SLOW_S
                    answers.answer(items)
                    if not isinstance(items, list):
                        if type(items) is not int:  # an int: it pruned the blocks asked for
                            _strike(strikes, peer)
                        continue
                    delivered = 0
                    for item in items:
                        try:
                            block, cert = Block.decode(item[0]), CommitCertificate.decode(item[1])
                        except (MalformedMessage, IndexError, TypeError):
                            self.bad_messages += 1
                            strike = True
                            break
                        if block.height != self.rt.sm.height + 1:
                            break
                        self.feed(SyncedBlock(block, cert))
                        try:
                            await self.settled()
                        except NodeStopping:
                            return
                        if self.rt.sm.height < block.height:  # rejected (bad certificate): next peer
                            strike = True
                            break
                        delivered += 1
                        got = True
                        await asyncio.sleep(0)
                    if strike:
                        _strike(strikes, peer)
                    elif delivered and strikes.get(peer):
                        strikes[peer] -= 1
                idle_rounds = 0 if got else idle_rounds + 1
                answers.got = got
                lowest = answers.pruned_from(start)
                if lowest is not None and await self.rt.peers_pruned(start, lowest):
                    return
                if not got:
                    await asyncio.sleep(0.2)
        finally:
            self.catching_up = False

    async def serve_sync(self, peer_id: str, request: bytes) -> bytes:
        """A peer's block request, answered from the store on the event loop once the
        serving budget lets it (``sync_budget``, its loop time charged to it and to the
        peer). Why: a 50-block answer of loaded blocks is ~25 MB read and encoded, tens of
        ms of the loop that runs consensus; any peer may ask (no key needed), 16 requests at
        a time, again and again, and a node answering them all had no loop left to vote."""
        if self.rt.faults.isolated():
            return encode([])
        try:
            start, count = decode(request, max_bytes=64)
            if type(start) is not int or type(count) is not int or start < 1:
                raise ValueError("bad range")
        except Exception:
            return encode([])
        budget: ReadBudget = self.sync_budget
        await budget.wait_turn(peer_id)
        if self.rt.faults.isolated():  # while it waited
            return encode([])
        return budget.spend(peer_id, self._sync_answer, start, count)

    def _sync_answer(self, start: int, count: int) -> bytes:
        """Blocks ``start``.. (at most ``count``, ``SYNC_BATCH`` and ``SYNC_MAX_BYTES``) with
        their certificates; the lowest kept height when ``start`` is below it."""
        out: list[list[bytes]] = []
        size = 0
        blocks = self.rt.blocks
        if start < blocks.base:  # pruned, or below this node's snapshot
            return encode(blocks.base)  # the lowest it keeps, not "not yet" (node/syncfallback.py)
        for h in range(start, min(start + min(count, SYNC_BATCH), blocks.height + 1)):
            raw_block, raw_cert = blocks.block(h), blocks.certificate(h)
            if raw_block is None or raw_cert is None:
                break
            size += len(raw_block) + len(raw_cert)
            if out and size > SYNC_MAX_BYTES:
                break
            out.append([raw_block, raw_cert])
        return encode(out)

    def stop(self) -> None:
        self.stopped = True
        self._drop_queue()
        self._after_sync.clear()  # never sent: what the WAL holds decides at the next start
        self._syncer.shutdown(wait=True)  # an fsync in flight ends before the WAL may be closed
        for t in self.timers:
            t.cancel()
        self.timers.clear()
        if self._sync_task is not None:
            self._sync_task.cancel()
