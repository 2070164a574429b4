"""One named test per rule of the Tendermint algorithm as implemented by ConsensusCore."""

from __future__ import annotations

import hashlib

from consensus import (
    BroadcastProposal,
    BroadcastVote,
    CommitBlock,
    ConsensusConfig,
    ConsensusCore,
    Evidence,
    ProposalReceived,
    RecordWal,
    RequestSync,
    RoundStep,
    TimeoutFired,
    TimeoutStep,
    TxsReady,
    Vote,
    VoteReceived,
    WalProposal,
    WalVote,
)
from consensus.messages import NIL
from state.keys import PrivateKey

from .helpers import (
    APP_HASH,
    CHAIN,
    CONFIG,
    KEYS,
    NOW,
    PRECOMMIT,
    PREV_TIME,
    PREVOTE,
    VALSET,
    TestApp,
    block_for,
    feed_proposal,
    feed_votes,
    make_core,
    not_proposer,
    of_type,
    others,
    proposal_for,
    proposer_index,
    quiet_validator,
    sent_proposals,
    sent_votes,
    start,
    timeouts,
    vote,
)


def prevoted(actions: list[object]) -> bytes | None:
    votes = [v for v in sent_votes(actions) if v.type == PREVOTE]
    return votes[-1].block_hash if votes else None


def precommitted(actions: list[object]) -> bytes | None:
    votes = [v for v in sent_votes(actions) if v.type == PRECOMMIT]
    return votes[-1].block_hash if votes else None


def skip_to_round(core_index: int, core: ConsensusCore, round_: int) -> list[object]:
    """Two other validators (more than 1/3 of the power) vote nil in ``round_``."""
    return list(feed_votes(core, others(core_index, 2), PREVOTE, round_, NIL))


# ----------------------------------------------------------------------------- proposing
def test_proposer_records_wal_before_broadcasting_proposal_and_prevote() -> None:
    me = proposer_index(1, 0)
    core = make_core(me, app=TestApp([b"tx-a", b"tx-b"]))
    actions = start(core)
    kinds = [type(a).__name__ for a in actions]
    proposal = sent_proposals(actions)[0]
    assert proposal.block.txs == (b"tx-a", b"tx-b")
    assert proposal.pol_round == -1 and proposal.verify(CHAIN)
    wal_proposal = next(
        i
        for i, a in enumerate(actions)
        if isinstance(a, RecordWal) and isinstance(a.record, WalProposal)
    )
    wal_vote = next(
        i
        for i, a in enumerate(actions)
        if isinstance(a, RecordWal) and isinstance(a.record, WalVote)
    )
    assert actions[wal_proposal].sync and actions[wal_vote].sync  # type: ignore[union-attr]
    assert wal_proposal < kinds.index("BroadcastProposal")
    assert wal_vote < kinds.index("BroadcastVote")
    assert prevoted(actions) == proposal.block_hash  # the proposer prevotes its own block


def test_non_proposer_waits_then_prevotes_nil_on_propose_timeout() -> None:
    me = not_proposer(1, 0)
    core = make_core(me)
    actions = start(core)
    (timer,) = timeouts(actions, TimeoutStep.PROPOSE)
    assert (timer.height, timer.round, timer.delay_ms) == (1, 0, CONFIG.timeout_propose_ms)
    assert not sent_votes(actions)
    actions = core.handle(TimeoutFired(1, 0, TimeoutStep.PROPOSE, NOW + 3000))
    assert prevoted(actions) == NIL
    assert core.step == RoundStep.PREVOTE


def test_prevote_for_valid_proposal() -> None:
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    block = block_for()
    assert prevoted(feed_proposal(core, proposal_for(block))) == block.hash


def test_prevote_nil_when_application_rejects_block() -> None:
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    block = block_for(txs=[b"bad-tx"])
    assert prevoted(feed_proposal(core, proposal_for(block))) == NIL


