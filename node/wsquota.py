"""How many websocket connections the node holds, in all and per client address.

Each connection costs the event loop every block (its subscriptions' pushes) and memory (its
queue). The node-wide cap alone let one client hold all of them: 500 connections of 100
subscriptions each from one address halved the chain's block rate. A client address may
hold at most ``per_address`` of them; beyond either cap a new connection is refused (503
``NOT_READY``) before the websocket handshake.
"""

from __future__ import annotations

from aiohttp import web

MAX_WS_CLIENTS = 1000
MAX_WS_PER_ADDRESS = 50


class WsQuota:
    """The counts; ``enter`` before a connection is accepted, ``leave`` once it closed."""

    __slots__ = ("by_address", "max_total", "per_address", "total")

    def __init__(self, max_total: int = MAX_WS_CLIENTS, per_address: int = MAX_WS_PER_ADDRESS) -> None:
        self.max_total = max_total
        self.per_address = per_address
        self.total = 0
        self.by_address: dict[str, int] = {}

    def enter(self, address: str | None) -> str | None:
        """None: accepted and counted; else why it is refused (nothing counted)."""
        key = address or "?"
        if self.total >= self.max_total:
            return "too many websocket clients"
        held = self.by_address.get(key, 0)
        if held >= self.per_address:
            return f"too many websocket connections from this address (at most {self.per_address})"
        self.total += 1
        self.by_address[key] = held + 1
        return None

    def leave(self, address: str | None) -> None:
        key = address or "?"
        self.total -= 1
        left = self.by_address.get(key, 1) - 1
        if left > 0:
            self.by_address[key] = left
        else:
            self.by_address.pop(key, None)


async def accept(quota: WsQuota, request: web.Request) -> web.WebSocketResponse | str:
    """The websocket of ``request``, counted in ``quota`` (``leave`` once it closes), or why
    it is refused: the one way both endpoints open a connection."""
    refusal = quota.enter(request.remote)
    if refusal is not None:
        return refusal
    try:
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=64 * 1024)
        await ws.prepare(request)
    except BaseException:
        quota.leave(request.remote)
        raise
    return ws
