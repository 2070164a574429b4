"""Read-only views of the risk state for RPC: pools, markets (mark, funding), the oracle.

Every function returns plain dicts of ints and strings computed from the committed state
(no mutation), so the node can serve them as JSON (``num()`` for big integers): pools,
markets, the oracle, an account's margin summary, and the dry runs of orders, withdrawals
and borrows, which call the very checks the write path runs (``must_valid_*``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from state import lapse
from state.account import Account
from state.errors import TxError
from state.funding import owed_funding
from state.lendtx import must_valid_borrow
from state.lifetimes import dead_man_view
from state.matching import must_valid_order
from state.prices import book_price, mark_price
from state.risk import Assessment, assess, asset_price, perp_price, value_of
from state.transfers import must_valid_withdrawal
from state.units import PPM

if TYPE_CHECKING:
    from state.exchange import Exchange
    from state.tx import PlaceOrder



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


def market_rows(ex: Exchange) -> list[dict[str, Any]]:
    """The ``/markets`` listing: each market's constants, its last trade (ticks, None before
    the first), the oracle price of its base asset (price units; its price band is centred
    on it) and its reference price, which market orders are priced from: a perp's mark, a
    spot pair's oracle price (0 where the asset has no price)."""
    assets = ex.genesis.assets
    out = []
    for m, spec in enumerate(ex.markets):
        oracle_px = ex.index_px[spec.base]
        out.append({
            "id": m, "symbol": spec.symbol, "kind": spec.kind, "base": assets[spec.base].symbol,
            "quote": assets[spec.quote].symbol, "tick_size": spec.tick_size, "lot_size": spec.lot_size,
            "tick_value": spec.tick_value, "min_notional": spec.min_notional,
            # spot has no leverage setting: a spot order's margin is its haircuts and the borrow cap
            "max_leverage": spec.max_leverage if ex.minfo[m].is_perp else None,
            "max_price_ticks": spec.max_price_ticks, "price_band_ppm": spec.price_band_ppm,
            "oracle_price": oracle_px,
            "reference_price": mark_price(ex, m) if spec.is_derivative else oracle_px,
            "last_price": ex.last_price.get(m),
        })
        if spec.expiry_ms:  # a dated future: its terms and whether it has settled (state/futures.py)
            st = ex.mstate[m]
            out[-1].update({"expiry_ms": spec.expiry_ms, "settlement_window_ms": spec.settlement_window_ms,
                            "settled": bool(st.settled), "settlement_price": st.settlement_price})
    return out


def markets_view(ex: Exchange) -> list[dict[str, Any]]:
    """Per market: index and (perps) mark price, basis EMA, funding index, the current
    interval's average premium, the last settled funding epoch and its mark; (futures) the
    expiry, settlement window, whether settled and at what price, the mark."""
    risk = ex.genesis.risk
    next_funding = ex.genesis.genesis_time_ms + (ex.funding_epoch + 1) * risk.funding_interval_ms
    out = []
    for m, spec in enumerate(ex.markets):
        row: dict[str, Any] = {"market": m, "symbol": spec.symbol, "kind": spec.kind,
                               "index_price": ex.index_px[spec.base], "book_price": book_price(ex, m),
                               "last_price_ticks": ex.last_price.get(m, 0)}
        if spec.expiry_ms:  # a dated future (state/futures.py)
            fst = ex.mstate[m]
            row.update({
                "expiry_ms": spec.expiry_ms, "settlement_window_ms": spec.settlement_window_ms,
                "settled": bool(fst.settled), "settlement_price": fst.settlement_price,
                "mark_price": mark_price(ex, m),
                "open_interest_lots": sum(ex.accounts[a].positions[m].size for a in ex.position_sides[m][0]),
            })
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
    return margin_summary(ex, ex.insurance_account)


def _verdict(fn: Any, *args: Any) -> dict[str, Any]:
    try:
        fn(*args)
    except TxError as err:
        return {"ok": False, "code": int(err.code), "name": err.code.name, "message": err.message}
    return {"ok": True, "code": 0, "name": "OK", "message": ""}


def can_place_order(ex: Exchange, address: bytes, order: PlaceOrder) -> dict[str, Any]:
    """Would this order pass every check now (validity, margin, pools)? No state changes."""
    acct = ex.accounts.get(address) or Account(address, ex.pools)

    return _verdict(must_valid_order, ex, acct, order)


def can_withdraw(ex: Exchange, address: bytes, asset: int, amount: int) -> dict[str, Any]:
    return _verdict(must_valid_withdrawal, ex, address, asset, amount)


def can_borrow(ex: Exchange, address: bytes, asset: int, amount: int) -> dict[str, Any]:
    return _verdict(must_valid_borrow, ex, address, asset, amount)


def liquidation_prices(ex: Exchange, acct: Account, mm: Assessment) -> dict[int, int | None]:
    """Per underlying, the index price at which equity would meet maintenance with every
    other price fixed (linear estimate; None where the account has no net exposure or the
    price would not be positive)."""
    out: dict[int, int | None] = {}
    for u, (ns, p, _pg, req_u) in sorted(mm.underlyings.items()):
        n = ns + p  # equity's sensitivity to a relative move x: n * x
        px = asset_price(ex, u)
        # equity + n x = (requirement - req_u) + req_u * (1 + x)  =>  x = (req - equity) / (n - req_u)
        denom = n - req_u
        if not px or denom == 0 or n == 0:
            out[u] = None
            continue
        liq = px + px * (mm.requirement - mm.equity) // denom
        out[u] = liq if liq > 0 else None
    return out


