"""The Tendermint consensus algorithm as a sans-IO state machine: events in, actions out.

Why sans-IO: the same object runs in the node (driven by libp2p messages, real timers
and an fsynced WAL) and in a deterministic simulator (virtual clock, drops, partitions,
crashes), so the protocol is tested exactly as it runs. ``handle`` never blocks, reads no
clock and draws no randomness; its output depends only on the events it was fed.

The rules follow Algorithm 1 of "The latest gossip on BFT consensus" (Buchman, Kwon,
Milosevic); comments cite its line numbers. Deviations, all liveness-only:

- Round skip (line 55) jumps to the highest round R such that validators with more than
  1/3 of the power have sent a vote for a round >= R (the paper: f+1 votes in R exactly).
  Some honest validator has reached R either way, and votes far ahead need not be stored.
- Block time (proposer-based timestamps): a fresh proposal (pol_round -1) must be at most
  ``max_clock_drift_ms`` ahead of the receiver's clock to get its prevote; that check is
  subjective, so it is applied at line 22 only and never to POL or commit rules.
- Every ``rebroadcast_interval_ms`` the core re-sends its own proposal (unless every
  validator has prevoted for it) and votes of the current round and relays the prevotes
  behind its valid/locked value (the paper assumes gossip: correct processes relay what
  they receive). This is what keeps lossy links, restarted peers and a byzantine
  validator that shows its votes to only some nodes from stalling the height. The same
  tick retries block sync while validators claim later heights: every tick when they
  hold more than 1/3 of the power, by a per-validator back-off when they hold less
  (consensus/syncbackoff.py), so one far-future vote cannot make it ask every tick.
- Votes are tallied once per validator *per value*: an equivocator's second vote is
  reported as evidence and still counted for its own value (safe by quorum
  intersection), so a polka that others saw can be seen by everyone.

Evidence (consensus/evidence.py, CometBFT's evidence module): the two conflicting votes are
kept as pending evidence, with evidence the driver feeds in (``EvidenceReceived``: peers'
gossip, the node's pool after a restart). As proposer the core puts pending evidence from
earlier heights into its fresh block; every node checks a proposal's evidence as part of
valid(v) (a proposal with invalid evidence gets a nil prevote), and a decided block's
evidence leaves the pending set. Evidence older than the chain's ``evidence_max_age`` is
invalid in a block, so it is neither kept nor proposed, and leaves the pending set when it
expires. Whether a piece's offence was committed in an earlier block is the application's
check (``App.validate_block``), which reads it from the state.
"""

from __future__ import annotations

from collections.abc import Iterable

from consensus.actions import (
    Action,
    BroadcastProposal,
    BroadcastVote,
    CommitBlock,
    Evidence,
    RecordWal,
    RequestSync,
    ScheduleTimeout,
)
from consensus.app import App
from consensus.block import Block, make_block
from consensus.certificate import CommitCertificate
from consensus.config import ConsensusConfig
from consensus.events import (
    Event,
    EvidenceReceived,
    ProposalReceived,
    Start,
    SyncedBlock,
    TimeoutFired,
    TxsReady,
    VoteReceived,
)
from consensus.evidence import (
    MAX_EVIDENCE_PER_BLOCK,
    DuplicateVote,
    check_block_evidence,
)
from consensus.fields import (
    HASH_LEN,
    MAX_BLOCK_BYTES,
    MAX_BLOCK_TXS,
    MAX_PROPOSAL_BYTES,
    MAX_TX_BYTES,
)
from consensus.messages import NIL, Proposal, Vote, VoteType
from consensus.steps import RoundStep, TimeoutStep
from consensus.syncbackoff import SyncBackoff
from consensus.tally import HeightVotes
from consensus.validators import ValidatorSet
from consensus.wal import (
    WalEndHeight,
    WalProposal,
    WalRecord,
    WalStep,
    WalVote,
    record_height,
)
from state.errors import Code
from state.genesis import DEFAULT_EVIDENCE_MAX_AGE
from state.keys import PrefixVerifier, PrivateKey, valid_prefix
from state.offences import expired

#: An equivocating proposer may send different blocks for one round; keep at most this many.
MAX_PROPOSALS_PER_ROUND = 2
#: An equivocating validator's votes are counted for at most this many values per round and type.
MAX_VALUES_PER_VALIDATOR = 4
#: Pending evidence kept for proposing (a byzantine validator equivocating at every height
#: should not grow it without bound; the lowest keys, the oldest heights, are kept).
MAX_PENDING_EVIDENCE = 256
#: Bytes of msgpack framing budgeted per transaction when cutting an own block to size.
_TX_OVERHEAD = 5
#: Bytes budgeted for the header and the block's array headers (at most ~300).
_HEADER_BUDGET = 1024


