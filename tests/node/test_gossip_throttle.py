"""Clients' txs are gossiped at most once per ``gossip_gap_ms``: the first batch on a quiet
node leaves at once, batches admitted within the gap leave together when it ends (one
frame per peer instead of one per request), and a flush due after a write failed sends
nothing (that node acknowledges nothing more)."""

from __future__ import annotations

import asyncio
import math
from types import SimpleNamespace
from typing import Any

import pytest

from node.config import MempoolConfig
from node.p2p import protocols
from node.runtime import NodeRuntime
from state.codec import decode


class Pool:
    def __init__(self) -> None:
        self.new: list[bytes] = []

    def take_gossip(self) -> list[bytes]:
        out, self.new = self.new, []
        return out


def runtime(gap_ms: int) -> Any:
    rt: Any = NodeRuntime.__new__(NodeRuntime)  # only what gossip reads
    rt.config = SimpleNamespace(mempool=MempoolConfig(gossip_gap_ms=gap_ms))
    rt.mempool = Pool()
    rt.storage_failure = None
    rt.faults = SimpleNamespace(isolated=lambda: False)
    rt.sent = []
    rt.p2p = SimpleNamespace(broadcast=lambda proto, frame: rt.sent.append((proto, decode(frame, max_bytes=1 << 20))))
    rt._gossip_timer = None
    rt._gossip_sent_at = -math.inf
    return rt


def test_batches_within_the_gap_leave_in_one_frame() -> None:
    async def run() -> list[Any]:
        rt = runtime(gap_ms=200)
        rt.mempool.new = [b"a"]
        rt._gossip_soon()
        assert rt.sent == [(protocols.TX, [b"a"])]  # a quiet node: at once
        rt.mempool.new = [b"b"]
        rt._gossip_soon()
        rt.mempool.new.append(b"c")
        rt._gossip_soon()
        assert len(rt.sent) == 1 and rt._gossip_timer is not None  # held for the gap
        while rt._gossip_timer is not None:
            await asyncio.sleep(0.001)
        assert len(rt.sent) == 2
        rt.mempool.new = [b"d"]  # just after that flush: held for a gap again
        rt._gossip_soon()
        assert rt._gossip_timer is not None and len(rt.sent) == 2
        while rt._gossip_timer is not None:
            await asyncio.sleep(0.001)
        return list(rt.sent)

    assert asyncio.run(run()) == [(protocols.TX, [b"a"]), (protocols.TX, [b"b", b"c"]), (protocols.TX, [b"d"])]


def test_no_gap_sends_every_batch_at_once() -> None:
    async def run() -> list[Any]:
        rt = runtime(gap_ms=0)
        for tx in (b"a", b"b"):
            rt.mempool.new = [tx]
            rt._gossip_soon()
        assert rt._gossip_timer is None
        return list(rt.sent)

    assert asyncio.run(run()) == [(protocols.TX, [b"a"]), (protocols.TX, [b"b"])]


def test_nothing_to_send_does_not_start_the_gap() -> None:
    async def run() -> None:
        rt = runtime(gap_ms=50)
        rt._gossip_soon()  # e.g. the periodic tick with nothing new
        rt.mempool.new = [b"a"]
        rt._gossip_soon()
        assert rt.sent == [(protocols.TX, [b"a"])]

    asyncio.run(run())


def test_a_flush_due_after_a_failed_write_sends_nothing() -> None:
    async def run() -> list[Any]:
        rt = runtime(gap_ms=20)
        rt.mempool.new = [b"a"]
        rt._gossip_soon()
        rt.mempool.new = [b"b"]
        rt._gossip_soon()
        rt.storage_failure = object()  # the journal's write failed meanwhile: b was refused
        while rt._gossip_timer is not None:
            await asyncio.sleep(0.001)
        return list(rt.sent)

    assert asyncio.run(run()) == [(protocols.TX, [b"a"])]


def test_the_gap_is_bounded() -> None:
    with pytest.raises(ValueError, match="gossip_gap_ms"):
        MempoolConfig(gossip_gap_ms=5000)
    with pytest.raises(ValueError, match="gossip_gap_ms"):
        MempoolConfig(gossip_gap_ms=-1)
