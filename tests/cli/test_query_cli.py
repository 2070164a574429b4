"""`bookchain query`: tables by default, the node's exact JSON with --json."""

from __future__ import annotations

import json

from node.client import Client
from tests.cli.conftest import Env


def test_json_is_exactly_the_rpc_answer(env: Env) -> None:
    c = Client(env.node.url)
    c.wait_for_height(2, timeout=5)
    assert env.json("query", "markets") == c.markets()
    assert env.json("query", "validators") == c.validators()
    assert env.json("query", "block", "1") == c.block(1)
    assert env.json("query", "block-results", "1") == c.block_results(1)
    alice = env.keys.load("alice").address_text
    for who in ("alice", alice):
        mine, direct_account = env.json("query", "account", who), c.account(alice)
        assert mine.pop("height") <= direct_account.pop("height")  # blocks keep coming
        assert mine == direct_account
    book, direct = env.json("query", "book", "ETH/USDC"), c.book("ETH/USDC")
    assert isinstance(book, dict) and book.pop("height") <= direct.pop("height")  # blocks keep coming
    assert book == direct
    st = env.json("query", "status")
    assert st["chain_id"] == "bookchain-clitest"


def test_tables_render(env: Env) -> None:
    Client(env.node.url).wait_for_height(2, timeout=5)
    env.run("tx", "order", "BTC/USDC", "sell", "--size", "0.5", "--price", "61000", "--key", "alice")
    env.run("tx", "order", "BTC/USDC", "buy", "--size", "0.2", "--price", "61000", "--key", "bob")
    for args, expect in [
        (("query", "status"), "bookchain-clitest"),
        (("query", "markets"), "0.0001"),
        (("query", "book", "BTC/USDC"), "61000"),
        (("query", "account", "alice"), "USDC"),
        (("query", "orders", "alice"), "0.3"),
        (("query", "fills", "bob"), "61000"),
        (("query", "block"), "height"),
        (("query", "block-results", "latest"), "app hash"),
        (("query", "validators"), "v0"),
    ]:
        res = env.run(*args)
        assert res.exit_code == 0, (args, res.output)
        assert expect in res.output, (args, res.output)


def test_errors(env: Env, dead_url: str) -> None:
    missing = env.run("query", "tx", "ab" * 32)
    assert missing.exit_code == 1 and "not found" in missing.output and "HTTP 404" in missing.output
    assert env.run("query", "account", "nobody").exit_code == 2
    assert env.run("query", "account", "0x1234").exit_code == 2
    assert env.run("query", "block", "abc").exit_code == 2
    assert env.run("--node", dead_url, "query", "status").exit_code == 3
    assert env.run("query", "status", "--node", dead_url, "--json").exit_code == 3
    unknown = env.run("query", "book", "DOGE/USDC")
    assert unknown.exit_code == 1 and "UNKNOWN_MARKET" in unknown.output


def test_json_output_is_parseable_even_with_tables_elsewhere(env: Env) -> None:
    res = env.run("query", "fills", "bob", "--json", "--limit", "5")
    assert res.exit_code == 0
    assert json.loads(res.stdout) == {"fills": []}
