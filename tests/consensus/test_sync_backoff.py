"""Block sync for later heights: at once when more than 1/3 of the power is ahead, with a
per-validator back-off when fewer are (consensus/syncbackoff.py)."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import (
    CommitBlock,
    CommitCertificate,
    ConsensusCore,
    Event,
    RequestSync,
    SyncedBlock,
    TimeoutFired,
    TimeoutStep,
    ValidatorSet,
    Vote,
    VoteReceived,
    VoteType,
)
from consensus.messages import NIL
from consensus.syncbackoff import MAX_BACKOFF_TICKS, SyncBackoff

from .helpers import (
    KEYS,
    NOW,
    PRECOMMIT,
    PREVOTE,
    block_for,
    make_core,
    not_proposer,
    of_type,
    others,
    start,
    vote,
)
from .sim import _DELIVER, CHAIN_ID, SIM_CONFIG, Scenario, SimNode, Simulation, encode_message

FAR = 10**9


def tick(core: ConsensusCore) -> list[RequestSync]:
    """One rebroadcast timeout of the core's current height: the sync requests it makes."""
    actions = core.handle(TimeoutFired(core.height, 0, TimeoutStep.REBROADCAST, NOW))
    return of_type(actions, RequestSync)


def ticks_with_requests(core: ConsensusCore, count: int) -> list[int]:
    """The ticks, numbered from 1, of ``count`` rebroadcast timeouts that requested sync."""
    return [t for t in range(1, count + 1) if tick(core)]


def far_future_vote(core: ConsensusCore, signer: int) -> list[RequestSync]:
    return of_type(core.handle(VoteReceived(vote(signer, PREVOTE, 0, NIL, height=FAR), NOW)), RequestSync)


def test_one_far_future_vote_backs_off_to_log_many_requests() -> None:
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    (byzantine,) = others(me, 1)
    assert far_future_vote(core, byzantine) == []  # one validator of four: not at once
    requested = ticks_with_requests(core, 1000)
    # Doubling waits up to the cap, then one request per cap: 1000 requests before.
    assert requested[:7] == [1, 2, 4, 8, 16, 32, 64]
    assert requested[7:] == list(range(128, 1001, MAX_BACKOFF_TICKS))
    # The same vote again (gossip, the validator's rebroadcast) is old news.
    assert far_future_vote(core, byzantine) == [] and not tick(core)


def test_back_off_survives_our_height_advancing_and_higher_claims() -> None:
    """Heights that last about one rebroadcast interval (an idle node's default) must not
    hand the far-future claimant a fresh first request each height."""
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    (byzantine,) = others(me, 1)
    far_future_vote(core, byzantine)
    assert ticks_with_requests(core, 8) == [1, 2, 4, 8]
    requested: list[int] = []
    for height in range(2, 26):  # one tick per height, 24 heights
        start(core, height=height)
        if height == 12:  # a still higher claim does not reset the back-off either
            core.handle(VoteReceived(vote(byzantine, PREVOTE, 0, NIL, height=FAR + 5), NOW))
        if tick(core):
            requested.append(height + 7)
    assert requested == [16, 32]


def test_more_than_a_third_ahead_requests_sync_at_once_and_every_tick() -> None:
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    a, b = others(me, 2)
    assert far_future_vote(core, a) == []
    actions = core.handle(VoteReceived(vote(b, PREVOTE, 0, NIL, height=50), NOW))
    assert of_type(actions, RequestSync) == [RequestSync(1, 50)]  # a and b: half the power
    assert ticks_with_requests(core, 20) == list(range(1, 21))


