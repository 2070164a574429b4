"""Events the driver feeds into ``ConsensusCore.handle``.

Time enters the core only here, as integer milliseconds (``now_ms``) read by the driver;
the core never reads a clock, so a simulator can drive it with a virtual one.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.block import Block
from consensus.certificate import CommitCertificate
from consensus.evidence import DuplicateVote
from consensus.messages import Proposal, Vote
from consensus.steps import TimeoutStep


@dataclass(frozen=True, slots=True)
class Start:
    """Begin ``height``: at boot (after ``restore``) and after each committed block has been
    applied. ``prev_*`` describe block ``height - 1`` (genesis values at height 1:
    ``prev_block_hash=b""``, the genesis app hash and the genesis time)."""

    height: int
    prev_block_hash: bytes
    prev_app_hash: bytes
    prev_block_time_ms: int
    now_ms: int


@dataclass(frozen=True, slots=True)
class ProposalReceived:
    """A peer's proposal. ``verified``: the host checked its signature under the chain's
    rule already (node/driver.py does, with the batch verifier), so the core does not."""

    proposal: Proposal
    now_ms: int
    verified: bool = False


@dataclass(frozen=True, slots=True)
class VoteReceived:
    """A peer's vote; ``verified`` as for ``ProposalReceived``."""

    vote: Vote
    now_ms: int
    verified: bool = False


@dataclass(frozen=True, slots=True)
class TimeoutFired:
    """A timer from ``ScheduleTimeout`` went off (stale timers are ignored by the core)."""

    height: int
    round: int
    step: TimeoutStep
    now_ms: int


@dataclass(frozen=True, slots=True)
class TxsReady:
    """The mempool holds transactions (only matters with ``create_empty_blocks=False``).

    The driver sends it when transactions arrive and after Start if the mempool is not
    empty; the proposer then reaps them through ``App.propose_txs``."""

    now_ms: int


@dataclass(frozen=True, slots=True)
class SyncedBlock:
    """A block and its commit certificate fetched from a peer (block sync)."""

    block: Block
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class EvidenceReceived:
    """Equivocation evidence not yet committed, from a peer or from the node's evidence pool
    after a restart: the core checks it and, as proposer, includes it in a block."""

    evidence: DuplicateVote


Event = Start | ProposalReceived | VoteReceived | TimeoutFired | TxsReady | SyncedBlock | EvidenceReceived
