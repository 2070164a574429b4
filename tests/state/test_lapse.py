"""Orders lapsing together (state/lifetimes.py's bounded sweep, state/lapse.py): each block
removes at most ``SWEEP_BUDGET``, the rest later; meanwhile nothing fills or counts a lapsed
order, a due account acting runs its switch first, and a node restarted at any height
computes the same chain. Blocks of the test chain are 1,000 ms apart (``Chain.block``).
"""

from __future__ import annotations

from typing import Any

import pytest

from state import funding, lapse, lifetimes, prices, risk
from state.book import NO_EXPIRY
from state.events import DeadManFired
from state.genesis import Genesis
from state.lifetimes import SWEEP_BUDGET
from state.receipts import Cancelled
from state.tx import Batch, Cancel, PlaceOrder, ScheduleCancel, Tif
from tests.harness import BTC, BTC_SPOT, USDC, Chain, key, make_genesis

A, B, C, D, E = (key(i) for i in range(30, 35))


def _chain(genesis: Genesis | None = None) -> Chain:
    c = Chain(genesis=genesis)
    for k in (A, B, C, D, E):
        c.fund(k, USDC, 10**15)
        c.fund(k, BTC, 10**12)
    return c


def _bid(price: int, expires_at: int | None = None, size: int = 10) -> PlaceOrder:
    return PlaceOrder(BTC_SPOT, True, price, size, Tif.GTC, False, None, expires_at)


def _cancels(result: Any, reason: str) -> list[int]:
    return [e.oid for _, e in result.events if isinstance(e, Cancelled) and e.reason == reason]


def _fired(result: Any) -> list[DeadManFired]:
    return [e for _, e in result.events if isinstance(e, DeadManFired)]


def test_the_sweep_does_at_most_its_budget_a_block_and_then_the_rest() -> None:
    """More than a block's budget of orders expire at one millisecond: the first block past
    it removes ``SWEEP_BUDGET`` (the earliest oids), the next the rest."""
    c = _chain(make_genesis(limits={"max_batch_actions": 256}))
    expiry = c.time + 3_600_000
    per_account = SWEEP_BUDGET // 5 + 40
    for k in (A, B, C, D, E):
        for i in range(0, per_account, 256):
            n = min(256, per_account - i)
            r = c.run(k, Batch(tuple(_bid(58_000 + (i + j) % 900, expiry) for j in range(n))))
            assert all(x.status == "resting" for x in r.results)
    oids = sorted(oid for b in c.ex.books.values() for oid in b.orders)
    assert len(oids) == 5 * per_account > SWEEP_BUDGET
    c.time = expiry  # the next block is past the expiry
    first = c.block()
    assert _cancels(first, "expired") == oids[:SWEEP_BUDGET]
    second = c.block()
    assert _cancels(second, "expired") == oids[SWEEP_BUDGET:]
    assert not any(b.orders for b in c.ex.books.values())
    assert _cancels(c.block(), "expired") == []


def test_a_taker_removes_an_expired_order_it_reaches_and_never_fills_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", 0)  # nothing swept: matching meets it
    c = _chain()
    expiry = c.time + 5_000
    gtt = c.result(A, _bid(59_500, expiry)).oid
    gtc = c.result(B, _bid(59_000)).oid
    c.time = expiry - 1_000
    at_expiry = c.block(c.sign(C, PlaceOrder(BTC_SPOT, False, 59_500, 4, Tif.IOC, False, None)))
    assert c.time == expiry  # good through its expiry: this block may still fill it
    assert [f.maker_oid for f in at_expiry.receipts[0].results[0].fills] == [gtt]
    r = c.block(c.sign(C, PlaceOrder(BTC_SPOT, False, 59_000, 10, Tif.IOC, False, None)))
    result = r.receipts[0].results[0]
    assert [(f.maker_oid, f.size) for f in result.fills] == [(gtc, 10)]
    assert _cancels(r, "expired") == [gtt]
    assert gtt not in c.ex.books[BTC_SPOT].orders and gtt not in c.ex.accounts[A.address].open_orders


def test_book_readers_do_not_count_an_expired_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """l2Book (lapse.depth), the impact prices of the mark and of funding, and the closing
    walk of the risk code see the book without an expired order the sweep has not taken."""
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", 0)
    c = _chain()
    expiry = c.time + 10_000
    c.result(A, _bid(59_800, expiry, size=1_000))
    c.result(A, _bid(59_700, size=5))
    c.result(B, _bid(59_700, expiry, size=7))  # shares a level with a live order
    c.result(B, _bid(59_600, size=1_000))
    ex, book, spec = c.ex, c.ex.books[BTC_SPOT], c.ex.markets[BTC_SPOT]
    notional = 59_700 * 500 * spec.tick_value
    assert lapse.depth(ex, BTC_SPOT, 3)[0] == [(59_800, 1_000, 1), (59_700, 12, 2), (59_600, 1_000, 1)]
    assert funding.impact_level(ex, book, True, spec.tick_value, notional) == 59_800
    c.time = expiry
    c.block()
    assert len(book.orders) == 4  # expired, not swept
    assert lapse.depth(ex, BTC_SPOT, 3)[0] == [(59_700, 5, 1), (59_600, 1_000, 1)]
    assert funding.impact_level(ex, book, True, spec.tick_value, notional) == 59_600
    avg = prices.impact_price(ex, book, True, spec.tick_size, spec.tick_value, 59_700 * 5 * spec.tick_value)
    assert avg == 59_700 * spec.tick_size
    walked = risk._walk_notional(ex, ex.accounts[C.address], spec, False, 59_000, 6)
    assert walked == (59_700 * 5 + 59_600) * spec.tick_value
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", 10)
    c.block()  # swept
    assert lapse.firm_depth(ex, book.bids[59_700], False) == 5
    assert book.bids[59_700].floor == NO_EXPIRY  # the level is back on its O(1) path


