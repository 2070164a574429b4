"""End to end with real node processes: a 4-node devnet driven through the CLI.

Everything goes through the `bookchain` executable in subprocesses, as a user would run
it. The module fixture brings the devnet up once and always brings it down, then checks
that no process mentioning the devnet's directory survived.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devnet.manifest import Manifest, load_manifest
from node.client import Client, as_int
from tests.devnet.conftest import running_devnet

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(importlib.util.find_spec("node.main") is None,
                       reason="node.main is not importable yet: the node has not landed"),
]

NODES = 4


def bookchain(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def bookchain_json(*args: str) -> Any:
    res = bookchain(*args, "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout)


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Manifest]:
    home = tmp_path_factory.mktemp("e2e") / "devnet"
    with running_devnet(home, nodes=NODES, traders=4) as (m, _out):
        yield m


def wait_all(m: Manifest, height: int, timeout: float = 30) -> None:
    for n in m.nodes:
        Client(n.rpc_url).wait_for_height(height, timeout=timeout)


def test_all_nodes_run_and_agree(devnet: Manifest) -> None:
    home = str(Path(devnet.cli_home).parent)
    st = bookchain_json("devnet", "status", "--home", home)
    assert len(st["nodes"]) == NODES
    assert all(n["alive"] and n["height"] >= 2 for n in st["nodes"])
    assert all(n["peers"] == NODES - 1 for n in st["nodes"])
    assert st["hashes_agree"] is True


def test_cli_tx_is_committed_and_visible_on_every_node(devnet: Manifest) -> None:
    node0 = devnet.nodes[0].rpc_url
    cli = ["--home", devnet.cli_home, "--node", node0]
    sell = bookchain_json(*cli, "tx", "order", "BTC/USDC", "sell", "--size", "0.5", "--price", "61000",
                          "--key", "alice", "--cloid", "e2e-ask")
    assert sell["code"] == 0 and sell["receipt"]["results"][0]["status"] == "resting"
    buy = bookchain_json(*cli, "tx", "order", "BTC/USDC", "buy", "--size", "0.2", "--price", "61000",
                         "--key", "bob", "--tif", "ioc")
    assert buy["code"] == 0
    (fill,) = buy["receipt"]["results"][0]["fills"]
    assert (fill["price"], fill["size"]) == (61_000, 2_000)
    wait_all(devnet, int(buy["height"]))
    for n in devnet.nodes:
        for tx in (sell, buy):
            found = bookchain_json("--node", n.rpc_url, "query", "tx", tx["hash"])
            assert found["height"] == tx["height"] and found["receipt"] == tx["receipt"]


def test_book_and_accounts_identical_across_nodes(devnet: Manifest) -> None:
    status = Client(devnet.nodes[0].rpc_url).status()
    wait_all(devnet, as_int(status["latest_height"]) + 1)
    views = []
    for n in devnet.nodes:
        book = bookchain_json("--node", n.rpc_url, "query", "book", "BTC/USDC")
        alice = bookchain_json("--home", devnet.cli_home, "--node", n.rpc_url, "query", "account", "alice")
        bob = bookchain_json("--home", devnet.cli_home, "--node", n.rpc_url, "query", "account", "bob")
        for doc in (book, alice, bob):
            doc.pop("height", None)
        views.append((book, alice, bob))
    assert all(v == views[0] for v in views[1:])
    assert views[0][0]["asks"] == [[61_000, 3_000, 1]]


def test_hyperliquid_info_on_every_node(devnet: Manifest) -> None:
    """``POST /info`` (node/hlinfo.py) on real nodes: Hyperliquid's shapes, the same answer
    everywhere at one height, and a 400 JSON error for an unknown type."""
    import urllib.error
    import urllib.request

    status = Client(devnet.nodes[0].rpc_url).status()
    wait_all(devnet, as_int(status["latest_height"]) + 1)
    answers = []
    for n in devnet.nodes:
        c = Client(n.rpc_url)
        meta = c.post("/info", {"type": "meta"})
        book = c.post("/info", {"type": "l2Book", "coin": "@0"})
        book.pop("time")
        answers.append((meta, book))
        assert {"name": "BTC", "szDecimals": 4} .items() <= meta["universe"][0].items()
        assert set(c.post("/info", {"type": "allMids"})) >= {"BTC", "@0"}
        req = urllib.request.Request(n.rpc_url + "/info", data=b'{"type": "bogus"}', method="POST",
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 400 and json.loads(err.value.read())["error"]["name"] == "MALFORMED"
    assert all(a == answers[0] for a in answers[1:])


def test_rejection_exit_code_and_unreachable(devnet: Manifest) -> None:
    cli = ["--home", devnet.cli_home, "--node", devnet.nodes[1].rpc_url]
    res = bookchain(*cli, "tx", "cancel", "BTC/USDC", "--oid", "999999", "--key", "bob")
    assert res.returncode == 1 and "UNKNOWN_ORDER" in res.stdout + res.stderr
    res = bookchain("--node", "http://127.0.0.1:1", "query", "status")
    assert res.returncode == 3


def test_demo_and_a_short_load(devnet: Manifest) -> None:
    home = str(Path(devnet.cli_home).parent)
    demo = bookchain("devnet", "demo", "--home", home)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "which holds bob's buy" in demo.stdout
    load = bookchain("devnet", "load", "--home", home, "--tps", "100", "--seconds", "2", "--json", "-")
    assert load.returncode == 0, load.stdout + load.stderr
    report = json.loads(load.stdout)
    assert report["submitted"] == 200 and report["uncommitted"] == 0
    assert report["committed"] == report["accepted"] == 200
    assert report["p50_ms"] is not None and report["tx_per_s"] > 0
    assert report["node_answer_p50_ms"] is not None  # the nodes' own answer times, from /metrics
    assert report["loop_lag_p50_ms"] is not None  # and their event loops' lag
    assert report["loop_lag_p50_ms"] <= report["loop_lag_p99_ms"]


def _set_feeds(m: Manifest, btc: int) -> None:
    """Move every validator's BTC feed (the test switch /debug/oracle): the oracle is their median."""
    for n in m.nodes:
        Client(n.rpc_url).post("/debug/oracle", {"BTC": btc})


