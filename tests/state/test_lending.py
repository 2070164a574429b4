"""Lending pools: rate model, interest accrual over blocks, auto-lend, borrow/repay, caps.

USDC defaults: base 0, slope1 4% to the 90% kink, slope2 60%, reserve factor 10%, cap 95%.
"""

from __future__ import annotations

from state import records
from state.errors import Code
from state.lending import YEAR_MS
from state.muldiv import ONE
from state.tx import Borrow, Lend, Repay, Withdraw
from tests.harness import BTC, USDC, key
from tests.state.invariants import check_value_conserved
from tests.state.riskkit import BTC_UNIT, PX_60K, USD, risk_chain, set_prices

LN, B, B2 = key(70), key(71), key(72)
DAY_MS = 86_400_000


def test_rate_model_has_a_kink() -> None:
    c = risk_chain()
    usdc, btc = c.ex.pools[USDC], c.ex.pools[BTC]
    assert usdc.borrow_rate_ppm(0) == 0
    assert usdc.borrow_rate_ppm(450_000) == 20_000  # half way to the kink: 2%
    assert usdc.borrow_rate_ppm(900_000) == 40_000  # at the kink: 4%
    assert usdc.borrow_rate_ppm(950_000) == 40_000 + 600_000 * 50_000 // 100_000  # 34%
    assert usdc.borrow_rate_ppm(2_000_000) == 640_000  # capped at 100% utilization
    assert btc.borrow_rate_ppm(450_000) == 40_000 and btc.borrow_rate_ppm(1_000_000) == 3_040_000


def _borrowed_45k(days: int = 0):  # type: ignore[no-untyped-def]
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(LN, USDC, 100_000 * USD)
    c.fund(B, BTC, BTC_UNIT)
    r = c.block(c.sign(B, Borrow(USDC, 45_000 * USD)), c.sign(B, Withdraw(USDC, 45_000 * USD, b"out")))
    assert [x.code for x in r.receipts] == [Code.OK, Code.OK]
    assert c.ex.pools[USDC].rate_ppm == 20_000  # 45% utilization
    return c


def test_interest_accrual_over_one_day() -> None:
    """Borrow index growth over one day at 2%: ceil(1e18 * 0.02 / 365) = 54,794,520,547,946.
    Debt: ceil(45e9 * 1.000054794520547946) = 45,002,465,754 (interest 2,465,754). The reserve,
    10% of it rounded down, 246,575, goes to the insurance fund; suppliers get 2,219,179, so
    the supply index grows by 2,219,179e18 / 100e9 and the lender holds 100,002,219,179."""
    c = _borrowed_45k()
    c.time += DAY_MS - 1000
    result = c.block()
    ex = c.ex
    pool = ex.pools[USDC]
    assert pool.borrow_index == ONE + 54_794_520_547_946
    assert ex.accounts[B.address].balance(USDC) == -45_002_465_754
    assert pool.supply_index == ONE + 2_219_179 * ONE // (100_000 * USD)
    assert ex.accounts[LN.address].balance(USDC) == 100_002_219_179
    fund = ex.accounts[ex.insurance_account].balance(USDC)
    assert 246_574 <= fund <= 246_576  # the reserve (its share rounding) plus swept dust
    # O(1): no borrower or lender record was written, only the pool (and the fund, counters)
    keys = {k for k, _ in result.write_digests}
    assert records.account_key(B.address) not in keys and records.account_key(LN.address) not in keys
    assert records.pool_key(USDC) in keys
    check_value_conserved(ex, {USDC: 55_000 * USD, BTC: BTC_UNIT})


