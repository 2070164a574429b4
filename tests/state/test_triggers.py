"""Trigger orders (state/triggers.py): named cases with hand-computed numbers.

BTC: tick $1 (1_000_000 price units), lot 0.0001 BTC, tick_value 100 (one tick on one lot
is 100 micro-USDC). A spot trigger's reference is the BTC index price (the oracle, moved
here by the test validator); a perp's is the mark (no book: the oracle). The default
slippage of a market trigger is 5%: a sell's IOC limit at 59,000 is floor(59,000 x 0.95)
= 56,050 ticks, a buy's at 61,000 is ceil(61,000 x 1.05) = 64,050.
"""

from __future__ import annotations

from typing import Any

import pytest

from state import triggers
from state.errors import Code
from state.events import Triggered
from state.receipts import Cancelled, Fill
from state.tx import (
    Cancel,
    CancelAll,
    Modify,
    ModifyTrigger,
    PlaceGroup,
    PlaceOrder,
    PlaceTrigger,
    Tif,
)
from tests.harness import BTC, BTC_PERP, BTC_SPOT, USDC, Chain, key
from tests.state.riskkit import USD, risk_chain, set_prices

A, B, C, D = key(30), key(31), key(32), key(33)
TP, SL = 0, 1


@pytest.fixture
def chain() -> Chain:
    c = risk_chain()
    for k in (A, B, C):
        c.fund(k, USDC, 1_000_000 * USD)
        c.fund(k, BTC, 100 * 10**8)
    return c


def trig(market: int, is_buy: bool, size: int, trigger: int, tpsl: int, limit: int = 0,
         reduce_only: bool = False, cloid: bytes | None = None) -> PlaceTrigger:
    return PlaceTrigger(market, is_buy, size, trigger, tpsl, limit == 0, limit, reduce_only, cloid)


def events(c: Chain, cls: type) -> list[Any]:
    return [e for _, e in c.last.events if isinstance(e, cls)]


def place(c: Chain, k: Any, t: PlaceTrigger) -> int:
    r = c.result(k, t)
    assert (r.code, r.status) == (Code.OK, "waiting"), r
    assert r.oid is not None
    return r.oid


def test_stop_market_on_a_falling_price_fills_at_the_book_and_cancels_the_rest(chain: Chain) -> None:
    bid = chain.order(B, BTC_SPOT, True, 58_500, 5).oid
    oid = place(chain, A, trig(BTC_SPOT, False, 10, 59_000, SL))
    assert chain.ex.triggers[oid].size == 10 and oid not in chain.ex.books[BTC_SPOT].orders
    set_prices(chain, btc=59_500 * USD)
    assert events(chain, Triggered) == [] and oid in chain.ex.triggers
    set_prices(chain, btc=59_000 * USD)  # exactly at the trigger: fires
    assert events(chain, Triggered) == [Triggered("triggered", BTC_SPOT, oid, A.address, 59_000 * USD, 59_000)]
    (fill,) = events(chain, Fill)
    assert (fill.maker_oid, fill.taker_oid, fill.price, fill.size) == (bid, oid, 58_500, 5)
    (cancel,) = events(chain, Cancelled)
    assert (cancel.oid, cancel.remaining, cancel.reason) == (oid, 5, "ioc")
    assert oid not in chain.ex.triggers and oid not in chain.ex.books[BTC_SPOT].orders
    assert chain.ex.accounts[A.address].triggers == {}


def test_market_trigger_limit_is_the_reference_moved_by_the_slippage() -> None:
    c = risk_chain()
    spot = c.ex.markets[BTC_SPOT]
    assert triggers.slipped_ticks(spot, 59_000 * USD, False, 50_000) == 56_050
    assert triggers.slipped_ticks(spot, 61_000 * USD, True, 50_000) == 64_050
    assert triggers.slipped_ticks(spot, 61_000 * USD + 1, True, 50_000) == 64_051  # rounded up
    assert triggers.slipped_ticks(spot, 1, False, 50_000) == 1  # clamped
    assert triggers.slipped_ticks(spot, 10**30, True, 50_000) == spot.max_price_ticks


