"""Hyperliquid's websocket protocol (node/hlws.py): sessions and pushed shapes, no sockets.

A harness chain is indexed into a real block store as node/execution.py does it, and each
block goes through ``Publisher.bundle`` with the same list forms execution passes. BTC-PERP
(coin ``BTC``): tick $1, lot 0.0001 BTC, so 2_500 lots are "0.25" and 60_000 ticks "60000".
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from node import history, hlws
from node.blockstore import BlockStore
from node.events import EventBus
from node.execution import event_to_list
from node.stategate import StateGate
from state.keys import address_to_text
from state.tx import Cancel, PlaceOrder, Tif, decode_tx
from tests.harness import BTC, BTC_PERP, USDC, Chain, key
from tests.node.indexing import index_block

A, B = key(50), key(51)
CLOID = bytes(range(16))


def user(k: Any) -> str:
    return address_to_text(k.address)


class Node:
    """A harness chain with the node's indexes and a publisher: what a session reads."""

    def __init__(self, tmp: Path) -> None:
        self.c = Chain()
        self.blocks = BlockStore(str(tmp / "blocks"))
        self.candles = history.CandleBook(self.blocks.db.get)
        self.pub = hlws.Publisher()
        self.bus = EventBus()
        self.execution = SimpleNamespace(gate=StateGate())  # what the endpoint waits at
        for k in (A, B):
            self.c.fund(k, USDC, 1_000_000 * 10**6)
            self.c.fund(k, BTC, 10 * 10**8)

    @property
    def sm(self) -> Any:
        return self.c.sm

    def block(self, *txs: bytes) -> hlws.Bundle:
        r = self.c.block(*txs)
        index_block(self.blocks, self.candles, self.c.ex, r, txs, self.c.ex.time_ms)
        receipts = [x.to_list() for x in r.receipts]
        events = [[i, event_to_list(e)] for i, e in r.events]
        self.pub.remember(self.c.ex, r.height, self.c.ex.time_ms, txs, {raw: decode_tx(raw) for raw in txs}, receipts)
        return self.pub.bundle(self.c.ex, r.height, self.c.ex.time_ms, [x.tx_hash for x in r.receipts], receipts,
                               events, self.candles)

    def order(self, k: Any, is_buy: bool, price: int, size: int, tif: Tif = Tif.GTC,
              cloid: bytes | None = None) -> tuple[hlws.Bundle, bytes]:
        raw = self.c.sign(k, PlaceOrder(BTC_PERP, is_buy, price, size, tif, False, cloid))
        return self.block(raw), raw


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return Node(tmp_path)


def subscribe(s: hlws.Session, sub: dict[str, Any]) -> list[dict[str, Any]]:
    return s.receive(json.dumps({"method": "subscribe", "subscription": sub}))


def pushed(s: hlws.Session, b: hlws.Bundle) -> list[dict[str, Any]]:
    return [json.loads(t) for t in s.push(b)]


# ---------------------------------------------------------------------------- protocol
def test_ping_bad_json_and_unknown_method_answer_without_closing(node: Node) -> None:
    s = hlws.Session(node)
    assert s.receive('{"method":"ping"}') == [{"channel": "pong"}]
    (err,) = s.receive("{not json")
    assert err["channel"] == "error" and err["data"].startswith("Error parsing JSON into valid websocket request")
    assert s.receive('{"method":"post"}')[0]["channel"] == "error"
    assert s.receive("[1, 2]")[0]["channel"] == "error"


def test_subscription_errors_say_what_is_wrong(node: Node) -> None:
    s = hlws.Session(node)
    assert "Unknown subscription type 'bogus'" in subscribe(s, {"type": "bogus"})[0]["data"]
    assert "unknown coin 'DOGE'" in subscribe(s, {"type": "l2Book", "coin": "DOGE"})[0]["data"]
    assert "user" in subscribe(s, {"type": "userFills", "user": "nope"})[0]["data"]
    assert "interval" in subscribe(s, {"type": "candle", "coin": "BTC", "interval": "7m"})[0]["data"]
    assert subscribe(s, {"type": "l2Book"})[0]["channel"] == "error"  # coin missing
    assert s.subs == {}


