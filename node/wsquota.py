"""How many websocket connections and subscriptions the node holds, in all and per client address.

Each connection costs the event loop every block (its subscriptions' pushes) and memory (its
queue). The node-wide cap alone let one client hold all of them: 500 connections of 100
subscriptions each from one address halved the chain's block rate. A client address may
hold at most ``per_address`` of them; beyond either cap a new connection is refused (503
``NOT_READY``) before the websocket handshake.

A block's push work grows with the subscriptions it serves, not the connections: 1,000
connections of 100 each were 100,000 subscriptions visited per block. The node holds at
most ``max_subscriptions`` in all (``/ws`` and ``/websocket`` together); one beyond it is
refused when the client subscribes, with an error message on its connection (which stays
open with the subscriptions it has). A client address may hold at most
``per_address_subscriptions`` of them (1,000 by default, Hyperliquid's limit per IP):
without it, 50 connections of 100 subscriptions were half the node's cap from one address,
so two addresses held all of it and every other client's subscribe was refused.

A connection whose bounded queue fills (its client does not read, or the node's read
budget holds its pushes back) is closed (``drop_lagging``, code 1013) instead of the node
building messages for it that nobody reads, as Hyperliquid drops a client that lags.

A client's messages are request bytes the node reads and parses on its loop, as a POST
body is: each is charged to the client's byte rate (node/submitlimit.py), and a connection
whose client is over it is closed (``close_over_rate``, code 1013), the only way to stop
reading what it sends; a client over its rate cannot open another connection either (429).
Without it, four connections from one address sending 60 KB frames back to back had the
node parse ~34,000 of them in 8 s and another client's ``/health`` p50 went from 2.4 to
42 ms (p99 121 ms), on ``/ws`` as well (its read budget refused them, but each was still
read and answered: p50 23 ms). A close waits at most ``CLOSE_TIMEOUT_S`` for the client's
close frame (aiohttp's 10 s default read and dropped whatever the client kept sending).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from aiohttp import WSMessage, WSMsgType, web

from node.clientaddr import client_of
from node.keyedcount import KeyedCount
from node.submitlimit import SubmitLimit
from state.errors import Code

MAX_WS_CLIENTS = 1000
MAX_WS_PER_ADDRESS = 50
MAX_WS_SUBSCRIPTIONS = 10_000  # node/config.py RpcLimits.max_ws_subscriptions's default
MAX_WS_SUBSCRIPTIONS_PER_ADDRESS = 1_000  # RpcLimits.max_ws_subscriptions_per_address's default
LAGGING_CLOSE_CODE = 1013  # "try again later"
LAGGING = "your client is not keeping up with its pushes: reconnect and subscribe again"
OVER_RATE = "this client is over its rate of request bytes to this node: reconnect later"
CLOSE_TIMEOUT_S = 2.0
_closing: set[asyncio.Future[None]] = set()


class WsQuota:
    """The counts; ``enter`` before a connection is accepted, ``leave`` once it closed;
    ``subscribe`` before a subscription is added, ``unsubscribe`` once it is gone."""

    __slots__ = ("connections", "lagging_closed", "subs")

    def __init__(self, max_total: int = MAX_WS_CLIENTS, per_address: int = MAX_WS_PER_ADDRESS,
                 max_subscriptions: int = MAX_WS_SUBSCRIPTIONS,
                 per_address_subscriptions: int = MAX_WS_SUBSCRIPTIONS_PER_ADDRESS) -> None:
        self.connections = KeyedCount(max_total, per_address)
        self.subs = KeyedCount(max_subscriptions, per_address_subscriptions)
        self.lagging_closed = 0  # connections closed because their queue filled (drop_lagging)

    @property
    def total(self) -> int:
        return self.connections.total

    @property
    def by_address(self) -> dict[str, int]:
        return self.connections.by_key

    @property
    def subscriptions(self) -> int:
        return self.subs.total

    @property
    def subscriptions_by_address(self) -> dict[str, int]:
        return self.subs.by_key

    def enter(self, address: str | None) -> str | None:
        """None: accepted and counted; else why it is refused (nothing counted)."""
        over = self.connections.take(address or "?")
        if over == "total":
            return "too many websocket clients"
        if over == "key":
            return f"too many websocket connections from this address (at most {self.connections.per_key})"
        return None

    def leave(self, address: str | None) -> None:
        self.connections.give_back(address or "?")

    def subscribe(self, address: str | None = None) -> str | None:
        """None: one more subscription counted, in all and for ``address``; else why it is
        refused (nothing counted)."""
        over = self.subs.take(address or "?")
        if over == "total":
            return (f"this node serves at most {self.subs.max_total} websocket subscriptions in all and "
                    "holds that many; retry later or subscribe on another node")
        if over == "key":
            return (f"this node serves at most {self.subs.per_key} websocket subscriptions to one "
                    "client address, and this address holds that many")
        return None

    def unsubscribe(self, count: int = 1, address: str | None = None) -> None:
        """``count`` subscriptions of ``address`` are gone."""
        self.subs.give_back(address or "?", count)


async def accept(quota: WsQuota, request: web.Request) -> web.WebSocketResponse | tuple[int, Code, str]:
    """The websocket of ``request``, counted in ``quota`` (``leave`` once it closes), or why
    it is refused (HTTP status, code, message): the one way both endpoints open a
    connection. The handshake is a request like any other, so the byte rate has charged it
    its floor already (node/rpc.py ``_client_mw``): a client over it after
    ``close_over_rate`` is refused (429 ``RATE_LIMITED``) rather than reconnect at once."""
    client = client_of(request)
    refusal = quota.enter(client)
    if refusal is not None:
        return 503, Code.NOT_READY, refusal
    try:
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=64 * 1024, timeout=CLOSE_TIMEOUT_S)
        await ws.prepare(request)
    except BaseException:
        quota.leave(client)
        raise
    return ws


async def charged_messages(ws: web.WebSocketResponse, limit: SubmitLimit, client: str | None,
                           stopped: Callable[[], bool]) -> AsyncIterator[WSMessage]:
    """What the client sends on ``ws``, each text or binary message charged to its byte rate
    first: the one read loop of both endpoints. It ends when ``stopped()`` (the connection
    was found lagging), when the connection closes, or once the client is over its rate,
    after closing the connection (``close_over_rate``: the only way to stop reading what
    it sends)."""
    async for msg in ws:
        if stopped():
            return
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY) and not within_rate(limit, client, msg.data):
            await close_over_rate(ws)
            return
        yield msg


def within_rate(limit: SubmitLimit, client: str | None, data: str | bytes) -> bool:
    """Charge a client's websocket message to its byte rate (its length: bytes, or
    characters of text, which are at least one byte each); False: close the connection
    (``close_over_rate``)."""
    return limit.admit(client, len(data))


async def close_over_rate(ws: web.WebSocketResponse) -> None:
    """Close ``ws``, whose client is over its byte rate (code 1013, ``OVER_RATE``), waiting
    at most ``CLOSE_TIMEOUT_S`` for its close frame (the connection's close timeout)."""
    with contextlib.suppress(ConnectionError):
        await ws.close(code=LAGGING_CLOSE_CODE, message=OVER_RATE.encode()[:120])


def drop_lagging(quota: WsQuota, ws: web.WebSocketResponse, reason: str = LAGGING) -> None:
    """Close ``ws``, whose client does not keep up (its bounded queue is full): the node
    stops doing work for it, as Hyperliquid does, instead of building messages it cannot
    send. Close code 1013 (try again later) with ``reason``; a client that does not take the
    close frame within ``CLOSE_TIMEOUT_S`` has its connection aborted."""
    if ws.closed:
        return
    quota.lagging_closed += 1

    async def close() -> None:
        # a close that times out: aiohttp has closed the transport itself
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(ws.close(code=LAGGING_CLOSE_CODE, message=reason.encode()[:120]), CLOSE_TIMEOUT_S)

    task = asyncio.ensure_future(close())
    _closing.add(task)  # held until done: the loop keeps only a weak reference to a task
    task.add_done_callback(_closing.discard)
