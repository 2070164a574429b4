"""Orders lapsing together (state/lifetimes.py's bounded sweep, state/lapse.py): each block
removes at most ``SWEEP_BUDGET``, the rest later; meanwhile nothing fills or counts a lapsed
order, a due account acting runs its switch first, and a node restarted at any height
computes the same chain. Blocks of the test chain are 1,000 ms apart (``Chain.block``).
"""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from state import funding, lapse, lifetimes, matching, prices, records, risk
from state.book import NO_EXPIRY
from state.errors import Code
from state.events import DeadManFired, Triggered
from state.genesis import Genesis
from state.lifetimes import SWEEP_BUDGET, TX_LAPSE_BUDGET
from state.receipts import Cancelled, Fill
from state.tx import Batch, Cancel, PlaceOrder, PlaceTrigger, ScheduleCancel, Tif
from tests.harness import BTC, BTC_PERP, BTC_SPOT, USDC, Chain, key, make_genesis
from tests.state.riskkit import USD, risk_chain, set_prices

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
    behind = c.result(D, _bid(58_990)).oid
    deadline = c.time + 10_000
    for k in (A, B):
        assert c.result(k, ScheduleCancel(deadline)).code == 0
    c.time = deadline - 1_000
    first = c.block()  # at the deadline: both due, budget 3
    assert len(_cancels(first, "dead_man")) == 3 and _fired(first) == []
    # a taker reaching the rest fills none of them (they lapsed at the deadline), only D's bid behind them
    r = c.block(c.sign(C, PlaceOrder(BTC_SPOT, False, 58_990, 100, Tif.IOC, False, None)))
    assert [f.maker_oid for f in r.receipts[0].results[0].fills] == [behind]
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


