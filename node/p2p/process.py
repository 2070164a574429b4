"""``P2PProcess``: the node's libp2p host in a worker process, with ``P2PNode``'s interface.

Why: profiled on a 4-validator devnet (py-spy, compiled build, 1,500 tx/s), py-libp2p
(trio's guest run, yamux, Noise, the stream tasks) took 28% of the samples in which the
node's main thread held the GIL, more than executing the blocks did. That thread also runs
consensus and execution, so it is the node's serial path; in a second process the network
work runs on another core instead of between blocks. What stays on the node's thread is a
msgpack message per frame on a Unix socket (``pipe.py``).

Semantics are ``P2PNode``'s (``host.py``): handlers called in per-stream order; a one-way
frame's stream hands the node its next frames while up to ``Limits.frames_in_flight``
verdicts are outstanding, then waits (the worker's handler returns the verdict's future);
a handler's ``BadFrame`` counts against the peer and closes its stream; request
outcomes raise the same exception classes. ``send`` and ``broadcast`` are fire-and-forget
and answer from the connected set the worker last reported (it reports a change within
50 ms). ``metrics_snapshot`` is the worker's, at most 250 ms old
(and sent again whenever the connected set changes).

Lifetime: the worker dies with the node (``PR_SET_PDEATHSIG`` and the pipe's end); if the
worker dies first, ``on_failure`` tells the node, which stops (a node without its network
cannot take part, and a restart brings both back).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from node.childproc import ChildProcess
from node.p2p import errors, identity, protocols
from node.p2p.core import Limits, OneWayHandler, RequestHandler

log = logging.getLogger("bookchain.p2p.process")

_ERRORS: dict[str, type[Exception]] = {
    cls.__name__: cls for cls in (errors.RequestTimeout, errors.RemoteError, errors.PeerDisconnected,
                                  errors.PeerUnavailable, errors.QueueFull, errors.NotRunning, ValueError)}


class P2PProcess:
    """Drop-in for ``P2PNode`` as the node uses it, with libp2p in a child process."""

    def __init__(self, home: str, listen_multiaddr: str, peers: Iterable[str] = (), *,
                 limits: Limits | None = None, log_path: str = os.devnull) -> None:
        self.home = home
        self.listen = listen_multiaddr
        self.peers = list(peers)
        self.limits = limits or Limits()
        self.log_path = log_path
        _, self.peer_id = identity.load_or_create(identity.resolve_key_path(home))  # before the worker reads it
        self.listen_addrs: list[str] = []
        self._oneway: dict[str, OneWayHandler] = {}
        self._serving: dict[str, RequestHandler] = {}
        self._on_peer_connected: Callable[[str], None] | None = None
        self._connected: list[str] = []
        self._metrics: dict[str, Any] = {}
        self._pending: dict[int, asyncio.Future[tuple[str, Any]]] = {}
        self._ids = 0
        self._child = ChildProcess("node.p2p.worker", "the p2p worker", self._on_message,
                                   max_message_bytes=protocols.PIPE_MESSAGE_BYTES)
        self._child.on_end = self._fail_pending
        self._specs: list[tuple[str, str]] | None = None  # the protocols the worker was spawned for

    # ------------------------------------------------------------ configuration
    def register(self, protocol_id: str, handler: OneWayHandler) -> None:
        self._oneway[protocol_id] = handler

    def register_request(self, protocol_id: str, handler: RequestHandler) -> None:
        self._serving[protocol_id] = handler

    def on_peer_connected(self, callback: Callable[[str], None] | None) -> None:
        self._on_peer_connected = callback

    # ------------------------------------------------------------ lifecycle
    @property
    def on_failure(self) -> Callable[[str], None] | None:
        return self._child.on_failure

    @on_failure.setter
    def on_failure(self, callback: Callable[[str], None] | None) -> None:
        self._child.on_failure = callback

    async def spawn(self, specs: list[tuple[str, str]]) -> None:
        """Start the worker process now, for the protocols ``specs`` names (``(id,
        "oneway"|"request")``): it loads libp2p (~1.3 s) while the node opens its stores and
        replays, and listens once ``start`` tells it to, when the handlers are registered."""
        self._specs = sorted(specs)
        await self._child.spawn({"home": self.home, "listen": self.listen, "peers": self.peers,
                                 "limits": dataclasses.asdict(self.limits), "log_path": self.log_path,
                                 "specs": [list(spec) for spec in self._specs]})

    async def start(self) -> None:
        """Let the worker listen and dial (spawning it first if ``spawn`` did not) and wait
        until it does; ``OSError`` if it cannot."""
        registered = sorted([(p, "oneway") for p in self._oneway] + [(p, "request") for p in self._serving])
        if self._specs is None:
            await self.spawn(registered)
        elif self._specs != registered:
            await self.stop()
            raise RuntimeError(f"p2p worker spawned for {self._specs}, handlers registered for {registered}")
        self._child.post(["L"])
        failure = await self._child.wait_up()
        if failure is not None:
            raise OSError(f"p2p on {self.listen}: {failure}")
        self.listen_addrs = list(self._child.up_message[2])
        log.info("p2p worker process %d up: %s", self._child.pid, self.peer_id)

    def _fail_pending(self, reason: str) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_result(("NotRunning", reason))
        self._pending.clear()

    async def stop(self) -> None:
        """Stop the worker (it closes every connection and releases the port). Idempotent."""
        await self._child.stop()

    # ------------------------------------------------------------ sending
    def send(self, peer_id: str, protocol_id: str, frame: bytes) -> bool:
        """Queue ``frame`` for ``peer_id``; False when the peer is not connected or the worker is gone."""
        return self._post(["S", peer_id, protocol_id, frame]) and peer_id in self._connected

    def broadcast(self, protocol_id: str, frame: bytes) -> int:
        return len(self._connected) if self._post(["B", protocol_id, frame]) else 0

    def _post(self, message: list[Any]) -> bool:
        return self._child.post(message)

    async def request(self, peer_id: str, protocol_id: str, payload: bytes, timeout_s: float = 10.0) -> bytes:
        """As ``P2PNode.request``: the body, or the same exception classes."""
        self._ids += 1
        rid = self._ids
        fut: asyncio.Future[tuple[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            if not self._post(["Q", rid, peer_id, protocol_id, payload, timeout_s]):
                raise errors.NotRunning("the p2p worker is not running")
            async with asyncio.timeout(timeout_s + 5):  # the worker times out first; this is for a hung worker
                status, body = await fut
        except TimeoutError:
            raise errors.RequestTimeout(f"no answer from the p2p worker for {peer_id} on {protocol_id}") from None
        finally:
            self._pending.pop(rid, None)
        if status == "ok":
            return bytes(body)
        raise _ERRORS.get(status, errors.P2PError)(body)

    # ------------------------------------------------------------ worker -> node
    def _on_message(self, message: list[Any]) -> None:
        kind = message[0]
        if kind == "F":
            self._frame(message[1], message[2], message[3], message[4])
        elif kind == "Q":
            self._child.spawn_task(self._serve(message[1], message[2], message[3], message[4]))
        elif kind == "R":
            fut = self._pending.get(message[1])
            if fut is not None and not fut.done():
                fut.set_result((message[2], message[3]))
        elif kind == "P":
            self._connected = list(message[1])
        elif kind == "C":
            if self._on_peer_connected is not None:
                self._on_peer_connected(message[1])
        elif kind == "M":
            self._metrics = message[1]
        else:
            log.error("unknown message %r from the p2p worker", kind)

    def _frame(self, ident: int, peer: str, protocol: str, body: bytes) -> None:
        """Run the node's handler of a one-way frame and send the verdict back: at once when
        the handler is a plain function (consensus frames), else once the awaitable it
        returned has run, in a task. Measured: a task per frame was 7% of a node's
        main-thread time on an idle chain (py-spy --gil)."""
        handler = self._oneway.get(protocol)
        try:
            if handler is None:
                raise errors.BadFrame(f"no handler for {protocol}")
            pending = handler(peer, body)
        except Exception as err:
            self._post(["A", ident, *self._failed(protocol, peer, err)])
            return
        if pending is None:
            self._post(["A", ident, "ok", b""])
            return
        self._child.spawn_task(self._finish_frame(ident, peer, protocol, pending))

    async def _finish_frame(self, ident: int, peer: str, protocol: str, pending: Awaitable[None]) -> None:
        try:
            await pending
        except Exception as err:
            self._post(["A", ident, *self._failed(protocol, peer, err)])
            return
        self._post(["A", ident, "ok", b""])

    async def _serve(self, ident: int, peer: str, protocol: str, body: bytes) -> None:
        """Run the node's handler for a request and send its answer back."""
        try:
            serve = self._serving.get(protocol)
            if serve is None:
                raise errors.BadFrame(f"no handler for {protocol}")
            answer = await serve(peer, body)
        except Exception as err:
            self._post(["R", ident, *self._failed(protocol, peer, err)])
            return
        self._post(["R", ident, "ok", answer])

    @staticmethod
    def _failed(protocol: str, peer: str, err: Exception) -> tuple[str, str]:
        """The verdict on a handler's exception: a bad frame (counted against the peer) or
        an internal error (logged here)."""
        if isinstance(err, errors.BadFrame):
            return "bad", str(err) or "BadFrame"
        log.error("p2p handler for %s from %s failed", protocol, peer[-8:], exc_info=err)
        return "err", f"internal error: {type(err).__name__}"

    # ------------------------------------------------------------ state
    def connected_peers(self) -> list[str]:
        return list(self._connected)

    def metrics_snapshot(self) -> dict[str, Any]:
        return {**self._metrics, "worker_pid": self._child.pid}