def test_interest_accrual_over_n_blocks_compounds_per_block() -> None:
    c = _borrowed_45k()
    ib = ONE
    for _ in range(5):
        rate = c.ex.pools[USDC].rate_ppm  # fixed at the end of the previous block
        assert 20_000 <= rate <= 20_003  # utilization creeps up from 45% with the interest
        ib += -(-ib * rate * DAY_MS // (1_000_000 * YEAR_MS))
        c.time += DAY_MS - 1000
        c.block()
    assert c.ex.pools[USDC].borrow_index == ib
    assert c.ex.accounts[B.address].balance(USDC) == -(45_000 * USD) * ib // ONE  # -ceil(45e9 * ib)
    lender = c.ex.accounts[LN.address].balance(USDC)
    debt = -c.ex.accounts[B.address].balance(USDC)
    interest = debt - 45_000 * USD
    fund = c.ex.accounts[c.ex.insurance_account].balance(USDC)
    # every unit of interest went to a supplier or, as reserve or rounding dust, to the fund
    # (which itself supplies its balance and earns from the next block on)
    assert interest - 3 <= (lender - 100_000 * USD) + fund <= interest
    assert fund >= interest // 10
    check_value_conserved(c.ex, {USDC: 55_000 * USD, BTC: BTC_UNIT})


def test_auto_lend_off_keeps_funds_idle_and_out_of_interest() -> None:
    c = _borrowed_45k()
    c.fund(B2, USDC, 10_000 * USD)
    assert c.result(B2, Lend(USDC, False)).code == Code.OK
    acct = c.ex.accounts[B2.address]
    idle = acct.idle[USDC]
    assert 10_000 * USD <= idle <= 10_000 * USD + 5 and USDC not in acct.scaled  # a block of interest
    c.time += DAY_MS - 1000
    c.block()
    assert acct.balance(USDC) == idle  # earned nothing for a day
    assert c.ex.accounts[LN.address].balance(USDC) > 100_000 * USD
    assert c.result(B2, Lend(USDC, True)).code == Code.OK
    assert acct.idle == {} and 10_000 * USD - 1 <= acct.balance(USDC) <= 10_000 * USD + 5  # earning again


def test_borrow_into_idle_then_repay() -> None:
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(LN, USDC, 100_000 * USD)
    c.fund(B, BTC, BTC_UNIT)
    assert c.result(B, Borrow(USDC, 10_000 * USD)).code == Code.OK
    acct = c.ex.accounts[B.address]
    assert acct.balance(USDC) == 0 and acct.idle[USDC] == 10_000 * USD
    assert c.ex.pools.debt(acct, USDC) == 10_000 * USD
    r = c.result(B, Repay(USDC, 4_000 * USD))
    assert (r.code, r.filled) == (Code.OK, 4_000 * USD)
    assert c.ex.pools.debt(acct, USDC) >= 6_000 * USD  # plus a block of interest
    r = c.result(B, Repay(USDC, 10**12))  # clipped to the idle amount
    assert r.code == Code.OK and acct.idle == {}
    assert 0 < c.ex.pools.debt(acct, USDC) < 10  # the interest of two blocks is still owed
    assert c.result(B, Repay(USDC, 1)).code == Code.INSUFFICIENT_BALANCE


def test_borrows_stop_at_the_utilization_cap() -> None:
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(LN, USDC, 100_000 * USD)
    c.fund(B, BTC, 10 * BTC_UNIT)
    assert c.result(B, Borrow(USDC, 95_000 * USD)).code == Code.OK
    assert c.result(B, Borrow(USDC, 1)).code == Code.UTILIZATION_CAP
    assert c.result(LN, Withdraw(USDC, 1_000 * USD, b"out")).code == Code.UTILIZATION_CAP
    assert c.result(LN, Withdraw(USDC, 6_000 * USD, b"out")).code == Code.POOL_ILLIQUID
    # a deposit makes room
    c.fund(B2, USDC, 10_000 * USD)
    assert c.result(B, Borrow(USDC, 5_000 * USD)).code == Code.OK


def test_a_borrow_cannot_take_what_a_supplier_withdraws_in_the_same_block() -> None:
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(LN, USDC, 100_000 * USD)
    c.fund(B, BTC, 10 * BTC_UNIT)
    r = c.block(c.sign(LN, Withdraw(USDC, 60_000 * USD, b"out")), c.sign(B, Borrow(USDC, 50_000 * USD)))
    assert [x.code for x in r.receipts] == [Code.OK, Code.POOL_ILLIQUID]
    r = c.block(c.sign(B, Borrow(USDC, 38_000 * USD)), c.sign(LN, Withdraw(USDC, 40_000 * USD, b"out")))
    assert [x.code for x in r.receipts] == [Code.OK, Code.POOL_ILLIQUID]
    assert c.ex.pools[USDC].cash() >= 0
