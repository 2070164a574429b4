"""``apply_block`` on the devnet's own order flow, without the devnet around it.

``bench.state_apply`` measures a synthetic mix over 1,000 accounts; the devnet's load
(``devnet/flow.py``: resting quotes around a mid, crossing IOCs, cancels by client order
id, 64 traders, every trader quoting all four markets) stresses the margin engine
differently: few accounts, each with orders on every market and positions on both perps,
checked many times per block. This applies that flow, signed and verified beforehand, in
blocks of the devnet's size and reports the CPU time per transaction (process time, so
other load on the machine moves it little) and the app hash, which is deterministic for
given arguments: two versions of ``state/`` with the same hash have the same semantics.

    python -m bench.devnet_flow_apply [--traders 64] [--block-size 600] [--txs 30000]

Prints a table and writes bench/results/devnet_flow_apply.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

from bench.common import print_table, write_json
from bench.state_apply import verify_many
from devnet.flow import generate
from devnet.genesis import CHAIN_ID, DEFAULT_FUNDS, devnet_genesis_doc
from node.gctune import tune_for_throughput
from state.genesis import Genesis
from state.keys import PrivateKey
from state.machine import ExecBlock, StateMachine

T0 = 1_700_000_000_000
WARMUP_BLOCKS = 2
BLOCK_INTERVAL_MS = 200


def trader_keys(n: int) -> list[PrivateKey]:
    """Fixed keys, so the flow and the app hash are the same on every run."""
    return [PrivateKey((0xB00C + i).to_bytes(4, "big") * 8) for i in range(n)]


def devnet_genesis(keys: list[PrivateKey]) -> Genesis:
    """The devnet's genesis (assets, markets, risk parameters, funds per trader)."""
    return Genesis.from_json(devnet_genesis_doc(
        chain_id=CHAIN_ID, validators=[], bridge_pubkey=PrivateKey(b"\x01" * 32).pubkey,
        funded=[k.address for k in keys], funds=dict(DEFAULT_FUNDS), genesis_time_ms=T0))


def run(traders: int, block_size: int, txs: int) -> dict[str, Any]:
    keys = trader_keys(traders)
    genesis = devnet_genesis(keys)
    flow = generate(genesis, keys, txs + WARMUP_BLOCKS * block_size, seed=1, nonce_base_ms=T0 + 1000)
    cache = verify_many(list(flow.txs), genesis.chain_id)
    blocks = [flow.txs[i: i + block_size] for i in range(0, len(flow.txs), block_size)]
    with tempfile.TemporaryDirectory() as d:
        sm = StateMachine.open(genesis, os.path.join(d, "state"), sync_commits=False)  # as a node commits
        height_time = T0 + 2000
        for i in range(WARMUP_BLOCKS):
            sm.apply_block(ExecBlock(sm.height + 1, height_time + i * BLOCK_INTERVAL_MS, tuple(blocks[i])), cache)
        tune_for_throughput()  # the node's GC settings, as apply_block runs there
        applied = fills = rejected = 0
        cpu = time.process_time()
        for i in range(WARMUP_BLOCKS, len(blocks)):
            res = sm.apply_block(ExecBlock(sm.height + 1, height_time + i * BLOCK_INTERVAL_MS, tuple(blocks[i])),
                                 cache)
            applied += len(blocks[i])
            fills += sum(len(a.fills) for r in res.receipts for a in r.results)
            rejected += sum(1 for r in res.receipts if r.code != 0)
        cpu = time.process_time() - cpu
        app_hash = sm.app_hash.hex()
        sm.close()
    return {"traders": traders, "block_size": block_size, "txs": applied, "cpu_us_per_tx": cpu / applied * 1e6,
            "tx_per_s_cpu": applied / cpu, "fills": fills, "rejected": rejected, "app_hash": app_hash,
            "mix": flow.counts()}


def flow_args(doc: str | None, block_size: int, block_help: str) -> argparse.Namespace:
    """The options of a benchmark over the devnet's flow: traders, block size, txs."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traders", type=int, default=64, help="trader accounts (the devnet's default is 64)")
    ap.add_argument("--block-size", type=int, default=block_size, help=block_help)
    ap.add_argument("--txs", type=int, default=30_000, help="txs in the measured blocks")
    return ap.parse_args()


def main() -> None:
    args = flow_args(__doc__, 600, "txs per block (the devnet at 4,000 tx/s: ~600)")
    r = run(args.traders, args.block_size, args.txs)
    print_table(f"apply_block on the devnet flow ({args.traders} traders, {args.block_size}-tx blocks)", [
        ("transactions applied (measured)", r["txs"], ""),
        ("CPU per transaction", r["cpu_us_per_tx"], "µs"),
        ("transactions per CPU second", r["tx_per_s_cpu"], "tx/s"),
        ("fills / rejected receipts", f"{r['fills']:,} / {r['rejected']:,}", ""),
        ("app hash after (equal means same semantics)", r["app_hash"][:16], ""),
    ])
    write_json("devnet_flow_apply", r)


if __name__ == "__main__":
    main()
