"""Per-client limits of the RPC (node/readbudget.py, node/submitlimit.py) and bounded
websocket push work (node/wsquota.py): one client over its share is refused while another
is served, the heavy native reads are charged, request bodies meet a byte rate, the node's
subscriptions are capped, and a client whose queue fills is disconnected.

Clients are told apart by a test header (``X-Client``) a first middleware turns into the
request's remote address: the test client is always 127.0.0.1. Clocks are fake; no timing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from node import hlws, rpc
from node.config import ConfigError, NodeConfig, RpcLimits
from node.readbudget import ReadBudget
from node.rpc import RpcServer
from node.submitlimit import SubmitLimit
from node.wsquota import LAGGING_CLOSE_CODE, WsQuota
from state.errors import Code
from state.keys import address_to_text
from tests.node.proofchain import ALICE, ProvingNode
from tests.node.test_hlws import Node as HlNode

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Ticking:
    """A clock that moves ``step`` seconds each time it is read: every read costs time."""

    def __init__(self, step: float = 0.0) -> None:
        self.t = 0.0
        self.step = step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


@web.middleware
async def as_client(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The request as if from the address in its ``X-Client`` header."""
    remote = request.headers.get("X-Client")
    return await handler(request.clone(remote=remote) if remote else request)


def _from(client: str) -> dict[str, str]:
    return {"X-Client": client}


# ---------------------------------------------------------------------------- the budget itself
def test_one_client_over_its_share_is_refused_while_another_is_served() -> None:
    clock = Ticking()
    budget = ReadBudget(share=0.25, burst_s=0.25, clock=clock, client_share=0.05, client_burst_s=0.05, exempt=())
    served = {"a": 0, "b": 0}
    for _ in range(1000):  # a floods 20 ms reads back to back, b asks now and then
        for client in ("a", "a", "a", "a", "b"):
            if budget.may_read(client):
                started = budget.clock()
                clock.t += 0.02
                budget.charge(started, client)
                served[client] += 1
            else:
                clock.t += 0.001
    elapsed = clock.t
    assert served["a"] * 0.02 <= elapsed * 0.05 + 0.05 + 0.02  # a: its own share, not the node's
    assert budget.refused_clients > 0
    assert served["b"] * 0.02 > elapsed * 0.05  # b got more than a's whole share: it was not starved
    assert budget.tracked_clients == 2


def test_tracked_clients_are_bounded_and_exempt_ones_are_not_tracked() -> None:
    clock = Ticking()
    budget = ReadBudget(clock=clock, max_clients=3)
    for i in range(10):
        budget.charge(clock(), f"10.0.0.{i}")
    budget.charge(clock(), "127.0.0.1")  # loopback is exempt by default
    assert budget.tracked_clients == 3
    limit = SubmitLimit(1000, 1000, max_clients=2, clock=clock)
    for i in range(5):
        assert limit.admit(f"10.0.0.{i}", 10)
    assert limit.admit("::1", 10**9) and limit.admit("::1", 10**9)
    assert limit.tracked_clients == 2


def test_a_request_counts_at_least_its_floor_and_a_client_waits_its_debt_off() -> None:
    clock = Ticking()
    limit = SubmitLimit(bytes_per_s=1000, burst=2000, exempt=(), clock=clock)
    assert limit.admit("a", 5000)  # a body bigger than what is left: admitted, the bucket owes 3000
    assert not limit.admit("a", 1) and limit.refused == 1
    assert limit.admit("b", 1)
    clock.t += 3.1  # the debt repaid at 1000 bytes a second
    assert limit.admit("a", 1)


