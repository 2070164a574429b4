"""An order that has lapsed (past its good-til-time expiry, or under its owner's due
dead-man switch) and that the bounded sweep has not removed yet is gone for its owner too:
it is removed before the account acts (within the block's ``TX_LAPSE_BUDGET``), so a modify
or cancel of it answers as for an unknown order, and it never counts in the account's margin
(state/lifetimes.py ``clear_expired``). Blocks of the test chain are 1,000 ms apart."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest

from state import lapse, lifetimes, records
from state.errors import Code
from state.receipts import Cancelled
from state.tx import Batch, Cancel, Modify, PlaceOrder, PlaceTrigger, Tif, Withdraw
from tests.harness import BTC_PERP, BTC_SPOT, USDC, Chain, key
from tests.state.riskkit import risk_chain, set_prices

A, B = key(50), key(51)
USD = 10**6  # micro-USDC per dollar


def _chain() -> Chain:
    c = Chain()
    for k in (A, B):
        c.fund(k, USDC, 10**15)
    return c


def _bid(price: int, expires_at: int | None = None, size: int = 10) -> PlaceOrder:
    return PlaceOrder(BTC_SPOT, True, price, size, Tif.GTC, False, None, expires_at)


def _cancelled(result: Any) -> list[tuple[int, str]]:
    return [(e.oid, e.reason) for _, e in result.events if isinstance(e, Cancelled)]


@pytest.fixture(autouse=True)
def _no_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", 0)  # what lapses stays on the book


@pytest.mark.parametrize("modify", [
    Modify(BTC_SPOT, None, None, 59_000, 5),  # size down at the same price: the in-place path
    Modify(BTC_SPOT, None, None, 59_100, 10),  # a new price: the replace path
])
def test_a_modify_of_an_expired_order_fails_as_for_an_unknown_order(modify: Modify) -> None:
    c = _chain()
    expiry = c.time + 5_000
    oid = c.result(A, _bid(59_000, expiry)).oid
    c.time = expiry
    r = c.block(c.sign(A, Modify(modify.market, oid, None, modify.price, modify.size)))
    assert r.receipts[0].code == Code.UNKNOWN_ORDER
    assert _cancelled(r) == [(oid, "expired")]  # removed once, as the sweep would
    assert not c.ex.books[BTC_SPOT].orders and not c.ex.accounts[A.address].open_orders
    assert A.pubkey in c._nonce and c.ex.nonces[A.address]  # the nonce is used


def test_a_cancel_of_an_expired_order_says_it_is_gone_and_emits_once() -> None:
    c = _chain()
    expiry = c.time + 5_000
    oid = c.result(A, _bid(59_000, expiry)).oid
    live = c.result(A, _bid(58_000)).oid
    c.time = expiry
    r = c.block(c.sign(A, Batch((Cancel(BTC_SPOT, oid, None), Cancel(BTC_SPOT, live, None)))))
    assert [x.code for x in r.receipts[0].results] == [Code.UNKNOWN_ORDER, Code.OK]
    assert _cancelled(r) == [(oid, "expired"), (live, "cancelled")]
    assert _cancelled(c.block()) == []


def test_an_account_whose_expired_orders_the_block_cannot_cover_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifetimes, "TX_LAPSE_BUDGET", 3)
    c = _chain()
    expiry = c.time + 5_000
    oids = [x.oid for x in c.run(A, Batch(tuple(_bid(59_000 + i, expiry) for i in range(4)))).results]
    c.time = expiry
    before = dict(c.ex.snapshot_records())
    r = c.block(c.sign(A, Modify(BTC_SPOT, oids[0], None, 59_000, 5)))
    assert r.receipts[0].code == Code.EXPIRY_PENDING and _cancelled(r) == []
    after = dict(c.ex.snapshot_records())
    changed = {k[:1] for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed <= {records.NONCE, records.COUNTERS, records.MARKET}  # its nonce is used (and the block ran)
    monkeypatch.setattr(lifetimes, "TX_LAPSE_BUDGET", 4)
    r = c.block(c.sign(A, _bid(58_000)))
    assert r.receipts[0].code == Code.OK and _cancelled(r) == [(o, "expired") for o in oids]


def test_expired_orders_do_not_count_in_their_owners_margin() -> None:
    """A perp bid that uses most of the account's initial margin, expired and not swept:
    the account may withdraw and place orders as if it were gone (it is, before it acts)."""
    c = Chain()
    c.fund(A, USDC, 10_000 * USD)
    c.fund(B, USDC, 10_000 * USD)
    expiry = c.time + 5_000
    oid = c.result(A, PlaceOrder(BTC_PERP, True, 59_000, 25_000, Tif.GTC, False, None, expiry)).oid
    assert c.run(A, Withdraw(USDC, 5_000 * USD, A.address)).code == Code.INSUFFICIENT_MARGIN
    c.time = expiry
    r = c.block(c.sign(A, Withdraw(USDC, 5_000 * USD, A.address)))
    assert r.receipts[0].code == Code.OK and _cancelled(r) == [(oid, "expired")]
    c.result(B, PlaceOrder(BTC_PERP, True, 59_000, 25_000, Tif.GTC, False, None, c.time + 3_000))
    assert c.result(B, PlaceOrder(BTC_PERP, True, 59_000, 10_000, Tif.GTC, False, None)).code == Code.INSUFFICIENT_MARGIN
    c.time += 3_000
    assert c.result(B, PlaceOrder(BTC_PERP, True, 59_000, 10_000, Tif.GTC, False, None)).status == "resting"



class _Unread(deque[Any]):
    """A level's order deque that must not be read (iterated) by a depth reader."""

    def __iter__(self) -> Any:
        raise AssertionError("the depth reader visited the level's orders")


