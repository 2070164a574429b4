"""Soak: a 4-validator devnet with retention and snapshots under a steady signed load for
a long time, sampling each node's RSS and on-disk size, to show bounded memory and disk
growth proportional to retained data.

    python -m bench.soak [--minutes 10] [--tps 500] [--retain 500] [--snapshot-every 200]

Prints a table over time and writes bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import current_rss_mb, write_json
from devnet.cluster import Cluster
from devnet.load import prepare, run_load


def disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--tps", type=float, default=500)
    ap.add_argument("--retain", type=int, default=500)
    ap.add_argument("--snapshot-every", type=int, default=200)
    ap.add_argument("--chunk-seconds", type=float, default=30)
    args = ap.parse_args()
    storage = {"storage": {"retain_blocks": args.retain, "snapshot_interval": args.snapshot_every}}
    samples: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bookchain-soak-") as d:
        c = Cluster(Path(d), sections=dict.fromkeys(range(4), storage), traders=32)
        try:
            c.start_all()
            end = time.monotonic() + args.minutes * 60
            committed = 0
            print(f"{'min':>6} {'height':>7} {'committed':>10} " + " ".join(f"rss{i} MB" for i in range(4))
                  + " " + " ".join(f"disk{i} MB" for i in range(4)))
            t0 = time.monotonic()
            while time.monotonic() < end:
                job = prepare(d, tps=args.tps, seconds=args.chunk_seconds)
                report = asyncio.run(run_load(job.urls, job.flow, tps=args.tps, seconds=args.chunk_seconds,
                                              accounts=job.accounts))
                committed += report.committed
                s = {"minutes": round((time.monotonic() - t0) / 60, 2), "height": c.height(0), "committed": committed,
                     "rss_mb": [round(current_rss_mb(c.procs[i].pid), 1) for i in range(4)],
                     "disk_mb": [round(disk_mb(Path(c.manifest.nodes[i].home) / "data"), 1) for i in range(4)],
                     "tx_per_s": report.tx_per_s, "p99_ms": report.p99_ms}
                samples.append(s)
                print(f"{s['minutes']:>6} {s['height']:>7} {committed:>10} "
                      + " ".join(f"{x:>8}" for x in s["rss_mb"]) + " " + " ".join(f"{x:>9}" for x in s["disk_mb"]),
                      flush=True)
        finally:
            c.stop_all()
    first, last = samples[0], samples[-1]
    write_json("soak", {"samples": samples, "rss_growth_mb": max(b - a for a, b in zip(first["rss_mb"], last["rss_mb"], strict=True)),
                        "disk_growth_mb": max(b - a for a, b in zip(first["disk_mb"], last["disk_mb"], strict=True)),
                        "args": vars(args)})


if __name__ == "__main__":
    main()
