"""Property tests of the risk engine over random leveraged flows with moving prices.

Each block: the validator moves the oracle (up to +-12%), a market maker requotes both
books around it, and random users trade perps and spot with leverage, borrow, repay,
withdraw, toggle auto-lend and set unwind orders; funding settles every 3 blocks. After every block the invariants of
tests/state/invariants.py hold (total value incl. pools and insurance fund, derived
aggregates, store == memory, every account below maintenance was liquidated this block,
nobody but the fund has negative equity); the app hash is the same fresh, reopened after
every block, and in memory.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from state.tx import (
    Batch,
    Borrow,
    Cancel,
    CancelAll,
    Lend,
    OraclePrices,
    PlaceOrder,
    Repay,
    SetUnwindOrder,
    Tif,
    Withdraw,
)
from tests.harness import BTC, BTC_PERP, BTC_SPOT, ETH, ETH_PERP, ETH_SPOT, USDC, Chain, key
from tests.state.invariants import check_all
from tests.state.riskkit import BTC_UNIT, USD, V, risk_chain

USERS = [key(160 + i) for i in range(6)]
MAKER = key(170)
FUND = {USDC: 3_000 * USD, BTC: BTC_UNIT // 20, ETH: 10**8 // 2}  # ~$7.5k each
MAKER_FUND = {USDC: 5_000_000 * USD, BTC: 100 * BTC_UNIT, ETH: 1_000 * 10**8}
TICK = {BTC_SPOT: 1, ETH_SPOT: 0, BTC_PERP: 1, ETH_PERP: 0}  # price unit: BTC $1, ETH $0.1

op = st.tuples(
    st.integers(0, len(USERS) - 1),
    st.sampled_from(["long", "short", "long", "short", "spot", "cancel", "borrow", "repay", "withdraw", "lend",
                     "unwind"]),
    st.integers(0, 3),  # market
    st.integers(1, 30),  # size factor: $1,500 of notional each
    st.integers(-30, 30),  # price offset (0.1% steps)
    st.integers(0, 100),  # pick
)
block = st.tuples(st.integers(-120, 120), st.lists(op, max_size=10))  # price move in 0.1% steps
flows = st.lists(block, min_size=1, max_size=10)


def _px(prices: dict[int, int], market: int) -> int:
    """Ticks of the oracle price in ``market``."""
    asset = BTC if market in (BTC_SPOT, BTC_PERP) else ETH
    return prices[asset] // (USD if asset == BTC else USD // 10)


def _maker_txs(c: Chain, prices: dict[int, int]) -> list[bytes]:
    orders = []
    for m in (BTC_SPOT, ETH_SPOT, BTC_PERP, ETH_PERP):
        p = _px(prices, m)
        for i in (2, 6, 15, 40):
            orders.append(PlaceOrder(m, True, p - p * i // 1000, 3_000, Tif.GTC, False, None))
            orders.append(PlaceOrder(m, False, p + p * i // 1000, 3_000, Tif.GTC, False, None))
    return [c.sign(MAKER, CancelAll(None)), c.sign(MAKER, Batch(tuple(orders)))]


def _action(c: Chain, o: tuple[Any, ...], prices: dict[int, int]) -> tuple[Any, Any]:
    who, kind, m, factor, off, pick = o
    user = USERS[who]
    acct = c.ex.accounts.get(user.address)
    if kind in ("long", "short", "spot"):
        market = [BTC_PERP, ETH_PERP][m % 2] if kind != "spot" else [BTC_SPOT, ETH_SPOT][m % 2]
        p = _px(prices, market)
        price = max(1, p + p * off // 1000)
        notional_usd = 1_500 * factor
        is_buy = kind == "long" or (kind == "spot" and pick % 2 == 0)
        per_lot = 6 if market in (BTC_SPOT, BTC_PERP) else 3  # $ per lot at the start prices
        lots = max(2, notional_usd // per_lot)
        tif = Tif.IOC if pick % 3 == 0 else Tif.GTC
        return user, PlaceOrder(market, is_buy, price, lots, tif, pick % 7 == 0 and kind != "spot", None)
    if kind == "cancel":
        oids = sorted(acct.open_orders) if acct else []
        if oids:
            oid = oids[pick % len(oids)]
            return user, Cancel(acct.open_orders[oid], oid, None)
        return user, CancelAll(None)
    asset = [USDC, BTC, ETH][pick % 3]
    amount = {USDC: 300 * USD, BTC: BTC_UNIT // 200, ETH: 10**8 // 20}[asset] * factor
    if kind == "borrow":
        return user, Borrow(asset, amount)
    if kind == "repay":
        return user, Repay(asset, amount)
    if kind == "withdraw":
        return user, Withdraw(asset, amount, b"out")
    if kind == "lend":
        return user, Lend(asset, pick % 2 == 0)
    return user, SetUnwindOrder(tuple(sorted({m, pick % 4})))


def run_risk_flow(flow: list[tuple[int, list[tuple[Any, ...]]]], path: str | None = None,
                  reopen: bool = False) -> tuple[Chain, list[bytes]]:
    c = risk_chain(path, risk={"funding": {"interval_ms": 3_000}})  # funding every 3 blocks
    custody = {a: 0 for a in FUND}
    for u in USERS:
        for a, amount in FUND.items():
            c.fund(u, a, amount)
            custody[a] += amount
    for a, amount in MAKER_FUND.items():
        c.fund(MAKER, a, amount)
        custody[a] += amount
    prices = {BTC: 60_000 * USD, ETH: 3_000 * USD}
    c.block(c.sign(V, OraclePrices(tuple(prices.items()))), *_maker_txs(c, prices))
    hashes = []
    for move, ops in flow:
        prices = {a: max(p + p * move // 1000, USD) for a, p in prices.items()}
        txs = [c.sign(V, OraclePrices(tuple(prices.items()))), *_maker_txs(c, prices)]
        txs += [c.sign(*_action(c, o, prices)) for o in ops]
        result = c.block(*txs)
        for _i, e in result.events:
            if isinstance(e, tuple) and e[0] == "withdraw":
                custody[e[2]] -= e[3]
        check_all(c, custody, list(result.events))
        hashes.append(c.sm.app_hash)
        if reopen:
            c.reopen()
    return c, hashes


SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    phases=[Phase.explicit, Phase.reuse, Phase.generate])


@SETTINGS
@given(flows)
def test_risk_flow_keeps_value_liquidates_and_leaves_no_negative_equity(flow: Any) -> None:
    run_risk_flow(flow)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(flows)
def test_risk_flow_same_app_hash_when_the_watch_compacts_every_block(flow: Any) -> None:
    """The watch compacts its heaps (``Watch.rebuild``) when stale entries pile up, which
    depends on a node's memory since its start, not on the state; compacting at every
    block's scan must not change any app hash. (Compaction forgets which accounts' entries
    fired; a rule that kept an arming on that memory would fork a restarted node.)"""
    from state import watch

    _, plain = run_risk_flow(flow)
    collect = watch.collect

    def compacting(ex: Any, funding: Any) -> Any:
        out = collect(ex, funding)
        ex.watch.rebuild(ex)
        return out

    with patch.object(watch, "collect", compacting):
        _, compacted = run_risk_flow(flow)
    assert compacted == plain
