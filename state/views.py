"""Read-only views of the risk state for RPC: pools, markets (mark, funding), the oracle.

Every function returns plain dicts of ints and strings computed from the committed state
(no mutation), so the node can serve them as JSON (``num()`` for big integers). The
per-account views are in state/risk.py (``margin_summary``, ``can_place_order``,
``can_withdraw``, ``can_borrow``, ``reserved``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from state.prices import book_price, mark_price

if TYPE_CHECKING:
    from state.exchange import Exchange


def pools_view(ex: Exchange) -> list[dict[str, Any]]:
    """Per asset: supplied, borrowed, utilization, borrow and supply rates (ppm a year),
    indices, custody, idle funds, and the rounding surplus."""
    out = []
    for a, spec in enumerate(ex.genesis.assets):
        p = ex.pools[a]
        out.append({
            "asset": a, "symbol": spec.symbol,
            "supplied": p.supply_value(), "borrowed": p.debt_value(), "available": p.cash(),
            "idle": p.idle_total, "custody": p.custody,
            "utilization_ppm": p.utilization_ppm(), "borrow_rate_ppm": p.rate_ppm,
            "supply_rate_ppm": p.supply_rate_ppm(), "utilization_cap_ppm": p.params.util_cap_ppm,
            "supply_index": p.supply_index, "borrow_index": p.borrow_index,  # 1e18 fixed point
            "surplus": ex.pool_surplus(a),
        })
    return out


def markets_view(ex: Exchange) -> list[dict[str, Any]]:
    """Per market: index and (perps) mark price, basis EMA, funding index, the current
    interval's average premium, the last settled funding epoch and its mark."""
    risk = ex.genesis.risk
    next_funding = ex.genesis.genesis_time_ms + (ex.funding_epoch + 1) * risk.funding_interval_ms
    out = []
    for m, spec in enumerate(ex.markets):
        row: dict[str, Any] = {"market": m, "symbol": spec.symbol, "kind": spec.kind,
                               "index_price": ex.index_px[spec.base], "book_price": book_price(ex, m),
                               "last_price_ticks": ex.last_price.get(m, 0)}
        if m in ex.perp_market_ids:
            st = ex.mstate[m]
            row.update({
                "mark_price": mark_price(ex, m), "basis_ema": st.ema_basis,
                "funding_index": st.funding_index,  # quote units per lot, cumulative
                "premium_avg_ppb": st.premium_sum // st.premium_count if st.premium_count else 0,
                "premium_samples": st.premium_count, "funding_epoch": ex.funding_epoch,
                "epoch_mark": st.epoch_mark, "next_funding_ms": next_funding,
                "open_interest_lots": sum(ex.accounts[a].positions[m].size for a in ex.position_sides[m][0]),
            })
        out.append(row)
    return out


def oracle_view(ex: Exchange) -> list[dict[str, Any]]:
    """Per asset: the oracle price, when it was last aggregated, and each fresh submission."""
    out = []
    for a, spec in enumerate(ex.genesis.assets):
        if a == ex.collateral_asset:
            continue
        p = ex.pools[a]
        subs = [{"validator": ex.genesis.validators[v].name, "price": px, "time_ms": ms}
                for (asset, v), (px, ms) in sorted(ex.oracle_subs.items()) if asset == a]
        out.append({"asset": a, "symbol": spec.symbol, "price": p.oracle_px, "time_ms": p.oracle_ms,
                    "index_price": ex.index_px[a], "submissions": subs})
    return out


def insurance_view(ex: Exchange) -> dict[str, Any]:
    from state.risk import margin_summary

    return margin_summary(ex, ex.insurance_account)
