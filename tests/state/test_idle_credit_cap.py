"""An idle credit cannot take a pool past its utilization cap (state/lending.py, "Liquidity").

The exploit, before the fix: a supplier sold its lent-out supply (a spot sale of the asset, or
a perp loss paid in USDC) to its own second account with auto-lend off. The fill moved the
amount out of the pool into that account's ``idle``, which was withdrawable without any
check: the pool's cash left past the cap, and the other lenders were locked out
(UTILIZATION_CAP / POOL_ILLIQUID) at a utilization far above it. Now the part of an idle
credit the pool could not pay a withdrawing supplier is lent (supply of the receiving
account), and only what a supplier could have withdrawn stays idle.
"""

from __future__ import annotations

import dataclasses

from hypothesis import event, given, settings
from hypothesis import strategies as st

from state.errors import Code, TxError
from state.genesis import AssetRisk
from state.lending import Pool
from state.muldiv import ONE
from state.tx import (
    Borrow,
    Lend,
    PlaceOrder,
    SetMarginMode,
    Tif,
    Transfer,
    UpdateIsolatedMargin,
    Withdraw,
)
from tests.harness import BTC, BTC_PERP, BTC_SPOT, USDC, Chain, key
from tests.state.invariants import check_value_conserved
from tests.state.riskkit import BTC_UNIT, PX_60K, USD, risk_chain, set_prices

SUPPLIER, IDLE_TWIN, OTHER_LENDER, BORROWER = key(150), key(151), key(152), key(153)


def _within_cap(c: Chain, asset: int) -> bool:
    pool = c.ex.pools[asset]
    return bool(pool.utilization_ppm() <= pool.params.util_cap_ppm)


def _btc_pool_at_83pct() -> Chain:
    """1.2 BTC supplied (1 BTC by SUPPLIER), 1 BTC borrowed: a supplier may withdraw
    1.2e8 - ceil(1e8 / 0.95) = 14,736,842 sats before the 95% cap."""
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(OTHER_LENDER, BTC, 20_000_000)
    c.fund(SUPPLIER, BTC, BTC_UNIT)
    c.fund(BORROWER, USDC, 200_000 * USD)
    assert c.result(BORROWER, Borrow(BTC, BTC_UNIT)).code == Code.OK
    assert c.result(BORROWER, Withdraw(BTC, BTC_UNIT, b"out")).code == Code.OK
    c.fund(IDLE_TWIN, USDC, 70_000 * USD)
    assert c.result(IDLE_TWIN, Lend(BTC, False)).code == Code.OK
    return c


def test_a_spot_sale_into_an_idle_bid_does_not_bypass_the_cap() -> None:
    c = _btc_pool_at_83pct()
    headroom = c.ex.pools[BTC].headroom()
    assert 14_700_000 < headroom < 14_736_843
    assert c.order(IDLE_TWIN, BTC_SPOT, True, 60_000, 10_000).status == "resting"  # 1 BTC
    sale = c.result(SUPPLIER, PlaceOrder(BTC_SPOT, False, 60_000, 10_000, Tif.IOC, False, None))
    assert sale.status == "filled"
    twin = c.ex.accounts[IDLE_TWIN.address]
    assert BTC_UNIT - 2 <= twin.balance(BTC) <= BTC_UNIT  # the purchase is the twin's (less share rounding)
    assert _within_cap(c, BTC)  # before the fix: 1e8 / 0.2e8 = 500%
    idle = twin.idle[BTC]
    assert headroom - 10 <= idle <= headroom  # only what a supplier could have withdrawn is idle
    assert c.ex.pools.supplied(twin, BTC) >= BTC_UNIT - idle - 1  # the rest is lent and earns
    # the lent part leaves only as a supplier's withdrawal would: checked against the cap
    assert c.result(IDLE_TWIN, Withdraw(BTC, BTC_UNIT - 2, b"out")).code == Code.POOL_ILLIQUID
    assert c.result(IDLE_TWIN, Withdraw(BTC, idle + 1, b"out")).code == Code.UTILIZATION_CAP
    assert c.result(IDLE_TWIN, Withdraw(BTC, idle, b"out")).code == Code.OK
    check_value_conserved(c.ex, {BTC: 20_000_000 + BTC_UNIT - BTC_UNIT - idle, USDC: 270_000 * USD})


