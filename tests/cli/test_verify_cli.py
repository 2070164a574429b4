"""``bookchain query ... --verify`` (cli/verify.py) against a real RPC app on a port, over a
chain with real commit certificates (tests/node/proofchain.py); an honest node verifies,
a lying one exits 5 with the reason, and the view comes from the proven records."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.context import EXIT_REJECTED, EXIT_UNVERIFIED, EXIT_USAGE
from cli.main import bookchain
from state.keys import address_to_text
from tests.node.proofchain import ALICE, ProvingNode, serve

ALICE_TEXT = address_to_text(ALICE.address)


class Served:
    def __init__(self, node: ProvingNode, url: str, home: Path) -> None:
        self.node, self.url, self.home = node, url, home

    def run(self, *args: str) -> Result:
        env = {"BOOKCHAIN_HOME": str(self.home), "BOOKCHAIN_NODE": self.url, "COLUMNS": "200"}
        return CliRunner().invoke(bookchain, list(args), env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("verify-cli")
    node = ProvingNode(tmp, heights=6, keep=10)
    home = tmp / "cli"
    home.mkdir()
    shutil.copy(node.genesis_path, home / "genesis.json")
    try:
        with serve(node.app()) as url:
            yield Served(node, url, home)
    finally:
        node.close()


@pytest.fixture(autouse=True)
def honest(served: Served) -> Iterator[None]:
    served.node.tamper = None
    yield
    served.node.tamper = None


def test_account_verify_prints_the_proven_record(served: Served) -> None:
    res = served.run("query", "account", ALICE_TEXT, "--verify")
    assert res.exit_code == 0, res.output
    assert res.output.startswith("verified at height 5: ")
    assert "certified by block 6" in res.output and "signed by 3 of 4 genesis voting power" in res.output
    assert "USDC" in res.output and "BTC" in res.output


def test_account_verify_json_is_decoded_from_the_proof(served: Served) -> None:
    res = served.run("query", "account", ALICE_TEXT, "--verify", "--json")
    assert res.exit_code == 0, res.output
    doc: dict[str, Any] = json.loads(res.output)
    assert doc["verified"] is True and doc["height"] == 5 and doc["certified_by"]["height"] == 6
    balances = {b["symbol"]: b["balance"] for b in doc["account"]["balances"]}
    assert balances["USDC"] == sum(10**9 + h for h in range(1, 6))  # a deposit a block (build_chain)
    assert balances["BTC"] == 10**9  # genesis; the resting sells lock it, they do not move it
    assert doc["proofs"][0]["key"] == "61" + ALICE.address.hex() and len(doc["proofs"]) == 4  # + the 3 pools


def test_a_stranger_is_proven_absent(served: Served) -> None:
    res = served.run("query", "account", "0x" + "42" * 20, "--verify")
    assert res.exit_code == 0, res.output
    assert "no record" in res.output


def test_a_lying_node_fails_verification_with_the_reason(served: Served) -> None:
    def lie(path: str, doc: dict[str, Any]) -> dict[str, Any]:
        if path == "/proof" and doc.get("value"):
            doc["value"] = doc["value"][:-2] + ("00" if doc["value"][-2:] != "00" else "01")
        return doc

    served.node.tamper = lie
    res = served.run("query", "account", ALICE_TEXT, "--verify")
    assert res.exit_code == EXIT_UNVERIFIED
    assert "verification failed: the proof does not show" in res.output
    assert "Traceback" not in res.output


def test_a_forged_header_fails(served: Served) -> None:
    def lie(path: str, doc: dict[str, Any]) -> dict[str, Any]:
        if path == "/block":
            doc["raw_certificate"] = "00"
        return doc

    served.node.tamper = lie
    res = served.run("query", "pools", "--verify", "--json")
    assert res.exit_code == EXIT_UNVERIFIED and "does not decode" in res.output


def test_order_and_pools_verify(served: Served) -> None:
    res = served.run("query", "order", "--oid", "1", "--verify", "--json")
    assert res.exit_code == 0, res.output
    order = json.loads(res.output)["order"]
    assert (order["status"], order["owner"], order["side"], order["size"]) == ("open", ALICE_TEXT, "sell", 5)
    res = served.run("query", "order", "--oid", "999", "--verify")
    assert res.exit_code == 0 and "not open" in res.output
    res = served.run("query", "pools", "--verify", "--json")
    assert res.exit_code == 0, res.output
    pools = {p["symbol"]: p for p in json.loads(res.output)["pools"]}
    assert pools["USDC"]["custody"] == sum(10**9 + h for h in range(1, 6))
    res = served.run("query", "pools", "--verify")
    assert res.exit_code == 0 and res.output.startswith("verified at height 5")


def test_the_trusted_genesis_is_required_and_can_be_named(served: Served, tmp_path: Path) -> None:
    res = CliRunner().invoke(bookchain, ["query", "account", ALICE_TEXT, "--verify"],
                             env={"BOOKCHAIN_HOME": str(tmp_path), "BOOKCHAIN_NODE": served.url})
    assert res.exit_code == EXIT_USAGE and "--genesis FILE" in res.output
    res = CliRunner().invoke(bookchain, ["query", "account", ALICE_TEXT, "--verify", "--genesis",
                                         str(served.home / "genesis.json")],
                             env={"BOOKCHAIN_HOME": str(tmp_path), "BOOKCHAIN_NODE": served.url})
    assert res.exit_code == 0 and "verified at height 5" in res.output
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    res = served.run("query", "account", ALICE_TEXT, "--verify", "--genesis", str(bad))
    assert res.exit_code == EXIT_USAGE and "not a genesis document" in res.output
    res = served.run("query", "order", "--cloid", "x", "--owner", ALICE_TEXT, "--verify")
    assert res.exit_code == EXIT_USAGE and "--verify needs --oid" in res.output


def test_a_node_with_no_provable_height_is_an_rpc_error(tmp_path: Path) -> None:
    node = ProvingNode(tmp_path, heights=2, keep=0)
    home = tmp_path / "cli"
    home.mkdir()
    shutil.copy(node.genesis_path, home / "genesis.json")
    try:
        with serve(node.app()) as url:
            res = Served(node, url, home).run("query", "account", ALICE_TEXT, "--verify")
    finally:
        node.close()
    assert res.exit_code == EXIT_REJECTED and "NOT_READY" in res.output
