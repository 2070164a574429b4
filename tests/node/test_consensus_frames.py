"""A peer's proposal or vote frame that no honest node sends is the peer's fault
(``BadFrame``, counted, repeat offenders banned) instead of loop time the core spends and
drops without a word (node/driver.py ``_must_be_sound``, ``_vote_must_be_sound``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from consensus.block import Block
from consensus.messages import Proposal, Vote, VoteType
from node.driver import PROPOSAL_TAG, VOTE_TAG, ConsensusDriver
from node.p2p import BadFrame
from state.keys import PrivateKey
from tests.consensus.helpers import (
    CHAIN,
    KEYS,
    block_for,
    make_core,
    not_proposer,
    proposal_for,
    start,
    vote,
)
from tests.harness import count_calls


def driver_at_height_1() -> tuple[Any, list[Any]]:
    core = make_core(None)
    start(core)
    driver: Any = ConsensusDriver.__new__(ConsensusDriver)
    driver.rt = SimpleNamespace(faults=SimpleNamespace(isolated=lambda: False))
    driver.core = core
    driver.bad_messages = 0
    fed: list[Any] = []

    def feed(event: Any, size: int = 0) -> None:
        fed.append(event)
        core.handle(event)

    driver.feed = feed
    return driver, fed


def frame(proposal: Proposal) -> bytes:
    return PROPOSAL_TAG + proposal.encode()


def test_a_proposal_whose_body_its_header_does_not_commit_to_is_the_sender_s_fault() -> None:
    """A byzantine proposer can sign one header and send it again and again with new
    bodies: each frame was decoded and its Merkle root computed (~0.3 s for a 4 MB block),
    then dropped, the peer never blamed."""
    driver, fed = driver_at_height_1()
    honest = proposal_for(block_for(1, 1, txs=[b"tx-%d" % i for i in range(8)]))
    swapped = Proposal(1, 1, -1, Block(honest.block.header, (*honest.block.txs[:-1], b"other")),
                       honest.proposer, honest.signature)
    for _ in range(3):
        with pytest.raises(BadFrame, match="does not commit"):
            driver.on_consensus_frame("byzantine", frame(swapped))
    assert driver.bad_messages == 3 and not fed
    driver.on_consensus_frame("proposer", frame(honest))  # the true body: taken
    assert len(fed) == 1 and not driver.core.checks_signature(honest)
    driver.on_consensus_frame("proposer", frame(honest))  # a rebroadcast: no check, the core drops it
    assert len(fed) == 2 and driver.bad_messages == 3


def test_forged_or_misattributed_proposals_are_the_sender_s_fault() -> None:
    driver, fed = driver_at_height_1()
    good = proposal_for(block_for(1, 0))
    forged = Proposal(1, 0, -1, good.block, good.proposer, bytes(64))  # any peer can claim a proposer's key
    with pytest.raises(BadFrame, match="bad signature"):
        driver.on_consensus_frame("keyless", frame(forged))
    wrong = proposal_for(block_for(1, 0), signer=not_proposer(1, 0))  # signed by a validator not proposing r0
    with pytest.raises(BadFrame, match="another validator"):
        driver.on_consensus_frame("byzantine", frame(wrong))
    next_height = proposal_for(block_for(2, 0, prev_hash=b"\x01" * 32))
    with pytest.raises(BadFrame, match="bad signature"):
        driver.on_consensus_frame("keyless", frame(Proposal(2, 0, -1, next_height.block, next_height.proposer,
                                                            bytes(64))))
    assert driver.bad_messages == 3 and not fed
    driver.on_consensus_frame("ahead", frame(next_height))  # the next height's, sound: buffered by the core
    far = proposal_for(block_for(9, 0, prev_hash=b"\x01" * 32))
    with pytest.raises(BadFrame, match="bad signature"):  # a later height: the core would check it, and note it
        driver.on_consensus_frame("keyless", frame(Proposal(9, 0, -1, far.block, far.proposer, bytes(64))))
    driver.on_consensus_frame("ahead", frame(far))
    assert len(fed) == 2 and driver.bad_messages == 4 and all(e.verified for e in fed)


def test_forged_votes_and_votes_of_non_validators_are_the_sender_s_fault() -> None:
    """A vote is ~150 bytes and its signature check ~60 us: a keyless peer sending forged
    votes of a validator's key (a new round or value each, so none is a repeat) kept a
    node's loop busy at a few MB/s, each dropped after the check, the peer never blamed."""
    driver, fed = driver_at_height_1()
    good = vote(0, VoteType.PREVOTE, 0, b"\x07" * 32)
    for round_ in range(3):
        forged = Vote(VoteType.PREVOTE, 1, round_, b"\x09" * 32, KEYS[1].pubkey, bytes(64))
        with pytest.raises(BadFrame, match="bad signature"):
            driver.on_consensus_frame("keyless", VOTE_TAG + forged.encode())
    outsider = Vote.create(PrivateKey(b"\x42" * 32), CHAIN, VoteType.PREVOTE, 1, 0, b"\x07" * 32)
    with pytest.raises(BadFrame, match="not a validator"):
        driver.on_consensus_frame("outsider", VOTE_TAG + outsider.encode())
    assert driver.bad_messages == 4 and not fed
    driver.on_consensus_frame("v0", VOTE_TAG + good.encode())
    assert not driver.core.checks_signature(good)
    driver.on_consensus_frame("relay", VOTE_TAG + good.encode())  # a repeat: not checked again, dropped
    driver.on_consensus_frame("v0", VOTE_TAG + vote(0, VoteType.PREVOTE, 0, b"\x07" * 32, height=2).encode())
    assert len(fed) == 3 and driver.bad_messages == 4


