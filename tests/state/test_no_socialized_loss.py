"""Traders own their risk: a crash with a live book must not reach passive lenders.

The audit finding "Passive lenders pay for others' losses in a crash with a live book":
three validators feed the oracle, two makers requote 5 levels x 20,000 lots on each side of
both BTC books every block, 8 perp longs at 3-17x, 5 spot longs each holding 1.5 BTC
(~$90k) bought with borrowed USDC, 2 perp shorts, 3 USDC lenders, a BTC holder and a
bystander. BTC falls from 60k to 42k over six blocks. Before the fix the insurance fund
(unseeded) took 4.5 BTC and ~$211k of debt by backstop and never sold it: its sell limit was
bounded by its own (tiny) equity, tighter than the makers' spread, and at zero equity it
skipped every leg; each further drop was written off against every USDC supplier.

After the fix the backstop and the fund sell through the book within the maintenance shock
of the index, whatever that realizes for the fund: lenders, the BTC holder and the
bystander lose nothing, and ``pool_surplus`` stays >= 0 after every block. The empty-book
variant checks the last resort: with no bid at all, the write-off is exactly the fund's
shortfall, spread pro rata over the suppliers, and announced by a ``socialized`` event.
"""

from __future__ import annotations

from typing import Any

from state import liquidation, risk
from state.genesis import INSURANCE_ACCOUNT, default_risk_doc
from state.tx import Batch, Borrow, CancelAll, OraclePrices, PlaceOrder, Tif, Transfer, Withdraw
from tests.harness import BTC, BTC_PERP, BTC_SPOT, USDC, Chain, key
from tests.state.invariants import check_all
from tests.state.riskkit import BTC_UNIT, USD, risk_chain, set_prices

VALIDATORS = [key(160 + i) for i in range(3)]
MAKERS = [key(170 + i) for i in range(2)]
PERP_LONGS = [key(180 + i) for i in range(8)]
SPOT_LONGS = [key(190 + i) for i in range(5)]
SHORTS = [key(200 + i) for i in range(2)]
LENDERS = [key(210 + i) for i in range(3)]
HOLDER = key(215)  # holds BTC, supplied to the BTC pool
BYSTANDER = key(216)  # holds a little USDC
PATH = [60_000, 57_000, 54_000, 51_000, 48_000, 45_000, 42_000]  # -30% in six blocks
LEVELS, LEVEL_LOTS = 5, 20_000
LENDER_USDC = 1_000_000 * USD
BYSTANDER_USDC = 50_000 * USD
HOLDER_BTC = 10 * BTC_UNIT
FUND_SEED = 25_000 * USD  # the insurance fund's genesis balance


def _quotes(px: int, seed: int) -> list[Any]:
    """5 levels each side of both books, 0.3% apart, the second maker 0.05% further out."""
    out: list[Any] = [CancelAll(None)]
    for market in (BTC_PERP, BTC_SPOT):
        for i in range(1, LEVELS + 1):
            off = px * (6 * i + seed) // 2000
            out.append(PlaceOrder(market, True, px - off, LEVEL_LOTS, Tif.GTC, False, None))
            out.append(PlaceOrder(market, False, px + off, LEVEL_LOTS, Tif.GTC, False, None))
    return out


def _block_txs(c: Chain, px: int) -> list[bytes]:
    txs = [c.sign(v, OraclePrices(((BTC, px * USD + 1_000 * i),))) for i, v in enumerate(VALIDATORS)]
    return txs + [c.sign(mk, Batch(tuple(_quotes(px, j)))) for j, mk in enumerate(MAKERS)]


class Run:
    """The chain plus what every block said and the pool-surplus check after each one."""

    def __init__(self, c: Chain) -> None:
        self.c = c
        self.events: list[tuple[int, Any]] = []
        self.negative_surplus: list[tuple[int, int, int]] = []  # (height, asset, surplus)

    def block(self, *txs: bytes) -> Any:
        r = self.c.block(*txs)
        self.events.extend(r.events)
        for a in range(len(self.c.genesis.assets)):
            s = self.c.ex.pool_surplus(a)
            if s < 0:
                self.negative_surplus.append((r.height, a, s))
        return r

    def named(self, kind: str) -> list[tuple[Any, ...]]:
        return [e for _, e in self.events if isinstance(e, tuple) and e[0] == kind]


