"""Devnet creation: ports, peers, keys and a genesis the state machine accepts."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

import pytest

from devnet.genesis import DEFAULT_FUNDS, DevnetSpec, create_devnet, free_ports
from devnet.manifest import load_manifest
from node.p2p import identity
from node.wallet.keystore import KeyStore
from state.genesis import Genesis
from state.keys import PrivateKey


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(16)
    assert len(set(ports)) == 16
    for p in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("dn") / "devnet"
    create_devnet(home, DevnetSpec(nodes=4, traders=3))
    return home


def test_ports_distinct_and_configs_follow_the_contract(devnet: Path) -> None:
    m = load_manifest(devnet)
    assert m is not None and len(m.nodes) == 4
    ports = [p for n in m.nodes for p in (n.rpc_port, n.p2p_port)]
    assert len(set(ports)) == 8
    for n in m.nodes:
        cfg = json.loads((Path(n.home) / "config.json").read_text())
        assert cfg["moniker"] == n.name
        assert cfg["rpc"] == {"host": "127.0.0.1", "port": n.rpc_port}
        assert cfg["p2p"]["listen"] == f"/ip4/127.0.0.1/tcp/{n.p2p_port}"


def test_peer_lists_are_complete_and_match_the_key_files(devnet: Path) -> None:
    m = load_manifest(devnet)
    assert m is not None
    peer_ids = {}
    for n in m.nodes:
        key_file = identity.key_path(n.home)
        assert key_file == Path(n.home) / "keys" / "p2p.key"  # node/API.md
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        peer_ids[n.name] = identity.peer_id_of(identity.load(key_file))
        assert peer_ids[n.name] == n.peer_id
    for n in m.nodes:
        peers = json.loads((Path(n.home) / "config.json").read_text())["p2p"]["peers"]
        expected = {f"/ip4/127.0.0.1/tcp/{o.p2p_port}/p2p/{peer_ids[o.name]}" for o in m.nodes if o.name != n.name}
        assert set(peers) == expected and len(peers) == 3


def test_genesis_loads_and_funds_the_demo_accounts(devnet: Path) -> None:
    m = load_manifest(devnet)
    assert m is not None
    g = Genesis.load(str(devnet / "genesis.json"))
    assert g.chain_id == "bookchain-devnet" and g.genesis_time_ms > 1_600_000_000_000
    for n in m.nodes:
        assert json.loads((Path(n.home) / "genesis.json").read_text()) == g.raw
    ks = KeyStore(m.cli_home)
    assert ks.names() == sorted(["alice", "bob", "bridge", "trader0", "trader1", "trader2", *(f"eth{i}" for i in range(5))])
    assert g.bridge_authority == ks.load("bridge").key.pubkey
    funded = {}
    for address, asset, amount in g.balances:
        funded[(address, g.assets[asset].symbol)] = amount
    for name in ["alice", "bob", "trader0", "trader2"]:
        addr = ks.load(name).address
        for sym, human in DEFAULT_FUNDS.items():
            assert funded[(addr, sym)] == human * 10 ** g.asset_by_symbol(sym).decimals
    assert (ks.load("bridge").address, "USDC") not in funded


def test_validator_keys_match_genesis(devnet: Path) -> None:
    m = load_manifest(devnet)
    assert m is not None
    g = Genesis.load(str(devnet / "genesis.json"))
    assert [v.name for v in g.validators] == [n.name for n in m.nodes]
    for n, v in zip(m.nodes, g.validators, strict=True):
        path = Path(n.home) / "keys" / "validator.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        doc = json.loads(path.read_text())
        assert PrivateKey.from_hex(doc["seed"]).pubkey == v.pubkey == bytes.fromhex(doc["pubkey"])
        assert v.power == 1


def test_cli_key_files_are_private(devnet: Path) -> None:
    for f in (devnet / "cli" / "keys").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600


def test_refuses_to_overwrite_a_devnet(devnet: Path) -> None:
    with pytest.raises(FileExistsError, match="already holds a devnet"):
        create_devnet(devnet)


def test_consensus_overrides_reach_config(tmp_path: Path) -> None:
    m = create_devnet(tmp_path / "d", DevnetSpec(nodes=1, traders=0, consensus=(("empty_block_interval_ms", 250),)),
                      peer_id_of=lambda _h: "12D3KooWStub")
    cfg = json.loads((Path(m.nodes[0].home) / "config.json").read_text())
    assert cfg["consensus"] == {"empty_block_interval_ms": 250}
    assert cfg["p2p"]["peers"] == []


def test_devnet_appends_a_btc_future_after_the_four_markets(tmp_path: Path) -> None:
    """BTC-FUT is market 4, expiring --future-expiry seconds after the devnet's genesis time
    with a one-minute settlement window; 0 leaves it out. Markets 0..3 do not move."""
    now = 1_700_000_000_000
    create_devnet(tmp_path / "a", DevnetSpec(nodes=1, traders=0, future_expiry_s=300), now_ms=now)
    g = Genesis.load(str(tmp_path / "a" / "genesis.json"))
    assert [m.symbol for m in g.markets] == ["BTC/USDC", "ETH/USDC", "BTC-PERP", "ETH-PERP", "BTC-FUT"]
    fut = g.markets[4]
    assert (fut.kind, fut.expiry_ms, fut.settlement_window_ms) == ("future", now + 300_000, 60_000)
    create_devnet(tmp_path / "b", DevnetSpec(nodes=1, traders=0, future_expiry_s=0), now_ms=now)
    assert len(Genesis.load(str(tmp_path / "b" / "genesis.json")).markets) == 4
    assert DevnetSpec().future_expiry_s == 600
