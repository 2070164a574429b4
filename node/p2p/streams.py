"""Trio-side loops that move frames between a libp2p stream and our queues.

Both directions of a stream get their own task; when either ends (EOF, reset, bad
frame, write error) it cancels the other through a shared cancel scope. Task bodies
never let an ``Exception`` escape (``run_pair``), so a nursery only ever sees
``trio.Cancelled`` and a node's failure cannot turn into an ``ExceptionGroup`` that
tears down the shared trio run.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio
from libp2p.abc import INetStream

from node.p2p.framing import encode_frames
from node.p2p.metrics import ProtocolStats
from node.p2p.queues import Entry, OutQueue

log = logging.getLogger(__name__)

StreamTask = Callable[[INetStream], Awaitable[None]]


async def run_pair(stream: INetStream, first: StreamTask, second: StreamTask, label: str) -> None:
    """Run two loops on ``stream`` until either finishes; swallow their errors."""

    async def one(task: StreamTask, scope: trio.CancelScope) -> None:
        try:
            await task(stream)
        except Exception as exc:
            log.debug("%s: %s ended: %r", label, getattr(task, "__name__", task), exc)
        finally:
            scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, first, nursery.cancel_scope)
        nursery.start_soon(one, second, nursery.cancel_scope)


async def write_loop(
    stream: INetStream,
    queue: OutQueue,
    stats: ProtocolStats,
    *,
    batch_bytes: int,
    max_attempts: int,
    on_written: Callable[[list[Entry]], None] | None = None,
) -> None:
    """Drain ``queue`` into ``stream``: the single writer of this stream.

    Frames are coalesced into one write of up to ``batch_bytes`` (one yamux/Noise round
    instead of one per 200-byte frame). A batch whose write fails goes back to the head
    of the queue for the next stream, unless its frames already failed
    ``max_attempts`` times (a frame that keeps killing streams must not block the rest).
    Returns when the queue is closed and empty.
    """
    while True:
        await queue.wait()
        if not len(queue):
            return  # closed and drained
        batch = queue.take_batch(batch_bytes)
        for entry in batch:
            entry.attempts += 1
        data = encode_frames([entry.frame for entry in batch])
        try:
            await stream.write(data)
        except BaseException:
            queue.put_front([e for e in batch if e.attempts < max_attempts])
            for entry in batch:
                if entry.attempts >= max_attempts:
                    queue.drop(entry)
            raise
        stats.frames_out += len(batch)
        stats.bytes_out += len(data) - 4 * len(batch)
        if on_written is not None:
            on_written(batch)


async def reset_quietly(stream: INetStream) -> None:
    """Reset a stream we are done with, ignoring errors, even while being cancelled."""
    with trio.CancelScope(shield=True), trio.move_on_after(2):
        try:
            await stream.reset()
        except Exception as exc:
            log.debug("stream reset failed: %r", exc)
