"""The RPC front-end process: the node's clients' HTTP, in a process beside the node
(``process.py`` is the node's side and says why).

Started by ``FrontendProcess.start`` as ``python -P -m node.frontend.worker <fd> <config
json>``; it dies with its node (``PR_SET_PDEATHSIG``, and the pipe's end).

It listens on the node's RPC address and holds every client connection (their count per
client and in all: node/connlimit.py). Submissions (``POST /broadcast_tx_sync`` and
``/broadcast_txs``) are parsed here, and only their raw transactions cross the pipe to the
node, with the client's address and the body's size for the node's byte rate; the answer
is built here from the verdicts that come back. Hyperliquid's ``POST /info`` and
``/exchange`` cross as their bodies, and their JSON answers come back as the node wrote
them. Every other request, websockets
included, is relayed as it came to the node's own server on a Unix socket, with the
client's address in ``CLIENT_HEADER``, and its answer streamed back: the node keeps every
read and every limit that keys on a client (byte rate, read budget, websocket quota).

Pipe messages, worker -> node: ``["T", id, route, client, size, payload]`` a request (a
submission's ``[raw, ...]``, or /info's or /exchange's body), ``["M", {...}]`` counters
(every ``METRICS_EVERY_S``), ``["U"]`` listening, ``["E", reason]`` could not listen.
Node -> worker: ``["A", id, "v", [[hash, code, message], ...]]`` a submission's verdicts,
``["A", id, "j", status, json]`` a JSON route's answer, ``["A", id, "e", status, code,
message]`` the request's error; ``["L", path]`` listen (the node serves on ``path``:
the worker loads while the node starts, and listens once told); ``["X"]`` stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import Any, Final

import aiohttp
from aiohttp import WSMsgType, web
from yarl import URL

from node.bodylimit import refuse_unread
from node.childproc import connect_parent, run_child, told_to_serve
from node.clientaddr import client_key, client_of
from node.connlimit import ConnLimit
from node.frontend.header import CLIENT_HEADER
from node.httperrors import JsonErrorRunner
from node.pipe import MessagePipe
from node.rpcerrors import MAX_BODY, RpcError, error_response, errors_middleware
from node.submitbody import (
    BATCH,
    EXCHANGE,
    INFO,
    SYNC,
    Verdict,
    batch_answer,
    batch_txs,
    sync_answer,
    sync_txs,
)
from node.wire import MSGPACK, wants_msgpack
from state.errors import Code

log = logging.getLogger("bookchain.frontend")

METRICS_EVERY_S: Final = 0.25
#: request headers a relayed request keeps (the rest are the client's connection's own)
RELAYED: Final = ("Content-Type", "Accept", "Accept-Encoding", "If-None-Match", "Range")
#: answer headers a relayed answer keeps
RETURNED: Final = ("Content-Type", "Content-Encoding", "Content-Disposition", "Retry-After", "ETag",
                   "Cache-Control", "Content-Range", "Accept-Ranges", "Last-Modified")
#: the node's own websocket limit (node/wsquota.py): a bigger message is refused there anyway
WS_MAX_MSG: Final = 64 * 1024
#: how long a relayed request may take: /commits long-polls up to 30 s, a snapshot streams
RELAY_TIMEOUT: Final = aiohttp.ClientTimeout(total=None, connect=10, sock_read=120)
_UPSTREAM: Final = URL("http://node")
NODE_GONE: Final = "the node behind this front-end is not answering; retry"


def _status_code(status: int) -> Code:
    """The code of a websocket handshake the node refused (its body does not reach here)."""
    return {429: Code.RATE_LIMITED, 404: Code.NOT_FOUND, 400: Code.MALFORMED}.get(status, Code.NOT_READY)


class Edge:
    """The front-end's HTTP server and its half of the pipe."""

    def __init__(self, config: dict[str, Any]) -> None:
        exempt = [client_key(a) for a in config["exempt"]]
        self.conn_limit = ConnLimit(exempt=exempt)
        self.app = web.Application(client_max_size=MAX_BODY, middlewares=[errors_middleware, self._length_mw])
        self.app.router.add_post(SYNC, self.sync)
        self.app.router.add_post(BATCH, self.batch)
        self.app.router.add_post(INFO, self.json_route)
        self.app.router.add_post(EXCHANGE, self.json_route)
        self.app.router.add_route("*", "/{tail:.*}", self.relay)
        self.internal = ""  # the node's socket: the node names it when it listens there (``["L", path]``)
        self.listen = asyncio.Event()
        self.session: aiohttp.ClientSession | None = None
        self.pipe: MessagePipe | None = None
        self.stop = asyncio.Event()
        self._pending: dict[int, asyncio.Future[list[Any]]] = {}
        self._ids = 0
        self.submissions = 0  # requests handed to the node over the pipe

    # ------------------------------------------------------------ pipe
    def on_message(self, message: list[Any]) -> None:
        kind = message[0]
        if kind == "A":
            fut = self._pending.pop(message[1], None)
            if fut is not None and not fut.done():
                fut.set_result(message[2:])
        elif kind == "L":
            self.internal = str(message[1])
            self.listen.set()
        elif kind == "X":
            self.stop.set()
        else:
            log.error("unknown message %r from the node", kind)

    def send(self, message: list[Any]) -> bool:
        return self.pipe is not None and self.pipe.try_send(message)

    def metrics(self) -> dict[str, int]:
        return {"total": self.conn_limit.total, "refused": self.conn_limit.refused}

    # ------------------------------------------------------------ submissions
    @web.middleware
    async def _length_mw(self, request: web.Request,
                         handler: Any) -> web.StreamResponse:
        """A body must state its length (node/bodylimit.py says why): one that does not is
        refused here, unread, as the node would; the node sees only what this process
        relays, with the length it read."""
        if request.body_exists and request.content_length is None:
            return await refuse_unread(request, error_response(
                411, Code.MALFORMED, "a request body must state its Content-Length", packed=wants_msgpack(request)))
        return await handler(request)  # type: ignore[no-any-return]

    async def _ask(self, request: web.Request, payload: Any) -> list[Any]:
        """Hand the node a parsed request (a submission's raw txs, or a JSON route's body) and
        wait for its answer: ``["v", verdicts]`` or ``["j", status, json]``; an error
        answer raises it as ``RpcError``."""
        self._ids += 1
        ident = self._ids
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = fut
        self.submissions += 1
        try:
            if not self.send(["T", ident, request.path, client_of(request) or "", request.content_length or 0, payload]):
                raise RpcError(503, Code.NOT_READY, NODE_GONE)
            answer = await fut
        finally:
            self._pending.pop(ident, None)
        if answer[0] == "e":
            raise RpcError(int(answer[1]), Code(int(answer[2])), str(answer[3]))
        return answer

    async def _verdicts(self, request: web.Request, raws: list[bytes]) -> list[Verdict]:
        answer = await self._ask(request, raws)
        return [(bytes(h), int(c), str(m)) for h, c, m in answer[1]]

    async def sync(self, request: web.Request) -> web.Response:
        return sync_answer((await self._verdicts(request, sync_txs(await request.read())))[0])

    async def batch(self, request: web.Request) -> web.Response:
        packed = request.content_type == MSGPACK
        verdicts = await self._verdicts(request, batch_txs(await request.read(), packed))
        return batch_answer(verdicts, packed)

    async def json_route(self, request: web.Request) -> web.Response:
        """``/info`` and ``/exchange``: the body to the node, its JSON answer back as it is."""
        _, status, body = await self._ask(request, await request.read())
        return web.Response(body=body, status=int(status), content_type="application/json", charset="utf-8")

    def fail_pending(self) -> None:
        """The node is gone: every submission waiting for it is answered as retryable."""
        for fut in self._pending.values():
            if not fut.done():
                fut.set_result(["e", 503, int(Code.NOT_READY), NODE_GONE])
        self._pending.clear()

    # ------------------------------------------------------------ relay
    async def relay(self, request: web.Request) -> web.StreamResponse:
        """Any other request, to the node's server as it came, the answer streamed back."""
        assert self.session is not None
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._relay_websocket(request)
        headers = {name: value for name in RELAYED if (value := request.headers.get(name)) is not None}
        headers[CLIENT_HEADER] = client_of(request) or ""
        body = await request.read() if request.body_exists else None
        try:
            upstream = await self.session.request(request.method, _UPSTREAM.join(URL(request.raw_path, encoded=True)),
                                                  data=body, headers=headers, allow_redirects=False)
        except aiohttp.ClientError:
            raise RpcError(503, Code.NOT_READY, NODE_GONE) from None
        async with upstream:
            resp = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name in RETURNED:
                if (value := upstream.headers.get(name)) is not None:
                    resp.headers[name] = value
            if upstream.content_length is not None:
                resp.content_length = upstream.content_length
            await resp.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
            except aiohttp.ClientError:  # the node went mid-answer: the client sees the cut, not a short body
                request.protocol.force_close()
                return resp
            await resp.write_eof()
        return resp

    async def _relay_websocket(self, request: web.Request) -> web.StreamResponse:
        """A websocket, opened on the node first (its quota may refuse it), then to the
        client; messages both ways until either side closes."""
        assert self.session is not None
        try:
            upstream = await self.session.ws_connect(
                _UPSTREAM.join(URL(request.raw_path, encoded=True)), headers={CLIENT_HEADER: client_of(request) or ""},
                max_msg_size=0, autoping=True)
        except aiohttp.WSServerHandshakeError as err:
            raise RpcError(err.status, _status_code(err.status), f"websocket refused: {err.message}") from None
        except aiohttp.ClientError:
            raise RpcError(503, Code.NOT_READY, NODE_GONE) from None
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=WS_MAX_MSG)
        try:
            await ws.prepare(request)
            down = asyncio.ensure_future(_pump(upstream, ws))
            up = asyncio.ensure_future(_pump(ws, upstream))
            await asyncio.wait([down, up], return_when=asyncio.FIRST_COMPLETED)
            for task in (down, up):
                task.cancel()
        finally:
            await upstream.close()
            code = upstream.close_code if upstream.close_code is not None else 1000
            await ws.close(code=code)
        return ws


