"""End to end: BTC falls 30% in six blocks on a book full of leveraged longs.

Three validators feed the oracle, two market makers requote both books around it every
block, twelve traders are long BTC-PERP at 2x to 15x (some also hold BTC bought with
borrowed USDC), and three lenders only supply USDC. The chain must liquidate whoever falls
below maintenance, leave nobody with negative equity, never take from the lenders, keep
total value, and give the same app hash on a fresh replay, on a store reopened between
blocks and in memory.
"""

from __future__ import annotations

import tempfile
from typing import Any

from state import risk
from state.genesis import INSURANCE_ACCOUNT
from state.keys import PrivateKey
from state.tx import Batch, Borrow, CancelAll, OraclePrices, PlaceOrder, Tif
from tests.harness import BTC, BTC_PERP, BTC_SPOT, USDC, Chain, key
from tests.state.invariants import check_all
from tests.state.riskkit import BTC_UNIT, USD, risk_chain

VALIDATORS = [key(110 + i) for i in range(3)]
MAKERS = [key(120 + i) for i in range(2)]
TRADERS = [key(130 + i) for i in range(12)]
LENDERS = [key(150 + i) for i in range(3)]
PATH = [60_000, 58_000, 55_000, 51_000, 47_000, 44_000, 42_000]  # -30%


def _quotes(maker: PrivateKey, px: int, seed: int) -> list[Any]:
    out = []
    for market in (BTC_PERP, BTC_SPOT):
        for i in range(1, 6):
            off = px * (3 * i + seed) // 1000  # 0.3%..1.6% away
            out.append(PlaceOrder(market, True, px - off, 40_000, Tif.GTC, False, None))
            out.append(PlaceOrder(market, False, px + off, 40_000, Tif.GTC, False, None))
    return out


def _block_txs(c: Chain, px: int) -> list[bytes]:
    txs = [c.sign(v, OraclePrices(((BTC, px * USD + 1_000 * i),))) for i, v in enumerate(VALIDATORS)]
    for j, mk in enumerate(MAKERS):
        txs.append(c.sign(mk, CancelAll(None)))
        txs.append(c.sign(mk, Batch(tuple(_quotes(mk, px, j)))))
    return txs


def build(path: str | None = None) -> tuple[Chain, list[list[tuple[int, Any]]]]:
    c = risk_chain(path, validators=VALIDATORS)
    for mk in MAKERS:
        c.fund(mk, USDC, 50_000_000 * USD)
        c.fund(mk, BTC, 500 * BTC_UNIT)
    for ln in LENDERS:
        c.fund(ln, USDC, 1_000_000 * USD)
    c.block(*_block_txs(c, PATH[0]))
    # traders: 2x to 15x long; every third also buys spot BTC with borrowed USDC
    for i, t in enumerate(TRADERS):
        lev = 2 + i
        equity = 5_000 + 1_000 * i
        c.fund(t, USDC, equity * USD)
        lots = equity * lev * 10_000 // 60_300  # at the makers' asks
        txs = [c.sign(t, PlaceOrder(BTC_PERP, True, 61_000, lots, Tif.IOC, False, None))]
        if i % 3 == 0:
            txs.append(c.sign(t, Borrow(USDC, equity * USD)))
            txs.append(c.sign(t, PlaceOrder(BTC_SPOT, True, 61_000, equity * 10_000 // 61_000, Tif.IOC, False, None)))
        r = c.block(*txs)
        assert all(x.ok for x in r.receipts), [x.message for x in r.receipts if not x.ok]
    events = []
    for px in PATH[1:]:
        r = c.block(*_block_txs(c, px))
        events.append(list(r.events))
    return c, events


def test_crash_liquidates_leveraged_longs_and_spares_everyone_else() -> None:
    with tempfile.TemporaryDirectory() as d:
        c = risk_chain(d, validators=VALIDATORS)
        del c
        chain, events = build(d)
        custody = {USDC: 100_000_000 * USD + 3_000_000 * USD + sum(5_000 + 1_000 * i for i in range(12)) * USD,
                   BTC: 1_000 * BTC_UNIT}
        check_all(chain, custody, events[-1])
        ex = chain.ex
        liquidated = {e[1] for evs in events for _, e in evs
                      if isinstance(e, tuple) and e[0] == "liquidation" and e[1] != INSURANCE_ACCOUNT}
        traders = {t.address for t in TRADERS}
        assert len(liquidated & traders) >= 8  # 30% takes out everyone above ~3x
        assert liquidated <= traders  # makers, lenders and validators are never liquidated
        for ln in LENDERS:  # no position: never a loss (they earned interest)
            assert ex.accounts[ln.address].balance(USDC) >= 1_000_000 * USD
        for addr in sorted(ex.accounts):
            if addr == INSURANCE_ACCOUNT:
                continue
            a = risk.maintenance(ex, ex.accounts[addr])
            assert a.equity >= 0
        fund = risk.maintenance(ex, ex.accounts[INSURANCE_ACCOUNT])
        assert fund.equity >= 0
        socialized = [e for evs in events for _, e in evs if isinstance(e, tuple) and e[0] == "socialized"]
        assert not socialized
        # replay from genesis: fresh in memory, and into a store reopened after every block
        replay = Chain(genesis=chain.genesis)
        with tempfile.TemporaryDirectory() as d2:
            reopened = Chain(d2, genesis=chain.genesis)
            for blk in chain.blocks:
                replay.sm.apply_block(blk)
                reopened.sm.apply_block(blk)
                reopened.reopen()
                assert replay.sm.app_hash == reopened.sm.app_hash
            assert replay.sm.app_hash == chain.sm.app_hash == reopened.sm.app_hash
            assert replay.sm.state_digest() == chain.sm.state_digest() == reopened.sm.state_digest()
