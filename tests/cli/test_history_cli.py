"""`bookchain query history|candles|orders --history` against a live node: the node's
indexes (node/history.py) reach the CLI as tables and as the exact RPC JSON."""

from __future__ import annotations

import time

import pytest

from node.client import Client, RpcError
from tests.cli.conftest import Env


def test_history_candles_and_order_history_after_a_trade(env: Env) -> None:
    c = Client(env.node.url)
    c.wait_for_height(2, timeout=5)
    assert env.run("tx", "order", "BTC/USDC", "sell", "--size", "0.5", "--price", "61000", "--key", "alice").exit_code == 0
    assert env.run("tx", "order", "BTC/USDC", "buy", "--size", "0.5", "--price", "61000", "--key", "bob").exit_code == 0
    bob = env.keys.load("bob").address_text
    deadline = time.monotonic() + 10
    while not c.candles("BTC/USDC")["candles"] and time.monotonic() < deadline:
        time.sleep(0.1)
    (candle,) = c.candles("BTC/USDC")["candles"]
    assert (candle["o"], candle["c"], candle["v"], candle["n"]) == (61_000, 61_000, 5_000, 1)  # 0.5 BTC = 5,000 lots
    assert candle["T"] - candle["t"] == 59_999
    hist = c.history(bob)
    assert [e["type"] for e in hist["entries"]][:1] == ["fill"] and hist["next"] is None
    assert env.json("query", "history", "bob") == hist
    assert env.json("query", "candles", "BTC/USDC") == c.candles("BTC/USDC", limit=60)
    orders = env.json("query", "orders", "bob", "--history")
    assert isinstance(orders, dict) and [o["status"] for o in orders["orders"]] == ["filled"]
    for args, expect in [(("query", "history", "bob"), "0.5"), (("query", "candles", "BTC/USDC"), "61000"),
                         (("query", "orders", "alice", "--history"), "filled"),
                         (("query", "history", "bob", "--kind", "fill"), "taker")]:
        res = env.run(*args)
        assert res.exit_code == 0 and expect in res.output, (args, res.output)
    bad = env.run("query", "history", "bob", "--before", "x:y")
    assert bad.exit_code == 1 and "MALFORMED" in bad.output
    with pytest.raises(RpcError) as err:
        c.history(bob, kinds="fill,bogus")
    assert "bogus" in str(err.value)
    with pytest.raises(RpcError):
        c.candles("BTC/USDC", interval="2m")
