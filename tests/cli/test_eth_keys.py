"""secp256k1 (Ethereum) keys in the CLI: stored beside ed25519 keys with their scheme, and
every tx command that has a Hyperliquid equivalent signed as that Hyperliquid action, against
the fake node (the real state machine, so the chain's own mapping decides what lands)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import bookchain
from node.wallet.keystore import EthKeyRecord, KeyRecord, KeyStore, KeyStoreError
from state.eip712 import EthKey
from tests.cli.conftest import Env

# a well-known test vector: this private key's Ethereum address
VECTOR_KEY = "0x4c0883a69102937d6231471b5dbb6204fe512961708279f8c5d8a8e6f1c1e3b1"


def run(home: Path, *args: str) -> Result:
    return CliRunner().invoke(bookchain, ["--home", str(home), *args], catch_exceptions=False)


def test_add_eth_writes_a_private_secp256k1_file(tmp_path: Path) -> None:
    res = run(tmp_path, "keys", "add", "dave", "--eth")
    assert res.exit_code == 0, res.output
    path = tmp_path / "keys" / "dave.json"
    doc = json.loads(path.read_text())
    assert doc["scheme"] == "secp256k1" and set(doc) == {"scheme", "seed", "pubkey", "address"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = EthKey.from_hex(doc["seed"])
    assert doc["address"] == "0x" + key.address.hex() and doc["address"] in res.output
    assert doc["seed"] not in res.output and "secp256k1" in res.output
    assert isinstance(KeyStore(tmp_path).load_any("dave"), EthKeyRecord)


def test_import_eth_matches_eth_account_and_exports_0x(tmp_path: Path) -> None:
    eth_account = pytest.importorskip("eth_account")
    res = run(tmp_path, "keys", "import", "vec", "--eth", VECTOR_KEY, "--json")
    assert res.exit_code == 0, res.output
    shown = json.loads(res.stdout)
    assert shown["scheme"] == "secp256k1"
    assert shown["address"] == eth_account.Account.from_key(VECTOR_KEY).address.lower()
    assert run(tmp_path, "keys", "export", "vec").output.strip() == VECTOR_KEY
    # without 0x, as some wallets export it, the same key
    again = run(tmp_path, "keys", "import", "vec2", "--eth", VECTOR_KEY[2:], "--json")
    assert json.loads(again.stdout)["address"] == shown["address"]
    private = json.loads(run(tmp_path, "keys", "show", "vec", "--private", "--json").stdout)
    assert private["private_key"] == VECTOR_KEY
    bad = run(tmp_path, "keys", "import", "x", "--eth", "0x1234")
    assert bad.exit_code == 2 and "32 bytes" in bad.output
    zero = run(tmp_path, "keys", "import", "z", "--eth", "00" * 32)
    assert zero.exit_code == 2 and "1..n-1" in zero.output


def test_list_and_show_say_the_scheme_and_old_files_load(tmp_path: Path) -> None:
    old = tmp_path / "keys" / "old.json"
    assert run(tmp_path, "keys", "new", "old").exit_code == 0
    assert set(json.loads(old.read_text())) == {"seed", "pubkey", "address"}  # ed25519 files: as before
    assert run(tmp_path, "keys", "add", "eve", "--eth").exit_code == 0
    listed = json.loads(run(tmp_path, "keys", "list", "--json").stdout)
    assert [(k["name"], k["scheme"]) for k in listed] == [("eve", "secp256k1"), ("old", "ed25519")]
    table = run(tmp_path, "keys", "list").output
    assert "secp256k1" in table and "ed25519" in table
    assert "secp256k1" in run(tmp_path, "keys", "show", "eve").output
    ks = KeyStore(tmp_path)
    assert isinstance(ks.load("old"), KeyRecord)
    with pytest.raises(KeyStoreError, match="secp256k1"):
        ks.load("eve")  # what signs native transactions only (devnet load, demo) refuses it
    doc = json.loads((tmp_path / "keys" / "eve.json").read_text())
    (tmp_path / "keys" / "eve.json").write_text(json.dumps({**doc, "address": "0x" + "00" * 20}))
    with pytest.raises(KeyStoreError, match="address does not match"):
        ks.load_any("eve")
    (tmp_path / "keys" / "eve.json").write_text(json.dumps({**doc, "scheme": "rsa"}))
    with pytest.raises(KeyStoreError, match="unknown scheme"):
        ks.load_any("eve")


def _j(env: Env, *args: str) -> Any:
    """The command's --json answer."""
    return env.json(*args)


@pytest.fixture
def eve(env: Env) -> Env:
    """A funded secp256k1 key ``eve`` in the CLI home."""
    env.keys.create_eth("eve")
    for asset, amount in (("USDC", "100000"), ("BTC", "2")):
        assert env.run("tx", "deposit", "eve", asset, amount).exit_code == 0
    return env


