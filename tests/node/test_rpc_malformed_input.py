"""Malformed client input over the real RPC app answers a stable error, never a 500.

Found by fuzzing the RPC (every route, random JSON/msgpack/query input): a JSON body or
websocket message nested deeper than the decoder's recursion limit, a candleSnapshot
``interval`` that is a list or map, and a legacy ``/websocket`` subscription whose
``address`` is not text all escaped their handlers (500 INTERNAL_ERROR over HTTP, a dead
connection over a websocket) and were logged as handler bugs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.node.proofchain import ProvingNode

DEEP = "[" * 100_000 + "]" * 100_000  # far past json's recursion limit


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProvingNode]:
    n = ProvingNode(tmp_path_factory.mktemp("malformed"), heights=2)
    yield n
    n.close()


@pytest.fixture(autouse=True)
def no_handler_failures(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.ERROR, logger="bookchain.rpc"):
        yield
    assert not [r for r in caplog.records if r.name == "bookchain.rpc"], "a handler failed on client input"


def post_raw(node: ProvingNode, path: str, body: str) -> tuple[int, Any]:
    async def go() -> tuple[int, Any]:
        async with TestClient(TestServer(node.app())) as client:
            r = await client.post(path, data=body.encode(), headers={"Content-Type": "application/json"})
            return r.status, await r.json()

    return asyncio.run(go())


def ws_exchange(node: ProvingNode, path: str, texts: list[str]) -> list[Any]:
    """Send each text on one connection; the JSON answer to each (None: the connection died)."""

    async def go() -> list[Any]:
        out: list[Any] = []
        async with TestClient(TestServer(node.app())) as client:
            ws = await client.ws_connect(path)
            for text in texts:
                await (ws.send_bytes(text.encode()) if text.startswith("binary:") else ws.send_str(text))
                msg = await asyncio.wait_for(ws.receive(), 5)
                out.append(json.loads(msg.data) if isinstance(msg.data, str) else None)
            await ws.close()
        return out

    return asyncio.run(go())


@pytest.mark.parametrize("path", ["/info", "/broadcast_tx_sync", "/broadcast_txs", "/broadcast_tx_commit"])
def test_a_json_body_nested_too_deeply_is_malformed(node: ProvingNode, path: str) -> None:
    status, doc = post_raw(node, path, DEEP)
    assert status == 400
    assert doc["error"]["name"] == "MALFORMED"


@pytest.mark.parametrize("interval", [[], ["1m"], {}, {"1m": 1}])
def test_a_candle_snapshot_interval_that_is_no_text_is_malformed(node: ProvingNode, interval: Any) -> None:
    body = {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": interval, "startTime": 0}}
    status, doc = post_raw(node, "/info", json.dumps(body))
    assert status == 400
    assert doc["error"]["name"] == "MALFORMED" and "interval" in doc["error"]["message"]


def test_hyperliquid_ws_answers_a_deep_message_and_stays_open(node: ProvingNode) -> None:
    deep, ping = ws_exchange(node, "/ws", [DEEP[:20_000] + DEEP[-20_000:], json.dumps({"method": "ping"})])
    assert deep["channel"] == "error"
    assert ping == {"channel": "pong"}


def test_legacy_websocket_answers_a_deep_message_and_stays_open(node: ProvingNode) -> None:
    deep, ok = ws_exchange(node, "/websocket", [DEEP[:20_000] + DEEP[-20_000:],
                                                json.dumps({"method": "subscribe", "topic": "blocks"})])
    assert deep["error"]["name"] == "MALFORMED"
    assert ok == {"subscribed": "blocks", "key": None}


@pytest.mark.parametrize("address", [5, None, [], {}, True])
def test_legacy_websocket_account_address_that_is_no_text_is_malformed(node: ProvingNode, address: Any) -> None:
    bad, ok = ws_exchange(node, "/websocket", [json.dumps({"method": "subscribe", "topic": "account", "address": address}),
                                               json.dumps({"method": "subscribe", "topic": "blocks"})])
    assert bad["error"]["name"] == "MALFORMED"
    assert ok == {"subscribed": "blocks", "key": None}


def test_hex_with_whitespace_is_not_hex() -> None:
    """``bytes.fromhex`` skips whitespace: a cloid of spaces was looked up as ``b""`` and an
    address with trailing spaces parsed as a shorter one. Every hex field takes digits only."""
    from state.keys import address_from_text, bytes_from_hex

    assert bytes_from_hex("00ff") == b"\x00\xff"
    for text in ("0 0", " 00", "00 ", "0\t0", "zz"):
        with pytest.raises(ValueError):
            bytes_from_hex(text)
    with pytest.raises(ValueError):
        address_from_text("0x" + "11" * 19 + "  ")


def test_legacy_websocket_refuses_duplicate_and_excess_subscriptions(node: ProvingNode) -> None:
    """Each subscription is a bus queue of up to 1,000 messages and a task: one connection
    subscribing tens of thousands of times and never reading grew the node's memory without
    bound (and every publish walked them all). A connection holds at most
    ``MAX_WS_SUBSCRIPTIONS``, none twice, as ``/ws`` does."""
    from node.rpc import MAX_WS_SUBSCRIPTIONS

    texts = [json.dumps({"method": "subscribe", "topic": "blocks"})] * 2
    texts += [json.dumps({"method": "subscribe", "topic": "account", "address": "0x" + f"{i:040x}"})
              for i in range(MAX_WS_SUBSCRIPTIONS)]
    answers = ws_exchange(node, "/websocket", texts)
    assert answers[0] == {"subscribed": "blocks", "key": None}
    assert answers[1]["error"]["name"] == "MALFORMED" and "already" in answers[1]["error"]["message"]
    assert all("subscribed" in a for a in answers[2:-1])
    assert answers[-1]["error"]["name"] == "MALFORMED" and str(MAX_WS_SUBSCRIPTIONS) in answers[-1]["error"]["message"]


@pytest.mark.parametrize("path", ["/ws", "/websocket"])
def test_a_binary_frame_is_answered_not_ignored(node: ProvingNode, path: str) -> None:
    (answer,) = ws_exchange(node, path, ["binary:{}"])
    assert answer == {"channel": "error", "data": "binary frames are not understood: send JSON text"} \
        or answer["error"]["name"] == "MALFORMED"


def test_a_request_line_or_header_over_the_limit_is_answered_in_the_error_shape(node: ProvingNode) -> None:
    """aiohttp's parser refuses a line over 8190 bytes before any middleware runs; its answer
    was a plain-text 400 echoing the line. Over the real server (the runner RpcServer.start
    uses): the RPC's JSON error, OVERSIZE; a normal request on a new connection still works."""
    import aiohttp

    from node.rpc import RpcServer

    async def go() -> tuple[list[tuple[int, str, Any]], int]:
        server = RpcServer(node.host)  # type: ignore[arg-type]
        await server.start("127.0.0.1", 0)
        assert server.runner is not None
        base = f"http://127.0.0.1:{server.runner.addresses[0][1]}"
        out = []
        try:
            async with aiohttp.ClientSession() as session:
                for url, headers in ((base + "/block?height=1&pad=" + "a" * 9000, {}),
                                     (base + "/health", {"X-Pad": "b" * 9000})):
                    async with session.get(url, headers=headers) as r:
                        out.append((r.status, r.content_type, await r.json()))
                async with session.get(base + "/health") as r:
                    fine = r.status
        finally:
            await server.stop()
        return out, fine

    answers, fine = asyncio.run(go())
    for status, content_type, doc in answers:
        assert (status, content_type) == (400, "application/json")
        assert doc["error"]["name"] == "OVERSIZE" and doc["error"]["code"] == 101
        assert "8190 bytes" in doc["error"]["message"] and "aaaa" not in doc["error"]["message"]
    assert fine == 200
