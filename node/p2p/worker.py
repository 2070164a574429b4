"""The p2p worker process: a ``P2PNode`` (libp2p, trio, yamux, Noise) run for a node over a
``MessagePipe`` (``process.py`` is the node's side and says why).

Started by ``P2PProcess.start`` as ``python -P -m node.p2p.worker <fd> <config json>``. It
dies with its node: the kernel sends it SIGKILL when the node process exits
(``PR_SET_PDEATHSIG``), and it exits when the pipe closes.

Every inbound one-way frame is handed to the node at once, in order, and its verdict
(handled, bad frame, handler error) comes back as the future the stream's handler returned:
a stream keeps up to ``Limits.frames_in_flight`` frames at the node and then waits, so flow
control, per-stream order and the bad-frame bans are what they are in one process, without
a round trip through the node's loop between one frame and the next. Inbound requests
are answered with what the node answers. The node's sends, broadcasts and requests arrive
as messages; request outcomes go back with the exception's class name.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
from typing import Any

from node.childproc import connect_parent, run_child, told_to_serve
from node.p2p import errors
from node.p2p.core import Limits
from node.p2p.host import P2PNode
from node.pipe import MessagePipe

log = logging.getLogger("bookchain.p2p.worker")

PEERS_POLL_S = 0.05  # how often the connected set is compared (a change is sent at once)
METRICS_EVERY_S = 0.25  # and at every change of the connected set (a reconnect is counted by then)


class Worker:
    def __init__(self, node: P2PNode, specs: list[tuple[str, str]]) -> None:
        self.node = node
        self.specs = specs
        self.pipe: MessagePipe | None = None
        self._verdicts: dict[int, asyncio.Future[tuple[str, Any]]] = {}  # requests the node answers
        self._frames: dict[int, asyncio.Future[None]] = {}  # frames the node has not judged yet
        self._ids = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.stop = asyncio.Event()
        self.listen = asyncio.Event()  # the node's word to listen and dial (its handlers are ready)

    # ------------------------------------------------------------ node -> worker
    def on_message(self, message: list[Any]) -> None:
        kind = message[0]
        try:
            if kind == "B":
                self.node.broadcast(message[1], message[2])
            elif kind == "S":
                self.node.send(message[1], message[2], message[3])
            elif kind == "Q":
                self._spawn(self._request(*message[1:]))
            elif kind == "A":
                self._judged(message[1], message[2], message[3])
            elif kind == "R":
                fut = self._verdicts.pop(message[1], None)
                if fut is not None and not fut.done():
                    fut.set_result((message[2], message[3]))
            elif kind == "L":
                self.listen.set()
            elif kind == "X":
                self.stop.set()
            else:
                log.error("unknown message %r from the node", kind)
        except (errors.P2PError, ValueError) as err:  # a frame to a protocol or peer it cannot go to
            log.debug("node message %s refused: %s", kind, err)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _request(self, rid: int, peer: str, protocol: str, payload: bytes, timeout_s: float) -> None:
        try:
            body = await self.node.request(peer, protocol, payload, timeout_s=timeout_s)
            self._send(["R", rid, "ok", body])
        except (errors.P2PError, ValueError, TimeoutError) as err:
            self._send(["R", rid, type(err).__name__, str(err)])

    def _send(self, message: list[Any]) -> None:
        if self.pipe is not None:
            self.pipe.try_send(message)  # False: the node is gone, and the pipe's end stops us

    # ------------------------------------------------------------ peers -> node
    async def _ask(self, message: list[Any]) -> tuple[str, Any]:
        self._ids += 1
        ident = self._ids
        fut: asyncio.Future[tuple[str, Any]] = asyncio.get_running_loop().create_future()
        self._verdicts[ident] = fut
        message[1] = ident
        try:
            self._send(message)
            return await fut
        finally:
            self._verdicts.pop(ident, None)

    def on_frame(self, protocol: str, peer: str, frame: bytes) -> asyncio.Future[None]:
        """Hand a peer's frame to the node now; the future carries its verdict."""
        self._ids += 1
        ident = self._ids
        judged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._frames[ident] = judged
        self._send(["F", ident, peer, protocol, frame])
        return judged

    def _judged(self, ident: int, verdict: str, reason: Any) -> None:
        judged = self._frames.pop(ident, None)
        if judged is None or judged.done():
            return
        if verdict == "ok":
            judged.set_result(None)
        elif verdict == "bad":
            judged.set_exception(errors.BadFrame(reason))
        else:
            judged.set_exception(RuntimeError(f"the node's handler failed: {reason}"))

    async def on_request(self, protocol: str, peer: str, body: bytes) -> bytes:
        verdict, answer = await self._ask(["Q", 0, peer, protocol, body])
        if verdict == "ok":
            return bytes(answer)
        if verdict == "bad":
            raise errors.BadFrame(answer)
        raise RuntimeError(answer)

    def register(self) -> None:
        for protocol, kind in self.specs:
            if kind == "request":
                self.node.register_request(protocol, functools.partial(self.on_request, protocol))
            else:
                self.node.register(protocol, functools.partial(self.on_frame, protocol))
        self.node.on_peer_connected(lambda peer: self._send(["C", peer]))

    async def watch(self) -> None:
        """Send the connected set when it changes, and the counters then and every 250 ms."""
        last: list[str] | None = None
        loop = asyncio.get_running_loop()
        next_metrics = loop.time()
        while not self.stop.is_set():
            peers = self.node.connected_peers()
            if peers != last:
                last = peers
                self._send(["P", peers])
                next_metrics = loop.time()
            if loop.time() >= next_metrics:
                next_metrics = loop.time() + METRICS_EVERY_S
                self._send(["M", self.node.metrics_snapshot()])
            await asyncio.sleep(PEERS_POLL_S)


async def serve(fd: int, config: dict[str, Any]) -> int:
    limits = Limits(**config["limits"])
    node = P2PNode(config["home"], config["listen"], peers=config["peers"], limits=limits)
    worker = Worker(node, [(p, k) for p, k in config["specs"]])
    worker.pipe = await connect_parent(fd, config, worker.on_message)
    worker.register()
    # loaded (libp2p's import is most of a worker's start-up): the node's handlers must be ready
    if not await told_to_serve(worker.listen, worker.stop, worker.pipe):
        return 0
    try:
        await node.start()
    except Exception as err:  # the port is taken, the address is not ours: the node reports it
        worker._send(["E", f"{type(err).__name__}: {err}"])
        await asyncio.sleep(0.1)  # let the message leave before the pipe closes
        return 1
    worker._send(["U", node.peer_id, node.listen_addrs])
    watcher = asyncio.ensure_future(worker.watch())
    stop: asyncio.Future[Any] = asyncio.ensure_future(worker.stop.wait())
    ended: asyncio.Future[Any] = worker.pipe.closed
    await asyncio.wait([stop, ended], return_when=asyncio.FIRST_COMPLETED)
    watcher.cancel()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(node.stop(), 10)
    worker.pipe.close()
    return 0


def main(argv: list[str]) -> None:
    run_child(argv, serve)


if __name__ == "__main__":
    main(sys.argv[1:])
