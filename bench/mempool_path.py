"""The event loop's per-transaction mempool work, apart from everything else a node does.

    python -m bench.mempool_path [--txs 200000] [--batch 250] [--signers 64] [--rounds 3]

A node's loop admits every transaction once (a client's batch, or a peer's gossip) and
takes it out again when its block commits; at saturation that is a large share of the
loop's CPU (docs/performance.md, "A node's cores"). This times those steps with the
signatures already checked (the verified cache primed, as the verification threads leave
it), so what is measured is only the loop's part: the cheap checks, the state checks, the
admission window and the signers' shares, the insert; and ``on_committed``'s clean-up.
Figures are ns per transaction (best of ``--rounds``), beside libsodium's one-core verify
rate measured in the same run (this machine's speed moves by 2x from hour to hour).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from typing import Any

from bench.common import libsodium_verify_per_s, print_table, write_json
from bench.state_apply import MIDS, make_chain
from node.config import MempoolConfig
from node.mempool import Mempool
from state.machine import decode_verified
from state.tx import PlaceOrder, SignedTx, Tif, sign_tx


def signed_orders(chain_id: str, keys: list[Any], n: int, t0_ms: int) -> list[bytes]:
    """``n`` resting buys spread over ``keys``, each key's nonces increasing."""
    out = []
    for i in range(n):
        k = keys[i % len(keys)]
        market = i % 4
        out.append(sign_tx(k, t0_ms + i, PlaceOrder(market, True, MIDS[market] - 10 - i % 50, 1, Tif.GTC, False,
                                                    None), chain_id))
    return out


def one_round(sm: Any, raws: list[bytes], decoded: dict[bytes, SignedTx], batch: int,
              bound: bool) -> tuple[float, float]:
    """(ns per tx admitted, ns per tx committed) for one pass over ``raws``."""
    config = MempoolConfig(max_txs=len(raws) + 1, max_bytes=1 << 40, admission_window_ms=10**9,
                           admission_floor_txs=len(raws) + 1, per_signer_min=len(raws) + 1)
    pool = Mempool(sm, config)
    pool.verified.update(decoded)
    batches = [raws[i: i + batch] for i in range(0, len(raws), batch)]

    async def admit_all() -> float:
        t0 = time.perf_counter_ns()
        for b in batches:
            adms = await pool.add_many(b, None, gossip=not bound, bound=bound)
            if not all(a.ok for a in adms):
                raise SystemExit(f"refused: {[a for a in adms if not a.ok][:3]}")
        return (time.perf_counter_ns() - t0) / len(raws)

    admit_ns = asyncio.run(admit_all())
    hashes = [decoded[r].hash for r in raws]
    t0 = time.perf_counter_ns()
    for i in range(0, len(raws), batch):
        pool.on_committed(hashes[i: i + batch], raws[i: i + batch], sm.ex.time_ms)
    commit_ns = (time.perf_counter_ns() - t0) / len(raws)
    if len(pool) != 0:
        raise SystemExit("on_committed left txs pending")
    return admit_ns, commit_ns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--txs", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=250, help="txs per admitted batch and per committed block")
    ap.add_argument("--signers", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        genesis, keys, sm = make_chain(args.signers, tmp + "/state")
        t0_ms = sm.ex.time_ms
        raws = signed_orders(genesis.chain_id, keys, args.txs, t0_ms)
        decoded = {}
        for raw in raws:
            tx = decode_verified(raw, genesis.chain_id)
            decoded[raw] = tx
        rows: dict[str, list[tuple[float, float]]] = {"gossip": [], "client": []}
        for _ in range(args.rounds):
            for kind in rows:
                rows[kind].append(one_round(sm, raws, decoded, args.batch, kind == "client"))
        sm.close()
    verify = libsodium_verify_per_s()
    best = {kind: (min(a for a, _ in r), min(c for _, c in r)) for kind, r in rows.items()}
    print_table(f"mempool: the loop's work per tx ({args.txs:,} txs, batches of {args.batch}, {args.signers} signers)", [
        ("admit a peer's gossip (verified)", f"{best['gossip'][0]:,.0f}", "ns/tx"),
        ("admit a client's batch (verified; window, shares)", f"{best['client'][0]:,.0f}", "ns/tx"),
        ("on_committed clean-up", f"{best['gossip'][1]:,.0f}", "ns/tx"),
        ("libsodium ed25519 verify, one core", f"{verify:,.0f}", "/s"),
    ])
    write_json("mempool_path", {"txs": args.txs, "batch": args.batch, "signers": args.signers,
                                "gossip_admit_ns": best["gossip"][0], "client_admit_ns": best["client"][0],
                                "commit_ns": best["gossip"][1], "libsodium_verify_per_s": verify})


if __name__ == "__main__":
    main()
