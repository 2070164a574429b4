"""`bookchain tx` against the fake node: receipts, fills, and the exit-code contract."""

from __future__ import annotations

import json

from tests.cli.conftest import Env


def test_order_rests_then_cross_prints_fills(env: Env) -> None:
    sell = env.run("tx", "order", "BTC/USDC", "sell", "--size", "0.25", "--price", "60000", "--key", "alice",
                   "--cloid", "ask-1")
    assert sell.exit_code == 0, sell.output
    assert "OK" in sell.output and "resting" in sell.output
    buy = env.run("tx", "order", "BTC/USDC", "buy", "--size", "0.1", "--price", "60000", "--key", "bob",
                  "--tif", "ioc")
    assert buy.exit_code == 0, buy.output
    assert "filled" in buy.output and "fills" in buy.output
    assert "60000" in buy.output and "0.1" in buy.output  # human units in the fills table
    book = env.json("query", "book", "BTC/USDC")
    assert book["asks"] == [[60_000, 1_500, 1]]  # 0.15 BTC left = 1500 lots


def test_json_receipt_is_the_node_answer(env: Env) -> None:
    res = env.run("tx", "order", "ETH/USDC", "buy", "--size", "1", "--price", "2999.9", "--key", "bob", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["code"] == 0 and doc["name"] == "OK" and doc["height"] >= 1
    r = doc["receipt"]["results"][0]
    assert r["status"] == "resting" and r["resting"] == 1000 and r["oid"] >= 1
    looked_up = env.json("query", "tx", doc["hash"])
    assert looked_up["receipt"] == doc["receipt"]


def test_rejected_tx_exits_1_with_code_name(env: Env) -> None:
    res = env.run("tx", "order", "BTC/USDC", "buy", "--size", "1", "--price", "60000", "--key", "pauper")
    assert res.exit_code == 1
    assert "UNKNOWN_ACCOUNT" in res.output  # a key the chain has never seen: refused at admission
    res = env.run("tx", "cancel", "BTC/USDC", "--oid", "999", "--key", "alice")
    assert res.exit_code == 1 and "UNKNOWN_ORDER" in res.output


def test_usage_errors_exit_2_before_signing(env: Env) -> None:
    before = len(env.node.requests)
    off_tick = env.run("tx", "order", "BTC/USDC", "buy", "--size", "0.1", "--price", "60000.5", "--key", "bob")
    assert off_tick.exit_code == 2 and "tick size 1" in off_tick.output
    off_lot = env.run("tx", "order", "BTC/USDC", "buy", "--size", "0.00001", "--price", "60000", "--key", "bob")
    assert off_lot.exit_code == 2 and "lot size" in off_lot.output
    assert env.run("tx", "order", "BTC/USDC", "buy", "--size", "1", "--price", "1", "--key", "nobody").exit_code == 2
    assert env.run("tx", "order", "DOGE/USDC", "buy", "--size", "1", "--price", "1", "--key", "bob").exit_code == 2
    assert env.run("tx", "cancel", "BTC/USDC", "--key", "bob").exit_code == 2  # neither --oid nor --cloid
    assert not any(p.startswith("/broadcast") for _, p in env.node.requests[before:])


def test_unreachable_node_exits_3(env: Env, dead_url: str) -> None:
    res = env.run("--node", dead_url, "tx", "order", "BTC/USDC", "buy", "--size", "0.1", "--price", "1",
                  "--key", "bob")
    assert res.exit_code == 3 and "unreachable" in res.output
    res = env.run("tx", "cancel-all", "--key", "bob", "--node", dead_url)
    assert res.exit_code == 3


def test_deposit_by_bridge_and_withdraw(env: Env) -> None:
    res = env.run("tx", "deposit", "pauper", "USDC", "250.5")
    assert res.exit_code == 0, res.output
    acct = env.json("query", "account", "pauper")
    assert acct["balances"] == [{"asset": 0, "symbol": "USDC", "free": 250_500_000}]
    not_bridge = env.run("tx", "deposit", "pauper", "USDC", "1", "--key", "alice")
    assert not_bridge.exit_code == 1 and "UNAUTHORIZED" in not_bridge.output
    w = env.run("tx", "withdraw", "USDC", "0.5", "--key", "pauper", "--dest", "0xdeadbeef")
    assert w.exit_code == 0, w.output
    acct = env.json("query", "account", "pauper")
    assert acct["balances"][0]["free"] == 250_000_000


def test_cancel_by_cloid_modify_cancel_all(env: Env) -> None:
    assert env.run("tx", "order", "BTC/USDC", "buy", "--size", "0.1", "--price", "50000", "--key", "bob",
                   "--cloid", "b1").exit_code == 0
    assert env.run("tx", "order", "BTC/USDC", "buy", "--size", "0.1", "--price", "50001", "--key", "bob",
                   "--cloid", "b2").exit_code == 0
    mod = env.run("tx", "modify", "BTC/USDC", "--cloid", "b2", "--price", "50002", "--size", "0.05", "--key", "bob")
    assert mod.exit_code == 0, mod.output
    orders = env.json("query", "orders", "bob")["orders"]
    assert sorted((o["price"], o["size"]) for o in orders) == [(50_000, 1_000), (50_002, 500)]
    assert env.run("tx", "cancel", "BTC/USDC", "--cloid", "b1", "--key", "bob").exit_code == 0
    assert len(env.json("query", "orders", "bob")["orders"]) == 1
    assert env.run("tx", "cancel-all", "BTC/USDC", "--key", "bob").exit_code == 0
    assert env.json("query", "orders", "bob")["orders"] == []


def test_batch_inline_file_and_stdin(env: Env, tmp_path: object) -> None:
    items = [{"type": "order", "market": "ETH/USDC", "side": "sell", "size": "0.5", "price": "3100", "cloid": "s1"},
             {"type": "order", "market": "ETH/USDC", "side": "sell", "size": "0.5", "price": "3101"}]
    res = env.run("tx", "batch", json.dumps(items), "--key", "alice", "--json")
    assert res.exit_code == 0, res.output
    assert [r["status"] for r in json.loads(res.stdout)["receipt"]["results"]] == ["resting", "resting"]
    res = env.run("tx", "batch", "-", "--key", "alice", input=json.dumps([{"type": "cancel_all", "market": "ETH/USDC"}]))
    assert res.exit_code == 0, res.output
    assert env.json("query", "orders", "alice")["orders"] == []
    assert env.run("tx", "batch", "/no/such/file", "--key", "alice").exit_code == 2
    assert env.run("tx", "batch", "[{]", "--key", "alice").exit_code == 2


def test_async_returns_after_mempool_check(env: Env) -> None:
    res = env.run("tx", "order", "BTC/USDC", "sell", "--size", "0.1", "--price", "70000", "--key", "alice",
                  "--async", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["code"] == 0 and "receipt" not in doc
    assert ("POST", "/broadcast_tx_sync") in env.node.requests
    env.node.reject_admission.clear()


def test_mempool_refusal_exits_1(env: Env) -> None:
    res = env.run("tx", "order", "BTC/USDC", "sell", "--size", "0.1", "--price", "70000", "--key", "alice",
                  "--chain-id", "some-other-chain")
    assert res.exit_code == 1 and "BAD_SIGNATURE" in res.output


def test_nonces_increase_within_a_process() -> None:
    from node.wallet.nonce import NonceClock

    clock = NonceClock(lambda: 1000)
    assert [clock.next(b"k") for _ in range(3)] == [1000, 1001, 1002]
    assert clock.next(b"other") == 1000


def test_market_and_side_as_options_or_arguments(env: Env) -> None:
    base = ["--size", "0.01", "--price", "50000", "--key", "bob", "--json"]
    for form in (["--market", "BTC/USDC", "--side", "buy"], ["--market", "BTC/USDC", "buy"],
                 ["BTC/USDC", "--side", "buy"], ["BTC/USDC", "buy"]):
        res = env.run("tx", "order", *form, *base)
        assert res.exit_code == 0, (form, res.output)
        assert json.loads(res.stdout)["receipt"]["results"][0]["status"] == "resting"
    for bad in (["BTC/USDC"], ["--side", "buy"], ["BTC/USDC", "buy", "--side", "sell"], ["BTC/USDC", "hold"],
                ["ETH/USDC", "buy", "--market", "BTC/USDC"]):
        res = env.run("tx", "order", *bad, *base)
        assert res.exit_code == 2, (bad, res.output)


def test_transfer_moves_funds_to_a_key_or_address(env: Env) -> None:
    res = env.run("tx", "transfer", "bob", "USDC", "250.5", "--key", "alice", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["receipt"]["kind"] == "transfer"
    too_much = env.run("tx", "transfer", "bob", "USDC", "2000000", "--key", "alice")
    assert too_much.exit_code == 1 and "INSUFFICIENT_BALANCE" in too_much.output
    assert env.run("tx", "transfer", "bob", "USDC", "0.0000001", "--key", "alice").exit_code == 2


def test_a_transfer_s_refusals_say_transfer_not_withdraw(env: Env) -> None:
    """A transfer is checked as a withdrawal, and its refusals read "withdraw ...": a
    zero transfer said "withdraw amount must be positive". They name the transfer, with
    amounts in the asset's units."""
    zero = env.run("tx", "transfer", "bob", "USDC", "0", "--key", "alice")
    assert zero.exit_code == 1 and "AMOUNT_OUT_OF_RANGE" in zero.output
    assert "transfer amount must be positive" in zero.output and "withdraw" not in zero.output
    too_much = env.run("tx", "transfer", "bob", "USDC", "2000000", "--key", "alice")
    assert "transfer 2000000 USDC, available" in too_much.output and "withdraw" not in too_much.output


def test_leverage_is_set_and_shown(env: Env) -> None:
    res = env.run("tx", "leverage", "BTC-PERP", "5x", "--key", "alice")
    assert res.exit_code == 0, res.output
    assert env.json("query", "account", "alice")["margin"]["leverage"]["2"] == 5
    too_high = env.run("tx", "leverage", "BTC-PERP", "50", "--key", "alice")
    assert too_high.exit_code == 1 and "LEVERAGE_OUT_OF_RANGE" in too_high.output
    assert env.run("tx", "leverage", "BTC-PERP", "max", "--key", "alice").exit_code == 0
    assert env.json("query", "account", "alice")["margin"]["leverage"]["2"] == 20
    assert env.run("tx", "leverage", "BTC-PERP", "lots", "--key", "alice").exit_code == 2