def margin_summary(ex: Exchange, address: bytes) -> dict[str, Any]:
    """Equity, initial and maintenance requirement, margin ratio, free collateral, balances,
    debts, positions and liquidation prices of one account (JSON-ready integers)."""
    acct = ex.accounts.get(address)
    if acct is None:
        return {"equity": 0, "initial": 0, "maintenance": 0, "margin_ratio_ppm": 0, "free_collateral": 0,
                "liquidatable": False, "balances": [], "positions": [], "liquidation_prices": {},
                "dead_man": dead_man_view(ex, None)}
    im = assess(ex, acct, True, orders=True)
    mm = assess(ex, acct, False, detail=True)
    balances = []
    for a in sorted(set(acct.scaled) | set(acct.idle)):
        balances.append({"asset": a, "balance": acct.balance(a), "idle": acct.idle.get(a, 0),
                         "supplied": ex.pools.supplied(acct, a), "borrowed": ex.pools.debt(acct, a),
                         "auto_lend": a not in acct.lend_off, "price": asset_price(ex, a)})
    positions = []
    for m, pos in sorted(acct.positions.items()):
        if pos.size:
            spec = ex.markets[m]
            px = perp_price(ex, m)
            v = value_of(pos.size * spec.lot_size, px, ex.unit[spec.base])
            positions.append({"market": m, "size": pos.size, "entry_notional": pos.entry_notional, "mark": px,
                              "notional": v, "unrealized_pnl": v - pos.signed_entry(),
                              "funding_owed": owed_funding(ex, m, pos), "realized_pnl": pos.realized_pnl})
    ratio = mm.requirement * PPM // mm.equity if mm.equity > 0 else (0 if not mm.requirement else -1)
    return {
        "equity": im.equity, "initial": im.requirement, "maintenance": mm.requirement,
        "margin_ratio_ppm": ratio, "free_collateral": im.equity - im.requirement,
        "liquidatable": mm.liabilities and mm.equity < mm.requirement,
        "balances": balances, "positions": positions,
        "liquidation_prices": {str(u): p for u, p in liquidation_prices(ex, acct, mm).items()},
        "unwind_order": list(acct.unwind),
        # per derivative market: the leverage the account allows itself (the market's max unless lowered)
        "leverage": {str(m): acct.leverage.get(m, ex.markets[m].max_leverage)
                     for m in range(len(ex.markets)) if ex.minfo[m].is_perp},
        "dead_man": dead_man_view(ex, acct),  # the dead-man switch: deadline_ms, used_today, per_day_limit
    }


def account_links(ex: Exchange, address: bytes) -> dict[str, Any]:
    """Who else acts for or through ``address`` (state/agents.py): its agents, its
    sub-accounts, its master if it is a sub-account, and the account it trades for if it
    is an agent key."""
    agents = [{"address": a, "name": ex.agents[a][3], "valid_until_ms": ex.agents[a][1],
               "approved_ms": ex.agents[a][2]} for a in sorted(ex.agents_of.get(address, ()))]
    subs = [{"address": a, "name": ex.subs[a][1]} for a in sorted(ex.subs_of.get(address, ()))]
    sub = ex.subs.get(address)
    agent = ex.agents.get(address)
    return {"agents": agents, "sub_accounts": subs, "master": sub[0] if sub else None,
            "agent_of": agent[0] if agent else None}


def book_view(ex: Exchange, market: int, depth: int) -> dict[str, Any]:
    """The best ``depth`` levels of each side: [[price ticks, lots, orders]], best first."""
    bids, asks = lapse.depth(ex, market, depth)  # lapsed orders are not shown
    return {"market": market, "bids": [list(b) for b in bids], "asks": [list(a) for a in asks]}


def open_orders_view(ex: Exchange, address: bytes) -> list[dict[str, Any]]:
    """The account's open orders, by order id."""
    acct = ex.accounts.get(address)
    if acct is None:
        return []
    out = []
    for oid in sorted(acct.open_orders):
        o = ex.books[acct.open_orders[oid]].orders[oid]
        out.append({"oid": o.oid, "market": o.market, "side": "buy" if o.is_buy else "sell",
                    "price": o.price, "size": o.size, "orig_size": o.orig_size,
                    "tif": ["gtc", "ioc", "alo"][o.tif], "reduce_only": o.reduce_only,
                    "cloid": o.cloid.hex() if o.cloid else None,
                    "expires_at_ms": o.expires_at or None})
    return out


def triggers_view(ex: Exchange, address: bytes) -> list[dict[str, Any]]:
    """The account's waiting trigger orders, by order id. ``size`` is the active size (an
    OCO child's grows as its parent fills; a position TP/SL's is "position")."""
    acct = ex.accounts.get(address)
    if acct is None:
        return []
    out = []
    for oid in sorted(acct.triggers):
        t = ex.triggers[oid]
        out.append({"oid": oid, "market": t.market, "side": "buy" if t.is_buy else "sell",
                    "trigger": {"kind": "tp" if t.tpsl == 0 else "sl", "trigger_price": t.trigger,
                                "is_market": t.is_market, "limit": t.limit,
                                "active_size": "position" if t.whole else t.size,
                                "parent": t.parent or None},
                    "reduce_only": t.reduce_only, "cloid": t.cloid.hex() if t.cloid else None})
    return out


def balances_view(ex: Exchange, address: bytes) -> list[dict[str, Any]]:
    """Every non-zero signed balance (negative: borrowed)."""
    acct = ex.accounts.get(address)
    if acct is None:
        return []
    assets = ex.genesis.assets
    return [{"asset": a, "symbol": assets[a].symbol, "free": amount} for a, amount in sorted(acct.balances.items())]
