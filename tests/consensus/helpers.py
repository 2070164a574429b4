"""Building blocks for the consensus unit tests: four (or more) deterministic validator
keys, signed votes and proposals from any of them, and small action filters."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

from consensus import (
    Action,
    Block,
    BroadcastProposal,
    BroadcastVote,
    ConsensusConfig,
    ConsensusCore,
    Proposal,
    ProposalReceived,
    RecordWal,
    ScheduleTimeout,
    Start,
    ValidatorSet,
    Vote,
    VoteReceived,
    VoteType,
    make_block,
)
from consensus.steps import TimeoutStep
from state.keys import PrefixVerifier, PrivateKey, valid_prefix

CHAIN = "test-chain"
KEYS = [PrivateKey(hashlib.sha256(b"validator-%d" % i).digest()) for i in range(4)]
VALSET = ValidatorSet([(k.pubkey, 1) for k in KEYS])
APP_HASH = hashlib.sha256(b"app-hash-0").digest()
PREV_TIME = 1_000_000
NOW = PREV_TIME + 1_000
PREVOTE = VoteType.PREVOTE
PRECOMMIT = VoteType.PRECOMMIT
CONFIG = ConsensusConfig(rebroadcast_interval_ms=0)

A = TypeVar("A")


class TestApp:
    """Deterministic app: proposes ``txs``; rejects any block with a tx starting with b"bad"."""

    __test__ = False  # not a test class

    def __init__(self, txs: Sequence[bytes] = ()) -> None:
        self.txs = list(txs)
        self.validated = 0

    def propose_txs(self, height: int) -> list[bytes]:
        return list(self.txs)

    def validate_block(self, block: Block) -> bool:
        self.validated += 1
        return not any(tx.startswith(b"bad") for tx in block.txs)


def key_of(pubkey: bytes, keys: Sequence[PrivateKey] = KEYS) -> PrivateKey:
    return next(k for k in keys if k.pubkey == pubkey)


def index_of(pubkey: bytes, keys: Sequence[PrivateKey] = KEYS) -> int:
    return next(i for i, k in enumerate(keys) if k.pubkey == pubkey)


def proposer_index(height: int, round_: int, valset: ValidatorSet = VALSET) -> int:
    return index_of(valset.proposer(height, round_))


def not_proposer(height: int, round_: int) -> int:
    """A validator index that does not propose (height, round)."""
    return next(i for i in range(len(KEYS)) if i != proposer_index(height, round_))


def make_core(
    index: int | None,
    *,
    config: ConsensusConfig = CONFIG,
    app: TestApp | None = None,
    valset: ValidatorSet = VALSET,
    keys: Sequence[PrivateKey] = KEYS,
    verifier: PrefixVerifier = valid_prefix,
) -> ConsensusCore:
    key = keys[index] if index is not None else None
    return ConsensusCore(CHAIN, valset, app if app is not None else TestApp(), config, key, verifier=verifier)


def start(core: ConsensusCore, height: int = 1, now: int = NOW) -> list[Action]:
    prev_hash = b"" if height == 1 else hashlib.sha256(b"block-%d" % (height - 1)).digest()
    return core.handle(Start(height, prev_hash, APP_HASH, PREV_TIME, now))


def block_for(
    height: int = 1,
    round_: int = 0,
    *,
    txs: Sequence[bytes] = (b"tx-1",),
    time_ms: int = NOW,
    proposer: bytes | None = None,
    prev_hash: bytes | None = None,
    app_hash: bytes = APP_HASH,
    chain_id: str = CHAIN,
) -> Block:
    if prev_hash is None:
        prev_hash = b"" if height == 1 else hashlib.sha256(b"block-%d" % (height - 1)).digest()
    return make_block(
        chain_id=chain_id,
        height=height,
        round=round_,
        time_ms=time_ms,
        prev_block_hash=prev_hash,
        prev_app_hash=app_hash,
        proposer=proposer if proposer is not None else VALSET.proposer(height, round_),
        txs=tuple(txs),
    )


def proposal_for(
    block: Block, round_: int | None = None, pol_round: int = -1, signer: int | None = None
) -> Proposal:
    round_ = block.header.round if round_ is None else round_
    height = block.height
    key = KEYS[signer] if signer is not None else key_of(VALSET.proposer(height, round_))
    return Proposal.create(key, CHAIN, height, round_, pol_round, block)


def vote(index: int, vote_type: VoteType, round_: int, block_hash: bytes, height: int = 1) -> Vote:
    return Vote.create(KEYS[index], CHAIN, vote_type, height, round_, block_hash)


def feed_proposal(core: ConsensusCore, proposal: Proposal, now: int = NOW) -> list[Action]:
    return core.handle(ProposalReceived(proposal, now))


def feed_votes(
    core: ConsensusCore,
    indices: Sequence[int],
    vote_type: VoteType,
    round_: int,
    block_hash: bytes,
    height: int = 1,
    now: int = NOW,
) -> list[Action]:
    out: list[Action] = []
    for i in indices:
        out += core.handle(VoteReceived(vote(i, vote_type, round_, block_hash, height), now))
    return out


def of_type(actions: Sequence[object], cls: type[A]) -> list[A]:
    return [a for a in actions if isinstance(a, cls)]


def sent_votes(actions: Sequence[object]) -> list[Vote]:
    return [a.vote for a in of_type(actions, BroadcastVote)]


def sent_proposals(actions: Sequence[object]) -> list[Proposal]:
    return [a.proposal for a in of_type(actions, BroadcastProposal)]


def timeouts(actions: Sequence[object], step: TimeoutStep | None = None) -> list[ScheduleTimeout]:
    return [a for a in of_type(actions, ScheduleTimeout) if step is None or a.step == step]


def wal_records(actions: Sequence[object]) -> list[object]:
    return [a.record for a in of_type(actions, RecordWal)]


def others(index: int, count: int = 2) -> list[int]:
    """``count`` validator indices other than ``index``."""
    return [i for i in range(len(KEYS)) if i != index][:count]


def quiet_validator(*rounds: int, height: int = 1) -> int:
    """A validator index that proposes none of ``rounds`` at ``height``."""
    busy = {proposer_index(height, r) for r in rounds}
    return next(i for i in range(len(KEYS)) if i not in busy)
