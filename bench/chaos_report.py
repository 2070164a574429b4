"""The long chaos run, as a table and JSON.

In-process mode (any machine): every scenario of devnet/chaos.py over several seeds::

    python -m bench.chaos_report [--seeds 1,2,3] [--seconds 30] [--scenarios kill9,pause]

Network-namespace mode (root, Linux; devnet/chaosnet.py): one cluster under a tracked
load, a seeded sequence of perturbations with recovery between them::

    python -m bench.chaos_report --netns --perturbations 100 --seed 1 [--rate 2000] [--kinds cut_one,...]

Re-run a failure with its scenario name (or kinds) and seed. Writes
bench/results/chaos.json or bench/results/chaos_netns.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import libsodium_verify_per_s, write_json
from devnet.chaos import SCENARIOS, run_scenario


def in_process(args: argparse.Namespace) -> int:
    rows = []
    for name in args.scenarios.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            with tempfile.TemporaryDirectory(prefix="bookchain-chaos-") as d:
                r = run_scenario(name, Path(d), seed, args.seconds)
            rows.append(r.as_dict())
            print(f"{name:<28} seed={seed:<3} {'ok' if r.ok else 'FAIL'}  {r.errors}", flush=True)
    head = ("scenario", "seed", "dur s", "acked", "found", "forks", "app-hash mism.", "stall s", "stall w/ 3 up", "replay")
    print("\n" + " | ".join(head))
    for row in rows:
        print(" | ".join(str(row[k]) for k in ("name", "seed", "duration_s", "acked", "found", "forks",
                                                "app_hash_mismatches", "longest_stall_s", "stall_with_quorum_s",
                                                "replay_ok")))
    write_json("chaos", {"runs": rows, "all_ok": all(r["ok"] for r in rows)})
    return 0 if all(r["ok"] for r in rows) else 1


def netns(args: argparse.Namespace) -> int:
    from devnet import chaosnet

    why = chaosnet.available()
    if why:
        print(f"cannot run the namespace mode: {why}", file=sys.stderr)
        return 2
    kinds = tuple(args.kinds.split(",")) if args.kinds else chaosnet.KINDS
    unknown = set(kinds) - set(chaosnet.KINDS)
    if unknown:
        print(f"unknown kinds {sorted(unknown)}; known: {','.join(chaosnet.KINDS)}", file=sys.stderr)
        return 2

    def progress(p: chaosnet.Perturbation) -> None:
        print(f"#{p.index:<3} {p.kind:<20} victims={p.victims} held={p.held_s:.1f}s catch-up={p.catch_up_s:.2f}s "
              f"stall/q={p.stall_with_quorum_s:.2f}s found={p.acked_found} h={p.heights} {p.detail} {p.error}",
              flush=True)

    with tempfile.TemporaryDirectory(prefix="bookchain-chaosns-") as d:
        r = chaosnet.run(Path(d), args.perturbations, args.seed, args.rate, kinds, progress, warmup_s=args.warmup,
                         keep_logs=args.keep_logs)
    doc = {**r.as_dict(), "libsodium_verify_per_s": round(libsodium_verify_per_s())}  # the yardstick, this run
    print_table(doc)
    write_json("chaos_netns", {"command": " ".join(sys.argv), **doc})
    return 0 if r.ok else 1


def print_table(d: dict[str, Any]) -> None:
    rates = d["rates"]
    print(f"\nseed {d['seed']}, {len(d['perturbations'])} perturbations in {d['duration_s']} s "
          f"(capacity measured {d['capacity_per_s']} tx/s; load {d['rate_target']} tx/s asked; submitted {rates['submitted_per_s']}/s, acked {rates['acked_per_s']}/s, "
          f"committed {rates['committed_per_s']}/s)")
    print(f"submitted {d['submitted']}, admitted {d['acked']}, refused {d['refused_by_code']}, "
          f"unanswered {d['unanswered']} (of which committed {d['committed_unanswered']})")
    print(f"commit-acknowledged {d['commit_acked']}, of those not on every node: {d['lost_commit_acked']}; "
          f"admitted and found on all nodes {d['found_all']} / {d['acked']}; admitted, never committed {d['lost']} "
          f"{d['lost_by']}")
    print(f"forks {d['forks']}, app-hash mismatches {d['app_hash_mismatches']}, "
          f"refused but committed {d['refused_but_committed']}")
    print(f"longest stall with a connected quorum {d['longest_stall_with_quorum_s']} s "
          f"(any stall {d['longest_stall_s']} s), heights {d['heights']}")
    print(f"libsodium ed25519 verify, one core, right after the run: {d['libsodium_verify_per_s']:,}/s")
    print(f"\n{'kind':<20} {'n':>3} {'catch-up p50 s':>15} {'max s':>7} {'stall w/ quorum max s':>22} {'errors':>6}")
    for kind, row in d["by_kind"].items():
        print(f"{kind:<20} {row['count']:>3} {row['catch_up_p50_s']!s:>15} {row['catch_up_max_s']!s:>7} "
              f"{row['stall_with_quorum_max_s']:>22} {row['errors']:>6}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--scenarios", default=",".join(sorted(SCENARIOS)))
    ap.add_argument("--netns", action="store_true", help="the network-namespace mode (root)")
    ap.add_argument("--perturbations", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=float, default=0.0,
                    help="tx/s offered (default 0: measure the capacity on this cluster first, offer half)")
    ap.add_argument("--kinds", default="", help="comma-separated perturbation kinds (default: all)")
    ap.add_argument("--keep-logs", type=Path, default=None, help="copy the nodes' logs here at the end")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of load before the first perturbation")
    args = ap.parse_args()
    sys.exit(netns(args) if args.netns else in_process(args))


if __name__ == "__main__":
    main()
