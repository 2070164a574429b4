"""``Execution.wait_for_height`` (the /commits long poll): wakes on a stored block, times
out, and returns at once when the node stops."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from node.execution import Execution


def make() -> tuple[Any, Any]:
    ex: Any = Execution.__new__(Execution)  # only the waiter state is needed here
    ex.blocks = SimpleNamespace(results_height=5)
    ex._committed = asyncio.Event()
    ex._closing = False
    ex.waiters = {}  # release_height_waiters also fails the tx waiters (NodeStopping)
    return ex, ex.blocks


def commit(ex: Any, blocks: Any, height: int) -> None:
    """What ``_execute`` does after storing a block's results."""
    blocks.results_height = height
    done, ex._committed = ex._committed, asyncio.Event()
    done.set()


def test_wait_for_height() -> None:
    async def run() -> None:
        ex, blocks = make()
        assert await ex.wait_for_height(5, 0.01)  # already there
        assert not await ex.wait_for_height(6, 0.05)  # times out
        waiter = asyncio.ensure_future(ex.wait_for_height(7, 5))
        await asyncio.sleep(0.01)
        commit(ex, blocks, 6)
        await asyncio.sleep(0.01)
        assert not waiter.done()  # 6 is not 7: keeps waiting
        commit(ex, blocks, 7)
        assert await asyncio.wait_for(waiter, 1)
        stopping = asyncio.ensure_future(ex.wait_for_height(100, 30))
        await asyncio.sleep(0.01)
        ex.release_height_waiters()
        assert await asyncio.wait_for(stopping, 1) is False

    asyncio.run(run())