def test_prevote_nil_on_wrong_header_fields() -> None:
    proposer = VALSET.proposer(1, 0)
    wrong_proposer = next(k.pubkey for k in KEYS if k.pubkey != proposer)
    cases = {
        "prev_app_hash": block_for(app_hash=hashlib.sha256(b"other").digest()),
        "prev_block_hash": block_for(height=2, prev_hash=hashlib.sha256(b"fork").digest()),
        "chain_id": block_for(chain_id="other-chain"),
        "header proposer": block_for(proposer=wrong_proposer),
    }
    for name, block in cases.items():
        me = not_proposer(block.height, 0)
        core = make_core(me)
        start(core, height=block.height)
        actions = feed_proposal(core, proposal_for(block, signer=proposer_index(block.height, 0)))
        assert prevoted(actions) == NIL, name


def test_proposal_with_swapped_transactions_is_ignored() -> None:
    """The signature covers the header; a body not matching txs_root must not be stored."""
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    good = proposal_for(block_for(txs=[b"tx-1"]))
    tampered_block = type(good.block)(good.block.header, (b"tx-evil",))
    tampered = type(good)(1, 0, -1, tampered_block, good.proposer, good.signature)
    assert tampered.verify(CHAIN)  # still a valid signature
    assert not sent_votes(feed_proposal(core, tampered))
    assert prevoted(feed_proposal(core, good)) == good.block_hash


# ----------------------------------------------------------------------------- block time
def test_proposer_block_time_is_max_of_now_and_prev_plus_one() -> None:
    me = proposer_index(1, 0)
    late_clock = make_core(me)
    proposal = sent_proposals(start(late_clock, now=PREV_TIME - 500))[0]
    assert proposal.block.header.time_ms == PREV_TIME + 1
    normal = make_core(me)
    assert sent_proposals(start(normal, now=NOW))[0].block.header.time_ms == NOW


def test_block_time_not_after_previous_block_gets_nil() -> None:
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    block = block_for(time_ms=PREV_TIME)
    assert prevoted(feed_proposal(core, proposal_for(block))) == NIL


def test_block_time_too_far_ahead_gets_nil_but_drift_limit_is_inclusive() -> None:
    drift = CONFIG.max_clock_drift_ms
    me = not_proposer(1, 0)
    ahead = make_core(me)
    start(ahead)
    block = block_for(time_ms=NOW + drift + 1)
    assert prevoted(feed_proposal(ahead, proposal_for(block), now=NOW)) == NIL
    edge = make_core(me)
    start(edge)
    block = block_for(time_ms=NOW + drift)
    assert prevoted(feed_proposal(edge, proposal_for(block), now=NOW)) == block.hash


# ----------------------------------------------------------------------------- polka rules
def test_polka_for_block_locks_and_precommits() -> None:
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    block = block_for()
    feed_proposal(core, proposal_for(block))
    actions = feed_votes(core, others(me, 2), PREVOTE, 0, block.hash)
    assert precommitted(actions) == block.hash
    assert core.locked == (0, block.hash)
    assert core.valid == (0, block.hash)
    assert core.step == RoundStep.PRECOMMIT


def test_polka_for_nil_precommits_nil() -> None:
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    core.handle(TimeoutFired(1, 0, TimeoutStep.PROPOSE, NOW))
    actions = feed_votes(core, others(me, 2), PREVOTE, 0, NIL)
    assert precommitted(actions) == NIL
    assert core.locked == (-1, NIL)


def test_mixed_prevotes_start_prevote_timeout_then_nil_precommit() -> None:
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    block = block_for()
    feed_proposal(core, proposal_for(block))  # we prevote the block
    a, b = others(me, 2)
    actions = feed_votes(core, [a], PREVOTE, 0, NIL)
    assert not timeouts(actions, TimeoutStep.PREVOTE)
    actions = feed_votes(core, [b], PREVOTE, 0, hashlib.sha256(b"x").digest())
    (timer,) = timeouts(actions, TimeoutStep.PREVOTE)  # line 34: 2f+1 prevotes for anything
    assert timer.delay_ms == CONFIG.timeout_prevote_ms
    assert precommitted(core.handle(TimeoutFired(1, 0, TimeoutStep.PREVOTE, NOW))) == NIL


