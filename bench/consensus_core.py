"""Throughput of the consensus core alone: 4 validators in one process, zero network delay.

Every height runs the full protocol: the proposer builds and signs a block (Merkle root
over the transactions), every message is encoded once and strictly decoded by each
receiver (the wire path), every receiver verifies every proposal and vote signature
(ed25519) and recomputes the block's transactions root, and the commit certificate is
built. The application is a stub (``validate_block`` accepts, ``propose_txs`` returns
pre-made 150-byte transactions), so this measures consensus overhead, not execution.

Usage: python bench/consensus_core.py [--seconds 3] [--txs 0,1000,10000] [--no-wire]
Prints a table and writes bench/results/consensus_core.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consensus import (
    Block,
    BroadcastProposal,
    BroadcastVote,
    CommitBlock,
    ConsensusConfig,
    ConsensusCore,
    Event,
    ProposalReceived,
    Start,
    ValidatorSet,
    VoteReceived,
    decode_message,
    encode_message,
)
from consensus.messages import Vote
from state.keys import PrivateKey

CHAIN_ID = "bench-chain"
TX_BYTES = 150
VALIDATORS = 4
GENESIS_APP_HASH = hashlib.sha256(b"bench-genesis").digest()
T0 = 1_700_000_000_000


class StubApp:
    def __init__(self, txs: list[bytes]) -> None:
        self.txs = txs

    def propose_txs(self, height: int) -> list[bytes]:
        return self.txs

    def validate_block(self, block: Block) -> bool:
        return True


def make_txs(count: int) -> list[bytes]:
    out = []
    for i in range(count):
        seed = hashlib.sha256(b"tx-%d" % i).digest()
        out.append((seed * (TX_BYTES // 32 + 1))[:TX_BYTES])
    return out


class Network:
    """Zero-delay FIFO delivery between in-process cores."""

    def __init__(self, txs: list[bytes], wire: bool) -> None:
        keys = [PrivateKey(hashlib.sha256(b"bench-%d" % i).digest()) for i in range(VALIDATORS)]
        validators = ValidatorSet([(k.pubkey, 1) for k in keys])
        config = ConsensusConfig(
            rebroadcast_interval_ms=0, max_block_txs=max(len(txs), 1), timeout_commit_ms=0
        )
        self.cores = [ConsensusCore(CHAIN_ID, validators, StubApp(txs), config, k) for k in keys]
        self.wire = wire
        self.queue: deque[tuple[int, Event]] = deque()
        self.now = T0
        self.app_hash = [GENESIS_APP_HASH] * VALIDATORS
        self.heights = [0] * VALIDATORS
        self.messages = 0
        self.wire_bytes = 0

    def run(self, seconds: float, max_heights: int) -> tuple[int, float, float]:
        for i in range(VALIDATORS):
            self.queue.append((i, Start(1, b"", self.app_hash[i], T0, self.now)))
        started = time.perf_counter()
        cpu_started = time.process_time()
        while self.queue:
            index, event = self.queue.popleft()
            self.now += 1
            for action in self.cores[index].handle(event):
                self.perform(index, action)
            if min(self.heights) >= max_heights:
                break
            if index == 0 and time.perf_counter() - started > seconds and self.heights[0] >= 3:
                break
        return (
            min(self.heights),
            time.perf_counter() - started,
            time.process_time() - cpu_started,
        )

    def perform(self, sender: int, action: Any) -> None:
        if isinstance(action, (BroadcastProposal, BroadcastVote)):
            message = action.proposal if isinstance(action, BroadcastProposal) else action.vote
            data = encode_message(message) if self.wire else b""
            self.messages += 1
            for peer in range(VALIDATORS):
                if peer == sender:
                    continue
                received = decode_message(data) if self.wire else message
                self.wire_bytes += len(data)
                event: Event = (
                    VoteReceived(received, self.now)
                    if isinstance(received, Vote)
                    else ProposalReceived(received, self.now)
                )
                self.queue.append((peer, event))
        elif isinstance(action, CommitBlock):
            block = action.block
            self.heights[sender] = block.height
            self.app_hash[sender] = hashlib.sha256(self.app_hash[sender] + block.hash).digest()
            start = Start(
                block.height + 1, block.hash, self.app_hash[sender], block.header.time_ms, self.now
            )
            self.queue.append((sender, start))
        # RecordWal / ScheduleTimeout: no disk and no timer fires without faults


def bench(tx_count: int, seconds: float, wire: bool) -> dict[str, Any]:
    txs = make_txs(tx_count)
    network = Network(txs, wire)
    max_heights = 100_000
    heights, elapsed, cpu = network.run(seconds, max_heights)
    return {
        "txs_per_block": tx_count,
        "tx_bytes": TX_BYTES if tx_count else 0,
        "heights": heights,
        "seconds": round(elapsed, 3),
        "cpu_seconds": round(cpu, 3),
        "heights_per_s": round(heights / elapsed, 2),
        "heights_per_cpu_s": round(heights / cpu, 2),
        "ms_per_height": round(1000 * elapsed / heights, 3),
        "cpu_ms_per_height": round(1000 * cpu / heights, 3),
        "txs_per_s": round(heights * tx_count / elapsed, 1),
        "txs_per_cpu_s": round(heights * tx_count / cpu, 1),
        "messages": network.messages,
        "wire_mb": round(network.wire_bytes / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time budget per row")
    parser.add_argument("--txs", default="0,1000,10000", help="comma separated block sizes")
    parser.add_argument("--no-wire", action="store_true", help="pass objects, skip encode/decode")
    parser.add_argument(
        "--out", default=str(Path(__file__).resolve().parent / "results" / "consensus_core.json")
    )
    args = parser.parse_args()
    rows = [bench(int(n), args.seconds, not args.no_wire) for n in args.txs.split(",")]
    header = (
        f"{'txs/block':>10} {'heights':>8} {'heights/s':>10} {'h/cpu-s':>9} "
        f"{'cpu ms/h':>9} {'txs/cpu-s':>10} {'wire MB':>8}"
    )
    print(
        f"consensus core, {VALIDATORS} validators in one process, zero delay, "
        f"wire={'off' if args.no_wire else 'on'} (all 4 validators' work is counted per height)"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['txs_per_block']:>10} {row['heights']:>8} {row['heights_per_s']:>10} "
            f"{row['heights_per_cpu_s']:>9} {row['cpu_ms_per_height']:>9} "
            f"{row['txs_per_cpu_s']:>10} {row['wire_mb']:>8}"
        )
    result = {
        "bench": "consensus_core",
        "validators": VALIDATORS,
        "network_delay_ms": 0,
        "wire_encoding": not args.no_wire,
        "signature_checks": "every proposal and vote verified by every receiver (ed25519, libsodium)",
        "note": "one process runs all 4 validators, so per-node cost is about 1/4 of cpu_ms_per_height",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