def test_rpc_limits_in_config_json(tmp_path: Path) -> None:
    base = {"rpc": {"port": 0}, "p2p": {"listen": "/ip4/127.0.0.1/tcp/0"}}
    (tmp_path / "config.json").write_text(json.dumps({**base, "rpc_limits": {"exempt": [], "max_ws_subscriptions": 5}}))
    limits = NodeConfig.load(tmp_path).rpc_limits
    assert limits.exempt == () and limits.max_ws_subscriptions == 5
    assert RpcLimits().exempt == ("127.0.0.1", "::1")  # loopback is exempt by default
    for bad in ({"exempt": ["localhost"]}, {"exempt": "127.0.0.1"}, {"client_read_share_pct": 0},
                {"client_submit_kib_per_s": 0}, {"client_submit_burst_kib": True}, {"max_ws_subscriptions": 10**9},
                {"node_submit_kib_per_s": 0}, {"node_submit_burst_kib": 2**21}):
        with pytest.raises(ConfigError):
            RpcLimits(**bad)


# ---------------------------------------------------------------------------- over HTTP
@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProvingNode]:
    node = ProvingNode(tmp_path_factory.mktemp("limits"), heights=3)
    yield node
    node.blocks.close()


def _server(chain: ProvingNode, **limits: Any) -> RpcServer:
    server = RpcServer(chain.host, RpcLimits(exempt=(), **limits))  # type: ignore[arg-type]
    server.app.middlewares.insert(0, as_client)
    return server


async def _error(resp: Any) -> tuple[int, str]:
    return resp.status, (await resp.json())["error"]["name"]


def test_heavy_native_reads_are_charged_per_client(chain: ProvingNode) -> None:
    server = _server(chain)
    server.read_budget = ReadBudget(share=1.0, burst_s=10.0, clock=Ticking(0.01), client_share=0.01,
                                    client_burst_s=0.05, exempt=())
    alice = address_to_text(ALICE.address)
    history = f"/history?address={alice}"

    async def go() -> None:
        async with TestClient(TestServer(server.app)) as client:
            for path in (history, "/blocks?from=1&to=3", f"/fills?address={alice}", "/candles?market=0"):
                answers = [(await client.get(path, headers=_from("10.0.0.1"))).status for _ in range(12)]
                assert answers[0] == 200 and 429 in answers, (path, answers)
                resp = await client.get(path, headers=_from("10.0.0.1"))
                assert await _error(resp) == (429, "RATE_LIMITED")
                assert (await resp.json())["error"]["code"] == int(Code.RATE_LIMITED) == 908
                assert (await client.get(path, headers=_from("10.0.0.2"))).status == 200  # another client
                assert (await client.get("/health", headers=_from("10.0.0.1"))).status == 200  # light: not charged
                server.read_budget = ReadBudget(share=1.0, burst_s=10.0, clock=Ticking(0.01), client_share=0.01,
                                                client_burst_s=0.05, exempt=())

    asyncio.run(go())


def test_info_parses_its_body_inside_the_read_budget(chain: ProvingNode) -> None:
    """/info's JSON is parsed on the loop like its answer is computed: a client whose read
    share is spent is refused (429) before its body is parsed, and the parsing of a body
    that is then refused as malformed is charged. Before, a deeply nested or huge body
    was parsed first (400), whatever the client had already spent."""
    server = _server(chain)
    server.read_budget = ReadBudget(share=1.0, burst_s=10.0, clock=Ticking(0.01), client_share=0.01,
                                    client_burst_s=0.05, exempt=())
    bad = "[" * 50_000  # too deep for json: 400 MALFORMED when parsed

    async def go() -> None:
        async with TestClient(TestServer(server.app)) as client:
            answers = [await _error(await client.post("/info", data=bad, headers=_from("10.0.0.1")))
                       for _ in range(12)]
            assert answers[0] == (400, "MALFORMED")
            assert (429, "RATE_LIMITED") in answers, answers  # the parses were charged
            assert await _error(await client.post("/info", data=bad, headers=_from("10.0.0.1"))) == \
                (429, "RATE_LIMITED")  # spent: refused unparsed
            resp = await client.post("/info", json={"type": "meta"}, headers=_from("10.0.0.2"))
            assert resp.status == 200  # another client

    asyncio.run(go())


