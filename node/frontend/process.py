"""``FrontendProcess``: the node's clients' HTTP in a worker process (node/frontend/worker.py).

Why: a client that sends one transaction per request (as Hyperliquid's SDK sends an order)
costs the node's event loop ~500 µs per request, about 60% of it aiohttp's and uvloop's
HTTP handling (docs/performance.md, "Many small requests"), on the thread that also runs
consensus and hands blocks to execution. With the front-end, the node's RPC server
listens only on a Unix socket of its own, the front-end holds the clients' connections on
the RPC address, and a submission reaches the node as one pipe message of raw
transactions, the answer as one message of verdicts: HTTP parsing, JSON and hex of
submissions, and the connections' bookkeeping run on another core.

What stays in the node: every read (relayed to its server over the Unix socket), the
websockets (relayed both ways), and every limit that keys on a client, which the front-end
names in ``CLIENT_HEADER`` or the submission message: the byte rate (charged here for a
submission, as the server's middleware charges a relayed request), the read budget, the
websocket quota. The connection caps (node/connlimit.py) are the front-end's: it holds the
connections. Its counters reach ``/metrics`` within ``METRICS_EVERY_S``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from node import hlexchange
from node.childproc import ChildProcess
from node.rpcerrors import MAX_BODY, RpcError, as_rpc_error, byte_refusal
from node.submitbody import EXCHANGE, INFO
from state.errors import Code

if TYPE_CHECKING:
    from collections.abc import Callable

    from node.rpc import RpcServer

log = logging.getLogger("bookchain.frontend")

#: the largest pipe message either way: a request's payload is at most a body (8 MiB); an
#: answer of /info's may be larger, and one that would not fit is refused (``_fits``)
PIPE_MESSAGE_BYTES: Final = 64 * 1024 * 1024
MAX_SOCKET_PATH: Final = 100  # bytes: a Unix socket's address holds 108 with its terminator
_ENVELOPE: Final = 64 * 1024


class FrontendCounts:
    """The front-end's connection counts as it last reported them (``/metrics`` reads these
    where it reads the server's own ``ConnLimit`` without a front-end): open and refused."""

    __slots__ = ("refused", "total")

    def __init__(self) -> None:
        self.total = self.refused = 0


class FrontendProcess:
    """The front-end worker and the node's handling of what it sends."""

    def __init__(self, rpc: RpcServer, host: str, port: int, *, exempt: list[str], log_path: str,
                 socket_dir: Path, on_failure: Callable[[str], None]) -> None:
        self.rpc = rpc
        self.socket_dir = socket_dir
        self.host, self.port = host, port
        self.exempt = exempt
        self.log_path = log_path
        self.counts = FrontendCounts()
        self._child = ChildProcess("node.frontend.worker", "the RPC front-end", self._on_message,
                                   max_message_bytes=PIPE_MESSAGE_BYTES)
        self._child.on_failure = on_failure  # the front-end died: the node stops
        self._dir: str | None = None  # a temporary directory of the socket's, if it needed one
        self._path: str | None = None

    @property
    def pid(self) -> int | None:
        return self._child.pid

    async def spawn(self) -> None:
        """Start the worker process now: it loads its code (~0.5 s, more on a busy machine)
        while the node opens its stores and replays, then waits to be told to listen."""
        await self._child.spawn({"host": self.host, "port": self.port, "exempt": self.exempt,
                                 "log_path": self.log_path})

    async def start(self) -> None:
        """The node's server on its internal socket, then the front-end on the RPC address;
        ``OSError`` if it cannot listen there."""
        internal = self._path = self._socket_path()
        await self.rpc.start_internal(internal)
        self._child.post(["L", internal])
        failure = await self._child.wait_up()
        if failure is not None:
            await self.stop()
            raise OSError(f"rpc on {self.host}:{self.port}: {failure}")
        log.info("rpc front-end process %d up on %s:%d", self._child.pid, self.host, self.port)

    async def stop(self) -> None:
        """Stop the front-end (no client reaches the node after), then forget the socket."""
        await self._child.stop()
        if self._dir is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self._dir)
            self._dir = None
        elif self._path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._path)
        self._path = None

    def _socket_path(self) -> str:
        """The node's internal socket: ``data/rpc.sock`` in its home, readable and writable
        by its user alone (a stale one, from a node killed before it could remove it, is
        replaced); in a private temporary directory (0700) when that path is too long for a
        Unix socket address (108 bytes on Linux)."""
        path = self.socket_dir / "rpc.sock"
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            self._dir = tempfile.mkdtemp(prefix="bookchain-rpc-")
            return os.path.join(self._dir, "rpc.sock")
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return str(path)

    def _on_message(self, message: list[Any]) -> None:
        kind = message[0]
        if kind == "T":
            self._child.spawn_task(self._answer(message[1], message[2], message[3] or None, int(message[4]), message[5]))
        elif kind == "M":
            counts = message[1]
            for name in FrontendCounts.__slots__:
                setattr(self.counts, name, int(counts.get(name, 0)))
        else:
            log.error("unknown message %r from the RPC front-end", kind)

    async def _answer(self, ident: int, route: str, client: str | None, size: int, payload: Any) -> None:
        """A request the front-end parsed, judged as the server judges one it reads itself:
        counted, charged to the byte rate, refused while the state is unproven, then
        answered: a submission's verdicts (``payload``: its raw txs), or ``/info``'s and
        ``/exchange``'s JSON (``payload``: the body)."""
        rpc = self.rpc
        rpc.rt.metrics.on_request(route)
        try:
            refusal = rpc.submit_limit.refusal(client, min(size, MAX_BODY))
            if refusal is not None:
                raise RpcError(*byte_refusal(refusal))
            rpc.refuse_while_unverified(route)
            if route == INFO:
                await rpc.rt.execution.gate.wait_open()  # a read of the state (node/stategate.py)
                answer: list[Any] = ["j", 200, _fits(rpc.info_answer(bytes(payload), client))]
            elif route == EXCHANGE:
                status, doc = await hlexchange.exchange_answer(rpc.rt, bytes(payload))
                answer = ["j", status, _fits(json.dumps(doc).encode())]
            else:
                answer = ["v", [list(v) for v in await rpc.submit_verdicts(payload)]]
        except Exception as exc:
            err = as_rpc_error(exc, route)
            answer = ["e", err.status, int(err.code), err.message]
        self._child.post(["A", ident, *answer])


def _fits(body: bytes) -> bytes:
    """``body``, or ``RpcError`` if it would not fit a pipe message: the front-end would take
    a bigger one for a broken pipe and stop, and the node with it."""
    if len(body) > PIPE_MESSAGE_BYTES - _ENVELOPE:
        raise RpcError(500, Code.OVERSIZE, f"the answer is over {PIPE_MESSAGE_BYTES - _ENVELOPE} bytes; ask for less")
    return body
