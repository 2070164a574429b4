"""Free batch spam against a running devnet, and what an honest client meets meanwhile.

    bookchain devnet up --reset --traders 101
    python -m bench.batch_flood [--home ~/.bookchain-devnet] [--seconds 30]
    bookchain devnet down

``FLOODERS`` funded traders each send a 64-order ``Batch`` every ``TICK`` whose orders
all fail in the block (10^9 lots: far more than the account holds; refused actions cost
nothing, there are no fees), spread over the nodes as ``/broadcast_txs`` requests; the
next trader sends one resting order every ``HONEST_GAP`` to the first node through
``/broadcast_tx_commit`` and records what it was answered and how long its commit took.
Admission counting transactions let such a flood refuse most of the honest orders and
delay the rest by seconds; counting weight (node/txweight.py) it does not
(docs/performance.md, "Free batch spam"). Prints one JSON line, then the commonest
refusal messages the honest client met.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import time
from pathlib import Path

from devnet.flow import DEFAULT_MIDS, _mid_ticks
from devnet.manifest import load_manifest
from node.client import AsyncClient, RpcError
from node.wallet.keystore import KeyStore
from state.genesis import Genesis
from state.tx import Batch, PlaceOrder, Tif, sign_tx

FLOODERS = 100
BATCH = 64
TICK = 0.1
HONEST_GAP = 0.1


def pct(v: list[float], q: float) -> float | None:
    if not v:
        return None
    v = sorted(v)
    return round(v[min(len(v) - 1, int(q / 100 * len(v)))] * 1000, 1)


async def run(home: str, seconds: float) -> None:
    m = load_manifest(home)
    assert m is not None
    genesis = Genesis.load(str(Path(home) / "genesis.json"))
    names = [a for a in m.accounts if a.startswith("trader")]
    ks = KeyStore(m.cli_home)
    keys = [ks.load(n).key for n in names[:FLOODERS + 1]]
    flooders, honest = keys[:FLOODERS], keys[FLOODERS]
    market = genesis.markets[0]
    mid = _mid_ticks(genesis, market, DEFAULT_MIDS)
    assert mid is not None
    chain_id = genesis.chain_id
    lots = max(1, -(-market.min_notional // max(1, mid * market.tick_value)))
    base = time.time_ns() // 1_000_000
    ticks = int(seconds / TICK)
    # each flooder's batches: buys of 10^9 lots each, refused in the block (no such balance)
    bad = Batch(tuple(PlaceOrder(market.market_id, True, mid - 10 - i, 10**9, Tif.GTC, False, None)
                      for i in range(BATCH)))
    t = time.perf_counter()
    flood = [[sign_tx(k, base + j, bad, chain_id) for k in flooders] for j in range(ticks)]
    print(f"signed {ticks * FLOODERS} batches in {time.perf_counter() - t:.1f}s", flush=True)
    honest_txs = [sign_tx(honest, base + j, PlaceOrder(market.market_id, True, mid - 20 - j % 50, lots,
                                                        Tif.GTC, False, None), chain_id)
                  for j in range(int(seconds / HONEST_GAP))]
    urls = [n.rpc_url for n in m.nodes]
    clients = [AsyncClient(u, timeout=30.0) for u in urls]
    honest_client = AsyncClient(urls[0], timeout=30.0)
    flood_codes: dict[int, int] = {}
    honest_codes: dict[str, int] = {}
    honest_lat: list[float] = []
    messages: list[str] = []

    async def send_flood(node: int, txs: list[bytes]) -> None:
        try:
            res = await clients[node].broadcast_txs_packed(txs)
            for _, code, _ in res:
                flood_codes[code] = flood_codes.get(code, 0) + 1
        except Exception as err:
            flood_codes[-1] = flood_codes.get(-1, 0) + len(txs)
            print("flood error", err, flush=True)

    async def send_honest(raw: bytes) -> None:
        t0 = time.perf_counter()
        try:
            doc = await honest_client.broadcast_tx_commit(raw, timeout_ms=20_000)
            name = str(doc.get("name", doc.get("code")))
            if doc.get("height") is not None or name == "OK":
                honest_lat.append(time.perf_counter() - t0)
        except RpcError as err:
            name = err.name
            if len(messages) < 200:
                try:
                    messages.append(json.loads(err.message)["message"])
                except (ValueError, KeyError, TypeError):
                    messages.append(err.message[:200])
        honest_codes[name] = honest_codes.get(name, 0) + 1

    tasks: list[asyncio.Task[None]] = []
    t0 = time.perf_counter()
    hj = 0
    for j in range(ticks):
        delay = t0 + j * TICK - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        for node in range(len(urls)):
            txs = [raw for i, raw in enumerate(flood[j]) if i % len(urls) == node]
            tasks.append(asyncio.create_task(send_flood(node, txs)))
        while hj < len(honest_txs) and hj * HONEST_GAP <= j * TICK:
            tasks.append(asyncio.create_task(send_honest(honest_txs[hj])))
            hj += 1
    await asyncio.gather(*tasks)
    for c in [*clients, honest_client]:
        await c.close()
    total = sum(honest_codes.values())
    print(json.dumps({
        "flood_answers": {str(k): v for k, v in sorted(flood_codes.items())},
        "honest_answers": honest_codes,
        "honest_refused_pct": round(100 * (total - len(honest_lat)) / max(1, total), 1),
        "honest_commit_ms_p50": pct(honest_lat, 50), "p90": pct(honest_lat, 90), "p99": pct(honest_lat, 99),
        "max": pct(honest_lat, 100),
    }), flush=True)
    print(collections.Counter(" ".join(w for w in m.split() if not w.isdigit()) for m in messages).most_common(5))
    print(messages[:3])


def main() -> None:
    from devnet.supervisor import DEFAULT_HOME

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", default=str(DEFAULT_HOME), help="the devnet's home")
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    asyncio.run(run(args.home, args.seconds))


if __name__ == "__main__":
    main()