def _usdc_pool_at_94pct(twin_deposit: int) -> Chain:
    """$100k supplied by SUPPLIER, $94k borrowed: a supplier may withdraw about $1,052."""
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(SUPPLIER, USDC, 100_000 * USD)
    c.fund(BORROWER, BTC, 5 * BTC_UNIT)
    assert c.result(BORROWER, Borrow(USDC, 94_000 * USD)).code == Code.OK
    assert c.result(BORROWER, Withdraw(USDC, 94_000 * USD, b"out")).code == Code.OK
    assert c.result(IDLE_TWIN, Lend(USDC, False)).code == Code.OK
    if twin_deposit:
        c.fund(IDLE_TWIN, USDC, twin_deposit)  # a deposit into an idle account leaves the pool as it is
    return c


def test_turning_lending_off_is_a_checked_withdrawal() -> None:
    c = _usdc_pool_at_94pct(0)
    assert c.result(SUPPLIER, Lend(USDC, False)).code == Code.POOL_ILLIQUID  # all $100k would leave
    c.fund(OTHER_LENDER, USDC, 2_000 * USD)  # supplied: the pool may pay it back
    assert c.result(OTHER_LENDER, Lend(USDC, False)).code == Code.OK
    assert _within_cap(c, USDC)


def test_a_perp_loss_paid_into_an_idle_twin_does_not_bypass_the_cap() -> None:
    """The USDC variant: the supplier's perp loss is its twin's realized profit, credited to
    the twin's idle USDC."""
    c = _usdc_pool_at_94pct(20_000 * USD)
    pool = c.ex.pools[USDC]
    headroom = pool.headroom()  # 100k - 94k / 0.95, about $1,052
    assert 1_000 * USD < headroom < 1_100 * USD
    assert c.order(IDLE_TWIN, BTC_PERP, False, 60_000, 50_000).status == "resting"  # 5 BTC short
    assert c.order(SUPPLIER, BTC_PERP, True, 60_000, 50_000, tif=Tif.IOC).status == "filled"
    assert c.order(IDLE_TWIN, BTC_PERP, True, 59_400, 50_000).status == "resting"  # its close
    close = c.result(SUPPLIER, PlaceOrder(BTC_PERP, False, 59_400, 50_000, Tif.IOC, True, None))
    assert close.status == "filled"  # the supplier's $3,000 loss is the twin's profit
    twin = c.ex.accounts[IDLE_TWIN.address]
    assert not twin.positions[BTC_PERP].size
    assert _within_cap(c, USDC)  # before the fix: 94k / 97k = 96.9%
    gain = twin.balance(USDC) - 20_000 * USD
    assert 2_900 * USD < gain < 3_000 * USD  # less the fees
    assert c.result(IDLE_TWIN, Withdraw(USDC, twin.balance(USDC), b"out")).code == Code.UTILIZATION_CAP
    idle = twin.idle[USDC]
    assert 20_000 * USD + headroom - 2 * USD < idle <= 20_000 * USD + headroom
    assert c.result(IDLE_TWIN, Withdraw(USDC, idle, b"out")).code == Code.OK