def test_nil_precommits_and_precommit_timeout_start_next_round() -> None:
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    core.handle(TimeoutFired(1, 0, TimeoutStep.PROPOSE, NOW))
    feed_votes(core, others(me, 2), PREVOTE, 0, NIL)  # -> we precommit nil
    actions = feed_votes(core, others(me, 2), PRECOMMIT, 0, NIL)
    (timer,) = timeouts(actions, TimeoutStep.PRECOMMIT)
    assert timer.round == 0
    assert not of_type(actions, CommitBlock)  # nil is never decided
    actions = core.handle(TimeoutFired(1, 0, TimeoutStep.PRECOMMIT, NOW))
    assert core.round == 1 and core.step == RoundStep.PROPOSE
    if proposer_index(1, 1) != me:
        (timer,) = timeouts(actions, TimeoutStep.PROPOSE)
        assert timer.delay_ms == CONFIG.timeout_propose_ms + CONFIG.timeout_propose_delta_ms


def test_timeouts_grow_linearly_with_round() -> None:
    config = ConsensusConfig(
        timeout_propose_ms=1000,
        timeout_propose_delta_ms=300,
        timeout_prevote_ms=200,
        timeout_prevote_delta_ms=70,
        timeout_precommit_ms=100,
        timeout_precommit_delta_ms=50,
    )
    for round_ in range(5):
        assert config.timeout_ms(TimeoutStep.PROPOSE, round_) == 1000 + 300 * round_
        assert config.timeout_ms(TimeoutStep.PREVOTE, round_) == 200 + 70 * round_
        assert config.timeout_ms(TimeoutStep.PRECOMMIT, round_) == 100 + 50 * round_
    me = quiet_validator(0, 3)
    core = make_core(me, config=config)
    start(core)
    actions = skip_to_round(me, core, 3)
    (timer,) = timeouts(actions, TimeoutStep.PROPOSE)
    assert (timer.round, timer.delay_ms) == (3, 1000 + 3 * 300)


def test_stale_timeouts_are_ignored() -> None:
    me = quiet_validator(0, 1)
    core = make_core(me)
    start(core)
    skip_to_round(me, core, 1)
    assert core.round == 1
    assert core.handle(TimeoutFired(1, 0, TimeoutStep.PROPOSE, NOW)) == []
    assert core.handle(TimeoutFired(1, 0, TimeoutStep.PRECOMMIT, NOW)) == []
    assert core.handle(TimeoutFired(7, 1, TimeoutStep.PROPOSE, NOW)) == []
    assert core.round == 1 and core.step == RoundStep.PROPOSE


# ----------------------------------------------------------------------------- commit
def test_commit_on_quorum_of_precommits_in_any_round() -> None:
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    block = block_for()
    feed_proposal(core, proposal_for(block))
    actions = feed_votes(core, others(me, 3), PRECOMMIT, 2, block.hash)  # round 2, we are in 0
    (commit,) = of_type(actions, CommitBlock)
    assert commit.block == block
    assert commit.certificate.round == 2 and len(commit.certificate.precommits) == 3
    assert commit.certificate.verify(VALSET, CHAIN)
    assert core.decided == block and core.step == RoundStep.COMMITTED
    assert core.handle(VoteReceived(vote(me, PREVOTE, 3, NIL), NOW)) == []  # done with h=1


def test_precommit_quorum_for_unknown_block_requests_sync() -> None:
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    unknown = hashlib.sha256(b"never seen").digest()
    actions = feed_votes(core, others(me, 3), PRECOMMIT, 0, unknown)
    assert of_type(actions, RequestSync) == [RequestSync(1, 1)]
    assert not of_type(actions, CommitBlock)


