"""Open HTTP connections are capped per client address and in all (node/connlimit.py): one
address holding idle connections that send no request took every descriptor of the node's
process, and every other client's connection was reset.

Clients are told apart by binding them to distinct loopback addresses (127.0.0.2, ...: all
of 127/8 is loopback on Linux); nothing is timed."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator

import pytest

from node.config import RpcLimits
from node.connlimit import ConnLimit, node_total
from node.rpc import RpcServer
from tests.node.proofchain import ProvingNode


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProvingNode]:
    node = ProvingNode(tmp_path_factory.mktemp("connlimit"), heights=1)
    yield node
    node.blocks.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _open(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def _refused(port: int, source: str) -> tuple[int, str]:
    """A connection the node answers at once and closes: its status and error name."""
    reader, writer = await _open(port, source)
    data = await asyncio.wait_for(reader.read(), 10)  # the node closes it: EOF
    writer.close()
    head, body = data.split(b"\r\n\r\n", 1)
    assert b"connection: close" in head.lower()
    return int(head.split()[1]), json.loads(body)["error"]["name"]


async def _until(server: RpcServer, total: int) -> None:
    """Until the node counts ``total`` connections (it counts one when its loop accepts
    it, and lets it go when the close reaches it)."""
    for _ in range(1000):
        if server.conn_limit.total == total:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the node counts {server.conn_limit.total} connections, not {total}")


async def _health(port: int, source: str) -> int:
    reader, writer = await _open(port, source)
    writer.write(b"GET /health HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return int(data.split()[1])


def test_connections_are_capped_per_client_and_in_all(chain: ProvingNode) -> None:
    server = RpcServer(chain.host, RpcLimits(exempt=()))
    server.conn_limit = ConnLimit(per_client=3, max_total=5, exempt=())
    port = _free_port()

    async def go() -> None:
        await server.start("127.0.0.1", port)
        try:
            idle = [await _open(port, "127.0.0.2") for _ in range(3)]  # no request sent: held
            assert await _refused(port, "127.0.0.2") == (429, "RATE_LIMITED")  # a fourth from the same address
            assert await _health(port, "127.0.0.3") == 200  # another client is served
            await _until(server, 3)
            idle += [await _open(port, "127.0.0.4") for _ in range(2)]
            await _until(server, 5)
            assert await _refused(port, "127.0.0.5") == (503, "NOT_READY")  # the node's cap
            assert server.conn_limit.refused == 2
            for _, writer in idle:
                writer.close()
            await _until(server, 0)
            assert server.conn_limit.by_client == {}
            assert await _health(port, "127.0.0.2") == 200  # its connections closed: served again
        finally:
            await server.stop()

    asyncio.run(go())


def test_exempt_and_unknown_clients_are_not_counted() -> None:
    limit = ConnLimit(per_client=1, max_total=1, exempt=("127.0.0.1",))
    assert limit.enter("127.0.0.1") is None and limit.enter("127.0.0.1") is None and limit.enter(None) is None
    assert limit.total == 0 and limit.enter("10.0.0.1") is None and limit.total == 1
    refusal = limit.enter("10.0.0.2")
    assert refusal is not None and refusal.startswith(b"HTTP/1.1 503 ")
    limit.leave("10.0.0.1")
    assert limit.total == 0 and limit.by_client == {}
    assert 1 <= node_total() <= 8192