def test_perp_pnl_realized_at_the_funding_boundary_does_not_bypass_the_cap() -> None:
    """The same without a trade: at the hourly boundary (``end_block``) every position's PnL
    to the mark is realized into USDC, the supplier's loss from its supply, the twin's profit
    into its idle balance."""
    c = _usdc_pool_at_94pct(20_000 * USD)
    assert c.order(IDLE_TWIN, BTC_PERP, False, 60_000, 50_000).status == "resting"  # 5 BTC short
    assert c.order(SUPPLIER, BTC_PERP, True, 60_000, 50_000, tif=Tif.IOC).status == "filled"
    set_prices(c, btc=59_000 * USD)
    twin = c.ex.accounts[IDLE_TWIN.address]
    assert twin.balance(USDC) <= 20_000 * USD  # not realized yet
    headroom = c.ex.pools[USDC].headroom()
    c.time += 3_600_000
    c.block()
    assert twin.balance(USDC) > 24_000 * USD  # the $5,000 move, less funding
    assert _within_cap(c, USDC)  # before the fix: 94k / 95k = 98.9%
    assert twin.idle[USDC] <= 20_000 * USD + headroom
    assert c.result(IDLE_TWIN, Withdraw(USDC, twin.balance(USDC), b"out")).code == Code.UTILIZATION_CAP


def test_a_transfer_to_an_idle_account_is_checked_already_and_unchanged() -> None:
    """A transfer's sender is checked as a withdrawal (supply past the cap is refused), so an
    idle receiver keeps everything it is sent."""
    c = _btc_pool_at_83pct()
    assert c.result(SUPPLIER, Transfer(IDLE_TWIN.address, BTC, 18_000_000)).code == Code.UTILIZATION_CAP
    assert c.result(SUPPLIER, Transfer(IDLE_TWIN.address, BTC, 10_000_000)).code == Code.OK
    assert c.ex.accounts[IDLE_TWIN.address].idle[BTC] == 10_000_000
    assert BTC not in c.ex.accounts[IDLE_TWIN.address].scaled


def test_idle_to_idle_trades_are_untouched_above_the_cap() -> None:
    """A sale paid from idle moves nothing out of the pool: the idle buyer keeps all of it,
    even while the pool is above its cap (only what the step took from the pool is lent)."""
    c = _btc_pool_at_83pct()
    seller = key(154)
    c.fund(seller, USDC, 1_000 * USD)
    assert c.result(seller, Lend(BTC, False)).code == Code.OK
    c.fund(seller, BTC, 10_000_000)
    # the supplier's sale to the twin takes the pool to its cap (the rest of it is lent)
    assert c.order(IDLE_TWIN, BTC_SPOT, True, 60_000, 5_000).status == "resting"
    assert c.order(SUPPLIER, BTC_SPOT, False, 60_000, 5_000, tif=Tif.IOC).status == "filled"
    assert c.ex.pools[BTC].headroom() < 1_000  # at the cap, but for a block of interest
    twin = c.ex.accounts[IDLE_TWIN.address]
    idle_before = twin.idle[BTC]
    assert c.order(IDLE_TWIN, BTC_SPOT, True, 60_000, 1_000).status == "resting"
    assert c.order(seller, BTC_SPOT, False, 60_000, 1_000, tif=Tif.IOC).status == "filled"
    assert twin.idle[BTC] == idle_before + 10_000_000


def test_an_isolated_account_swept_back_to_an_idle_owner_is_capped() -> None:
    """Switching an isolated market back to cross moves the isolated account's balances
    (supplied: its lending is on) to the owner: with the owner's lending off, that is
    supply turned idle without a check, and the same rule applies."""
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(SUPPLIER, USDC, 100_000 * USD)
    c.fund(BORROWER, BTC, 5 * BTC_UNIT)
    assert c.result(BORROWER, Borrow(USDC, 90_000 * USD)).code == Code.OK
    assert c.result(IDLE_TWIN, Lend(USDC, False)).code == Code.OK
    c.fund(IDLE_TWIN, USDC, 30_000 * USD)
    assert c.result(IDLE_TWIN, SetMarginMode(BTC_PERP, True)).status == "ok"
    # the isolated account's margin is supplied (its lending is on), then a borrow takes the
    # pool close to its cap
    assert c.result(IDLE_TWIN, UpdateIsolatedMargin(BTC_PERP, 30_000 * USD)).status == "ok"
    assert c.result(BORROWER, Borrow(USDC, 33_000 * USD)).code == Code.OK  # 123k of 130k
    headroom = c.ex.pools[USDC].headroom()
    assert headroom < 5_000 * USD
    assert c.result(IDLE_TWIN, SetMarginMode(BTC_PERP, False)).status == "ok"
    assert _within_cap(c, USDC)
    twin = c.ex.accounts[IDLE_TWIN.address]
    assert headroom - 1_000 <= twin.idle[USDC] <= headroom  # (a block of interest later)
    assert 30_000 * USD <= twin.balance(USDC) <= 30_000 * USD + 1_000  # (and a few blocks of interest)