def _wait_until(check: Any, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError("timed out waiting for the condition")


def _new_funded_key(cli: list[str], name: str, usdc: str = "100000") -> None:
    """A key no earlier test (or the load flow) has traded with, funded through the bridge."""
    assert bookchain(*cli, "keys", "new", name).returncode == 0
    assert bookchain_json(*cli, "tx", "deposit", name, "USDC", usdc)["code"] == 0


def test_a_stop_loss_from_the_cli_fires_when_the_oracle_moves(devnet: Manifest) -> None:
    """A fresh account buys 0.1 BTC-PERP and places a reduce-only stop-market at 58,000; bob
    bids 0.1 at 56,000. The validators' feeds drop BTC to 55,000: the mark follows the
    oracle below the trigger, the stop fires at the end of that block and sells."""
    cli = ["--home", devnet.cli_home, "--node", devnet.nodes[0].rpc_url]
    _new_funded_key(cli, "stopper")
    assert bookchain_json(*cli, "tx", "order", "BTC-PERP", "sell", "--size", "0.1", "--price", "60000",
                          "--key", "alice")["code"] == 0
    buy = bookchain_json(*cli, "tx", "order", "BTC-PERP", "buy", "--size", "0.1", "--price", "60000",
                         "--tif", "ioc", "--key", "stopper")
    assert buy["receipt"]["results"][0]["status"] == "filled"
    assert bookchain_json(*cli, "tx", "order", "BTC-PERP", "buy", "--size", "0.1", "--price", "56000",
                          "--key", "bob")["code"] == 0
    stop = bookchain_json(*cli, "tx", "stop", "BTC-PERP", "sell", "0.1", "--trigger", "58000", "--reduce-only",
                          "--key", "stopper")
    (placed,) = stop["receipt"]["results"]
    assert placed["status"] == "waiting", stop
    oid = placed["oid"]
    assert [t["oid"] for t in bookchain_json(*cli, "query", "triggers", "stopper")["triggers"]] == [oid]
    try:
        _set_feeds(devnet, 55_000_000_000)

        def closed() -> bool:
            acct = bookchain_json(*cli, "query", "account", "stopper")
            return not any(p["market"] == 2 and int(p["size"]) for p in acct["positions"])

        _wait_until(closed)
        status = bookchain_json(*cli, "query", "order", "--oid", str(oid))["order"]
        assert status["status"] in ("filled", "triggered"), status
        assert bookchain_json(*cli, "query", "triggers", "stopper")["triggers"] == []
    finally:
        _set_feeds(devnet, 60_000_000_000)
    _wait_until(lambda: int(Client(devnet.nodes[0].rpc_url).get("/oracle")["assets"][0]["price"]) == 60_000_000_000)


def test_a_dead_man_switch_cancels_a_quoting_accounts_orders(devnet: Manifest) -> None:
    cli = ["--home", devnet.cli_home, "--node", devnet.nodes[1].rpc_url]
    _new_funded_key(cli, "quoter")
    for px in ("59000", "58000"):
        assert bookchain_json(*cli, "tx", "order", "BTC/USDC", "buy", "--size", "0.01", "--price", px,
                              "--key", "quoter")["code"] == 0
    assert len(bookchain_json(*cli, "query", "orders", "quoter")["orders"]) == 2
    armed = bookchain_json(*cli, "tx", "schedule-cancel", "--in", "6", "--key", "quoter")
    assert armed["code"] == 0
    _wait_until(lambda: bookchain_json(*cli, "query", "orders", "quoter")["orders"] == [], timeout=30)
    history = bookchain_json(*cli, "query", "history", "quoter", "--kind", "cancel")["entries"]
    assert [e["reason"] for e in history] == ["dead_man", "dead_man"]


def test_a_bot_trades_through_an_agent_key_and_a_sub_account(devnet: Manifest) -> None:
    cli = ["--home", devnet.cli_home, "--node", devnet.nodes[2].rpc_url]
    assert bookchain_json(*cli, "keys", "agent", "approve", "bot-e2e", "--key", "bob")["code"] == 0
    assert bookchain_json(*cli, "tx", "subaccount", "bots", "--key", "bob")["code"] == 0
    assert bookchain_json(*cli, "tx", "transfer", "sub:bots", "USDC", "5000", "--key", "bob")["code"] == 0
    placed = bookchain_json(*cli, "tx", "order", "BTC/USDC", "buy", "--size", "0.01", "--price", "59500",
                            "--key", "bot-e2e", "--account", "bots")
    assert placed["receipt"]["results"][0]["status"] == "resting"
    sub = bookchain_json(*cli, "query", "account", "bob")["sub_accounts"][0]["address"]
    assert len(bookchain_json(*cli, "query", "orders", sub)["orders"]) == 1
    refused = bookchain(*cli, "tx", "withdraw", "USDC", "1", "--key", "bot-e2e")
    assert refused.returncode == 1 and "UNAUTHORIZED" in refused.stdout + refused.stderr
    drained = bookchain(*cli, "tx", "transfer", "bob", "USDC", "1", "--key", "bot-e2e", "--account", "bots")
    assert drained.returncode == 1 and "UNAUTHORIZED" in drained.stdout + drained.stderr


def test_down_leaves_no_process_behind(devnet: Manifest) -> None:
    """Runs last in this module (pytest keeps file order): stop, then look for survivors."""
    home = Path(devnet.cli_home).parent
    recorded = [e.pid for e in devnet.processes.values()]
    res = bookchain("devnet", "down", "--home", str(home))
    assert res.returncode == 0 and res.stdout.count("stopped") == NODES, res.stdout
    deadline = time.monotonic() + 5
    while processes_mentioning(str(home)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_mentioning(str(home)) == []
    assert all(not Path(f"/proc/{p}").exists() or "Z" in Path(f"/proc/{p}/stat").read_text().split(") ")[1][:1]
               for p in recorded)
    m = load_manifest(home)
    assert m is not None and m.processes == {}
    again = bookchain("devnet", "down", "--home", str(home))
    assert again.returncode == 0
