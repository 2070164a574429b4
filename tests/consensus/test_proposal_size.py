"""Any valid block can be re-proposed at any round within the proposal size limit.

A proposal's round and pol_round take 1 byte each below 128 and up to 5 at ``MAX_ROUND``.
A byzantine proposer's round-0 proposal of exactly ``MAX_PROPOSAL_BYTES`` was valid, and an
honest validator that locked on its block and re-proposed it at round 128 or later sent a
proposal a few bytes over the limit: every peer refused the frame as malformed and counted
it against the honest sender. A valid block now leaves room for the widest fields."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import CommitBlock, CommitCertificate, SyncedBlock
from consensus.block import Block
from consensus.config import ConsensusConfig
from consensus.fields import (
    MAX_BLOCK_BYTES,
    MAX_PROPOSAL_BYTES,
    MAX_ROUND,
    MAX_TX_BYTES,
    PROPOSAL_FIELDS_MAX_BYTES,
)
from consensus.messages import NIL, Proposal

from .helpers import (
    PRECOMMIT,
    TestApp,
    block_for,
    feed_proposal,
    make_core,
    not_proposer,
    of_type,
    proposal_for,
    proposer_index,
    sent_proposals,
    sent_votes,
    start,
    vote,
)

_BIG = [bytes([i]) * MAX_TX_BYTES for i in range(4)]


def block_of_size(size: int) -> Block:
    """A height-1, round-0 block whose encoding is exactly ``size`` bytes (4 MB and up)."""
    filler = 1000  # a bin16 item: one more byte of it is one more byte of block
    block = block_for(txs=[*_BIG, b"f" * filler])
    block = block_for(txs=[*_BIG, b"f" * (filler + size - len(block.encode()))])
    assert len(block.encode()) == size
    return block


def prevote_of(block: Block) -> bytes:
    core = make_core(not_proposer(1, 0))
    start(core)
    (prevote,) = [v for v in sent_votes(feed_proposal(core, proposal_for(block))) if v.round == 0]
    return prevote.block_hash


def test_the_bound_is_the_widest_encoding_of_the_proposal_fields() -> None:
    # array header 1, height <= 2**63-1: 9, round and pol_round <= 2**31-1: 5 each,
    # proposer 2 + 32, signature 2 + 64
    assert PROPOSAL_FIELDS_MAX_BYTES == 1 + 9 + 5 + 5 + 34 + 66
    assert MAX_BLOCK_BYTES == MAX_PROPOSAL_BYTES - PROPOSAL_FIELDS_MAX_BYTES


def test_a_block_filling_a_round_0_proposal_is_refused() -> None:
    """The byzantine proposal decodes (it is within the wire limit), but its block is not
    valid: a proposal of it at a late round would not be."""
    block = block_of_size(MAX_PROPOSAL_BYTES - 104)  # the fields of a round-0, pol-less proposal at h=1
    proposal = proposal_for(block)
    assert len(proposal.encode()) == MAX_PROPOSAL_BYTES
    assert Proposal.decode(proposal.encode()) == proposal
    late = proposal_for(block, round_=MAX_ROUND, pol_round=MAX_ROUND - 1)
    assert len(late.encode()) == MAX_PROPOSAL_BYTES + 8  # what re-proposing it would have sent
    assert prevote_of(block) == NIL


@pytest.mark.parametrize("size,valid", [(MAX_BLOCK_BYTES, True), (MAX_BLOCK_BYTES + 1, False)])
def test_a_block_at_the_cap_is_valid_and_fits_a_proposal_at_every_round(size: int, valid: bool) -> None:
    block = block_of_size(size)
    assert prevote_of(block) == (block.hash if valid else NIL)
    if valid:
        for round_ in (1, 127, 128, 255, 256, 65_535, 65_536, MAX_ROUND):
            for pol_round in (-1, 0, round_ - 1):
                encoded = proposal_for(block, round_=round_, pol_round=pol_round).encode()
                assert len(encoded) <= MAX_PROPOSAL_BYTES, (round_, pol_round)
        assert Proposal.decode(proposal_for(block, round_=MAX_ROUND, pol_round=MAX_ROUND - 1).encode()).block == block


def test_an_own_block_never_passes_the_cap_whatever_the_config_says() -> None:
    """``max_block_bytes`` above the protocol's cap: the proposer's block is cut to the cap
    (it took all five 1 MB transactions, a block no node, itself included, prevoted)."""
    config = ConsensusConfig(max_block_bytes=2 * MAX_PROPOSAL_BYTES, rebroadcast_interval_ms=0)
    me = proposer_index(1, 0)
    app = TestApp([*_BIG, b"\x09" * MAX_TX_BYTES])
    actions = start(make_core(me, config=config, app=app))
    (proposal,) = sent_proposals(actions)
    assert proposal.block.txs == tuple(_BIG)
    assert len(proposal.block.encode()) <= MAX_BLOCK_BYTES
    (prevote,) = sent_votes(actions)
    assert prevote.block_hash == proposal.block.hash


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=70_000), max_size=20), st.integers(-2000, 2000))
def test_encodes_within_answers_as_the_encoding_does(txs: list[bytes], slack: int) -> None:
    block = block_for(txs=txs)
    size = len(block.encode())
    assert block.encodes_within(size + slack) == (slack >= 0)


def test_a_certified_block_over_the_cap_still_syncs() -> None:
    """A block valid before the cap (filling a round-0 proposal) and certified by a quorum
    is final: block sync commits it (it is never proposed again), so such a history stays
    syncable."""
    block = block_of_size(MAX_PROPOSAL_BYTES - 104)
    me = not_proposer(1, 0)
    cert = CommitCertificate.from_votes([vote(i, PRECOMMIT, 0, block.hash) for i in range(4) if i != me])
    core = make_core(me)
    start(core)
    (commit,) = of_type(core.handle(SyncedBlock(block, cert)), CommitBlock)
    assert commit.block == block
