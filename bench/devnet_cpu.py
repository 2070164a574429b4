"""Where the devnet's CPU goes per committed transaction, and what that allows.

Wall-clock throughput of a 4-validator devnet on a 2-core machine depends on whatever else
the machine is doing; CPU time per committed transaction much less so. This runs a devnet
under a steady signed load well below saturation, reads each node's and the load
generator's CPU time (user + system, from /proc) over the timed window, and reports:

- CPU microseconds per committed tx for each node, in all and above its idle use (every node verifies and applies every
  tx, so this is the per-node cost of the whole pipeline: RPC, mempool admission with
  signature verification, gossip, consensus, execution, storage);
- the generator's CPU per tx (it shares the machine in ``devnet load``);
- the ceiling those costs imply on this machine: ``cores * 1e6 / (sum over nodes +
  generator)`` tx/s, i.e. the rate at which every core would be busy.

    python -m bench.devnet_cpu [--tps 1500] [--seconds 20] [--nodes 4]
    python -m bench.devnet_cpu --tps 6000 --cores 1,2     # how the committed rate scales

Beside each node's CPU it reports its main thread's (the event loop: consensus, admission,
RPC, p2p framing) and its execution thread's (applying, indexing and storing blocks, read
from the node's ``bookchain_execution_cpu_seconds`` counter), what its other threads
(signature verification, the journal's fsyncs) and its p2p worker process take, and the
build the nodes run.
Both threads hold the GIL for most of their work, so their sum, not either alone, is the
serial cost that bounds one node's rate. That sum is also given above the threads' idle use
(what a chain with no load spends per second: rounds, timers, the validators' prices),
which is what the rate adds per transaction; blocks come faster under load than idle, so
this slightly undercounts per-block costs, and the total stays the upper figure.

Prints a table and writes bench/results/devnet_cpu.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench.common import libsodium_verify_per_s, print_table, write_json
from consensus.config import NODE_DEFAULTS
from devnet.cluster import Cluster
from devnet.load import BATCH_INTERVAL_S, prepare, run_load

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
EXECUTION_METRIC = "bookchain_execution_cpu_seconds"


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of a process so far (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a node and its worker processes (the p2p worker: node/p2p/process.py)."""
    total = cpu_seconds(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # exited meanwhile
                total += tree_cpu_seconds(int(child))
    return total


def main_thread_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process's main thread (tid == pid, from /proc/PID/task/PID).

    It runs consensus, execution and the event loop: its CPU per committed transaction is
    the serial cost that bounds a node's rate, whatever the other threads and worker
    processes add in parallel."""
    return cpu_seconds(f"{pid}/task/{pid}")


def execution_cpu_seconds(c: Cluster, i: int) -> float:
    """The node's own count of CPU seconds on its execution thread (0 if it has none)."""
    text = c.client(i).send("GET", "/metrics").decode()
    for family in text_string_to_metric_families(text):
        if family.name == EXECUTION_METRIC:
            return float(family.samples[0].value)
    return 0.0


def idle_cpu_per_s(c: Cluster, pids: list[int], seconds: float) -> tuple[list[float], list[float], list[float], float]:
    """Each node's CPU use per second with no load (consensus rounds, empty blocks, timers,
    the validators' prices), in all, on its two GIL-bound threads (main + execution) and in
    its worker processes (the p2p worker), and the blocks per second the idle chain made
    meanwhile."""
    before = [tree_cpu_seconds(p) for p in pids]
    process_before = [cpu_seconds(p) for p in pids]
    serial_before = [serial_cpu_seconds(c, i, p) for i, p in enumerate(pids)]
    t0, h0 = time.monotonic(), height(c)
    time.sleep(seconds)
    wall, blocks = time.monotonic() - t0, height(c) - h0
    tree = [tree_cpu_seconds(p) - b for p, b in zip(pids, before, strict=True)]
    process = [cpu_seconds(p) - b for p, b in zip(pids, process_before, strict=True)]
    return ([t / wall for t in tree],
            [(serial_cpu_seconds(c, i, p) - b) / wall for (i, p), b in zip(enumerate(pids), serial_before, strict=True)],
            [(t - pc) / wall for t, pc in zip(tree, process, strict=True)],
            blocks / wall)


def height(c: Cluster) -> int:
    return int(c.get(0, "/status")["latest_height"])


def serial_cpu_seconds(c: Cluster, i: int, pid: int) -> float:
    """CPU seconds so far of node ``i``'s main and execution threads together."""
    return main_thread_cpu_seconds(pid) + execution_cpu_seconds(c, i)


def measure(c: Cluster, home: str, tps: float, seconds: float, idle_s: float,
            batch_txs: int | None = None) -> dict[str, Any]:
    pids = [c.procs[i].pid for i in range(len(c.manifest.nodes))]
    idle, idle_serial, idle_workers, idle_blocks_per_s = idle_cpu_per_s(c, pids, idle_s)
    job = prepare(home, tps=tps, seconds=seconds)  # signing happens before the window
    before = [tree_cpu_seconds(p) for p in pids]
    process_before = [cpu_seconds(p) for p in pids]
    main_before = [main_thread_cpu_seconds(p) for p in pids]
    exec_before = [execution_cpu_seconds(c, i) for i in range(len(pids))]
    gen_before = time.process_time()
    h0 = height(c)
    t0 = time.monotonic()
    report = asyncio.run(run_load(job.urls, job.flow, tps=tps, seconds=seconds, accounts=job.accounts,
                                  lone=False, batch_txs=batch_txs))  # batches only: CPU per tx as before
    wall = time.monotonic() - t0
    loaded_blocks = height(c) - h0
    gen_cpu = time.process_time() - gen_before
    node_cpu = [tree_cpu_seconds(p) - b for p, b in zip(pids, before, strict=True)]
    process_cpu = [cpu_seconds(p) - b for p, b in zip(pids, process_before, strict=True)]
    main_cpu = [main_thread_cpu_seconds(p) - b for p, b in zip(pids, main_before, strict=True)]
    exec_cpu = [execution_cpu_seconds(c, i) - b for i, b in enumerate(exec_before)]
    committed = max(report.committed, 1)
    main_us = [cpu * 1e6 / committed for cpu in main_cpu]
    exec_us = [cpu * 1e6 / committed for cpu in exec_cpu]
    per_node_us = [cpu * 1e6 / committed for cpu in node_cpu]
    # what the txs added on top of the idle chain (blocks come faster under load, so this
    # slightly undercounts per-block costs; the total above is the upper figure)
    marginal_us = [(cpu - rate * wall) * 1e6 / committed for cpu, rate in zip(node_cpu, idle, strict=True)]
    # the node process's other threads (signature verification, the journal's fsyncs, the
    # executor's hand-offs) and its worker processes (the p2p worker), per committed tx
    other_threads_us = [(pc - m - e) * 1e6 / committed
                        for pc, m, e in zip(process_cpu, main_cpu, exec_cpu, strict=True)]
    workers_us = [(nc - pc) * 1e6 / committed for nc, pc in zip(node_cpu, process_cpu, strict=True)]
    serial_marginal_us = [(m + e - rate * wall) * 1e6 / committed
                          for m, e, rate in zip(main_cpu, exec_cpu, idle_serial, strict=True)]
    gen_us = gen_cpu * 1e6 / committed
    total_us = sum(per_node_us) + gen_us
    cores = os.cpu_count() or 1
    return {
        "tps_offered": tps, "batch_txs": batch_txs, "seconds": seconds, "committed": report.committed, "tx_per_s": report.tx_per_s,
        "p50_ms": report.p50_ms, "p99_ms": report.p99_ms, "rejected": report.rejected, "wall_s": wall,
        "node_cpu_us_per_tx": per_node_us, "node_cpu_us_per_tx_mean": sum(per_node_us) / len(per_node_us),
        "generator_cpu_us_per_tx": gen_us, "total_cpu_us_per_tx": total_us, "cores": cores,
        "node_cpu_util": [cpu / wall for cpu in node_cpu],
        "node_main_thread_cpu_us_per_tx": main_us, "node_main_thread_cpu_us_per_tx_mean": sum(main_us) / len(main_us),
        "node_execution_thread_cpu_us_per_tx": exec_us,
        "node_execution_thread_cpu_us_per_tx_mean": sum(exec_us) / len(exec_us),
        "node_other_threads_cpu_us_per_tx": other_threads_us, "node_workers_cpu_us_per_tx": workers_us,
        "node_idle_cpu_per_s": idle, "node_serial_idle_cpu_per_s": idle_serial,
        "node_workers_idle_cpu_per_s": idle_workers,
        "idle_blocks_per_s": idle_blocks_per_s, "loaded_blocks_per_s": loaded_blocks / wall,
        "loaded_txs_per_block": report.committed / max(1, loaded_blocks),
        "node_serial_idle_ms_per_block": [1000 * x / max(idle_blocks_per_s, 1e-9) for x in idle_serial],
        "node_serial_marginal_cpu_us_per_tx": serial_marginal_us,
        "node_serial_marginal_cpu_us_per_tx_mean": sum(serial_marginal_us) / len(serial_marginal_us),
        "node_marginal_cpu_us_per_tx": marginal_us,
        "ceiling_tx_per_s": cores * 1e6 / total_us,
        "ceiling_tx_per_s_without_generator": cores * 1e6 / (total_us - gen_us),
    }


def run_once(args: argparse.Namespace, cores: int | None) -> dict[str, Any]:
    """One devnet under load; with ``cores``, the devnet and the load generator are pinned to
    the first ``cores`` CPUs (the node processes inherit this process's affinity)."""
    everything = os.sched_getaffinity(0)
    if cores is not None:
        os.sched_setaffinity(0, sorted(everything)[:cores])
    try:
        with tempfile.TemporaryDirectory(prefix="bookchain-cpu-") as d:
            # a node's own consensus defaults: the idle figure is the one a devnet shows
            c = Cluster(Path(d), nodes=args.nodes, traders=args.traders, consensus=NODE_DEFAULTS)
            for i in range(args.nodes):
                c.set_config(i, "p2p", {"worker_process": args.p2p == "process"})
                c.set_config(i, "rpc", {"frontend_process": args.rpc == "frontend"})
            try:
                c.start_all()
                build = c.get(0, "/status").get("build", "?")
                r = measure(c, d, args.tps, args.seconds, args.idle_seconds, args.batch_txs)
            finally:
                c.stop_all()
    finally:
        os.sched_setaffinity(0, everything)
    return {**r, "build": build, "cores": cores or len(everything), "p2p": args.p2p, "rpc": args.rpc}


def print_run(args: argparse.Namespace, r: dict[str, Any]) -> None:
    rows: list[tuple[str, Any, str]] = [
        ("offered / committed", f"{args.tps:,.0f} / {r['tx_per_s']:,.0f}", "tx/s"),
        ("txs per request", r["batch_txs"] or f"{max(1, round(args.tps * BATCH_INTERVAL_S)):,} ({BATCH_INTERVAL_S} s of the rate)", ""),
        ("submit->commit p50 / p99", f"{r['p50_ms'] or 0:,.0f} / {r['p99_ms'] or 0:,.0f}", "ms"),
    ]
    for i, us in enumerate(r["node_cpu_us_per_tx"]):
        rows.append((f"node{i} CPU per committed tx: all (above idle) / main thread / execution thread",
                     f"{us:,.1f} ({r['node_marginal_cpu_us_per_tx'][i]:,.1f}) / "
                     f"{r['node_main_thread_cpu_us_per_tx'][i]:,.1f} / "
                     f"{r['node_execution_thread_cpu_us_per_tx'][i]:,.1f}", "us"))
    for i, us in enumerate(r["node_serial_marginal_cpu_us_per_tx"]):
        rows.append((f"node{i} main + execution thread above idle; other threads / worker processes (p2p, RPC front-end)",
                     f"{us:,.1f}; {r['node_other_threads_cpu_us_per_tx'][i]:,.1f} / "
                     f"{r['node_workers_cpu_us_per_tx'][i]:,.1f}", "us"))
    rows.append(("node CPU when idle (mean): all / main + execution thread / worker processes",
                 f"{100 * sum(r['node_idle_cpu_per_s']) / len(r['node_idle_cpu_per_s']):.1f} / "
                 f"{100 * sum(r['node_serial_idle_cpu_per_s']) / len(r['node_serial_idle_cpu_per_s']):.1f} / "
                 f"{100 * sum(r['node_workers_idle_cpu_per_s']) / len(r['node_workers_idle_cpu_per_s']):.1f}",
                 "% of a core"))
    rows.append(("under load: blocks / s, committed txs per block",
                 f"{r['loaded_blocks_per_s']:.1f}, {r['loaded_txs_per_block']:,.0f}",
                 ""))
    per_block = r["node_serial_idle_ms_per_block"]
    rows.append((f"idle: blocks / s, main + execution thread CPU per idle block, timers included (mean of {len(per_block)})",
                 f"{r['idle_blocks_per_s']:.1f}, {sum(per_block) / len(per_block):.2f}", "ms"))
    rows += [
        ("load generator CPU per committed tx", r["generator_cpu_us_per_tx"], "us"),
        ("whole devnet CPU per committed tx", r["total_cpu_us_per_tx"], "us"),
        (f"ceiling on {r['cores']} cores (all busy)", r["ceiling_tx_per_s"], "tx/s"),
        ("  same without the generator", r["ceiling_tx_per_s_without_generator"], "tx/s"),
    ]
    print_table(f"devnet CPU budget, {args.nodes} validators, {r['build']} build, {r['cores']} core(s), "
                f"p2p {'in a worker process' if r['p2p'] == 'process' else 'on the main thread'}", rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tps", type=float, default=1500, help="offered rate (keep it below saturation)")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--traders", type=int, default=64)
    ap.add_argument("--idle-seconds", type=float, default=5, help="idle window measured before the load")
    ap.add_argument("--p2p", choices=("process", "thread"), default="process",
                    help="libp2p in its worker process (the default) or on the node's main thread")
    ap.add_argument("--rpc", choices=("frontend", "node"), default="frontend",
                    help="clients' HTTP in the front-end process (node/frontend/) or on the node's main thread")
    ap.add_argument("--cores", default="", help="e.g. 1,2: one run per count, the devnet pinned to that many "
                    "CPUs (offer more than it commits to see how the committed rate scales)")
    ap.add_argument("--batch-txs", type=int, default=None,
                    help="txs per request (default: a tenth of a second of the rate): many small requests")
    args = ap.parse_args()
    counts: list[int | None] = [int(n) for n in args.cores.split(",")] if args.cores else [None]
    runs = []
    for cores in counts:
        runs.append(run_once(args, cores))
        print_run(args, runs[-1])
    sodium = libsodium_verify_per_s()
    print(f"libsodium ed25519 verify, one core, this run: {sodium:,.0f}/s")
    if len(runs) > 1:
        base = runs[0]
        for r in runs[1:]:
            print(f"committed rate on {r['cores']} cores / on {base['cores']}: "
                  f"{r['tx_per_s'] / max(base['tx_per_s'], 1e-9):.2f}x "
                  f"({base['tx_per_s']:,.0f} -> {r['tx_per_s']:,.0f} tx/s)")
    write_json("devnet_cpu", {**runs[-1], "runs": runs, "nodes": args.nodes, "traders": args.traders,
                              "libsodium_verify_per_s": sodium})


if __name__ == "__main__":
    main()
