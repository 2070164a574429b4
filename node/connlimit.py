"""How many HTTP connections the RPC holds open, per client address and in all.

Every open connection holds a file descriptor of the node's process for as long as the
client keeps it, and aiohttp keeps one that never sends a request for its keep-alive
timeout (an hour by default). The per-client limits of node/readbudget.py and
node/submitlimit.py count requests, so a client that sends none is never limited: one
address holding 1,100 idle connections to a one-validator devnet whose process may open
1,024 files left the node unable to accept any other connection (every other client's
request was reset for as long as they were held), and a node out of descriptors cannot
open the files its block store needs either.

So a client address may hold at most ``per_client`` connections (beyond: a 429
``RATE_LIMITED`` answer and the connection closed, before anything is read), and the node
at most ``max_total`` in all (beyond: 503 ``NOT_READY``), which ``node_total`` keeps
under half the process's descriptor limit, the rest for the block store, the WAL, the
snapshots and the peers. A websocket is a connection too (``/ws``, ``/websocket``: at most
50 per address, node/wsquota.py), so ``per_client`` leaves room for those and requests
beside them. ``exempt`` addresses (loopback by default, as for the other per-client
limits: a devnet's load generator) meet neither cap. The node also closes a connection
that sends no request within ``IDLE_S`` (node/rpc.py passes it as aiohttp's keep-alive
timeout), so what a client stops using is given back.
"""

from __future__ import annotations

import asyncio
import json
import resource
from collections.abc import Iterable
from typing import Any, Final

from aiohttp import web

from node.clientaddr import client_key
from node.keyedcount import KeyedCount
from node.readbudget import LOOPBACK
from state.errors import Code

PER_CLIENT: Final = 256
MAX_TOTAL: Final = 8192
IDLE_S: Final = 75.0  # aiohttp's web.run_app default; the AppRunner's own is 3,630 s
TOO_MANY_FROM_CLIENT: Final = "too many connections from this client address to this node; close some and retry"
TOO_MANY: Final = "this node holds as many client connections as it serves; retry later"


def node_total(limit: int = MAX_TOTAL) -> int:
    """``limit``, at most half of this process's file descriptor limit (its soft one)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return limit if soft == resource.RLIM_INFINITY else max(1, min(limit, soft // 2))


def _refusal(status: int, code: Code, message: str) -> bytes:
    body = json.dumps({"error": {"code": int(code), "name": code.name, "message": message}}).encode()
    reason = "Too Many Requests" if status == 429 else "Service Unavailable"
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


class ConnLimit:
    """The counts of open connections (see the module docstring); ``attach`` makes an aiohttp
    server keep them."""

    __slots__ = ("counts", "exempt", "refused")

    def __init__(self, per_client: int = PER_CLIENT, max_total: int | None = None, *,
                 exempt: Iterable[str] = LOOPBACK) -> None:
        self.counts = KeyedCount(node_total() if max_total is None else max_total, per_client)
        self.exempt = frozenset(exempt)
        self.refused = 0

    @property
    def total(self) -> int:
        """Connections counted (not exempt)."""
        return self.counts.total

    @property
    def by_client(self) -> dict[str, int]:
        return self.counts.by_key

    def enter(self, client: str | None) -> bytes | None:
        """None: counted (``leave`` it once it closes); else the answer to refuse it with
        (nothing counted). An exempt or unknown client is never counted nor refused."""
        if client is None or client in self.exempt:
            return None
        over = self.counts.take(client)
        if over is None:
            return None
        self.refused += 1
        if over == "total":
            return _refusal(503, Code.NOT_READY, TOO_MANY)
        return _refusal(429, Code.RATE_LIMITED, TOO_MANY_FROM_CLIENT)

    def leave(self, client: str) -> None:
        self.counts.give_back(client)

    def attach(self, server: web.Server) -> None:
        """Count ``server``'s connections as they open and close: one over a cap is answered
        and closed as it opens, before its request is read."""
        made, lost = server.connection_made, server.connection_lost
        counted: dict[Any, str] = {}  # handler -> its client, for the connections counted

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            peer = transport.get_extra_info("peername")
            client = client_key(str(peer[0])) if isinstance(peer, tuple) and peer else None
            refusal = self.enter(client)
            if refusal is not None:
                transport.write(refusal)
                transport.close()  # the answer is flushed, then the socket closed; nothing is read
            elif client is not None and client not in self.exempt:
                counted[handler] = client

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            client = counted.pop(handler, None)
            if client is not None:
                self.leave(client)
            lost(handler, exc)

        setattr(server, "connection_made", connection_made)  # noqa: B010 (an instance's hooks, not a method)
        setattr(server, "connection_lost", connection_lost)  # noqa: B010
