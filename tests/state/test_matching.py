"""Named matching-engine cases with hand-computed numbers.

BTC/USDC: tick $1, lot 0.0001 BTC (10,000 sats), so one tick on one lot is 100 micro-USDC
(tick_value = 100). Fees: maker 100 ppm, taker 350 ppm, rounded up.
"""

from __future__ import annotations

import pytest

from state import lapse
from state.errors import Code
from state.genesis import FEE_ACCOUNT
from state.tx import Cancel, CancelAll, Modify, Tif
from tests.harness import BTC, BTC_PERP, BTC_SPOT, USDC, Chain, key

A, B, C = key(10), key(11), key(12)


@pytest.fixture
def chain() -> Chain:
    c = Chain()
    for k in (A, B, C):
        c.fund(k, USDC, 1_000_000_000_000)  # $1M
        c.fund(k, BTC, 100 * 10**8)  # 100 BTC
    return c


def test_crossing_trades_at_maker_price_with_fees(chain: Chain) -> None:
    assert chain.order(A, BTC_SPOT, False, 60_000, 10).status == "resting"
    r = chain.order(B, BTC_SPOT, True, 60_010, 10)
    assert r.status == "filled" and r.filled == 10
    (fill,) = r.fills
    assert (fill.price, fill.size, fill.maker_fee, fill.taker_fee) == (60_000, 10, 6_000, 21_000)
    assert chain.balance(B, BTC) == 100 * 10**8 + 100_000
    assert chain.balance(B, USDC) == 1_000_000_000_000 - 60_000_000 - 21_000
    assert chain.locked(B, USDC) == 0  # price improvement and fee headroom returned
    assert chain.balance(A, USDC) == 1_000_000_000_000 + 60_000_000 - 6_000
    assert chain.locked(A, BTC) == 0
    assert chain.ex.accounts[FEE_ACCOUNT].balance(USDC) == 27_000


def test_partial_fill_leaves_maker_resting(chain: Chain) -> None:
    chain.order(A, BTC_SPOT, False, 60_000, 10)
    r = chain.order(B, BTC_SPOT, True, 60_000, 4)
    assert (r.status, r.filled) == ("filled", 4)
    assert lapse.depth(chain.ex, BTC_SPOT, 1)[1] == [(60_000, 6, 1)]
    assert chain.locked(A, BTC) == 6 * 10_000


def test_taker_remainder_rests_after_partial_fill(chain: Chain) -> None:
    chain.order(A, BTC_SPOT, False, 60_000, 3)
    r = chain.order(B, BTC_SPOT, True, 60_000, 5)
    assert (r.status, r.filled, r.resting) == ("resting", 3, 2)
    assert lapse.depth(chain.ex, BTC_SPOT, 1)[0] == [(60_000, 2, 1)]
    assert chain.locked(B, USDC) == 2 * (6_000_000 + 2_100)


def test_fifo_within_a_level(chain: Chain) -> None:
    first = chain.order(A, BTC_SPOT, False, 60_000, 5).oid
    second = chain.order(C, BTC_SPOT, False, 60_000, 5).oid
    r = chain.order(B, BTC_SPOT, True, 60_000, 7)
    assert [(f.maker_oid, f.size) for f in r.fills] == [(first, 5), (second, 2)]


def test_better_price_first(chain: Chain) -> None:
    chain.order(A, BTC_SPOT, False, 60_005, 5)
    cheap = chain.order(C, BTC_SPOT, False, 60_001, 5).oid
    r = chain.order(B, BTC_SPOT, True, 60_010, 5)
    assert [(f.maker_oid, f.price) for f in r.fills] == [(cheap, 60_001)]


def test_self_trade_prevention_cancels_resting(chain: Chain) -> None:
    own = chain.order(A, BTC_SPOT, False, 60_000, 5).oid
    other = chain.order(C, BTC_SPOT, False, 60_000, 5).oid
    result = chain.block(chain.sign(A, _place(BTC_SPOT, True, 60_000, 5)))
    r = result.receipts[0].results[0]
    assert [f.maker_oid for f in r.fills] == [other]
    assert own not in chain.ex.books[BTC_SPOT].orders
    reasons = [e.reason for _, e in result.events if type(e).__name__ == "Cancelled"]
    assert reasons == ["self_trade"]
    assert chain.locked(A, BTC) == 0


def test_alo_rejected_if_it_would_cross_and_rests_otherwise(chain: Chain) -> None:
    chain.order(A, BTC_SPOT, False, 60_000, 5)
    before = chain.sm.app_hash
    r = chain.order(B, BTC_SPOT, True, 60_000, 5, tif=Tif.ALO)
    assert r.code == Code.ALO_WOULD_CROSS
    assert chain.ex.books[BTC_SPOT].best_bid() is None
    assert chain.order(B, BTC_SPOT, True, 59_999, 5, tif=Tif.ALO).status == "resting"
    assert before != chain.sm.app_hash


