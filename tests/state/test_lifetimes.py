"""Order lifetimes (state/lifetimes.py): good-til-time orders, ``expires_after`` on a
transaction, and the dead-man switch. Blocks of the test chain are 1,000 ms apart
(``Chain.block``); ``chain.time`` is the last block's time, so the next block is at +1000.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from state.account import Account
from state.book import Order
from state.codec import encode
from state.errors import Code, TxError
from state.events import DeadManFired
from state.genesis import Genesis
from state.lifetimes import DAY_MS
from state.receipts import Cancelled
from state.tx import PlaceOrder, ScheduleCancel, Tif, decode_tx, parse_action, sign_tx
from tests.harness import BTC, BTC_SPOT, USDC, Chain, key, make_genesis

A, B = key(20), key(21)


@pytest.fixture
def chain() -> Chain:
    c = Chain()
    for k in (A, B):
        c.fund(k, USDC, 1_000_000_000_000)
        c.fund(k, BTC, 100 * 10**8)
    return c


def _gtt(expires_at: int | None, price: int = 59_000, tif: Tif = Tif.GTC) -> PlaceOrder:
    return PlaceOrder(BTC_SPOT, True, price, 10, tif, False, None, expires_at)


def _cancels(result: Any) -> list[tuple[int, str]]:
    return [(e.oid, e.reason) for _, e in result.events if isinstance(e, Cancelled)]


def _empty_block(chain: Chain) -> Any:
    return chain.block()


# ---------------------------------------------------------------- good-til-time orders

def test_gtt_order_rests_through_its_expiry_and_goes_at_the_first_block_past_it(chain: Chain) -> None:
    expiry = chain.time + 3_000  # the blocks at +1000 (placement), +2000, +3000 keep it
    r = chain.result(A, _gtt(expiry))
    assert r.status == "resting"
    oid = r.oid
    assert chain.ex.books[BTC_SPOT].orders[oid].expires_at == expiry
    _empty_block(chain)  # +2000
    at_expiry = _empty_block(chain)  # +3000 == expiry: good through it (< rule)
    assert chain.time == expiry
    assert oid in chain.ex.books[BTC_SPOT].orders and _cancels(at_expiry) == []
    past = _empty_block(chain)  # +4000 > expiry
    assert _cancels(past) == [(oid, "expired")]
    assert oid not in chain.ex.books[BTC_SPOT].orders
    assert oid not in chain.ex.accounts[A.address].open_orders
    assert not any(k.startswith(b"o") for k in chain.sm.store.records)  # type: ignore[union-attr]


def test_gtt_order_persists_its_expiry_and_expires_after_a_restart(tmp_path: Any) -> None:
    chain = Chain(str(tmp_path / "db"))
    chain.fund(A, USDC, 1_000_000_000_000)
    expiry = chain.time + 5_000
    oid = chain.result(A, _gtt(expiry)).oid
    chain.reopen()
    assert chain.ex.books[BTC_SPOT].orders[oid].expires_at == expiry
    assert chain.ex.order_expiries == [(expiry, oid, BTC_SPOT)]
    chain.time = expiry  # the next block is 1000 ms past the expiry
    assert _cancels(_empty_block(chain)) == [(oid, "expired")]
    assert chain.sm.stored_records() == chain.ex.snapshot_records()
    chain.sm.close()


def test_order_record_with_and_without_expiry() -> None:
    base: list[object] = [7, 3, 0, b"\x01" * 20, True, 100, 5, 5, 0, False, None]
    old = Order.from_record(list(base))
    assert old.expires_at == 0 and old.record() == base  # an 11-field record still loads
    new = Order.from_record([*base, 1234])
    assert new.expires_at == 1234 and new.record() == [*base, 1234]


def test_order_expired_if_not_after_the_block_time(chain: Chain) -> None:
    next_block = chain.time + 1000
    r = chain.result(A, _gtt(next_block))  # expiry == block time: refused
    assert r.code == Code.ORDER_EXPIRED
    assert chain.result(A, _gtt(chain.time - 5)).code == Code.ORDER_EXPIRED
    assert not chain.ex.accounts[A.address].open_orders


def test_modify_keeps_the_expiry(chain: Chain) -> None:
    from state.tx import Modify

    expiry = chain.time + 10_000
    oid = chain.result(A, _gtt(expiry)).oid
    r = chain.result(A, Modify(BTC_SPOT, oid, None, 59_100, 10))  # a new price: replaced, new oid
    assert r.code == Code.OK and r.oid != oid
    assert chain.ex.books[BTC_SPOT].orders[r.oid].expires_at == expiry
    chain.time = expiry
    assert _cancels(_empty_block(chain)) == [(r.oid, "expired")]  # the old oid's entry is stale


def test_ioc_with_expiry_is_allowed_and_never_rests(chain: Chain) -> None:
    chain.order(B, BTC_SPOT, False, 60_000, 5)
    r = chain.result(A, _gtt(chain.time + 60_000, price=60_000, tif=Tif.IOC))
    assert r.status == "filled" and r.filled == 5
    assert not chain.ex.accounts[A.address].open_orders


def test_filled_gtt_order_leaves_a_stale_heap_entry_that_is_skipped(chain: Chain) -> None:
    expiry = chain.time + 2_000
    oid = chain.result(A, _gtt(expiry, price=60_000)).oid
    chain.order(B, BTC_SPOT, False, 60_000, 10)  # fills it
    assert oid not in chain.ex.books[BTC_SPOT].orders
    chain.time = expiry
    assert _cancels(_empty_block(chain)) == []
    assert chain.ex.order_expiries == []


# ---------------------------------------------------------------- canonical encodings

def test_place_order_encodings() -> None:
    seven = [3, 0, True, 100, 5, 0, False, None]
    assert parse_action(seven).expires_at_ms is None
    assert parse_action([*seven, 99]).expires_at_ms == 99
    with pytest.raises(TxError) as err:
        parse_action([*seven, None])  # "no expiry" has one encoding: the 7-field form
    assert err.value.code == Code.MALFORMED
    assert PlaceOrder(0, True, 100, 5, Tif.GTC, False, None).fields() == seven[1:]
    assert PlaceOrder(0, True, 100, 5, Tif.GTC, False, None, 99).fields() == [*seven[1:], 99]
    with pytest.raises(TxError):
        parse_action([*seven, 1, 2])


def test_tx_envelope_with_and_without_expires_after() -> None:
    action = ScheduleCancel(None)
    four = decode_tx(sign_tx(A, 5, action, "c"))
    five = decode_tx(sign_tx(A, 5, action, "c", expires_after=1234))
    assert four.expires_after is None and five.expires_after == 1234
    assert four.verify_signature("c") and five.verify_signature("c")
    assert four.sign_payload() != five.sign_payload()
    # the five-element form with None is malformed: a tx has one encoding
    payload = encode(A.pubkey) + encode(5) + encode([16, None]) + encode(None)
    raw = b"\x95" + payload + encode(b"\x00" * 64)
    with pytest.raises(TxError) as err:
        decode_tx(raw)
    assert err.value.code == Code.MALFORMED
    # a four-element signature grafted onto a five-element envelope does not verify
    grafted = b"\x95" + four.raw[1:-66] + encode(1234) + four.raw[-66:]
    assert not decode_tx(grafted).verify_signature("c")


# ---------------------------------------------------------------- expires_after

def test_tx_included_late_is_expired_and_consumes_nothing(chain: Chain) -> None:
    nonce = chain.time + 7
    late = sign_tx(A, nonce, _gtt(None), chain.genesis.chain_id, expires_after=chain.time + 500)
    r = chain.block(late).receipts[0]  # the block is at +1000 > expires_after
    assert r.code == Code.TX_EXPIRED
    assert nonce not in list(chain.ex.nonces.get(A.address, []))
    assert not chain.ex.accounts[A.address].open_orders
    assert chain.block(late).receipts[0].code == Code.TX_EXPIRED  # and stays expired
    fresh = sign_tx(A, nonce, _gtt(None), chain.genesis.chain_id)  # the same nonce is still free
    r = chain.block(fresh).receipts[0]
    assert r.code == Code.OK and r.results[0].status == "resting"


def test_tx_included_in_time_applies(chain: Chain) -> None:
    raw = sign_tx(A, chain.time + 3, _gtt(None), chain.genesis.chain_id, expires_after=chain.time + 1000)
    r = chain.block(raw).receipts[0]  # block time == expires_after: still in time
    assert r.code == Code.OK and r.results[0].status == "resting"


def test_mempool_admission_refuses_expired(chain: Chain) -> None:
    raw = sign_tx(A, chain.time + 3, _gtt(None), chain.genesis.chain_id, expires_after=chain.time + 10)
    chain.sm.check_tx(raw, now_ms=chain.time + 10)
    with pytest.raises(TxError) as err:
        chain.sm.check_tx(raw, now_ms=chain.time + 11)
    assert err.value.code == Code.TX_EXPIRED


# ---------------------------------------------------------------- dead-man switch

def _dead_men(result: Any) -> list[DeadManFired]:
    return [e for _, e in result.events if isinstance(e, DeadManFired)]


def test_dead_man_fires_at_the_deadline_block(chain: Chain) -> None:
    o1 = chain.order(A, BTC_SPOT, True, 59_000, 10).oid
    o2 = chain.order(A, BTC_SPOT, False, 61_000, 10).oid
    deadline = chain.time + 10_000
    assert chain.result(A, ScheduleCancel(deadline)).code == Code.OK
    assert chain.ex.accounts[A.address].dead_man == [deadline, (chain.time) // DAY_MS, 1]
    chain.time = deadline - 2_000
    assert _dead_men(_empty_block(chain)) == []  # at deadline - 1000
    fired = _empty_block(chain)  # exactly at the deadline: fires (deadline <= block time)
    assert chain.time == deadline
    assert _cancels(fired) == [(o1, "dead_man"), (o2, "dead_man")]
    assert _dead_men(fired) == [DeadManFired("dead_man", A.address, deadline, 2)]
    acct = chain.ex.accounts[A.address]
    assert not acct.open_orders and acct.dead_man is not None and acct.dead_man[0] == 0
    assert acct.dead_man[2] == 1  # day and count are kept
    assert _dead_men(_empty_block(chain)) == []


def test_dead_man_renewal_pushes_it_back(chain: Chain) -> None:
    oid = chain.order(A, BTC_SPOT, True, 59_000, 10).oid
    first = chain.time + 10_000
    chain.result(A, ScheduleCancel(first))
    second = chain.time + 30_000
    chain.result(A, ScheduleCancel(second))
    chain.time = first
    assert _dead_men(_empty_block(chain)) == []  # the old heap entry is stale
    assert oid in chain.ex.accounts[A.address].open_orders
    chain.time = second - 1_000
    assert _dead_men(_empty_block(chain))[0].deadline_ms == second
    assert chain.ex.accounts[A.address].dead_man == [0, chain.time // DAY_MS, 2]


def test_dead_man_clear(chain: Chain) -> None:
    chain.order(A, BTC_SPOT, True, 59_000, 10)
    deadline = chain.time + 10_000
    chain.result(A, ScheduleCancel(deadline))
    r = chain.result(A, ScheduleCancel(None))
    assert r.code == Code.OK
    chain.time = deadline + 5_000
    assert _dead_men(_empty_block(chain)) == []
    assert len(chain.ex.accounts[A.address].open_orders) == 1


def test_dead_man_too_soon(chain: Chain) -> None:
    block_time = chain.time + 1000
    assert chain.result(A, ScheduleCancel(block_time + 4_999)).code == Code.SCHEDULE_CANCEL_TOO_SOON
    assert chain.ex.accounts[A.address].dead_man is None  # a rejected one does not count
    block_time = chain.time + 1000
    assert chain.result(A, ScheduleCancel(block_time + 5_000)).code == Code.OK


def test_dead_man_per_day_limit_and_reset_next_utc_day() -> None:
    chain = Chain(genesis=make_genesis(orders={"schedule_cancel_per_day": 3}))
    chain.fund(A, USDC, 1_000_000)
    chain.time = (chain.time // DAY_MS + 1) * DAY_MS  # the next block is 1 s into a fresh day
    for _ in range(3):
        assert chain.result(A, ScheduleCancel(chain.time + 60_000)).code == Code.OK
    r = chain.result(A, ScheduleCancel(None))
    assert r.code == Code.SCHEDULE_CANCEL_LIMIT
    assert chain.ex.accounts[A.address].dead_man[2] == 3
    chain.time = (chain.time // DAY_MS + 1) * DAY_MS - 1000  # the next block opens the next day
    assert chain.result(A, ScheduleCancel(None)).code == Code.OK
    assert chain.ex.accounts[A.address].dead_man == [0, chain.time // DAY_MS, 1]


def test_dead_man_survives_a_restart(chain: Chain) -> None:
    chain.order(A, BTC_SPOT, True, 59_000, 10)
    deadline = chain.time + 10_000
    chain.result(A, ScheduleCancel(deadline))
    forked = chain.fork()
    assert forked.ex.dead_men == [(deadline, A.address)]
    forked.time = deadline - 1_000
    assert _dead_men(forked.block())[0].cancelled == 1


def test_account_record_with_and_without_dead_man() -> None:
    from state.lending import Pools
    from state.tracker import WriteTracker

    g = make_genesis()
    pools = Pools(g.risk.assets, WriteTracker())
    old = Account.from_record(b"\x01" * 20, pools, [[], [], [], []])
    assert old.dead_man is None and old.record() == [[], [], [], []] and old.is_empty()
    # [4] is the leverage settings (present, maybe empty, when [5] the dead-man switch is)
    new = Account.from_record(b"\x01" * 20, pools, [[], [], [], [], [], [0, 5, 2]])
    assert new.dead_man == [0, 5, 2] and not new.is_empty() and new.record()[4:] == [[], [0, 5, 2]]


def test_genesis_orders_section_defaults_and_ranges() -> None:
    g = make_genesis()
    assert (g.schedule_cancel_min_ms, g.schedule_cancel_per_day) == (5_000, 10)
    assert "orders" not in g.raw  # documents without the section keep their hash
    with pytest.raises(ValueError, match="orders"):
        make_genesis(orders={"schedule_cancel_per_day": 0})
    with pytest.raises(ValueError, match="unknown"):
        make_genesis(orders={"nope": 1})
    assert isinstance(make_genesis(orders={"schedule_cancel_min_ms": 0}), Genesis)


# ---------------------------------------------------------------- property

_step = st.one_of(
    st.tuples(st.just("gtt"), st.integers(0, 1), st.integers(-2_000, 8_000)),
    st.tuples(st.just("gtc"), st.integers(0, 1), st.just(0)),
    st.tuples(st.just("dms"), st.integers(0, 1), st.integers(0, 20_000)),
    st.tuples(st.just("clear"), st.integers(0, 1), st.just(0)),
    st.tuples(st.just("jump"), st.just(0), st.integers(0, 10_000)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_step, min_size=1, max_size=25))
def test_no_expired_order_survives_a_block_and_no_switch_fires_early(steps: list[tuple[str, int, int]]) -> None:
    chain = Chain()
    keys = (A, B)
    for k in keys:
        chain.fund(k, USDC, 1_000_000_000_000)
    deadlines: dict[bytes, int] = {}
    for i, (kind, who, arg) in enumerate(steps):
        k = keys[who]
        if kind == "jump":
            chain.time += arg
            result = chain.block()
        else:
            if kind == "gtt":
                action: Any = _gtt(chain.time + 1000 + arg, price=50_000 + i)
            elif kind == "gtc":
                action = _gtt(None, price=50_000 + i)
            elif kind == "dms":
                action = ScheduleCancel(chain.time + 1000 + arg)
            else:
                action = ScheduleCancel(None)
            result = chain.block(chain.sign(k, action))
        now = chain.time
        for fired in _dead_men(result):  # fired in begin_block, before the block's transaction
            assert fired.deadline_ms <= now  # never early
            assert deadlines.get(fired.account) == fired.deadline_ms
            deadlines[fired.account] = 0
        if kind in ("dms", "clear") and result.receipts[0].code == Code.OK:
            deadlines[k.address] = action.time_ms or 0
        for book in chain.ex.books.values():
            for order in book.orders.values():
                assert not order.expires_at or order.expires_at >= now
        for deadline in deadlines.values():
            assert not deadline or deadline > now  # a due switch has fired
    fork = chain.fork()
    assert fork.ex.snapshot_records() == chain.ex.snapshot_records()


def test_stale_heap_entries_are_compacted(chain: Chain) -> None:
    """Place-and-cancel of far-future GTT orders leaves stale entries; a heap past its bound
    is rebuilt from the live orders and armed switches only."""
    from state.lifetimes import COMPACT_SLACK

    far = chain.time + 10**9
    oid = chain.result(A, _gtt(far)).oid
    chain.result(A, ScheduleCancel(far))
    for i in range(COMPACT_SLACK + 5):
        chain.ex.order_expiries.append((far + i, 10**6 + i, BTC_SPOT))  # as if placed and cancelled
        chain.ex.dead_men.append((far + i, B.address))  # as if renewed
    _empty_block(chain)
    assert chain.ex.order_expiries == [(far, oid, BTC_SPOT)]
    assert chain.ex.dead_men == [(far, A.address)]
    assert chain.ex.lifetime_heap_bounds == [2 + COMPACT_SLACK, 2 + COMPACT_SLACK]


def test_views_show_expiry_and_dead_man(chain: Chain) -> None:
    from state import views

    expiry = chain.time + 60_000
    chain.result(A, _gtt(expiry))
    assert views.open_orders_view(chain.ex, A.address)[0]["expires_at_ms"] == expiry
    assert views.margin_summary(chain.ex, A.address)["dead_man"] == {
        "deadline_ms": None, "used_today": 0, "per_day_limit": 10}
    deadline = chain.time + 60_000
    chain.result(A, ScheduleCancel(deadline))
    assert views.margin_summary(chain.ex, A.address)["dead_man"] == {
        "deadline_ms": deadline, "used_today": 1, "per_day_limit": 10}
    verdict = views.can_place_order(chain.ex, A.address, _gtt(chain.time))
    assert verdict["name"] == "ORDER_EXPIRED"