# ------------------------------------------------------------------ the pool's arithmetic
_RISK = AssetRisk(1_000_000, 1_000_000, 0, 0, 0, 40_000, 600_000, 900_000, 100_000, 950_000)


@settings(max_examples=200, deadline=None)
@given(supply=st.integers(0, 10**15), debt=st.integers(0, 10**15), w=st.integers(1, 10**15),
       si=st.integers(ONE, 50 * ONE), bi=st.integers(ONE, 50 * ONE), cap=st.integers(1, 1_000_000))
def test_headroom_is_exactly_what_must_lend_out_lets_a_supplier_withdraw(
        supply: int, debt: int, w: int, si: int, bi: int, cap: int) -> None:
    pool = Pool(0, dataclasses.replace(_RISK, util_cap_ppm=cap))
    pool.supply_index, pool.borrow_index = si, bi
    pool.supply_shares, pool.debt_shares = supply, debt
    h = pool.headroom()
    for amount in (w, h, h + 1):
        if amount <= 0:
            continue
        try:
            pool.must_lend_out(amount, what="withdrawal")
            ok = True
        except TxError:
            ok = False
        assert ok == (amount <= h), (amount, h)


_MOVES = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 6 * 10**8)), max_size=5)


@settings(max_examples=150, deadline=None)
@given(index=st.integers(ONE, 10**6 * ONE), borrowed=st.integers(0, 1_000), off=st.sets(st.integers(0, 3)),
       sale=st.integers(1, 1_000), odd=st.integers(0, 10**6 - 1), moves=_MOVES)
