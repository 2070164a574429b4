"""Actions ``ConsensusCore.handle`` returns; the driver performs them in list order.

Order matters: a ``RecordWal`` with ``sync=True`` precedes the broadcast of the message it
records, and the driver must make it durable before performing the next action.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.block import Block
from consensus.certificate import CommitCertificate
from consensus.messages import Proposal, Vote
from consensus.steps import TimeoutStep
from consensus.validators import ValidatorSet
from consensus.wal import WalRecord


@dataclass(frozen=True, slots=True)
class BroadcastProposal:
    proposal: Proposal


@dataclass(frozen=True, slots=True)
class BroadcastVote:
    """Send ``vote`` to all peers. Usually our own vote; on rebroadcast ticks the core also
    relays other validators' prevotes that justify a lock (gossip), so do not assume
    ``vote.validator`` is this node."""

    vote: Vote


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    """Deliver ``TimeoutFired(height, round, step, now)`` after ``delay_ms``."""

    height: int
    round: int
    step: TimeoutStep
    delay_ms: int


@dataclass(frozen=True, slots=True)
class CommitBlock:
    """Block ``block.height`` is final: store block + certificate, apply it, then Start the
    next height with the resulting app hash."""

    block: Block
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class RecordWal:
    """Append ``record`` to the WAL; ``sync=True`` means fsync before the next action."""

    record: WalRecord
    sync: bool = True


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two validly signed, conflicting votes by one validator for one (height, round, type)."""

    vote_a: Vote
    vote_b: Vote

    def verify(self, validators: ValidatorSet, chain_id: str) -> bool:
        """True when this proves equivocation; anyone holding the validator set can check."""
        a, b = self.vote_a, self.vote_b
        return (
            a.validator == b.validator
            and a.validator in validators
            and (a.type, a.height, a.round) == (b.type, b.height, b.round)
            and a.block_hash != b.block_hash
            and a.verify(chain_id)
            and b.verify(chain_id)
        )


@dataclass(frozen=True, slots=True)
class RequestSync:
    """This node is behind: fetch blocks (with certificates) from ``height`` on and feed them
    back as ``SyncedBlock`` events. ``seen_height`` is the highest height seen in valid votes."""

    height: int
    seen_height: int


Action = (
    BroadcastProposal
    | BroadcastVote
    | ScheduleTimeout
    | CommitBlock
    | RecordWal
    | Evidence
    | RequestSync
)