# ----------------------------------------------------------------------------- locking
def lock_on(me: int, round_: int = 0) -> tuple[ConsensusCore, bytes]:
    """A core for validator ``me`` locked on a block in ``round_``."""
    core = make_core(me)
    start(core)
    if round_:
        skip_to_round(me, core, round_)
    block = block_for(round_=round_)
    feed_proposal(core, proposal_for(block))
    feed_votes(core, others(me, 2), PREVOTE, round_, block.hash)
    assert core.locked == (round_, block.hash)
    return core, block.hash


def test_locked_validator_prevotes_nil_on_a_different_fresh_proposal() -> None:
    me = quiet_validator(0, 1)
    core, locked_hash = lock_on(me)
    skip_to_round(me, core, 1)
    other = block_for(round_=1, txs=[b"tx-other"])
    assert prevoted(feed_proposal(core, proposal_for(other))) == NIL
    assert core.locked == (0, locked_hash)


def test_locked_validator_prevotes_its_locked_block_when_reproposed() -> None:
    me = quiet_validator(0, 1)
    core, locked_hash = lock_on(me)
    skip_to_round(me, core, 1)
    block = block_for()  # the same block, re-proposed in round 1 with its POL round 0
    actions = feed_proposal(core, proposal_for(block, round_=1, pol_round=0))
    assert prevoted(actions) == locked_hash


def test_unlock_on_proof_of_lock_from_a_later_round() -> None:
    """Lines 28-33: locked in round 0, a round-2 proposal with POL round 1 >= 0 is accepted."""
    me = quiet_validator(0, 1, 2)
    core, _ = lock_on(me, 0)
    skip_to_round(me, core, 2)
    newer = block_for(round_=1, txs=[b"tx-newer"])
    feed_votes(core, others(me, 3), PREVOTE, 1, newer.hash)
    proposal = proposal_for(newer, round_=2, pol_round=1)
    assert prevoted(feed_proposal(core, proposal)) == newer.hash


def test_proof_of_lock_older_than_the_lock_is_rejected() -> None:
    me = quiet_validator(0, 1, 2)
    core, locked_hash = lock_on(me, 1)
    older = block_for(round_=0, txs=[b"tx-older"])
    feed_votes(core, others(me, 3), PREVOTE, 0, older.hash)
    skip_to_round(me, core, 2)
    proposal = proposal_for(older, round_=2, pol_round=0)
    assert prevoted(feed_proposal(core, proposal)) == NIL
    assert core.locked == (1, locked_hash)


def test_proposal_with_pol_round_waits_for_the_polka() -> None:
    me = quiet_validator(0, 1)
    core = make_core(me)
    start(core)
    skip_to_round(me, core, 1)
    block = block_for(round_=0)
    assert not sent_votes(feed_proposal(core, proposal_for(block, round_=1, pol_round=0)))
    actions = feed_votes(core, others(me, 3), PREVOTE, 0, block.hash)
    assert prevoted(actions) == block.hash


def test_valid_round_is_updated_after_precommit_and_reproposed() -> None:
    """Line 36 in the precommit step sets validValue without locking; the node later
    re-proposes that block with pol_round = validRound."""
    me = proposer_index(1, 3)
    assert me not in {proposer_index(1, r) for r in range(3)}
    core = make_core(me)
    start(core)
    core.handle(TimeoutFired(1, 0, TimeoutStep.PROPOSE, NOW))  # prevote nil
    a, b, c = others(me, 3)
    block = block_for()
    feed_votes(core, [a, b], PREVOTE, 0, block.hash)  # 2f+1 prevotes in total
    assert precommitted(core.handle(TimeoutFired(1, 0, TimeoutStep.PREVOTE, NOW))) == NIL
    feed_votes(core, [c], PREVOTE, 0, block.hash)  # polka for the block ...
    feed_proposal(core, proposal_for(block))  # ... and now we have the block
    assert core.valid == (0, block.hash)
    assert core.locked == (-1, NIL)
    actions = skip_to_round(me, core, 3)
    (proposal,) = sent_proposals(actions)
    assert (proposal.round, proposal.pol_round, proposal.block_hash) == (3, 0, block.hash)


