"""End to end: hyperliquid-python-sdk's websocket client follows a real devnet on ``/ws``.

A one-node devnet is brought up with the CLI (as tests/devnet/test_devnet_e2e.py does);
``hyperliquid.info.Info(base_url, skip_ws=False)`` connects to ``ws://.../ws`` (the SDK's
derivation) and subscribes to the BTC perp's book and trades and to bob's fills; alice
rests an ask and bob's IOC buy crosses it through the CLI. The SDK's own dispatch
(``ws_msg_to_identifier``) must route every push to the right callback with the right
coin and numbers.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devnet.manifest import Manifest
from tests.devnet.conftest import running_devnet
from tests.devnet.test_devnet_e2e import bookchain_json

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(importlib.util.find_spec("hyperliquid") is None, reason="hyperliquid-python-sdk not installed"),
]


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Manifest]:
    home = tmp_path_factory.mktemp("hlws") / "devnet"
    with running_devnet(home, nodes=1, traders=0) as (m, _out):
        yield m


class Inbox:
    """What the SDK's callbacks received (they run on its websocket thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.msgs: list[dict[str, Any]] = []

    def __call__(self, msg: dict[str, Any]) -> None:
        with self.lock:
            self.msgs.append(msg)

    def wait_for(self, check: Callable[[dict[str, Any]], bool], timeout: float = 30,
                 after: dict[str, Any] | None = None) -> dict[str, Any]:
        """The first message (after ``after``, when given) that passes ``check``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                start = next(i for i, m in enumerate(self.msgs) if m is after) + 1 if after is not None else 0
                for m in self.msgs[start:]:
                    if check(m):
                        return m
            time.sleep(0.1)
        with self.lock:
            raise AssertionError(f"no matching message; got {self.msgs}")


def test_sdk_websocket_follows_book_trades_and_fills(devnet: Manifest) -> None:
    from hyperliquid.info import Info

    url = devnet.nodes[0].rpc_url
    cli = ["--home", devnet.cli_home, "--node", url]
    alice = bookchain_json(*cli, "query", "account", "alice")["address"]
    bob = bookchain_json(*cli, "query", "account", "bob")["address"]
    info = Info(url, skip_ws=False)
    books, trades, fills = Inbox(), Inbox(), Inbox()
    try:
        info.subscribe({"type": "l2Book", "coin": "BTC"}, books)
        info.subscribe({"type": "trades", "coin": "BTC"}, trades)
        info.subscribe({"type": "userFills", "user": bob}, fills)
        books.wait_for(lambda m: m["data"]["coin"] == "BTC")  # the snapshot on subscribe
        snap = fills.wait_for(lambda m: m["data"].get("isSnapshot") is True)
        assert snap["data"]["user"] == bob.lower()

        ask = bookchain_json(*cli, "tx", "order", "BTC-PERP", "sell", "--size", "0.1", "--price", "60000",
                             "--key", "alice")
        assert ask["receipt"]["results"][0]["status"] == "resting", ask
        rested = books.wait_for(lambda m: {"px": "60000", "sz": "0.1", "n": 1} in m["data"]["levels"][1])
        buy = bookchain_json(*cli, "tx", "order", "BTC-PERP", "buy", "--size", "0.1", "--price", "60000",
                             "--tif", "ioc", "--key", "bob")
        assert buy["receipt"]["results"][0]["status"] == "filled", buy
        tx_hash = "0x" + buy["hash"]

        trade = trades.wait_for(lambda m: m["data"][0]["hash"] == tx_hash)
        assert trade["channel"] == "trades"
        (t,) = trade["data"]
        assert (t["coin"], t["side"], t["px"], t["sz"]) == ("BTC", "B", "60000", "0.1")
        assert [u.lower() for u in t["users"]] == [bob.lower(), alice.lower()]

        pushed = fills.wait_for(lambda m: not m["data"].get("isSnapshot") and bool(m["data"]["fills"]))
        (f,) = pushed["data"]["fills"]
        assert (f["coin"], f["px"], f["sz"], f["side"], f["crossed"], f["hash"]) == \
            ("BTC", "60000", "0.1", "B", True, tx_hash)
        taken = books.wait_for(lambda m: {"px": "60000", "sz": "0.1", "n": 1} not in m["data"]["levels"][1],
                               after=rested)
        assert taken["data"]["coin"] == "BTC" and taken["data"]["time"] >= rested["data"]["time"]
    finally:
        info.disconnect_websocket()


def test_bad_messages_get_errors_not_a_closed_socket(devnet: Manifest) -> None:
    import json

    import websocket  # websocket-client, the SDK's dependency

    ws = websocket.create_connection(devnet.nodes[0].rpc_url.replace("http", "ws", 1) + "/ws", timeout=10)
    try:
        ws.send("{oops")
        assert json.loads(ws.recv())["channel"] == "error"
        ws.send(json.dumps({"method": "subscribe", "subscription": {"type": "nope"}}))
        assert "Unknown subscription type" in json.loads(ws.recv())["data"]
        ws.send(json.dumps({"method": "ping"}))
        assert json.loads(ws.recv()) == {"channel": "pong"}
    finally:
        ws.close()
