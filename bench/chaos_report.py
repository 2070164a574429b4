"""The long chaos run: every scenario over several seeds, as a table and JSON.

    python -m bench.chaos_report [--seeds 1,2,3] [--seconds 30] [--scenarios kill9,pause]

Re-run a failure with its scenario name and seed. Writes bench/results/chaos.json.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.common import write_json
from devnet.chaos import SCENARIOS, run_scenario


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--scenarios", default=",".join(sorted(SCENARIOS)))
    args = ap.parse_args()
    rows = []
    for name in args.scenarios.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            with tempfile.TemporaryDirectory(prefix="bookchain-chaos-") as d:
                r = run_scenario(name, Path(d), seed, args.seconds)
            rows.append(r.as_dict())
            print(f"{name:<28} seed={seed:<3} {'ok' if r.ok else 'FAIL'}  {r.errors}", flush=True)
    head = ("scenario", "seed", "dur s", "acked", "found", "forks", "app-hash mism.", "stall s", "stall w/ 3 up", "replay")
    print("\n" + " | ".join(head))
    for r in rows:
        print(" | ".join(str(x) for x in (r["name"], r["seed"], r["duration_s"], r["acked"], r["found"], r["forks"],
                                         r["app_hash_mismatches"], r["longest_stall_s"], r["stall_with_quorum_s"],
                                         r["replay_ok"])))
    write_json("chaos", {"runs": rows, "all_ok": all(r["ok"] for r in rows)})


if __name__ == "__main__":
    main()