def build_crash(seed: int = FUND_SEED) -> Run:
    # the genesis parameter ``insurance_fund`` (an older build ignores it: its fund starts empty)
    c = risk_chain(validators=VALIDATORS, **({"insurance_fund": seed} if seed else {}))
    run = Run(c)
    for mk in MAKERS:
        c.fund(mk, USDC, 10_000_000 * USD)
        c.fund(mk, BTC, 200 * BTC_UNIT)
    for ln in LENDERS:
        c.fund(ln, USDC, LENDER_USDC)
    c.fund(HOLDER, BTC, HOLDER_BTC)
    c.fund(BYSTANDER, USDC, BYSTANDER_USDC)
    run.block(*_block_txs(c, PATH[0]))
    for i, t in enumerate(PERP_LONGS):  # 3x to 17x
        lev = 3 + 2 * i
        equity = 20_000
        c.fund(t, USDC, equity * USD)
        lots = equity * lev * 10_000 // 62_000  # leverage vs the $60k oracle: 2.9x to 16.5x
        r = run.block(*_block_txs(c, PATH[0]), c.sign(t, PlaceOrder(BTC_PERP, True, 60_500, lots, Tif.IOC, False, None)))
        assert all(x.ok for x in r.receipts), (i, [x.message for x in r.receipts])
    for i, t in enumerate(SPOT_LONGS):  # 1.5 BTC each, mostly borrowed USDC
        equity = 12_000 + 2_000 * i
        c.fund(t, USDC, equity * USD)
        # the buy borrows the USDC it lacks from the pool (a margin buy; an explicit Borrow of
        # 6.7x equity held idle would exceed the loan-to-value cap)
        r = run.block(*_block_txs(c, PATH[0]),
                      c.sign(t, PlaceOrder(BTC_SPOT, True, 61_000, 15_000, Tif.IOC, False, None)))
        assert all(x.ok for x in r.receipts), (i, [x.message for x in r.receipts])
    for t in SHORTS:
        c.fund(t, USDC, 200_000 * USD)
        r = run.block(*_block_txs(c, PATH[0]), c.sign(t, PlaceOrder(BTC_PERP, False, 59_000, 20_000, Tif.IOC, False, None)))
        assert all(x.ok for x in r.receipts), (i, [x.message for x in r.receipts])
    run.before = {k.address: (c.balance(k, USDC), c.balance(k, BTC))  # type: ignore[attr-defined]
                  for k in (*LENDERS, HOLDER, BYSTANDER)}
    run.fund_before = _fund_equity(c)  # type: ignore[attr-defined]
    run.crash_from = len(run.events)  # type: ignore[attr-defined]
    for px in PATH[1:]:
        run.block(*_block_txs(c, px))
    for _ in range(3):  # the book keeps quoting at the bottom: whatever the fund holds can go
        run.block(*_block_txs(c, PATH[-1]))
    return run


def _fund_equity(c: Chain) -> int:
    acct = c.ex.accounts.get(INSURANCE_ACCOUNT)
    return risk.maintenance(c.ex, acct).equity if acct else 0


def _losses(run: Run) -> dict[bytes, tuple[int, int]]:
    c = run.c
    before: dict[bytes, tuple[int, int]] = run.before  # type: ignore[attr-defined]
    out = {}
    for k in (*LENDERS, HOLDER, BYSTANDER):
        u0, b0 = before[k.address]
        out[k.address] = (u0 - c.balance(k, USDC), b0 - c.balance(k, BTC))
    return out


