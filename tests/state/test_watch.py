"""The liquidation watch: which accounts a block checks, without checking all of them."""

from __future__ import annotations

from state import records, risk
from state.tx import Borrow, Tif, Withdraw
from tests.harness import BTC, BTC_PERP, BTC_SPOT, ETH, USDC, Chain, key
from tests.state.riskkit import BTC_UNIT, PX_60K, USD, risk_chain, set_prices

L, S, LN, B, N = (key(i) for i in range(180, 185))


def _written(c: Chain, k: object) -> bool:
    """Was the account re-armed (or otherwise written) by the last block?"""
    keys = {key for key, _ in c.last.write_digests}  # type: ignore[attr-defined]
    address = k.address  # type: ignore[attr-defined]
    return records.account_key(address) in keys or records.watch_key(address) in keys


def _long(c: Chain, usdc: int = 20_000) -> None:
    set_prices(c, btc=PX_60K)
    c.fund(L, USDC, usdc * USD)
    c.fund(S, USDC, 1_000_000 * USD)
    c.order(S, BTC_PERP, False, 60_000, 10_000)
    c.order(L, BTC_PERP, True, 60_000, 10_000, tif=Tif.IOC)


def test_an_account_is_armed_with_price_triggers_around_its_prices() -> None:
    c = risk_chain()
    _long(c)
    w = c.ex.accounts[L.address].watch
    x, sources, budget, refs, due = w
    # equity ~$19,979, maintenance ~$1,807 on a $60k notional: X = (3/4 * 18,172) / (~67,2k + 3.6k),
    # ~19%, and a fresh arming uses half of it
    assert 90_000 < x < 100_000
    assert sources == [[1000 + BTC_PERP, PX_60K * (10**6 + x) // 10**6, -(-PX_60K * (10**6 - x) // 10**6)]]
    assert budget is not None and refs == [[BTC_PERP, 0]] and due is None  # no debt: no time trigger
    assert c.ex.accounts[S.address].watch is not None
    c.fund(N, USDC, 1_000 * USD)
    assert c.ex.accounts[N.address].watch is None  # no liabilities: never watched


def test_small_moves_check_nobody_and_a_move_past_a_trigger_checks_the_account() -> None:
    c = risk_chain()
    _long(c)
    w = c.ex.accounts[L.address].watch
    down = w[1][0][2]
    set_prices(c, btc=59_000 * USD)  # -1.7%: inside the band
    assert not _written(c, L)
    set_prices(c, btc=down + USD)
    assert not _written(c, L)
    set_prices(c, btc=down - USD)  # past the trigger: checked (healthy) and re-armed lower
    assert _written(c, L)
    new = c.ex.accounts[L.address].watch
    assert new[1][0][2] < down
    a = risk.maintenance(c.ex, c.ex.accounts[L.address])
    assert a.equity > a.requirement


def test_a_borrower_is_due_when_its_interest_budget_runs_out() -> None:
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(LN, USDC, 100_000 * USD)
    c.fund(B, BTC, BTC_UNIT)
    c.block(c.sign(B, Borrow(USDC, 50_000 * USD)), c.sign(B, Withdraw(USDC, 50_000 * USD, b"out")))
    w = c.ex.accounts[B.address].watch
    due = w[4]
    assert due is not None and due > c.time + 1000
    c.block()
    assert not _written(c, B)
    c.time = due  # the next block is past the due time
    c.block()
    assert _written(c, B) and c.ex.accounts[B.address].watch[4] > due


def test_the_watch_is_rebuilt_from_records_on_restart(tmp_path: object) -> None:
    c = risk_chain(str(tmp_path))
    _long(c)
    down = c.ex.accounts[L.address].watch[1][0][2]
    c.reopen()
    heap = c.ex.watch.down[1000 + BTC_PERP]
    assert (-down, L.address) in heap
    set_prices(c, btc=down - USD)
    assert _written(c, L)


def test_scenario_shortcut_equals_the_grid_maximum() -> None:
    for move in (0, 1, -1, 7 * 10**12, -(3 * 10**15) - 1, 123_456_789):
        grid = max(max(-j * move for j in risk.GRID), 0)
        assert risk.scenario_loss(move) == -(-grid // (3 * 10**6))


def test_views_for_rpc() -> None:
    from state import views

    c = risk_chain()
    _long(c)
    pools = views.pools_view(c.ex)
    assert pools[USDC]["supplied"] > 0 and pools[USDC]["surplus"] >= 0
    mk = views.markets_view(c.ex)[BTC_PERP]
    assert mk["mark_price"] == PX_60K and mk["open_interest_lots"] == 10_000
    orc = views.oracle_view(c.ex)
    assert orc[0]["symbol"] == "BTC" and orc[0]["price"] == PX_60K and orc[0]["submissions"]
    assert views.insurance_view(c.ex)["equity"] >= 0


def _heap_entries(c: Chain, address: bytes) -> int:
    w = c.ex.watch
    heaps = [*w.up.values(), *w.down.values(), w.timeq, *w.fund.values()]
    return sum(1 for heap in heaps for _, a in heap if a == address)


def test_an_unchanged_unfired_arming_is_not_pushed_again_and_a_fired_one_is() -> None:
    from state import watch

    c = risk_chain()
    _long(c)
    acct = c.ex.accounts[L.address]
    armed = _heap_entries(c, L.address)
    assert armed > 0
    watch.arm(c.ex, acct, risk.maintenance(c.ex, acct, detail=True))  # same arming, nothing popped
    assert _heap_entries(c, L.address) == armed
    down = acct.watch[1][0][2]
    set_prices(c, btc=down - USD)  # fires: checked and re-armed, all of its triggers live again
    assert L.address not in c.ex.watch.fired
    assert acct.watch[1][0][2] < down
    set_prices(c, btc=acct.watch[1][0][2] - USD)  # and the new arming fires in turn
    assert _written(c, L)


def test_reserved_of_is_the_reserved_map_entry() -> None:
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(N, USDC, 1_000_000 * USD)
    c.fund(N, BTC, 10 * BTC_UNIT)
    c.order(N, BTC_SPOT, True, 59_000, 10_000)
    c.order(N, BTC_SPOT, False, 61_000, 20_000)
    acct = c.ex.accounts[N.address]
    full = risk.reserved(c.ex, acct)
    assert set(full) == {USDC, BTC} and all(risk.reserved_of(c.ex, acct, a) == v for a, v in full.items())
    assert risk.reserved_of(c.ex, acct, ETH) == 0


def test_a_check_keeps_an_arming_that_is_still_tight_enough() -> None:
    c = risk_chain()
    _long(c)
    acct = c.ex.accounts[L.address]
    w, armed = acct.watch, _heap_entries(c, L.address)
    c.fund(L, USDC, 1_000 * USD)  # touched, so checked: more buffer, the old band is inside the new one
    set_prices(c, btc=PX_60K + 300 * USD)  # a move well inside the half-width band
    assert acct.watch is w and _heap_entries(c, L.address) == armed
    assert L.address not in c.ex.watch.fired


def test_a_check_re_arms_when_the_arming_in_place_is_too_loose() -> None:
    c = risk_chain()
    _long(c)
    acct = c.ex.accounts[L.address]
    w = acct.watch
    c.order(S, BTC_PERP, False, 60_000, 20_000)
    c.order(L, BTC_PERP, True, 60_000, 20_000, tif=Tif.IOC)  # three times the notional: a far smaller X
    new = acct.watch
    assert new is not w and new[0] < w[0]
    assert new[1][0][2] > w[1][0][2] and new[1][0][1] < w[1][0][1]  # both triggers moved in
    # and the tighter arming is what guards it: a move past its down trigger checks it
    set_prices(c, btc=new[1][0][2] - USD)
    assert _written(c, L)


def test_keeping_follows_the_full_allowance_exactly() -> None:
    """``_keeps`` accepts an arming at the edge of the full band and refuses one a unit past it."""
    from state import watch

    c = risk_chain()
    _long(c)
    acct = c.ex.accounts[L.address]
    mm = risk.maintenance(c.ex, acct, detail=True)
    x, _sources, budget, refs, due = acct.watch
    full = 2 * x + 1  # a full allowance of which x is half
    (src, px, _e), = mm.sources
    up, down = px * (10**6 + full) // 10**6, -(-px * (10**6 - full) // 10**6)
    held = [m for m, _ in refs]
    edge = [x, [[src, up, down]], budget, refs, due]
    assert watch._keeps(c.ex, edge, mm, full, budget, held, None)
    assert not watch._keeps(c.ex, [x, [[src, up + 1, down]], budget, refs, due], mm, full, budget, held, None)
    assert not watch._keeps(c.ex, [x, [[src, up, down - 1]], budget, refs, due], mm, full, budget, held, None)
    assert not watch._keeps(c.ex, [x, [], budget, refs, due], mm, full, budget, held, None)  # a price unguarded
    assert not watch._keeps(c.ex, [x, [[src, up, down]], None, [], due], mm, full, budget, held, None)
    assert not watch._keeps(c.ex, edge, mm, full, budget, held, 10)  # a debt and no due time
    assert budget is not None
    assert watch._keeps(c.ex, [x, [[src, up, down]], 2 * budget, refs, due], mm, full, 2 * budget, held, None)
    assert not watch._keeps(c.ex, [x, [[src, up, down]], 2 * budget + 1, refs, due], mm, full, 2 * budget, held, None)


def test_an_arming_with_a_reached_trigger_is_replaced_even_if_it_covers() -> None:
    """Whether a trigger fired is read from the state, not from ``Watch.fired`` (which a
    heap compaction empties): an arming whose down trigger the price has reached is
    replaced, though it is tighter than the fresh arming would be."""
    from state import watch

    c = risk_chain()
    _long(c)
    acct = c.ex.accounts[L.address]
    mm = risk.maintenance(c.ex, acct, detail=True)
    x, sources, budget, refs, due = acct.watch
    (src, up, _down), = sources
    (_src, px, _e), = mm.sources
    reached = [x, [[src, up, px]], budget, refs, due]  # down trigger at the price itself
    acct.watch = reached
    assert not c.ex.watch.fired
    watch.arm(c.ex, acct, mm)
    assert acct.watch != reached
    new = acct.watch[1][0]
    assert new[2] < px < new[1]
