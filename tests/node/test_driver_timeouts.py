"""The driver's choice of when a consensus timeout fires: ``timeout_commit_ms`` paces the
heights (round 0 of a height starts at least that long after round 0 of the one before,
so the pause after a commit is what is left of it, loaded or not, unless
``timeout_commit_busy_ms`` caps it while transactions wait); the round timeouts stretch
with the time the last block took to execute, so a proposer still executing a large
block is not voted out."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from consensus.actions import ScheduleTimeout
from consensus.config import ConsensusConfig
from consensus.steps import TimeoutStep
from node.driver import ConsensusDriver


def driver(pending: int, busy_ms: int = -1, last_apply_ms: float = 0.0, execution_pct: int = 200,
           round0_ago_s: float | None = None) -> Any:
    """A driver whose current height's round 0 started ``round0_ago_s`` ago (None: no
    height started yet)."""
    d: Any = ConsensusDriver.__new__(ConsensusDriver)  # only the runtime's config, mempool, execution are read
    cfg = ConsensusConfig(timeout_commit_busy_ms=busy_ms, timeout_execution_pct=execution_pct)
    d.rt = SimpleNamespace(config=SimpleNamespace(consensus=cfg), mempool=[b"tx"] * pending,
                           execution=SimpleNamespace(last_apply_ms=last_apply_ms))
    d._round0_at = None if round0_ago_s is None else time.monotonic() - round0_ago_s
    return d


def delay(d: Any, step: TimeoutStep, ms: int) -> int:
    result: int = d._timeout_delay_ms(ScheduleTimeout(5, 0, step, ms))
    return result


def test_timeout_commit_paces_heights_from_round_zero_to_round_zero() -> None:
    # the first height of this run: the full pause
    assert delay(driver(pending=0), TimeoutStep.NEW_HEIGHT, 100) == 100
    # the height before took 30 ms: what is left of the 100, loaded or idle
    for pending in (0, 3):
        left = delay(driver(pending=pending, round0_ago_s=0.030), TimeoutStep.NEW_HEIGHT, 100)
        assert 60 <= left <= 70, left  # a slow machine's milliseconds between the two reads
    # a height longer than the pace: the next starts at once
    assert delay(driver(pending=3, round0_ago_s=0.250), TimeoutStep.NEW_HEIGHT, 100) == 0
    assert delay(driver(pending=0, round0_ago_s=5.0), TimeoutStep.NEW_HEIGHT, 100) == 0
    for step in (TimeoutStep.PROPOSE, TimeoutStep.PREVOTE, TimeoutStep.PRECOMMIT, TimeoutStep.REBROADCAST):
        assert delay(driver(pending=3), step, 400) == 400  # the protocol's own timeouts are untouched


def test_timeout_commit_busy_caps_the_pause_only_with_waiting_txs() -> None:
    assert delay(driver(pending=3, busy_ms=0, round0_ago_s=0.030), TimeoutStep.NEW_HEIGHT, 100) == 0
    assert delay(driver(pending=3, busy_ms=20, round0_ago_s=0.010), TimeoutStep.NEW_HEIGHT, 100) == 20
    assert delay(driver(pending=3, busy_ms=500), TimeoutStep.NEW_HEIGHT, 100) == 100  # never longer
    assert delay(driver(pending=0, busy_ms=0), TimeoutStep.NEW_HEIGHT, 100) == 100  # idle: the pace


def test_a_node_behind_is_not_paced_and_the_pace_never_accumulates() -> None:
    """Heights decided before their round 0 began here (a node catching up from its peers'
    precommits) start the next height at once: pacing from a round 0 that never ran
    pushed each next one further out, and a proposer that had caught up a dozen heights
    made the chain wait 1.5 s for its proposal (seen in the network-namespace chaos run)."""
    d = driver(pending=3)
    assert delay(d, TimeoutStep.NEW_HEIGHT, 100) == 100  # round 0 of this height 100 ms ahead
    assert delay(d, TimeoutStep.NEW_HEIGHT, 100) == 0  # decided before it: behind, go on at once
    for _ in range(20):  # heights decided at once, one after another: never more than one pace
        assert delay(d, TimeoutStep.NEW_HEIGHT, 100) <= 100
        assert d._round0_at <= time.monotonic() + 0.1


def test_the_pace_runs_from_when_round_zero_starts_after_the_pause() -> None:
    d = driver(pending=0)
    assert delay(d, TimeoutStep.NEW_HEIGHT, 100) == 100  # round 0 of this height starts in 100 ms
    d._round0_at -= 0.130  # as if the height committed 30 ms after that round 0 started
    left = delay(d, TimeoutStep.NEW_HEIGHT, 100)
    assert 60 <= left <= 70, left


def test_scheduled_new_height_fires_early_when_busy() -> None:
    async def run() -> list[Any]:
        d = driver(pending=1, busy_ms=0)
        d.loop = asyncio.get_running_loop()
        d.timers = set()
        fired: list[Any] = []
        d.feed = fired.append
        d.perform(ScheduleTimeout(7, 0, TimeoutStep.NEW_HEIGHT, 10_000))
        await asyncio.sleep(0.05)
        return fired

    fired = asyncio.run(run())
    assert len(fired) == 1 and fired[0].height == 7 and fired[0].step == TimeoutStep.NEW_HEIGHT


def test_round_timeouts_stretch_with_the_last_block_execution_time() -> None:
    slow = driver(pending=3, last_apply_ms=300.2)
    for step in (TimeoutStep.PROPOSE, TimeoutStep.PREVOTE, TimeoutStep.PRECOMMIT):
        assert delay(slow, step, 1000) == 1600  # + 200% of 300 ms
        assert delay(driver(pending=3, last_apply_ms=300.2, execution_pct=0), step, 1000) == 1000  # switched off
        assert delay(driver(pending=3), step, 1000) == 1000  # nothing executed yet
    assert delay(slow, TimeoutStep.REBROADCAST, 1000) == 1000
    assert delay(driver(pending=3, last_apply_ms=300.2, round0_ago_s=1.0), TimeoutStep.NEW_HEIGHT, 100) == 0
    assert delay(driver(pending=0, last_apply_ms=300.2), TimeoutStep.NEW_HEIGHT, 100) == 100  # the pace only


def test_txs_available_reaches_the_core_once_per_height() -> None:
    """Clients sending one order per request made the core run its rules once per
    request; a ``TxsReady`` is fed only while the core's height has not had one."""
    from consensus.events import TxsReady

    d = driver(pending=1)
    d.rt.config.consensus = ConsensusConfig(create_empty_blocks=False)  # the devnet's setting
    fed: list[Any] = []
    d.feed = fed.append
    d.core = SimpleNamespace(txs_ready=False)
    d.on_txs_available()
    d.core.txs_ready = True
    d.on_txs_available()
    d.on_txs_available()
    assert len(fed) == 1 and isinstance(fed[0], TxsReady)
    d.rt.config.consensus = ConsensusConfig(create_empty_blocks=True)
    d.core.txs_ready = False
    d.on_txs_available()  # blocks come whether or not txs wait: nothing to wake
    assert len(fed) == 1
