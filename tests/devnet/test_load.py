"""Load generation: a deterministic pre-signed flow, and the runner's accounting."""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from pathlib import Path

from click.testing import CliRunner

from cli.main import bookchain
from devnet.flow import FlowMix, generate
from devnet.load import (
    _submit_batch,
    _Tracker,
    bucket_percentile,
    lone_schedule,
    percentile,
    prepare,
    run_load,
    split_by_node,
)
from state.errors import Code
from state.genesis import Genesis, make_genesis_doc
from state.keys import PrivateKey
from state.tx import Cancel, PlaceOrder, Tif, decode_tx
from tests.devnet.fakes import fake_devnet

GENESIS = Genesis.from_json(make_genesis_doc(chain_id="flowtest", validators=[], bridge_pubkey=b"\x01" * 32))
TRADERS = [PrivateKey(bytes([i + 10]) * 32) for i in range(4)]


def test_flow_is_deterministic_and_seeded() -> None:
    a = generate(GENESIS, TRADERS, 300, seed=7, nonce_base_ms=1_000)
    b = generate(GENESIS, TRADERS, 300, seed=7, nonce_base_ms=1_000)
    c = generate(GENESIS, TRADERS, 300, seed=8, nonce_base_ms=1_000)
    assert a.txs == b.txs and a.txs != c.txs
    assert len(set(a.hashes)) == 300


def test_flow_is_valid_for_the_chain() -> None:
    mix = FlowMix(max_open=5)
    flow = generate(GENESIS, TRADERS, 2_000, seed=3, nonce_base_ms=5_000, mix=mix)
    last_nonce: dict[bytes, int] = {}
    open_cloids: dict[bytes, set[bytes]] = defaultdict(set)
    for raw, kind in zip(flow.txs, flow.kinds, strict=True):
        tx = decode_tx(raw)
        assert tx.verify_signature("flowtest")
        assert tx.nonce > last_nonce.get(tx.signer, 0)
        last_nonce[tx.signer] = tx.nonce
        a = tx.action
        if kind == "cancel":
            assert isinstance(a, Cancel) and a.oid is None and a.cloid in open_cloids[tx.signer]
            open_cloids[tx.signer].discard(a.cloid)
        else:
            assert isinstance(a, PlaceOrder)
            m = GENESIS.markets[a.market]
            assert a.price * a.size * m.tick_value >= m.min_notional
            if kind == "maker":
                assert a.tif == Tif.GTC and a.cloid is not None
                open_cloids[tx.signer].add(a.cloid)
            else:
                assert a.tif == Tif.IOC
        assert len(open_cloids[tx.signer]) <= mix.max_open
    counts = flow.counts()
    assert counts["maker"] > counts["taker"] > 0 and counts["cancel"] > 0


def test_each_trader_goes_to_one_node_in_nonce_order() -> None:
    """A real client talks to one endpoint: the load generator must not spread one trader's
    txs over nodes (they overtook each other there and came back NONCE_TOO_LOW)."""
    traders = [PrivateKey(bytes([i + 30]) * 32) for i in range(8)]
    flow = generate(GENESIS, traders, 1_000, seed=5, nonce_base_ms=9_000)
    assert flow.traders[:9] == (0, 1, 2, 3, 4, 5, 6, 7, 0)
    ticks = split_by_node(flow, 50, 4)
    assert len(ticks) == 20 and [node for node, _ in ticks[:8]] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert all(len(txs) == len(hashes) == 50 for _, (txs, hashes) in ticks)  # 8 traders, 4 nodes: even
    node_of: dict[bytes, int] = {}
    last_nonce: dict[bytes, int] = {}
    sent: list[bytes] = []
    for node, (txs, hashes) in ticks:
        for raw in txs:
            tx = decode_tx(raw)
            assert node_of.setdefault(tx.signer, node) == node
            assert tx.nonce > last_nonce.get(tx.signer, 0)
            last_nonce[tx.signer] = tx.nonce
        sent += hashes
    assert sorted(sent) == sorted(flow.hashes)
    assert len(set(node_of.values())) == 4
    # uneven: 3 traders over 2 nodes; node 0's share (2 traders) outlasts node 1's
    uneven = split_by_node(generate(GENESIS, traders[:3], 90, seed=5, nonce_base_ms=9_000), 10, 2)
    assert sum(len(txs) for _, (txs, _) in uneven) == 90
    assert [node for node, _ in uneven][-2:] == [0, 0]