# ----------------------------------------------------------------------------- round skip
def test_round_skip_needs_more_than_one_third_of_the_power() -> None:
    me = quiet_validator(0, 5)
    core = make_core(me)
    start(core)
    a, b = others(me, 2)
    feed_votes(core, [a], PRECOMMIT, 5, NIL)
    assert core.round == 0  # 1 of 4 is not more than 1/3
    feed_votes(core, [b], PREVOTE, 5, NIL)
    assert core.round == 5 and core.step == RoundStep.PROPOSE


def test_round_skip_goes_to_highest_round_backed_by_one_third() -> None:
    me = quiet_validator(0, 4)
    core = make_core(me)
    start(core)
    a, b = others(me, 2)
    feed_votes(core, [a], PREVOTE, 7, NIL)
    feed_votes(core, [b], PREVOTE, 4, NIL)
    assert core.round == 4  # a is at >= 4 too; nobody else vouches for 7


def test_votes_far_ahead_count_for_round_skip_only() -> None:
    far = CONFIG.round_lookahead + 5
    me = quiet_validator(0, far)
    core = make_core(me)
    start(core)
    feed_votes(core, others(me, 2), PREVOTE, far, NIL)
    assert core.round == far


# ----------------------------------------------------------------------------- bad messages
def test_equivocation_produces_evidence_once_and_is_counted_once_per_value() -> None:
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    byz = others(me, 1)[0]
    first = vote(byz, PREVOTE, 0, NIL)
    second = vote(byz, PREVOTE, 0, hashlib.sha256(b"a").digest())
    third = vote(byz, PREVOTE, 0, hashlib.sha256(b"b").digest())
    assert core.handle(VoteReceived(first, NOW)) == []
    (evidence,) = of_type(core.handle(VoteReceived(second, NOW)), Evidence)
    assert (evidence.vote_a, evidence.vote_b) == (first, second)
    assert evidence.verify(VALSET, CHAIN)
    assert not of_type(core.handle(VoteReceived(third, NOW)), Evidence)
    # The "any value" power counts the equivocator once: 1 + 1 is not 2f+1.
    honest = next(i for i in range(4) if i not in (me, byz))
    actions = feed_votes(core, [honest], PREVOTE, 0, NIL)
    assert not timeouts(actions, TimeoutStep.PREVOTE)


def test_invalid_signatures_are_ignored() -> None:
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    block = block_for()
    good = proposal_for(block)
    forged_proposal = type(good)(1, 0, -1, block, good.proposer, bytes(64))
    assert core.handle(ProposalReceived(forged_proposal, NOW)) == []
    assert prevoted(core.handle(ProposalReceived(good, NOW))) == block.hash
    for i in others(me, 2):
        honest = vote(i, PREVOTE, 0, block.hash)
        forged = Vote(honest.type, 1, 0, block.hash, honest.validator, bytes(64))
        assert core.handle(VoteReceived(forged, NOW)) == []
    assert core.step == RoundStep.PREVOTE  # no polka from forged votes
    feed_votes(core, others(me, 2), PREVOTE, 0, block.hash)
    assert core.step == RoundStep.PRECOMMIT  # the genuine ones do make a polka


def test_votes_from_non_validators_wrong_chain_and_old_heights_are_ignored() -> None:
    me = not_proposer(2, 0)
    core = make_core(me)
    start(core, height=2)
    block = block_for(height=2)
    feed_proposal(core, proposal_for(block))
    outsider = PrivateKey(hashlib.sha256(b"outsider").digest())
    from consensus import Vote as V

    junk = [
        V.create(outsider, CHAIN, PREVOTE, 2, 0, block.hash),
        V.create(KEYS[others(me, 1)[0]], "other-chain", PREVOTE, 2, 0, block.hash),
        vote(others(me, 1)[0], PREVOTE, 0, block.hash, height=1),
    ]
    for v in junk:
        assert core.handle(VoteReceived(v, NOW)) == []
    assert core.step == RoundStep.PREVOTE and core.locked == (-1, NIL)