async def _pump(src: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
                dst: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> None:
    async for msg in src:
        if msg.type == WSMsgType.TEXT:
            await dst.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await dst.send_bytes(msg.data)


async def serve(fd: int, config: dict[str, Any]) -> int:
    edge = Edge(config)
    edge.pipe = await connect_parent(fd, config, edge.on_message)
    runner = JsonErrorRunner.for_clients(edge.app)
    await runner.setup()
    assert runner.server is not None
    edge.conn_limit.attach(runner.server)
    if not await told_to_serve(edge.listen, edge.stop, edge.pipe):  # loaded: the node's server must be up
        await runner.cleanup()
        return 0
    edge.session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=edge.internal, limit=0),
                                         timeout=RELAY_TIMEOUT, auto_decompress=False)
    try:
        await web.TCPSite(runner, config["host"], config["port"], backlog=1024, reuse_address=True).start()
    except OSError as err:  # the port is taken: the node reports it
        edge.send(["E", f"{type(err).__name__}: {err}"])
        await edge.session.close()
        await asyncio.sleep(0.1)  # let the message leave before the pipe closes
        return 1
    edge.send(["U"])
    stop: asyncio.Future[Any] = asyncio.ensure_future(edge.stop.wait())
    ended: asyncio.Future[Any] = edge.pipe.closed
    while not (stop.done() or ended.done()):
        await asyncio.wait([stop, ended], timeout=METRICS_EVERY_S, return_when=asyncio.FIRST_COMPLETED)
        edge.send(["M", edge.metrics()])
    edge.fail_pending()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(runner.cleanup(), 10)
    await edge.session.close()
    edge.pipe.close()
    return 0


def main(argv: list[str]) -> None:
    run_child(argv, serve, libp2p=False)


if __name__ == "__main__":
    main(sys.argv[1:])