def test_one_nodes_batches_are_sent_in_order() -> None:
    """A later batch must not overtake an earlier one on the same node, even when the
    earlier request is slow: more than 100 txs of a trader overtaking would be NONCE_TOO_LOW."""
    log: list[str] = []

    class SlowClient:
        async def broadcast_txs_packed(self, txs: list[bytes]) -> list[tuple[bytes, int, str]]:
            log.append(f"start {txs[0]!r}")
            await asyncio.sleep(0.05 if txs[0] == b"a" else 0)
            log.append(f"end {txs[0]!r}")
            return [(b"", 0, "")]

    async def run() -> _Tracker:
        tr = _Tracker()
        lock = asyncio.Lock()
        client: object = SlowClient()
        first = asyncio.create_task(_submit_batch(client, [b"a"], [b"ha"], tr, lock))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        second = asyncio.create_task(_submit_batch(client, [b"b"], [b"hb"], tr, lock))  # type: ignore[arg-type]
        await asyncio.gather(first, second)
        return tr

    tr = asyncio.run(run())
    assert log == ["start b'a'", "end b'a'", "start b'b'", "end b'b'"]
    assert tr.accepted == 2


def test_percentile() -> None:
    assert percentile([], 50) is None
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile(values, 100) == 100
    assert percentile([5.0], 99) == 5.0


def test_bucket_percentile_of_what_a_run_added() -> None:
    """The nodes' answer histograms (cumulative counts per bound) before and after a run:
    the percentile's bucket bound among the run's observations only."""
    before = Counter({1.0: 10, 5.0: 10, 25.0: 10, float("inf"): 10})  # 10 earlier answers, all <= 1 ms
    after = Counter({1.0: 10, 5.0: 60, 25.0: 108, float("inf"): 110})  # the run: 50 <= 5, 48 <= 25, 2 past
    assert bucket_percentile(before, after, 50) == 5.0
    assert bucket_percentile(before, after, 90) == 25.0
    assert bucket_percentile(before, after, 99) == float("inf")
    assert bucket_percentile(after, after, 50) is None and bucket_percentile(Counter(), Counter(), 50) is None
    restarted = Counter({1.0: 0, 5.0: 3, 25.0: 4, float("inf"): 4})  # a node's counters began again
    assert bucket_percentile(before, restarted, 50) is None


def test_run_load_against_a_fake_chain(tmp_path: Path) -> None:
    home = tmp_path / "dn"
    with fake_devnet(home, nodes=2, traders=4) as fake:
        plan = prepare(str(home), tps=400, seconds=1, seed=1)
        assert len(plan.urls) == 2 and plan.accounts == 4 and len(plan.flow.txs) == 400
        refused = plan.flow.txs[5].hex()
        fake.reject_admission[refused] = (Code.MEMPOOL_FULL, "full")
        report = asyncio.run(run_load(plan.urls, plan.flow, tps=400, seconds=1, accounts=plan.accounts,
                                      drain_timeout=10))
    doc = report.to_json()
    for key in ("tx_per_s", "p50_ms", "p99_ms", "rejected"):
        assert key in doc
    assert doc["submitted"] == 400 and doc["accepted"] == 399
    assert doc["committed"] == 399 and doc["uncommitted"] == 0
    assert doc["rejected_by_code"]["MEMPOOL_FULL"] == 1
    assert doc["rejected"] == sum(doc["rejected_by_code"].values())
    assert doc["committed_ok"] == 399 - (doc["rejected"] - 1)
    assert 0 < doc["p50_ms"] <= doc["p90_ms"] <= doc["p99_ms"] <= doc["max_ms"]
    assert doc["tx_per_s"] > 100 and doc["blocks"] >= 2
    assert doc["node_answer_p50_ms"] is None and doc["loop_lag_p99_ms"] is None  # the stand-in serves no /metrics
    # the last of the 4 traders is the lone client: its 100 txs one per request
    assert doc["lone_requests"] == 100 and 0 < doc["lone_p50_ms"] <= doc["lone_p99_ms"] <= doc["lone_max_ms"]


