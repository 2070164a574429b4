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
import contextlib
import dataclasses
import json
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from node.p2p import errors, identity
from node.p2p.core import Limits, OneWayHandler, RequestHandler
from node.p2p.pipe import MessagePipe, PipeBroken

log = logging.getLogger("bookchain.p2p.process")

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
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
        self.on_failure: Callable[[str], None] | None = None
        self._oneway: dict[str, OneWayHandler] = {}
        self._serving: dict[str, RequestHandler] = {}
        self._on_peer_connected: Callable[[str], None] | None = None
        self._connected: list[str] = []
        self._metrics: dict[str, Any] = {}
        self._pending: dict[int, asyncio.Future[tuple[str, Any]]] = {}
        self._ids = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._pipe: MessagePipe | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._up: asyncio.Future[str | None] | None = None
        self._stopping = False

    # ------------------------------------------------------------ configuration
    def register(self, protocol_id: str, handler: OneWayHandler) -> None:
        self._oneway[protocol_id] = handler

    def register_request(self, protocol_id: str, handler: RequestHandler) -> None:
        self._serving[protocol_id] = handler

    def on_peer_connected(self, callback: Callable[[str], None] | None) -> None:
        self._on_peer_connected = callback

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start the worker and wait until it listens; ``OSError`` if it cannot."""
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        config = {"home": self.home, "listen": self.listen, "peers": self.peers,
                  "limits": dataclasses.asdict(self.limits), "log_path": self.log_path,
                  "specs": sorted([[p, "oneway"] for p in self._oneway] + [[p, "request"] for p in self._serving]), "parent_pid": os.getpid()}
        self._up = loop.create_future()
        try:
            self._pipe = await MessagePipe.connect(ours, self._on_message)
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-P", "-m", "node.p2p.worker", str(theirs.fileno()), json.dumps(config),
                pass_fds=(theirs.fileno(),), stdin=asyncio.subprocess.DEVNULL)
        finally:
            theirs.close()
        watch = asyncio.ensure_future(self._watch())
        self._tasks.add(watch)
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                failure = await asyncio.shield(self._up)
        except TimeoutError:
            failure = f"the p2p worker did not start within {START_TIMEOUT_S:.0f} s"
        if failure is not None:
            await self.stop()
            raise OSError(f"p2p on {self.listen}: {failure}")
        log.info("p2p worker process %d up: %s", self._proc.pid, self.peer_id)

    async def _watch(self) -> None:
        """The worker's exit or the pipe's end, whichever comes first, is the node's concern."""
        assert self._proc is not None and self._pipe is not None
        exited: asyncio.Future[Any] = asyncio.ensure_future(self._proc.wait())
        ended: asyncio.Future[Any] = self._pipe.closed
        await asyncio.wait([exited, ended], return_when=asyncio.FIRST_COMPLETED)
        reason = (f"the p2p worker exited with status {self._proc.returncode}" if exited.done()
                  else f"the p2p pipe ended: {self._pipe.closed.result() or 'closed'}")
        self._fail_pending(reason)
        if self._up is not None and not self._up.done():
            self._up.set_result(reason)
        elif not self._stopping:
            log.critical("%s: the node stops", reason)
            if self.on_failure is not None:
                self.on_failure(reason)

    def _fail_pending(self, reason: str) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_result(("NotRunning", reason))
        self._pending.clear()

    async def stop(self) -> None:
        """Stop the worker (it closes every connection and releases the port). Idempotent."""
        if self._stopping:
            return
        self._stopping = True
        proc, pipe = self._proc, self._pipe
        if pipe is not None:
            with contextlib.suppress(PipeBroken):
                pipe.send(["X"])
        if proc is not None and proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                log.warning("p2p worker %d did not stop within %.0f s: killing it", proc.pid, STOP_TIMEOUT_S)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if pipe is not None:
            pipe.close()
        for task in list(self._tasks):
            task.cancel()
        self._fail_pending("the p2p worker stopped")

    # ------------------------------------------------------------ sending
    def send(self, peer_id: str, protocol_id: str, frame: bytes) -> bool:
        """Queue ``frame`` for ``peer_id``; False when the peer is not connected or the worker is gone."""
        return self._post(["S", peer_id, protocol_id, frame]) and peer_id in self._connected

    def broadcast(self, protocol_id: str, frame: bytes) -> int:
        return len(self._connected) if self._post(["B", protocol_id, frame]) else 0

    def _post(self, message: list[Any]) -> bool:
        if self._pipe is None or self._stopping:
            return False
        try:
            self._pipe.send(message)
        except PipeBroken:
            return False
        return True

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
            task = asyncio.ensure_future(self._serve(message[1], message[2], message[3], message[4]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
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
        elif kind == "U":
            self.listen_addrs = list(message[2])
            if self._up is not None and not self._up.done():
                self._up.set_result(None)
        elif kind == "E":
            if self._up is not None and not self._up.done():
                self._up.set_result(message[1])
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
        task = asyncio.ensure_future(self._finish_frame(ident, peer, protocol, pending))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
        return {**self._metrics, "worker_pid": self._proc.pid if self._proc is not None else None}