def test_take_profit_on_a_rising_price(chain: Chain) -> None:
    bid = chain.order(B, BTC_SPOT, True, 60_900, 10).oid
    oid = place(chain, A, trig(BTC_SPOT, False, 10, 61_000, TP))
    set_prices(chain, btc=60_999 * USD)
    assert oid in chain.ex.triggers
    set_prices(chain, btc=61_000 * USD)
    (fill,) = events(chain, Fill)
    assert (fill.maker_oid, fill.taker_oid, fill.price, fill.size) == (bid, oid, 60_900, 10)
    assert events(chain, Cancelled) == []


def test_stop_limit_triggers_and_rests_with_the_same_oid(chain: Chain) -> None:
    oid = place(chain, A, trig(BTC_SPOT, True, 5, 61_000, SL, limit=61_100))
    set_prices(chain, btc=61_000 * USD)
    assert [e.oid for e in events(chain, Triggered)] == [oid]
    order = chain.ex.books[BTC_SPOT].orders[oid]
    assert (order.price, order.size, order.is_buy, order.tif) == (61_100, 5, True, int(Tif.GTC))
    acct = chain.ex.accounts[A.address]
    assert acct.open_orders == {oid: BTC_SPOT} and acct.triggers == {}
    # it is an ordinary order now: a seller at 61,050 trades with it at its price
    r = chain.order(B, BTC_SPOT, False, 61_050, 5)
    assert [(f.maker_oid, f.price) for f in r.fills] == [(oid, 61_100)]


def test_no_fire_on_the_wrong_side(chain: Chain) -> None:
    sell_stop = place(chain, A, trig(BTC_SPOT, False, 10, 59_000, SL))  # fires on a fall
    buy_stop = place(chain, A, trig(BTC_SPOT, True, 10, 61_000, SL))  # fires on a rise
    sell_tp = place(chain, A, trig(BTC_SPOT, False, 10, 62_000, TP))  # fires on a rise
    buy_tp = place(chain, A, trig(BTC_SPOT, True, 10, 58_000, TP))  # fires on a fall
    set_prices(chain, btc=60_900 * USD)
    set_prices(chain, btc=59_100 * USD)
    assert sorted(chain.ex.triggers) == sorted([sell_stop, buy_stop, sell_tp, buy_tp])
    idx = chain.ex.trigger_index[BTC_SPOT]
    assert idx.rises == [(61_000, buy_stop), (62_000, sell_tp)]
    assert idx.falls == [(58_000, buy_tp), (59_000, sell_stop)]


def test_several_triggers_in_one_block_fire_in_oid_order(chain: Chain) -> None:
    chain.order(B, BTC_SPOT, True, 58_000, 100)
    o1 = place(chain, A, trig(BTC_SPOT, False, 2, 59_000, SL))
    o2 = place(chain, C, trig(BTC_SPOT, False, 2, 59_800, SL))
    o3 = place(chain, A, trig(BTC_SPOT, False, 2, 59_500, SL))
    set_prices(chain, btc=58_900 * USD)
    assert [e.oid for e in events(chain, Triggered)] == [o1, o2, o3]
    assert [f.taker_oid for f in events(chain, Fill)] == [o1, o2, o3]
    assert chain.ex.triggers == {}


def test_cancel_by_oid_by_cloid_and_cancel_all(chain: Chain) -> None:
    by_oid = place(chain, A, trig(BTC_SPOT, False, 10, 59_000, SL))
    by_cloid = place(chain, A, trig(BTC_SPOT, False, 10, 58_000, SL, cloid=b"c" * 16))
    assert chain.result(A, Cancel(BTC_SPOT, by_oid, None)).status == "cancelled"
    assert [(e.oid, e.reason) for e in events(chain, Cancelled)] == [(by_oid, "cancelled")]
    r = chain.result(A, Cancel(BTC_SPOT, None, b"c" * 16))
    assert (r.status, r.oid) == ("cancelled", by_cloid)
    acct = chain.ex.accounts[A.address]
    assert chain.ex.triggers == {} and acct.cloids == {} and acct.triggers == {}
    assert chain.ex.trigger_index[BTC_SPOT].falls == []
    assert chain.result(A, Cancel(BTC_SPOT, by_oid, None)).code == Code.UNKNOWN_ORDER
    a = place(chain, A, trig(BTC_SPOT, False, 10, 59_000, SL))
    b = place(chain, A, trig(BTC_PERP, True, 2, 61_000, SL))
    r = chain.result(A, CancelAll(BTC_SPOT))
    assert r.message == "1 cancelled" and sorted(chain.ex.triggers) == [b]
    assert a not in chain.ex.triggers
    chain.order(A, BTC_SPOT, False, 65_000, 2)
    assert chain.result(A, CancelAll(None)).message == "2 cancelled" and chain.ex.triggers == {}