def test_orders_cancels_and_market_orders_signed_by_an_eth_key(eve: Env) -> None:
    res = eve.run("tx", "order", "BTC/USDC", "sell", "--size", "0.25", "--price", "61000", "--key", "eve",
                  "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["code"] == 0 and doc["receipt"]["results"][0]["status"] == "resting"
    oid = doc["receipt"]["results"][0]["oid"]
    (order,) = _j(eve, "query", "orders", "eve")["orders"]
    assert order["oid"] == oid and order["size"] == 2_500
    looked_up = _j(eve, "query", "tx", doc["hash"])
    assert looked_up["receipt"]["code"] == 0
    # a modify restates the open order (side, tif, cloid from the node); a new price is a new oid
    moved = _j(eve, "tx", "modify", "BTC/USDC", "--oid", str(oid), "--size", "0.2", "--price", "61500", "--key", "eve")
    oid = moved["receipt"]["results"][0]["oid"]
    assert eve.run("tx", "modify", "BTC/USDC", "--oid", str(oid), "--size", "0.15", "--key", "eve").exit_code == 0
    (order,) = _j(eve, "query", "orders", "eve")["orders"]
    assert (order["price"], order["size"], order["side"], order["tif"]) == (61_500, 1_500, "sell", "gtc")
    oid = order["oid"]
    assert eve.run("tx", "cancel", "BTC/USDC", "--oid", str(oid), "--key", "eve").exit_code == 0
    assert _j(eve, "query", "orders", "eve")["orders"] == []
    rest = eve.run("tx", "order", "BTC/USDC", "sell", "--size", "0.1", "--price", "60000", "--key", "alice")
    assert rest.exit_code == 0, rest.output
    market = eve.run("tx", "market", "BTC/USDC", "buy", "--size", "0.1", "--key", "eve")
    assert market.exit_code == 0, market.output
    assert "filled" in market.output
    stop = eve.run("tx", "stop", "BTC-PERP", "sell", "0.1", "--trigger", "57000", "--key", "eve")
    assert stop.exit_code == 0, stop.output


def test_funds_leverage_sub_accounts_and_agents_with_an_eth_key(eve: Env) -> None:
    bob = _j(eve, "keys", "show", "bob")["address"]
    before = _j(eve, "query", "account", "bob")["balances"][0]["free"]
    assert eve.run("tx", "transfer", "bob", "USDC", "250", "--key", "eve").exit_code == 0
    assert _j(eve, "query", "account", "bob")["balances"][0]["free"] == before + 250 * 10**6
    assert eve.run("tx", "transfer", bob, "BTC", "0.5", "--key", "eve").exit_code == 0
    out = eve.run("tx", "withdraw", "USDC", "100", "--key", "eve")
    assert out.exit_code == 0, out.output
    lev = eve.run("tx", "leverage", "BTC-PERP", "5", "--key", "eve")
    assert lev.exit_code == 0, lev.output
    assert _j(eve, "query", "account", "eve")["margin"]["leverage"]["2"] == 5
    assert eve.run("tx", "subaccount", "hedge", "--key", "eve").exit_code == 0
    assert eve.run("tx", "transfer", "sub:hedge", "USDC", "1000", "--key", "eve").exit_code == 0
    placed = eve.run("tx", "order", "BTC/USDC", "buy", "--size", "0.01", "--price", "59000", "--key", "eve",
                     "--account", "hedge")
    assert placed.exit_code == 0, placed.output
    sub = _j(eve, "query", "account", "eve")["sub_accounts"][0]["address"]
    assert len(_j(eve, "query", "orders", sub)["orders"]) == 1
    back = eve.run("tx", "transfer", "eve", "USDC", "100", "--key", "eve", "--account", "hedge")
    assert back.exit_code == 0, back.output
    approve = eve.run("keys", "agent", "approve", "eve-bot", "--key", "eve", "--valid-for", "3600")
    assert approve.exit_code == 0, approve.output
    assert [a["name"] for a in _j(eve, "keys", "agent", "list", "--key", "eve")["agents"]] == ["eve-bot"]
    bot = eve.run("tx", "order", "BTC/USDC", "buy", "--size", "0.01", "--price", "58000", "--key", "eve-bot")
    assert bot.exit_code == 0, bot.output
    assert len(_j(eve, "query", "orders", "eve")["orders"]) == 1
    eth_bot = eve.run("keys", "agent", "approve", "eve-eth-bot", "--eth", "--key", "eve")
    assert eth_bot.exit_code == 0, eth_bot.output
    assert _j(eve, "keys", "show", "eve-eth-bot")["scheme"] == "secp256k1"
    cancel = eve.run("tx", "cancel", "BTC/USDC", "--oid", str(_j(eve, "query", "orders", "eve")["orders"][0]["oid"]),
                     "--key", "eve-eth-bot")
    assert cancel.exit_code == 0, cancel.output
    assert _j(eve, "query", "orders", "eve")["orders"] == []


@pytest.mark.parametrize("args", [
    ("tx", "deposit", "bob", "USDC", "1", "--key", "eve"),
    ("tx", "cancel-all", "--key", "eve"),
    ("tx", "margin-mode", "BTC-PERP", "isolated", "--key", "eve"),
    ("tx", "set-unwind", "BTC-PERP", "--key", "eve"),
    ("keys", "agent", "revoke", "bob", "--key", "eve"),
    ("tx", "modify-trigger", "BTC-PERP", "--oid", "1", "--trigger", "57000", "--size", "0.1", "--key", "eve"),
    ("tx", "order", "BTC/USDC", "buy", "--size", "0.1", "--price", "59000", "--expires-in", "60", "--key", "eve"),
])
def test_commands_without_an_equivalent_name_the_command_and_send_nothing(eve: Env, args: tuple[str, ...]) -> None:
    before = len(eve.node.requests)
    res = eve.run(*args)
    assert res.exit_code == 2, res.output
    assert "NO_HYPERLIQUID_EQUIVALENT" in res.output and f"bookchain {args[0]} " in res.output
    assert "Traceback" not in res.output
    assert not any(p.startswith("/broadcast") for _, p in eve.node.requests[before:])


def test_finer_prices_than_hyperliquid_allows_are_refused_before_signing(eve: Env) -> None:
    res = eve.run("tx", "order", "ETH/USDC", "buy", "--size", "1", "--price", "12345.6", "--key", "eve")
    assert res.exit_code == 2 and "BAD_DECIMAL" in res.output and "significant figures" in res.output
