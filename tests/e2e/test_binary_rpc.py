"""The msgpack form of /broadcast_txs and the /commits feed, against a live node."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest

from devnet.cluster import Cluster
from node.client import AsyncClient, RpcError
from node.codes import split_hashes, unpack_codes
from state.tx import PlaceOrder, Tif, tx_hash

pytestmark = pytest.mark.e2e

MSGPACK = "application/msgpack"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(Path(tmp_path_factory.mktemp("bin")), nodes=1)
    try:
        c.start_all()
        yield c
    finally:
        c.stop_all()


def packed_post(c: Cluster, path: str, body: bytes) -> tuple[int, str, object]:
    req = urllib.request.Request(c.url(0) + path, data=body, headers={"content-type": MSGPACK})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers.get_content_type(), msgpack.unpackb(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get_content_type(), msgpack.unpackb(err.read())


def order(price: int) -> PlaceOrder:
    return PlaceOrder(0, True, price, 3, Tif.GTC, False, None)


def test_packed_broadcast_then_commits_feed_agrees_with_block_results(node: Cluster) -> None:
    good = [node.sign("alice", order(50_000 + i)) for i in range(3)]
    forged = good[0][:-1] + bytes([good[0][-1] ^ 1])

    async def run() -> tuple[list[tuple[bytes, int, str]], int, list[tuple[int, bytes, bytes]]]:
        async with AsyncClient(node.url(0)) as c:
            start = int((await c.status())["latest_height"])
            answer = await c.broadcast_txs_packed([*good, forged, b"\xc1"])
            found: list[tuple[int, bytes, bytes]] = []
            height = start
            deadline = time.monotonic() + 30
            while sum(len(hs) // 32 for _, hs, _ in found) < 3 and time.monotonic() < deadline:
                _latest, blocks = await c.commits_packed(height + 1, wait_ms=2_000)
                found += blocks
                height = blocks[-1][0] if blocks else height
            return answer, start, found

    answer, start, found = asyncio.run(run())
    assert [(h, code) for h, code, _ in answer[:3]] == [(tx_hash(t), 0) for t in good]
    assert answer[3][1] == 103 and answer[4][1] == 100  # BAD_SIGNATURE, MALFORMED
    committed = {h: code for _, hs, cs in found for h, code in zip(split_hashes(hs), unpack_codes(cs), strict=True)}
    assert committed == {tx_hash(t): 0 for t in good}
    assert [h for h, _, _ in found] == list(range(start + 1, start + 1 + len(found)))
    # the JSON form says the same as the full results, for every height it covers
    doc = node.get(0, f"/commits?from={start + 1}&to={found[-1][0]}")
    assert [b["height"] for b in doc["blocks"]] == [h for h, _, _ in found]
    for b in doc["blocks"]:
        receipts = node.get(0, f"/block_results?height={b['height']}")["receipts"]
        assert b["txs"] == [[r["tx_hash"], r["code"]] for r in receipts]
    tx = node.get(0, f"/tx?hash={tx_hash(good[1]).hex()}")
    assert tx["receipt"]["tx_hash"] == tx_hash(good[1]).hex()


def test_commits_long_poll_waits_for_the_next_block_and_bounds_its_range(node: Cluster) -> None:
    top = int(node.get(0, "/status")["latest_height"])
    t0 = time.monotonic()
    doc = node.get(0, f"/commits?from={top + 2}&wait_ms=10000")
    assert doc["blocks"] and doc["blocks"][0]["height"] == top + 2 and time.monotonic() - t0 < 9
    assert node.get(0, "/commits?from=99999999")["blocks"] == []
    assert len(node.get(0, "/commits?from=1&to=99999999")["blocks"]) <= 100
    for bad in ("/commits", "/commits?from=0", "/commits?from=1&wait_ms=-1", "/commits?from=1&wait_ms=999999"):
        try:
            node.get(0, bad)
        except RpcError as err:
            assert err.http_status == 400 and err.name == "MALFORMED"
        else:
            raise AssertionError(f"{bad} was accepted")


@pytest.mark.parametrize(("body", "status", "name"), [
    (b"\xc1", 400, "MALFORMED"),
    (msgpack.packb({"txs": []}), 400, "MALFORMED"),
    (msgpack.packb(["00"]), 400, "MALFORMED"),
    (msgpack.packb([b"\x00"] * 6000), 413, "BATCH_TOO_LARGE"),
    (b"\x93\x01", 400, "MALFORMED"),
])
def test_bad_packed_bodies_get_packed_coded_errors(node: Cluster, body: bytes, status: int, name: str) -> None:
    got_status, content_type, doc = packed_post(node, "/broadcast_txs", body)
    assert (got_status, content_type) == (status, MSGPACK)
    assert isinstance(doc, dict) and doc["error"]["name"] == name


def test_async_client_raises_the_packed_error(node: Cluster) -> None:
    async def run() -> RpcError:
        async with AsyncClient(node.url(0)) as c:
            try:
                await c.request_packed("POST", "/broadcast_txs", body=[1, 2])
            except RpcError as err:
                return err
        raise AssertionError("no error")

    err = asyncio.run(run())
    assert (err.http_status, err.name) == (400, "MALFORMED")
    assert node.height(0) > 0  # still serving