def test_subscribe_acks_then_snapshots_and_refuses_a_duplicate(node: Node) -> None:
    node.order(A, False, 60_100, 2_500)
    s = hlws.Session(node)
    sub = {"type": "l2Book", "coin": "BTC"}
    ack, book = subscribe(s, sub)
    assert ack == {"channel": "subscriptionResponse", "data": {"method": "subscribe", "subscription": sub}}
    assert book["channel"] == "l2Book"
    assert book["data"]["coin"] == "BTC" and book["data"]["levels"] == [[], [{"px": "60100", "sz": "0.25", "n": 1}]]
    (dup,) = subscribe(s, sub)
    assert dup["channel"] == "error" and dup["data"].startswith("Already subscribed")
    (mids,) = subscribe(s, {"type": "allMids"})[1:]
    assert mids["data"]["mids"]["BTC"] == "60000"  # one-sided book: the mark
    (bbo,) = subscribe(s, {"type": "bbo", "coin": "BTC"})[1:]
    assert bbo["data"]["bbo"] == [None, {"px": "60100", "sz": "0.25", "n": 1}]
    assert subscribe(s, {"type": "trades", "coin": "BTC"})[1:] == []  # a stream: no snapshot


def test_unsubscribe_acks_once(node: Node) -> None:
    s = hlws.Session(node)
    sub = {"type": "trades", "coin": "BTC"}
    subscribe(s, sub)
    unsub = json.dumps({"method": "unsubscribe", "subscription": sub})
    assert s.receive(unsub) == [{"channel": "subscriptionResponse", "data": {"method": "unsubscribe",
                                                                              "subscription": sub}}]
    assert s.subs == {}
    assert s.receive(unsub)[0]["data"].startswith("Already unsubscribed")


def test_subscriptions_per_connection_are_bounded(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hlws, "MAX_SUBSCRIPTIONS", 2)
    s = hlws.Session(node)
    subscribe(s, {"type": "trades", "coin": "BTC"})
    subscribe(s, {"type": "trades", "coin": "ETH"})
    (err,) = subscribe(s, {"type": "allMids"})
    assert err["channel"] == "error" and "more than 2" in err["data"]


# ---------------------------------------------------------------------------- pushes
def test_a_trade_reaches_every_channel_in_hyperliquid_shapes(node: Node) -> None:
    s = hlws.Session(node)
    for sub in ({"type": "trades", "coin": "BTC"}, {"type": "l2Book", "coin": "BTC"},
                {"type": "bbo", "coin": "BTC"}, {"type": "allMids"},
                {"type": "candle", "coin": "BTC", "interval": "1m"},
                {"type": "userFills", "user": user(B)}, {"type": "userEvents", "user": user(B)},
                {"type": "orderUpdates", "user": user(A)}, {"type": "orderUpdates", "user": user(B)}):
        assert subscribe(s, sub)[0]["channel"] == "subscriptionResponse"
    rest, _ = node.order(A, False, 60_000, 2_500, cloid=CLOID)
    got = {m["channel"]: m["data"] for m in pushed(s, rest)}
    assert got["l2Book"]["levels"] == [[], [{"px": "60000", "sz": "0.25", "n": 1}]]
    assert got["bbo"]["bbo"] == [None, {"px": "60000", "sz": "0.25", "n": 1}]
    (opened,) = got["orderUpdates"]
    assert opened["status"] == "open" and opened["statusTimestamp"] == rest.time_ms
    assert opened["order"] == {"coin": "BTC", "side": "A", "limitPx": "60000", "sz": "0.25", "oid": opened["order"]["oid"],
                               "timestamp": rest.time_ms, "origSz": "0.25", "cloid": "0x" + CLOID.hex()}
    assert "trades" not in got and "userFills" not in got
    maker_oid = opened["order"]["oid"]

    take, raw = node.order(B, True, 60_000, 1_000, Tif.IOC)
    tx_hash = "0x" + decode_tx(raw).hash.hex()
    msgs = pushed(s, take)
    got = {m["channel"]: m["data"] for m in msgs}
    (trade,) = got["trades"]
    assert trade == {"coin": "BTC", "side": "B", "px": "60000", "sz": "0.1", "time": take.time_ms, "hash": tx_hash,
                     "tid": trade["tid"], "users": [user(B), user(A)]}
    assert trade["tid"] >> 20 == take.height
    assert got["l2Book"]["levels"][1] == [{"px": "60000", "sz": "0.15", "n": 1}]
    assert "allMids" not in got  # the mid (the mark, one-sided book) did not move
    assert {k: got["candle"][k] for k in ("s", "i", "o", "c", "h", "l", "v", "n")} == {
        "s": "BTC", "i": "1m", "o": "60000", "c": "60000", "h": "60000", "l": "60000", "v": "0.1", "n": 1}
    assert got["candle"]["T"] - got["candle"]["t"] == 59_999
    fills = got["userFills"]
    assert fills["user"] == user(B) and "isSnapshot" not in fills
    (fill,) = fills["fills"]
    assert (fill["coin"], fill["px"], fill["sz"], fill["side"], fill["crossed"], fill["hash"]) == \
        ("BTC", "60000", "0.1", "B", True, tx_hash)
    assert got["user"] == {"fills": fills["fills"]}  # userEvents
    updates = [u for m in msgs if m["channel"] == "orderUpdates" for u in m["data"]]
    by_oid = {u["order"]["oid"]: u for u in updates}
    assert by_oid[maker_oid]["status"] == "open" and by_oid[maker_oid]["order"]["sz"] == "0.15"
    (taker,) = [u for oid, u in by_oid.items() if oid != maker_oid]
    assert taker["status"] == "filled" and taker["order"]["side"] == "B" and taker["order"]["origSz"] == "0.1"

    cancel = node.block(node.c.sign(A, Cancel(BTC_PERP, maker_oid, None)))
    got = {m["channel"]: m["data"] for m in pushed(s, cancel)}
    (gone,) = got["orderUpdates"]
    assert gone["status"] == "canceled"
    assert (gone["order"]["limitPx"], gone["order"]["sz"], gone["order"]["origSz"]) == ("60000", "0.15", "0.25")
    assert got["l2Book"]["levels"] == [[], []] and got["bbo"]["bbo"] == [None, None]
    assert "user" not in got  # a cancel the user asked for is no nonUserCancel


