"""Overload end to end: one signer floods a real 4-node devnet far above its capacity while
another trades normally (node/admission.py).

The flood (trader0, ~3x the 2-core devnet's capacity, all to node0) must be refused in
part with the retryable ``MEMPOOL_BUSY`` (907, HTTP 503 on ``/broadcast_tx_sync``), while
every transaction of the normal signer (trader1, 40/s to the same node) is admitted and
committed: one account flooding cannot starve the others.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from devnet.flow import generate
from devnet.manifest import Manifest
from node.client import AsyncClient, as_int
from node.codes import unpack_codes
from node.wallet.keystore import KeyStore
from state.errors import Code
from state.genesis import Genesis
from tests.devnet.conftest import running_devnet

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(importlib.util.find_spec("node.main") is None, reason="node.main is not importable"),
]

FLOOD_TPS = 10_000
SECONDS = 4.0
TICK = 0.1
NORMAL_PER_TICK = 4


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Manifest]:
    home = tmp_path_factory.mktemp("overload") / "devnet"
    with running_devnet(home, nodes=4, traders=2) as (m, _out):
        yield m


async def _offer(m: Manifest) -> tuple[dict[int, int], dict[bytes, int], list[str], int]:
    """Flood and trade for ``SECONDS``; answer the flood's codes, the normal txs' codes by
    hash, what ``/broadcast_tx_sync`` said to the flooder mid-flood, and the start height."""
    import aiohttp

    genesis = Genesis.load(str(Path(m.cli_home).parent / "genesis.json"))
    ks = KeyStore(m.cli_home)
    base = time.time_ns() // 1_000_000
    ticks = round(SECONDS / TICK)
    flood = generate(genesis, [ks.load("trader0").key], round(FLOOD_TPS * SECONDS) + 50, seed=1, nonce_base_ms=base)
    normal = generate(genesis, [ks.load("trader1").key], NORMAL_PER_TICK * ticks, seed=2, nonce_base_ms=base)
    flood_codes: dict[int, int] = {}
    normal_codes: dict[bytes, int] = {}
    sync_answers: list[str] = []
    per_tick = round(FLOOD_TPS * TICK)
    async with aiohttp.ClientSession() as session:
        node = AsyncClient(m.nodes[0].rpc_url, timeout=30.0, session=session)
        start = as_int((await node.status())["latest_height"])

        async def send(txs: Sequence[bytes], into: dict[bytes, int] | None) -> None:
            for h, code, _message in await node.broadcast_txs_packed(txs):
                if into is None:
                    flood_codes[code] = flood_codes.get(code, 0) + 1
                else:
                    into[bytes(h)] = code

        tasks = []
        t0 = time.perf_counter()
        for k in range(ticks):
            delay = t0 + k * TICK - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(flood.txs[k * per_tick:(k + 1) * per_tick], None)))
            tasks.append(asyncio.create_task(
                send(normal.txs[k * NORMAL_PER_TICK:(k + 1) * NORMAL_PER_TICK], normal_codes)))
            if k >= ticks // 4 and not sync_answers:  # the flooder, one tx at a time, once per tick
                raw = flood.txs[-1 - k]  # past the flood's batches
                async with session.post(node.url + "/broadcast_tx_sync", json={"tx": raw.hex()}) as resp:
                    doc = await resp.json()
                if doc["code"] != 0:
                    sync_answers.append(f"{resp.status} {doc['code']} {doc['name']}")
        await asyncio.gather(*tasks)
    return flood_codes, normal_codes, sync_answers, start


async def _committed(m: Manifest, start: int, wanted: set[bytes], timeout: float) -> dict[bytes, int]:
    """Follow ``/commits`` from ``start + 1`` until every hash in ``wanted`` is seen."""
    found: dict[bytes, int] = {}
    height = start
    deadline = time.monotonic() + timeout
    async with AsyncClient(m.nodes[1].rpc_url, timeout=30.0) as c:
        while wanted - set(found) and time.monotonic() < deadline:
            _latest, blocks = await c.commits_packed(height + 1, wait_ms=1000)
            for h, hashes, codes in blocks:
                for i, code in enumerate(unpack_codes(codes)):
                    th = hashes[32 * i:32 * i + 32]
                    if th in wanted:
                        found[th] = code
                height = h
    return found


def test_a_flooding_signer_is_refused_with_mempool_busy_and_the_normal_one_gets_through(devnet: Manifest) -> None:
    flood_codes, normal_codes, sync_answers, start = asyncio.run(_offer(devnet))
    busy = flood_codes.get(int(Code.MEMPOOL_BUSY), 0)
    assert busy > 0 and flood_codes.get(0, 0) > 0, flood_codes
    assert set(flood_codes) <= {0, int(Code.MEMPOOL_BUSY)}, flood_codes  # refusals carry the retryable code
    assert sync_answers == ["503 907 MEMPOOL_BUSY"]
    assert normal_codes and all(code == 0 for code in normal_codes.values()), normal_codes
    committed = asyncio.run(_committed(devnet, start, set(normal_codes), timeout=40))
    assert set(committed) == set(normal_codes)  # every tx of the normal signer made it into a block
