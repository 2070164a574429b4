"""The RPC front-end process (node/frontend/): the clients' HTTP apart from the node.

The front-end's server runs here in-process against a stand-in node: an aiohttp app on a
Unix socket (what the node's server listens on behind it) and the node's end of the
submission pipe. What must hold: a relayed request reaches the node as it came, with the
client's address in ``CLIENT_HEADER`` set by the front-end (never the client's own header);
answers stream back whole; a submission crosses the pipe as raw transactions and its
answer is the node's RPC's, errors included; nothing the front-end refuses reaches the node.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

from node.frontend.header import CLIENT_HEADER
from node.frontend.worker import NODE_GONE, Edge
from node.pipe import MessagePipe
from node.rpc import RpcServer
from state.errors import Code
from tests.node.proofchain import ProvingNode

BIG = bytes(range(256)) * 4096  # 1 MiB


class StandIn:
    """The node behind the front-end: its HTTP server's requests and its pipe's messages."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.messages: list[list[Any]] = []
        self.pipe: MessagePipe | None = None
        self.answer: list[Any] | None = None  # ["A", id, ...] without the id: None echoes verdicts

    def app(self) -> web.Application:
        app = web.Application()

        async def echo(request: web.Request) -> web.Response:
            body = await request.read()
            self.requests.append({"client": request.headers.get(CLIENT_HEADER), "path": request.raw_path,
                                  "method": request.method, "body": body,
                                  "content_type": request.headers.get("Content-Type")})
            if request.path == "/big":
                return web.Response(body=BIG, content_type="application/octet-stream")
            if request.path == "/refused":
                return web.json_response({"error": {"code": 429, "name": "RATE_LIMITED", "message": "m"}}, status=429)
            return web.json_response({"ok": True})

        async def ws(request: web.Request) -> web.StreamResponse:
            if request.query.get("refuse"):
                return web.json_response({"error": "busy"}, status=429)
            sock = web.WebSocketResponse()
            await sock.prepare(request)
            await sock.send_str(json.dumps({"client": request.headers.get(CLIENT_HEADER)}))
            async for msg in sock:
                if msg.type == WSMsgType.TEXT:
                    await sock.send_str("echo:" + msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await sock.send_bytes(b"echo:" + msg.data)
            return sock

        app.router.add_get("/ws", ws)
        app.router.add_route("*", "/{tail:.*}", echo)
        return app

    def on_message(self, message: list[Any]) -> None:
        self.messages.append(message)
        assert message[0] == "T"
        ident, route, payload = message[1], message[2], message[5]
        assert self.pipe is not None
        if self.answer is not None:
            self.pipe.send(["A", ident, *self.answer])
        elif route in ("/info", "/exchange"):
            self.pipe.send(["A", ident, "j", 200, json.dumps({"route": route, "body": payload.decode()}).encode()])
        else:
            self.pipe.send(["A", ident, "v", [[raw[:4].ljust(32, b"\0"), 0, ""] for raw in payload]])


Body = Callable[[TestClient[Any, Any], StandIn, Edge], Awaitable[None]]


def run(tmp_path: Path, body: Body) -> None:
    """``body`` against the front-end's server, with the stand-in node behind it."""
    asyncio.run(_run(tmp_path, body))


async def _run(tmp_path: Path, body: Body) -> None:
    stand_in = StandIn()
    runner = web.AppRunner(stand_in.app())
    await runner.setup()
    internal = str(tmp_path / "node.sock")
    await web.UnixSite(runner, internal).start()
    front = Edge({"exempt": ["127.0.0.1"]})
    front.internal = internal
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    front.pipe = await MessagePipe.connect(ours, front.on_message, 1 << 24)
    stand_in.pipe = await MessagePipe.connect(theirs, stand_in.on_message, 1 << 24)
    front.session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=internal), auto_decompress=False)
    client = TestClient(TestServer(front.app))
    await client.start_server()
    try:
        await body(client, stand_in, front)
    finally:
        await client.close()
        await front.session.close()
        front.pipe.close()
        stand_in.pipe.close()
        await runner.cleanup()