def test_an_unchanged_block_pushes_nothing_and_old_bundles_are_skipped(node: Node) -> None:
    s = hlws.Session(node)
    first = node.block()  # the publisher's first bundle carries every book and the mids
    subscribe(s, {"type": "l2Book", "coin": "BTC"})
    subscribe(s, {"type": "allMids"})
    assert pushed(s, first) == []  # at or below the snapshot's height
    assert pushed(s, node.block()) == []  # nothing changed


def test_no_state_push_repeats_the_subscription_snapshot(node: Node) -> None:
    """A publisher that starts (or restarts after nobody listened) has no books to compare
    with, so its first bundle carries every book, the bbos and the mids: the l2Book, bbo and
    allMids subscribers got their snapshot again right after it. Now only a change is pushed."""
    node.order(A, True, 59_000, 300)
    node.pub = hlws.Publisher()  # nobody listened so far: nothing remembered
    s = hlws.Session(node)
    for sub in ({"type": "l2Book", "coin": "BTC"}, {"type": "bbo", "coin": "BTC"}, {"type": "allMids"}):
        _ack, snap = subscribe(s, sub)
        assert snap["channel"] == sub["type"]
    first = node.block()
    assert BTC_PERP in first.books and first.mids is not None  # the bundle does carry them all
    assert pushed(s, first) == []
    b, _ = node.order(B, False, 60_500, 100)  # an ask: the book, its bbo and the mid change
    assert sorted(m["channel"] for m in pushed(s, b)) == ["allMids", "bbo", "l2Book"]
    assert pushed(s, node.block()) == []


def test_all_mids_are_pushed_when_a_mid_moves(node: Node) -> None:
    s = hlws.Session(node)
    subscribe(s, {"type": "allMids"})
    node.order(A, False, 60_000, 100)
    b, _ = node.order(B, True, 59_000, 100)
    (m,) = pushed(s, b)
    assert m["channel"] == "allMids" and m["data"]["mids"]["BTC"] == "59500" and m["data"]["mids"]["@0"] == "60000"


def test_a_bundle_builds_each_message_once_for_every_connection(node: Node) -> None:
    sessions = [hlws.Session(node) for _ in range(3)]
    for s in sessions:
        subscribe(s, {"type": "l2Book", "coin": "BTC"})
    b, _ = node.order(A, True, 59_000, 100)
    texts = [s.push(b) for s in sessions]
    assert len(texts[0]) == 1 and all(t[0] is texts[0][0] for t in texts)


def test_user_fills_snapshot_comes_first_with_is_snapshot(node: Node) -> None:
    node.order(A, False, 60_000, 2_500)
    node.order(B, True, 60_000, 1_000, Tif.IOC)
    node.order(B, True, 60_000, 500, Tif.IOC)
    s = hlws.Session(node)
    _ack, snap = subscribe(s, {"type": "userFills", "user": user(A)})
    assert snap["channel"] == "userFills"
    assert snap["data"]["isSnapshot"] is True and snap["data"]["user"] == user(A)
    assert [(f["sz"], f["side"], f["crossed"]) for f in snap["data"]["fills"]] == [("0.1", "A", False), ("0.05", "A", False)]
    (fundings,) = subscribe(s, {"type": "userFundings", "user": user(A)})[1:]
    assert fundings["data"] == {"isSnapshot": True, "user": user(A), "fundings": []}


