"""What an ALO or IOC costs while a backlog of lapsed orders waits on a level it crosses.

Why: ``lapse.crosses`` judges an ALO or IOC by the orders still good; lapsed orders are not
consumed by reading them, so an unbounded read made every such order read the whole
backlog the sweep has not taken yet. It reads at most ``lapse.CROSS_SCAN`` resting orders.

Setup: the test harness chain (in memory, interpreted); N accounts x 1,000 good-til-time
bids on one BTC-SPOT level, one live bid below them; the first block past the expiry
sweeps ``SWEEP_BUDGET`` of them. Prints ``lapse.crosses`` per call (mean of 20), then a
block of 200 ALO sells crossing the level (the harness also compares the store with
memory after the block: most of the block's time with a large book).

    python -m bench.lapse_crosses [accounts]
"""

from __future__ import annotations

import sys
import time

from state import lapse
from state.keys import PrivateKey
from state.tx import Batch, PlaceOrder, Tif
from tests.harness import BTC, BTC_SPOT, USDC, Chain, key, make_genesis


def expired_backlog(accounts: int, spread: bool = False) -> tuple[Chain, PrivateKey]:
    """The chain of this bench and bench/lapse_depth.py: ``accounts`` makers x 1,000
    good-til-time bids at 59,900 on BTC-SPOT, one live bid at 59,000 by the returned key,
    and the first block past the expiry (its sweep took ``SWEEP_BUDGET`` of them).
    ``spread``: the expiries spread over the last second before it (1,000 distinct ones)."""
    c = Chain(genesis=make_genesis(limits={"max_batch_actions": 256}))
    makers = [key(100 + i) for i in range(accounts)]
    mm = key(99)
    for k in (*makers, mm):
        c.fund(k, USDC, 10**15)
        c.fund(k, BTC, 10**12)
    expiry = c.time + 3_600_000
    n = 0
    for k in makers:
        for _ in range(4):
            c.run(k, Batch(tuple(PlaceOrder(BTC_SPOT, True, 59_900, 10, Tif.GTC, False, None,
                                            expiry - (n + i) % 1000 if spread else expiry)
                                 for i in range(250))))
            n += 250
    c.result(mm, PlaceOrder(BTC_SPOT, True, 59_000, 10, Tif.GTC, False, None))
    c.time = expiry
    c.block()
    return c, mm


def main(accounts: int) -> None:
    c, mm = expired_backlog(accounts)
    book = c.ex.books[BTC_SPOT]
    print(f"lapsed orders left after the first sweep: {len(book.orders) - 1}")
    t = time.perf_counter()
    for _ in range(20):
        lapse.crosses(c.ex, book, False, 59_500)
    print(f"lapse.crosses: {(time.perf_counter() - t) / 20 * 1000:.3f} ms a call")
    alos = [c.sign(mm, PlaceOrder(BTC_SPOT, False, 59_500 + i % 50, 10, Tif.ALO, False, None)) for i in range(200)]
    t = time.perf_counter()
    r = c.block(*alos)
    codes = sorted({x.code.name for x in r.receipts})
    print(f"a block of 200 ALO sells: {(time.perf_counter() - t) * 1000:.0f} ms ({', '.join(codes)})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
