"""Whole-state invariants checked after blocks by the property and scenario tests.

Total value, per asset ``a`` (custody = deposits - withdrawals, what the bridge holds)::

    custody(a) = sum over accounts of balance(a)                 (debts negative; the fee
               [ - sum of signed perp entry notionals              account and the insurance
                 - sum of funding owed by open positions ]         fund included; the perp
               + gap                                               terms for the collateral)

where ``gap`` is the lending pools' rounding in the protocol's favour: 0 <= gap <= the number
of accounts holding the asset + 2 (each account's supply value rounds down and its debt up;
the rest of the dust is swept to the insurance fund every block). Perp PnL is zero-sum at
any price, so positions count at their entry notionals ("at settlement").
"""

from __future__ import annotations

from typing import Any

from state import risk, trigbook
from state.funding import owed_funding
from state.genesis import FEE_ACCOUNT, INSURANCE_ACCOUNT


def value_terms(ex: Any, asset: int) -> tuple[int, int]:
    """(sum of the asset's balances incl. perp terms, number of accounts holding it)."""
    total = 0
    holders = 0
    for acct in ex.accounts.values():
        if asset in acct.scaled or asset in acct.idle:
            holders += 1
        total += acct.balance(asset)
        if asset == ex.collateral_asset:
            for m, pos in acct.positions.items():
                total -= pos.signed_entry() + owed_funding(ex, m, pos)
    return total, holders


def check_value_conserved(ex: Any, custody: dict[int, int]) -> None:
    for asset, expected in custody.items():
        pool = ex.pools[asset]
        assert pool.custody == expected, (asset, pool.custody, expected)
        total, holders = value_terms(ex, asset)
        gap = expected - total
        assert 0 <= gap <= holders + 2, (asset, gap, holders)
        assert ex.pool_surplus(asset) >= 0
        scaled = [a.scaled.get(asset, 0) for a in ex.accounts.values()]
        assert sum(s for s in scaled if s > 0) == pool.supply_shares
        assert -sum(s for s in scaled if s < 0) == pool.debt_shares
        assert sum(a.idle.get(asset, 0) for a in ex.accounts.values()) == pool.idle_total


def check_derived(ex: Any) -> None:
    """Books are sound and every account's derived order aggregates match its orders."""
    aggs: dict[bytes, dict[int, list[int]]] = {}
    for book in ex.books.values():
        assert not book.is_crossed()
        spec = ex.markets[book.market]
        for order in book.orders.values():
            assert order.size > 0 and order.live
            agg = aggs.setdefault(order.owner, {}).setdefault(order.market, [0, 0, 0, 0])
            i = 0 if order.is_buy else 2
            agg[i] += order.size
            agg[i + 1] += order.price * order.size * spec.tick_value
    for trig in ex.triggers.values():  # a waiting trigger holds margin as an order would
        if trig.counts_margin():
            spec = ex.markets[trig.market]
            agg = aggs.setdefault(trig.owner, {}).setdefault(trig.market, [0, 0, 0, 0])
            i = 0 if trig.is_buy else 2
            agg[i] += trig.size
            agg[i + 1] += trigbook.worst_ticks(ex, spec, trig) * trig.size * spec.tick_value
    for addr, acct in ex.accounts.items():
        assert acct.orders == aggs.get(addr, {}), addr.hex()
        for m, pos in acct.positions.items():
            assert (addr in ex.position_holders[m]) == (pos.size != 0)
            assert (addr in ex.position_sides[m][0]) == (pos.size > 0)
            assert (addr in ex.position_sides[m][1]) == (pos.size < 0)
    for m in ex.perp_market_ids:
        positions = [a.positions[m] for a in ex.accounts.values() if m in a.positions]
        assert sum(p.size for p in positions) == 0
        assert ex.perp_entry_sum[m] == sum(p.signed_entry() for p in positions)
        assert ex.perp_fref_sum[m] == sum(p.size * p.funding_index for p in positions)


def check_liquidations(ex: Any, events: list[tuple[int, Any]]) -> None:
    """No account ends the block below maintenance unless a liquidation acted on it this
    block, and no account but the insurance fund ends it with negative equity."""
    acted = {e[1] for _, e in events if isinstance(e, tuple) and e[0] == "liquidation"}
    for addr in sorted(ex.accounts):
        if addr in (FEE_ACCOUNT, INSURANCE_ACCOUNT):
            continue
        mm = risk.maintenance(ex, ex.accounts[addr])
        if mm.liabilities and mm.equity < mm.requirement:
            assert addr in acted, f"{addr.hex()} below maintenance ({mm.equity} < {mm.requirement}) untouched"
        assert mm.equity >= 0 or not mm.liabilities, f"{addr.hex()} left with equity {mm.equity}"


def check_all(chain: Any, custody: dict[int, int], events: list[tuple[int, Any]]) -> None:
    ex = chain.ex
    check_value_conserved(ex, custody)
    check_derived(ex)
    check_liquidations(ex, events)
    if chain.sm.store is not None:
        assert chain.sm.stored_records() == ex.snapshot_records()
