"""`bookchain testnet`: homes for validators on given hosts (files only, no node started)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.devnet_cmd import target_urls
from cli.main import bookchain
from devnet.manifest import NodeEntry, load_manifest
from devnet.supervisor import DevnetError, Supervisor, is_local_address
from devnet.testnet import TestnetError, TestnetSpec, parse_hosts, placements
from node.p2p import identity
from node.wallet.keystore import KeyStore
from state.genesis import Genesis
from state.keys import PrivateKey

HOSTS = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]


def run(*args: str) -> Any:
    res = CliRunner().invoke(bookchain, list(args), catch_exceptions=False)
    return res


def cfg(home: Path) -> dict[str, Any]:
    return dict(json.loads((home / "config.json").read_text()))


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tn") / "testnet"
    res = run("testnet", "--hosts", ",".join(HOSTS), "--out", str(out), "--traders", "2")
    assert res.exit_code == 0, res.output
    return out


def test_writes_a_home_per_host_cli_keys_and_a_manifest(net: Path) -> None:
    for i in range(4):
        home = net / f"node{i}"
        for f in ("config.json", "genesis.json", "keys/validator.json", "keys/p2p.key"):
            assert (home / f).is_file(), f"{home}/{f}"
    names = set(KeyStore(net / "cli").names())
    assert {"bridge", "alice", "bob", "trader0", "trader1"} <= names
    assert not any(n.startswith("eth") for n in names)  # the public test keys stay off by default
    m = load_manifest(net)
    assert m is not None and [n.host for n in m.nodes] == HOSTS
    assert [n.rpc_url for n in m.nodes] == [f"http://{h}:26657" for h in HOSTS]


def test_configs_listen_on_their_host_and_peer_with_the_others(net: Path) -> None:
    m = load_manifest(net)
    assert m is not None
    for i, host in enumerate(HOSTS):
        c = cfg(net / f"node{i}")
        assert c["rpc"] == {"host": host, "port": 26657}
        assert c["p2p"]["listen"] == f"/ip4/{host}/tcp/26656"
        others = [n for n in m.nodes if n.name != f"node{i}"]
        assert c["p2p"]["peers"] == [f"/ip4/{n.host}/tcp/26656/p2p/{n.peer_id}" for n in others]
        assert "test" not in c  # no fault-injection switch on a network of several machines


def test_genesis_is_identical_and_names_the_validator_keys(net: Path) -> None:
    docs = {(net / f"node{i}" / "genesis.json").read_bytes() for i in range(4)}
    docs.add((net / "genesis.json").read_bytes())
    assert len(docs) == 1
    g = Genesis.load(str(net / "genesis.json"))
    assert g.chain_id == "bookchain-testnet"
    for i in range(4):
        seed = json.loads((net / f"node{i}" / "keys" / "validator.json").read_text())["seed"]
        assert PrivateKey.from_hex(seed).pubkey.hex() == g.validators[i].pubkey.hex()


def test_peer_ids_match_the_p2p_keys(net: Path) -> None:
    m = load_manifest(net)
    assert m is not None
    for n in m.nodes:
        key = identity.load(identity.key_path(n.home))
        assert identity.peer_id_of(key) == n.peer_id
        for other in range(4):
            if f"node{other}" != n.name:
                assert any(p.endswith(f"/p2p/{n.peer_id}") for p in cfg(net / f"node{other}")["p2p"]["peers"])


def test_repeated_host_gets_the_next_ports_and_bind_all_listens_on_any(tmp_path: Path) -> None:
    res = run("testnet", "--hosts", "127.0.0.1,127.0.0.1,peer.example.org", "--out", str(tmp_path / "t"),
              "--p2p-port", "30000", "--rpc-port", "30001", "--bind-all", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert [(n["host"], n["p2p_port"], n["rpc_port"]) for n in doc["nodes"]] == [
        ("127.0.0.1", 30000, 30001), ("127.0.0.1", 30002, 30003), ("peer.example.org", 30000, 30001)]
    c0 = cfg(tmp_path / "t" / "node0")
    assert c0["rpc"]["host"] == "0.0.0.0" and c0["p2p"]["listen"] == "/ip4/0.0.0.0/tcp/30000"
    assert c0["p2p"]["peers"][1].startswith("/dns4/peer.example.org/tcp/30000/p2p/")


def test_dns_name_listens_on_any_without_bind_all() -> None:
    (p,) = placements(TestnetSpec(hosts=("val1.example.org",)))
    assert (p.host, p.bind) == ("val1.example.org", "0.0.0.0")
    (q,) = placements(TestnetSpec(hosts=("fd00::1",)))
    assert q.bind == "fd00::1"
    e = NodeEntry("n", "/h", 26657, 26656, "12D3Koo", "ab", "fd00::1")
    assert e.rpc_url == "http://[fd00::1]:26657" and e.p2p_addr.startswith("/ip6/fd00::1/tcp/26656/")


def test_bad_hosts_and_ports_are_usage_errors(tmp_path: Path) -> None:
    for hosts in ("10.0.0.1,,10.0.0.2", "10.0.0.1, a b", "/ip4/1.2.3.4"):
        res = run("testnet", "--hosts", hosts, "--out", str(tmp_path / "x"))
        assert res.exit_code == 2, res.output
        assert "--hosts" in res.output and "Traceback" not in res.output
    with pytest.raises(TestnetError, match="share a port"):
        placements(TestnetSpec(hosts=("h", "h"), p2p_port=26656, rpc_port=26658))
    with pytest.raises(TestnetError, match="above 65535"):
        placements(TestnetSpec(hosts=("h", "h"), p2p_port=65534, rpc_port=65535))
    assert parse_hosts(" a , b ") == ("a", "b")


def test_refuses_a_non_empty_out(net: Path) -> None:
    res = run("testnet", "--hosts", "10.0.0.1", "--out", str(net))
    assert res.exit_code == 2 and "not empty" in res.output


def test_devnet_up_refuses_hosts_of_other_machines(net: Path) -> None:
    assert is_local_address("127.0.0.3") and not is_local_address("peer.example.org")
    with pytest.raises(DevnetError, match="not an address of this machine"):
        Supervisor(net).up()
    m = load_manifest(net)
    assert m is not None and m.processes == {}  # refused before starting anything


def test_load_targets_any_urls() -> None:
    assert target_urls(("10.0.0.1:26657",), "http://10.0.0.2:26657, 10.0.0.3:1") == [
        "http://10.0.0.1:26657", "http://10.0.0.2:26657", "http://10.0.0.3:1"]
    assert target_urls((), None) == []


def test_old_manifest_without_hosts_means_localhost(tmp_path: Path) -> None:
    doc = {"chain_id": "c", "created_ms": 1, "cli_home": "/c", "accounts": [],
           "nodes": [{"name": "node0", "home": "/h", "rpc_port": 1, "p2p_port": 2, "peer_id": "P",
                      "validator_pubkey": "ab"}]}
    (tmp_path / "devnet.json").write_text(json.dumps(doc))
    m = load_manifest(tmp_path)
    assert m is not None and m.nodes[0].rpc_url == "http://127.0.0.1:1"