def summary(run: Run) -> dict[str, Any]:
    """What the scenario measured (printed by ``python -m tests.state.test_no_socialized_loss``)."""
    liq = run.named("liquidation")
    return {
        "liquidations": len({e[1] for e in liq if e[2] == "start"}),
        "backstops": sum(1 for e in liq if e[2] == "backstop"),
        "adl": len(run.named("adl")),
        "socialized": run.named("socialized"),
        "fund_unwinds": [e for e in liq if e[2] == "fund_unwind" and e[5]],
        "losses": {k.hex()[:6]: v for k, v in _losses(run).items()},
        "fund_pnl": _fund_equity(run.c) - run.fund_before,  # type: ignore[attr-defined]
        "fund_holds": {a: run.c.ex.accounts[INSURANCE_ACCOUNT].balance(a) for a in (USDC, BTC)},
        "negative_surplus": run.negative_surplus,
    }


def test_crash_with_a_live_book_takes_nothing_from_lenders_holders_or_bystanders() -> None:
    run = build_crash()
    s = summary(run)
    assert s["liquidations"] >= 9
    for addr, (usdc_loss, btc_loss) in _losses(run).items():
        assert usdc_loss <= 0 and btc_loss <= 0, (addr.hex(), usdc_loss, btc_loss, s)
    assert run.named("socialized") == [], s
    assert run.negative_surplus == []
    ex = run.c.ex
    for addr in sorted(ex.accounts):
        if addr != INSURANCE_ACCOUNT:
            assert risk.maintenance(ex, ex.accounts[addr]).equity >= 0
    fund = ex.accounts[INSURANCE_ACCOUNT]
    assert fund.balance(BTC) == 0 and not any(p.size for p in fund.positions.values())  # all sold
    assert risk.maintenance(ex, fund).equity >= 0


if __name__ == "__main__":
    import pprint
    import sys

    pprint.pprint(summary(build_crash(int(sys.argv[1]) * USD if len(sys.argv) > 1 else FUND_SEED)))


# ------------------------------------------------------------------ the last resort, exactly
LN_A, LN_B, BORROWER = key(220), key(221), key(222)


def _empty_book_chain(*, interest: bool, seed: int = 10_000 * USD) -> Chain:
    """No order book at all: BORROWER posts 1 BTC, borrows $50k of USDC and withdraws it;
    LN_A and LN_B supply $100k and $300k, BYSTANDER $50k. ``interest`` off sets the USDC
    rate to zero, so both indices stay at exactly 1e18 and every amount is exact; on, the
    borrow index moves off 1e18, and every conversion rounds."""
    doc = default_risk_doc()
    rate = 5_000_000 if interest else 0  # 500% a year: the indices move off 1e18 at once
    doc["assets"]["USDC"].update(base_rate_ppm=rate, slope1_ppm=0, slope2_ppm=0)
    doc["oracle"]["max_move_ppm"] = 1_000_000  # an instant crash: the oracle may jump in one block
    c = risk_chain(validators=[VALIDATORS[0]], insurance_fund=seed, risk=doc)
    for k, amount in ((LN_A, 100_000), (LN_B, 300_000), (BYSTANDER, 50_000)):
        c.fund(k, USDC, amount * USD)
    c.fund(HOLDER, BTC, HOLDER_BTC)
    c.fund(BORROWER, BTC, BTC_UNIT)
    set_prices(c, btc=60_000 * USD, by=VALIDATORS[0])
    r = c.block(c.sign(BORROWER, Borrow(USDC, 50_000 * USD)), c.sign(BORROWER, Withdraw(USDC, 50_000 * USD, b"out")))
    assert all(x.ok for x in r.receipts), r.receipts
    for _ in range(5):  # interest accrues (when on)
        c.block()
    return c


