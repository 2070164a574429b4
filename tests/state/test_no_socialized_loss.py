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

from state import risk
from state.genesis import INSURANCE_ACCOUNT
from state.tx import Batch, Borrow, CancelAll, OraclePrices, PlaceOrder, Tif
from tests.harness import BTC, BTC_PERP, BTC_SPOT, USDC, Chain, key
from tests.state.riskkit import BTC_UNIT, USD, risk_chain

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
        r = run.block(*_block_txs(c, PATH[0]), c.sign(t, Borrow(USDC, 80_000 * USD)),
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
