"""Time from the heal of a real network cut to the next block (devnet/netcut.py).

A 4-validator devnet runs with every node in its own network namespace. Each scenario
cuts the network (``split``: validators 0,1 | 2,3; ``isolate``: validator 3 alone) for
some seconds, heals it, and measures:

- ``heal_to_block_s``: heal -> the first block above the highest height at the heal
  (a 2-2 split commits nothing while it lasts, so this is the stall after the heal);
- ``catch_up_s`` (isolate): heal -> the isolated validator reaches the height the others
  had at the heal (it must fetch the blocks it missed first);
- ``reconnects`` / ``peer_timeouts``: the p2p counters summed over the nodes (read once
  every cut link is back, or 5 s after the first block).

Run (root, Linux)::

    python -m bench.partition --cuts split:5,split:20,isolate:5,isolate:20
    python -m bench.partition --code /path/to/old/checkout   # the same against other code
    python -m bench.partition --peer-timeout-ms 0            # keepalive off

``--code`` runs the nodes from another checkout (PYTHONPATH), the harness from this one.
Results go to ``bench/results/partition.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import write_json
from devnet.netcut import NetCut, NetnsCluster, available
from node.client import NodeUnreachable, RpcError

NODES = 4
ISOLATED = 3
GROUP_A = (0, 1)
POLL_S = 0.05
COUNTERS_SETTLE_S = 5.0  # how long the cut links get to be redialled after the first block


@dataclass
class CutResult:
    kind: str
    seconds: float
    heal_to_block_s: float = -1.0
    catch_up_s: float = -1.0
    height_at_heal: int = 0
    reconnects: int = 0
    peer_timeouts: int = 0


class PartitionCluster(NetnsCluster):
    """The namespaced cluster plus the p2p counters this bench reports."""

    def net_counters(self) -> tuple[int, int]:
        reconnects = timeouts = 0
        for i in range(NODES):
            try:
                metrics = self.get(i, "/net_info", timeout=3)["metrics"]
            except (NodeUnreachable, RpcError, KeyError, TypeError):
                continue
            reconnects += int(metrics.get("reconnects", 0))
            timeouts += int(metrics.get("peer_timeouts", 0))
        return reconnects, timeouts


def _heights(c: PartitionCluster) -> list[int]:
    return [c.height(i) for i in range(NODES)]


def run_cut(c: PartitionCluster, kind: str, seconds: float, limit_s: float = 40.0) -> CutResult:
    """One cut of ``seconds``, healed, timed; the chain is left running."""
    result = CutResult(kind, seconds)
    base_reconnects, base_timeouts = c.net_counters()
    if kind == "split":
        c.net.split()
    else:
        c.net.isolate(ISOLATED)
    time.sleep(seconds)
    heights = _heights(c)
    others = max(h for i, h in enumerate(heights) if kind == "split" or i != ISOLATED)
    result.height_at_heal = max(heights)
    c.net.heal()
    healed = time.monotonic()
    while time.monotonic() - healed < limit_s:
        heights = _heights(c)
        now = time.monotonic() - healed
        if result.heal_to_block_s < 0 and max(heights) > result.height_at_heal:
            result.heal_to_block_s = round(now, 2)
        if kind == "isolate" and result.catch_up_s < 0 and heights[ISOLATED] >= others:
            result.catch_up_s = round(now, 2)
        if result.heal_to_block_s >= 0 and (kind == "split" or result.catch_up_s >= 0):
            break
        time.sleep(POLL_S)
    # The first block needs only a quorum's links back; give the other cut links a few
    # seconds to be redialled before reading the counters.
    cut_links = 4 if kind == "split" else NODES - 1
    settle = time.monotonic() + COUNTERS_SETTLE_S
    while True:
        reconnects, timeouts = c.net_counters()
        if reconnects - base_reconnects >= cut_links or time.monotonic() > settle:
            break
        time.sleep(POLL_S)
    result.reconnects, result.peer_timeouts = reconnects - base_reconnects, timeouts - base_timeouts
    return result


def run(root: Path, cuts: list[tuple[str, float]], code_root: Path | None = None,
        peer_timeout_ms: int | None = None) -> list[CutResult]:
    """Build the namespaces and the devnet, run ``cuts`` one after the other, tear down."""
    net = NetCut(NODES, GROUP_A)
    net.build()
    c: PartitionCluster | None = None
    try:
        p2p = None if peer_timeout_ms is None else {"peer_timeout_ms": peer_timeout_ms}
        code = code_root or Path(__file__).resolve().parent.parent
        c = PartitionCluster(root, net, code, p2p)
        c.start_all()
        out = []
        for kind, seconds in cuts:
            c.wait_height(max(_heights(c)) + 2, timeout=30)  # all nodes live and in step
            out.append(run_cut(c, kind, seconds))
        return out
    finally:
        if c is not None:
            c.stop_all()
        net.close()


def _parse_cuts(text: str) -> list[tuple[str, float]]:
    cuts = []
    for item in text.split(","):
        kind, _, secs = item.partition(":")
        if kind not in ("split", "isolate"):
            raise SystemExit(f"unknown cut {kind!r}: split or isolate")
        cuts.append((kind, float(secs)))
    return cuts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cuts", default="split:5,split:20,isolate:5,isolate:20")
    ap.add_argument("--code", type=Path, default=None, help="run the nodes from this checkout")
    ap.add_argument("--peer-timeout-ms", type=int, default=None)
    args = ap.parse_args(argv)
    why = available()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bc-partition-") as tmp:
        results = run(Path(tmp), _parse_cuts(args.cuts), args.code, args.peer_timeout_ms)
    print(f"{'cut':<8} {'s':>4} {'heal->block s':>14} {'catch-up s':>11} {'reconnects':>11} {'timeouts':>9}")
    for r in results:
        catch = f"{r.catch_up_s:.2f}" if r.kind == "isolate" else "-"
        print(f"{r.kind:<8} {r.seconds:>4.0f} {r.heal_to_block_s:>14.2f} {catch:>11} {r.reconnects:>11} "
              f"{r.peer_timeouts:>9}")
    write_json("partition", {"code": str(args.code or "this checkout"), "peer_timeout_ms": args.peer_timeout_ms,
                              "cuts": [asdict(r) for r in results]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
