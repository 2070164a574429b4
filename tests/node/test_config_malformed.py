"""A malformed config.json is refused at load with one line naming the field (ConfigError),
before anything starts: wrong types used to pass NodeConfig.load and fail later (a p2p worker
traceback for a bad multiaddr or a string of peers, a HALT at block 1 for a string
retain_blocks, an exception in a consensus callback for a string slow_propose_ms), and the
rest reached the CLI as "unexpected error ... (a bug: please report it)"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import bookchain
from node.config import ConfigError, NodeConfig

GOOD: dict[str, Any] = {"rpc": {"host": "127.0.0.1", "port": 1},
                        "p2p": {"listen": "/ip4/127.0.0.1/tcp/2", "peers": []}}


def sub(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(GOOD))
    d = doc
    for k in path[:-1]:
        d = d.setdefault(k, {})
    d[path[-1]] = value
    return doc


BAD = [
    "{nope", "", "[]", "null",
    json.dumps({"p2p": GOOD["p2p"]}), json.dumps(sub(("rpc",), None)),
    json.dumps(sub(("rpc", "port"), "abc")), json.dumps(sub(("rpc", "port"), 1.5)),
    json.dumps(sub(("rpc", "port"), 10**30)), json.dumps(sub(("rpc", "host"), 5)),
    json.dumps(sub(("p2p", "listen"), "garbage")), json.dumps(sub(("p2p", "peers"), "abc")),
    json.dumps(sub(("p2p", "peers"), ["/ip4/1.2.3.4/tcp/1"])),
    json.dumps(sub(("mempool", "max_txs"), "x")), json.dumps(sub(("mempool",), [1])),
    json.dumps(sub(("storage", "retain_blocks"), "x")), json.dumps(sub(("storage", "keep_snapshots"), -1)),
    json.dumps(sub(("storage", "state_sync_from"), 5)),
    json.dumps(sub(("oracle", "prices"), "x")), json.dumps(sub(("oracle", "prices"), {"BTC": "1"})),
    json.dumps(sub(("oracle", "interval_ms"), 0)), json.dumps(sub(("consensus", "timeout_propose_ms"), "x")),
    json.dumps(sub(("consensus",), [])), json.dumps(sub(("test", "slow_propose_ms"), "x")),
    json.dumps(sub(("test", "equivocate"), "yes")), json.dumps(sub(("moniker",), {"a": 1})),
]


@pytest.mark.parametrize("text", BAD)
def test_a_malformed_config_is_a_config_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ConfigError):
        NodeConfig.load(tmp_path)


def test_node_start_refuses_it_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(sub(("storage", "retain_blocks"), "x")))
    r = CliRunner().invoke(bookchain, ["node", "start", "--home", str(tmp_path)])
    assert r.exit_code == 1
    assert "storage.retain_blocks" in r.output + str(r.stderr_bytes or b"") and "unexpected error" not in r.output and "Traceback" not in r.output


def test_a_good_config_still_loads(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(GOOD))
    assert NodeConfig.load(tmp_path).rpc_port == 1