def test_ioc_remainder_cancelled(chain: Chain) -> None:
    chain.order(A, BTC_SPOT, False, 60_000, 3)
    r = chain.order(B, BTC_SPOT, True, 60_000, 10, tif=Tif.IOC)
    assert (r.status, r.filled, r.resting) == ("filled", 3, 0)
    assert chain.ex.books[BTC_SPOT].best_bid() is None
    assert chain.locked(B, USDC) == 0


def test_ioc_with_nothing_to_match_is_rejected(chain: Chain) -> None:
    r = chain.order(B, BTC_SPOT, True, 60_000, 10, tif=Tif.IOC)
    assert r.code == Code.IOC_NO_FILL


def test_reduce_only_never_increases_position(chain: Chain) -> None:
    assert chain.order(A, BTC_PERP, False, 60_000, 10, reduce_only=True).code == Code.REDUCE_ONLY_WOULD_INCREASE
    chain.order(C, BTC_PERP, False, 60_000, 10)
    chain.order(A, BTC_PERP, True, 60_000, 10)  # A long 10
    assert chain.order(A, BTC_PERP, True, 60_000, 1, reduce_only=True).code == Code.REDUCE_ONLY_WOULD_INCREASE
    chain.order(C, BTC_PERP, True, 59_000, 50)
    r = chain.order(A, BTC_PERP, False, 59_000, 25, reduce_only=True)
    assert (r.status, r.filled) == ("filled", 10)  # clipped to the position
    assert chain.ex.accounts[A.address].positions[BTC_PERP].size == 0


def test_reduce_only_on_spot_is_rejected(chain: Chain) -> None:
    assert chain.order(A, BTC_SPOT, False, 60_000, 10, reduce_only=True).code == Code.REDUCE_ONLY_NOT_PERP


def test_cancel_by_cloid_and_unknown_cloid(chain: Chain) -> None:
    cloid = b"c" * 16
    oid = chain.order(A, BTC_SPOT, True, 50_000, 5, cloid=cloid).oid
    assert chain.order(A, BTC_SPOT, True, 50_000, 5, cloid=cloid).code == Code.DUPLICATE_CLOID
    r = chain.result(A, Cancel(BTC_SPOT, None, cloid))
    assert (r.code, r.oid) == (Code.OK, oid)
    assert chain.locked(A, USDC) == 0
    assert chain.result(A, Cancel(BTC_SPOT, None, cloid)).code == Code.UNKNOWN_ORDER


def test_cannot_cancel_another_accounts_order(chain: Chain) -> None:
    oid = chain.order(A, BTC_SPOT, True, 50_000, 5).oid
    assert chain.result(B, Cancel(BTC_SPOT, oid, None)).code == Code.UNKNOWN_ORDER


def test_cancel_all_per_market(chain: Chain) -> None:
    chain.order(A, BTC_SPOT, True, 50_000, 5)
    chain.order(A, BTC_SPOT, True, 50_001, 5)
    chain.order(A, BTC_PERP, True, 50_000, 5)
    chain.result(A, CancelAll(BTC_SPOT))
    assert set(chain.ex.accounts[A.address].open_orders.values()) == {BTC_PERP}
    chain.result(A, CancelAll(None))
    assert chain.ex.accounts[A.address].open_orders == {}
    assert chain.ex.accounts[A.address].orders == {}


def test_modify_size_down_keeps_priority(chain: Chain) -> None:
    first = chain.order(A, BTC_SPOT, False, 60_000, 10).oid
    chain.order(C, BTC_SPOT, False, 60_000, 10)
    r = chain.result(A, Modify(BTC_SPOT, first, None, 60_000, 4))
    assert (r.oid, r.resting) == (first, 4)
    assert chain.locked(A, BTC) == 4 * 10_000
    fill = chain.order(B, BTC_SPOT, True, 60_000, 4).fills[0]
    assert fill.maker_oid == first


def test_modify_price_loses_priority(chain: Chain) -> None:
    first = chain.order(A, BTC_SPOT, False, 60_001, 10).oid
    second = chain.order(C, BTC_SPOT, False, 60_000, 10).oid
    r = chain.result(A, Modify(BTC_SPOT, first, None, 60_000, 10))
    assert r.code == Code.OK and r.oid != first
    fill = chain.order(B, BTC_SPOT, True, 60_000, 4).fills[0]
    assert fill.maker_oid == second


def test_modify_size_up_loses_priority(chain: Chain) -> None:
    first = chain.order(A, BTC_SPOT, False, 60_000, 10).oid
    second = chain.order(C, BTC_SPOT, False, 60_000, 10).oid
    new = chain.result(A, Modify(BTC_SPOT, first, None, 60_000, 12)).oid
    fills = chain.order(B, BTC_SPOT, True, 60_000, 12).fills
    assert [f.maker_oid for f in fills] == [second, new]


