"""End to end: the unmodified Hyperliquid SDK and ccxt trade on a real devnet.

A one-node devnet is brought up with the CLI (as tests/devnet/test_devnet_e2e.py does); two
fresh Ethereum keys are funded through the bridge (``bookchain tx deposit 0x...``). Then
``hyperliquid.exchange.Exchange`` and ``hyperliquid.info.Info``, pointed at the node's RPC
URL, do what a bot does (orders, market open/close, TP/SL, cancels, modifies, leverage,
transfers, an agent, a dead-man switch) and read the results back through ``/info``; and
ccxt's ``hyperliquid`` class, in sandbox mode (so it signs for source "b", as testnet) with
its URLs pointed at the node, loads markets, reads the book, balance and positions, and
places and cancels an order.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from typing import Any

import pytest

from devnet.manifest import Manifest
from tests.devnet.conftest import running_devnet
from tests.devnet.test_devnet_e2e import bookchain_json

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(importlib.util.find_spec("hyperliquid") is None or importlib.util.find_spec("ccxt") is None,
                       reason="hyperliquid-python-sdk and ccxt are test extras"),
]


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Manifest]:
    home = tmp_path_factory.mktemp("hlsdk") / "devnet"
    with running_devnet(home, nodes=1, traders=0) as (m, _out):
        yield m


def funded_key(devnet: Manifest, usdc: str = "1000000", btc: str = "10") -> Any:
    """A fresh Ethereum key funded through the bridge (the CLI's ``bridge`` key)."""
    import eth_account

    acct = eth_account.Account.create()
    cli = ["--home", devnet.cli_home, "--node", devnet.nodes[0].rpc_url]
    for asset, amount in (("USDC", usdc), ("BTC", btc)):
        assert bookchain_json(*cli, "tx", "deposit", acct.address, asset, amount)["code"] == 0
    return acct


def the_status(doc: dict[str, Any]) -> Any:
    assert doc["status"] == "ok", doc
    (status,) = doc["response"]["data"]["statuses"]
    return status


def wait_until(check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError("timed out waiting for the condition")


DEFAULT = {"status": "ok", "response": {"type": "default"}}
GTC = {"limit": {"tif": "Gtc"}}


def test_sdk_trades_and_reads_back(devnet: Manifest) -> None:
    import eth_account
    from hyperliquid.exchange import Exchange
    from hyperliquid.info import Info
    from hyperliquid.utils.types import Cloid

    url = devnet.nodes[0].rpc_url
    trader, maker = funded_key(devnet), funded_key(devnet)
    info = Info(url, skip_ws=True)
    ex, mk = Exchange(trader, url), Exchange(maker, url)

    assert info.meta()["universe"][0]["name"] == "BTC"
    assert info.all_mids()["BTC"] == "60000"

    # the maker quotes both sides with one signed action
    placed = mk.bulk_orders([
        {"coin": "BTC", "is_buy": False, "sz": 0.1, "limit_px": 60000, "order_type": GTC, "reduce_only": False},
        {"coin": "BTC", "is_buy": True, "sz": 0.1, "limit_px": 59000, "order_type": GTC, "reduce_only": False},
    ])
    assert placed["status"] == "ok" and [list(s) for s in placed["response"]["data"]["statuses"]] == [["resting"]] * 2
    book = info.l2_snapshot("BTC")
    assert book["levels"][0][0]["px"] == "59000" and book["levels"][1][0]["px"] == "60000"

    # a resting bid, cancelled by oid; another by cloid
    oid = the_status(ex.order("BTC", True, 0.01, 58000, GTC))["resting"]["oid"]
    assert [o["oid"] for o in info.open_orders(trader.address)] == [oid]
    assert the_status(ex.cancel("BTC", oid)) == "success"
    cloid = Cloid.from_str("0x" + "12" * 16)
    rest = the_status(ex.order("BTC", True, 0.01, 58000, GTC, cloid=cloid))["resting"]
    assert rest["cloid"] == cloid.to_raw()
    assert the_status(ex.cancel_by_cloid("BTC", cloid)) == "success"
    assert info.open_orders(trader.address) == []

    # market open against the maker's ask: a position, a fill
    filled = the_status(ex.market_open("BTC", True, 0.05))["filled"]
    assert (filled["totalSz"], filled["avgPx"]) == ("0.05", "60000")
    (pos,) = info.user_state(trader.address)["assetPositions"]
    assert (pos["position"]["coin"], pos["position"]["szi"]) == ("BTC", "0.05")
    fills = info.user_fills(trader.address)
    assert fills[0]["oid"] == filled["oid"] and fills[0]["px"] == "60000" and fills[0]["sz"] == "0.05"

    # a stop-loss on the position waits; it is listed and cancelled by its oid
    sl = {"trigger": {"triggerPx": 55000, "isMarket": True, "tpsl": "sl"}}
    assert the_status(ex.order("BTC", False, 0.05, 55000, sl, reduce_only=True)) == "waitingForTrigger"
    (trig,) = [o for o in info.frontend_open_orders(trader.address) if o.get("isTrigger")]
    assert trig["triggerPx"] == "55000"
    assert the_status(ex.cancel("BTC", trig["oid"])) == "success"

    # modify a resting order's price and size
    oid = the_status(ex.order("BTC", True, 0.01, 57000, GTC))["resting"]["oid"]
    modified = the_status(ex.modify_order(oid, "BTC", True, 0.02, 57500, GTC))  # the SDK sends a batchModify
    (o,) = info.open_orders(trader.address)
    assert modified == {"resting": {"oid": o["oid"]}}
    assert (o["limitPx"], o["sz"], o["side"]) == ("57500", "0.02", "B")
    assert the_status(ex.cancel("BTC", o["oid"])) == "success"

    assert ex.update_leverage(10, "BTC") == DEFAULT
    (pos,) = info.user_state(trader.address)["assetPositions"]
    assert pos["position"]["leverage"]["value"] == 10

    before = float(info.user_state(maker.address)["withdrawable"])
    assert ex.usd_transfer(100.5, maker.address) == DEFAULT
    assert abs(float(info.user_state(maker.address)["withdrawable"]) - before - 100.5) < 0.01

    # market close sells the position into the maker's bid
    closed = the_status(ex.market_close("BTC"))["filled"]
    assert (closed["totalSz"], closed["avgPx"]) == ("0.05", "59000")
    assert info.user_state(trader.address)["assetPositions"] == []

    # an agent key trades for its master
    approved, agent_key = ex.approve_agent()
    assert approved == DEFAULT
    agent = Exchange(eth_account.Account.from_key(agent_key), url, account_address=trader.address)
    oid = the_status(agent.order("BTC", True, 0.01, 58500, GTC))["resting"]["oid"]
    assert [o["oid"] for o in info.open_orders(trader.address)] == [oid]

    # the dead-man switch cancels it (block time follows wall time on a devnet)
    assert ex.schedule_cancel(int(time.time() * 1000) + 6_000) == DEFAULT
    wait_until(lambda: info.open_orders(trader.address) == [])


def test_sdk_refusals_come_back_as_values(devnet: Manifest) -> None:
    from hyperliquid.exchange import Exchange

    url = devnet.nodes[0].rpc_url
    trader = funded_key(devnet)
    ex = Exchange(trader, url)
    doc = ex.order("BTC", True, 0.01, 58000.5, GTC)  # 6 significant figures
    assert doc["status"] == "err" and doc["name"] == "BAD_DECIMAL", doc
    import eth_account

    stranger = Exchange(eth_account.Account.create(), url)
    doc = stranger.order("BTC", True, 0.01, 58000, GTC)
    assert doc["status"] == "err" and doc["name"] == "UNKNOWN_ACCOUNT", doc


def test_ccxt_reads_and_trades(devnet: Manifest) -> None:
    import ccxt

    url = devnet.nodes[0].rpc_url
    trader = funded_key(devnet, usdc="50000")
    ex = ccxt.hyperliquid({"walletAddress": trader.address, "privateKey": "0x" + trader.key.hex()})
    ex.set_sandbox_mode(True)  # testnet signing (source "b"), then the devnet's URL
    ex.urls["api"] = {"public": url, "private": url}

    symbols = {m["symbol"] for m in ex.fetch_markets()}
    assert {"BTC/USDC:USDC", "ETH/USDC:USDC", "BTC/USDC"} <= symbols
    perp = "BTC/USDC:USDC"
    ex.load_markets()
    book = ex.fetch_order_book(perp)
    assert book["symbol"] == perp and isinstance(book["bids"], list)
    assert ex.fetch_balance()["USDC"]["total"] == pytest.approx(50_000 + 10 * 60_000, rel=0.01)
    assert ex.fetch_positions() == []

    order = ex.create_order(perp, "limit", "buy", 0.01, 57000)
    assert order["id"] and order["info"] == {"resting": {"oid": int(order["id"])}}
    book = ex.fetch_order_book(perp)
    assert [57000.0, 0.01] in [[float(p), float(s)] for p, s in book["bids"]]
    cancelled = ex.cancel_order(order["id"], perp)
    assert cancelled["status"] == "success"
    assert [57000.0, 0.01] not in [[float(p), float(s)] for p, s in ex.fetch_order_book(perp)["bids"]]
    with pytest.raises(ccxt.BaseError):  # a price off Hyperliquid's rules is refused before any block
        ex.create_order("BTC/USDC", "limit", "buy", 0.01, 1.23456789)
