"""The inbound side: streams a peer opened to us, one handler task each (trio).

One-way protocols: read frames, hand them in order to the asyncio handler through an
``Inbox``; a handler's awaitable runs while the next frames are handed over, up to
``frames_in_flight`` unfinished per peer and protocol (then the stream waits for one to
finish). Why: a handler that waits (the p2p worker's waits for the node's verdict, a round
trip through the node's loop; a tx frame's waits for its signatures) would otherwise hold
every later frame of its stream, votes behind votes, for as long as the node's loop lags.

Request/response protocols: read enveloped requests, run the asyncio handler for each (up
to ``max_concurrent_requests`` at once per stream) and send the responses back on the same
stream through its single writer.

Never crash on garbage: an oversized length prefix, a malformed envelope or a handler
raising ``BadFrame`` closes *this* stream and counts a bad frame against the peer
(``Core.bad_frame`` bans repeat offenders); end of stream, resets and connection loss
just end the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import cast

import trio
from libp2p.abc import INetStream

from node.p2p.core import Core, OneWayHandler, ProtocolSpec, RequestHandler
from node.p2p.errors import BadFrame
from node.p2p.framing import (
    KIND_ERROR,
    KIND_REQUEST,
    KIND_RESPONSE,
    FrameError,
    FrameParser,
    FrameTooLarge,
    pack_envelope,
    unpack_envelope,
)
from node.p2p.peers import PeerState
from node.p2p.queues import Entry, Inbox, OutQueue
from node.p2p.streams import reset_quietly, run_pair, write_loop

log = logging.getLogger(__name__)


async def handle_inbound(core: Core, spec: ProtocolSpec, stream: INetStream) -> None:
    """libp2p stream handler for ``spec`` (runs in libp2p's per-connection nursery)."""
    try:
        pid = stream.muxed_conn.peer_id
        peer = core.peer_for(pid.to_base58(), pid)
    except Exception as exc:
        log.debug("inbound stream without a usable peer id: %r", exc)
        await reset_quietly(stream)
        return
    if core.stopping or peer.banned() or spec.handler is None:
        core.metrics.rejected_streams += 1
        await reset_quietly(stream)
        return
    core.metrics.inbound_streams += 1
    with trio.CancelScope() as scope:
        core.inbound_scopes.add(scope)
        inbound = InboundStream(core, spec, peer, scope)
        try:
            await inbound.serve(stream)
        except Exception as exc:  # never let a peer's stream crash libp2p's nursery
            log.debug("%s: inbound stream ended: %r", inbound.label, exc)
        finally:
            core.inbound_scopes.discard(scope)
            inbound.finish()
            await reset_quietly(stream)


class InboundStream:
    """State of one inbound stream; ``serve`` runs on the trio side."""

    def __init__(self, core: Core, spec: ProtocolSpec, peer: PeerState, scope: trio.CancelScope):
        self.core = core
        self.spec = spec
        self.peer = peer
        self.scope = scope
        self.stats = core.metrics.proto(spec.protocol_id)
        self.label = f"{spec.protocol_id} <- {peer.peer_id}"
        limits = core.limits
        consume = self._consume_request if spec.kind == "request" else self._consume_frame
        key = self.key = (peer.peer_id, spec.protocol_id)
        previous = core.last_inbox.get(key) if spec.kind == "oneway" else None
        self.inbox = Inbox(
            core.bridge,
            consume,
            high_water_frames=limits.inbox_max_frames,
            high_water_bytes=limits.inbox_max_bytes,
            name=f"inbox {self.label}",
            after=previous if previous is not None and not previous.done() else None,
        )
        core.track(self.inbox.task)
        if spec.kind == "oneway":
            core.last_inbox[key] = self.inbox.task
            self.inbox.task.add_done_callback(
                lambda task: (
                    core.last_inbox.pop(key, None) if core.last_inbox.get(key) is task else None
                )
            )
        self.responses: OutQueue | None = None
        self.refused = False  # a handler called a frame bad: read no more of this stream
        self.answering: set[asyncio.Task[None]] = set()
        self.slots = asyncio.Semaphore(limits.max_concurrent_requests)

    async def serve(self, stream: INetStream) -> None:
        if self.spec.kind == "oneway":
            await self._read(stream)
            return
        self.responses = OutQueue(
            self.core.bridge,
            max_frames=self.core.limits.queue_max_frames,
            max_bytes=self.core.limits.queue_max_bytes,
            on_drop=self._on_drop,
        )
        await run_pair(stream, self._read, self._write, self.label)

    def finish(self) -> None:
        """Stream over: let the consumer finish complete frames (one-way) or stop it."""
        if self.spec.kind == "oneway" and not self.core.stopping:
            self.inbox.close()
        else:
            self.inbox.abort()
        for task in self.answering:
            task.cancel()
        if self.responses is not None:
            self.responses.close()
            self.responses.drain()

    # ------------------------------------------------------------ trio side

    async def _read(self, stream: INetStream) -> None:
        parser = FrameParser(self.spec.max_frame_bytes)
        chunk = self.core.limits.read_chunk_bytes
        stats = self.stats
        inbox = self.inbox
        while True:
            data = await stream.read(chunk)
            if not data:
                return
            self.peer.heard()
            try:
                frames = parser.feed(data)
            except FrameTooLarge as exc:
                self.core.bad_frame(self.peer, self.spec.protocol_id, str(exc))
                return
            if not frames:
                continue
            stats.frames_in += len(frames)
            stats.bytes_in += sum(len(f) for f in frames)
            inbox.push(frames)
            if inbox.full():
                await inbox.wait_room()
            if inbox.closed:
                return

    async def _write(self, stream: INetStream) -> None:
        assert self.responses is not None
        await write_loop(
            stream,
            self.responses,
            self.stats,
            batch_bytes=self.core.limits.write_batch_bytes,
            max_attempts=1,
            stall_timeout_s=self.core.limits.stall_timeout_s,
        )

    def _on_drop(self, entry: Entry) -> None:
        self.stats.dropped_out += 1

    # ------------------------------------------------------------ asyncio side

    def _close_stream(self) -> None:
        self.inbox.closed = True
        # If the bridge is already gone, so is the stream.
        with contextlib.suppress(Exception):
            self.core.bridge.run_sync_soon(self.scope.cancel)

    async def _consume_frame(self, frame: bytes) -> bool:
        handler = cast(OneWayHandler, self.spec.handler)
        try:
            pending = handler(self.peer.peer_id, frame)
        except Exception as exc:
            return self._handler_failed(exc)
        if pending is None:
            return True
        running = asyncio.ensure_future(pending)
        if running is not pending:  # a coroutine became a task: stop() cancels it
            self.core.track(running)
        # one set per peer and protocol, not per stream: a peer that opens stream after
        # stream still has at most ``frames_in_flight`` frames being handled
        handling = self.core.handling.setdefault(self.key, set())
        handling.add(running)
        running.add_done_callback(self._handled)
        while handling and len(handling) >= self.core.limits.frames_in_flight and not self.refused:
            await asyncio.wait(handling, return_when=asyncio.FIRST_COMPLETED)
            handling = self.core.handling.setdefault(self.key, set())
        return not self.refused

    def _handled(self, running: asyncio.Future[None]) -> None:
        handling = self.core.handling.get(self.key)
        if handling is not None:
            handling.discard(running)
            if not handling:
                del self.core.handling[self.key]
        if running.cancelled():
            return
        exc = running.exception()
        if exc is not None and not self._handler_failed(exc):
            self.inbox.abort()

    def _handler_failed(self, exc: BaseException) -> bool:
        """A handler raised: a bad frame closes the stream and counts against the peer
        (False: read no more), anything else is logged and counted (True: go on)."""
        if isinstance(exc, BadFrame):
            self.refused = True
            self.core.bad_frame(self.peer, self.spec.protocol_id, str(exc) or "BadFrame")
            self._close_stream()
            return False
        self.stats.handler_errors += 1
        log.error("%s: handler failed", self.label, exc_info=exc)
        return True

    async def _consume_request(self, frame: bytes) -> bool:
        try:
            kind, request_id, body = unpack_envelope(frame)
            if kind != KIND_REQUEST:
                raise FrameError(f"envelope kind {kind} on a request stream")
        except FrameError as exc:
            self.core.bad_frame(self.peer, self.spec.protocol_id, str(exc))
            self._close_stream()
            return False
        self.stats.requests_in += 1
        await self.slots.acquire()
        task = self.core.loop.create_task(self._answer(request_id, body))
        self.answering.add(task)
        task.add_done_callback(self.answering.discard)
        self.core.track(task)
        return True

    async def _answer(self, request_id: int, body: bytes) -> None:
        handler = cast(RequestHandler, self.spec.handler)
        close_after = False
        try:
            try:
                response = await handler(self.peer.peer_id, body)
                frame = pack_envelope(KIND_RESPONSE, request_id, bytes(response))
                if len(frame) > self.spec.max_frame_bytes:
                    self.stats.handler_errors += 1
                    frame = pack_envelope(KIND_ERROR, request_id, b"response too large")
            except BadFrame as exc:
                self.core.bad_frame(self.peer, self.spec.protocol_id, str(exc) or "BadFrame")
                frame = pack_envelope(KIND_ERROR, request_id, b"bad request")
                close_after = True
            except Exception as exc:
                self.stats.handler_errors += 1
                log.exception("%s: request handler failed", self.label)
                reason = f"internal error: {type(exc).__name__}"
                frame = pack_envelope(KIND_ERROR, request_id, reason.encode())
            if self.responses is not None:
                self.responses.put(Entry(frame))
                if close_after:
                    self.inbox.closed = True
                    self.responses.close()  # the writer flushes the error, then ends the stream
        finally:
            self.slots.release()