def test_publisher_builds_only_while_the_bus_wants_it(node: Node) -> None:
    node.pub.publish(node.bus, node.c.ex, 1, 0, [], [], [], node.candles)
    assert not node.pub.active
    sub = node.bus.subscribe(hlws.TOPIC)
    node.pub.publish(node.bus, node.c.ex, 1, 0, [], [], [], node.candles)
    assert node.pub.active and isinstance(sub.queue.get_nowait()["data"]["bundle"], hlws.Bundle)
    node.bus.unsubscribe(sub)
    node.pub.publish(node.bus, node.c.ex, 2, 0, [], [], [], node.candles)
    assert not node.pub.active and node.pub.memo == {} and node.pub.books == {}


def test_an_order_resting_before_anyone_listened_is_described_when_cancelled(node: Node) -> None:
    node.order(A, True, 59_000, 300)
    oid = node.c.last.receipts[0].results[0].oid
    node.pub = hlws.Publisher()  # a publisher that starts now learns the live orders
    node.block()
    s = hlws.Session(node)
    subscribe(s, {"type": "orderUpdates", "user": user(A)})
    (m,) = pushed(s, node.block(node.c.sign(A, Cancel(BTC_PERP, oid, None))))
    (u,) = m["data"]
    assert u["status"] == "canceled" and u["order"]["side"] == "B" and u["order"]["limitPx"] == "59000"
    assert u["order"]["origSz"] == "0.03"


def test_a_skipped_block_makes_the_next_bundle_start_afresh(node: Node) -> None:
    node.block()
    assert node.block().books == {}  # nothing changed
    node.c.block()  # applied while nobody listened: no bundle
    again = node.block()
    assert sorted(again.books) == list(range(len(node.c.ex.markets))) and again.mids is not None


def test_user_events_notifications_and_fundings_from_a_bundle(node: Node) -> None:
    """Liquidation, ADL, dead-man, a cancel the user did not ask for and a funding payment,
    as the events of one block (their list forms, state/events.py)."""
    a = A.address
    b = hlws.Bundle(9, 1_700_000_123_000)
    b.events = [(0, hlws.ZERO_HASH, ["funding", BTC_PERP, 1_000_000, 5, 0]),
                (1, hlws.ZERO_HASH, ["funding_payment", a, BTC_PERP, 1_500_000, 0]),
                (2, hlws.ZERO_HASH, ["liquidation", a, "start", 900_000_000, 1_000_000_000]),
                (3, hlws.ZERO_HASH, ["adl", BTC_PERP, a, B.address, 100, 6_000_000_000]),
                (4, hlws.ZERO_HASH, ["dead_man", a, 1_700_000_000_000, 2]),
                (5, hlws.ZERO_HASH, ["cancel", BTC_PERP, 77, a, 10, "expired"]),
                (6, hlws.ZERO_HASH, ["cancel", BTC_PERP, 78, a, 10, "cancelled"])]
    b.rates[BTC_PERP] = 1_000_000
    b.szi[(a, BTC_PERP)] = -2_500
    ex = node.c.ex
    interval_h = ex.genesis.risk.funding_interval_ms / 3_600_000
    rate = float(hlws._funding_rate(ex, 1_000_000))
    assert rate == pytest.approx(0.001 / interval_h)
    funding = {"time": b.time_ms, "coin": "BTC", "usdc": "-1.5", "szi": "-0.25", "fundingRate": hlws._funding_rate(ex, 1_000_000)}

    def build(kind: str) -> list[dict[str, Any]]:
        return hlws.build(ex, hlws.parse_subscription(ex, {"type": kind, "user": user(A)}), b)

    assert build("userFundings") == [{"channel": "userFundings", "data": {"user": user(A), "fundings": [funding]}}]
    events = [m["data"] for m in build("userEvents")]
    assert all(m["channel"] == "user" for m in build("userEvents"))
    assert events[0] == {"funding": funding}
    assert events[1] == {"liquidation": {"lid": (9 << 20) + 2, "liquidator": "0x" + "00" * 20,
                                         "liquidated_user": user(A), "liquidated_ntl_pos": "0",
                                         "liquidated_account_value": "900"}}
    assert events[2] == {"nonUserCancel": [{"coin": "BTC", "oid": 77}]}
    notes = [m["data"]["notification"] for m in build("notification")]
    assert len(notes) == 3
    assert "liquidated" in notes[0] and "900" in notes[0] and "1000" in notes[0]
    assert "Auto-deleveraged: 0.01 BTC" in notes[1] and "Scheduled cancel" in notes[2]
    assert hlws.build(ex, hlws.parse_subscription(ex, {"type": "notification", "user": user(B)}), b) == [
        {"channel": "notification", "data": {"notification": notes[1]}}]  # the ADL counterparty