def test_a_cloid_names_one_open_or_trigger_order(chain: Chain) -> None:
    chain.order(A, BTC_SPOT, False, 65_000, 2, cloid=b"x" * 16)
    r = chain.result(A, trig(BTC_SPOT, False, 10, 59_000, SL, cloid=b"x" * 16))
    assert r.code == Code.DUPLICATE_CLOID
    place(chain, A, trig(BTC_SPOT, False, 10, 59_000, SL, cloid=b"y" * 16))
    assert chain.order(A, BTC_SPOT, False, 65_000, 2, cloid=b"y" * 16).code == Code.DUPLICATE_CLOID


def test_modify_trigger_keeps_the_oid_and_moves_the_index(chain: Chain) -> None:
    chain.order(B, BTC_SPOT, True, 57_000, 100)
    oid = place(chain, A, trig(BTC_SPOT, False, 10, 59_000, SL, cloid=b"m" * 16))
    r = chain.result(A, ModifyTrigger(BTC_SPOT, None, b"m" * 16, 58_000, 0, 20))
    assert (r.code, r.status, r.oid) == (Code.OK, "waiting", oid)
    assert chain.ex.trigger_index[BTC_SPOT].falls == [(58_000, oid)]
    set_prices(chain, btc=58_500 * USD)
    assert oid in chain.ex.triggers
    set_prices(chain, btc=58_000 * USD)
    (fill,) = events(chain, Fill)
    assert (fill.taker_oid, fill.size) == (oid, 20)
    # the plain Modify does not reach a trigger, and points at modify_trigger
    o2 = place(chain, A, trig(BTC_SPOT, False, 10, 50_000, SL))
    r = chain.result(A, Modify(BTC_SPOT, o2, None, 50_000, 5))
    assert r.code == Code.UNKNOWN_ORDER and "modify_trigger" in r.message
    bad = chain.result(A, ModifyTrigger(BTC_SPOT, o2, None, 0, 0, 5))
    assert bad.code == Code.BAD_TRIGGER and chain.ex.triggers[o2].trigger == 50_000


def test_bad_trigger_specs_are_rejected(chain: Chain) -> None:
    top = chain.ex.markets[BTC_SPOT].max_price_ticks
    cases = [
        (trig(BTC_SPOT, False, 10, 0, SL), Code.BAD_TRIGGER),
        (trig(BTC_SPOT, False, 10, top + 1, SL), Code.BAD_TRIGGER),
        (PlaceTrigger(BTC_SPOT, False, 10, 59_000, SL, True, 59_000, False, None), Code.BAD_TRIGGER),
        (PlaceTrigger(BTC_SPOT, False, 10, 59_000, SL, False, 0, False, None), Code.BAD_TRIGGER),
        (trig(BTC_SPOT, False, 0, 59_000, SL), Code.ZERO_SIZE),
        (trig(BTC_SPOT, False, 10, 59_000, SL, reduce_only=True), Code.REDUCE_ONLY_NOT_PERP),
        (trig(BTC_SPOT, False, 1, 59_000, SL), Code.BELOW_MIN_NOTIONAL),  # $59 x 0.0001 < $10
        (trig(9, False, 10, 59_000, SL), Code.UNKNOWN_MARKET),
    ]
    for action, code in cases:
        assert chain.result(A, action).code == code, action
    assert chain.ex.triggers == {}


def test_margin_counts_a_non_reduce_only_trigger_at_its_worst_price() -> None:
    """D has $100. A buy stop of 2 lots at 61,000 counts at 64,050 (5% slippage): 12,810,000
    micro-USDC ($12.81) of bid notional. 1 BTC (10,000 lots) cannot be afforded."""
    c = risk_chain()
    c.fund(D, USDC, 100 * USD)
    oid = place(c, D, trig(BTC_PERP, True, 2, 61_000, SL))
    acct = c.ex.accounts[D.address]
    assert acct.orders[BTC_PERP] == [2, 2 * 64_050 * 100, 0, 0]
    assert c.result(D, trig(BTC_PERP, True, 10_000, 61_000, SL)).code == Code.INSUFFICIENT_MARGIN
    # a limit trigger counts at its limit price
    lim = place(c, D, trig(BTC_PERP, True, 2, 61_000, SL, limit=62_000))
    assert acct.orders[BTC_PERP] == [4, 2 * 64_050 * 100 + 2 * 62_000 * 100, 0, 0]
    c.result(D, Cancel(BTC_PERP, oid, None))
    c.result(D, Cancel(BTC_PERP, lim, None))
    assert BTC_PERP not in acct.orders