def test_empty_book_write_off_is_exactly_the_funds_shortfall_pro_rata() -> None:
    """BTC to $20k with nobody to sell to: BORROWER's equity is 20,000 - 50,000 = -$30,000.
    The backstop finds no bid inside the band, the fund takes the BTC and the debt; with its
    $10,000 seed its equity is -$20,000: that shortfall, to the unit, is written off, pro
    rata over the USDC suppliers, and the event says how much and of what supply."""
    c = _empty_book_chain(interest=False)
    suppliers = (LN_A, LN_B, BYSTANDER)
    before = {k.address: c.balance(k, USDC) for k in suppliers}
    holder_btc = c.balance(HOLDER, BTC)
    set_prices(c, btc=20_000 * USD, by=VALIDATORS[0])
    soc = [e for _, e in c.last.events if isinstance(e, tuple) and e[0] == "socialized"]
    fund = risk.maintenance(c.ex, c.ex.accounts[INSURANCE_ACCOUNT])
    # the fund's own seed went first: $30,000 - $10,000, exactly; the fund ends at exactly zero
    assert soc == [("socialized", USDC, 20_000 * USD, sum(before.values()))]
    assert c.ex.accounts[INSURANCE_ACCOUNT].balance(BTC) == BTC_UNIT  # nothing to sell it to
    amount, supply = soc[0][2], soc[0][3]
    losses = {a: b - c.ex.accounts[a].balance(USDC) for a, b in before.items()}
    for a, b in before.items():  # pro rata, each supplier's value rounded down
        assert amount * b // supply <= losses[a] <= amount * b // supply + 1
    assert amount <= sum(losses.values()) <= amount + len(suppliers)
    # the fund ends at zero plus the pool's part of the suppliers' rounding (the dust the
    # block sweeps to the fund)
    assert 0 <= fund.equity <= sum(losses.values()) - amount
    assert abs(losses[LN_B.address] - 3 * losses[LN_A.address]) <= 3
    assert c.balance(HOLDER, BTC) == holder_btc  # BTC suppliers owe nothing for a USDC debt
    assert all(c.ex.pool_surplus(a) >= 0 for a in (USDC, BTC))
    check_all(c, {USDC: 460_000 * USD - 50_000 * USD, BTC: HOLDER_BTC + BTC_UNIT}, list(c.last.events))


def test_write_off_with_accrued_interest_keeps_pool_surplus_non_negative() -> None:
    """With interest accrued both indices are off 1e18 and every conversion rounds. The
    write-off must not take the pool's surplus below zero (it did, by one unit, when the
    fund's debt shares were removed rounded up while the supply index fell by exactly the
    written-off amount); every crash depth below gives a different remainder."""
    for low in range(19_000, 21_000, 173):
        c = _empty_book_chain(interest=True)
        set_prices(c, btc=low * USD, by=VALIDATORS[0])  # Chain.block asserts pool_surplus >= 0
        soc = [e for _, e in c.last.events if isinstance(e, tuple) and e[0] == "socialized"]
        assert len(soc) == 1 and soc[0][1] == USDC
        fund = risk.maintenance(c.ex, c.ex.accounts[INSURANCE_ACCOUNT])
        assert 0 <= fund.equity <= 4  # zero, plus the suppliers' rounding dust swept to it
        assert c.ex.pool_surplus(USDC) >= 0


