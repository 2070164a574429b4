"""Fixtures: a CLI home with funded keys, a fake node on 127.0.0.1, a CLI runner."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import bookchain
from node.wallet.keystore import KeyStore
from state.genesis import Genesis, make_genesis_doc
from state.keys import address_to_text
from tests.cli.fakenode import FakeNode

CHAIN_ID = "bookchain-clitest"


@dataclass
class Env:
    home: Path
    node: FakeNode
    keys: KeyStore

    def run(self, *args: str, input: str | None = None) -> Result:
        runner = CliRunner()
        env = {"BOOKCHAIN_HOME": str(self.home), "BOOKCHAIN_NODE": self.node.url}
        return runner.invoke(bookchain, list(args), env=env, input=input, catch_exceptions=False)

    def json(self, *args: str) -> object:
        res = self.run(*args, "--json")
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout)


def funded_genesis(keys: KeyStore, names: list[str]) -> Genesis:
    bridge = keys.create("bridge")
    balances = []
    for name in names:
        rec = keys.create(name)
        for sym, amount in (("USDC", 1_000_000 * 10**6), ("BTC", 10 * 10**8), ("ETH", 100 * 10**8)):
            balances.append({"address": address_to_text(rec.address), "asset": sym, "amount": amount})
    doc = make_genesis_doc(chain_id=CHAIN_ID, validators=[{"name": "v0", "pubkey": "11" * 32, "power": 1}],
                           bridge_pubkey=bridge.key.pubkey, balances=balances, genesis_time_ms=1_700_000_000_000,
                           initial_oracle_prices={"BTC": 60_000 * 10**6})  # ETH: no price yet
    return Genesis.from_json(doc)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    keys = KeyStore(tmp_path / "home")
    genesis = funded_genesis(keys, ["alice", "bob"])
    keys.create("pauper")  # a key with no funds, for rejections
    node = FakeNode(genesis, block_ms=20).start()
    try:
        yield Env(tmp_path / "home", node, keys)
    finally:
        node.stop()


@pytest.fixture
def dead_url() -> str:
    """A URL where nothing listens (a port that was just free)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