def test_too_many_open_orders_counts_book_and_trigger_orders() -> None:
    c = risk_chain(limits={"max_open_orders_per_account": 2})
    c.fund(A, USDC, 1_000_000 * USD)
    c.fund(A, BTC, 10 * 10**8)
    assert c.order(A, BTC_SPOT, False, 65_000, 2).status == "resting"
    place(c, A, trig(BTC_SPOT, False, 10, 59_000, SL))
    assert c.result(A, trig(BTC_SPOT, False, 10, 58_000, SL)).code == Code.TOO_MANY_OPEN_ORDERS
    assert c.order(A, BTC_SPOT, False, 65_000, 2).code == Code.TOO_MANY_OPEN_ORDERS


def _long(c: Chain, lots: int, price: int = 60_000) -> None:
    """A buys ``lots`` of BTC-PERP from B at ``price``."""
    c.order(B, BTC_PERP, False, price, lots)
    r = c.order(A, BTC_PERP, True, price, lots, Tif.IOC)
    assert r.filled == lots, r


def test_position_tpsl_is_sized_to_the_whole_position_when_it_fires(chain: Chain) -> None:
    _long(chain, 5)
    oid = place(chain, A, trig(BTC_PERP, False, 0, 58_000, SL, reduce_only=True))
    t = chain.ex.triggers[oid]
    assert (t.whole, t.size) == (True, 0)
    assert BTC_PERP not in chain.ex.accounts[A.address].orders  # reduce-only: no margin counted
    _long(chain, 5)  # the position grows to 10
    chain.order(C, BTC_PERP, True, 57_000, 20)
    set_prices(chain, btc=57_500 * USD)
    assert chain.ex.mstate[BTC_PERP].mark <= 58_000 * USD
    assert [e.oid for e in events(chain, Triggered)] == [oid]
    (fill,) = [f for f in events(chain, Fill) if f.taker_oid == oid]
    assert (fill.size, fill.price) == (10, 57_000)
    assert chain.ex.accounts[A.address].positions[BTC_PERP].size == 0


def test_position_tpsl_needs_a_position_on_the_other_side(chain: Chain) -> None:
    r = chain.result(A, trig(BTC_PERP, False, 0, 58_000, SL, reduce_only=True))
    assert r.code == Code.REDUCE_ONLY_WOULD_INCREASE
    _long(chain, 5)
    r = chain.result(A, trig(BTC_PERP, True, 0, 61_000, SL, reduce_only=True))
    assert r.code == Code.REDUCE_ONLY_WOULD_INCREASE


def test_position_tpsl_removed_when_the_position_closes(chain: Chain) -> None:
    _long(chain, 5)
    tp = place(chain, A, trig(BTC_PERP, False, 0, 65_000, TP, reduce_only=True))
    sl = place(chain, A, trig(BTC_PERP, False, 0, 55_000, SL, reduce_only=True))
    chain.order(C, BTC_PERP, True, 60_000, 5)
    chain.order(A, BTC_PERP, False, 60_000, 5, Tif.IOC)
    assert chain.ex.accounts[A.address].positions[BTC_PERP].size == 0
    assert [(e.oid, e.reason) for e in events(chain, Cancelled)] == [(tp, "position_closed"),
                                                                      (sl, "position_closed")]
    assert chain.ex.triggers == {} and chain.ex.accounts[A.address].triggers == {}


def test_position_tpsl_replaced_by_a_new_one(chain: Chain) -> None:
    _long(chain, 5)
    old = place(chain, A, trig(BTC_PERP, False, 0, 58_000, SL, reduce_only=True))
    tp = place(chain, A, trig(BTC_PERP, False, 0, 65_000, TP, reduce_only=True))
    new = place(chain, A, trig(BTC_PERP, False, 0, 57_000, SL, reduce_only=True))
    assert [(e.oid, e.reason) for e in events(chain, Cancelled)] == [(old, "replaced")]
    assert sorted(chain.ex.accounts[A.address].triggers) == [tp, new]
    assert chain.ex.trigger_index[BTC_PERP].falls == [(57_000, new)]


