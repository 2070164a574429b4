"""The message pipe between a node and a worker process of its (node/childproc.py: the p2p
worker, node/p2p/process.py; the RPC front-end, node/frontend/).

A Unix socketpair carrying a stream of msgpack arrays, each ``[kind, ...]``. Why msgpack
with no length prefix: ``msgpack.Unpacker`` parses a stream fed in arbitrary chunks, so
one ``data_received`` may hold many messages or part of one, with no copy per message
beyond the unpacker's own. The unpacker's buffer is bounded (each owner's
``max_message_bytes``: for the p2p worker a little above the largest frame any protocol
allows), so a peer process that writes garbage cannot make this one allocate without end:
it gets ``PipeBroken`` and the pipe closes.

Both ends are trusted (the same node, the same code); the bound and the shape checks are
against bugs, not adversaries. Flow is bounded by the protocol, not here: the worker keeps
at most ``Limits.frames_in_flight`` frames of a peer's protocol unacknowledged by the node,
exactly as it keeps that many in-process handlers unfinished.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any, cast

import msgpack


class PipeBroken(Exception):
    """The other end closed the pipe, died, or sent what is not a message."""


class MessagePipe(asyncio.Protocol):
    """One end of the pipe: ``send(message)`` writes, ``on_message(message)`` receives, in
    order; ``closed`` resolves (with the reason, or None on a clean EOF) when it ends."""

    def __init__(self, on_message: Callable[[list[Any]], None], max_message_bytes: int) -> None:
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self._unpacker = msgpack.Unpacker(raw=False, max_buffer_size=max_message_bytes, strict_map_key=False)
        self._pack = msgpack.Packer(use_bin_type=True).pack
        self.closed: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def connect(cls, sock: socket.socket, on_message: Callable[[list[Any]], None],
                      max_message_bytes: int) -> MessagePipe:
        """``max_message_bytes``: the largest message either end sends (the unpacker's bound)."""
        loop = asyncio.get_running_loop()
        _, pipe = await loop.connect_accepted_socket(lambda: cls(on_message, max_message_bytes), sock)
        return pipe

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass, but is one

    def data_received(self, data: bytes) -> None:
        try:
            self._unpacker.feed(data)
            for message in self._unpacker:
                if type(message) is not list or not message or type(message[0]) is not str:
                    raise PipeBroken(f"not a message: {type(message).__name__}")
                self.on_message(message)
        except (PipeBroken, msgpack.UnpackException, ValueError) as err:
            self._end(f"bad message on the pipe: {err}")

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(None if exc is None else f"pipe lost: {exc}")

    def _end(self, reason: str | None) -> None:
        if not self.closed.done():
            self.closed.set_result(reason)
        if self.transport is not None:
            self.transport.close()

    def send(self, message: list[Any]) -> None:
        """Queue ``message``; raises ``PipeBroken`` once the pipe has ended."""
        if self.transport is None or self.closed.done() or self.transport.is_closing():
            raise PipeBroken("the pipe is closed")
        self.transport.write(self._pack(message))

    def try_send(self, message: list[Any]) -> bool:
        """``send``, answering False instead of raising once the pipe has ended."""
        try:
            self.send(message)
        except PipeBroken:
            return False
        return True

    def close(self) -> None:
        self._end(None)