def test_a_step_leaves_the_pool_no_shorter_unless_its_idle_credits_are_all_lent(
        index: int, borrowed: int, off: set[int], sale: int, odd: int, moves: list[tuple[int, int, int]]) -> None:
    """Pools alone: a supplier of 1e9 and a borrower (of ``borrowed`` millionths of it); one step of unchecked moves between
    four accounts (those in ``off`` and the fourth with auto-lend off), each credited before
    it is debited as a fill is, the first a sale of the supplier's to the fourth, then
    ``settle_idle``. A step that leaves the pool no shorter than
    ``min(headroom before, 0)`` changes nothing; otherwise the step's idle credits are lent
    until it is not, or until none is left idle. Balances move only by share rounding
    (against the account, at most two conversions' worth); custody still covers everything."""
    from state.exchange import Exchange
    from tests.harness import make_genesis

    ex = Exchange(make_genesis())
    pools, pool = ex.pools, ex.pools[BTC]
    pool.supply_index = index
    who = [ex.account(bytes([i + 1]) * 20) for i in range(4)]
    pools.credit(who[0], BTC, 10**9)
    pools.credit(who[1], BTC, -borrowed * 10**6)  # a borrow
    off.add(3)
    for i in sorted(off):
        who[i].lend_off.add(BTC)
    pool.custody = pool.supply_value() - pool.debt_value() + pool.idle_total
    pools.settle_idle()
    h0 = pool.headroom()
    for src, dst, amount in [(0, 3, sale * 10**6 - odd), *moves]:
        pools.credit(who[dst], BTC, amount)
        pools.credit(who[src], BTC, -amount)
    balances = [pools.real(a, BTC) for a in who]
    fresh = [pools.fresh[(BTC, a.address)][1] if (BTC, a.address) in pools.fresh else 0 for a in who]
    assert all(f == 0 for i, f in enumerate(fresh) if i not in off)
    idle_end = [a.idle.get(BTC, 0) for a in who]
    short = pool.headroom() < min(h0, 0)
    pools.settle_idle()
    unit = -(-index // ONE) + 1  # what one share's rounding can cost
    # an account's idle credit can be converted twice in one settle: its pro-rata share of
    # the shortfall, then what rounding left short (Pools._lend_fresh, then _lend_excess),
    # each conversion rounding against it by less than a share's value
    for i, acct in enumerate(who):
        assert balances[i] - 2 * unit <= pools.real(acct, BTC) <= balances[i]
        if short:  # the step's idle credits are lent as far as needed
            assert max(idle_end[i] - fresh[i], 0) <= acct.idle.get(BTC, 0) <= idle_end[i]
        else:  # nothing moves
            assert acct.idle.get(BTC, 0) == idle_end[i] and pools.real(acct, BTC) == balances[i]
    assert pool.surplus() >= 0
    lent_all = all(who[i].idle.get(BTC, 0) <= max(idle_end[i] - fresh[i], 0) for i in off)
    assert pool.headroom() >= min(h0, 0) or lent_all
    event(f"short={short} still short={pool.headroom() < min(h0, 0)}")


def test_no_step_notes_are_left_at_a_commit() -> None:
    """``Pools.opened`` and ``fresh`` are a step's transient notes: empty after every block
    (the end-of-block dust credited to the insurance fund is a step of its own), as in a
    node restarted at that height. Before, the dust credit left its pool noted in
    ``opened`` until the next block."""
    c = _usdc_pool_at_94pct(20_000 * USD)
    dusty = 0
    for _ in range(12):
        c.time += 3_600_000  # an hour of interest a block: rounding dust for the fund
        before = c.ex.account(c.ex.insurance_account).balance(USDC)
        c.block()
        dusty += c.ex.account(c.ex.insurance_account).balance(USDC) > before
        assert not c.ex.pools.opened and not c.ex.pools.fresh
    assert dusty


def test_the_makers_of_one_fill_lend_pro_rata_whatever_their_addresses() -> None:
    """Two auto-lend-off makers of one sale into a pool at its cap lend the same share of
    what they received: in address order the higher address kept its whole credit idle and
    the lower one's was lent in full, so an attacker's twin beside a victim took the
    pool's headroom."""
    from tests.harness import key

    c = _btc_pool_at_83pct()
    lo, hi = sorted((key(160), key(161)), key=lambda k: k.address)
    for k in (lo, hi):
        c.fund(k, USDC, 70_000 * USD)
        assert c.result(k, Lend(BTC, False)).code == Code.OK
    assert c.order(lo, BTC_SPOT, True, 60_000, 5_000).status == "resting"
    assert c.order(hi, BTC_SPOT, True, 60_000, 5_000).status == "resting"
    before = c.ex.pools[BTC].headroom()
    assert c.result(SUPPLIER, PlaceOrder(BTC_SPOT, False, 60_000, 10_000, Tif.IOC, False, None)).status == "filled"
    pools = c.ex.pools
    kept = [c.ex.accounts[k.address].idle.get(BTC, 0) for k in (lo, hi)]
    lent = [pools.supplied(c.ex.accounts[k.address], BTC) for k in (lo, hi)]
    assert lent[0] > 0 and lent[1] > 0  # both lent: the shortfall is shared
    assert abs(kept[0] - kept[1]) <= 2 and abs(lent[0] - lent[1]) <= 2  # equal credits, equal shares (rounding)
    assert pools[BTC].headroom() >= min(0, before)  # and the pool is not left short
