"""Agent keys and sub-accounts from the CLI, against the fake node (the real state machine)."""

from __future__ import annotations

from tests.cli.conftest import Env


def test_an_agent_key_trades_for_alice_and_cannot_withdraw(env: Env) -> None:
    res = env.run("keys", "agent", "approve", "alice-bot", "--key", "alice")
    assert res.exit_code == 0, res.output
    listed = env.json("keys", "agent", "list", "--key", "alice")
    assert [a["name"] for a in listed["agents"]] == ["alice-bot"]
    order = env.run("tx", "order", "BTC/USDC", "buy", "--size", "0.01", "--price", "59000", "--key", "alice-bot")
    assert order.exit_code == 0, order.output
    assert len(env.json("query", "orders", "alice")["orders"]) == 1
    out = env.run("tx", "withdraw", "USDC", "1", "--key", "alice-bot")
    assert out.exit_code == 1 and "UNAUTHORIZED" in out.output
    assert env.run("keys", "agent", "revoke", "alice-bot", "--key", "alice").exit_code == 0
    assert env.json("keys", "agent", "list", "--key", "alice")["agents"] == []


def test_a_sub_account_is_funded_and_traded_by_name(env: Env) -> None:
    assert env.run("tx", "subaccount", "hedge", "--key", "bob").exit_code == 0
    sub = env.json("query", "account", "bob")["sub_accounts"][0]
    assert sub["name"] == "hedge"
    assert env.run("tx", "transfer", "sub:hedge", "USDC", "1000", "--key", "bob").exit_code == 0
    res = env.run("tx", "order", "BTC/USDC", "buy", "--size", "0.01", "--price", "59000", "--key", "bob",
                  "--account", "hedge")
    assert res.exit_code == 0, res.output
    assert len(env.json("query", "orders", sub["address"])["orders"]) == 1
    assert env.json("query", "account", sub["address"])["master"] == env.json("query", "account", "bob")["address"]
    back = env.run("tx", "transfer", "bob", "USDC", "100", "--key", "bob", "--account", "hedge")
    assert back.exit_code == 0, back.output
    assert env.run("tx", "deposit", "bob", "USDC", "1", "--account", "hedge").exit_code == 2


def test_isolated_margin_from_the_cli(env: Env) -> None:
    assert env.run("tx", "margin-mode", "BTC-PERP", "isolated", "--key", "alice").exit_code == 0
    res = env.run("tx", "isolated-margin", "BTC-PERP", "500", "--key", "alice")
    assert res.exit_code == 0, res.output
    assert env.run("tx", "isolated-margin", "BTC-PERP", "-200", "--key", "alice").exit_code == 0
    iso = [a for a in env.json("query", "account", "alice")["sub_accounts"] if a["name"] == "isolated:2"]
    assert len(iso) == 1
    assert env.json("query", "account", iso[0]["address"])["balances"][0]["free"] == 300 * 10**6
    assert env.run("tx", "margin-mode", "BTC-PERP", "cross", "--key", "alice").exit_code == 0
    assert env.run("tx", "margin-mode", "BTC-PERP", "sideways", "--key", "alice").exit_code == 2
