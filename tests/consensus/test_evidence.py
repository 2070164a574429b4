"""Equivocation evidence: the record's check, its place in blocks, and the core's use of it."""

from __future__ import annotations

import hashlib

import pytest

from consensus import Block, ConsensusCore, ValidatorSet
from consensus.block import BlockHeader
from consensus.errors import MalformedMessage
from consensus.events import EvidenceReceived
from consensus.evidence import MAX_EVIDENCE_PER_BLOCK, DuplicateVote, check_block_evidence
from consensus.messages import Vote
from state.errors import Code
from state.keys import PrivateKey
from tests.consensus.helpers import (
    CHAIN,
    CONFIG,
    KEYS,
    PRECOMMIT,
    PREVOTE,
    VALSET,
    TestApp,
    block_for,
    feed_proposal,
    key_of,
    proposal_for,
    sent_proposals,
    sent_votes,
    start,
    vote,
)
from tests.consensus.sim import CHAIN_ID, Scenario, run
from tests.consensus.test_consensus_sim import assert_same_chain

H1 = hashlib.sha256(b"block one").digest()
H2 = hashlib.sha256(b"block two").digest()


def equivocation(index: int = 1, height: int = 1, round_: int = 0) -> DuplicateVote:
    return DuplicateVote.make(vote(index, PREVOTE, round_, H1, height), vote(index, PREVOTE, round_, H2, height))


# ------------------------------------------------------------------ the record's check
def test_valid_evidence_checks_and_has_one_encoding() -> None:
    ev = equivocation()
    assert ev.check(VALSET, CHAIN) == Code.OK
    swapped = DuplicateVote.make(ev.vote_b, ev.vote_a)
    assert swapped.encode() == ev.encode() and swapped.hash == ev.hash
    assert DuplicateVote.decode(ev.encode()) == ev
    nil_vs_block = DuplicateVote.make(vote(2, PRECOMMIT, 3, b""), vote(2, PRECOMMIT, 3, H1))
    assert nil_vs_block.check(VALSET, CHAIN) == Code.OK  # nil is a block id too


def test_forged_signature_is_refused() -> None:
    good = vote(1, PREVOTE, 0, H2)
    forged = Vote(good.type, good.height, good.round, good.block_hash, good.validator,
                  bytes(64 - 1) + b"\x01")
    ev = DuplicateVote.make(vote(1, PREVOTE, 0, H1), forged)
    assert ev.check(VALSET, CHAIN) == Code.BAD_SIGNATURE
    other_chain = DuplicateVote.make(vote(1, PREVOTE, 0, H1), Vote.create(KEYS[1], "other", PREVOTE, 1, 0, H2))
    assert other_chain.check(VALSET, CHAIN) == Code.BAD_SIGNATURE


def test_same_block_id_is_not_evidence() -> None:
    a = vote(1, PREVOTE, 0, H1)
    with pytest.raises(MalformedMessage):
        DuplicateVote.decode(DuplicateVote(a, a).encode())  # the decoder refuses it outright
    assert DuplicateVote(a, a).check(VALSET, CHAIN) == Code.EVIDENCE_NOT_CONFLICTING


def test_different_heights_rounds_types_or_validators_are_not_evidence() -> None:
    for b in (vote(1, PREVOTE, 0, H2, height=2), vote(1, PREVOTE, 1, H2), vote(1, PRECOMMIT, 0, H2),
              vote(2, PREVOTE, 0, H2)):
        assert DuplicateVote.make(vote(1, PREVOTE, 0, H1), b).check(VALSET, CHAIN) == Code.EVIDENCE_MISMATCH


def test_a_stranger_is_not_a_validator() -> None:
    stranger = PrivateKey(hashlib.sha256(b"stranger").digest())
    ev = DuplicateVote.make(Vote.create(stranger, CHAIN, PREVOTE, 1, 0, H1),
                            Vote.create(stranger, CHAIN, PREVOTE, 1, 0, H2))
    assert ev.check(VALSET, CHAIN) == Code.EVIDENCE_UNKNOWN_VALIDATOR


def test_block_evidence_list_rules() -> None:
    ev = equivocation(height=1)
    assert check_block_evidence((ev.encode(),), 2, VALSET, CHAIN) == (Code.OK, [ev])
    assert check_block_evidence((ev.encode(),), 1, VALSET, CHAIN)[0] == Code.EVIDENCE_TOO_NEW
    twin = DuplicateVote.make(vote(1, PREVOTE, 0, H1), vote(1, PREVOTE, 0, hashlib.sha256(b"3").digest()))
    assert check_block_evidence((ev.encode(), twin.encode()), 2, VALSET, CHAIN)[0] == Code.EVIDENCE_DUPLICATE
    assert check_block_evidence((b"\x01",), 2, VALSET, CHAIN)[0] == Code.MALFORMED
    many = tuple(equivocation(height=1, round_=r).encode() for r in range(MAX_EVIDENCE_PER_BLOCK + 1))
    assert check_block_evidence(many, 2, VALSET, CHAIN)[0] == Code.OVERSIZE


