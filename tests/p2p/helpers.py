"""Shared helpers for p2p tests: an async test runner on uvloop, ports, raw streams."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import trio
import uvloop
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from node.p2p import P2PNode

P = ParamSpec("P")
R = TypeVar("R")


def aio(timeout_s: float = 30.0) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, R]]:
    """Run an async test on a fresh uvloop loop (no pytest-asyncio in the venv)."""

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            async def main() -> R:
                async with asyncio.timeout(timeout_s):
                    return await fn(*args, **kwargs)

            return uvloop.run(main())

        return wrapper

    return decorate


def free_port() -> int:
    """A TCP port that was free a moment ago (for tests that restart on a fixed port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """True if a plain (non-SO_REUSEPORT) socket can bind and listen on ``port``."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen(1)
        except OSError:
            return False
        return True


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll ``predicate`` every 10 ms until it holds."""
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.01)


async def raw_write(node: P2PNode, peer_id: str, protocol_id: str, data: bytes) -> bool:
    """Open a raw libp2p stream from ``node`` and write ``data`` without our framing.

    Returns True if the remote closed or reset the stream within 3 s (what a receiver
    must do with garbage).
    """
    host: Any = node.libp2p_host
    bridge = node.bridge
    assert host is not None and bridge is not None

    async def attack() -> bool:
        stream = await host.new_stream(ID.from_base58(peer_id), [TProtocol(protocol_id)])
        closed = False
        try:
            await stream.write(data)
            with trio.move_on_after(3):
                try:
                    while await stream.read(65536):
                        pass
                except Exception:
                    pass
                closed = True
        finally:
            with trio.CancelScope(shield=True), contextlib.suppress(Exception):
                await stream.reset()
        return closed

    return await bridge.run(attack)
