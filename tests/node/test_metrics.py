"""/metrics is Prometheus exposition with the right types, from a real one-node devnet."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from cli.main import bookchain
from devnet.genesis import DevnetSpec
from devnet.manifest import Manifest, NodeEntry
from devnet.supervisor import Supervisor
from node.client import Client
from node.metrics import NodeMetrics

ROOT = Path(__file__).resolve().parents[2]


def this_checkout(node: NodeEntry) -> list[str]:
    """The node of this source tree (the default command runs the installed packages)."""
    boot = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from cli.main import main; "
            f"sys.argv = ['bookchain', 'node', 'start', '--home', {node.home!r}]; main()")
    return [sys.executable, "-c", boot]


@pytest.fixture(scope="module")
def one_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Manifest]:
    sup = Supervisor(Path(tmp_path_factory.mktemp("metrics")) / "devnet", node_command=this_checkout)
    m = sup.up(DevnetSpec(nodes=1, traders=0), timeout=60)
    try:
        yield m
    finally:
        sup.down(10)


def families(text: str) -> dict[str, tuple[str, list[tuple[str, dict[str, str], float]]]]:
    return {f.name: (f.type, [(s.name, s.labels, s.value) for s in f.samples])
            for f in text_string_to_metric_families(text)}


def test_metrics_types_and_counts(one_node: Manifest) -> None:
    url = one_node.nodes[0].rpc_url
    runner = CliRunner()
    base = ["--home", str(one_node.cli_home), "--node", url, "tx", "order", "BTC/USDC", "buy", "--key", "alice"]
    ok = runner.invoke(bookchain, [*base, "--size", "0.01", "--price", "50000"])
    assert ok.exit_code == 0, ok.output
    small = runner.invoke(bookchain, [*base, "--size", "0.0001", "--price", "50000"])
    assert small.exit_code == 1 and "BELOW_MIN_NOTIONAL" in small.output
    assert "USDC below minimum" in small.output  # the message speaks units, not integers

    fams = families(Client(url).send("GET", "/metrics").decode())
    types = {name: t for name, (t, _) in fams.items()}
    for name in ("bookchain_txs_committed", "bookchain_tx_rejections", "bookchain_rpc_requests",
                 "bookchain_consensus_extra_rounds", "bookchain_consensus_bad_messages", "bookchain_evidence",
                 "bookchain_execution_cpu_seconds", "bookchain_consensus_dropped_events",
                 "bookchain_mempool_journal_damaged_bytes", "bookchain_mempool_journal_salvaged_txs"):
        assert types[name] == "counter", name
    for name in ("bookchain_block_interval_ms", "bookchain_apply_ms", "bookchain_submit_to_commit_ms"):
        assert types[name] == "histogram", name
    for name in ("bookchain_height", "bookchain_mempool_txs", "bookchain_mempool_weight", "bookchain_peers",
                 "bookchain_websocket_clients"):
        assert types[name] == "gauge", name

    samples = {(n, tuple(sorted(labels.items()))): v for _, (_, ss) in fams.items() for n, labels, v in ss}
    assert samples[("bookchain_txs_committed_total", ())] >= 2
    assert samples[("bookchain_tx_rejections_total", (("code", "BELOW_MIN_NOTIONAL"),))] >= 1
    assert samples[("bookchain_rpc_requests_total", (("route", "/broadcast_tx_commit"),))] >= 2
    assert samples[("bookchain_submit_to_commit_ms_count", ())] >= 2
    assert samples[("bookchain_apply_ms_count", ())] >= 1
    assert samples[("bookchain_height", ())] >= 1
    assert samples[("bookchain_execution_cpu_seconds_total", ())] > 0  # blocks ran on the execution thread


def test_registry_is_per_node() -> None:
    a, b = NodeMetrics(), NodeMetrics()
    a.on_request("/status")
    a.on_admitted([b"x"])
    a.on_block([b"x", b"y"], [0, 502], 1.5, 100.0)
    fa, fb = families(a.text()), families(b.text())
    assert ("bookchain_rpc_requests_total", {"route": "/status"}, 1.0) in fa["bookchain_rpc_requests"][1]
    assert fb["bookchain_rpc_requests"][1] == []
    assert ("bookchain_tx_rejections_total", {"code": "BELOW_MIN_NOTIONAL"}, 1.0) in fa["bookchain_tx_rejections"][1]
    latency = dict((n, v) for n, _, v in fa["bookchain_submit_to_commit_ms"][1])
    assert latency["bookchain_submit_to_commit_ms_count"] == 1.0  # only the tx admitted here


def test_websocket_takes_a_market_symbol_or_id(one_node: Manifest) -> None:
    import asyncio

    import aiohttp

    async def ask(market: object) -> dict[str, object]:
        url = one_node.nodes[0].rpc_url + "/websocket"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await ws.send_json({"method": "subscribe", "topic": "book", "market": market})
            return await asyncio.wait_for(ws.receive_json(), 10)  # type: ignore[no-any-return]

    assert asyncio.run(ask("BTC/USDC")) == {"subscribed": "book", "key": 0}
    assert asyncio.run(ask("btc/usdc")) == {"subscribed": "book", "key": 0}
    assert asyncio.run(ask(0)) == {"subscribed": "book", "key": 0}
    assert asyncio.run(ask("0")) == {"subscribed": "book", "key": 0}
    refused = asyncio.run(ask("DOGE/USDC"))
    assert refused["error"]["name"] == "UNKNOWN_MARKET" and "BTC/USDC" in refused["error"]["message"]  # type: ignore[index]