def test_request_bodies_meet_a_byte_rate_per_client(chain: ProvingNode) -> None:
    server = _server(chain, client_submit_kib_per_s=1, client_submit_burst_kib=1024)
    junk = json.dumps({"txs": "x" * 600_000})  # decoded, then refused as malformed: loop time spent

    async def go() -> None:
        async with TestClient(TestServer(server.app)) as client:
            statuses = [(await client.post("/broadcast_txs", data=junk, headers=_from("10.0.0.1"))).status
                        for _ in range(3)]
            assert statuses[:2] == [400, 400]
            resp = await client.post("/broadcast_txs", data=junk, headers=_from("10.0.0.1"))
            assert await _error(resp) == (429, "RATE_LIMITED")
            assert resp.headers.get("Connection", "").lower() == "close"  # its body is not read: the socket closes
            resp = await client.post("/info", json={"type": "meta"}, headers=_from("10.0.0.1"))
            assert resp.status == 429  # every body of the client: /info too
            resp = await client.post("/broadcast_txs", data=junk, headers=_from("10.0.0.2"))
            assert resp.status == 400  # another client: read and judged

    asyncio.run(go())


def test_requests_without_a_body_count_the_floor(chain: ProvingNode) -> None:
    """A flood of light GETs from one address is bounded in number (each counts
    REQUEST_FLOOR bytes) while another client is served; before, a GET without a body was
    never charged."""
    server = _server(chain, client_submit_kib_per_s=1, client_submit_burst_kib=1)  # 1 KiB: four GETs

    async def go() -> None:
        async with TestClient(TestServer(server.app)) as client:
            statuses = [(await client.get("/health", headers=_from("10.0.0.1"))).status for _ in range(4)]
            assert statuses == [200] * 4
            # the bucket refills 1 KiB a second meanwhile: the fifth may still pass, the sixth not
            await client.get("/health", headers=_from("10.0.0.1"))
            assert await _error(await client.get("/health", headers=_from("10.0.0.1"))) == (429, "RATE_LIMITED")
            assert (await client.get("/health", headers=_from("10.0.0.2"))).status == 200

    asyncio.run(go())


def test_a_body_without_a_length_is_refused_unread(chain: ProvingNode) -> None:
    """A chunked body's size is known only once it is read: it is refused (411) and the
    connection closed before any of it is read, whatever the client's rate. Before, a
    client over its rate had each chunked body read in full (up to the 8 MiB cap) and only
    then refused, and one past the cap (413) charged nothing."""
    server = _server(chain, client_submit_kib_per_s=1, client_submit_burst_kib=1)

    async def chunks() -> Any:
        for _ in range(4):
            yield b'{"txs": "' + b"x" * 1000

    async def go() -> None:
        async with TestClient(TestServer(server.app)) as client:
            for path in ("/broadcast_txs", "/info"):
                resp = await client.post(path, data=chunks(), headers=_from("10.0.0.1"))
                assert await _error(resp) == (411, "MALFORMED"), path
                assert resp.headers.get("Connection", "").lower() == "close"
            assert server.submit_limit.tracked_clients == 0  # nothing read, nothing charged
            resp = await client.post("/info", json={"type": "meta"}, headers=_from("10.0.0.1"))
            assert resp.status == 200  # a body with its length is served as before

    asyncio.run(go())


def test_a_body_on_any_method_meets_the_byte_rate(chain: ProvingNode) -> None:
    """A GET (or any method) carrying a body is charged as a POST's is: a route that reads
    no body still had the node read it (the state gate reads a body before the handler;
    aiohttp drains an unread one to keep the connection), uncharged."""
    server = _server(chain, client_submit_kib_per_s=1, client_submit_burst_kib=1)
    junk = b"x" * 600_000

    async def go() -> None:
        async with TestClient(TestServer(server.app)) as client:
            assert (await client.get("/health", data=junk, headers=_from("10.0.0.1"))).status == 200
            resp = await client.get("/health", data=junk, headers=_from("10.0.0.1"))
            assert await _error(resp) == (429, "RATE_LIMITED")
            assert resp.headers.get("Connection", "").lower() == "close"  # its body is not read
            assert (await client.get("/health", headers=_from("10.0.0.2"))).status == 200  # another client
            assert (await client.get("/health", data=junk, headers=_from("10.0.0.2"))).status == 200

    asyncio.run(go())


