"""Simulated networks of cores: safety and liveness under drops, delays, reordering,
partitions, crashes with torn WALs, and a byzantine equivocating validator.

Safety, certificate validity and "no honest double signing" are asserted inside the
simulator on every commit and every vote; the tests here add liveness and scenario checks.
"""

from __future__ import annotations

import itertools

import pytest

from consensus import ConsensusConfig

from .sim import SIM_CONFIG, Crash, Partition, Scenario, SimResult, random_scenario, run

DEFAULT_SEEDS = range(30)
SLOW_SEEDS = range(30, 330)


def assert_live(result: SimResult, progress: int = 1) -> None:
    """After the last fault healed, every honest node committed past the best height then."""
    assert result.min_honest_height >= result.height_at_heal + progress, (
        [n.height for n in result.nodes],
        result.height_at_heal,
    )


def assert_same_chain(result: SimResult) -> None:
    honest = result.honest
    shortest = min(n.height for n in honest)
    for node in honest:
        assert result.chain(node)[:shortest] == result.chain(honest[0])[:shortest]


@pytest.mark.parametrize("validators", [4, 7])
def test_happy_path_all_nodes_commit_the_same_chain(validators: int) -> None:
    result = run(Scenario(validators=validators, seed=1, duration_ms=6000))
    assert result.min_honest_height >= 20
    assert_same_chain(result)
    assert all(n.blocks[1][1].round == 0 for n in result.nodes)


@pytest.mark.parametrize("seed", DEFAULT_SEEDS)
def test_random_faults_are_safe_and_live(seed: int) -> None:
    validators = 4 if seed % 2 == 0 else 7
    result = run(random_scenario(seed, validators))
    assert_same_chain(result)
    assert_live(result)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
@pytest.mark.parametrize("validators", [4, 7])
def test_random_faults_seed_sweep(seed: int, validators: int) -> None:
    result = run(random_scenario(seed, validators))
    assert_same_chain(result)
    assert_live(result)


def test_simulation_is_deterministic() -> None:
    scenario = random_scenario(3, 7)
    assert run(scenario).fingerprint() == run(scenario).fingerprint()


def test_byzantine_equivocation_is_detected_and_harmless() -> None:
    result = run(Scenario(validators=4, seed=5, byzantine={2}, duration_ms=8000, drop_permille=20))
    evidence = [e for n in result.honest for e in n.evidence]
    assert evidence, "equivocating votes were never reported"
    byzantine_key = result.nodes[2].key
    assert byzantine_key is not None
    assert all(e.vote_a.validator == byzantine_key.pubkey for e in evidence)
    assert_same_chain(result)
    assert result.min_honest_height >= 10


def test_byzantine_validator_in_seven_with_crash() -> None:
    scenario = Scenario(
        validators=7,
        seed=11,
        byzantine={0},
        crashes=[Crash(3, 1500, 4000)],
        drop_permille=50,
        max_delay_ms=80,
        duration_ms=12_000,
    )
    result = run(scenario)
    assert_same_chain(result)
    assert_live(result, progress=3)


def test_crash_with_torn_wal_restarts_and_catches_up() -> None:
    scenario = Scenario(
        validators=4, seed=2, crashes=[Crash(1, 2000, 4500, torn_tail=True)], duration_ms=9000
    )
    result = run(scenario)
    node = result.nodes[1]
    assert node.restarts == 1 and node.torn_bytes_truncated > 0
    assert_same_chain(result)
    assert_live(result, progress=5)


def test_all_validators_crash_and_restart_from_wal() -> None:
    crashes = [Crash(i, 3000 + 37 * i, 3500 + 53 * i) for i in range(4)]
    result = run(Scenario(validators=4, seed=8, crashes=crashes, duration_ms=9000))
    assert all(n.restarts == 1 for n in result.nodes)
    assert_same_chain(result)
    assert_live(result, progress=5)


def test_minority_partition_catches_up_by_block_sync() -> None:
    scenario = Scenario(
        validators=4, seed=4, partitions=[Partition(1000, 5000, [{3}])], duration_ms=9000
    )
    result = run(scenario)
    assert_same_chain(result)
    isolated = result.nodes[3]
    # The isolated node committed nothing during the partition, then caught up.
    during = [h for h, t in isolated.commit_times.items() if 1000 + 500 < t < 5000]
    assert not during
    assert isolated.height >= result.max_honest_height - 2


def test_even_split_halts_then_resumes() -> None:
    scenario = Scenario(
        validators=4, seed=6, partitions=[Partition(1000, 4000, [{0, 1}])], duration_ms=9000
    )
    result = run(scenario)
    heights = [n.commit_times for n in result.nodes]
    committed_during = {h for times in heights for h, t in times.items() if 1500 < t < 4000}
    assert not committed_during  # no side has 2/3: no block
    assert_live(result, progress=5)


def test_observer_follows_the_chain() -> None:
    result = run(Scenario(validators=4, observers=2, seed=9, drop_permille=30, duration_ms=6000))
    observers = result.nodes[4:]
    assert all(n.key is None for n in observers)
    assert all(n.height >= result.max_honest_height - 2 for n in observers)
    assert_same_chain(result)


def test_weighted_powers() -> None:
    result = run(Scenario(validators=4, powers=[5, 1, 1, 1], seed=12, duration_ms=6000))
    proposers = [
        result.nodes[0].blocks[h][0].header.proposer for h in sorted(result.nodes[0].blocks)
    ]
    heavy = result.nodes[0].key
    assert heavy is not None
    share = proposers.count(heavy.pubkey) / len(proposers)
    assert 0.5 <= share <= 0.75  # 5/8 of the power


def test_heavy_validator_down_halts_weighted_chain() -> None:
    """Power 5 of 8 is more than 1/3: without it nothing can be decided; after restart, it is."""
    scenario = Scenario(
        validators=4, powers=[5, 1, 1, 1], seed=13, crashes=[Crash(0, 1000, 3000)], duration_ms=7000
    )
    result = run(scenario)
    committed_during = {
        h for n in result.nodes for h, t in n.commit_times.items() if 1200 < t < 3000
    }
    assert not committed_during
    assert_live(result, progress=5)


def test_no_empty_blocks_with_interval() -> None:
    config = ConsensusConfig(
        timeout_propose_ms=SIM_CONFIG.timeout_propose_ms,
        timeout_prevote_ms=SIM_CONFIG.timeout_prevote_ms,
        timeout_precommit_ms=SIM_CONFIG.timeout_precommit_ms,
        create_empty_blocks=False,
        empty_block_interval_ms=1000,
        rebroadcast_interval_ms=300,
    )
    result = run(Scenario(validators=4, seed=14, txs_per_block=0, config=config, duration_ms=8000))
    node = result.nodes[0]
    assert 5 <= node.height <= 9  # about one block per interval
    times = [node.blocks[h][0].header.time_ms for h in sorted(node.blocks)]
    assert all(b - a >= 900 for a, b in itertools.pairwise(times))


def test_the_safety_checker_catches_a_fork_beyond_f() -> None:
    """Sanity check of the harness: two colluding byzantine validators out of four (more
    than f) do fork the chain, and the simulator's safety assertion reports it."""
    forked = 0
    for seed in range(6):
        try:
            run(Scenario(validators=4, seed=seed, byzantine={0, 1}, duration_ms=4000))
        except AssertionError as exc:
            assert "SAFETY VIOLATION" in str(exc)
            forked += 1
    assert forked