def test_one_offence_per_validator_and_height() -> None:
    """A validator equivocating in rounds 0 and 1 (or prevote and precommit) of one height
    committed one offence: a block with both pieces is refused, and a core that holds one
    keeps neither another round's piece nor it once a block committed either."""
    r0, r1 = equivocation(index=1, height=1, round_=0), equivocation(index=1, height=1, round_=1)
    pre = DuplicateVote.make(vote(1, PRECOMMIT, 0, H1), vote(1, PRECOMMIT, 0, H2))
    assert r0.offence == r1.offence == pre.offence == (1, KEYS[1].pubkey)
    for pair in ((r0, r1), (r0, pre)):
        assert check_block_evidence(tuple(e.encode() for e in pair), 2, VALSET, CHAIN)[0] == Code.EVIDENCE_DUPLICATE
    other = equivocation(index=2, height=1)  # another validator at that height: its own offence
    assert check_block_evidence((r0.encode(), other.encode()), 2, VALSET, CHAIN)[0] == Code.OK
    core = core_for(0)
    for e in (r0, r1, pre):
        core.handle(EvidenceReceived(e))
    assert core.pending_evidence == [r0]

    core, block = decide_height_2_with(r0, (r1.encode(),))  # round 1's proof
    assert core.decided == block and core.pending_evidence == []  # round 0's piece left with it


# ------------------------------------------------------------------ blocks
def test_a_block_without_evidence_encodes_as_before() -> None:
    block = block_for()
    assert len(block.to_list()) == 2 and len(block.header.to_list()) == 8
    assert Block.decode(block.encode()) == block and Block.decode(block.encode()).hash == block.hash


def test_evidence_is_committed_to_by_the_header() -> None:
    ev = equivocation()
    plain = block_for(height=2)
    with_ev = Block(BlockHeader(**{**{f: getattr(plain.header, f) for f in (
        "chain_id", "height", "round", "time_ms", "prev_block_hash", "prev_app_hash", "txs_root", "proposer")},
        "evidence_root": hashlib.sha256(b"x").digest()}), plain.txs, (ev.encode(),))
    assert not with_ev.body_matches()  # a root that is not the evidence's
    from consensus.block import make_block

    good = make_block(chain_id=CHAIN, height=2, round=0, time_ms=plain.header.time_ms,
                      prev_block_hash=plain.header.prev_block_hash, prev_app_hash=plain.header.prev_app_hash,
                      proposer=plain.header.proposer, txs=plain.txs, evidence=(ev.encode(),))
    assert good.body_matches() and good.hash != plain.hash
    again = Block.decode(good.encode())
    assert again == good and again.hash == good.hash and again.evidence == (ev.encode(),)
    stripped = Block(good.header, good.txs)  # a relay dropping the evidence
    assert not stripped.body_matches()


# ------------------------------------------------------------------ the core
def core_for(index: int) -> ConsensusCore:
    return ConsensusCore(CHAIN, VALSET, TestApp(), CONFIG, KEYS[index])


def test_proposer_includes_pending_evidence_of_earlier_heights() -> None:
    ev = equivocation(index=3, height=1)
    proposer = VALSET.proposer(2, 0)
    core = ConsensusCore(CHAIN, VALSET, TestApp(), CONFIG, key_of(proposer))
    core.handle(EvidenceReceived(ev))
    core.handle(EvidenceReceived(equivocation(index=3, height=2)))  # this height's: not yet
    assert len(core.pending_evidence) == 2
    (proposal,) = sent_proposals(start(core, height=2))
    assert proposal.block.evidence == (ev.encode(),) and proposal.block.body_matches()


