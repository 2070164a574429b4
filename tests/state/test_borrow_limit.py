"""Gross borrows are capped at a loan-to-value of the account's assets, whatever its delta.

The audit's reproduction: with $10k an account borrowed 101.16 BTC (~$6.07M, 48% of the
pool) and held it idle. Held and owed BTC cancel in every price scenario, so only the
interest add-on applied; the borrow took the pool's rate from 0 to 20% a year for every
borrower, and the account was liquidated by its own interest within a day.
"""

from __future__ import annotations

from state.errors import Code
from state.tx import Borrow
from tests.harness import BTC, USDC, key
from tests.state.riskkit import PX_60K, USD, risk_chain, set_prices

ATTACKER, HOLDER = key(120), key(121)


def _chain():  # type: ignore[no-untyped-def]
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(HOLDER, BTC, 1_000 * 10**8)
    c.fund(ATTACKER, USDC, 10_000 * USD)
    return c


def test_borrowing_into_idle_is_capped_by_loan_to_value() -> None:
    c = _chain()
    r = c.result(ATTACKER, Borrow(BTC, 10_116_000_000))  # 101.16 BTC
    assert r.code == Code.BORROW_LIMIT
    assert c.ex.pools[BTC].rate_ppm == 0
    assert c.ex.pools.debt(c.ex.accounts[ATTACKER.address], BTC) == 0


def test_a_borrow_within_the_cap_is_accepted_and_the_cap_binds_at_four_times_equity() -> None:
    """80% LTV on equity + debt: debts up to 4x equity ($10k -> ~$40k, ~0.66 BTC at $60k)."""
    c = _chain()
    assert c.result(ATTACKER, Borrow(BTC, 60_000_000)).code == Code.OK  # 0.6 BTC = $36k
    assert c.result(ATTACKER, Borrow(BTC, 10_000_000)).code == Code.BORROW_LIMIT  # +0.1 BTC: $42k


def test_a_borrow_held_idle_is_watched_for_its_price() -> None:
    """Borrowed BTC held idle has no net exposure, but the interest it accrues makes a short
    that the price multiplies; the liquidation watch must hold a trigger on BTC's price (the
    adversarial suite found such an account left below maintenance after a price jump)."""
    c = _chain()
    assert c.result(ATTACKER, Borrow(BTC, 40_000_000)).code == Code.OK
    w = c.ex.accounts[ATTACKER.address].watch
    assert [src[0] for src in w[1]] == [BTC]