def test_a_trigger_the_checks_reject_when_it_fires_is_cancelled(chain: Chain) -> None:
    """A market trigger with nothing to match becomes an IOC with no fill: rejected, so the
    trigger is removed with reason "trigger_rejected" (not an error)."""
    oid = place(chain, A, trig(BTC_SPOT, False, 10, 59_000, SL))
    set_prices(chain, btc=59_000 * USD)
    assert [e.oid for e in events(chain, Triggered)] == [oid]
    assert [(e.oid, e.reason) for e in events(chain, Cancelled)] == [(oid, "trigger_rejected")]
    assert chain.ex.triggers == {}


def test_restart_keeps_the_trigger_index(tmp_path: Any) -> None:
    c = risk_chain(path=str(tmp_path / "db"))
    for k in (A, B):
        c.fund(k, USDC, 1_000_000 * USD)
        c.fund(k, BTC, 100 * 10**8)
    c.order(B, BTC_SPOT, True, 58_000, 100)
    o1 = place(c, A, trig(BTC_SPOT, False, 2, 59_000, SL, cloid=b"r" * 16))
    o2 = place(c, A, trig(BTC_SPOT, True, 2, 61_000, SL, limit=61_500))
    before = (list(c.ex.trigger_index[BTC_SPOT].rises), list(c.ex.trigger_index[BTC_SPOT].falls),
              c.ex.accounts[A.address].orders, dict(c.ex.accounts[A.address].cloids))
    fork = c.fork()
    c.reopen()
    for x in (c, fork):
        idx = x.ex.trigger_index[BTC_SPOT]
        assert (idx.rises, idx.falls, x.ex.accounts[A.address].orders, x.ex.accounts[A.address].cloids) == before
        assert sorted(x.ex.accounts[A.address].triggers) == [o1, o2]
    set_prices(c, btc=58_900 * USD)
    assert [e.oid for e in events(c, Triggered)] == [o1]
    assert sorted(c.ex.triggers) == [o2]


def test_place_trigger_round_trips_through_the_codec() -> None:
    from state.tx import action_to_list, parse_action

    for a in (trig(BTC_SPOT, False, 10, 59_000, SL, cloid=b"z" * 16), trig(BTC_PERP, True, 0, 1, TP, 5, True),
              ModifyTrigger(2, 7, None, 1, 2, 3), ModifyTrigger(2, None, b"q" * 16, 1, 0, 3)):
        assert parse_action(action_to_list(a)) == a
    from state.errors import TxError

    with pytest.raises(TxError):
        parse_action([15, 0, False, 1, 1, 2, False, 0, False, None])  # tpsl 2
    with pytest.raises(TxError):
        parse_action([18, 0, None, None, 1, 0, 1])  # neither oid nor cloid


def test_hooks_cancel_account_and_market_triggers(chain: Chain) -> None:
    place(chain, A, trig(BTC_SPOT, False, 10, 59_000, SL))
    p = place(chain, A, trig(BTC_PERP, True, 2, 61_000, SL))
    c_oid = place(chain, C, trig(BTC_SPOT, False, 10, 59_000, SL))
    ex = chain.ex
    ex.events = []
    assert triggers.cancel_account_triggers(ex, ex.accounts[A.address], "dead_man", market=BTC_SPOT) == 1
    assert triggers.cancel_market_triggers(ex, BTC_PERP, "expired") == 1
    assert sorted(ex.triggers) == [c_oid] and p not in ex.triggers
    assert [e.reason for e in ex.events] == ["dead_man", "expired"]
    chain.block()  # the harness checks the store equals memory


# ---------------------------------------------------------------------------------- OCO groups
def _group(c: Chain, parent: PlaceOrder, *children: PlaceTrigger) -> Any:
    r = c.run(A, PlaceGroup(1, parent, tuple(children)))
    assert r.code == Code.OK, r
    return r.results


def _bracket(c: Chain) -> tuple[int, int, int]:
    """A bids 10 BTC-PERP lots at 59,000 with a TP at 62,000 and an SL at 58,000."""
    res = _group(c, PlaceOrder(BTC_PERP, True, 59_000, 10, Tif.GTC, False, None),
                 trig(BTC_PERP, False, 0, 62_000, TP, reduce_only=True),
                 trig(BTC_PERP, False, 0, 58_000, SL, reduce_only=True))
    assert [r.status for r in res] == ["resting", "waiting", "waiting"]
    return res[0].oid, res[1].oid, res[2].oid