# ---------------------------------------------------------------------------- websockets
def test_the_nodes_subscriptions_are_capped_at_subscribe_time(tmp_path: Path) -> None:
    node = HlNode(tmp_path)
    quota = WsQuota(max_subscriptions=3)
    one, two = hlws.Session(node, quota), hlws.Session(node, quota)

    def sub(s: hlws.Session, kind: str) -> list[dict[str, Any]]:
        return s.receive(json.dumps({"method": "subscribe", "subscription": {"type": kind, "coin": "BTC"}}))

    assert sub(one, "l2Book")[0]["channel"] == "subscriptionResponse"
    assert sub(one, "trades")[0]["channel"] == "subscriptionResponse"
    assert sub(two, "l2Book")[0]["channel"] == "subscriptionResponse"
    refused = sub(two, "bbo")
    assert refused[0]["channel"] == "error" and "at most 3 websocket subscriptions" in refused[0]["data"]
    assert quota.subscriptions == 3 and len(two.subs) == 1
    one.receive(json.dumps({"method": "unsubscribe", "subscription": {"type": "trades", "coin": "BTC"}}))
    assert sub(two, "bbo")[0]["channel"] == "subscriptionResponse"
    one.close()
    two.close()
    assert quota.subscriptions == 0


def test_a_ws_session_counts_its_subscriptions_for_its_client_address(tmp_path: Path) -> None:
    node = HlNode(tmp_path)
    quota = WsQuota(per_address_subscriptions=1)
    one, two = hlws.Session(node, quota, "10.0.0.1"), hlws.Session(node, quota, "10.0.0.2")

    def sub(s: hlws.Session, kind: str) -> list[dict[str, Any]]:
        return s.receive(json.dumps({"method": "subscribe", "subscription": {"type": kind, "coin": "BTC"}}))

    assert sub(one, "l2Book")[0]["channel"] == "subscriptionResponse"
    refused = sub(one, "trades")
    assert refused[0]["channel"] == "error" and "one client address" in refused[0]["data"]
    assert sub(two, "trades")[0]["channel"] == "subscriptionResponse"
    one.receive(json.dumps({"method": "unsubscribe", "subscription": {"type": "l2Book", "coin": "BTC"}}))
    assert sub(one, "trades")[0]["channel"] == "subscriptionResponse"
    one.close()
    two.close()
    assert quota.subscriptions == 0 and quota.subscriptions_by_address == {}


def test_native_websocket_subscriptions_are_capped(chain: ProvingNode) -> None:
    server = _server(chain, max_ws_subscriptions=1)

    async def go() -> None:
        async with TestClient(TestServer(server.app)) as client:
            ws = await client.ws_connect("/websocket")
            await ws.send_json({"method": "subscribe", "topic": "blocks"})
            assert (await ws.receive_json())["subscribed"] == "blocks"
            other = await client.ws_connect("/websocket")
            await other.send_json({"method": "subscribe", "topic": "blocks"})
            answer = await other.receive_json()
            assert answer["error"]["name"] == "NOT_READY" and "at most 1 websocket" in answer["error"]["message"]
            await ws.close()
            await asyncio.sleep(0)  # the server's handler sees the close
            for _ in range(100):
                if server.ws_quota.subscriptions == 0:
                    break
                await asyncio.sleep(0.01)
            await other.send_json({"method": "subscribe", "topic": "blocks"})
            assert (await other.receive_json())["subscribed"] == "blocks"
            await other.close()

    asyncio.run(go())


