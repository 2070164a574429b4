"""The two queues that cross the asyncio/trio boundary.

``OutQueue``: asyncio code (``send``, ``request``, request handlers) appends frames
without blocking; one trio writer task per stream drains it. Keeping exactly one writer
per stream is what keeps frames intact: libp2p 0.8.1 splits a write larger than 64 KB
into several yamux frames and two concurrent writers interleave those pieces.
The queue is bounded in frames and bytes and drops the *oldest* entries when full:
for consensus the newest messages (current height/round) are the useful ones, and a
node that cannot keep up with a peer for that long is better off catching up via sync.

``Inbox``: one trio reader task per inbound stream appends frames; one asyncio task
hands them to the protocol handler one at a time, which preserves per-stream order;
a new stream's inbox waits for the previous one of the same (peer, protocol) to drain,
which extends that order across stream resets.
When the handler falls behind, the reader stops reading, so the backlog stays in the
yamux window and the sender's queue instead of growing here without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

import trio

from node.p2p.bridge import TrioBridge

log = logging.getLogger(__name__)


class Entry:
    """One outbound frame (already enveloped) and, for requests, its request id."""

    __slots__ = ("attempts", "frame", "request_id")

    def __init__(self, frame: bytes, request_id: int | None = None) -> None:
        self.frame = frame
        self.request_id = request_id
        self.attempts = 0


class OutQueue:
    """Bounded FIFO of outbound frames, filled from asyncio, drained by one trio task."""

    def __init__(
        self,
        bridge: TrioBridge,
        *,
        max_frames: int,
        max_bytes: int,
        on_drop: Callable[[Entry], None],
    ) -> None:
        self._bridge = bridge
        self._items: deque[Entry] = deque()
        self.nbytes = 0
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._on_drop = on_drop
        self._parked: trio.Event | None = None
        self._wake_scheduled = False
        self.closed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, entry: Entry) -> None:
        """Append; drop the oldest entries while over a bound (never the new one)."""
        if self.closed:
            self._on_drop(entry)
            return
        self._items.append(entry)
        self.nbytes += len(entry.frame)
        self._enforce_bounds(keep_last=True)
        self._wake()

    def put_front(self, entries: Iterable[Entry]) -> None:
        """Give back a batch the writer could not send (it goes first next time)."""
        batch = list(entries)
        self._items.extendleft(reversed(batch))
        self.nbytes += sum(len(e.frame) for e in batch)
        self._enforce_bounds(keep_last=False)

    def _enforce_bounds(self, *, keep_last: bool) -> None:
        items = self._items
        floor = 1 if keep_last else 0
        while len(items) > floor and (len(items) > self.max_frames or self.nbytes > self.max_bytes):
            old = items.popleft()
            self.nbytes -= len(old.frame)
            self._on_drop(old)

    def drop(self, entry: Entry) -> None:
        """Give up on an entry that is no longer in the queue (count it as dropped)."""
        self._on_drop(entry)

    def take_batch(self, max_bytes: int) -> list[Entry]:
        """Pop the head entries up to ``max_bytes`` (always at least one)."""
        items = self._items
        batch: list[Entry] = []
        size = 0
        while items and (not batch or size + len(items[0].frame) <= max_bytes):
            entry = items.popleft()
            size += len(entry.frame)
            batch.append(entry)
        self.nbytes -= size
        return batch

    def drain(self) -> list[Entry]:
        """Remove and return everything (used when the queue's owner goes away)."""
        items = list(self._items)
        self._items.clear()
        self.nbytes = 0
        return items

    async def wait(self) -> None:
        """Trio side: return once the queue is non-empty or closed."""
        while not self._items and not self.closed:
            event = self._parked = trio.Event()
            await event.wait()

    def close(self) -> None:
        """Stop accepting frames and release a parked writer."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self._parked is not None and not self._wake_scheduled:
            self._wake_scheduled = True
            try:
                self._bridge.run_sync_soon(self._do_wake)
            except Exception:  # bridge finished: nobody is parked any more
                self._wake_scheduled = False

    def _do_wake(self) -> None:
        self._wake_scheduled = False
        parked, self._parked = self._parked, None
        if parked is not None:
            parked.set()


class Inbox:
    """Frames of one inbound stream, handed to an asyncio consumer in order."""

    def __init__(
        self,
        bridge: TrioBridge,
        consume: Callable[[bytes], Awaitable[bool]],
        *,
        high_water_frames: int,
        high_water_bytes: int,
        name: str,
        after: asyncio.Task[None] | None = None,
    ) -> None:
        self._bridge = bridge
        self._after = after
        self._consume = consume
        self._items: deque[bytes] = deque()
        self.nbytes = 0
        self.high_water_frames = high_water_frames
        self.high_water_bytes = high_water_bytes
        self._waiter: asyncio.Future[None] | None = None
        self._room: trio.Event | None = None
        self._room_scheduled = False
        self.closed = False
        self.task: asyncio.Task[None] = bridge.loop.create_task(self._run(), name=name)

    # -------------------------------------------------------------- trio side

    def push(self, frames: list[bytes]) -> None:
        """Append frames from the trio reader and wake the asyncio consumer."""
        self._items.extend(frames)
        self.nbytes += sum(len(f) for f in frames)
        self._wake_consumer()

    def full(self) -> bool:
        return len(self._items) >= self.high_water_frames or self.nbytes >= self.high_water_bytes

    async def wait_room(self) -> None:
        """Trio side: block the reader while the consumer is behind."""
        while self.full() and not self.closed:
            event = self._room = trio.Event()
            await event.wait()

    def close(self) -> None:
        """No more frames will come; the consumer finishes what is queued and exits."""
        self.closed = True
        self._wake_consumer()

    def _wake_consumer(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -------------------------------------------------------------- asyncio side

    def abort(self) -> None:
        """Drop queued frames and stop the consumer (stream closed or node stopping)."""
        self.closed = True
        self._items.clear()
        self.nbytes = 0
        self._signal_room()
        if not self.task.done() and asyncio.current_task() is not self.task:
            self.task.cancel()

    def _signal_room(self) -> None:
        if self._room is not None and not self._room_scheduled:
            self._room_scheduled = True
            try:
                self._bridge.run_sync_soon(self._do_signal_room)
            except Exception:
                self._room_scheduled = False

    def _do_signal_room(self) -> None:
        self._room_scheduled = False
        room, self._room = self._room, None
        if room is not None:
            room.set()

    async def _run(self) -> None:
        if self._after is not None:
            # The previous stream of the same peer and protocol (e.g. before a stream
            # reset) delivers its remaining frames first, so order survives reconnects.
            await asyncio.wait([self._after])
        items = self._items
        while True:
            if not items:
                if self.closed:
                    return
                self._waiter = self._bridge.loop.create_future()
                await self._waiter
                continue
            frame = items.popleft()
            self.nbytes -= len(frame)
            if self._room is not None and not self.full():
                self._signal_room()
            if not await self._consume(frame):
                self.abort()
                return