def test_a_relayed_request_names_the_connections_client_never_the_clients_own_header(tmp_path: Path) -> None:
    async def go(client: TestClient[Any, Any], stand_in: StandIn, front: Edge) -> None:
        resp = await client.get("/account?address=0xab&x=%20y", headers={CLIENT_HEADER: "10.1.2.3", "Accept": "a/b"})
        assert resp.status == 200 and await resp.json() == {"ok": True}
        (seen,) = stand_in.requests
        assert seen["client"] == "127.0.0.1"  # the socket's peer, not the spoofed header
        assert seen["path"] == "/account?address=0xab&x=%20y"  # the query as it was sent
        assert seen["method"] == "GET"

    run(tmp_path, go)


def test_bodies_and_answers_cross_whole(tmp_path: Path) -> None:
    async def go(client: TestClient[Any, Any], stand_in: StandIn, front: Edge) -> None:
        resp = await client.post("/candles", data=b'{"type":"meta"}', headers={"Content-Type": "application/json"})
        assert resp.status == 200
        assert stand_in.requests[-1]["body"] == b'{"type":"meta"}'
        assert stand_in.requests[-1]["content_type"] == "application/json"
        resp = await client.get("/big")
        assert await resp.read() == BIG
        resp = await client.get("/refused")  # the node's error answer, status and body as they were
        assert resp.status == 429 and (await resp.json())["error"]["name"] == "RATE_LIMITED"

    run(tmp_path, go)


def test_a_body_without_a_length_is_refused_unread_and_never_relayed(tmp_path: Path) -> None:
    async def go(client: TestClient[Any, Any], stand_in: StandIn, front: Edge) -> None:

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"txs": []}'

        for path in ("/broadcast_txs", "/info"):
            resp = await client.post(path, data=chunks())
            assert resp.status == 411
            assert (await resp.json())["error"]["name"] == "MALFORMED"
        assert stand_in.requests == [] and stand_in.messages == []

    run(tmp_path, go)


def test_a_submission_crosses_the_pipe_as_raw_transactions(tmp_path: Path) -> None:
    async def go(client: TestClient[Any, Any], stand_in: StandIn, front: Edge) -> None:
        resp = await client.post("/broadcast_txs", json={"txs": ["0xaabbccdd", "01020304"]})
        assert resp.status == 200
        body = await resp.json()
        assert [r["hash"][:8] for r in body["results"]] == ["aabbccdd", "01020304"]
        assert all(r["code"] == 0 and r["name"] == "OK" for r in body["results"])
        (message,) = stand_in.messages
        assert message[2:5] == ["/broadcast_txs", "127.0.0.1", len(json.dumps({"txs": ["0xaabbccdd", "01020304"]}))]
        assert message[5] == [bytes.fromhex("aabbccdd"), bytes.fromhex("01020304")]
        packed = msgpack.packb([b"\x05\x06\x07\x08"], use_bin_type=True)
        resp = await client.post("/broadcast_txs", data=packed, headers={"Content-Type": "application/msgpack"})
        assert msgpack.unpackb(await resp.read())["results"][0][0][:4] == b"\x05\x06\x07\x08"
        resp = await client.post("/broadcast_tx_sync", json={"tx": "0a0b0c0d"})
        assert (await resp.json())["hash"][:8] == "0a0b0c0d"
        assert stand_in.requests == []  # none of them was relayed as HTTP
        assert front.submissions == 3

    run(tmp_path, go)


def test_a_bad_body_is_refused_by_the_front_end_and_the_nodes_refusals_keep_their_shape(tmp_path: Path) -> None:
    async def go(client: TestClient[Any, Any], stand_in: StandIn, front: Edge) -> None:
        for path, body in (("/broadcast_txs", {"txs": "x"}), ("/broadcast_tx_sync", {"tx": 5}),
                           ("/broadcast_txs", {"txs": ["zz"]})):
            resp = await client.post(path, json=body)
            assert resp.status == 400 and (await resp.json())["error"]["name"] == "MALFORMED"
        resp = await client.post("/broadcast_txs", json={"txs": ["00"] * 5001})
        assert resp.status == 413 and (await resp.json())["error"]["name"] == "BATCH_TOO_LARGE"
        assert stand_in.messages == []
        stand_in.answer = ["e", 429, int(Code.RATE_LIMITED), "over your rate"]
        resp = await client.post("/broadcast_tx_sync", json={"tx": "00"})
        assert resp.status == 429
        assert (await resp.json())["error"] == {"code": int(Code.RATE_LIMITED), "name": "RATE_LIMITED",
                                                "message": "over your rate"}
        # a retryable admission refusal answers 503 on /broadcast_tx_sync, as the node's own RPC does
        stand_in.answer = ["v", [[b"\x01" * 32, int(Code.MEMPOOL_BUSY), "busy"]]]
        resp = await client.post("/broadcast_tx_sync", json={"tx": "00"})
        assert resp.status == 503 and (await resp.json())["name"] == "MEMPOOL_BUSY"

    run(tmp_path, go)