def test_a_post_only_order_is_judged_without_lapsed_orders(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ALO that crosses only an expired ask rests (and removes the ask, as a taker
    would); an IOC that crosses only it has nothing to match."""
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", 0)
    c = _chain()
    expiry = c.time + 5_000
    ask = c.result(A, PlaceOrder(BTC_SPOT, False, 60_000, 10, Tif.GTC, False, None, expiry)).oid
    c.time = expiry
    r = c.block(c.sign(B, PlaceOrder(BTC_SPOT, True, 60_000, 10, Tif.IOC, False, None)))
    assert r.receipts[0].code == Code.IOC_NO_FILL and ask in c.ex.books[BTC_SPOT].orders  # refused: nothing changed
    r = c.block(c.sign(B, PlaceOrder(BTC_SPOT, True, 60_000, 10, Tif.ALO, False, None)))
    assert r.receipts[0].results[0].status == "resting"
    assert _cancels(r, "expired") == [ask]
    assert c.ex.books[BTC_SPOT].best_bid() == 60_000 and c.ex.books[BTC_SPOT].best_ask() is None


def test_a_due_accounts_trigger_is_cancelled_instead_of_firing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", 0)
    c = risk_chain()
    for k in (A, B):
        c.fund(k, USDC, 1_000_000 * USD)
        c.fund(k, BTC, 100 * 10**8)
    c.result(B, _bid(58_500, size=5))
    r = c.result(A, PlaceTrigger(BTC_SPOT, False, 10, 59_000, 1, True, 0, False, None))  # a stop-market sell
    assert r.status == "waiting"
    stop = r.oid
    deadline = c.time + 10_000
    c.result(A, ScheduleCancel(deadline))
    c.time = deadline
    set_prices(c, btc=59_000 * USD)  # the stop's condition holds, after A's deadline
    assert [e for _, e in c.last.events if isinstance(e, Triggered)] == []
    assert _cancels(c.last, "dead_man") == [stop]
    assert stop not in c.ex.triggers and not any(isinstance(e, Fill) for _, e in c.last.events)


_step = st.one_of(
    st.tuples(st.just("gtt"), st.integers(0, 2), st.integers(0, 3)),  # expiry: one of 4 moments
    st.tuples(st.just("gtc"), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("switch"), st.integers(0, 2), st.integers(0, 3)),
    st.tuples(st.just("take"), st.integers(0, 2), st.integers(0, 1)),  # an IOC sell into the bids
    st.tuples(st.just("wait"), st.just(0), st.integers(1, 4)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_step, min_size=1, max_size=30))
def test_no_fill_on_a_lapsed_order_the_sweep_is_bounded_and_finishes(steps: list[tuple[str, int, int]]) -> None:
    budget = 2
    with patch.object(lifetimes, "SWEEP_BUDGET", budget):
        c = _chain()
        keys = (A, B, C)
        base = c.time + 6_000
        moments = [base + 2_000 * i for i in range(4)]
        expiry_of: dict[int, int] = {}  # oid -> expiry
        deadline_of: dict[bytes, int] = {}  # armed once per account, never renewed
        for i, (kind, who, arg) in enumerate(steps):
            k = keys[who]
            tx: list[bytes] = []
            if kind == "gtt" and moments[arg] > c.time + 1_000:
                tx = [c.sign(k, Batch(tuple(_bid(59_500 - 10 * i - j, moments[arg]) for j in range(6))))]  # the older the better
            elif kind == "gtc":
                tx = [c.sign(k, _bid(58_500 - 10 * i))]
            elif kind == "switch" and k.address not in deadline_of and moments[arg] >= c.time + 6_000:
                tx = [c.sign(k, ScheduleCancel(moments[arg]))]
                deadline_of[k.address] = moments[arg]
            elif kind == "take":
                tx = [c.sign(k, PlaceOrder(BTC_SPOT, False, 57_000, 40, Tif.IOC, False, None))]
            else:
                c.time += 1_000 * arg
            r = c.block(*tx)
            now = c.time
            swept = [e for i, e in r.events if i == -1 and isinstance(e, Cancelled)]
            assert len(swept) <= budget + (1 if any(isinstance(e, DeadManFired) for _, e in r.events) else 0)
            for rec in r.receipts:
                for res in rec.results or ():
                    if res.oid is not None and res.status == "resting" and kind == "gtt":
                        expiry_of[res.oid] = moments[arg]
                    for f in res.fills:
                        assert expiry_of.get(f.maker_oid, now) >= now  # never past its expiry
                        deadline = deadline_of.get(f.maker, 0)
                        assert not (0 < deadline <= now) or c.ex.accounts[f.maker].dead_man[0] == 0
        for _ in range(40):
            c.block()
        now = c.time
        assert all(not o.expires_at or o.expires_at >= now for b in c.ex.books.values() for o in b.orders.values())
        assert all(a.dead_man is None or not 0 < a.dead_man[0] <= now for a in c.ex.accounts.values())
        assert c.fork().ex.snapshot_records() == c.ex.snapshot_records()


def test_what_transactions_remove_in_a_block_is_bounded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """One taker crossing a backlog of lapsed orders removes at most ``TX_LAPSE_BUDGET`` of
    them in its block, then passes over the rest (left on the book, for the sweep or a later
    block's takers) to the live bid behind them."""
    assert TX_LAPSE_BUDGET >= 1
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", 0)
    monkeypatch.setattr(lifetimes, "TX_LAPSE_BUDGET", 3)
    c = _chain()
    expiry = c.time + 10_000
    lapsing = [x.oid for x in c.run(A, Batch(tuple(_bid(59_500 - i, expiry) for i in range(5)))).results]
    behind = c.result(B, _bid(59_000)).oid
    c.time = expiry
    r = c.block(c.sign(C, PlaceOrder(BTC_SPOT, False, 59_000, 10, Tif.IOC, False, None)))
    assert _cancels(r, "expired") == lapsing[:3]
    assert [(f.maker_oid, f.size) for f in r.receipts[0].results[0].fills] == [(behind, 10)]
    assert sorted(c.ex.books[BTC_SPOT].orders) == lapsing[3:]  # passed over, not removed
    r = c.block(c.sign(C, PlaceOrder(BTC_SPOT, False, 59_000, 10, Tif.GTC, False, None)))
    assert _cancels(r, "expired") == lapsing[3:] and r.receipts[0].results[0].status == "resting"


def test_a_taker_past_the_allowance_reads_at_most_cross_scan_orders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Passing over lapsed orders it may no longer remove, a taker reads at most
    ``CROSS_SCAN`` resting orders: a good order further back is not reached in this block
    (lapsed orders are not consumed by reading them, so without the bound every taker would
    read the whole backlog)."""
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", 0)
    monkeypatch.setattr(lifetimes, "TX_LAPSE_BUDGET", 0)
    monkeypatch.setattr(lapse, "CROSS_SCAN", 4)
    c = _chain()
    expiry = c.time + 10_000
    c.run(A, Batch(tuple(_bid(59_500, expiry) for _ in range(3))))
    near = c.result(B, _bid(59_500, size=2)).oid  # the 4th order read
    far = c.result(B, _bid(59_400)).oid  # the 5th
    c.time = expiry
    r = c.block(c.sign(C, PlaceOrder(BTC_SPOT, False, 59_000, 10, Tif.IOC, False, None)))
    assert [(f.maker_oid, f.size) for f in r.receipts[0].results[0].fills] == [(near, 2)]
    assert far in c.ex.books[BTC_SPOT].orders


@pytest.mark.parametrize(("tif", "price"), [(Tif.GTC, 59_000), (Tif.ALO, 59_001)])
def test_a_taker_stopped_by_the_allowance_does_not_rest_crossing_the_book(monkeypatch: pytest.MonkeyPatch,
                                                                           tif: Tif, price: int) -> None:
    """A GTC order (or an ALO crossing only lapsed orders) that meets lapsed orders once
    ``lapse_left`` is spent would, resting, cross the book (and, when it stopped at them
    with a live bid behind, leave two live orders crossed for good once the sweep took the
    lapsed ones: nothing matches two resting orders). Its remainder is cancelled
    (``lapse_pending``) instead."""
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", 0)
    monkeypatch.setattr(lifetimes, "TX_LAPSE_BUDGET", 3)
    c = _chain()
    expiry = c.time + 10_000
    lapsing = [x.oid for x in c.run(A, Batch(tuple(_bid(59_500 - i, expiry) for i in range(5)))).results]
    behind = c.result(B, _bid(59_000, size=4)).oid
    c.time = expiry
    r = c.block(c.sign(C, PlaceOrder(BTC_SPOT, False, price, 10, tif, False, None)))
    result = r.receipts[0].results[0]
    filled = 4 if tif == Tif.GTC else 0  # (a GTC reaches the live bid behind the lapsed ones)
    assert r.receipts[0].code == Code.OK and result.filled == filled and result.cancelled == 10 - filled
    assert result.status == ("filled" if filled else "cancelled") and result.message == matching.LAPSE_PENDING
    assert _cancels(r, "expired") == lapsing[:3] and _cancels(r, "lapse_pending") == [result.oid]
    book = c.ex.books[BTC_SPOT]
    assert not book.is_crossed() and book.ask_prices == []
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", 10)
    c.block()  # the sweep takes the rest: uncrossed
    assert not book.is_crossed()
    assert (behind in book.orders) == (tif == Tif.ALO)


def test_an_alo_or_ioc_reads_at_most_cross_scan_lapsed_orders(monkeypatch: pytest.MonkeyPatch) -> None:
    """``lapse.crosses`` stops at ``CROSS_SCAN`` resting orders: with more lapsed orders than
    that crossing it, an ALO is refused as crossing (nothing changed) and an IOC goes to
    matching, which removes lapsed orders within the block's allowance. Unbounded, every ALO
    and IOC read the whole backlog (60,000 lapsed orders on a level: ~5 ms each)."""
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", 0)
    monkeypatch.setattr(lifetimes, "TX_LAPSE_BUDGET", 5)
    c = _chain(make_genesis(limits={"max_batch_actions": 256}))
    expiry = c.time + 10_000
    n = lapse.CROSS_SCAN + 1
    for k, count in ((A, 256), (B, 256), (C, 256), (D, n - 768)):
        c.run(k, Batch(tuple(_bid(59_500, expiry) for _ in range(count))))
    c.result(E, _bid(59_000))
    c.time = expiry
    c.block()
    book = c.ex.books[BTC_SPOT]
    assert len(book.orders) == n + 1
    alo = PlaceOrder(BTC_SPOT, False, 59_400, 10, Tif.ALO, False, None)
    assert lapse.crosses(c.ex, book, False, 59_400)  # not known within the bound: crossing
    before = [kv for kv in c.ex.snapshot_records() if kv[0][:1] == records.ORDER]
    assert c.block(c.sign(E, alo)).receipts[0].code == Code.ALO_WOULD_CROSS
    assert [kv for kv in c.ex.snapshot_records() if kv[0][:1] == records.ORDER] == before
    r = c.block(c.sign(E, PlaceOrder(BTC_SPOT, False, 59_400, 10, Tif.IOC, False, None)))
    assert r.receipts[0].code == Code.OK and len(_cancels(r, "expired")) == 5
    assert len(book.orders) == n + 1 - 5
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", n)
    c.block()  # swept: the ALO is judged by the live bid alone, and rests
    assert c.block(c.sign(E, alo)).receipts[0].results[0].status == "resting"


def test_a_due_account_whose_switch_the_block_cannot_cover_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", 0)
    monkeypatch.setattr(lifetimes, "TX_LAPSE_BUDGET", 4)  # A's switch needs 4 cancellations + 1
    c = _chain()
    c.run(A, Batch(tuple(_bid(59_000 + i) for i in range(4))))
    deadline = c.time + 10_000
    c.result(A, ScheduleCancel(deadline))
    c.time = deadline - 1_000
    before = dict(c.ex.snapshot_records())
    r = c.block(c.sign(A, _bid(59_100))).receipts[0]
    assert r.code == Code.DEAD_MAN_PENDING
    after = dict(c.ex.snapshot_records())
    changed = {k[:1] for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed <= {records.NONCE, records.COUNTERS, records.MARKET}  # its nonce is used (and the block ran)
    assert len(c.ex.accounts[A.address].open_orders) == 4
    monkeypatch.setattr(lifetimes, "TX_LAPSE_BUDGET", 5)
    r = c.block(c.sign(A, _bid(59_100))).receipts[0]
    assert r.code == Code.OK and [e.account for _, e in c.last.events if isinstance(e, DeadManFired)] == [A.address]
    assert len(c.ex.accounts[A.address].open_orders) == 1


def test_a_lapsed_backlog_does_not_hide_the_book_from_a_liquidation(monkeypatch: pytest.MonkeyPatch) -> None:
    """More lapsed bids at the top of the book than a block's allowances remove: the partial
    liquidation passes over what it may not remove and fills at the live bid behind, block
    after block, exactly as with no backlog. (Stopping at the first of them, it filled
    nothing for three blocks, then the account was deep enough for the backstop and lost
    all it had left: $0 instead of $404 and 0.3165 BTC.)"""
    from tests.state.test_liquidation import M, T, _setup
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", 2)
    monkeypatch.setattr(lifetimes, "TX_LAPSE_BUDGET", 3)

    def run(backlog: bool) -> list[tuple[int, int]]:
        c = _setup()
        c.order(M, BTC_PERP, True, 55_000, 100_000)
        c.fund(A, USDC, 1_000_000 * USD)
        if backlog:
            expiry = c.time + 5_000
            c.run(A, Batch(tuple(PlaceOrder(BTC_PERP, True, 55_900 - i, 10, Tif.GTC, False, None, expiry)
                                 for i in range(40))))
            c.time = expiry
        out = []
        for px in (56_200, 56_000, 55_800, 55_400):
            set_prices(c, btc=px * USD)
            out.append((sum(f.size for _, f in c.last.events if isinstance(f, Fill) and f.taker == T.address),
                        risk.maintenance(c.ex, c.ex.accounts[T.address]).equity))
        return out

    clean = run(False)
    assert [f for f, _ in clean] == [2_500, 1_875, 1_406, 1_054] and clean[-1][1] > 400 * USD
    assert run(True) == clean
