"""Machine instructions per applied transaction: a cost figure that other load can't blur.

On a shared 2-core machine a wall-clock tx/s figure moves by 2x with what else runs;
the number of instructions ``apply_block`` executes per transaction does not. This runs
the ``bench.state_apply`` flow (1,000 accounts, 4 markets, 2,000-tx blocks, signatures
pre-verified, LevelDB commit included, the node's GC settings) under valgrind's callgrind
twice, once stopping after the warm-up blocks and once applying ``--blocks`` more, and
divides the difference by the transactions applied. Use it to compare two versions of
``state/``: a change that lowers this number makes ``apply_block`` faster everywhere.

    python -m bench.apply_instructions [--blocks 3]

Needs valgrind (Debian package ``valgrind``); takes about a minute per run. Prints a table
and writes bench/results/apply_instructions.json.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from typing import Any

from bench.common import print_table, write_json

WARMUP = 2
BLOCK_SIZE = 2000


def workload(blocks: int) -> None:
    """Build the flow, apply the warm-up blocks, then ``blocks`` more (run under callgrind)."""
    import tempfile

    from bench.state_apply import CHAIN, T0, FlowGenerator, make_chain, verify_many
    from node.gctune import tune_for_throughput
    from state.build import build_name
    from state.machine import ExecBlock

    total = WARMUP + 3  # always build the same flow, so both runs pay the same set-up
    if blocks > 3:
        raise ValueError("at most 3 measured blocks")
    with tempfile.TemporaryDirectory() as d:
        _genesis, keys, sm = make_chain(1000, d)
        gen = FlowGenerator(keys)
        flow = [[gen.signed(CHAIN) for _ in range(BLOCK_SIZE)] for _ in range(total)]
        cache = verify_many([r for b in flow for r in b], CHAIN)
        for i in range(WARMUP):
            sm.apply_block(ExecBlock(sm.height + 1, T0 + 1000 + i, tuple(flow[i])), cache)
        tune_for_throughput()
        for i in range(WARMUP, WARMUP + blocks):
            sm.apply_block(ExecBlock(sm.height + 1, T0 + 1000 + i, tuple(flow[i])), cache)
        print("build", build_name())
        print("app_hash", sm.app_hash.hex())  # last: the compiled-build test reads the final token


def instructions(blocks: int) -> tuple[int, str, str]:
    """(instructions, app hash, build) of one workload run under callgrind. The child gets
    ``-P`` when this process has it, so a compiled tree on PYTHONPATH is what it measures
    (plain ``-m`` would put the checkout first and measure the interpreted sources)."""
    safe = ["-P"] if sys.flags.safe_path else []
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, *safe, "-m",
         "bench.apply_instructions", "--workload", str(blocks)],
        capture_output=True, text=True, check=True)
    count = re.search(r"Collected : (\d+)", out.stderr)
    app = re.search(r"app_hash (\w+)", out.stdout)
    build = re.search(r"build (\w+)", out.stdout)
    if count is None or app is None or build is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out.stderr[-2000:]}")
    return int(count.group(1)), app.group(1), build.group(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=3, help="blocks applied in the measured run (max 3)")
    ap.add_argument("--workload", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.workload is not None:
        workload(args.workload)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    blocks = min(max(args.blocks, 1), 3)
    base, _, _ = instructions(0)
    full, app_hash, build = instructions(blocks)
    txs = blocks * BLOCK_SIZE
    r: dict[str, Any] = {"blocks": blocks, "txs": txs, "instructions_per_tx": (full - base) / txs,
                         "app_hash_after": app_hash, "measured_build": build}
    print_table("apply_block under callgrind", [
        ("transactions applied (measured)", txs, ""),
        ("instructions per transaction", r["instructions_per_tx"], ""),
        ("app hash after (compare versions: equal means same semantics)", app_hash[:16], ""),
        ("build of the state machine measured", build, ""),
    ])
    write_json("apply_instructions", r)


if __name__ == "__main__":
    main()
