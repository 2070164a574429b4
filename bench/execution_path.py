"""The execution thread's whole work per block on the devnet's order flow, without the devnet.

``bench.devnet_flow_apply`` times ``apply_block`` alone. A node's execution thread does
more for every block (node/execution.py ``apply_and_store``): it saves the block with its
certificate, applies it, builds the block's results and every index (account history,
fills with positions, orders by id and client id, placements, candles, interest, evidence),
stores them, and commits the state. This runs that method over the same flow, in blocks of
the devnet's size, through a real block store and state store in a temporary directory,
and reports the CPU time of the calling thread per transaction, with ``apply_block``'s
share timed apart in the same blocks, so the indexing and storage left around it show.

    python -m bench.execution_path [--traders 64] [--block-size 500] [--txs 30000]

The app hash after the run is deterministic for given arguments (the same as
``bench.devnet_flow_apply`` with the same flow). Prints a table and writes
bench/results/execution_path.json.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from typing import Any

from bench.common import libsodium_verify_per_s, print_table, write_json
from bench.devnet_flow_apply import (
    BLOCK_INTERVAL_MS,
    T0,
    WARMUP_BLOCKS,
    devnet_genesis,
    flow_args,
    trader_keys,
)
from bench.state_apply import verify_many
from consensus.block import Block, BlockHeader
from consensus.merkle import txs_root
from devnet.flow import generate
from node.blockstore import BlockStore
from node.config import MempoolConfig
from node.events import EventBus
from node.execution import Execution
from node.gctune import tune_for_throughput
from node.mempool import Mempool
from state.build import build_name
from state.machine import StateMachine


class TimedMachine:
    """The state machine as the execution sees it, with each ``apply_block`` call timed on
    the calling thread (the rest of the block's work is the method's total less this). A
    stand-in rather than a patched method: a compiled ``StateMachine`` takes no new attributes."""

    def __init__(self, sm: StateMachine) -> None:
        self._sm = sm
        self.cpu_s = 0.0
        self.commit_cpu_s = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sm, name)

    def apply_block(self, *args: Any, **kwargs: Any) -> Any:
        t = time.thread_time()
        try:
            return self._sm.apply_block(*args, **kwargs)
        finally:
            self.cpu_s += time.thread_time() - t

    def commit_pending(self) -> None:
        t = time.thread_time()
        try:
            self._sm.commit_pending()
        finally:
            self.commit_cpu_s += time.thread_time() - t


class TimedStore:
    """Times ``save_results`` (one synced LevelDB batch of the results and every index)."""

    def __init__(self, blocks: BlockStore) -> None:
        self.cpu_s = 0.0
        self._save = blocks.save_results

    def save_results(self, *args: Any, **kwargs: Any) -> None:
        t = time.thread_time()
        try:
            self._save(*args, **kwargs)
        finally:
            self.cpu_s += time.thread_time() - t


def block_of(height: int, time_ms: int, txs: tuple[bytes, ...], prev_hash: bytes, prev_app_hash: bytes,
             chain_id: str) -> Block:
    header = BlockHeader(chain_id=chain_id, height=height, round=0, time_ms=time_ms, prev_block_hash=prev_hash,
                         prev_app_hash=prev_app_hash, txs_root=txs_root(txs), proposer=b"\x01" * 32)
    return Block(header, txs)


def run(traders: int, block_size: int, txs: int) -> dict[str, Any]:
    keys = trader_keys(traders)
    genesis = devnet_genesis(keys)
    flow = generate(genesis, keys, txs + WARMUP_BLOCKS * block_size, seed=1, nonce_base_ms=T0 + 1000)
    cache = verify_many(list(flow.txs), genesis.chain_id)
    chunks = [tuple(flow.txs[i: i + block_size]) for i in range(0, len(flow.txs), block_size)]
    with tempfile.TemporaryDirectory() as d:
        sm = StateMachine.open(genesis, os.path.join(d, "state"))
        blocks = BlockStore(os.path.join(d, "blocks"))
        mempool = Mempool(sm, MempoolConfig())
        mempool.verified.update(cache)  # verified on admission, as in a node
        execution = Execution(sm, blocks, mempool, EventBus(), None)
        timed = TimedMachine(sm)
        store = TimedStore(blocks)
        prev_hash = b""
        applied = 0
        total_cpu = 0.0
        try:
            for i, chunk in enumerate(chunks):
                block = block_of(sm.height + 1, T0 + 2000 + i * BLOCK_INTERVAL_MS, chunk, prev_hash, sm.app_hash,
                                 genesis.chain_id)
                if i == WARMUP_BLOCKS:
                    tune_for_throughput()  # the node's GC settings
                    timed.cpu_s = 0.0
                    execution.sm = timed  # type: ignore[assignment]
                    blocks.save_results = store.save_results  # type: ignore[method-assign]
                t = time.thread_time()
                blocks.save_block(block.height, block.encode(), b"cert")
                execution.apply_and_store(block)
                if i >= WARMUP_BLOCKS:
                    total_cpu += time.thread_time() - t
                    applied += len(chunk)
                prev_hash = block.hash
            app_hash = sm.app_hash.hex()
        finally:
            asyncio.run(execution.drain())
            blocks.close()
            sm.close()
    apply_cpu, save_cpu, commit_cpu = timed.cpu_s, store.cpu_s, timed.commit_cpu_s
    per_tx = 1e6 / applied
    return {"build": build_name(), "traders": traders, "block_size": block_size, "txs": applied,
            "cpu_us_per_tx": total_cpu * per_tx, "apply_us_per_tx": apply_cpu * per_tx,
            "save_results_us_per_tx": save_cpu * per_tx, "state_commit_us_per_tx": commit_cpu * per_tx,
            "rest_us_per_tx": (total_cpu - apply_cpu - save_cpu - commit_cpu) * per_tx, "app_hash": app_hash}


def main() -> None:
    args = flow_args(__doc__, 500, "txs per block (the devnet near capacity: ~400-500)")
    r = run(args.traders, args.block_size, args.txs)
    r["libsodium_verify_per_s"] = libsodium_verify_per_s()
    print_table(f"the execution thread's work per block ({r['build']} build, {args.traders} traders, "
                f"{args.block_size}-tx blocks)", [
        ("transactions (measured)", r["txs"], ""),
        ("CPU per tx: save, apply, index, store, commit", r["cpu_us_per_tx"], "µs"),
        ("  of which apply_block", r["apply_us_per_tx"], "µs"),
        ("  of which storing results and indexes (one synced LevelDB batch)", r["save_results_us_per_tx"], "µs"),
        ("  of which the state commit", r["state_commit_us_per_tx"], "µs"),
        ("  of which the rest (building results and indexes, saving the block)", r["rest_us_per_tx"], "µs"),
        ("app hash after", r["app_hash"][:16], ""),
        ("libsodium ed25519 verify, one core, this run", r["libsodium_verify_per_s"], "/s"),
    ])
    write_json("execution_path", r)


if __name__ == "__main__":
    main()
