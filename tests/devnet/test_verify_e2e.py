"""End to end: ``bookchain query ... --verify`` against a real devnet of node processes.

The CLI home a devnet writes holds the genesis (devnet/genesis.py), which is all the light
client trusts; every answer comes from a running node through ``/proof`` and ``/block``.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet.manifest import Manifest
from node.client import Client, as_int
from tests.devnet.conftest import running_devnet
from tests.devnet.test_devnet_e2e import bookchain, bookchain_json

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(importlib.util.find_spec("node.main") is None, reason="the node is not importable"),
]

NODES = 4


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Manifest]:
    home = tmp_path_factory.mktemp("verify") / "devnet"
    with running_devnet(home, nodes=NODES, traders=0) as (m, _out):
        yield m


def test_query_verify_on_a_devnet(devnet: Manifest) -> None:
    node = devnet.nodes[1].rpc_url
    cli = ["--home", devnet.cli_home, "--node", node]
    sell = bookchain_json(*cli, "tx", "order", "BTC/USDC", "sell", "--size", "0.5", "--price", "61000",
                          "--key", "alice")
    assert sell["code"] == 0 and sell["receipt"]["results"][0]["status"] == "resting"
    oid = sell["receipt"]["results"][0]["oid"]
    Client(node).wait_for_height(int(sell["height"]) + 2, timeout=30)  # the order's height is provable

    res = bookchain(*cli, "query", "account", "alice", "--verify")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("verified at height ") and f"of {NODES} genesis voting power" in res.stdout
    assert "USDC" in res.stdout

    proven = bookchain_json(*cli, "query", "account", "alice", "--verify")
    assert proven["verified"] is True and proven["height"] >= int(sell["height"])
    assert proven["certified_by"]["height"] == proven["height"] + 1
    assert 3 * proven["certified_by"]["signed_power"] > 2 * NODES
    unverified = bookchain_json(*cli, "query", "account", "alice")  # nothing moved alice since
    assert ({b["symbol"]: as_int(b["balance"]) for b in proven["account"]["balances"] if b["balance"]}
            == {b["symbol"]: as_int(b["free"]) for b in unverified["balances"]})

    order = bookchain_json(*cli, "query", "order", "--oid", str(oid), "--verify")["order"]
    assert (order["status"], order["side"], order["size"]) == ("open", "sell", 5_000)
    pools = bookchain_json(*cli, "query", "pools", "--verify")["pools"]
    assert {p["symbol"] for p in pools} >= {"USDC", "BTC"}

    # the same genesis checks every node's answers; a genesis the chain does not run fails
    for n in devnet.nodes:
        assert bookchain_json("--home", devnet.cli_home, "--node", n.rpc_url, "query", "pools", "--verify")["verified"]
    other = str(Path(devnet.cli_home) / "other-genesis.json")
    doc = json.loads((Path(devnet.cli_home) / "genesis.json").read_text())
    doc["chain_id"] = "another-chain"
    Path(other).write_text(json.dumps(doc))
    res = bookchain(*cli, "query", "account", "alice", "--verify", "--genesis", other)
    assert res.returncode == 5 and "verification failed" in res.stderr, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