def test_run_load_in_small_requests(tmp_path: Path) -> None:
    """``batch_txs``: the flow in requests of that many txs (many clients each sending a
    few orders), none lost to one request overtaking another."""
    home = tmp_path / "dn"
    with fake_devnet(home, nodes=2, traders=4) as fake:
        plan = prepare(str(home), tps=400, seconds=1, seed=1)
        report = asyncio.run(run_load(plan.urls, plan.flow, tps=400, seconds=1, accounts=plan.accounts,
                                      drain_timeout=10, lone=False, batch_txs=8))
        sent = sum(1 for method, path in fake.requests if (method, path) == ("POST", "/broadcast_txs"))
    doc = report.to_json()
    assert sent == 400 // 8
    assert doc["accepted"] == doc["committed"] == 400 and doc["refused"] == 0 and doc["uncommitted"] == 0


def test_the_lone_client_is_left_out_of_the_batches() -> None:
    traders = [PrivateKey(bytes([i + 30]) * 32) for i in range(4)]
    flow = generate(GENESIS, traders, 400, seed=5, nonce_base_ms=9_000)
    ticks = split_by_node(flow, 50, 2, lone=3)
    batched = [h for _, (_, hashes) in ticks for h in hashes]
    schedule = lone_schedule(flow, 3, tps=400)
    assert len(batched) == 300 and len(schedule) == 100
    assert sorted(batched + [flow.hashes[j] for _, j in schedule]) == sorted(flow.hashes)
    assert all(flow.traders[j] == 3 for _, j in schedule)
    assert [t for t, _ in schedule] == sorted(t for t, _ in schedule) and schedule[0] == (3 / 400, 3)


def test_cli_load_writes_json(tmp_path: Path) -> None:
    home = tmp_path / "dn"
    out = tmp_path / "report.json"
    with fake_devnet(home, nodes=1, traders=2):
        res = CliRunner().invoke(bookchain, ["devnet", "load", "--home", str(home), "--tps", "100", "--seconds", "0.5",
                                             "--accounts", "2", "--json", str(out)])
        assert res.exit_code == 0, res.output
        assert "committed tx/s" in res.output
        doc = json.loads(out.read_text())
        assert doc["submitted"] == 50 and doc["accounts"] == 2
        too_many = CliRunner().invoke(bookchain, ["devnet", "load", "--home", str(home), "--accounts", "3"])
        assert too_many.exit_code == 1 and "has 2 trader accounts" in too_many.output


def test_cli_load_unreachable_exits_3(tmp_path: Path) -> None:
    home = tmp_path / "dn"
    with fake_devnet(home, nodes=1, traders=1):
        pass  # the fake is gone: the manifest points at a closed port
    res = CliRunner().invoke(bookchain, ["devnet", "load", "--home", str(home), "--tps", "10", "--seconds", "0.1"])
    assert res.exit_code == 3, res.output


def test_devnet_flow_applies_to_the_same_app_hash_every_time() -> None:
    """bench.devnet_flow_apply compares versions of state/ by the app hash it reaches on
    the devnet's flow: that only works if the hash depends on nothing but the arguments."""
    from bench.devnet_flow_apply import run

    a = run(traders=4, block_size=50, txs=200)
    b = run(traders=4, block_size=50, txs=200)
    assert a["app_hash"] == b["app_hash"]
    assert a["txs"] == 200 and a["fills"] > 0 and a["rejected"] < a["txs"]
