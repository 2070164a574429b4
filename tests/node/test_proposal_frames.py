"""A peer's proposal frame that no honest node sends is the peer's fault (``BadFrame``,
counted, repeat offenders banned) instead of loop time the core spends and drops without a
word (node/driver.py ``_must_be_sound``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from consensus.block import Block
from consensus.messages import Proposal
from node.driver import PROPOSAL_TAG, ConsensusDriver
from node.p2p import BadFrame
from tests.consensus.helpers import block_for, make_core, not_proposer, proposal_for, start


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
    assert len(fed) == 1 and driver.core.holds_block(honest.block_hash)
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
    driver.on_consensus_frame("ahead", frame(Proposal(9, 0, -1, far.block, far.proposer, bytes(64))))
    assert len(fed) == 2 and driver.bad_messages == 3  # a far height: the core only notes it (and checks it)