def test_one_honest_validator_ahead_is_synced_promptly_beside_a_backed_off_claim() -> None:
    """The node missed height 1's commit that one small validator got: it asks at the next
    tick though another small validator's far-future claim is backed off (the two hold
    1/5 of the power), and the synced block decides the height. Reached, a claim leaves
    no back-off behind: the next one is prompt again."""
    valset = ValidatorSet([(k.pubkey, p) for k, p in zip(KEYS, [4, 4, 1, 1], strict=True)])
    me, big, byzantine, honest = 0, 1, 2, 3
    core = make_core(me, valset=valset)
    start(core)
    far_future_vote(core, byzantine)
    assert ticks_with_requests(core, 40) == [1, 2, 4, 8, 16, 32]
    claim = VoteReceived(vote(honest, PREVOTE, 0, NIL, height=2), NOW)
    assert not of_type(core.handle(claim), RequestSync)
    assert tick(core) == [RequestSync(1, 2)]
    block = block_for(proposer=valset.proposer(1, 0))
    cert = CommitCertificate.from_votes([vote(i, PRECOMMIT, 0, block.hash) for i in (big, me, honest)])
    (commit,) = of_type(core.handle(SyncedBlock(block, cert)), CommitBlock)
    assert commit.block == block
    start(core, height=2)
    # The honest validator decided height 2 while we missed it again.
    core.handle(VoteReceived(vote(honest, PREVOTE, 0, NIL, height=3), NOW))
    assert tick(core) == [RequestSync(2, 3)]
    assert tick(core) == [RequestSync(2, 3)]  # its second request, one tick later
    assert not tick(core)


def test_an_unreached_claim_is_still_retried_at_the_cap() -> None:
    """Liveness: an honest claim that sync cannot serve for a long while is still tried
    once every ``MAX_BACKOFF_TICKS`` ticks."""
    me = not_proposer(1, 0)
    core = make_core(me)
    start(core)
    (ahead,) = others(me, 1)
    core.handle(VoteReceived(vote(ahead, PREVOTE, 0, NIL, height=2), NOW))
    requested = ticks_with_requests(core, 5 * MAX_BACKOFF_TICKS)
    assert all(b - a <= MAX_BACKOFF_TICKS for a, b in itertools.pairwise(requested))
    assert requested[-1] > 4 * MAX_BACKOFF_TICKS


def test_backoff_schedule_and_forgetting() -> None:
    backoff = SyncBackoff()
    a, b = b"a" * 32, b"b" * 32
    assert [t for t in range(1, 20) if backoff.due([a])] == [1, 2, 4, 8, 16]
    assert backoff.due([a, b])  # b is new: due at once, whatever a's wait
    backoff.keep_only([b])  # a's claim was reached
    assert backoff.due([a])


_OTHERS = [bytes([i]) * 32 for i in range(1, 4)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sets(st.sampled_from(_OTHERS))), max_size=400))
def test_a_standing_claim_is_never_left_longer_than_the_cap(
    steps: list[tuple[bool, set[bytes]]],
) -> None:
    """Whatever other claimants come, go or are reached, a claim that stays above our
    height is due at least once every ``MAX_BACKOFF_TICKS`` ticks, and every wait is
    within the bounds the state promises."""
    backoff = SyncBackoff()
    standing = b"\x00" * 32
    since_due = 0
    for is_start, others_ in steps:
        if is_start:
            backoff.keep_only([standing, *others_])
            continue
        since_due = 0 if backoff.due([standing, *others_]) else since_due + 1
        assert since_due < MAX_BACKOFF_TICKS
        assert all(0 <= left < wait <= MAX_BACKOFF_TICKS for left, wait in backoff._waits.values())


class _CountingSim(Simulation):
    """The simulator, counting each node's sync requests; one vote for a far-future height
    from validator 3 reaches node 0 at ``inject_ms``."""

    def __init__(self, scenario: Scenario, inject_ms: int) -> None:
        super().__init__(scenario)
        self.requests = [0] * len(self.nodes)
        key = self.nodes[3].key
        assert key is not None
        far = Vote.create(key, CHAIN_ID, VoteType.PREVOTE, FAR, 0, NIL)
        self.push(inject_ms, _DELIVER, 0, encode_message(far))

    def perform(self, node: SimNode, action: Any) -> Event | None:
        if isinstance(action, RequestSync):
            self.requests[node.index] += 1
        return super().perform(node, action)


def test_far_future_vote_in_a_running_network_costs_few_sync_requests() -> None:
    """Heights of ~2 s (a long timeout_commit) and 300 ms rebroadcasts: ~60 ticks in 20 s.
    One request per tick before the back-off; now the doubling, and the chain goes on."""
    config = dataclasses.replace(SIM_CONFIG, timeout_commit_ms=2000)
    sim = _CountingSim(Scenario(validators=4, seed=1, duration_ms=20_000, config=config), inject_ms=50)
    result = sim.run()
    assert result.min_honest_height >= 8
    assert 1 <= sim.requests[0] <= 7
    assert sim.requests[1:] == [0, 0, 0]

