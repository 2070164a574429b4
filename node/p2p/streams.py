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
from typing import Any

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


class StallTimeout(Exception):
    """The receiver granted no flow-control window for ``stall_timeout_s``."""


async def write_all(stream: INetStream, data: bytes, stall_timeout_s: float) -> None:
    """Write ``data``, waiting as long as ``stall_timeout_s`` for yamux flow control.

    py-libp2p 0.8.1's ``YamuxStream.write`` gives up after 5 s without send window and
    resets the stream, which throws away everything the receiver has buffered but not
    yet read (up to its 16 MB window). A receiver whose handler is busy for a few
    seconds (a big sync batch, a GC pause) would lose frames. So we only ever hand
    yamux as many bytes as the window allows and do the waiting ourselves.
    """
    muxed = getattr(stream, "muxed_stream", None)
    if muxed is None or not isinstance(getattr(muxed, "send_window", None), int):
        await stream.write(data)
        return
    sent = 0
    total = len(data)
    while sent < total:
        window = muxed.send_window
        if window <= 0:
            await _wait_for_window(muxed, stall_timeout_s)
            continue
        if sent == 0 and window >= total:
            await stream.write(data)
            return
        chunk = data[sent : sent + window]
        await stream.write(chunk)
        sent += len(chunk)


async def _wait_for_window(muxed: Any, stall_timeout_s: float) -> None:
    delay = 0.001
    with trio.move_on_after(stall_timeout_s):
        while muxed.send_window <= 0:
            if getattr(muxed, "closed", False) or getattr(muxed, "send_closed", False):
                return  # let the next write raise the stream's own error
            await trio.sleep(delay)
            delay = min(delay * 2, 0.01)
        return
    raise StallTimeout(f"no flow-control window for {stall_timeout_s} s")


async def write_loop(
    stream: INetStream,
    queue: OutQueue,
    stats: ProtocolStats,
    *,
    batch_bytes: int,
    max_attempts: int,
    stall_timeout_s: float,
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
            await write_all(stream, data, stall_timeout_s)
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