class ConsensusCore:
    """One node's consensus state. Feed events to ``handle``; perform the returned actions.

    ``key`` is this node's validator key; ``None`` (or a key outside the set) makes a
    follower that verifies and commits blocks but never signs anything. ``evidence_max_age``
    is the chain's (``Genesis.evidence_max_age``): evidence older than that is neither
    proposed nor valid in a block.

    ``verifier`` checks every signature the core checks (peers' votes and proposals it was
    not told are verified, evidence, a proposed block's evidence, a synced block's
    certificate). Why injected: ``state.keys.verify`` (the default's) answers a signature
    libsodium rejects with the chain rule in plain Python, 6-17 ms, and those signatures
    come from peers; a node passes its batch verifier (node/sigbatch.py), which answers the
    same at C speed. Answers never depend on it, only the cost does.
    """

    def __init__(
        self,
        chain_id: str,
        validators: ValidatorSet,
        app: App,
        config: ConsensusConfig | None = None,
        key: PrivateKey | None = None,
        *,
        evidence_max_age: int = DEFAULT_EVIDENCE_MAX_AGE,
        verifier: PrefixVerifier = valid_prefix,
    ) -> None:
        self.chain_id = chain_id
        self._verifier = verifier
        # a chain parameter (genesis ``evidence.max_age_blocks``), not this node's config:
        # it decides which evidence is valid (consensus/evidence.py)
        self.evidence_max_age = evidence_max_age
        self.validators = validators
        self.app = app
        self.config = config if config is not None else ConsensusConfig()
        self._key = key if key is not None and key.pubkey in validators else None
        self._me: bytes = self._key.pubkey if self._key is not None else b""
        self._out: list[Action] = []
        self._now = 0
        self._restored: dict[int, list[WalRecord]] = {}
        self._future: list[tuple[ProposalReceived | VoteReceived, bool]] = []
        self._future_keys: set[tuple[object, ...]] = set()
        self._future_proposals: dict[int, int] = {}
        # per validator, the highest later height it signed a message for (kept until our
        # height reaches it), and when block sync is retried for a minority's claims
        self._higher: dict[bytes, int] = {}
        self._sync_backoff = SyncBackoff()
        self._pending_evidence: dict[tuple[int, bytes, int, int], DuplicateVote] = {}
        self.height = 0
        self._reset_height()

    # ================================================================== public surface
    @property
    def is_validator(self) -> bool:
        return self._key is not None

    @property
    def decided(self) -> Block | None:
        """The block decided at the current height (until the next Start)."""
        return self._decision

    @property
    def locked(self) -> tuple[int, bytes]:
        """(lockedRound, hash of lockedValue); (-1, b"") when unlocked."""
        return self._locked_round, self._locked_hash

    @property
    def valid(self) -> tuple[int, bytes]:
        """(validRound, hash of validValue); (-1, b"") when none."""
        return self._valid_round, self._valid_hash

    @property
    def txs_ready(self) -> bool:
        """A ``TxsReady`` reached this height already: another one changes nothing (the
        event only ends a proposer's wait for transactions, once per height), so the
        driver need not hand the core one per admitted request."""
        return self._txs_ready

    def own_messages(self) -> list[Proposal | Vote]:
        """This validator's own proposal and votes of the current height and round.

        What a peer that was cut off needs from us to make progress in this round; the
        driver re-sends them to a peer as soon as it reconnects instead of waiting for the
        next rebroadcast tick. A read-only view: it changes nothing and emits no action.
        """
        if self._decision is not None:
            return []  # the height is over here; the peer learns the block by sync
        out: list[Proposal | Vote] = []
        proposal = self._own_proposals.get(self.round)
        if proposal is not None:
            out.append(proposal)
        for vote_type in (VoteType.PREVOTE, VoteType.PRECOMMIT):
            vote = self._own_votes.get((self.round, vote_type))
            if vote is not None:
                out.append(vote)
        return out

    def checks_signature(self, message: Proposal | Vote) -> bool:
        """Whether ``handle`` would check this peer message's signature now (read-only), so
        the host can check it first with its own verifier and pass ``verified``
        (node/driver.py; the core's ``verify`` answers a forged signature slowly). False for
        what the core drops or merely notes unchecked: old heights, repeats, a vote from
        outside the set, a proposal it would not store (another round's proposer, a round
        too far ahead, a round that holds its proposals already)."""
        if not self.height:
            return False  # ignored before the first Start
        if isinstance(message, Vote):
            if self.validators.power_of(message.validator) == 0 or message.height < self.height:
                return False
            if message.height > self.height:
                return self._higher_is_news(message.validator, message.height, message)
            if self._decision is not None or self._votes.has(message):
                return False
            if message.round > self.round + self.config.round_lookahead:
                return self._max_round.get(message.validator, -1) < message.round
            return True
        if message.height > self.height:
            return message.proposer == self.validators.proposer(
                message.height, message.round
            ) and self._higher_is_news(message.proposer, message.height, message)
        return message.height == self.height and self._takes_proposal(message)

    @property
    def pending_evidence(self) -> list[DuplicateVote]:
        """Evidence this core would include as proposer, oldest first."""
        return [self._pending_evidence[k] for k in sorted(self._pending_evidence)]

    def restore(self, records: Iterable[WalRecord]) -> None:
        """Load WAL records of a previous run; call before the first Start.

        At Start of a height with records, the core restores its lock from its own
        precommits, resumes the highest recorded round and re-sends the recorded proposal
        and votes; it never signs a second, different message for a recorded
        (height, round, type).
        """
        if self.height:
            raise ValueError("restore must be called before the first Start")
        for record in records:
            self._restored.setdefault(record_height(record), []).append(record)

    def handle(self, event: Event) -> list[Action]:
        """Process one event and return the actions to perform, in order."""
        self._out = []
        if isinstance(event, Start):
            self._on_start(event)
        elif isinstance(event, EvidenceReceived):
            self._on_evidence(event.evidence)  # also before the first Start (a restart's pool)
        elif self.height == 0:
            pass  # nothing to do before the driver tells us where the chain is
        elif isinstance(event, VoteReceived):
            self._tick(event.now_ms)
            self._on_vote(event.vote, verified=event.verified)
        elif isinstance(event, ProposalReceived):
            self._tick(event.now_ms)
            self._on_proposal(event.proposal, verified=event.verified)
        elif isinstance(event, TimeoutFired):
            self._tick(event.now_ms)
            self._on_timeout(event)
        elif isinstance(event, TxsReady):
            self._tick(event.now_ms)
            self._on_txs_ready()
        elif isinstance(event, SyncedBlock):
            self._on_synced_block(event.block, event.certificate)
        else:  # pragma: no cover - exhaustive over Event
            raise TypeError(f"unknown event {event!r}")
        self._check_rules()
        out, self._out = self._out, []
        return out

    # ================================================================== height lifecycle
    def _reset_height(self) -> None:
        self.round = 0
        self.step = RoundStep.NEW_HEIGHT
        self._prev_block_hash = b""
        self._prev_app_hash = b""
        self._prev_time_ms = 0
        self._decision: Block | None = None
        self._locked_round = -1
        self._locked_hash = NIL
        self._valid_round = -1
        self._valid_hash = NIL
        self._votes = HeightVotes()
        self._proposals: dict[int, list[Proposal]] = {}
        self._blocks: dict[bytes, Block] = {}
        self._validity: dict[bytes, bool] = {}
        self._max_round: dict[bytes, int] = {}
        self._max_seen_round = -1
        self._commit_candidates: set[tuple[int, bytes]] = set()
        self._own_votes: dict[tuple[int, VoteType], Vote] = {}
        self._own_proposals: dict[int, Proposal] = {}
        self._evidence_seen: set[tuple[bytes, int, VoteType]] = set()
        self._sync_requested = False
        self._txs_ready = False
        self._reset_round_flags()

    def _reset_round_flags(self) -> None:
        self._waiting_txs = False
        self._prevote_timeout_set = False  # line 34 "for the first time"
        self._precommit_timeout_set = False  # line 47
        self._polka_block_done = False  # line 36

    def _on_start(self, event: Start) -> None:
        if self.height and event.height < self.height:
            raise ValueError(f"Start({event.height}) after height {self.height}")
        if event.height == self.height:
            return  # a repeated Start is a no-op
        if event.height < 1 or len(event.prev_app_hash) != HASH_LEN:
            raise ValueError("Start needs a height >= 1 and a 32-byte prev_app_hash")
        if (event.height == 1) != (event.prev_block_hash == b"") or len(
            event.prev_block_hash
        ) not in (0, HASH_LEN):
            raise ValueError("prev_block_hash is empty at height 1 and 32 bytes after")
        self._tick(event.now_ms)
        self._reset_height()
        self.height = event.height
        self._prev_block_hash = event.prev_block_hash
        self._prev_app_hash = event.prev_app_hash
        self._prev_time_ms = event.prev_block_time_ms
        self._higher = {k: h for k, h in sorted(self._higher.items()) if h > self.height}
        self._sync_backoff.keep_only(self._higher)
        for key in [k for k in sorted(self._pending_evidence) if self._expired(k[0])]:
            del self._pending_evidence[key]  # no block from this height on may carry it
        records = self._restored.pop(self.height, [])
        self._restored = {h: r for h, r in sorted(self._restored.items()) if h > self.height}
        self._schedule(TimeoutStep.REBROADCAST, 0)
        if records:
            self._resume(records)
        elif self.config.timeout_commit_ms > 0:
            self._schedule(TimeoutStep.NEW_HEIGHT, 0)
        else:
            self._start_round(0)
        buffered, self._future = self._future, []
        self._future_keys = set()
        self._future_proposals = {}
        for message, verified in buffered:
            if isinstance(message, VoteReceived):
                if message.vote.height == self.height:
                    self._on_vote(message.vote, verified=verified)
            elif message.proposal.height == self.height:
                self._on_proposal(message.proposal, verified=verified)

    def _resume(self, records: list[WalRecord]) -> None:
        """Restart inside a height from our own WAL records (see ``restore``)."""
        resume_round = 0
        for record in records:
            if isinstance(record, WalVote) and record.vote.validator == self._me and self._me:
                vote = record.vote
                self._own_votes.setdefault((vote.round, vote.type), vote)
                resume_round = max(resume_round, vote.round)
            elif (
                isinstance(record, WalProposal)
                and record.proposal.proposer == self._me
                and self._me
            ):
                proposal = record.proposal
                self._own_proposals.setdefault(proposal.round, proposal)
                self._blocks.setdefault(proposal.block_hash, proposal.block)
                resume_round = max(resume_round, proposal.round)
            elif isinstance(record, WalStep):
                resume_round = max(resume_round, record.round)
        for (round_, vote_type), vote in sorted(self._own_votes.items()):
            # Our earlier votes were sent; count them, and rebuild the lock (line 36-38
            # locks exactly when a non-nil precommit is sent).
            if not self._votes.has(vote):
                self._add_vote(vote)
            if vote_type == VoteType.PRECOMMIT and vote.block_hash and round_ > self._locked_round:
                self._locked_round = self._valid_round = round_
                self._locked_hash = self._valid_hash = vote.block_hash
        self._start_round(resume_round)
        prevote = self._own_votes.get((resume_round, VoteType.PREVOTE))
        if prevote is not None and self.step == RoundStep.PROPOSE:
            self._cast_prevote(prevote.block_hash)
        precommit = self._own_votes.get((resume_round, VoteType.PRECOMMIT))
        if precommit is not None and self.step == RoundStep.PREVOTE:
            self._cast_precommit(precommit.block_hash)

    def _start_round(self, round_: int) -> None:
        """StartRound (lines 11-21)."""
        self.round = round_
        self.step = RoundStep.PROPOSE
        self._reset_round_flags()
        self._wal(WalStep(self.height, round_, RoundStep.PROPOSE), sync=False)
        waiting = round_ == 0 and not self.config.create_empty_blocks and not self._txs_ready
        if self._is_my_turn(round_):
            if round_ in self._own_proposals or not waiting:
                self._propose(None)
                return
            txs = self._reap()
            if txs:
                self._propose(txs)
                return
        if waiting:
            self._waiting_txs = True
            if self.config.empty_block_interval_ms > 0:
                self._schedule(TimeoutStep.WAIT_TXS, round_)
        else:
            self._schedule(TimeoutStep.PROPOSE, round_)

    def _stop_waiting(self) -> None:
        """Transactions arrived or the empty block interval elapsed (round 0 only)."""
        self._waiting_txs = False
        if self._is_my_turn(self.round):
            self._propose(None)
        else:
            self._schedule(TimeoutStep.PROPOSE, self.round)

    def _is_my_turn(self, round_: int) -> bool:
        return bool(self._me) and self.validators.proposer(self.height, round_) == self._me

    # ================================================================== proposing
    def _propose(self, txs: list[bytes] | None) -> None:
        """Lines 14-19: re-propose validValue with its POL round, else a fresh block."""
        assert self._key is not None
        proposal = self._own_proposals.get(self.round)
        if proposal is None:
            valid_block = self._blocks.get(self._valid_hash) if self._valid_hash else None
            if valid_block is not None and self._valid_round < self.round:
                block, pol_round = valid_block, self._valid_round
            else:
                evidence = self._evidence_to_propose()
                block = make_block(
                    chain_id=self.chain_id,
                    height=self.height,
                    round=self.round,
                    time_ms=max(self._now, self._prev_time_ms + 1),
                    prev_block_hash=self._prev_block_hash,
                    prev_app_hash=self._prev_app_hash,
                    proposer=self._me,
                    txs=tuple(txs if txs is not None else self._reap()),
                    evidence=evidence,
                )
                pol_round = -1
            proposal = Proposal.create(
                self._key, self.chain_id, self.height, self.round, pol_round, block
            )
            self._own_proposals[self.round] = proposal
            self._wal(WalProposal(proposal), sync=True)
        self._out.append(BroadcastProposal(proposal))
        self._store_proposal(proposal)

    def _evidence_to_propose(self) -> tuple[bytes, ...]:
        """Pending evidence from earlier heights, not expired, oldest first, at most a
        block's worth."""
        out = [ev.encode() for key, ev in sorted(self._pending_evidence.items())
               if key[0] < self.height and not self._expired(key[0])]
        return tuple(out[:MAX_EVIDENCE_PER_BLOCK])

    def _reap(self) -> list[bytes]:
        """The application's transactions, cut to this node's block limits (less the room
        the evidence this node would propose takes) and never past ``MAX_BLOCK_BYTES``,
        which every node's validity check holds a block to whatever its config says."""
        evidence_bytes = sum(len(e) + _TX_OVERHEAD for e in self._evidence_to_propose())
        budget = min(self.config.max_block_bytes, MAX_BLOCK_BYTES) - _HEADER_BUDGET - evidence_bytes
        offered = self.app.propose_txs(self.height)
        if (
            len(offered) <= self.config.max_block_txs
            and all(type(tx) is bytes and len(tx) <= MAX_TX_BYTES for tx in offered)
            and sum(map(len, offered)) + _TX_OVERHEAD * len(offered) <= budget
        ):
            return list(offered)  # the common case: the mempool already respected the limits
        chosen: list[bytes] = []
        for tx in offered:
            if len(chosen) >= self.config.max_block_txs:
                break
            if type(tx) is not bytes or len(tx) > MAX_TX_BYTES:
                continue
            cost = len(tx) + _TX_OVERHEAD
            if cost > budget:
                break
            budget -= cost
            chosen.append(tx)
        return chosen

    # ================================================================== incoming messages
    def _on_proposal(self, proposal: Proposal, *, verified: bool) -> None:
        if proposal.height != self.height:
            if proposal.height > self.height:
                self._on_higher(proposal.proposer, proposal.height, proposal, verified)
            return
        if not self._takes_proposal(proposal):
            return
        if not verified and not self._signed(proposal):
            return
        # The signature covers the header only; a relay could swap the transactions, so
        # the body must match txs_root before it is stored under the header's hash.
        if not proposal.block.body_matches():
            return
        self._store_proposal(proposal)

    def _takes_proposal(self, proposal: Proposal) -> bool:
        """The checks before a proposal of this height is verified and stored: the round's
        proposer, a round not too far ahead, and room in that round for a new block."""
        if self._decision is not None:
            return False
        if proposal.round > self.round + self.config.round_lookahead:
            return False
        if proposal.proposer != self.validators.proposer(self.height, proposal.round):
            return False
        if not -1 <= proposal.pol_round < proposal.round:
            return False
        header = proposal.block.header
        if header.height != self.height or header.round > proposal.round:
            return False
        stored = self._proposals.get(proposal.round, [])
        return len(stored) < MAX_PROPOSALS_PER_ROUND and all(
            p.block_hash != proposal.block_hash for p in stored
        )

    def _store_proposal(self, proposal: Proposal) -> None:
        stored = self._proposals.setdefault(proposal.round, [])
        if all(p.block_hash != proposal.block_hash for p in stored):
            stored.append(proposal)
        self._blocks.setdefault(proposal.block_hash, proposal.block)

    def _on_vote(self, vote: Vote, *, verified: bool) -> None:
        power = self.validators.power_of(vote.validator)
        if power == 0 or vote.height < self.height:
            return
        if vote.height > self.height:
            self._on_higher(vote.validator, vote.height, vote, verified)
            return
        if self._decision is not None:
            return
        if self._votes.has(vote):
            return  # duplicate (gossip, rebroadcast)
        existing = self._votes.existing(vote)
        if vote.round > self.round + self.config.round_lookahead:
            # Too far ahead to keep; it only tells us that this validator reached that round.
            if self._max_round.get(vote.validator, -1) >= vote.round:
                return
            if verified or self._signed(vote):
                self._note_round(vote.validator, vote.round)
            return
        if not verified and not self._signed(vote):
            return
        if existing is not None:
            self._report_equivocation(existing, vote)
            if not self._admit_conflicting(vote):
                return
        self._add_vote(vote)

    def _admit_conflicting(self, vote: Vote) -> bool:
        """Count an equivocating validator's extra vote only for a value that can matter
        (nil, a block we hold, a value others voted for) and only a few times, so a
        byzantine validator cannot grow the tallies without bound."""
        vote_set = self._votes.get(vote.round, vote.type)
        if vote_set.values_of(vote.validator) >= MAX_VALUES_PER_VALIDATOR:
            return False
        return (
            not vote.block_hash
            or vote.block_hash in self._blocks
            or vote_set.power_for(vote.block_hash) > 0
        )

    def _add_vote(self, vote: Vote) -> None:
        vote_set = self._votes.add(vote, self.validators.power_of(vote.validator))
        self._note_round(vote.validator, vote.round)
        if (
            vote.type == VoteType.PRECOMMIT
            and vote.block_hash
            and self.validators.is_quorum(vote_set.power_for(vote.block_hash))
        ):
            self._commit_candidates.add((vote.round, vote.block_hash))

    def _note_round(self, validator: bytes, round_: int) -> None:
        if round_ > self._max_round.get(validator, -1):
            self._max_round[validator] = round_
            self._max_seen_round = max(self._max_seen_round, round_)

    def _report_equivocation(self, first: Vote, second: Vote) -> None:
        key = (first.validator, first.round, first.type)
        if key in self._evidence_seen:
            return
        self._evidence_seen.add(key)
        self._out.append(Evidence(first, second))
        self._keep_evidence(DuplicateVote.make(first, second))  # both votes already verified

    def _on_evidence(self, evidence: DuplicateVote) -> None:
        """Evidence from outside: kept for proposing when it proves equivocation here."""
        if self._pending_offence(evidence):
            return
        if evidence.check(self.validators, self.chain_id, self._verifier) == Code.OK:
            self._keep_evidence(evidence)

    def _pending_offence(self, evidence: DuplicateVote) -> bool:
        """A piece for the same (height, validator) is pending: one offence is proposed once."""
        return any(k[:2] == evidence.offence for k in self._pending_evidence)

    def _expired(self, offence_height: int) -> bool:
        """Evidence of an offence at ``offence_height`` is too old for this height's block."""
        return bool(self.height) and expired(offence_height, self.height, self.evidence_max_age)

    def _keep_evidence(self, evidence: DuplicateVote) -> None:
        pending = self._pending_evidence
        if self._pending_offence(evidence) or self._expired(evidence.height):
            return
        if len(pending) >= MAX_PENDING_EVIDENCE:
            newest = max(pending)
            if evidence.key > newest:
                return
            del pending[newest]
        pending[evidence.key] = evidence

    def _on_higher(
        self, signer: bytes, height: int, message: Proposal | Vote, verified: bool
    ) -> None:
        """A message from a later height: buffer the next height's, and notice lagging."""
        if not self._higher_is_news(signer, height, message):
            return  # nothing new: skip the signature check
        next_height = self._buffers(height, message)
        if not verified:
            if isinstance(message, Vote):
                if not self._signed(message):
                    return
            elif message.proposer != self.validators.proposer(
                message.height, message.round
            ) or not self._signed(message):
                return
        if next_height:
            self._future_keys.add(_future_key(message))
            if isinstance(message, Proposal):
                self._future_proposals[message.round] = (
                    self._future_proposals.get(message.round, 0) + 1
                )
            event: ProposalReceived | VoteReceived = (
                VoteReceived(message, self._now)
                if isinstance(message, Vote)
                else ProposalReceived(message, self._now)
            )
            self._future.append((event, True))
        if height > self._higher.get(signer, 0):
            self._higher[signer] = height
        if self._decision is None and not self._sync_requested:
            ahead = sum(self.validators.power_of(k) for k in self._higher)
            if self.validators.is_one_third(ahead):
                # Some honest validator has moved past this height: fetch its blocks.
                self._sync_requested = True
                self._out.append(RequestSync(self.height, self._seen_height()))

    def _buffers(self, height: int, message: Proposal | Vote) -> bool:
        """A later height's message is kept for Start: the next height's, not buffered yet,
        within the buffer's bounds."""
        return (
            height == self.height + 1
            and _future_key(message) not in self._future_keys
            and len(self._future) < self.config.max_future_messages
            and (not isinstance(message, Proposal) or self._may_buffer_proposal(message))
        )

    def _higher_is_news(self, signer: bytes, height: int, message: Proposal | Vote) -> bool:
        """A later height's message tells something (it is buffered, or its signer reached
        a height not seen from it before): only then is its signature checked."""
        return signer in self.validators and (
            self._buffers(height, message) or height > self._higher.get(signer, 0)
        )

    def _may_buffer_proposal(self, proposal: Proposal) -> bool:
        """Next-height proposals are large: keep only early rounds, few per round."""
        return (
            proposal.round <= self.config.round_lookahead
            and self._future_proposals.get(proposal.round, 0) < MAX_PROPOSALS_PER_ROUND
        )

    def _seen_height(self) -> int:
        """The highest height that validators with more than 1/3 of the power have reached
        (so one byzantine validator cannot inflate it); our next height if none has."""
        power = 0
        ranked = sorted(self._higher.items(), key=lambda item: (-item[1], item[0]))
        for validator, height in ranked:
            power += self.validators.power_of(validator)
            if self.validators.is_one_third(power):
                return height
        return self.height + 1

    def _on_timeout(self, event: TimeoutFired) -> None:
        if event.height != self.height or self._decision is not None:
            return
        same_round = event.round == self.round
        if event.step == TimeoutStep.PROPOSE:
            if same_round and self.step == RoundStep.PROPOSE and not self._waiting_txs:
                self._cast_prevote(NIL)  # line 57
        elif event.step == TimeoutStep.PREVOTE:
            if same_round and self.step == RoundStep.PREVOTE:
                self._cast_precommit(NIL)  # line 61
        elif event.step == TimeoutStep.PRECOMMIT:
            if same_round:
                self._start_round(self.round + 1)  # line 65
        elif event.step == TimeoutStep.NEW_HEIGHT:
            if self.step == RoundStep.NEW_HEIGHT:
                self._start_round(0)
        elif event.step == TimeoutStep.WAIT_TXS:
            if same_round and self.step == RoundStep.PROPOSE and self._waiting_txs:
                self._stop_waiting()
        elif event.step == TimeoutStep.REBROADCAST:
            self._rebroadcast()

    def _rebroadcast(self) -> None:
        """Gossip what peers may have lost: our proposal and votes of this round, and the
        prevotes that justify a proof of lock (our valid and locked values, the POL of
        this round's proposals), including other validators' votes. Relaying the latter
        is what Tendermint's liveness argument assumes: a byzantine validator may have
        sent its POL prevote only to some nodes, and without relaying, the nodes that
        missed it could never accept the re-proposed block (lines 28-33)."""
        proposal = self._own_proposals.get(self.round)
        if proposal is not None and not self._everyone_prevoted(self.round, proposal.block_hash):
            self._out.append(BroadcastProposal(proposal))
        for vote_type in (VoteType.PREVOTE, VoteType.PRECOMMIT):
            vote = self._own_votes.get((self.round, vote_type))
            if vote is not None:
                self._out.append(BroadcastVote(vote))
        polkas = {(self._valid_round, self._valid_hash), (self._locked_round, self._locked_hash)}
        polkas.update((p.pol_round, p.block_hash) for p in self._proposals.get(self.round, []))
        for round_, block_hash in sorted(polkas):
            if 0 <= round_ < self.round or (round_ == self.round and block_hash):
                for vote in self._votes.get(round_, VoteType.PREVOTE).votes_for(block_hash):
                    if vote is not self._own_votes.get((self.round, VoteType.PREVOTE)):
                        self._out.append(BroadcastVote(vote))
        self._retry_sync()
        self._schedule(TimeoutStep.REBROADCAST, 0)

    def _retry_sync(self) -> None:
        """Rebroadcast tick: ask for blocks again while validators claim later heights.

        Validators with more than 1/3 of the power ahead include an honest one: this node
        is behind for certain, so it asks at every tick until it catches up (a sync that
        found nothing may have asked before the blocks were stored, or peers that did not
        hold them). A smaller set ahead may be one honest validator that got the commit
        we missed, or a byzantine one claiming a height nobody can serve: ask only when
        one of them is due by its back-off (consensus/syncbackoff.py), so one far-future
        vote costs about log2(T) requests over T ticks (then one per
        ``MAX_BACKOFF_TICKS``), not one per tick."""
        if not self._higher:
            return
        ahead = sum(self.validators.power_of(k) for k in self._higher)
        if self.validators.is_one_third(ahead) or self._sync_backoff.due(self._higher):
            self._out.append(RequestSync(self.height, self._seen_height()))

    def _everyone_prevoted(self, round_: int, block_hash: bytes) -> bool:
        """Every validator prevoted for ``block_hash`` in ``round_``, so every one of them
        holds the proposal: re-sending it (a 5,000-tx proposal is ~0.75 MB per peer, and
        on a saturated devnet a height can outlast the rebroadcast interval) would only
        cost every node a transfer and a decode."""
        return len(self._votes.get(round_, VoteType.PREVOTE).votes_for(block_hash)) == len(self.validators)

    def _on_txs_ready(self) -> None:
        self._txs_ready = True
        if self._waiting_txs and self.step == RoundStep.PROPOSE and self._decision is None:
            self._stop_waiting()

    def _on_synced_block(self, block: Block, certificate: CommitCertificate) -> None:
        """Block sync: a certified block for the current height is final without voting."""
        if self._decision is not None or block.height != self.height:
            return
        if certificate.height != self.height or certificate.block_hash != block.hash:
            return
        if not self._header_valid(block, proposable=False) or not block.body_matches():
            return
        if not certificate.verify(self.validators, self.chain_id, self._verifier):
            return
        self._blocks.setdefault(block.hash, block)
        self._decide(block, certificate)

    # ================================================================== the upon rules
    def _check_rules(self) -> None:
        """Apply the upon rules until none fires (each firing can enable another)."""
        while self.height and self._decision is None:
            if self._try_commit():
                return
            if self._try_round_skip():
                continue
            if self.step == RoundStep.NEW_HEIGHT:
                return
            fired = False
            if self.step == RoundStep.PROPOSE:
                fired = self._try_prevote()
            if self.step >= RoundStep.PREVOTE:
                self._maybe_schedule_prevote_timeout()
                fired = self._try_polka_for_block() or fired
            if self.step == RoundStep.PREVOTE:
                fired = self._try_polka_for_nil() or fired
            self._maybe_schedule_precommit_timeout()
            if not fired:
                return

    def _try_commit(self) -> bool:
        """Line 49: >2/3 precommits for a valid block in any round decide it."""
        for round_, block_hash in sorted(self._commit_candidates):
            block = self._blocks.get(block_hash)
            if block is None:
                if not self._sync_requested:
                    # The network decided a block we never received: fetch it with its certificate.
                    self._sync_requested = True
                    self._out.append(RequestSync(self.height, self.height))
                continue
            if not self._valid(block):
                continue
            precommits = self._votes.get(round_, VoteType.PRECOMMIT).votes_for(block_hash)
            self._decide(block, CommitCertificate.from_votes(precommits))
            return True
        return False

    def _try_round_skip(self) -> bool:
        """Line 55: validators with >1/3 power are past our round: join the highest such."""
        if self._max_seen_round <= self.round:
            return False
        power = 0
        ranked = sorted(self._max_round.items(), key=lambda item: (-item[1], item[0]))
        for validator, round_ in ranked:
            if round_ <= self.round:
                break
            power += self.validators.power_of(validator)
            if self.validators.is_one_third(power):
                self._start_round(round_)
                return True
        return False

    def _try_prevote(self) -> bool:
        """Lines 22-33: prevote on the round's proposal (or nil if invalid or locked out)."""
        proposals = self._proposals.get(self.round)
        if not proposals:
            return False
        proposal = proposals[0]
        block_hash = proposal.block_hash
        if proposal.pol_round == -1:
            ok = (
                self._valid(proposal.block)
                and self._timely(proposal.block)
                and (self._locked_round == -1 or self._locked_hash == block_hash)
            )
        else:
            pol_round = proposal.pol_round
            polka = self._votes.get(pol_round, VoteType.PREVOTE).power_for(block_hash)
            if not self.validators.is_quorum(polka):
                return False  # wait for the POL (or timeout_propose)
            ok = self._valid(proposal.block) and (
                self._locked_round <= pol_round or self._locked_hash == block_hash
            )
        self._cast_prevote(block_hash if ok else NIL)
        return True

    def _try_polka_for_block(self) -> bool:
        """Lines 36-43: >2/3 prevotes for a valid block: lock on it (if still prevoting) and
        remember it as the valid value."""
        if self._polka_block_done:
            return False
        block_hash = self._votes.get(self.round, VoteType.PREVOTE).quorum_hash(self.validators)
        if not block_hash:
            return False
        block = self._blocks.get(block_hash)
        if block is None or not self._valid(block):
            return False
        self._polka_block_done = True
        if self.step == RoundStep.PREVOTE:
            self._locked_round, self._locked_hash = self.round, block_hash
            self._cast_precommit(block_hash)
        self._valid_round, self._valid_hash = self.round, block_hash
        return True

    def _try_polka_for_nil(self) -> bool:
        """Lines 44-46: >2/3 prevotes for nil: precommit nil."""
        if self._votes.get(self.round, VoteType.PREVOTE).quorum_hash(self.validators) != NIL:
            return False
        self._cast_precommit(NIL)
        return True

    def _maybe_schedule_prevote_timeout(self) -> None:
        """Line 34: >2/3 prevotes of any kind while prevoting: start timeout_prevote."""
        if self._prevote_timeout_set or self.step != RoundStep.PREVOTE:
            return
        if self.validators.is_quorum(self._votes.get(self.round, VoteType.PREVOTE).total_power):
            self._prevote_timeout_set = True
            self._schedule(TimeoutStep.PREVOTE, self.round)

    def _maybe_schedule_precommit_timeout(self) -> None:
        """Line 47: >2/3 precommits of any kind: start timeout_precommit."""
        if self._precommit_timeout_set:
            return
        if self.validators.is_quorum(self._votes.get(self.round, VoteType.PRECOMMIT).total_power):
            self._precommit_timeout_set = True
            self._schedule(TimeoutStep.PRECOMMIT, self.round)

    # ================================================================== validity
    def _header_valid(self, block: Block, *, proposable: bool = True) -> bool:
        """Objective checks every honest node answers alike (no clock involved).

        ``proposable``: the block must fit a proposal at any round (``MAX_BLOCK_BYTES``).
        A certified block (block sync) is final and never proposed again, so it is held to
        the wire's bound only: a chain whose history holds a block valid before that cap
        stays syncable."""
        header = block.header
        return (
            header.chain_id == self.chain_id
            and header.height == self.height
            and header.prev_block_hash == self._prev_block_hash
            and header.prev_app_hash == self._prev_app_hash
            and header.time_ms > self._prev_time_ms
            and header.proposer == self.validators.proposer(self.height, header.round)
            # Protocol limits, not this node's config: validity must not differ between
            # honest nodes. Chain-specific limits belong in App.validate_block.
            # A block that leaves room for the widest round and pol_round can be re-proposed
            # at any round in a proposal every peer decodes (consensus/fields.py).
            and len(block.txs) <= MAX_BLOCK_TXS
            and (block.encodes_within(MAX_BLOCK_BYTES) if proposable
                 else sum(map(len, block.txs)) <= MAX_PROPOSAL_BYTES)
        )

    def _valid(self, block: Block) -> bool:
        """valid(v) of the paper: header checks plus the application's stateless check.

        Stored blocks already matched their txs_root, so the hash identifies the content
        and the answer is cached per hash for the height."""
        block_hash = block.hash
        answer = self._validity.get(block_hash)
        if answer is None:
            answer = (
                self._header_valid(block)
                and check_block_evidence(block.evidence, self.height, self.validators, self.chain_id,
                                         max_age=self.evidence_max_age, verifier=self._verifier)[0] == Code.OK
                and bool(self.app.validate_block(block))
            )
            self._validity[block_hash] = answer
        return answer

    def _timely(self, block: Block) -> bool:
        return block.header.time_ms <= self._now + self.config.max_clock_drift_ms

    # ================================================================== own messages
    def _cast_prevote(self, block_hash: bytes) -> None:
        self.step = RoundStep.PREVOTE
        self._waiting_txs = False
        self._wal(WalStep(self.height, self.round, RoundStep.PREVOTE), sync=False)
        self._send_vote(VoteType.PREVOTE, block_hash)

    def _cast_precommit(self, block_hash: bytes) -> None:
        self.step = RoundStep.PRECOMMIT
        self._wal(WalStep(self.height, self.round, RoundStep.PRECOMMIT), sync=False)
        self._send_vote(VoteType.PRECOMMIT, block_hash)

    def _send_vote(self, vote_type: VoteType, block_hash: bytes) -> None:
        """Sign, record, broadcast and count our vote, unless one exists for this
        (height, round, type): then re-send that one, whatever it voted for."""
        if self._key is None:
            return
        key = (self.round, vote_type)
        vote = self._own_votes.get(key)
        if vote is None:
            seen = self._votes.get(self.round, vote_type).get(self._me)
            if seen is not None:
                vote = seen  # our key's vote reached us from the network (an earlier run)
                self._wal(WalVote(vote), sync=True)
            else:
                vote = Vote.create(
                    self._key, self.chain_id, vote_type, self.height, self.round, block_hash
                )
                self._wal(WalVote(vote), sync=True)
            self._own_votes[key] = vote
        self._out.append(BroadcastVote(vote))
        if not self._votes.has(vote):
            self._add_vote(vote)

    def _decide(self, block: Block, certificate: CommitCertificate) -> None:
        for raw in block.evidence:  # committed: its offence no longer pending (a synced block's too)
            try:
                offence = DuplicateVote.decode(raw).offence
            except ValueError:
                continue
            for key in [k for k in self._pending_evidence if k[:2] == offence]:
                del self._pending_evidence[key]
        self._decision = block
        self.step = RoundStep.COMMITTED
        self._out.append(CommitBlock(block, certificate))
        self._wal(WalEndHeight(self.height), sync=True)

    # ================================================================== plumbing
    def _signed(self, message: Proposal | Vote) -> bool:
        """A peer's vote or proposal has a valid signature (through ``verifier``)."""
        if isinstance(message, Vote):
            item = (message.signature, message.sign_bytes(self.chain_id), message.validator)
        else:
            item = (message.signature, message.sign_bytes(self.chain_id), message.proposer)
        return self._verifier([item]) == 1

    def _wal(self, record: WalRecord, *, sync: bool) -> None:
        if self._key is not None:
            self._out.append(RecordWal(record, sync))

    def _schedule(self, step: TimeoutStep, round_: int) -> None:
        if step == TimeoutStep.REBROADCAST and self.config.rebroadcast_interval_ms == 0:
            return
        self._out.append(
            ScheduleTimeout(self.height, round_, step, self.config.timeout_ms(step, round_))
        )

    def _tick(self, now_ms: int) -> None:
        if now_ms > self._now:
            self._now = now_ms


def _future_key(message: Proposal | Vote) -> tuple[object, ...]:
    """Identity of a buffered message, so gossip repeats are buffered (and verified) once."""
    if isinstance(message, Vote):
        return (message.validator, message.round, int(message.type), message.block_hash)
    return (message.proposer, message.round, message.block_hash)