def test_oco_children_are_inactive_before_the_parent_fills(chain: Chain) -> None:
    parent, tp, sl = _bracket(chain)
    assert parent < tp < sl
    assert (chain.ex.triggers[tp].size, chain.ex.triggers[sl].size) == (0, 0)
    idx = chain.ex.trigger_index[BTC_PERP]
    assert idx.rises == [] and idx.falls == []
    set_prices(chain, btc=57_000 * USD)  # below the SL: an inactive child does not fire
    assert events(chain, Triggered) == [] and sorted(chain.ex.triggers) == [tp, sl]
    assert chain.ex.trigger_groups == {parent: [tp, sl]}


def test_oco_partial_parent_fill_activates_that_size(chain: Chain) -> None:
    _parent, tp, sl = _bracket(chain)
    chain.order(B, BTC_PERP, False, 59_000, 4, Tif.IOC)
    assert (chain.ex.triggers[tp].size, chain.ex.triggers[sl].size) == (4, 4)
    idx = chain.ex.trigger_index[BTC_PERP]
    assert idx.rises == [(62_000, tp)] and idx.falls == [(58_000, sl)]
    chain.order(B, BTC_PERP, False, 59_000, 3, Tif.IOC)
    assert (chain.ex.triggers[tp].size, chain.ex.triggers[sl].size) == (7, 7)
    fork = chain.fork()  # the restored state has the same group and index
    assert fork.ex.trigger_groups == chain.ex.trigger_groups
    assert fork.ex.trigger_index[BTC_PERP].falls == [(58_000, sl)]


def test_oco_one_child_fires_and_the_sibling_is_cancelled(chain: Chain) -> None:
    parent, tp, sl = _bracket(chain)
    chain.order(B, BTC_PERP, False, 59_000, 4, Tif.IOC)
    chain.result(A, Cancel(BTC_PERP, parent, None))  # partly filled, then cancelled: children keep 4
    assert (chain.ex.triggers[tp].size, chain.ex.triggers[sl].size) == (4, 4)
    chain.order(C, BTC_PERP, True, 57_000, 20)
    set_prices(chain, btc=57_500 * USD)
    assert [e.oid for e in events(chain, Triggered)] == [sl]
    assert [(e.oid, e.reason) for e in events(chain, Cancelled)] == [(tp, "oco")]
    (fill,) = [f for f in events(chain, Fill) if f.taker_oid == sl]
    assert (fill.size, fill.price) == (4, 57_000)
    assert chain.ex.triggers == {} and chain.ex.accounts[A.address].positions[BTC_PERP].size == 0


def test_oco_parent_cancelled_unfilled_takes_its_children(chain: Chain) -> None:
    parent, tp, sl = _bracket(chain)
    chain.result(A, Cancel(BTC_PERP, parent, None))
    assert [(e.oid, e.reason) for e in events(chain, Cancelled)] == [
        (parent, "cancelled"), (tp, "parent_cancelled"), (sl, "parent_cancelled")]
    assert chain.ex.triggers == {} and chain.ex.accounts[A.address].triggers == {}


def test_oco_parent_filled_at_once_activates_the_children_fully(chain: Chain) -> None:
    chain.order(B, BTC_PERP, False, 59_000, 10)
    res = _group(chain, PlaceOrder(BTC_PERP, True, 59_000, 10, Tif.GTC, False, None),
                 trig(BTC_PERP, False, 0, 58_000, SL, reduce_only=True))
    assert [(r.status, r.filled) for r in res] == [("filled", 10), ("waiting", 0)]
    assert chain.ex.triggers[res[1].oid].size == 10


