"""Orders cancelled behind a live head stay in their level's deque as dead entries (a
cancel is lazy, state/book.py). They are not state: a restarted node rebuilds each level from
the live orders only. So nothing that decides a result may count them, and a level is
rebuilt once they outnumber its live orders (plus ``LEVEL_SLACK``).
"""

from __future__ import annotations

from state import lapse, risk
from state.book import LEVEL_SLACK
from state.tx import Batch, Cancel, PlaceOrder, Tif
from tests.harness import BTC, BTC_SPOT, USDC, Chain, key, make_genesis

A, B, C, D, E = (key(i) for i in range(40, 45))
PX, BELOW, LIMIT = 59_000, 58_000, 57_000


def _bid(price: int, size: int = 10) -> PlaceOrder:
    return PlaceOrder(BTC_SPOT, True, price, size, Tif.GTC, False, None)


def _chain_with_dead_entries(dead: int) -> Chain:
    """A live head bid at PX, ``dead`` bids placed behind it at PX and cancelled, then a
    live bid of 1,000 lots at BELOW."""
    c = Chain(genesis=make_genesis(limits={"max_batch_actions": 256}))
    for k in (A, B, C, D, E):
        c.fund(k, USDC, 10**15)
        c.fund(k, BTC, 10**12)
    assert c.order(A, BTC_SPOT, True, PX, 10).status == "resting"
    for k, n in ((B, dead // 2), (C, dead - dead // 2)):
        for i in range(0, n, 256):
            r = c.run(k, Batch(tuple(_bid(PX) for _ in range(min(256, n - i)))))
            oids = [x.oid for x in r.results]
            c.run(k, Batch(tuple(Cancel(BTC_SPOT, oid, None) for oid in oids)))
    assert c.order(D, BTC_SPOT, True, BELOW, 1_000).status == "resting"
    return c


def test_dead_entries_do_not_count_against_a_walks_bound_and_a_restart_agrees() -> None:
    """The closing-order valuation (risk._walk_notional) reads at most WALK_ORDERS orders.
    Counting the dead entries behind the head against it, a node that had seen the cancels
    valued 1,010 lots at the limit where a restarted one reached the 1,000 lots at BELOW:
    the two would judge a closing order differently and fork."""
    c = _chain_with_dead_entries(1_200)
    restarted = c.fork()
    market = c.ex.markets[BTC_SPOT]
    seller = c.ex.accounts[E.address]
    args = (market, False, LIMIT, 1_010)
    walked = risk._walk_notional(c.ex, seller, *args)
    assert walked == risk._walk_notional(restarted.ex, restarted.ex.accounts[E.address], *args)
    assert walked == (PX * 10 + BELOW * 1_000) * market.tick_value  # the live book, not the limit
    book = c.ex.books[BTC_SPOT]
    assert lapse.crosses(c.ex, book, False, BELOW) == lapse.crosses(restarted.ex, restarted.ex.books[BTC_SPOT],
                                                                     False, BELOW)


def test_a_level_holds_at_most_its_live_orders_plus_the_slack_in_dead_entries() -> None:
    c = _chain_with_dead_entries(1_200)
    level = c.ex.books[BTC_SPOT].bids[PX]
    assert level.count == 1 and level.dead <= level.count + LEVEL_SLACK
    assert len(level.orders) == level.count + level.dead
    assert sum(1 for o in level.orders if o.live) == level.count
    # the taker still meets the head first and then the next level, as before
    r = c.result(E, PlaceOrder(BTC_SPOT, False, BELOW, 20, Tif.IOC, False, None))
    assert [(f.price, f.size) for f in r.fills] == [(PX, 10), (BELOW, 10)]