def test_one_address_holds_at_most_its_share_of_the_subscriptions(chain: ProvingNode) -> None:
    """One client address holds at most 1,000 subscriptions (the default), however many
    connections it opens: 50 connections of 100 each were half the node's cap, so two
    addresses held all of it and refused everyone else's subscribe. Its subscriptions leave
    the count, in all and its own, when its connections close."""
    server = _server(chain)
    accounts = [f"0x{i + 1:040x}" for i in range(100)]

    async def go() -> None:
        async with TestClient(TestServer(server.app)) as client:
            conns, answers = [], []
            for _ in range(11):  # 1,100 subscriptions asked from one address
                ws = await client.ws_connect("/websocket", headers=_from("10.0.0.1"))
                conns.append(ws)
                for a in accounts:
                    await ws.send_json({"method": "subscribe", "topic": "account", "address": a})
                for _ in accounts:
                    answers.append(await ws.receive_json())
            refused = [a for a in answers if "error" in a]
            assert len(answers) - len(refused) == 1000 and len(refused) == 100
            assert refused[0]["error"]["name"] == "NOT_READY" and "one client address" in refused[0]["error"]["message"]
            other = await client.ws_connect("/websocket", headers=_from("10.0.0.2"))
            await other.send_json({"method": "subscribe", "topic": "blocks"})
            assert (await other.receive_json())["subscribed"] == "blocks"  # another address is served
            for ws in [*conns, other]:
                await ws.close()
            for _ in range(200):
                if server.ws_quota.total == 0:
                    break
                await asyncio.sleep(0.01)
            assert server.ws_quota.subscriptions == 0 and server.ws_quota.subscriptions_by_address == {}

    asyncio.run(go())


def test_websocket_messages_meet_the_byte_rate(chain: ProvingNode) -> None:
    """/websocket: a client's messages are charged to its byte rate; once it is over, its
    connection is closed (1013) rather than the node reading on, and it cannot reconnect
    (429) until it has waited its debt off. Before, a client sending 60 KB frames back to
    back had each one parsed and answered, and no limit applied."""
    from aiohttp import WSServerHandshakeError

    server = _server(chain, client_submit_kib_per_s=1, client_submit_burst_kib=1)
    junk = json.dumps({"method": "subscribe", "topic": "nope", "pad": "x" * 600})

    async def go() -> None:
        async with TestClient(TestServer(server.app)) as client:
            ws = await client.ws_connect("/websocket", headers=_from("10.0.0.1"))
            for _ in range(2):  # 1 KiB of burst: two 600-byte messages are read and answered
                await ws.send_str(junk)
                assert (await ws.receive_json())["error"]["name"] == "MALFORMED"
            await ws.send_str(junk)
            closing = await asyncio.wait_for(ws.receive(), 10)
            assert closing.type == WSMsgType.CLOSE and closing.data == LAGGING_CLOSE_CODE
            assert "rate of request bytes" in closing.extra
            await ws.close()
            with pytest.raises(WSServerHandshakeError) as refused:
                await client.ws_connect("/websocket", headers=_from("10.0.0.1"))
            assert refused.value.status == 429
            other = await client.ws_connect("/websocket", headers=_from("10.0.0.2"))  # another client
            await other.send_json({"method": "subscribe", "topic": "blocks"})
            assert (await other.receive_json())["subscribed"] == "blocks"
            await other.close()
            for _ in range(200):
                if server.ws_quota.total == 0:
                    break
                await asyncio.sleep(0.01)
            assert server.ws_quota.total == 0 and server.ws_quota.subscriptions == 0

    asyncio.run(go())


def test_ws_messages_meet_the_byte_rate(tmp_path: Path) -> None:
    """/ws: the same (its read budget refused an over-budget message, but still read and
    answered every one)."""
    node = HlNode(tmp_path)
    host = SimpleNamespace(rt=node, ws_quota=WsQuota(), read_budget=ReadBudget(exempt=()),
                           submit_limit=SubmitLimit(1024, 1024, exempt=()))
    junk = json.dumps({"method": "post", "pad": "x" * 600})

    async def go() -> None:
        app = web.Application()
        app.router.add_get("/ws", hlws.route(host))
        async with TestClient(TestServer(app)) as client:
            ws = await client.ws_connect("/ws")
            for _ in range(2):
                await ws.send_str(junk)
                assert (await ws.receive_json())["channel"] == "error"
            await ws.send_str(junk)
            closing = await asyncio.wait_for(ws.receive(), 10)
            assert closing.type == WSMsgType.CLOSE and closing.data == LAGGING_CLOSE_CODE
            await ws.close()
            # still in debt: the RPC's middleware refuses its next handshake (429; the /websocket test)
            assert not host.submit_limit.admit("127.0.0.1", 0)
            for _ in range(200):
                if host.ws_quota.total == 0:
                    break
                await asyncio.sleep(0.01)
            assert host.ws_quota.total == 0

    asyncio.run(go())