def test_the_core_never_checks_a_peer_s_signature_with_the_slow_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """``state.keys.verify`` answers a signature libsodium rejects in plain Python (~17 ms
    for a well-formed forged one): a peer's votes and proposals are checked by the driver
    with the batch verifier instead, and the core takes its answer."""
    import state.keys

    calls = count_calls(monkeypatch, state.keys, "verify")  # the core's default verifier's
    driver, fed = driver_at_height_1()
    good = vote(0, VoteType.PREVOTE, 0, b"\x07" * 32)
    flipped = Vote(VoteType.PREVOTE, 1, 1, b"\x07" * 32, KEYS[0].pubkey,
                   good.signature[:-1] + bytes([good.signature[-1] ^ 1]))
    with pytest.raises(BadFrame, match="bad signature"):
        driver.on_consensus_frame("keyless", VOTE_TAG + flipped.encode())
    driver.on_consensus_frame("v0", VOTE_TAG + good.encode())
    driver.on_consensus_frame("v0", VOTE_TAG + vote(0, VoteType.PRECOMMIT, 30, b"\x07" * 32).encode())  # far round
    driver.on_consensus_frame("proposer", frame(proposal_for(block_for(1, 0))))
    assert calls.n == 0 and [e.verified for e in fed] == [True, True, True]


def test_checks_signature_says_exactly_when_the_core_would_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver checks only what the core would (so a byzantine validator's repeats cost
    no more than they did): ``checks_signature`` must answer what ``handle`` does."""
    import copy

    import state.keys
    from consensus import ProposalReceived, VoteReceived

    calls = count_calls(monkeypatch, state.keys, "verify")  # the core's default verifier's
    core = make_core(None)
    start(core)
    b0 = block_for(1, 0)
    core.handle(ProposalReceived(proposal_for(b0), 0))
    core.handle(VoteReceived(vote(0, VoteType.PREVOTE, 0, b0.hash), 0))
    core.handle(VoteReceived(vote(1, VoteType.PREVOTE, 12, b0.hash), 0))  # far round, noted
    core.handle(VoteReceived(vote(2, VoteType.PREVOTE, 0, b0.hash, height=3), 0))  # a later height, noted
    messages: list[Proposal | Vote] = [
        proposal_for(b0), proposal_for(block_for(1, 1)), proposal_for(block_for(1, 20)),
        proposal_for(block_for(1, 0, txs=[b"other"])), proposal_for(block_for(2, 0, prev_hash=b"\x01" * 32)),
        vote(0, VoteType.PREVOTE, 0, b0.hash), vote(0, VoteType.PREVOTE, 0, b"\x05" * 32),
        vote(1, VoteType.PREVOTE, 12, b0.hash), vote(1, VoteType.PREVOTE, 13, b0.hash),
        vote(1, VoteType.PREVOTE, 5, b0.hash), vote(2, VoteType.PREVOTE, 0, b0.hash, height=3),
        vote(2, VoteType.PREVOTE, 0, b0.hash, height=2), vote(3, VoteType.PRECOMMIT, 0, b0.hash, height=4),
    ]
    answers = []
    for message in messages:
        trial = copy.deepcopy(core)
        calls.n = 0
        trial.handle(ProposalReceived(message, 0) if isinstance(message, Proposal) else VoteReceived(message, 0))
        answers.append((core.checks_signature(message), calls.n > 0))
    assert all(said == did for said, did in answers), answers
    assert [said for said, _ in answers].count(False) >= 3  # repeats and full rounds are not checked


def test_a_proposal_whose_evidence_has_a_forged_signature_is_the_sender_s_fault() -> None:
    """An honest proposer checked the evidence it includes: a block of this height with a
    forged evidence signature is its proposer's fault (the core would prevote nil, and the
    proposer could make every node check new forgeries, round after round). Evidence that
    is invalid for another reason is the core's to judge; valid evidence goes through."""
    from consensus.block import make_block
    from consensus.events import Start
    from consensus.evidence import DuplicateVote
    from tests.consensus.helpers import APP_HASH, NOW, PREV_TIME

    driver, fed = driver_at_height_1()
    core = driver.core
    prev = block_for(1)
    core.handle(Start(2, prev.hash, APP_HASH, PREV_TIME, NOW))
    good = DuplicateVote.make(vote(1, VoteType.PREVOTE, 0, b"\x01" * 32), vote(1, VoteType.PREVOTE, 0, b"\x02" * 32))
    forged = DuplicateVote(good.vote_a, Vote(VoteType.PREVOTE, 1, 0, b"\x02" * 32, KEYS[1].pubkey,
                                             good.vote_b.signature[:-1] + bytes([good.vote_b.signature[-1] ^ 1])))
    too_new = DuplicateVote.make(vote(1, VoteType.PREVOTE, 0, b"\x01" * 32, height=2),
                                 vote(1, VoteType.PREVOTE, 0, b"\x02" * 32, height=2))

    def proposal_with(evidence: DuplicateVote, round_: int) -> Proposal:
        block = make_block(chain_id=CHAIN, height=2, round=round_, time_ms=NOW, prev_block_hash=prev.hash,
                           prev_app_hash=APP_HASH, proposer=core.validators.proposer(2, round_), txs=(b"tx",),
                           evidence=(evidence.encode(),))
        return proposal_for(block)

    with pytest.raises(BadFrame, match="forged evidence"):
        driver.on_consensus_frame("byzantine", frame(proposal_with(forged, 0)))
    assert not fed and driver.bad_messages == 1
    driver.on_consensus_frame("proposer", frame(proposal_with(too_new, 0)))
    driver.on_consensus_frame("proposer", frame(proposal_with(good, 1)))
    assert len(fed) == 2 and driver.bad_messages == 1
