"""Hypothesis properties of transfers, sub-accounts, agents and isolated margin.

Random sequences of account actions (transfers between three accounts and two sub-accounts,
an agent trading, isolated BTC-PERP longs with margin moved in and out, oracle moves that
liquidate them) and, after every block:

- every asset's custody is unchanged by anything but deposits (there are none after setup),
  and the pools owe no more than they hold (the harness's check);
- isolation never leaks: the cross account CROSS, which holds no position, no order and
  keeps its USDC idle (lending off, so no interest), has exactly the USDC its own transfers
  and margin moves say, whatever its isolated position lost;
- rejected actions change nothing but the nonce (a rejected block equals an empty one);
- the same blocks replayed on a fresh chain give the same app hash; a restart from the
  records at a random height computes the same chain.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from state.agents import sub_account_address
from state.isolated import isolated_address
from state.machine import StateMachine
from state.tx import (
    ActAs,
    ApproveAgent,
    CreateSubAccount,
    Lend,
    OraclePrices,
    PlaceOrder,
    SetMarginMode,
    Tif,
    Transfer,
    UpdateIsolatedMargin,
)
from tests.harness import BTC, BTC_PERP, USDC, Chain, MemoryStore, key
from tests.state.riskkit import PX_60K, USD, V, risk_chain, set_prices

CROSS, A, B, MAKER, BOT = key(150), key(151), key(152), key(153), key(154)
SUBS = [sub_account_address(A.address, n) for n in ("s0", "s1")]

step = st.one_of(
    st.tuples(st.just("transfer"), st.integers(0, 2), st.integers(0, 4), st.integers(1, 3_000)),
    st.tuples(st.just("sub_back"), st.integers(0, 1), st.integers(1, 3_000)),
    st.tuples(st.just("iso_in"), st.integers(1, 5_000)),
    st.tuples(st.just("iso_out"), st.integers(1, 5_000)),
    st.tuples(st.just("iso_long"), st.integers(1, 20_000)),
    st.tuples(st.just("agent_order"), st.integers(50_000, 70_000), st.integers(1, 500)),
    st.tuples(st.just("oracle"), st.integers(-8, 8)),
)


def _setup() -> Chain:
    c = risk_chain()
    set_prices(c, btc=PX_60K)
    for k in (CROSS, A, B):
        c.fund(k, USDC, 50_000 * USD)
    c.fund(MAKER, USDC, 10_000_000 * USD)
    c.fund(MAKER, BTC, 1_000 * 10**8)
    assert c.result(CROSS, Lend(USDC, False)).status == "ok"
    assert c.result(CROSS, SetMarginMode(BTC_PERP, True)).status == "ok"
    for n in ("s0", "s1"):
        assert c.result(A, CreateSubAccount(n)).status == "ok"
    assert c.result(A, ApproveAgent(BOT.address, "bot", 0)).status == "ok"
    for px in range(50_000, 70_001, 500):  # a deep book both ways on the perp
        side = px < 60_000
        c.order(MAKER, BTC_PERP, side, px if side else px + 1, 2_000)
    return c


def _tx(c: Chain, s: tuple[Any, ...], expected: list[int]) -> list[bytes]:
    kind = s[0]
    if kind == "transfer":
        src = (CROSS, A, B)[s[1]]
        dst = [CROSS.address, A.address, B.address, *SUBS][s[2]]
        amount = s[3] * USD
        if src is CROSS and dst != CROSS.address and c.balance(CROSS, USDC) >= amount:
            expected[0] -= amount  # may still be refused by margin: corrected from the receipt
        return [c.sign(src, Transfer(dst, USDC, amount))]
    if kind == "sub_back":
        return [c.sign(A, ActAs(SUBS[s[1]], Transfer(A.address, USDC, s[2] * USD)))]
    if kind == "iso_in":
        return [c.sign(CROSS, UpdateIsolatedMargin(BTC_PERP, s[1] * USD))]
    if kind == "iso_out":
        return [c.sign(CROSS, UpdateIsolatedMargin(BTC_PERP, -s[1] * USD))]
    if kind == "iso_long":
        return [c.sign(CROSS, PlaceOrder(BTC_PERP, True, 61_000, s[1], Tif.IOC, False, None))]
    if kind == "agent_order":
        return [c.sign(BOT, ActAs(SUBS[0], PlaceOrder(BTC_PERP, True, s[1], s[2], Tif.GTC, False, None)))]
    px = c.ex.index_px[BTC] * (100 + s[1]) // 100
    return [c.sign(V, OraclePrices(((BTC, max(px, 30_000 * USD)),)))]


def _cross_delta(c: Chain, receipt: Any, s: tuple[Any, ...]) -> int:
    """What an accepted action of CROSS moves out of (negative) or into its cross USDC."""
    if receipt.code != 0:
        return 0
    if s[0] == "iso_in":
        return -s[1] * USD
    if s[0] == "iso_out":
        return s[1] * USD
    if s[0] == "transfer" and s[1] == 0 and s[2] != 0:
        return -s[3] * USD
    if s[0] == "transfer" and s[2] == 0 and s[1] != 0:
        return s[3] * USD
    return 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=25), st.integers(0, 24))
@example([("iso_in", 5_000), ("iso_long", 10_000), ("oracle", -8), ("oracle", -8), ("oracle", -8),
          ("transfer", 0, 3, 100), ("agent_order", 60_000, 100), ("sub_back", 0, 50)], 3)
def test_accounts_conserve_funds_isolate_losses_and_replay(steps: list[tuple[Any, ...]], restart_at: int) -> None:
    c = _setup()
    custody = {a: c.ex.pools[a].custody for a in range(3)}
    cross = c.balance(CROSS, USDC)
    for i, s in enumerate(steps):
        txs = _tx(c, s, [0])
        r = c.block(*txs)
        cross += _cross_delta(c, r.receipts[0], s)
        assert c.balance(CROSS, USDC) == cross, (i, s)  # no loss of the isolated account reaches it
        assert {a: c.ex.pools[a].custody for a in range(3)} == custody
        if i == restart_at:  # a node restarted from its records computes the same chain
            c = c.fork()
    replay = Chain(genesis=c.genesis)
    replay.sm = StateMachine(c.genesis, MemoryStore())  # type: ignore[arg-type]
    for blk in c.blocks:
        last = replay.sm.apply_block(blk)
    assert last.app_hash == c.sm.app_hash
    assert CROSS.address not in c.ex.position_holders.get(BTC_PERP, set())


def test_the_isolated_example_liquidates_the_isolated_account_only() -> None:
    """The explicit example above, checked for what it is meant to exercise."""
    c = _setup()
    cross = c.balance(CROSS, USDC)
    c.block(c.sign(CROSS, UpdateIsolatedMargin(BTC_PERP, 5_000 * USD)))
    c.block(c.sign(CROSS, PlaceOrder(BTC_PERP, True, 61_000, 10_000, Tif.IOC, False, None)))
    iso = isolated_address(CROSS.address, BTC_PERP)
    assert c.ex.accounts[iso].positions[BTC_PERP].size == 4_000  # the asks at 60,001 and 60,501
    seen = []
    for _ in range(3):
        r = c.block(c.sign(V, OraclePrices(((BTC, c.ex.index_px[BTC] * 92 // 100),))))
        seen += [e for _, e in r.events if isinstance(e, tuple) and e[0] == "liquidation"]
    assert seen and {e[1] for e in seen} == {iso}
    assert c.balance(CROSS, USDC) == cross - 5_000 * USD
