"""Property tests over random order flows (hypothesis).

Invariants checked after every block (tests/state/invariants.py):
- total value: per asset, custody (deposits - withdrawals) equals the sum of the signed
  balances of all accounts (fee account and insurance fund included; for the collateral
  asset less the signed perp entry notionals and the funding owed) up to the pools'
  rounding, which is in the protocol's favour and bounded by the number of holders;
- pool totals equal the sums of the accounts' shares; no book is crossed; each account's
  open-order aggregates match its orders;
- no account ends a block below maintenance without a liquidation having acted, and none
  but the insurance fund with negative equity;
- the in-memory state equals what the store holds (the cache is faithful);
- each block's write set is in strictly increasing key order (checked by tests/harness.py
  for every block a test applies);
- the same blocks give the same app hash at every height: on a fresh store, on a store
  closed and reopened between blocks, and in memory.
"""

from __future__ import annotations

import tempfile
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from state.tx import Cancel, CancelAll, Modify, PlaceOrder, Tif, Withdraw
from tests.harness import BTC, ETH, USDC, Chain, key
from tests.state.invariants import check_all

USERS = [key(30 + i) for i in range(5)]
MIDS = {0: 60_000, 1: 30_000, 2: 60_000, 3: 30_000}
FUND = {USDC: 50_000_000_000, BTC: 2 * 10**8, ETH: 40 * 10**8}

op = st.tuples(
    st.integers(0, len(USERS) - 1),  # who
    st.sampled_from(["order", "order", "order", "ioc", "alo", "cancel", "cancel_all", "modify", "withdraw"]),
    st.integers(0, 3),  # market
    st.booleans(),  # side
    st.integers(-40, 40),  # price offset from mid in ticks
    st.integers(1, 60),  # size in lots
    st.integers(0, 200),  # which open order (cancel/modify)
)
blocks_strategy = st.lists(st.lists(op, min_size=1, max_size=25), min_size=1, max_size=8)


def build_action(chain: Chain, o: tuple[Any, ...], markets: list[int]) -> tuple[Any, Any]:
    who, kind, m, side, off, size, pick = o
    market = markets[m % len(markets)]
    user = USERS[who]
    price = MIDS[market] + off * 5
    acct = chain.ex.accounts.get(user.address)
    open_oids = sorted(acct.open_orders) if acct else []
    if kind in ("cancel", "modify") and open_oids:
        oid = open_oids[pick % len(open_oids)]
        om = acct.open_orders[oid]
        if kind == "cancel":
            return user, Cancel(om, oid, None)
        return user, Modify(om, oid, None, MIDS[om] + off * 5, size)
    if kind == "cancel_all":
        return user, CancelAll(market if pick % 2 else None)
    if kind == "withdraw":
        return user, Withdraw([USDC, BTC, ETH][pick % 3], 1 + pick * 1000, b"out")
    tif = {"ioc": Tif.IOC, "alo": Tif.ALO}.get(kind, Tif.GTC)
    return user, PlaceOrder(market, side, price, size, tif, False, None)


def run_flow(blocks: list[list[tuple[Any, ...]]], markets: list[int], path: str | None = None,
             reopen_every_block: bool = False) -> tuple[Chain, list[bytes]]:
    chain = Chain(path)
    for u in USERS:
        for asset, amount in FUND.items():
            chain.fund(u, asset, amount)
    custody = {a: amount * len(USERS) for a, amount in FUND.items()}
    hashes = []
    for ops in blocks:
        txs = [chain.sign(*build_action(chain, o, markets)) for o in ops]
        result = chain.block(*txs)
        for _i, e in result.events:
            if isinstance(e, tuple) and e[0] == "withdraw":
                custody[e[2]] -= e[3]
        hashes.append(chain.sm.app_hash)
        check_all(chain, custody, list(result.events))
        if reopen_every_block:
            chain.reopen()
    return chain, hashes


# no shrinking: one example is a whole chain, and shrinking it can take many minutes; a
# failure prints the unshrunk example and its seed
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    phases=[Phase.explicit, Phase.reuse, Phase.generate])


@SETTINGS
@given(blocks_strategy)
def test_spot_flow_conserves_value_and_debts_stay_margined(blocks: list[list[tuple[Any, ...]]]) -> None:
    """Spot orders may now borrow (margin trading); a negative balance must be a pool debt
    that the account's initial margin covered when it was taken on."""
    chain, _ = run_flow(blocks, markets=[0, 1])
    for acct in chain.ex.accounts.values():
        for asset, bal in acct.balances.items():
            if bal < 0:
                assert chain.ex.pools.debt(acct, asset) >= -bal


@SETTINGS
@given(blocks_strategy)
def test_mixed_flow_invariants_with_store(blocks: list[list[tuple[Any, ...]]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        run_flow(blocks, markets=[0, 1, 2, 3], path=d)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(blocks_strategy)
def test_same_blocks_same_app_hash_fresh_reopened_and_in_memory(blocks: list[list[tuple[Any, ...]]]) -> None:
    with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
        a, ha = run_flow(blocks, markets=[0, 1, 2, 3], path=d1)
        b, hb = run_flow(blocks, markets=[0, 1, 2, 3], path=d2, reopen_every_block=True)
        c, hc = run_flow(blocks, markets=[0, 1, 2, 3])
        assert ha == hb == hc
        assert a.sm.state_digest() == b.sm.state_digest() == c.sm.state_digest()
        # replaying the recorded blocks into a fresh machine reaches the same hashes
        replay = Chain()
        for blk in a.blocks:
            replay.time = blk.time_ms - 1000
            replay.sm.apply_block(blk)
        assert replay.sm.app_hash == a.sm.app_hash