def test_duplicate_votes_are_not_double_counted() -> None:
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    block = block_for()
    feed_proposal(core, proposal_for(block))
    a = others(me, 1)[0]
    for _ in range(3):
        feed_votes(core, [a], PREVOTE, 0, block.hash)
    assert core.locked == (-1, NIL)  # me + a = 2 of 4


# ----------------------------------------------------------------------------- heights, sync
def test_messages_for_the_next_height_are_buffered_and_lagging_requests_sync() -> None:
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    block2 = block_for(height=2, prev_hash=hashlib.sha256(b"block-1").digest())
    proposal2 = proposal_for(block2)
    assert feed_proposal(core, proposal2) == []
    a, b = others(me, 2)
    assert feed_votes(core, [a], PREVOTE, 0, block2.hash, height=2) == []
    actions = feed_votes(core, [b], PREVOTE, 0, block2.hash, height=2)
    assert of_type(actions, RequestSync) == [RequestSync(1, 2)]
    # After height 1 is done, Start(2) replays the buffered proposal: we prevote at once.
    actions = start(core, height=2)
    if proposer_index(2, 0) != me:
        assert prevoted(actions) == block2.hash


def test_synced_block_with_valid_certificate_commits() -> None:
    from consensus import CommitCertificate, SyncedBlock

    me = not_proposer(1, 0)
    block = block_for()
    votes = [vote(i, PRECOMMIT, 1, block.hash) for i in others(me, 3)]
    cert = CommitCertificate.from_votes(votes)
    core = make_core(me)
    start(core)
    (commit,) = of_type(core.handle(SyncedBlock(block, cert)), CommitBlock)
    assert commit.certificate == cert
    # Forged, insufficient and mismatched certificates are ignored.
    forged = CommitCertificate(
        1, 1, block.hash, ((cert.precommits[0][0], bytes(64)), *cert.precommits[1:])
    )
    short = CommitCertificate.from_votes(votes[:2])
    other = block_for(txs=[b"tx-2"])
    for bad_block, bad_cert in [(block, forged), (block, short), (other, cert)]:
        fresh = make_core(me)
        start(fresh)
        assert not of_type(fresh.handle(SyncedBlock(bad_block, bad_cert)), CommitBlock)


def test_follower_without_key_commits_but_never_signs() -> None:
    core = make_core(None)
    actions = start(core)
    assert not core.is_validator
    block = block_for()
    actions += feed_proposal(core, proposal_for(block))
    actions += feed_votes(core, [0, 1, 2], PREVOTE, 0, block.hash)
    actions += feed_votes(core, [0, 1, 2], PRECOMMIT, 0, block.hash)
    assert not of_type(actions, RecordWal) and not sent_votes(actions)
    assert not of_type(actions, BroadcastProposal)
    (commit,) = of_type(actions, CommitBlock)
    assert commit.block == block


def test_key_outside_the_validator_set_acts_as_follower() -> None:
    outsider = PrivateKey(hashlib.sha256(b"outsider").digest())
    core = ConsensusCore(CHAIN, VALSET, TestApp(), CONFIG, outsider)
    assert not core.is_validator
    assert not sent_votes(start(core))


# ----------------------------------------------------------------------------- pacing
def test_no_empty_blocks_proposer_waits_for_txs() -> None:
    config = ConsensusConfig(create_empty_blocks=False, rebroadcast_interval_ms=0)
    me = proposer_index(1, 0)
    app = TestApp([])
    core = make_core(me, config=config, app=app)
    actions = start(core)
    assert not sent_proposals(actions) and not timeouts(actions)
    app.txs = [b"tx-arrived"]
    (proposal,) = sent_proposals(core.handle(TxsReady(NOW + 10)))
    assert proposal.block.txs == (b"tx-arrived",)
    # With transactions already waiting at Start, the proposer proposes at once.
    eager = make_core(me, config=config, app=TestApp([b"tx-1"]))
    assert sent_proposals(start(eager))