def test_the_endpoint_over_a_real_socket(node: Node) -> None:
    """aiohttp end to end in process: subscribe, snapshot, a push after a block, the client cap."""
    import asyncio
    from types import SimpleNamespace

    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from node.readbudget import ReadBudget
    from node.submitlimit import SubmitLimit
    from node.wsquota import WsQuota

    host = SimpleNamespace(rt=node, ws_quota=WsQuota(max_total=1), read_budget=ReadBudget(),
                           submit_limit=SubmitLimit())

    async def run() -> None:
        app = web.Application()
        app.router.add_get("/ws", hlws.route(host))
        async with TestClient(TestServer(app)) as client:
            ws = await client.ws_connect("/ws")
            await ws.send_str("nonsense")
            assert (await ws.receive_json())["channel"] == "error"
            await ws.send_json({"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC"}})
            assert (await ws.receive_json())["channel"] == "subscriptionResponse"
            assert (await ws.receive_json())["data"]["levels"] == [[], []]
            assert node.bus.wants(hlws.TOPIC)
            busy = await client.get("/ws")
            assert busy.status == 503 and (await busy.json())["error"]["name"] == "NOT_READY"
            raw = node.c.sign(A, PlaceOrder(BTC_PERP, True, 59_000, 100, Tif.GTC, False, None))
            r = node.c.block(raw)
            node.pub.publish(node.bus, node.c.ex, r.height, node.c.ex.time_ms, [x.tx_hash for x in r.receipts],
                             [x.to_list() for x in r.receipts], [[i, event_to_list(e)] for i, e in r.events],
                             node.candles)
            push = await asyncio.wait_for(ws.receive_json(), 5)
            assert push == {"channel": "l2Book", "data": {"coin": "BTC", "time": node.c.ex.time_ms, "levels": [
                [{"px": "59000", "sz": "0.01", "n": 1}], []]}}
            await ws.send_json({"method": "unsubscribe", "subscription": {"type": "l2Book", "coin": "BTC"}})
            assert (await ws.receive_json())["data"]["method"] == "unsubscribe"
            assert not node.bus.wants(hlws.TOPIC)
            await ws.close()
        assert host.ws_quota.total == 0 and host.ws_quota.by_address == {}

    asyncio.run(run())


def test_an_order_the_publisher_never_saw_is_described_from_its_fills(node: Node) -> None:
    node.order(A, False, 60_000, 2_500)
    node.pub = hlws.Publisher()  # starts at the block that fills it: no memo of it
    s = hlws.Session(node)
    subscribe(s, {"type": "orderUpdates", "user": user(A)})
    b, _ = node.order(B, True, 60_000, 2_500, Tif.IOC)
    (m,) = pushed(s, b)
    (u,) = m["data"]
    assert u["status"] == "filled"
    assert (u["order"]["coin"], u["order"]["side"], u["order"]["limitPx"], u["order"]["sz"]) == ("BTC", "A", "60000", "0")


def test_an_isolated_accounts_orders_and_fills_reach_its_user(node: Node) -> None:
    """Orders on a market the user trades isolated rest and fill in its isolated account;
    the user's orderUpdates and userFills carry them, as /info does (node/hlinfo.py
    ``own_accounts``)."""
    from state.tx import SetMarginMode, UpdateIsolatedMargin

    for action in (SetMarginMode(BTC_PERP, True), UpdateIsolatedMargin(BTC_PERP, 5_000 * 10**6)):
        node.block(node.c.sign(A, action))
    s = hlws.Session(node)
    subscribe(s, {"type": "orderUpdates", "user": user(A)})
    subscribe(s, {"type": "userFills", "user": user(A)})
    b, _ = node.order(A, True, 60_000, 1_000)
    assert [m["channel"] for m in pushed(s, b)] == ["orderUpdates"]
    b, _ = node.order(B, False, 60_000, 1_000, Tif.IOC)
    fills = [m["data"]["fills"] for m in pushed(s, b) if m["channel"] == "userFills"]
    assert len(fills) == 1 and fills[0][0]["dir"] == "Open Long" and fills[0][0]["sz"] == "0.1"