def test_oco_group_rejections_change_nothing(chain: Chain) -> None:
    parent = PlaceOrder(BTC_PERP, True, 59_000, 10, Tif.GTC, False, None)
    for children, code in [
        ((trig(BTC_PERP, True, 0, 62_000, TP, reduce_only=True),), Code.BAD_TRIGGER),  # same side
        ((trig(BTC_PERP, False, 5, 62_000, TP, reduce_only=True),), Code.BAD_TRIGGER),  # a size
        ((trig(BTC_PERP, False, 0, 62_000, TP),), Code.BAD_TRIGGER),  # not reduce-only on a perp
        ((trig(BTC_PERP, False, 0, 0, TP, reduce_only=True),), Code.BAD_TRIGGER),  # no trigger price
    ]:
        r = chain.run(A, PlaceGroup(1, parent, children))
        assert r.code == code, r
    assert chain.ex.triggers == {} and chain.ex.books[BTC_PERP].orders == {}


def test_position_tpsl_group_places_both(chain: Chain) -> None:
    _long(chain, 5)
    r = chain.run(A, PlaceGroup(2, None, (trig(BTC_PERP, False, 0, 65_000, TP, reduce_only=True),
                                          trig(BTC_PERP, False, 0, 55_000, SL, reduce_only=True))))
    assert [x.status for x in r.results] == ["waiting", "waiting"]
    assert all(chain.ex.triggers[x.oid].whole for x in r.results)


def test_triggers_view_shows_kind_prices_and_active_size(chain: Chain) -> None:
    from state.views import triggers_view

    parent, tp, sl = _bracket(chain)
    chain.order(B, BTC_PERP, False, 59_000, 4, Tif.IOC)
    stop = place(chain, A, trig(BTC_SPOT, False, 10, 59_000, SL, limit=58_900, cloid=b"v" * 16))
    view = triggers_view(chain.ex, A.address)
    assert [v["oid"] for v in view] == [tp, sl, stop]
    assert view[0]["trigger"] == {"kind": "tp", "trigger_price": 62_000, "is_market": True, "limit": 0,
                                  "active_size": 4, "parent": parent}
    assert view[2] == {"oid": stop, "market": BTC_SPOT, "side": "sell",
                       "trigger": {"kind": "sl", "trigger_price": 59_000, "is_market": False, "limit": 58_900,
                                   "active_size": 10, "parent": None},
                       "reduce_only": False, "cloid": (b"v" * 16).hex()}
    assert triggers_view(chain.ex, D.address) == []


def test_liquidation_cancels_the_accounts_triggers() -> None:
    """As in test_liquidation: T buys 1 BTC-PERP at 60,000 with $5,500; at 56,200 it is
    liquidated, and its orders and its waiting stop (at 50,000, not reached) are cancelled."""
    c = risk_chain()
    set_prices(c, btc=60_000 * USD)
    c.fund(D, USDC, 5_500 * USD)
    for k in (B, C):
        c.fund(k, USDC, 1_000_000 * USD)
    c.order(B, BTC_PERP, False, 60_000, 10_000)
    assert c.order(D, BTC_PERP, True, 60_000, 10_000, Tif.IOC).status == "filled"
    stop = place(c, D, trig(BTC_PERP, False, 0, 50_000, SL, reduce_only=True))
    c.order(C, BTC_PERP, True, 55_000, 100_000)
    set_prices(c, btc=56_200 * USD)
    assert (stop, "liquidation") in [(e.oid, e.reason) for e in events(c, Cancelled)]
    assert c.ex.triggers == {}


def test_modify_trigger_of_an_oco_child_moves_its_prices_only(chain: Chain) -> None:
    parent, tp, sl = _bracket(chain)
    r = chain.result(A, ModifyTrigger(BTC_PERP, sl, None, 57_500, 0, 0))
    assert (r.code, r.oid) == (Code.OK, sl)
    assert chain.ex.triggers[sl].trigger == 57_500 and chain.ex.trigger_groups == {parent: [tp, sl]}
    assert chain.result(A, ModifyTrigger(BTC_PERP, sl, None, 57_500, 0, 3)).code == Code.BAD_TRIGGER
    chain.order(B, BTC_PERP, False, 59_000, 2, Tif.IOC)
    assert chain.ex.trigger_index[BTC_PERP].falls == [(57_500, sl)]


def test_genesis_trigger_slippage_is_read_and_ranged() -> None:
    from tests.harness import make_genesis

    assert make_genesis().trigger_slippage_ppm == 50_000
    assert make_genesis(orders={"trigger_slippage_ppm": 10_000}).trigger_slippage_ppm == 10_000
    with pytest.raises(ValueError, match=r"orders\.trigger_slippage_ppm"):
        make_genesis(orders={"trigger_slippage_ppm": 1_000_000})