def test_txs_ready_counts_once_per_height() -> None:
    """A second ``TxsReady`` in a height does nothing, which is why the driver may skip it
    (``txs_ready``); the next height waits for transactions again."""
    config = ConsensusConfig(create_empty_blocks=False, rebroadcast_interval_ms=0)
    core = make_core(not_proposer(1, 0), config=config)
    start(core)
    assert not core.txs_ready
    assert timeouts(core.handle(TxsReady(NOW)), TimeoutStep.PROPOSE)
    assert core.txs_ready
    assert core.handle(TxsReady(NOW + 1)) == []
    start(core, height=2)
    assert not core.txs_ready


def test_no_empty_blocks_interval_produces_an_empty_block() -> None:
    config = ConsensusConfig(
        create_empty_blocks=False, empty_block_interval_ms=2000, rebroadcast_interval_ms=0
    )
    me = proposer_index(1, 0)
    core = make_core(me, config=config, app=TestApp([]))
    (timer,) = timeouts(start(core), TimeoutStep.WAIT_TXS)
    assert timer.delay_ms == 2000
    (proposal,) = sent_proposals(core.handle(TimeoutFired(1, 0, TimeoutStep.WAIT_TXS, NOW + 2000)))
    assert proposal.block.txs == ()


def test_no_empty_blocks_non_proposer_still_prevotes_a_proposal() -> None:
    config = ConsensusConfig(create_empty_blocks=False, rebroadcast_interval_ms=0)
    me = not_proposer(1, 0)
    core = make_core(me, config=config)
    assert not timeouts(start(core), TimeoutStep.PROPOSE)
    (timer,) = timeouts(core.handle(TxsReady(NOW)), TimeoutStep.PROPOSE)
    assert timer.round == 0
    block = block_for()
    assert prevoted(feed_proposal(core, proposal_for(block))) == block.hash


def test_timeout_commit_delays_round_zero() -> None:
    config = ConsensusConfig(timeout_commit_ms=500, rebroadcast_interval_ms=0)
    me = proposer_index(1, 0)
    core = make_core(me, config=config)
    actions = start(core)
    assert core.step == RoundStep.NEW_HEIGHT and not sent_proposals(actions)
    (timer,) = timeouts(actions, TimeoutStep.NEW_HEIGHT)
    assert timer.delay_ms == 500
    assert sent_proposals(core.handle(TimeoutFired(1, 0, TimeoutStep.NEW_HEIGHT, NOW + 500)))


def test_rebroadcast_resends_own_votes_and_reschedules() -> None:
    config = ConsensusConfig(rebroadcast_interval_ms=700)
    me = not_proposer(1, 0)
    core = make_core(me, config=config)
    (timer,) = timeouts(start(core), TimeoutStep.REBROADCAST)
    assert timer.delay_ms == 700
    block = block_for()
    first = sent_votes(feed_proposal(core, proposal_for(block)))
    actions = core.handle(TimeoutFired(1, 0, TimeoutStep.REBROADCAST, NOW + 700))
    assert sent_votes(actions) == first
    assert not of_type(actions, RecordWal)  # nothing new is signed
    assert timeouts(actions, TimeoutStep.REBROADCAST)


