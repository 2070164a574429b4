"""The driver's choice of when a consensus timeout fires: the pause after a commit is cut
to ``timeout_commit_busy_ms`` only when transactions are waiting, so an idle chain keeps
its pace and a loaded one does not sit out ``timeout_commit_ms`` on every height; the
round timeouts stretch with the time the last block took to execute, so a proposer still
executing a large block is not voted out."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from consensus.actions import ScheduleTimeout
from consensus.config import ConsensusConfig
from consensus.steps import TimeoutStep
from node.driver import ConsensusDriver


def driver(pending: int, busy_ms: int = 0, last_apply_ms: float = 0.0, execution_pct: int = 200) -> Any:
    d: Any = ConsensusDriver.__new__(ConsensusDriver)  # only the runtime's config, mempool, execution are read
    cfg = ConsensusConfig(timeout_commit_busy_ms=busy_ms, timeout_execution_pct=execution_pct)
    d.rt = SimpleNamespace(config=SimpleNamespace(consensus=cfg), mempool=[b"tx"] * pending,
                           execution=SimpleNamespace(last_apply_ms=last_apply_ms))
    return d


def delay(d: Any, step: TimeoutStep, ms: int) -> int:
    result: int = d._timeout_delay_ms(ScheduleTimeout(5, 0, step, ms))
    return result


def test_timeout_commit_is_cut_only_with_waiting_txs() -> None:
    assert delay(driver(pending=0), TimeoutStep.NEW_HEIGHT, 100) == 100  # idle: empty blocks keep their pace
    assert delay(driver(pending=3), TimeoutStep.NEW_HEIGHT, 100) == 0
    assert delay(driver(pending=3, busy_ms=20), TimeoutStep.NEW_HEIGHT, 100) == 20
    assert delay(driver(pending=3, busy_ms=-1), TimeoutStep.NEW_HEIGHT, 100) == 100  # switched off
    assert delay(driver(pending=3, busy_ms=500), TimeoutStep.NEW_HEIGHT, 100) == 100  # never longer
    for step in (TimeoutStep.PROPOSE, TimeoutStep.PREVOTE, TimeoutStep.PRECOMMIT, TimeoutStep.REBROADCAST):
        assert delay(driver(pending=3), step, 400) == 400  # the protocol's own timeouts are untouched


def test_scheduled_new_height_fires_early_when_busy() -> None:
    async def run() -> list[Any]:
        d = driver(pending=1)
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
    assert delay(slow, TimeoutStep.NEW_HEIGHT, 100) == 0  # the busy pause rule, unchanged
    assert delay(driver(pending=0, last_apply_ms=300.2), TimeoutStep.NEW_HEIGHT, 100) == 100