def test_rejected_modify_keeps_the_original(chain: Chain) -> None:
    """Portfolio margin lets a spot buy borrow USDC (3 lots for $18 on $13 passes now), but
    not $15,000 of BTC on $13: the modify is rejected and the original order stays."""
    poor = key(20)
    chain.fund(poor, USDC, 13_000_000)
    oid = chain.order(poor, BTC_SPOT, True, 60_000, 2).oid
    r = chain.result(poor, Modify(BTC_SPOT, oid, None, 60_000, 2_500))
    assert r.code == Code.INSUFFICIENT_BALANCE
    assert oid in chain.ex.books[BTC_SPOT].orders
    assert chain.locked(poor, USDC) == 2 * (6_000_000 + 2_100)


def test_perp_fill_moves_positions_and_realizes_pnl(chain: Chain) -> None:
    chain.order(A, BTC_PERP, False, 60_000, 10)
    chain.order(B, BTC_PERP, True, 60_000, 10)
    pa = chain.ex.accounts[A.address].positions[BTC_PERP]
    pb = chain.ex.accounts[B.address].positions[BTC_PERP]
    assert (pa.size, pa.entry_notional, pb.size, pb.entry_notional) == (-10, 60_000_000, 10, 60_000_000)
    usdc_b = chain.balance(B, USDC)
    chain.order(C, BTC_PERP, True, 61_000, 4)
    r = chain.order(B, BTC_PERP, False, 61_000, 4)  # B closes 4 at +$100 per BTC
    fee = r.fills[0].taker_fee
    assert chain.balance(B, USDC) == usdc_b + 4 * 1_000 * 100 - fee
    assert pb.size == 6 and pb.entry_notional == 36_000_000 and pb.realized_pnl == 400_000


def test_fee_and_realized_pnl_round_against_the_account(chain: Chain) -> None:
    from state.account import Position
    from state.risk import fee

    assert fee(1, 350) == 1 and fee(2_857, 350) == 1 and fee(2_858, 350) == 2
    long = Position()
    long.apply_fill(3, 10, 1)  # 3 lots at 10: entry 30
    long.apply_fill(-3, 10, 1)
    pos = Position(3, 31, 0)  # entry 31 over 3 lots: closing 1 takes ceil(31/3) = 11 of basis
    assert pos.apply_fill(-1, 10, 1) == 10 - 11
    short = Position(-3, 31, 0)  # a short's basis rounds down: floor(31/3) = 10
    assert short.apply_fill(1, 10, 1) == 10 - 10


def test_perp_order_needs_margin(chain: Chain) -> None:
    """$60 of BTC-PERP (no mark yet: the order price is the reference) needs, for initial
    margin: the 5% scenario loss 3_000_000 + the size add-on
    ceil(60e6 * 1000 ppm * isqrt(60e6 * 1e12 / 1e12) / 1e12) = 465 + the worst-case taker fee
    21_000 = 3_021_465 micro-USDC."""
    poor = key(21)
    chain.fund(poor, USDC, 3_021_464)
    r = chain.order(poor, BTC_PERP, True, 60_000, 10)
    assert r.code == Code.INSUFFICIENT_MARGIN and "shortfall 1" in r.message
    chain.fund(poor, USDC, 1)
    assert chain.order(poor, BTC_PERP, True, 60_000, 10).status == "resting"


def test_write_set_holds_only_records_that_changed(chain: Chain) -> None:
    """Resting and cancelling orders leave the account record as it was (open orders are
    derived from the books), so their blocks write no account record; an order placed and
    cancelled in the same block was never stored and writes nothing."""
    from state import records
    from state.tx import Cancel

    placed = chain.block(chain.sign(A, _place(BTC_SPOT, False, 61_000, 5)))
    oid = placed.receipts[0].results[0].oid
    assert [k for k, _ in placed.write_digests if k[:1] in (records.ORDER, records.ACCOUNT)] == [
        records.order_key(oid)]
    cancelled = chain.block(chain.sign(A, Cancel(BTC_SPOT, oid, None)))
    assert [(k, d) for k, d in cancelled.write_digests if k[:1] in (records.ORDER, records.ACCOUNT)] == [
        (records.order_key(oid), b"")]
    same_block = chain.block(chain.sign(A, _place(BTC_SPOT, False, 61_000, 5)),
                             chain.sign(B, _place(BTC_SPOT, True, 61_000, 5)))
    rested, taken = (r.results[0] for r in same_block.receipts)
    assert (rested.status, taken.status) == ("resting", "filled")
    assert [k for k, _ in same_block.write_digests if k[:1] in (records.ORDER, records.ACCOUNT)] == sorted(
        records.account_key(a) for a in (A.address, B.address, FEE_ACCOUNT)), "the filled maker order was never stored"


def _place(market: int, is_buy: bool, price: int, size: int) -> object:
    from state.tx import PlaceOrder

    return PlaceOrder(market, is_buy, price, size, Tif.GTC, False, None)
