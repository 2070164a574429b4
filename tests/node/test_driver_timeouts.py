"""The driver's choice of when a consensus timeout fires: the pause after a commit is cut
to ``timeout_commit_busy_ms`` only when transactions are waiting, so an idle chain keeps
its pace and a loaded one does not sit out ``timeout_commit_ms`` on every height."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from consensus.actions import ScheduleTimeout
from consensus.steps import TimeoutStep
from node.config import ConsensusConfig
from node.driver import ConsensusDriver


def driver(pending: int, busy_ms: int = 0) -> Any:
    d: Any = ConsensusDriver.__new__(ConsensusDriver)  # only the runtime's config and mempool are read
    d.rt = SimpleNamespace(config=SimpleNamespace(consensus=ConsensusConfig(timeout_commit_busy_ms=busy_ms)),
                           mempool=[b"tx"] * pending)
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