def _brute(ex: Any, market: int) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """The book's depth without expired orders, counted order by order."""
    book, now = ex.books[market], ex.time_ms
    out: tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]] = ([], [])
    for side, rows, best_first in ((book.bids, out[0], True), (book.asks, out[1], False)):
        for p in sorted(side, reverse=best_first):
            good = [o for o in side[p].orders if o.live and not (o.expires_at and o.expires_at < now)]
            if good:
                rows.append((p, sum(o.size for o in good), len(good)))
    return out


def test_depth_reads_count_an_expired_backlog_once_and_match_a_restarted_node(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Expired orders the sweep has not taken: the depth readers count each expiry once into
    the level's expired sums and read the level in O(1) after that (no visit of its
    orders), and the depth is exactly that of the orders still good, the same on a node
    restarted at any height (the sums are derived, rebuilt on load). Each account's orders
    by expiry (``Account.expiries``) name exactly its expired ones throughout."""
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", 2)
    monkeypatch.setattr(lifetimes, "TX_LAPSE_BUDGET", 2)
    c = _chain()
    t0 = c.time
    orders = [_bid(59_000, t0 + 4_000 + (i % 3) * 1_000, size=10 + i) for i in range(12)]
    c.run(A, Batch(tuple(orders)))
    c.result(B, _bid(59_000, size=5))
    c.result(B, _bid(59_000, t0 + 60_000, size=6))
    seen = []
    for step in range(8):
        if step == 2:  # B's GTT order shrinks (size-down modify): its expiry's sums follow
            oid = next(o.oid for o in c.ex.books[BTC_SPOT].orders.values() if o.owner == B.address and o.expires_at)
            assert c.result(B, Modify(BTC_SPOT, oid, None, 59_000, 3)).status == "resting"
        elif step == 4:  # a taker meets the level: removes expired orders (allowance), fills good ones
            c.run(B, PlaceOrder(BTC_SPOT, False, 59_000, 4, Tif.IOC, False, None))
        else:
            c.block()
        depth = lapse.depth(c.ex, BTC_SPOT, 5)
        assert depth == _brute(c.ex, BTC_SPOT), step
        for k in (A, B):  # each account's expired orders, as the clear before it acts finds them
            acct, now = c.ex.accounts[k.address], c.ex.time_ms
            expired = sorted(o for o, m in acct.open_orders.items() if 0 < c.ex.books[m].orders[o].expires_at < now)
            assert [o.oid for o in lapse.expired_of(c.ex, acct)] == expired, step
            assert lapse.expired_count(c.ex, acct) == len(expired), step
        node = c.fork()
        assert lapse.depth(node.ex, BTC_SPOT, 5) == depth, step
        level = c.ex.books[BTC_SPOT].bids.get(59_000)
        if level is not None and any(o.live and o.expires_at and o.expires_at < c.ex.time_ms for o in level.orders):
            kept = level.orders
            level.orders = _Unread(kept)
            try:
                assert lapse.level_depth(c.ex, level, False) == (depth[0][0][1], depth[0][0][1], depth[0][0][2])
                assert lapse.firm_depth(c.ex, level, False) == depth[0][0][1]
            finally:
                level.orders = kept
            seen.append(step)
    assert len(seen) >= 3, seen  # the backlog was read without visiting it


def test_a_firing_trigger_is_judged_without_its_owners_expired_orders() -> None:
    """A stop-limit buy fires on a rising price; its owner's perp bid that expired before
    (not swept) would push the new order past initial margin at the higher mark: it is
    removed first (from the block's allowance) and the trigger's order rests."""
    c = risk_chain()
    c.fund(A, USDC, 10_000 * USD)
    trig = c.result(A, PlaceTrigger(BTC_PERP, True, 2_000, 61_000, 1, False, 61_100, False, None))
    assert trig.status == "waiting"
    expiry = c.time + 5_000
    gtt = c.result(A, PlaceOrder(BTC_PERP, True, 59_000, 30_000, Tif.GTC, False, None, expiry)).oid
    c.time = expiry
    set_prices(c, btc=61_000 * USD)
    fired = c.ex.books[BTC_PERP].orders.get(trig.oid)
    assert fired is not None and fired.price == 61_100  # rests, not "trigger_rejected"
    assert gtt not in c.ex.books[BTC_PERP].orders
