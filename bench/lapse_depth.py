"""What reading the book's depth costs while a backlog of expired orders waits on a level.

Why: the depth readers (the mark's and funding's impact walks every block, /info l2Book
and the websocket books on every request) count only orders that have not lapsed
(state/lapse.py ``level_depth``). A level holding expired orders the bounded sweep has not
taken yet was read order by order on every call; it now counts each expired order once
into the level's expired sums (``lapse.count_expired``) and reads in O(1) after that.

Setup: the test harness chain (in memory, interpreted); N accounts x 1,000 good-til-time
bids on one BTC-SPOT level, one live bid below it; the first block past the expiry sweeps
``SWEEP_BUDGET`` of them. Measures the first read of the level on a node restarted there,
then (mean of 20 calls, after one warm-up call): ``lapse.level_depth`` of the level, the funding impact walk, the mark's impact
price, and ``lapse.depth`` (l2Book, 20 levels); then one empty block (its mark and funding
walks read the level). Prints a table and writes bench/results/lapse_depth.json.

    python -m bench.lapse_depth [accounts] [--spread]

``--spread``: the orders' expiries spread over the last second before the expiry (1,000
distinct ones), so the first read past it pops 1,000 expiries where one did.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import print_table, write_json
from bench.lapse_crosses import expired_backlog
from state import funding, lapse, prices
from tests.harness import BTC_SPOT


def _per_call_us(f: Callable[[], Any], n: int = 20) -> float:
    f()
    t = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t) / n * 1e6


def main(accounts: int, spread: bool) -> None:
    c, _ = expired_backlog(accounts, spread)
    ex, book, spec = c.ex, c.ex.books[BTC_SPOT], c.ex.markets[BTC_SPOT]
    left = len(book.orders) - 1
    level = book.bids[59_900]
    node = c.fork()  # a restarted node: nothing counted yet
    t = time.perf_counter()
    first = lapse.level_depth(node.ex, node.ex.books[BTC_SPOT].bids[59_900], False)
    first_us = (time.perf_counter() - t) * 1e6
    assert first == lapse.level_depth(ex, level, False)
    notional = 59_000 * 100 * spec.tick_value
    rows: list[tuple[str, Any, str]] = [
        ("expired orders left on the level", left, "orders"),
        ("first read after a restart", first_us, "us"),
        ("lapse.level_depth", _per_call_us(lambda: lapse.level_depth(ex, level, False)), "us/call"),
        ("funding.impact_level (bids)", _per_call_us(
            lambda: funding.impact_level(ex, book, True, spec.tick_value, notional)), "us/call"),
        ("prices.impact_price (bids)", _per_call_us(
            lambda: prices.impact_price(ex, book, True, spec.tick_size, spec.tick_value, notional)), "us/call"),
        ("lapse.depth, 20 levels (l2Book)", _per_call_us(lambda: lapse.depth(ex, BTC_SPOT, 20)), "us/call"),
    ]
    t = time.perf_counter()
    c.block()
    rows.append(("an empty block (sweeps SWEEP_BUDGET more)", (time.perf_counter() - t) * 1000, "ms"))
    kind = "1,000 distinct expiries" if spread else "one expiry"
    print_table(f"depth reads with {left:,} expired orders on one level ({accounts} accounts, {kind})", rows)
    write_json("lapse_depth_spread" if spread else "lapse_depth",
               {"accounts": accounts, "spread": spread, "rows": [{"name": n, "value": v, "unit": u} for n, v, u in rows]})


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60, "--spread" in sys.argv)