def test_rebroadcast_resends_own_proposal_until_every_validator_prevoted_for_it() -> None:
    config = ConsensusConfig(rebroadcast_interval_ms=700)
    me = proposer_index(1, 0)
    core = make_core(me, config=config)
    (proposal,) = sent_proposals(start(core))
    feed_votes(core, others(me, 2), PREVOTE, 0, proposal.block_hash)  # a polka, one peer silent
    again = core.handle(TimeoutFired(1, 0, TimeoutStep.REBROADCAST, NOW + 700))
    assert sent_proposals(again) == [proposal]  # the silent validator may have lost it
    feed_votes(core, others(me, 3)[2:], PREVOTE, 0, proposal.block_hash)
    actions = core.handle(TimeoutFired(1, 0, TimeoutStep.REBROADCAST, NOW + 1400))
    assert sent_proposals(actions) == []  # everyone holds it
    assert timeouts(actions, TimeoutStep.REBROADCAST)


def test_start_rejects_going_back_and_ignores_repeats() -> None:
    core = make_core(0)
    start(core, height=3)
    assert start(core, height=3) == []
    try:
        start(core, height=2)
    except ValueError:
        pass
    else:  # pragma: no cover
        raise AssertionError("Start of a lower height must fail")
    assert core.height == 3 and APP_HASH


def test_events_before_start_are_ignored() -> None:
    core = make_core(0)
    block = block_for()
    assert feed_proposal(core, proposal_for(block)) == []
    assert core.handle(TimeoutFired(1, 0, TimeoutStep.PROPOSE, NOW)) == []


def test_broadcast_actions_are_typed() -> None:
    me = proposer_index(1, 0)
    actions = start(make_core(me))
    assert of_type(actions, BroadcastVote) and of_type(actions, BroadcastProposal)


def test_received_blocks_are_held_to_protocol_limits_not_local_config() -> None:
    """A node configured for small own blocks still prevotes a bigger valid block."""
    config = ConsensusConfig(max_block_txs=1, max_block_bytes=64 * 1024, rebroadcast_interval_ms=0)
    me = not_proposer(1, 0)
    core = make_core(me, config=config)
    start(core)
    block = block_for(txs=[b"tx-%d" % i for i in range(50)])
    assert prevoted(feed_proposal(core, proposal_for(block))) == block.hash


def test_own_blocks_are_cut_to_the_configured_limits() -> None:
    config = ConsensusConfig(max_block_txs=3, rebroadcast_interval_ms=0)
    me = proposer_index(1, 0)
    app = TestApp([b"tx-%d" % i for i in range(10)])
    (proposal,) = sent_proposals(start(make_core(me, config=config, app=app)))
    assert proposal.block.txs == (b"tx-0", b"tx-1", b"tx-2")


def test_next_height_proposal_buffer_is_bounded() -> None:
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    prev = hashlib.sha256(b"block-1").digest()
    for round_ in range(40):
        for variant in range(3):
            block = block_for(height=2, round_=round_, prev_hash=prev, txs=[b"v%d" % variant])
            feed_proposal(core, proposal_for(block))
    buffered = [m for m, _ in core._future if isinstance(m, ProposalReceived)]
    lookahead = CONFIG.round_lookahead
    assert len(buffered) == 2 * (lookahead + 1)  # rounds 0..lookahead, two blocks each


def test_rebroadcast_relays_the_polka_behind_our_lock() -> None:
    """Gossip: a byzantine validator may have sent its POL prevote to us only; relaying the
    polka lets the others accept the re-proposed block later."""
    config = ConsensusConfig(rebroadcast_interval_ms=500)
    me = quiet_validator(0, 1)
    core = make_core(me, config=config)
    start(core)
    block = block_for()
    feed_proposal(core, proposal_for(block))
    polka = others(me, 2)
    feed_votes(core, polka, PREVOTE, 0, block.hash)
    assert core.locked == (0, block.hash)
    skip_to_round(me, core, 1)
    relayed = sent_votes(core.handle(TimeoutFired(1, 0, TimeoutStep.REBROADCAST, NOW + 500)))
    round0 = {(v.validator, v.block_hash) for v in relayed if v.round == 0 and v.type == PREVOTE}
    expected = {KEYS[i].pubkey for i in [me, *polka]}
    assert round0 == {(pk, block.hash) for pk in expected}