def test_a_submission_waiting_when_the_node_goes_is_answered_retryable(tmp_path: Path) -> None:
    async def go(client: TestClient[Any, Any], stand_in: StandIn, front: Edge) -> None:
        stand_in.pipe.on_message = lambda message: None  # the node takes it and never answers
        pending = asyncio.ensure_future(client.post("/broadcast_tx_sync", json={"tx": "00"}))
        for _ in range(200):
            if front._pending:
                break
            await asyncio.sleep(0.01)
        front.fail_pending()
        resp = await pending
        assert resp.status == 503
        assert (await resp.json())["error"] == {"code": int(Code.NOT_READY), "name": "NOT_READY", "message": NODE_GONE}

    run(tmp_path, go)


def test_hyperliquids_info_and_exchange_cross_as_their_bodies_and_answer_the_nodes_json(tmp_path: Path) -> None:
    async def go(client: TestClient[Any, Any], stand_in: StandIn, front: Edge) -> None:
        for route in ("/info", "/exchange"):
            resp = await client.post(route, data=b'{"type":"meta"}', headers={"Content-Type": "application/json"})
            assert resp.status == 200 and resp.content_type == "application/json"
            assert await resp.json() == {"route": route, "body": '{"type":"meta"}'}
        assert stand_in.requests == []
        assert [m[2:5] for m in stand_in.messages] == [["/info", "127.0.0.1", 15], ["/exchange", "127.0.0.1", 15]]
        stand_in.answer = ["j", 422, b'{"status": "err"}']  # the node's own status and body, as they are
        resp = await client.post("/exchange", data=b"{}")
        assert resp.status == 422 and await resp.read() == b'{"status": "err"}'

    run(tmp_path, go)


def test_websockets_are_relayed_both_ways_with_the_client_named(tmp_path: Path) -> None:
    async def go(client: TestClient[Any, Any], stand_in: StandIn, front: Edge) -> None:
        async with client.ws_connect("/ws", headers={CLIENT_HEADER: "10.9.9.9"}) as ws:
            hello = json.loads((await ws.receive(timeout=10)).data)
            assert hello == {"client": "127.0.0.1"}
            await ws.send_str("ping")
            assert (await ws.receive(timeout=10)).data == "echo:ping"
            await ws.send_bytes(b"\x00\x01")
            assert (await ws.receive(timeout=10)).data == b"echo:\x00\x01"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/ws?refuse=1")
        assert refused.value.status == 429

    run(tmp_path, go)


# ---------------------------------------------------------------------------- the node's side
@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Any:
    node = ProvingNode(tmp_path_factory.mktemp("frontend"), heights=1)
    yield node
    node.blocks.close()


@pytest.mark.parametrize("behind", [False, True])
def test_the_node_trusts_the_client_header_only_behind_its_front_end(chain: ProvingNode, behind: bool) -> None:
    """A client facing the node itself cannot name another address to spend its limits (the
    byte rate keys on the client: here a non-exempt address is tracked only if trusted)."""
    server = RpcServer(chain.host)
    server.behind_frontend = behind

    async def go() -> None:
        async with TestClient(TestServer(server.app)) as client:
            resp = await client.get("/health", headers={CLIENT_HEADER: "10.4.4.4"})
            assert resp.status == 200

    asyncio.run(go())
    assert server.submit_limit.tracked_clients == (1 if behind else 0)  # loopback is exempt, untracked


def test_an_answer_too_big_for_the_pipe_is_refused_not_sent() -> None:
    """The front-end's end of the pipe takes a message over its bound for a broken pipe and
    exits, which stops the node: an /info answer that large is refused with a code instead."""
    from node.frontend.process import PIPE_MESSAGE_BYTES, _fits
    from node.rpcerrors import RpcError

    assert _fits(b"{}") == b"{}"
    with pytest.raises(RpcError) as refused:
        _fits(b" " * PIPE_MESSAGE_BYTES)
    assert refused.value.code == Code.OVERSIZE and refused.value.status == 500
