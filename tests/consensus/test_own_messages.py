"""``ConsensusCore.own_messages``: what the driver re-sends to a peer that reconnects."""

from __future__ import annotations

from consensus import Proposal, TimeoutFired, Vote
from consensus.steps import TimeoutStep
from tests.consensus.helpers import (
    NOW,
    PRECOMMIT,
    PREVOTE,
    make_core,
    not_proposer,
    proposer_index,
    sent_proposals,
    start,
)


def test_the_proposer_offers_its_proposal_and_prevote_of_this_round() -> None:
    core = make_core(proposer_index(1, 0))
    proposal = sent_proposals(start(core))[0]
    messages = core.own_messages()
    assert messages[0] == proposal
    votes = [m for m in messages if isinstance(m, Vote)]
    assert [(v.type, v.round, v.block_hash) for v in votes] == [(PREVOTE, 0, proposal.block_hash)]


def test_only_the_current_round_is_offered_and_reading_changes_nothing() -> None:
    core = make_core(not_proposer(1, 0))
    start(core)
    assert core.own_messages() == []  # nothing signed yet
    core.handle(TimeoutFired(1, 0, TimeoutStep.PROPOSE, NOW + 10_000))  # prevote nil
    core.handle(TimeoutFired(1, 0, TimeoutStep.PREVOTE, NOW + 20_000))
    round0 = core.own_messages()
    assert [(m.type, m.round) for m in round0 if isinstance(m, Vote)] == [(PREVOTE, 0), (PRECOMMIT, 0)]
    assert core.own_messages() == round0  # a read, not an action
    core.handle(TimeoutFired(1, 0, TimeoutStep.PRECOMMIT, NOW + 30_000))  # round 1
    assert all(m.round == 1 for m in core.own_messages())
    assert not any(isinstance(m, Proposal) and m.round == 0 for m in core.own_messages())
