"""node.client against a fake node and against answers that are not ours."""

from __future__ import annotations

import asyncio
import http.server
from collections.abc import Iterator

import pytest

from node.client import AsyncClient, Client, NodeUnreachable, RpcError, as_int
from tests.cli.conftest import Env
from tests.httpstub import http_stub


class _Odd(http.server.BaseHTTPRequestHandler):
    """Answers a proxy might give: HTML errors, non-JSON 200s, slow answers."""

    def do_GET(self) -> None:
        if self.path.startswith("/status"):
            body, status, ctype = b"<html>bad gateway</html>", 502, "text/html"
        elif self.path.startswith("/markets"):
            body, status, ctype = b"not json", 200, "text/plain"
        else:
            body, status, ctype = b'{"error": {"code": 402, "name": "UNKNOWN_ORDER", "message": "gone"}}', 404, "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def odd_url() -> Iterator[str]:
    with http_stub(_Odd) as url:
        yield url


def test_error_bodies(odd_url: str) -> None:
    c = Client(odd_url)
    with pytest.raises(RpcError) as e:
        c.tx("ab" * 32)
    assert (e.value.code, e.value.name, e.value.message, e.value.http_status) == (402, "UNKNOWN_ORDER", "gone", 404)
    with pytest.raises(RpcError) as e:
        c.status()
    assert e.value.name == "HTTP_502" and e.value.code == -1 and "bad gateway" in e.value.message
    with pytest.raises(RpcError, match="BAD_ANSWER"):
        c.markets()


def test_async_error_bodies(odd_url: str) -> None:
    async def go() -> None:
        async with AsyncClient(odd_url) as c:
            with pytest.raises(RpcError) as e:
                await c.tx("ab" * 32)
            assert e.value.name == "UNKNOWN_ORDER" and e.value.http_status == 404
    asyncio.run(go())


def test_unreachable(dead_url: str) -> None:
    with pytest.raises(NodeUnreachable, match="unreachable"):
        Client(dead_url, timeout=2).status()

    async def go() -> None:
        async with AsyncClient(dead_url, timeout=2) as c:
            with pytest.raises(NodeUnreachable):
                await c.status()
    asyncio.run(go())


def test_wait_for_height(env: Env, dead_url: str) -> None:
    c = Client(env.node.url)
    st = c.wait_for_height(3, timeout=10)
    assert as_int(st["latest_height"]) >= 3
    with pytest.raises(TimeoutError, match="did not reach height 5"):
        Client(dead_url).wait_for_height(5, timeout=0.3)

    async def go() -> None:
        async with AsyncClient(env.node.url) as ac:
            st = await ac.wait_for_height(4, timeout=10)
            assert as_int(st["latest_height"]) >= 4
    asyncio.run(go())


def test_endpoints_round_trip(env: Env) -> None:
    c = Client(env.node.url)
    c.wait_for_height(1, timeout=5)
    assert c.health()["ok"] is True
    assert {m["symbol"] for m in c.markets()["markets"]} >= {"BTC/USDC", "ETH-PERP"}
    assert c.block(1)["height"] == 1
    assert c.block_results(1)["height"] == 1
    assert c.blocks(1, 2)["blocks"][0]["height"] == 1
    assert c.validators()["total_power"] == 1
    with pytest.raises(RpcError) as e:
        c.block(10**9)
    assert e.value.http_status == 404
    with pytest.raises(ValueError, match="at most 5000"):
        c.broadcast_txs([b"\x00"] * 5001)


def test_as_int() -> None:
    assert as_int(5) == 5 and as_int("18446744073709551615") == 2**64 - 1
    with pytest.raises(TypeError):
        as_int(True)
    with pytest.raises(TypeError):
        as_int(1.5)