def test_a_fund_with_no_equity_still_sells_inside_the_band() -> None:
    """The heart of the finding: the fund holds BTC against a USDC debt with zero equity
    (here: after an empty-book write-off), then a bid appears 1% below the index. The fund
    sells it all, although that realizes a loss for it (the spread and the fee); only that
    loss is written off, not every further drop of an unsold position."""
    c = _empty_book_chain(interest=False, seed=0)
    set_prices(c, btc=20_000 * USD, by=VALIDATORS[0])
    fund_acct = c.ex.accounts[INSURANCE_ACCOUNT]
    assert fund_acct.balance(BTC) == BTC_UNIT and risk.maintenance(c.ex, fund_acct).equity <= 3  # rounding dust
    mk = MAKERS[0]
    c.fund(mk, USDC, 1_000_000 * USD)
    # a bid 1% under the index, inside the 3% band; the block's scan has the fund sell into it
    c.order(mk, BTC_SPOT, True, 19_800, 10_000)
    unwinds = [e for _, e in c.last.events if isinstance(e, tuple) and e[0] == "liquidation" and e[2] == "fund_unwind"]
    assert unwinds and unwinds[0][5] == 10_000
    assert fund_acct.balance(BTC) == 0
    soc = [e for _, e in c.last.events if isinstance(e, tuple) and e[0] == "socialized"]
    taker_fee = -(-19_800 * USD * c.genesis.taker_fee_ppm // 1_000_000)
    dust = risk.maintenance(c.ex, fund_acct).equity
    assert 0 <= dust <= 3
    assert len(soc) == 1 and 200 * USD + taker_fee - 3 <= soc[0][2] <= 200 * USD + taker_fee  # the spread and the fee


def test_socialize_rounding_never_takes_the_pool_surplus_below_zero() -> None:
    """The write-off itself, from a pool with no dust to spare (surplus exactly 0), at 60
    amounts with the indices off 1e18. Removing the fund's debt shares rounded up took the
    pool's debt down by one unit more than the supply, 9 times in these 60 (surplus -1).
    Now the fund's debt falls by exactly the amount, its equity rises by exactly it, and
    the supply falls by at least what the pool's debt fell by."""
    c = _empty_book_chain(interest=True)
    set_prices(c, btc=20_000 * USD, by=VALIDATORS[0])
    for i in range(60):
        f = c.fork()
        ex = f.ex
        ex.pools[USDC].custody -= ex.pool_surplus(USDC)  # no dust to absorb a rounding loss
        fund = ex.accounts[INSURANCE_ACCOUNT]
        debt = ex.pools.debt(fund, USDC)
        w = 10**10 + 7_919 * i
        ex.events = []
        liquidation.socialize(ex, fund, w)
        assert ex.pool_surplus(USDC) >= 0, (w, ex.pool_surplus(USDC))
        assert ex.pools.debt(fund, USDC) == debt - w
        assert ex.events[0][:3] == ("socialized", USDC, w)


def test_a_write_off_comes_after_the_fund_takes_the_blocks_rounding_dust() -> None:
    """The extended adversary's seed 2,004,030: a write-off in a block whose trades had left
    $0.006 of rounding dust in the pools. The dust is the fund's (the block's end credits
    it to the fund), but the write-off was measured before that credit: lenders paid the
    dust's worth of a loss the fund could cover, and the fund ended the block holding it.
    Here the crash block also carries 40 transfers of one unit between suppliers; with the
    supply index above 1e18 each debits the sender a unit and credits the receiver no
    share, so they leave 40 units of dust. The write-off must be smaller by exactly those
    40 units than in the same block without the transfers, and the fund must end the block
    at zero either way."""
    base = _empty_book_chain(interest=True)

    def transfers(c: Chain) -> list[bytes]:
        return [c.sign(LN_A, Transfer(LN_B.address, USDC, 1)) for _ in range(40)]

    quiet, busy = base.fork(), base.fork()  # the transfers alone: 40 units lost, none received
    quiet.block()
    assert all(x.ok for x in busy.block(*transfers(busy)).receipts)
    lost = quiet.balance(LN_A, USDC) - busy.balance(LN_A, USDC)
    assert (lost, busy.balance(LN_B, USDC) - quiet.balance(LN_B, USDC)) == (40, 0)
    written = []
    for with_dust in (False, True):
        c = base.fork()
        crash = c.sign(VALIDATORS[0], OraclePrices(((BTC, 20_000 * USD),)))
        r = c.block(crash, *(transfers(c) if with_dust else []))
        assert all(x.ok for x in r.receipts)
        soc = [e for _, e in r.events if isinstance(e, tuple) and e[0] == "socialized"]
        assert len(soc) == 1 and soc[0][1] == USDC
        written.append(soc[0][2])
        assert risk.maintenance(c.ex, c.ex.accounts[INSURANCE_ACCOUNT]).equity == 0
    assert written[0] - written[1] == 40  # the fund paid the dust's worth itself
