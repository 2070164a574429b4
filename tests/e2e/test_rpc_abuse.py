"""Throw bad requests at a live node's RPC: it answers with coded errors or refuses, never
crashes, and keeps producing blocks."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet.cluster import Cluster

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(Path(tmp_path_factory.mktemp("rpc")), nodes=1)
    try:
        c.start_all()
        yield c
    finally:
        c.stop_all()


def raw_post(c: Cluster, path: str, body: bytes) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(c.url(0) + path, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


@pytest.mark.parametrize(("path", "body", "status", "name"), [
    ("/broadcast_tx_sync", b"{not json", 400, "MALFORMED"),
    ("/broadcast_tx_sync", b"[1, 2]", 400, "MALFORMED"),
    ("/broadcast_tx_sync", b'{"tx": 12}', 400, "MALFORMED"),
    ("/broadcast_tx_sync", b'{"tx": "xyz"}', 400, "MALFORMED"),
    ("/broadcast_tx_sync", b'{"tx": "00"}', 200, "MALFORMED"),
    ("/broadcast_tx_commit", b'{"tx": "00", "timeout_ms": "soon"}', 400, "MALFORMED"),
    ("/broadcast_txs", b'{"txs": "nope"}', 400, "MALFORMED"),
    ("/broadcast_txs", json.dumps({"txs": ["00"] * 6000}).encode(), 413, "BATCH_TOO_LARGE"),
    ("/no/such/route", b"{}", 404, "NOT_FOUND"),
])
def test_bad_requests_get_coded_errors(node: Cluster, path: str, body: bytes, status: int, name: str) -> None:
    got_status, got = raw_post(node, path, body)
    assert got_status == status
    answer = got.get("error", got)
    assert isinstance(answer, dict) and answer["name"] == name


def test_bad_query_parameters(node: Cluster) -> None:
    for path, status in [("/block?height=abc", 400), ("/block?height=-1", 400), ("/block?height=99999999", 404),
                         ("/book?market=NOPE", 404), ("/account?address=0x12", 400), ("/tx?hash=zz", 400),
                         ("/blocks?from=5&to=1", 400), ("/fills?address=0x" + "00" * 20 + "&limit=0", 400)]:
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(node.url(0) + path, timeout=10)
        assert info.value.code == status, path
        assert "error" in json.load(info.value)


def test_huge_body_is_refused(node: Cluster) -> None:
    status, body = raw_post(node, "/broadcast_tx_sync", b'{"tx": "' + b"00" * (9 * 1024 * 1024) + b'"}')
    assert status == 413 and body["error"]["name"] == "OVERSIZE"  # type: ignore[index]


def test_many_connections_and_slow_clients_do_not_stop_the_chain(node: Cluster) -> None:
    port = node.manifest.nodes[0].rpc_port
    start = node.height(0)
    slow = []
    for _ in range(50):  # slowloris: open, send half a request, stall
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"POST /broadcast_tx_sync HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"tx\":")
        slow.append(s)

    async def flood() -> int:
        import aiohttp

        ok = 0
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            async def one() -> None:
                nonlocal ok
                try:
                    async with session.get(node.url(0) + "/status", timeout=aiohttp.ClientTimeout(total=30)) as r:
                        if r.status == 200:
                            ok += 1
                except (TimeoutError, aiohttp.ClientError):
                    pass
            await asyncio.gather(*(one() for _ in range(2000)))
        return ok

    answered = asyncio.run(flood())
    assert answered > 1500
    time.sleep(1)
    assert node.height(0) > start  # still producing blocks
    for s in slow:
        s.close()
    assert node.get(0, "/health")["ok"] is True
