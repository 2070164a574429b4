"""Orders that lapse together: the blocks after N accounts x M good-til-time orders expire
at one millisecond, and after N accounts' dead-man switches (each over M open orders) fall
due in one block.

Why: orders cost nothing to place, so a funded adversary can line up any number of them to
lapse at one moment; the block that removes them all at once stalls the chain. The sweep of
state/lifetimes.py removes at most ``SWEEP_BUDGET`` a block and leaves the rest to later
blocks (the matching engine and the book's readers skip what is lapsed meanwhile). This
prints, per scenario, the first block after the moment (the one that did all the work
before the budget), the slowest block until everything is swept, how many blocks that
took, and libsodium's one-core verify rate from the same run (this machine's speed moves
~2x from hour to hour: only ratios taken in one run compare).

Setup: an on-disk state store committed as a node commits it, the node's collector
settings (node/gctune.py); the orders are placed by pre-verified synthetic transactions
(bench/state_apply.py ``SyntheticBlocks``), 10,000 per block, bids on BTC-SPOT spread over
2,000 prices below the mid (they never cross). Four runs: the expiry alone; the expiry with
a sell crossing every bid in the first block (a live bid behind them); the dead-man
switches alone; the switches with every account placing an order in the first block
(each one's switch runs before it acts). Per run: the first block, the slowest and the
median until every order is gone, how many blocks that took, the most cancelled in one.

    python -m bench.lifetime_sweep [--accounts 80] [--orders 1000]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from typing import Any

from bench.common import libsodium_verify_per_s, print_table, write_json
from bench.state_apply import MIDS, SyntheticBlocks, make_chain
from node.gctune import tune_for_throughput
from state.keys import PrivateKey
from state.receipts import Cancelled
from state.tx import PlaceOrder, ScheduleCancel, Tif

PER_BLOCK = 10_000  # placements per setup block


def _placements(keys: list[PrivateKey], orders: int, expires_at: int | None) -> list[tuple[PrivateKey, Any]]:
    out: list[tuple[PrivateKey, Any]] = []
    for i in range(orders):
        for k in keys:
            price = MIDS[0] - 1_000 - (i * len(keys) + len(out)) % 2_000
            out.append((k, PlaceOrder(0, True, price, 5, Tif.GTC, False, None, expires_at)))
    return out


def _sweep(blocks: SyntheticBlocks, start_ms: int, total: int, reason: str,
           first: list[tuple[PrivateKey, Any]] | None = None) -> dict[str, Any]:
    """Apply blocks from ``start_ms`` until ``total`` orders were cancelled for ``reason``:
    the first with ``first``'s transactions, the others empty."""
    blocks.now = start_ms - 1000
    gc.collect()  # the setup's garbage is not the timed blocks' cost
    times: list[float] = []
    per_block: list[int] = []
    done = 0
    while done < total and len(times) < 10_000:
        t = time.perf_counter()
        r = blocks.block(first if first is not None and not times else [])
        times.append(time.perf_counter() - t)
        n = sum(1 for _i, e in r.events if isinstance(e, Cancelled) and e.reason == reason)
        per_block.append(n)
        done += n
    return {"first_block_ms": 1000 * times[0], "max_block_ms": 1000 * max(times),
            "median_block_ms": 1000 * sorted(times)[len(times) // 2], "blocks_to_sweep": len(times),
            "max_cancelled_in_a_block": max(per_block), "cancelled": done}


def run_gtt(n_accounts: int, orders: int, taker: bool = False) -> dict[str, Any]:
    """``taker``: the first block after the moment also holds a sell crossing every bid,
    with a live bid behind them (one transaction reaching the whole backlog)."""
    with tempfile.TemporaryDirectory() as tmp:
        _genesis, keys, sm = make_chain(n_accounts + 2, f"{tmp}/db")
        seller, behind, keys = keys[0], keys[1], keys[2:]
        blocks = SyntheticBlocks(sm, keys[0])
        expiry = blocks.now + 3_600_000
        items = _placements(keys, orders, expiry)
        for i in range(0, len(items), PER_BLOCK):
            blocks.block(items[i:i + PER_BLOCK])
        resting = sum(len(b.orders) for b in sm.ex.books.values())
        first = None
        if taker:
            low = MIDS[0] - 3_100
            blocks.block([(behind, PlaceOrder(0, True, low, 5, Tif.GTC, False, None))])
            first = [(seller, PlaceOrder(0, False, low, 5, Tif.IOC, False, None))]
        out = _sweep(blocks, expiry + 1, resting, "expired", first)
        sm.close()
    return {"resting": resting, **out}


def run_dead_man(n_accounts: int, orders: int, acting: bool = False) -> dict[str, Any]:
    """``acting``: every account sends a transaction in the first block at the deadline."""
    with tempfile.TemporaryDirectory() as tmp:
        _genesis, keys, sm = make_chain(n_accounts, f"{tmp}/db")
        blocks = SyntheticBlocks(sm, keys[0])
        items = _placements(keys, orders, None)
        for i in range(0, len(items), PER_BLOCK):
            blocks.block(items[i:i + PER_BLOCK])
        deadline = blocks.now + 3_600_000
        blocks.block([(k, ScheduleCancel(deadline)) for k in keys])
        resting = sum(len(b.orders) for b in sm.ex.books.values())
        first = [(k, PlaceOrder(0, True, MIDS[0] - 3_000, 5, Tif.GTC, False, None)) for k in keys] if acting else None
        out = _sweep(blocks, deadline, resting, "dead_man", first)
        fired = sum(1 for a in sm.ex.accounts.values() if a.dead_man is not None and a.dead_man[0] == 0)
        sm.close()
    return {"resting": resting, "switches_fired": fired, **out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=80)
    ap.add_argument("--orders", type=int, default=1000, help="orders per account")
    args = ap.parse_args()
    tune_for_throughput(freeze=False)  # the node's collector settings
    verify = libsodium_verify_per_s()
    runs = {
        "gtt": run_gtt(args.accounts, args.orders),
        "gtt_taker": run_gtt(args.accounts, args.orders, taker=True),
        "dead_man": run_dead_man(args.accounts, args.orders),
        "dead_man_acting": run_dead_man(args.accounts, args.orders, acting=True),
    }
    names = {"gtt": "expiry", "gtt_taker": "expiry + a taker crossing all",
             "dead_man": "dead-man", "dead_man_acting": "dead-man + every account acting"}
    rows: list[tuple[str, Any, str]] = [("libsodium verify, 1 core", verify, "/s")]
    for key, r in runs.items():
        name = names[key]
        rows += [
            (f"{name}: orders lapsing together", r["resting"], ""),
            (f"{name}: first block after the moment", r["first_block_ms"], "ms"),
            (f"{name}: slowest block until all are gone", r["max_block_ms"], "ms"),
            (f"{name}: median block until then", r["median_block_ms"], "ms"),
            (f"{name}: blocks until all are gone", r["blocks_to_sweep"], ""),
            (f"{name}: most cancelled in one block", r["max_cancelled_in_a_block"], ""),
        ]
    print_table(f"{args.accounts} accounts x {args.orders} orders lapsing at one moment", rows)
    write_json("lifetime_sweep", {"accounts": args.accounts, "orders_per_account": args.orders,
                                  "libsodium_verify_per_s_1core": verify, **runs})


if __name__ == "__main__":
    main()
