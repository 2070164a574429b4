"""Interest-bearing perps: unrealized PnL settles into USDC at every funding boundary, so an
untouched winner's profit is supplied and earns, an untouched loser's loss is borrowed and
pays. Hand-computed over a year of block time.

Funding every 400 days (so exactly one boundary falls in the test and a year of interest
after it crosses none). W: $10,000, long 1 BTC-PERP at $60,000. Lo: 1 BTC (no USDC), short
1 BTC-PERP at $60,000: its spot hedges the perp, so the loss is a USDC debt, not a
liquidation. The oracle goes to $63,000 before the boundary.

At the boundary (rate = the interest rate, 12,500 ppb: no premium samples with no book):
funding per lot = 12,500 x 10,000 x 63e9 / (1e9 x 1e8) = 78.75 -> 78 micro-USDC, so W pays
780,000 and Lo receives it; the mark-to-market moves $3,000 from Lo to W. W holds
its $10,000 less its fee plus $2,999.22 supplied; Lo owes $2,999.22 less the $4 it held.
"""

from __future__ import annotations

from state.tx import OraclePrices
from tests.harness import BTC, BTC_PERP, USDC, Chain, key
from tests.state.riskkit import BTC_UNIT, PX_60K, USD, V, risk_chain, set_prices

W, LO = key(70), key(71)
DAY = 86_400_000
PX_63K = 63_000 * USD


def _block_at(c: Chain, t: int, *txs: bytes) -> None:
    c.time = t - 1000  # Chain.block adds 1 s
    c.block(*txs)


def test_winner_supplies_and_loser_borrows_from_the_boundary_on() -> None:
    c = risk_chain(risk={"funding": {"interval_ms": 400 * DAY}})
    set_prices(c, btc=PX_60K)
    c.fund(W, USDC, 10_000 * USD)
    c.fund(LO, BTC, BTC_UNIT)
    c.fund(LO, USDC, 10 * USD)  # pays its maker fee: no debt, so no interest, before the boundary
    assert c.order(LO, BTC_PERP, False, 60_000, 10_000).status == "resting"
    assert c.order(W, BTC_PERP, True, 60_000, 10_000).status == "filled"
    w, lo = c.ex.accounts[W.address], c.ex.accounts[LO.address]
    fees_w = 10_000 * USD - c.balance(W, USDC)  # W's taker fee
    lo_usdc = c.balance(LO, USDC)  # $10 less the maker fee
    set_prices(c, btc=PX_63K)
    boundary = c.genesis.genesis_time_ms + 400 * DAY
    _block_at(c, boundary, c.sign(V, OraclePrices(((BTC, PX_63K),))))
    assert c.ex.funding_epoch == 1
    assert c.ex.mstate[BTC_PERP].epoch_mark == PX_63K
    funding = 78 * 10_000
    paid = sorted(e for _, e in c.last.events if isinstance(e, tuple) and e[0] == "funding_payment")
    assert paid == sorted([("funding_payment", W.address, BTC_PERP, funding, 3_000 * USD),
                           ("funding_payment", LO.address, BTC_PERP, -funding, -3_000 * USD)])
    assert c.balance(W, USDC) == 10_000 * USD - fees_w + 3_000 * USD - funding
    assert c.ex.pools.debt(lo, USDC) == 3_000 * USD - funding - lo_usdc
    # the pool's rate from now on: utilization = debt / supply, rounded up; the kink curve
    pool = c.ex.pools[USDC]
    debt, supply = pool.debt_value(), pool.supply_value()
    util = -(-debt * 10**6 // supply)
    rate = 40_000 * util // 900_000  # USDC: base 0, slope1 4% up to 90%
    assert pool.rate_ppm == rate > 0
    # a year later (no boundary in between): Lo's debt grew by a year of that rate, and W's
    # supply by its share of the suppliers' 90% (the fee account supplies the fees it took)
    lo_debt, w_supply = c.ex.pools.debt(lo, USDC), c.ex.pools.supplied(w, USDC)
    _block_at(c, boundary + 365 * DAY, c.sign(V, OraclePrices(((BTC, PX_63K),))))
    interest = debt * rate // 10**6
    assert abs(c.ex.pools.debt(lo, USDC) - lo_debt - interest) <= 2
    assert abs(c.ex.pools.supplied(w, USDC) - w_supply - interest * 9 // 10 * w_supply // supply) <= 2
    assert c.ex.pools.supplied(w, USDC) > w_supply > 0 and interest > 25 * USD


def test_without_a_boundary_nothing_is_realized() -> None:
    """Before the first boundary the profit stays in the position (counted in equity)."""
    c = risk_chain(risk={"funding": {"interval_ms": 400 * DAY}})
    set_prices(c, btc=PX_60K)
    c.fund(W, USDC, 10_000 * USD)
    c.fund(LO, BTC, BTC_UNIT)
    c.order(LO, BTC_PERP, False, 60_000, 10_000)
    c.order(W, BTC_PERP, True, 60_000, 10_000)
    before = c.balance(W, USDC)
    set_prices(c, btc=PX_63K)
    c.block(c.sign(V, OraclePrices(((BTC, PX_63K),))))
    assert c.balance(W, USDC) == before
    assert c.ex.accounts[W.address].positions[BTC_PERP].entry_notional == 60_000 * USD


def test_the_boundary_settlement_leaves_equity_as_it_was() -> None:
    """Why the boundary sweep need not queue its accounts for the liquidation scan: settling
    moves into the balance exactly what equity already counted (the funding owed, the PnL to
    the boundary's mark), up to the pool's share rounding (a unit or two). A loss that opens a
    USDC debt adds the debt's interest add-on to the requirement: such accounts stay queued."""
    from state import funding, risk

    c = risk_chain()
    set_prices(c, btc=PX_60K)
    c.fund(W, USDC, 10_000 * USD)
    c.fund(LO, BTC, BTC_UNIT)
    c.fund(LO, USDC, 10 * USD)
    c.order(LO, BTC_PERP, False, 60_000, 10_000)
    c.order(W, BTC_PERP, True, 60_000, 10_000)
    set_prices(c, btc=PX_63K)
    ex = c.ex
    st = ex.mstate[BTC_PERP]
    st.epoch_mark = st.mark  # a boundary, as maybe_settle makes one: the index moves, the epoch ends
    st.funding_index += 787
    ex.funding_epoch += 1
    for k in (W, LO):
        acct = ex.accounts[k.address]
        before = risk.maintenance(ex, acct)
        paid, pnl = funding.settle_position(ex, acct, BTC_PERP)
        after = risk.maintenance(ex, acct)
        assert paid and pnl
        assert abs(after.equity - before.equity) <= 2, (k, before.equity, after.equity)
        if acct.balance(USDC) >= 0:
            assert after.requirement == before.requirement
        else:  # LO: its loss is now a borrow, whose add-on (a day of interest) the requirement adds
            assert 0 < after.requirement - before.requirement < USD
