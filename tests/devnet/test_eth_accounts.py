"""The devnet's Ethereum test accounts: deterministic keys, funded at genesis like alice,
stored as CLI keys eth0..N-1, printed by `devnet up` with a line for the Hyperliquid SDK; and,
end to end, the printed line works: the SDK signs with eth0 and its order rests."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli.devnet_cmd
from cli.main import bookchain as bookchain_cli
from devnet import ethaccounts
from devnet.genesis import DEFAULT_FUNDS, DevnetSpec, create_devnet
from devnet.manifest import Manifest, NodeEntry, load_manifest
from devnet.supervisor import Supervisor
from node.wallet.keystore import EthKeyRecord, KeyStore
from state.eip712 import SECP256K1_N
from state.genesis import Genesis
from tests.devnet.conftest import running_devnet

STANDIN = str(Path(__file__).with_name("standin_node.py"))
# pinned: docs and scripts name these; a change here changes every devnet's test accounts
ETH0_KEY = "0x761c22a31be118b9e5708c3240044fa2daa84d6e10a88c7da8becaa20f990e43"
ETH0_ADDRESS = "0xf9e8ddc05f82f5175f33bc67db940fdf4c5164be"


def test_keys_are_deterministic_distinct_and_in_range() -> None:
    assert ethaccounts.account_key(0).hex() == ETH0_KEY
    assert "0x" + ethaccounts.account_key(0).address.hex() == ETH0_ADDRESS
    keys = [ethaccounts.account_key(i) for i in range(20)]
    assert len({k.address for k in keys}) == 20
    assert all(0 < int.from_bytes(k.secret, "big") < SECP256K1_N for k in keys)
    assert [k.hex() for k in keys] == [ethaccounts.account_key(i).hex() for i in range(20)]
    with pytest.raises(ValueError):
        ethaccounts.account_key(-1)


def test_eth_account_agrees_on_the_address() -> None:
    eth_account = pytest.importorskip("eth_account")
    assert eth_account.Account.from_key(ETH0_KEY).address.lower() == ETH0_ADDRESS


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("eth") / "devnet"
    create_devnet(home, DevnetSpec(nodes=1, traders=1, eth_accounts=3), peer_id_of=lambda _h: "12D3KooWStub")
    return home


def test_genesis_funds_the_eth_accounts_like_alice(devnet: Path) -> None:
    m = load_manifest(devnet)
    assert m is not None and m.eth_accounts == ["eth0", "eth1", "eth2"]
    g = Genesis.load(str(devnet / "genesis.json"))
    ks = KeyStore(m.cli_home)
    funded = {(address, g.assets[asset].symbol): amount for address, asset, amount in g.balances}
    alice = ks.load("alice").address
    for i, name in enumerate(m.eth_accounts):
        rec = ks.load_any(name)
        assert isinstance(rec, EthKeyRecord) and rec.key.hex() == ethaccounts.account_key(i).hex()
        for sym, human in DEFAULT_FUNDS.items():
            assert funded[(rec.address, sym)] == funded[(alice, sym)] == human * 10 ** g.asset_by_symbol(sym).decimals
    assert json.loads((devnet / "cli" / "keys" / "eth0.json").read_text())["scheme"] == "secp256k1"


def test_same_keys_on_every_devnet_and_none_when_asked(tmp_path: Path) -> None:
    a = create_devnet(tmp_path / "a", DevnetSpec(nodes=1, traders=0, eth_accounts=2), peer_id_of=lambda _h: "x")
    b = create_devnet(tmp_path / "b", DevnetSpec(nodes=1, traders=0, eth_accounts=2), peer_id_of=lambda _h: "x")
    addr_a = [KeyStore(a.cli_home).load_any(n).address_text for n in a.eth_accounts]
    addr_b = [KeyStore(b.cli_home).load_any(n).address_text for n in b.eth_accounts]
    assert addr_a == addr_b and addr_a[0] == ETH0_ADDRESS
    none = create_devnet(tmp_path / "c", DevnetSpec(nodes=1, traders=0, eth_accounts=0), peer_id_of=lambda _h: "x")
    assert none.eth_accounts == [] and not KeyStore(none.cli_home).exists("eth0")
    # a manifest written before eth accounts existed still loads
    doc = json.loads((tmp_path / "c" / "devnet.json").read_text())
    del doc["eth_accounts"]
    assert Manifest.from_json(doc).eth_accounts == []


def _standin(node: NodeEntry) -> list[str]:
    return [sys.executable, STANDIN, "--home", node.home]


def test_devnet_up_prints_the_test_keys_and_the_sdk_line(devnet_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.devnet_cmd, "Supervisor", lambda home: Supervisor(home, node_command=_standin))
    runner = CliRunner()
    try:
        res = runner.invoke(bookchain_cli, ["devnet", "up", "--home", str(devnet_home), "--nodes", "1", "--traders",
                                            "0", "--eth-accounts", "2", "--timeout", "20"], env={"COLUMNS": "250"})
        assert res.exit_code == 0, res.output
        m = load_manifest(devnet_home)
        assert m is not None
        out = res.output
        assert "TEST KEYS ONLY" in out and ETH0_ADDRESS in out and ETH0_KEY in out
        eth1 = ethaccounts.account_key(1)
        assert "0x" + eth1.address.hex() in out and eth1.hex() in out
        assert f'Exchange(eth_account.Account.from_key("{ETH0_KEY}"), "{m.nodes[0].rpc_url}")' in out
        assert "--key eth0" in out
        shown = runner.invoke(bookchain_cli, ["devnet", "up", "--home", str(devnet_home), "--json"])
        assert shown.exit_code == 1  # already running: refused, nothing printed as JSON
    finally:
        runner.invoke(bookchain_cli, ["devnet", "down", "--home", str(devnet_home)])


def test_devnet_up_json_lists_the_test_keys(devnet_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.devnet_cmd, "Supervisor", lambda home: Supervisor(home, node_command=_standin))
    runner = CliRunner()
    try:
        res = runner.invoke(bookchain_cli, ["devnet", "up", "--home", str(devnet_home), "--nodes", "1", "--traders",
                                            "0", "--timeout", "20", "--json"])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        accounts = doc["eth_test_accounts"]
        assert [a["name"] for a in accounts] == [f"eth{i}" for i in range(ethaccounts.DEFAULT_ETH_ACCOUNTS)]
        assert accounts[0] == {"name": "eth0", "address": ETH0_ADDRESS, "private_key": ETH0_KEY}
        assert doc["eth_accounts"] == [a["name"] for a in accounts]
    finally:
        runner.invoke(bookchain_cli, ["devnet", "down", "--home", str(devnet_home)])


# ------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Manifest, str]]:

    home = tmp_path_factory.mktemp("ethe2e") / "devnet"
    with running_devnet(home, nodes=1, traders=0) as (m, out):
        yield m, out


@pytest.mark.e2e
def test_the_cli_trades_as_eth0_on_the_devnet(live: tuple[Manifest, str]) -> None:
    from tests.devnet.test_devnet_e2e import bookchain_json

    m, _ = live
    cli = ["--home", m.cli_home, "--node", m.nodes[0].rpc_url]
    placed = bookchain_json(*cli, "tx", "order", "BTC-PERP", "buy", "--size", "0.01", "--price", "59000",
                            "--key", "eth0")
    assert placed["code"] == 0 and placed["receipt"]["results"][0]["status"] == "resting", placed
    (order,) = bookchain_json(*cli, "query", "orders", ETH0_ADDRESS)["orders"]
    res = bookchain_json(*cli, "tx", "cancel", "BTC-PERP", "--oid", str(order["oid"]), "--key", "eth0")
    assert res["code"] == 0
    assert bookchain_json(*cli, "query", "orders", "eth0")["orders"] == []


@pytest.mark.e2e
@pytest.mark.skipif(importlib.util.find_spec("hyperliquid") is None, reason="hyperliquid-python-sdk not installed")
def test_the_printed_sdk_line_trades_on_the_devnet(live: tuple[Manifest, str]) -> None:
    import eth_account
    import requests
    from hyperliquid.exchange import Exchange

    from tests.devnet.test_devnet_e2e import bookchain_json

    m, out = live
    found = re.search(r'Exchange\(eth_account\.Account\.from_key\("(0x[0-9a-f]{64})"\), "([^"]+)"\)', out)
    assert found is not None, out
    key, url = found.groups()
    if requests.post(url + "/exchange", json={}, timeout=10).status_code == 404:
        pytest.skip("this node does not serve Hyperliquid's /exchange yet")
    exchange = Exchange(eth_account.Account.from_key(key), url)
    answer = exchange.order("BTC", True, 0.01, 59000, {"limit": {"tif": "Gtc"}})
    assert answer["status"] == "ok", answer
    assert "resting" in answer["response"]["data"]["statuses"][0], answer
    cli = ["--home", m.cli_home, "--node", url]
    (order,) = bookchain_json(*cli, "query", "orders", "eth0")["orders"]
    assert order["size"] == 100
    assert bookchain_json(*cli, "tx", "cancel", "BTC-PERP", "--oid", str(order["oid"]), "--key", "eth0")["code"] == 0
