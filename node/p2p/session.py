"""The outbound side of one (peer, protocol): a queue and one long-lived stream.

A session outlives its streams. Its task waits for frames, waits until the peer is
connected (the dialer brings it back after a restart), opens a stream, and then runs
the single writer plus a reader: on request/response protocols the reader matches
responses to pending requests; on one-way protocols it only notices the remote closing
or resetting the stream, which may otherwise go unseen until the next write. When the
stream dies, requests already written on it fail with ``PeerDisconnected`` (their
responses cannot arrive any more) and everything still queued waits for the next stream.
"""

from __future__ import annotations

import asyncio
import logging

import trio
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol

from node.p2p.core import Core, ProtocolSpec
from node.p2p.errors import NotRunning, PeerDisconnected, QueueFull, RemoteError
from node.p2p.framing import (
    KIND_ERROR,
    KIND_RESPONSE,
    FrameError,
    FrameParser,
    FrameTooLarge,
    unpack_envelope,
)
from node.p2p.peers import Backoff, PeerState
from node.p2p.queues import Entry, OutQueue
from node.p2p.streams import reset_quietly, run_pair, write_loop

log = logging.getLogger(__name__)


class OutboundSession:
    """Queue, stream and pending requests for frames we send to one peer on one protocol."""

    def __init__(self, core: Core, peer: PeerState, spec: ProtocolSpec) -> None:
        self.core = core
        self.peer = peer
        self.spec = spec
        self.stats = core.metrics.proto(spec.protocol_id)
        self.queue = OutQueue(
            core.bridge,
            max_frames=core.limits.queue_max_frames,
            max_bytes=core.limits.queue_max_bytes,
            on_drop=self._on_drop,
        )
        self.pending: dict[int, asyncio.Future[bytes]] = {}
        self._written: set[int] = set()
        self.label = f"{spec.protocol_id} -> {peer.peer_id}"

    # ------------------------------------------------------------ asyncio side

    def put(self, entry: Entry) -> None:
        self.queue.put(entry)

    def close(self) -> None:
        """Node stopping: stop the writer and fail every pending request."""
        self.queue.close()
        self.queue.drain()
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(NotRunning("p2p node stopped"))
        self.pending.clear()

    def _on_drop(self, entry: Entry) -> None:
        self.stats.dropped_out += 1
        if entry.request_id is not None:
            fut = self.pending.pop(entry.request_id, None)
            if fut is not None and not fut.done():
                fut.set_exception(QueueFull(f"{self.label}: outbound queue overflowed"))

    # ------------------------------------------------------------ trio side

    async def run(self) -> None:
        """Keep a stream open whenever there is something to send and the peer is up."""
        backoff = Backoff(self.core.limits.backoff_initial_s, self.core.limits.backoff_max_s)
        while not self.queue.closed:
            await self.queue.wait()
            if self.queue.closed:
                return
            await self.peer.wait_usable()
            stream = await self._open()
            if stream is None:
                await trio.sleep(backoff.next_delay())
                continue
            backoff.reset()
            try:
                await run_pair(stream, self._write, self._read, self.label)
            finally:
                await reset_quietly(stream)
                self._fail_written()

    async def _open(self) -> INetStream | None:
        host = self.core.host
        if host is None:
            return None
        try:
            with trio.fail_after(self.core.limits.open_timeout_s):
                stream = await host.new_stream(self.peer.pid, [TProtocol(self.spec.protocol_id)])
        except (Exception, trio.TooSlowError) as exc:
            self.core.metrics.stream_failures += 1
            log.debug("%s: cannot open stream: %r", self.label, exc)
            return None
        self.core.metrics.streams_opened += 1
        return stream

    async def _write(self, stream: INetStream) -> None:
        limits = self.core.limits
        await write_loop(
            stream,
            self.queue,
            self.stats,
            batch_bytes=limits.write_batch_bytes,
            max_attempts=limits.max_write_attempts,
            stall_timeout_s=limits.stall_timeout_s,
            on_written=self._note_written if self.spec.kind == "request" else None,
        )

    def _note_written(self, batch: list[Entry]) -> None:
        for entry in batch:
            if entry.request_id is not None and entry.request_id in self.pending:
                self._written.add(entry.request_id)

    def _fail_written(self) -> None:
        for request_id in self._written:
            fut = self.pending.pop(request_id, None)
            if fut is not None and not fut.done():
                self.stats.request_failures += 1
                fut.set_exception(PeerDisconnected(f"{self.label}: stream closed"))
        self._written.clear()

    async def _read(self, stream: INetStream) -> None:
        if self.spec.kind == "request":
            await self._read_responses(stream)
        else:
            await self._watch(stream)

    async def _watch(self, stream: INetStream) -> None:
        """One-way stream: the remote never writes; data means a broken peer."""
        data = await stream.read(1)
        if data:
            self.core.bad_frame(self.peer, self.spec.protocol_id, "data on a one-way stream")

    async def _read_responses(self, stream: INetStream) -> None:
        parser = FrameParser(self.spec.max_frame_bytes)
        chunk = self.core.limits.read_chunk_bytes
        stats = self.stats
        while True:
            data = await stream.read(chunk)
            if not data:
                return
            self.peer.heard()
            try:
                frames = parser.feed(data)
                for frame in frames:
                    stats.frames_in += 1
                    stats.bytes_in += len(frame)
                    kind, request_id, body = unpack_envelope(frame)
                    if kind not in (KIND_RESPONSE, KIND_ERROR):
                        raise FrameError(f"envelope kind {kind} on a response stream")
                    self._resolve(kind, request_id, body)
            except (FrameTooLarge, FrameError) as exc:
                self.core.bad_frame(self.peer, self.spec.protocol_id, str(exc))
                return

    def _resolve(self, kind: int, request_id: int, body: bytes) -> None:
        self._written.discard(request_id)
        fut = self.pending.pop(request_id, None)
        if fut is None or fut.done():
            self.stats.late_responses += 1
            return
        if kind == KIND_RESPONSE:
            fut.set_result(body)
        else:
            self.stats.request_failures += 1
            fut.set_exception(RemoteError(body[:512].decode("utf-8", "replace")))