def test_expired_evidence_is_neither_kept_nor_proposed_nor_valid() -> None:
    """With a max age of 2, height 1's evidence may go into blocks 2 and 3 only: a core
    holding it proposes it at 3, drops it when height 4 starts, does not take it again, and
    prevotes nil for a height-4 proposal that carries it."""
    from consensus.block import make_block

    ev = equivocation(index=3, height=1)
    for height, proposed in ((3, True), (4, False)):
        proposer = VALSET.proposer(height, 0)
        core = ConsensusCore(CHAIN, VALSET, TestApp(), CONFIG, key_of(proposer), evidence_max_age=2)
        core.handle(EvidenceReceived(ev))
        (proposal,) = sent_proposals(start(core, height=height))
        assert (proposal.block.evidence == (ev.encode(),)) == proposed
        assert (core.pending_evidence == [ev]) == proposed
        core.handle(EvidenceReceived(ev))
        assert (core.pending_evidence == [ev]) == proposed
    proposer = VALSET.proposer(4, 0)
    me = next(i for i, k in enumerate(KEYS) if k.pubkey != proposer)
    base = block_for(height=4)
    stale = make_block(chain_id=CHAIN, height=4, round=0, time_ms=base.header.time_ms,
                       prev_block_hash=base.header.prev_block_hash, prev_app_hash=base.header.prev_app_hash,
                       proposer=proposer, txs=base.txs, evidence=(ev.encode(),))
    for max_age, nil in ((2, True), (3, False)):
        core = ConsensusCore(CHAIN, VALSET, TestApp(), CONFIG, KEYS[me], evidence_max_age=max_age)
        start(core, height=4)
        (prevote,) = [v for v in sent_votes(feed_proposal(core, proposal_for(stale))) if v.type == PREVOTE]
        assert prevote.is_nil == nil


def test_forged_evidence_from_outside_is_dropped() -> None:
    core = core_for(0)
    start(core)
    bad = DuplicateVote.make(vote(1, PREVOTE, 0, H1), Vote(PREVOTE, 1, 0, H2, KEYS[1].pubkey, bytes(64)))
    core.handle(EvidenceReceived(bad))
    assert core.pending_evidence == []


def test_a_proposal_with_invalid_evidence_gets_a_nil_prevote() -> None:
    from consensus.block import make_block

    height = 2
    proposer = VALSET.proposer(height, 0)
    me = next(i for i, k in enumerate(KEYS) if k.pubkey != proposer)
    base = block_for(height=height)
    bad_ev = DuplicateVote.make(vote(1, PREVOTE, 0, H1), vote(1, PREVOTE, 0, H2))
    forged = DuplicateVote(bad_ev.vote_a, Vote(PREVOTE, 1, 0, H2, KEYS[1].pubkey, bytes(64)))
    for evidence, expect_nil in (((bad_ev.encode(),), False), ((forged.encode(),), True)):
        core = core_for(me)
        start(core, height=height)
        block = make_block(chain_id=CHAIN, height=height, round=0, time_ms=base.header.time_ms,
                           prev_block_hash=base.header.prev_block_hash, prev_app_hash=base.header.prev_app_hash,
                           proposer=proposer, txs=base.txs, evidence=evidence)
        (prevote,) = [v for v in sent_votes(feed_proposal(core, proposal_for(block))) if v.type == PREVOTE]
        assert prevote.is_nil == expect_nil


def decide_height_2_with(pending: DuplicateVote, evidence: tuple[bytes, ...]) -> tuple[ConsensusCore, Block]:
    """A validator (not the proposer) holding ``pending`` decides height 2's block, which
    carries ``evidence``: the core and the block."""
    from consensus.block import make_block
    from consensus.events import VoteReceived

    proposer = VALSET.proposer(2, 0)
    core = core_for(next(i for i, k in enumerate(KEYS) if k.pubkey != proposer))
    core.handle(EvidenceReceived(pending))
    start(core, height=2)
    base = block_for(height=2)
    block = make_block(chain_id=CHAIN, height=2, round=0, time_ms=base.header.time_ms,
                       prev_block_hash=base.header.prev_block_hash, prev_app_hash=base.header.prev_app_hash,
                       proposer=proposer, txs=base.txs, evidence=evidence)
    feed_proposal(core, proposal_for(block))
    for i in range(4):
        core.handle(VoteReceived(vote(i, PRECOMMIT, 0, block.hash, height=2), 0))
    return core, block


def test_decided_evidence_leaves_the_pending_set() -> None:
    ev = equivocation(index=3, height=1)
    core, block = decide_height_2_with(ev, (ev.encode(),))
    assert core.decided == block and core.pending_evidence == []


# ------------------------------------------------------------------ simulation
def test_an_equivocating_validator_ends_up_in_the_chain() -> None:
    result = run(Scenario(validators=4, seed=5, byzantine={2}, duration_ms=8000, drop_permille=20))
    assert_same_chain(result)
    byzantine = result.nodes[2].key
    assert byzantine is not None
    node = result.honest[0]
    committed = [(h, DuplicateVote.decode(raw)) for h in sorted(node.blocks) for raw in node.blocks[h][0].evidence]
    assert committed, "no block holds the equivocation evidence"
    validators = ValidatorSet([(n.key.pubkey, 1) for n in result.nodes if n.key is not None])
    for h, ev in committed:
        assert ev.validator == byzantine.pubkey and ev.height < h
        assert ev.check(validators, CHAIN_ID) == Code.OK
    keys = [ev.key for _, ev in committed]
    assert len(keys) == len(set(keys))  # each equivocation committed once