def test_a_lagging_ws_client_is_disconnected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """/ws: the pushes wait (here: a block is executing) while the bundles queue up; once the
    connection's queue is full it is closed (1013) instead of the node working for it."""
    monkeypatch.setattr(hlws, "PUSH_QUEUE", 2)
    node = HlNode(tmp_path)
    host = SimpleNamespace(rt=node, ws_quota=WsQuota(), read_budget=ReadBudget(exempt=()),
                           submit_limit=SubmitLimit(exempt=()))
    bundles = [node.block() for _ in range(4)]

    async def go() -> None:
        app = web.Application()
        app.router.add_get("/ws", hlws.route(host))  # type: ignore[arg-type]
        async with TestClient(TestServer(app)) as client:
            ws = await client.ws_connect("/ws")
            await ws.send_json({"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC"}})
            assert (await ws.receive_json())["channel"] == "subscriptionResponse"
            await ws.receive_json()  # the snapshot
            node.execution.gate.close()  # the forwarder waits, as behind a slow socket or a spent budget
            for b in bundles:
                node.bus.publish(hlws.TOPIC, None, {"bundle": b})
                await asyncio.sleep(0)
            closing = await asyncio.wait_for(ws.receive(), 10)
            assert closing.type == WSMsgType.CLOSE and closing.data == LAGGING_CLOSE_CODE
            node.execution.gate.open()
        assert not node.bus.subs and host.ws_quota.total == 0 and host.ws_quota.subscriptions == 0
        assert host.ws_quota.lagging_closed == 1

    asyncio.run(go())


def test_a_lagging_native_websocket_client_is_disconnected(chain: ProvingNode, monkeypatch: pytest.MonkeyPatch) -> None:
    """/websocket: pushes wait while the read budget is spent; the queue fills; the
    connection is closed (1013)."""
    monkeypatch.setattr(rpc, "WS_QUEUE", 3)
    server = _server(chain)
    clock = Ticking()
    server.read_budget = ReadBudget(clock=clock, exempt=())
    bus = chain.host.bus

    async def go() -> None:
        async with TestClient(TestServer(server.app)) as client:
            ws = await client.ws_connect("/websocket")
            await ws.send_json({"method": "subscribe", "topic": "blocks"})
            assert (await ws.receive_json())["subscribed"] == "blocks"
            server.read_budget.charge(clock.t - 3600)  # an hour of loop time owed: pushes wait
            for h in range(5):
                bus.publish("blocks", None, {"height": h})
                await asyncio.sleep(0)
            closing = await asyncio.wait_for(ws.receive(), 10)
            assert closing.type == WSMsgType.CLOSE and closing.data == LAGGING_CLOSE_CODE
        assert not bus.subs and server.ws_quota.total == 0 and server.ws_quota.subscriptions == 0
        assert server.ws_quota.lagging_closed == 1

    asyncio.run(go())


# ---------------------------------------------------------------------------- the bundle's index
_ACCOUNTS = [bytes([i]) * 20 for i in range(4)]
_account = st.sampled_from(_ACCOUNTS)
_event = st.one_of(
    st.tuples(st.just("fill"), st.integers(0, 3), st.integers(1, 9), st.integers(1, 9), st.booleans(), _account,
              _account, st.integers(1, 99), st.integers(1, 99), st.just(0), st.just(0)).map(list),
    st.tuples(st.just("cancel"), st.integers(0, 3), st.integers(1, 99), _account, st.integers(0, 9),
              st.sampled_from(["cancelled", "expired"])).map(list),
    st.tuples(st.just("funding_payment"), _account, st.integers(0, 3), st.integers(-9, 9)).map(list),
    st.tuples(st.just("adl"), st.integers(0, 3), _account, _account, st.integers(1, 9), st.integers(0, 9)).map(list),
    st.tuples(st.just("dead_man"), _account, st.integers(0, 9), st.integers(0, 9)).map(list),
    st.tuples(st.just("deposit"), _account, st.integers(0, 9)).map(list),
)