def test_due_switches_are_bounded_lapse_meanwhile_and_run_before_their_account_acts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", 3)
    c = _chain()
    mine = {k.address: [c.result(k, _bid(59_000 + 10 * i + j)).oid for i in range(4)] for j, k in enumerate((A, B))}
    deadline = c.time + 10_000
    for k in (A, B):
        assert c.result(k, ScheduleCancel(deadline)).code == 0
    c.time = deadline - 1_000
    first = c.block()  # at the deadline: both due, budget 3
    assert len(_cancels(first, "dead_man")) == 3 and _fired(first) == []
    # a taker reaching the rest fills none of them: they lapsed at the deadline
    r = c.block(c.sign(C, PlaceOrder(BTC_SPOT, False, 59_000, 100, Tif.IOC, False, None)))
    assert r.receipts[0].results[0].fills == ()
    assert len(_cancels(r, "dead_man")) == 8 - 3  # the sweep's next 2, then matching's 3
    assert not any(oid in c.ex.books[BTC_SPOT].orders for oids in mine.values() for oid in oids)
    fired = _fired(r) + _fired(c.block())  # one completed in the taker's block, the other next
    assert sorted(e.account for e in fired) == sorted(mine)
    assert all(c.ex.accounts[k.address].dead_man[0] == 0 for k in (A, B))
    assert _fired(c.block()) == []


def test_a_due_account_acting_runs_its_switch_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", 0)  # the sweep never reaches it
    c = _chain()
    old = c.result(A, _bid(59_000)).oid
    deadline = c.time + 10_000
    c.result(A, ScheduleCancel(deadline))
    c.time = deadline - 1_000
    r = c.block(c.sign(A, _bid(59_100)))
    assert _cancels(r, "dead_man") == [old]
    assert [e.account for e in _fired(r)] == [A.address]
    new = r.receipts[0].results[0].oid
    assert c.ex.accounts[A.address].dead_man[0] == 0
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", 100)
    c.block()
    c.block()
    assert new in c.ex.books[BTC_SPOT].orders  # placed after the switch ran: it stays


def test_a_restart_at_any_height_computes_the_same_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node restarted mid-sweep has no stale heap entries, a running one has: the budget
    counts only what changes the state, so both cancel the same orders in the same blocks."""
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", 4)
    c = _chain()
    expiry = c.time + 30_000
    for j, k in enumerate((A, B, C)):
        c.run(k, Batch(tuple(_bid(58_000 + 10 * i + j, expiry) for i in range(6))))
    gone = c.result(D, _bid(58_500, expiry)).oid
    c.result(D, Cancel(BTC_SPOT, gone, None))  # a stale expiry entry at the very moment
    for k in (D, E):
        c.run(k, Batch(tuple(_bid(57_000 + 10 * i) for i in range(5))))
        c.result(k, ScheduleCancel(expiry - 5_000))
        c.result(k, ScheduleCancel(expiry + 1))  # renewed: a stale switch entry
    setup = len(c.blocks)
    c.time = expiry - 1_000
    c.block()  # at the expiry: nothing yet
    c.block()  # expiry + 1000: both kinds due
    c.block(c.sign(A, PlaceOrder(BTC_SPOT, False, 57_000, 3, Tif.IOC, False, None)))  # meets lapsed orders
    c.block(c.sign(E, _bid(57_500)))  # a due account acts
    for _ in range(8):
        c.block()
    assert not any(o.expires_at for b in c.ex.books.values() for o in b.orders.values())
    assert all(c.ex.accounts[k.address].dead_man[0] == 0 for k in (D, E))
    hashes = [b.app_hash for b in _replay(c)]
    for restart in range(setup, len(c.blocks)):
        node = Chain(genesis=c.genesis)
        for blk in c.blocks[:restart]:
            node.sm.apply_block(blk)
        node = node.fork()  # what a node restarted at this height holds
        for blk in c.blocks[restart:]:
            assert node.sm.apply_block(blk).app_hash == hashes[blk.height - 1], (restart, blk.height)


def _replay(c: Chain) -> list[Any]:
    node = Chain(genesis=c.genesis)
    return [node.sm.apply_block(blk) for blk in c.blocks]
