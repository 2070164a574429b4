"""Four real validators on loopback over libp2p: trading, bad input, replay, crash recovery."""

from __future__ import annotations

import signal
import time

import pytest

from devnet.cluster import Cluster
from node import sigbatch
from node.replay import DirSource, RpcSource, replay
from state.build import build_name
from state.tx import PlaceOrder, Tif

pytestmark = pytest.mark.e2e

BTC_SPOT = 0


def order(is_buy: bool, price: int, size: int, tif: Tif = Tif.GTC) -> PlaceOrder:
    return PlaceOrder(BTC_SPOT, is_buy, price, size, tif, False, None)


def test_orders_commit_and_every_node_agrees(cluster: Cluster) -> None:
    r1 = cluster.commit(0, cluster.sign("alice", order(False, 60_000, 10)))
    assert r1["name"] == "OK" and r1["receipt"]["results"][0]["status"] == "resting"
    r2 = cluster.commit(2, cluster.sign("bob", order(True, 60_000, 4)))
    fills = r2["receipt"]["results"][0]["fills"]
    assert [(f["price"], f["size"]) for f in fills] == [(60_000, 4)]
    h = max(r1["height"], r2["height"]) + 1
    cluster.wait_height(h)
    books = [cluster.get(i, "/book?market=BTC/USDC")["asks"] for i in range(4)]
    assert books == [[[60_000, 6, 1]]] * 4
    hashes = {cluster.get(i, f"/block?height={h}")["hash"] for i in range(4)}
    assert len(hashes) == 1
    results = {cluster.get(i, f"/block_results?height={h}")["app_hash"] for i in range(4)}
    assert len(results) == 1
    alice = cluster.key("alice").address.hex()
    accounts = [cluster.get(i, f"/account?address=0x{alice}") for i in range(4)]
    assert all(a["balances"] == accounts[0]["balances"] for a in accounts)
    tx = cluster.get(1, f"/tx?hash={r2['hash']}")
    assert tx["height"] == r2["height"]
    assert cluster.get(3, "/status")["build"] == build_name()  # the nodes run this checkout's build
    assert cluster.get(3, "/status")["sig_verify"] == sigbatch.backend()  # and its signature verifier


def test_bad_transactions_are_rejected_with_codes_and_the_chain_goes_on(cluster: Cluster) -> None:
    start = cluster.height(0)
    status, body = cluster.post(0, "/broadcast_tx_sync", {"tx": "c1c1c1"})
    assert (status, body["name"]) == (200, "MALFORMED")
    good = cluster.sign("alice", order(True, 50_000, 3))
    forged = good[:-1] + bytes([good[-1] ^ 1])
    status, body = cluster.post(1, "/broadcast_tx_sync", {"tx": forged.hex()})
    assert body["name"] == "BAD_SIGNATURE"
    nonce = cluster.nonce()
    first = cluster.commit(0, cluster.sign("alice", order(True, 50_000, 3), nonce=nonce))
    assert first["name"] == "OK"
    # A node checks nonces against its own committed state, so the replay goes to
    # node 2 only once node 2 has applied the height that used the nonce.
    cluster.wait_height(first["height"], nodes=[2])
    replayed = cluster.post(2, "/broadcast_tx_sync", {"tx": cluster.sign("alice", order(True, 50_001, 3), nonce=nonce).hex()})[1]
    assert replayed["name"] == "NONCE_USED"
    status, body = cluster.post(0, "/broadcast_tx_sync", {"tx": 5})
    assert (status, body["error"]["name"]) == (400, "MALFORMED")
    status, body = cluster.post(0, "/nope", {})
    assert status in (404, 405)
    cluster.wait_height(start + 3)


def test_replay_from_rpc_and_from_a_running_nodes_directory(cluster: Cluster, tmp_path: object) -> None:
    cluster.commit(3, cluster.sign("bob", order(False, 70_000, 2)))
    top = cluster.height(0)
    rpc_report = replay(RpcSource(cluster.url(1)), None, to_height=top)
    assert rpc_report.ok, rpc_report
    src = DirSource(cluster.manifest.nodes[2].home)
    try:
        dir_report = replay(src, None, to_height=top)
    finally:
        src.close()
    assert dir_report.ok, dir_report
    assert rpc_report.final_app_hash == dir_report.final_app_hash
    assert rpc_report.replayed == top