@settings(max_examples=100, deadline=None)
@given(events=st.lists(_event, max_size=30), orders=st.lists(_account, max_size=20),
       who=st.lists(_account, min_size=1, max_size=3, unique=True))
def test_a_bundles_account_index_finds_what_a_walk_over_the_block_finds(
        events: list[list[Any]], orders: list[bytes], who: list[bytes]) -> None:
    """``Bundle.events_of`` / ``orders_of`` (what user pushes read) against the plain scan
    they replace: the same entries, in block order, once each."""
    b = hlws.Bundle(1, 0)
    b.events = [(seq, "0x", e) for seq, e in enumerate(events)]
    b.orders = [(owner, {"n": n}) for n, owner in enumerate(orders)]
    fields = {"fill": (5, 6), "funding_payment": (1,), "adl": (2, 3), "dead_man": (1,), "cancel": (3,)}
    assert b.events_of(who) == [x for x in b.events if any(x[2][f] in who for f in fields.get(x[2][0], ()))]
    assert b.orders_of(who) == [o for owner, o in b.orders if owner in who]


def test_an_ipv6_client_is_its_64_network_and_a_mapped_ipv4_client_its_address() -> None:
    """A host handed a /64 would otherwise take a fresh share with every address in it."""
    from node.clientaddr import client_key

    a, b = client_key("2001:db8:1:2::1"), client_key("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert a == b == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != a
    assert client_key("::ffff:10.0.0.7") == client_key("10.0.0.7") == "10.0.0.7"
    assert client_key("::1") == "::1" and client_key("fe80::1%eth0") == "fe80::/64"
    limit = SubmitLimit(1, 1)  # one byte a second: the first body spends the bucket
    assert limit.admit(client_key("2001:db8:1:2::1"), 10)
    assert not limit.admit(client_key("2001:db8:1:2::99"), 10)  # the same /64: the same client
    assert limit.admit(client_key("2001:db8:9::1"), 10)


def test_many_clients_together_meet_the_nodes_byte_rate() -> None:
    """Each of many addresses within its own rate could make the node read without bound
    (a botnet, or a host rotating addresses past the tracked clients): all of them share a
    node-wide bucket, refused 503 NOT_READY past it, while each client's own bucket is
    untouched by the refusal."""
    clock = Ticking()
    limit = SubmitLimit(bytes_per_s=1000, burst=2000, node_bytes_per_s=1000, node_burst=5000, exempt=(), clock=clock)
    codes = [limit.refusal(f"10.0.{i}.1", 2000) for i in range(4)]
    assert codes == [None, None, None, Code.NOT_READY]  # 6,000 of the node's 5,000 spent by the third
    assert limit.refused_node == 1 and limit.refused == 0
    clock.t += 1.5  # the node's debt of 1,000 is repaid, with 500 to spare
    assert limit.refusal("10.0.3.1", 2000) is None  # the refused client's own bucket was not charged


def test_the_node_wide_byte_rate_answers_503(chain: ProvingNode) -> None:
    server = _server(chain, node_submit_kib_per_s=1, node_submit_burst_kib=1)

    async def go() -> None:
        async with TestClient(TestServer(server.app)) as client:
            for i in range(6):  # the floor (256 bytes) a request: four fill 1 KiB, a fifth may ride the refill
                resp = await client.get("/health", headers=_from(f"10.1.{i}.1"))
            assert await _error(resp) == (503, "NOT_READY")

    asyncio.run(go())