def test_killed_validator_restarts_and_catches_up_while_chain_continues(tmp_path: object) -> None:
    from pathlib import Path

    c = Cluster(Path(str(tmp_path)))
    try:
        c.start_all()
        c.commit(0, c.sign("alice", order(False, 61_000, 5)))
        c.kill(3, signal.SIGKILL)
        h = c.current_height(0)
        c.wait_height(h + 5, nodes=[0, 1, 2], timeout=30)  # 3 of 4 keep committing
        acked = c.commit(1, c.sign("bob", order(True, 61_000, 5)))
        assert acked["name"] == "OK"
        c.start(3)
        target = c.current_height(0)
        c.wait_height(target, nodes=[3], timeout=60)
        common = min(c.current_height(i) for i in range(4))
        for height in (1, acked["height"], common):
            assert len({c.get(i, f"/block?height={height}")["hash"] for i in range(4)}) == 1
        assert c.get(3, f"/tx?hash={acked['hash']}")["height"] == acked["height"]
        # a SIGSTOP'd validator resumes and rejoins
        c.kill(2, signal.SIGSTOP)
        time.sleep(2)
        c.kill(2, signal.SIGCONT)
        c.wait_height(c.current_height(0), nodes=[2], timeout=30)
    finally:
        c.stop_all()


def test_validators_feed_the_oracle_and_lending_uses_it(cluster: Cluster) -> None:
    import time as _time

    from state.tx import Borrow

    deadline = _time.monotonic() + 20
    while _time.monotonic() < deadline:
        assets = {a["symbol"]: a for a in cluster.get(0, "/oracle")["assets"]}
        if assets["ETH"]["price"] and assets["BTC"]["price"]:
            break
        _time.sleep(0.5)
    assert assets["BTC"]["price"] == 60_000_000_000 and assets["ETH"]["price"] == 3_000_000_000
    assert len(assets["ETH"]["submissions"]) >= 3  # one per live validator
    receipt = cluster.commit(1, cluster.sign("bob", Borrow(2, 10**8)))  # 1 ETH against bob's collateral
    assert receipt["name"] == "OK", receipt
    bob = cluster.key("bob").address.hex()
    cluster.wait_height(receipt["height"], nodes=[2, 3])  # read other nodes only once they applied it
    margin = cluster.get(2, f"/account?address=0x{bob}")["margin"]
    eth = next(b for b in margin["balances"] if b["asset"] == 2)
    assert eth["idle"] >= 10**8  # drawn out of the pool (from bob's own supply first, then as debt)
    pools = {p["symbol"]: p for p in cluster.get(3, "/pools")["pools"]}
    assert pools["ETH"]["idle"] >= 10**8


def test_every_node_serves_the_same_history_candles_and_order_history(cluster: Cluster) -> None:
    """The node indexes of node/history.py on real validators: derived from the same blocks,
    every node answers /history, /candles, /orders/history and /fills alike."""
    cluster.commit(0, cluster.sign("alice", order(False, 61_000, 10)))
    r = cluster.commit(1, cluster.sign("bob", order(True, 61_000, 10, Tif.IOC)))
    cluster.wait_height(r["height"] + 1)
    bob = "0x" + cluster.key("bob").address.hex()
    hist = [cluster.get(i, f"/history?address={bob}&kinds=fill") for i in range(4)]
    assert all(h["entries"] == hist[0]["entries"] for h in hist)
    res = r["receipt"]["results"][0]
    in_block = [(e["price"], e["size"]) for e in hist[0]["entries"] if e["height"] == r["height"]]
    assert sorted(in_block) == sorted((f["price"], f["size"]) for f in res["fills"]) and in_block
    fills = cluster.get(2, f"/fills?address={bob}&limit=1")["fills"]
    assert [(f["price"], f["size"]) for f in fills] == in_block[:1]
    candles = [cluster.get(i, "/candles?market=BTC/USDC&interval=1h")["candles"] for i in range(4)]
    assert all(c == candles[0] for c in candles) and candles[0][-1]["c"] == res["fills"][-1]["price"]
    finished = [cluster.get(i, f"/orders/history?address={bob}")["orders"] for i in range(4)]
    assert all(f == finished[0] for f in finished) and finished[0][0]["oid"] == res["oid"]
