"""Hyperliquid-compatible read side: the answers of ``POST /info`` (issue 26).

Hyperliquid's SDKs (hyperliquid-python-sdk's ``Info``, ccxt) read an exchange through one
endpoint, ``POST /info`` with ``{"type": ...}``. Answering in their shapes lets those
clients read a bookchain devnet unchanged. Everything here is a pure function of the
exchange state (``ex``) and, for fills, candles, orders' placements and outcomes, funding
rates and ledger entries (interest included, node/interest.py), of what the node's block
store indexed (``Sources``), so it is tested without a node.

Naming follows Hyperliquid: the perp universe (perps, then dated futures) is indexed from
0 and a perp is named by its base asset (``BTC``), a future by its symbol; spot pairs are
indexed from 10000 and named ``@i`` (requests also take a market's symbol, ``BTC/USDC``).
Numbers are decimal strings in human units: prices ``ticks * tick_size /
10^quote_decimals``, sizes ``lots * lot_size / 10^base_decimals``, exact (ratios such as
an entry price are rounded to 8 places).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from state import lapse
from state.account import ISOLATED_PREFIX
from state.hlassets import perp_ids, spot_ids
from state.isolated import isolated_markets
from state.keys import address_from_text, address_to_text, bytes_from_hex
from state.units import sz_decimals
from state.views import margin_summary

if TYPE_CHECKING:
    from state.exchange import Exchange

BOOK_LEVELS = 20
RATIO_PLACES = 8


class InfoError(ValueError):
    """A request ``/info`` cannot answer (unknown type, missing or malformed field): 400."""


# ---------------------------------------------------------------------------- numbers
def dec(value: int, places: int) -> str:
    """``value / 10^places`` exactly, without trailing zeros (``dec(250_000, 6) == "0.25"``)."""
    if places <= 0:
        return str(value * 10 ** -places)
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**places)
    text = f"{frac:0{places}d}".rstrip("0")
    return f"{sign}{whole}.{text}" if text else f"{sign}{whole}"


def ratio(num: int, den: int, places: int = RATIO_PLACES) -> str:
    """``num / den`` rounded half away from zero to ``places`` decimals ("0" when den is 0)."""
    if den == 0:
        return "0"
    neg = (num < 0) != (den < 0)
    n, d = abs(num), abs(den)
    scaled = (n * 10**places * 2 + d) // (2 * d)
    return dec(-scaled if neg else scaled, places)


class Units:
    """Converts one market's integers (ticks, lots, price units, quote units) to text."""

    __slots__ = ("base_dec", "lot_size", "quote_dec", "tick_size")

    def __init__(self, ex: Exchange, market: int) -> None:
        spec = ex.markets[market]
        assets = ex.genesis.assets
        self.base_dec = assets[spec.base].decimals
        self.quote_dec = assets[spec.quote].decimals
        self.tick_size = spec.tick_size
        self.lot_size = spec.lot_size

    def px(self, ticks: int) -> str:
        return dec(ticks * self.tick_size, self.quote_dec)

    def sz(self, lots: int) -> str:
        return dec(lots * self.lot_size, self.base_dec)

    def price_units(self, px: int) -> str:
        """A price in price units (quote smallest units per whole base unit: marks, oracle)."""
        return dec(px, self.quote_dec)


# ---------------------------------------------------------------------------- coins
def coin_of(ex: Exchange, market: int) -> str:
    """Hyperliquid's coin name: a perp's base asset, a future's symbol, a spot pair's
    ``@i`` (its spot universe index, as Hyperliquid names non-canonical pairs; clients
    such as the SDK map the pair's ``BASE/QUOTE`` name to it from spotMeta)."""
    spec = ex.markets[market]
    if market in ex.perp_market_ids:
        return ex.genesis.assets[spec.base].symbol
    if not spec.is_derivative:
        return f"@{spot_ids(ex).index(market)}"
    return spec.symbol


def coin_map(ex: Exchange) -> dict[str, int]:
    """Every name a client may use for a market -> market id: its coin, its symbol, and
    for spot ``@i`` (Hyperliquid's spot naming)."""
    out: dict[str, int] = {}
    for i, m in enumerate(spot_ids(ex)):
        out[f"@{i}"] = m
        out[ex.markets[m].symbol] = m
    for m in perp_ids(ex):
        out[ex.markets[m].symbol] = m
        out[coin_of(ex, m)] = m  # the perp wins a shared name
    return out


def market_of_coin(ex: Exchange, coin: Any) -> int:
    if not isinstance(coin, str):
        raise InfoError("coin must be a string")
    found = coin_map(ex).get(coin)
    if found is None:
        raise InfoError(f"unknown coin {coin!r}")
    return found


# ---------------------------------------------------------------------------- market data
def meta(ex: Exchange) -> dict[str, Any]:
    universe = []
    for m in perp_ids(ex):
        spec = ex.markets[m]
        universe.append({"name": coin_of(ex, m),
                         "szDecimals": sz_decimals(spec.lot_size, ex.genesis.assets[spec.base].decimals),
                         "maxLeverage": spec.max_leverage, "onlyIsolated": False})
    return {"universe": universe}


def spot_meta(ex: Exchange) -> dict[str, Any]:
    """Tokens are the chain's assets (index = asset id); the universe its spot pairs."""
    sz_dec: dict[int, int] = {}
    for m in spot_ids(ex):
        spec = ex.markets[m]
        sz_dec.setdefault(spec.base, sz_decimals(spec.lot_size, ex.genesis.assets[spec.base].decimals))
    tokens = [{"name": a.symbol, "szDecimals": sz_dec.get(a.asset_id, a.decimals), "weiDecimals": a.decimals,
               "index": a.asset_id, "tokenId": "0x" + a.asset_id.to_bytes(16, "big").hex(),
               "isCanonical": True, "evmContract": None, "fullName": None}
              for a in ex.genesis.assets]
    universe = [{"name": f"@{i}", "tokens": [ex.markets[m].base, ex.markets[m].quote],
                 "index": i, "isCanonical": True} for i, m in enumerate(spot_ids(ex))]
    return {"tokens": tokens, "universe": universe}


def reference_px(ex: Exchange, market: int) -> int:
    """A derivative's mark, a spot pair's oracle price (price units; 0 when unpriced)."""
    from state.prices import mark_price

    spec = ex.markets[market]
    return mark_price(ex, market) if spec.is_derivative else ex.index_px[spec.base]


def mid_text(ex: Exchange, market: int) -> str | None:
    """Mid of the best bid and ask (exact: half a tick shows as .5), None on a one-sided book."""
    bid, ask = lapse.best(ex, market)  # (state/lapse.py)
    if bid is None or ask is None:
        return None
    u = Units(ex, market)
    return dec((bid + ask) * u.tick_size * 5, u.quote_dec + 1)


def all_mids(ex: Exchange) -> dict[str, str]:
    """Coin -> mid (the mark or oracle price where the book is one-sided): perps by coin,
    spot pairs by ``@i`` as Hyperliquid keys them."""
    out: dict[str, str] = {}
    for m in perp_ids(ex) + spot_ids(ex):
        mid = mid_text(ex, m)
        if mid is None:
            mid = Units(ex, m).price_units(reference_px(ex, m))
        out[coin_of(ex, m)] = mid
    return out


def l2_book(ex: Exchange, coin: Any, time_ms: int | None = None) -> dict[str, Any]:
    m = market_of_coin(ex, coin)
    u = Units(ex, m)
    bids, asks = lapse.depth(ex, m, BOOK_LEVELS)  # lapsed orders are not shown (state/lapse.py)

    def side(levels: Sequence[tuple[int, int, int]]) -> list[dict[str, Any]]:
        return [{"px": u.px(p), "sz": u.sz(s), "n": n} for p, s, n in levels]

    return {"coin": coin, "time": ex.time_ms if time_ms is None else time_ms, "levels": [side(bids), side(asks)]}


HOUR_MS = 3_600_000


def premium_ppb(ex: Exchange, market: int) -> int:
    """The current funding interval's average premium so far (ppb, toward zero)."""
    st = ex.mstate[market]
    if market not in ex.perp_market_ids or not st.premium_count:
        return 0
    q = abs(st.premium_sum) // st.premium_count
    return q if st.premium_sum >= 0 else -q


def predicted_rate_ppb(ex: Exchange, market: int) -> int:
    """The rate the interval would settle at now: state/funding.py ``maybe_settle``'s
    formula (premium plus the clamped interest term, capped) on the premium so far."""
    if market not in ex.perp_market_ids:
        return 0
    risk = ex.genesis.risk
    p, c = premium_ppb(ex, market), risk.funding_clamp_ppb
    rate = p + max(-c, min(c, risk.funding_interest_ppb - p))
    return max(-risk.funding_cap_ppb, min(risk.funding_cap_ppb, rate))


def asset_ctxs(ex: Exchange) -> list[dict[str, Any]]:
    """Per perp-universe entry: funding (the predicted rate, per hour as Hyperliquid
    quotes it: the per-interval rate scaled by an hour over the interval), open interest
    (base units), mark, oracle, mid, premium (the interval's average so far), impact prices
    (the best bid and ask). Day volume and previous-day price are not tracked in state:
    "0" and the mark. A dated future has no funding: "0"."""
    interval = ex.genesis.risk.funding_interval_ms
    out = []
    for m in perp_ids(ex):
        spec = ex.markets[m]
        u = Units(ex, m)
        prem = premium_ppb(ex, m)
        rate = ratio(predicted_rate_ppb(ex, m) * HOUR_MS, interval * 10**9, 12) if interval else "0"
        oi = sum(ex.accounts[a].positions[m].size for a in sorted(ex.position_sides[m][0]))
        mark = u.price_units(reference_px(ex, m))
        bid, ask = lapse.best(ex, m)
        out.append({
            "funding": rate, "openInterest": u.sz(oi), "prevDayPx": mark, "dayNtlVlm": "0",
            "premium": dec(prem, 9), "oraclePx": u.price_units(ex.index_px[spec.base]), "markPx": mark,
            "midPx": mid_text(ex, m),
            "impactPxs": None if bid is None or ask is None else [u.px(bid), u.px(ask)],
        })
    return out


def meta_and_asset_ctxs(ex: Exchange) -> list[Any]:
    return [meta(ex), asset_ctxs(ex)]


def spot_asset_ctxs(ex: Exchange) -> list[dict[str, Any]]:
    """Per spot pair: its coin (``@i``), mark (the oracle price of its base), mid.
    Day volume, previous-day price and supply are not tracked: "0", the mark, "0"."""
    out = []
    for m in spot_ids(ex):
        mark = Units(ex, m).price_units(reference_px(ex, m))
        out.append({"coin": coin_of(ex, m), "markPx": mark, "midPx": mid_text(ex, m), "prevDayPx": mark,
                    "dayNtlVlm": "0", "circulatingSupply": "0", "totalSupply": "0"})
    return out


def spot_meta_and_asset_ctxs(ex: Exchange) -> list[Any]:
    return [spot_meta(ex), spot_asset_ctxs(ex)]


# ---------------------------------------------------------------------------- accounts
def parse_user(value: Any) -> bytes:
    if not isinstance(value, str):
        raise InfoError("user must be a 0x address")
    try:
        return address_from_text(value)
    except ValueError as err:
        raise InfoError(f"user: {err}") from None


def own_accounts(ex: Exchange, address: bytes) -> list[bytes]:
    """``address`` and its isolated-margin accounts (state/isolated.py): on Hyperliquid an
    isolated position is the user's own, so every per-user answer covers all of them."""
    return [address, *(iso for _m, iso in isolated_markets(ex, address))]


def clearinghouse_state(ex: Exchange, address: bytes) -> dict[str, Any]:
    """Positions and the margin summary (state/views.py ``margin_summary``) in USD: account
    value = equity, margin used = the initial requirement, maintenance = the maintenance
    requirement, withdrawable = free collateral (not below 0). The portfolio is one cross
    account; a market traded isolated is its isolated account's, shown as an "isolated"
    position whose margin used is that account's equity (``rawUsd``: its USDC less the
    position's notional), counted in ``marginSummary`` but not ``crossMarginSummary``."""
    qdec = ex.genesis.assets[ex.collateral_asset].decimals
    positions: list[dict[str, Any]] = []
    totals = [0, 0, 0, 0]  # equity, |notional|, signed notional, initial: cross, then every account
    cross: dict[str, str] = {}
    own = margin_summary(ex, address)
    for holder in own_accounts(ex, address):
        isolated = holder != address
        s = margin_summary(ex, holder) if isolated else own
        acct = ex.accounts.get(holder)
        liq = s["liquidation_prices"]
        for p in s["positions"]:
            m = p["market"]
            spec = ex.markets[m]
            u = Units(ex, m)
            lev = acct.leverage.get(m, spec.max_leverage) if acct is not None else spec.max_leverage
            notional = p["notional"]  # signed quote units at the mark
            totals[1] += abs(notional)
            totals[2] += notional
            margin = s["equity"] if isolated else (abs(notional) // lev if lev else abs(notional))
            entry_margin = p["entry_notional"] // lev if lev else p["entry_notional"]
            liq_px = liq.get(str(spec.base))
            funding = dec(p["funding_owed"], qdec)
            kind: dict[str, Any] = {"type": "isolated", "value": lev, "rawUsd": dec(s["equity"] - notional, qdec)} \
                if isolated else {"type": "cross", "value": lev}
            positions.append({"type": "oneWay", "position": {
                "coin": coin_of(ex, m), "szi": u.sz(p["size"]),
                "entryPx": ratio(p["entry_notional"] * 10**u.base_dec, abs(p["size"]) * u.lot_size * 10**u.quote_dec),
                "positionValue": dec(abs(notional), qdec), "unrealizedPnl": dec(p["unrealized_pnl"], qdec),
                "returnOnEquity": ratio(p["unrealized_pnl"], entry_margin),
                "liquidationPx": None if liq_px is None else u.price_units(liq_px),
                "marginUsed": dec(margin, qdec), "leverage": kind,
                "maxLeverage": spec.max_leverage,
                # only the funding not yet settled into the balance is known per position
                "cumFunding": {"allTime": funding, "sinceOpen": funding, "sinceChange": funding},
            }})
        totals[0] += s["equity"]
        totals[3] += s["initial"]
        if not isolated:
            cross = _margin_summary(totals, qdec)
    return {"assetPositions": positions, "marginSummary": _margin_summary(totals, qdec), "crossMarginSummary": cross,
            "crossMaintenanceMarginUsed": dec(own["maintenance"], qdec),
            "withdrawable": dec(max(own["free_collateral"], 0), qdec), "time": ex.time_ms}


def _margin_summary(totals: list[int], qdec: int) -> dict[str, str]:
    equity, gross, signed, initial = totals
    return {"accountValue": dec(equity, qdec), "totalNtlPos": dec(gross, qdec),
            "totalRawUsd": dec(equity - signed, qdec), "totalMarginUsed": dec(initial, qdec)}


def spot_clearinghouse_state(ex: Exchange, address: bytes) -> dict[str, Any]:
    """Every non-zero balance (signed: negative is borrowed) in whole units; ``hold`` is
    what the account's open spot orders would spend (state/risk.py ``reserved_of``)."""
    from state.risk import reserved_of

    acct = ex.accounts.get(address)
    if acct is None:
        return {"balances": []}
    assets = ex.genesis.assets
    out = []
    for a, amount in sorted(acct.balances.items()):
        if amount or reserved_of(ex, acct, a):
            d = assets[a].decimals
            out.append({"coin": assets[a].symbol, "token": a, "hold": dec(reserved_of(ex, acct, a), d),
                        "total": dec(amount, d), "entryNtl": "0"})
    return {"balances": out}


_TIF = ["Gtc", "Ioc", "Alo"]


def order_json(ex: Exchange, o: Any, frontend: bool, placed_ms: int = 0) -> dict[str, Any]:
    """One resting order (state/book.py ``Order``). Orders carry no placement time in
    state: ``placed_ms`` is the time of the block that placed it, from the node's placement
    index (node/orderindex.py ``placements``), 0 when unknown."""
    u = Units(ex, o.market)
    out: dict[str, Any] = {"coin": coin_of(ex, o.market), "limitPx": u.px(o.price), "oid": o.oid,
                           "side": "B" if o.is_buy else "A", "sz": u.sz(o.size), "timestamp": placed_ms,
                           "origSz": u.sz(o.orig_size)}
    if o.cloid:
        out["cloid"] = "0x" + o.cloid.hex()
    if frontend:
        out.update({"orderType": "Limit", "tif": _TIF[o.tif], "reduceOnly": bool(o.reduce_only),
                    "isTrigger": False, "triggerPx": "0", "triggerCondition": "N/A",
                    "isPositionTpsl": False, "children": []})
    return out


def trigger_json(ex: Exchange, t: Any, placed_ms: int = 0) -> dict[str, Any]:
    """A waiting trigger order (state/trigbook.py ``Trigger``) as a frontend order: a
    market trigger shows its trigger price as the limit; a position TP/SL (``whole``) has
    size "0" (the whole position when it fires), as Hyperliquid shows one."""
    u = Units(ex, t.market)
    kind = ("Take Profit" if t.tpsl == 0 else "Stop") + (" Market" if t.is_market else " Limit")
    rises = (t.tpsl == 1) == t.is_buy  # state/trigbook.py ``Trigger.rises``
    size = "0" if t.whole else u.sz(t.size)
    out: dict[str, Any] = {
        "coin": coin_of(ex, t.market), "limitPx": u.px(t.trigger if t.is_market else t.limit), "oid": t.oid,
        "side": "B" if t.is_buy else "A", "sz": size, "timestamp": placed_ms, "origSz": size, "orderType": kind,
        "tif": None, "reduceOnly": bool(t.reduce_only), "isTrigger": True, "triggerPx": u.px(t.trigger),
        "triggerCondition": f"Price {'above' if rises else 'below'} {u.px(t.trigger)}",
        "isPositionTpsl": bool(t.whole), "children": []}
    if t.cloid:
        out["cloid"] = "0x" + t.cloid.hex()
    return out


def placed_ms(src: Any, oid: int) -> int:
    """The time of the block that placed ``oid`` (node/orderindex.py), 0 when not indexed."""
    rec = src.order_placed(oid) if src is not None else None
    return int(rec[0]) if rec else 0


def open_orders(ex: Exchange, address: bytes, frontend: bool = False, src: Any = None) -> list[dict[str, Any]]:
    """The account's resting orders, newest first (as Hyperliquid lists them); the
    frontend listing adds its waiting trigger orders. Its isolated accounts' orders are its own."""
    out: list[tuple[int, dict[str, Any]]] = []
    for holder in own_accounts(ex, address):
        acct = ex.accounts.get(holder)
        if acct is None:
            continue
        out += [(oid, order_json(ex, ex.books[acct.open_orders[oid]].orders[oid], frontend, placed_ms(src, oid)))
                for oid in acct.open_orders]
        if frontend:
            out += [(oid, trigger_json(ex, ex.triggers[oid], placed_ms(src, oid))) for oid in acct.triggers]
    return [o for _, o in sorted(out, key=lambda x: x[0], reverse=True)]


def fill_dir(is_derivative: bool, is_buy: bool, start: int, size: int) -> str:
    """Hyperliquid's ``dir`` of a fill: "Buy"/"Sell" on a spot pair; on a perp or future what
    it did to the position it started from (``start`` signed lots, ``size`` lots traded)."""
    if not is_derivative:
        return "Buy" if is_buy else "Sell"
    if start == 0 or (start > 0) == is_buy:
        return "Open Long" if is_buy else "Open Short"
    if size > abs(start):
        return "Short > Long" if is_buy else "Long > Short"
    return "Close Short" if is_buy else "Close Long"


def tx_hash_text(h: bytes | None) -> str:
    """A transaction hash as Hyperliquid shows one; all zeros for block-level events."""
    return "0x" + (h.hex() if h else "00" * 32)


def user_fills(ex: Exchange, address: bytes, entries: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """The account's fills, newest first, from history entries (height, seq, time_ms,
    ["fill", market, price, size, taker_is_buy, _maker, taker, maker_oid, taker_oid,
    maker_fee, taker_fee], and optionally node/history.py's ``Extra``). ``tid`` is
    height * 2^20 + seq, ``time`` the block's, ``hash`` the transaction's. ``startPosition``,
    ``dir`` and ``closedPnl`` (fees excluded) come from the node's position of the account
    at indexing (node/fillbook.py); a spot fill's start position is not tracked ("0")."""
    qdec = ex.genesis.assets[ex.collateral_asset].decimals
    out = []
    for row in entries:
        height, seq, time_ms, e = row[:4]
        extra = row[4] if len(row) > 4 else None
        if not e or e[0] != "fill" or len(e) < 11:
            continue
        market, price, size, taker_is_buy, _maker, taker, maker_oid, taker_oid, maker_fee, taker_fee = e[1:11]
        if not 0 <= market < len(ex.markets):
            continue
        crossed = taker == address
        is_buy = bool(taker_is_buy) if crossed else not taker_is_buy
        u = Units(ex, market)
        start = extra.start if extra is not None and extra.start is not None else 0
        out.append({"coin": coin_of(ex, market), "px": u.px(price), "sz": u.sz(size), "side": "B" if is_buy else "A",
                    "time": time_ms, "startPosition": u.sz(start),
                    "dir": fill_dir(ex.markets[market].is_derivative, is_buy, start, size),
                    "closedPnl": dec(extra.closed_pnl if extra is not None else 0, qdec),
                    "hash": tx_hash_text(extra.tx_hash if extra is not None else None),
                    "oid": taker_oid if crossed else maker_oid, "crossed": crossed,
                    "fee": dec(taker_fee if crossed else maker_fee, qdec), "tid": (height << 20) + seq,
                    "feeToken": ex.genesis.assets[ex.collateral_asset].symbol})
    return out


def own_fills(ex: Exchange, user: bytes, rows_of: Callable[[bytes], Sequence[tuple[Any, ...]]]) -> list[dict[str, Any]]:
    """The fills of ``user`` and of its isolated accounts (``own_accounts``), newest first:
    ``rows_of(account)`` gives one account's history rows, as ``user_fills`` reads them."""
    fills: list[tuple[tuple[int, int], dict[str, Any]]] = []
    for holder in own_accounts(ex, user):
        for row in rows_of(holder):
            fills += [((row[0], row[1]), f) for f in user_fills(ex, holder, [row])]
    fills.sort(key=lambda x: x[0], reverse=True)
    return [f for _, f in fills]


def candle_snapshot(ex: Exchange, coin: str, interval: str, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """node/history.py candles (ticks, lots) in Hyperliquid's shape."""
    m = market_of_coin(ex, coin)
    u = Units(ex, m)
    return [{"t": c["t"], "T": c["T"], "s": coin, "i": interval, "o": u.px(c["o"]), "c": u.px(c["c"]),
             "h": u.px(c["h"]), "l": u.px(c["l"]), "v": u.sz(c["v"]), "n": c["n"]} for c in rows]


_HL_STATUS = {"open": "open", "waiting": "open", "filled": "filled", "cancelled": "canceled",
              "expired": "canceled", "triggered": "triggered"}
_HL_REASON = {"ioc": "ioc canceled", "reduce_only": "reduceOnlyCanceled", "self_trade": "selfTradeCanceled",
              "liquidation": "liquidatedCanceled", "modified": "canceled", "cancelled": "canceled"}


def hl_status(status: str, reason: str) -> str:
    """An order outcome (node/orderindex.py) in Hyperliquid's status words."""
    if status == "cancelled":
        return _HL_REASON.get(reason, "canceled")
    return _HL_STATUS.get(status, status)


def placed_order_json(ex: Exchange, oid: int, rec: Sequence[Any], remaining: int | None) -> dict[str, Any]:
    """A frontend order from its placement record (node/orderindex.py ``placements``: [time,
    owner, market, is_buy, limit, orig lots, tif, reduce_only, cloid, trigger, tpsl,
    is_market, whole]); ``remaining`` lots (None: the original size)."""
    time_ms, _owner, market, is_buy, limit, orig, tif, reduce_only, cloid, trigger, tpsl, is_market, whole = rec[:13]
    u = Units(ex, market)
    is_trigger = tpsl >= 0
    if is_trigger:
        kind = ("Take Profit" if tpsl == 0 else "Stop") + (" Market" if is_market else " Limit")
        rises = (tpsl == 1) == bool(is_buy)
        cond = f"Price {'above' if rises else 'below'} {u.px(trigger)}"
    else:
        kind, cond = "Limit", "N/A"
    orig_text = "0" if whole else u.sz(orig)
    out: dict[str, Any] = {
        "coin": coin_of(ex, market), "side": "B" if is_buy else "A",
        "limitPx": u.px(trigger if is_trigger and is_market else limit),
        "sz": orig_text if remaining is None else u.sz(remaining), "oid": oid, "timestamp": time_ms,
        "triggerCondition": cond, "isTrigger": is_trigger, "triggerPx": u.px(trigger) if is_trigger else "0",
        "children": [], "isPositionTpsl": bool(whole), "reduceOnly": bool(reduce_only), "orderType": kind,
        "origSz": orig_text, "tif": _TIF[tif] if 0 <= tif < len(_TIF) else None,
        "cloid": "0x" + bytes(cloid).hex() if cloid else None}
    return out


def order_status(ex: Exchange, view: dict[str, Any] | None, status_ms: int,
                 placed: Sequence[Any] | None = None) -> dict[str, Any]:
    """node/orderindex.py ``status_view`` as Hyperliquid's ``orderStatus`` answer; with the
    order's placement record the order is whole (side, limit, sizes, placement time)."""
    if view is None:
        return {"status": "unknownOid"}
    m = view.get("market")
    if not isinstance(m, int) or not 0 <= m < len(ex.markets):
        m = -1
    coin = coin_of(ex, m) if m >= 0 else ""
    order: dict[str, Any]
    if placed is not None and m >= 0 and view["status"] not in ("open", "waiting"):
        order = placed_order_json(ex, view["oid"], placed, 0 if view["status"] == "filled" else None)
    else:
        order = {"coin": coin, "oid": view["oid"], "timestamp": int(placed[0]) if placed else 0}
        if "side" in view:
            order["side"] = "B" if view["side"] == "buy" else "A"
        if coin and "price" in view:
            u = Units(ex, m)
            order.update({"limitPx": u.px(view["price"]), "sz": u.sz(view["size"]),
                          "origSz": u.sz(view["orig_size"])})
        if view.get("cloid"):
            order["cloid"] = "0x" + bytes(view["cloid"]).hex()
    status = hl_status(view["status"], view.get("reason", ""))
    return {"status": "order", "order": {"order": order, "status": status, "statusTimestamp": status_ms}}


def exchange_status(ex: Exchange) -> dict[str, Any]:
    return {"time": ex.time_ms, "specialStatuses": None}


def user_rate_limit() -> dict[str, Any]:
    """bookchain has no per-user request budget: a fixed, generous answer."""
    return {"cumVlm": "0", "nRequestsUsed": 0, "nRequestsCap": 1_000_000}


# ---------------------------------------------------------------------------- dispatch
class Sources:
    """What the node indexed beyond the state (node/blockstore.py, node/history.py), for
    fills, candles, finished orders, funding and ledger entries; tests pass a stub, and this
    empty one answers for a bare state."""

    def history(self, address: bytes, limit: int, before: tuple[int, int] | None = None,
                start_ms: int | None = None, end_ms: int | None = None,
                kinds: list[str] | None = None) -> tuple[list[tuple[int, int, int, list[Any]]], str | None]:
        return [], None

    def history_extra(self, address: bytes, limit: int, before: tuple[int, int] | None = None,
                      start_ms: int | None = None, end_ms: int | None = None,
                      kinds: list[str] | None = None) -> tuple[list[tuple[Any, ...]], str | None]:
        return [], None

    def candles(self, market: int, interval: str, start_ms: int = 0, end_ms: int | None = None,
                limit: int = 500) -> list[dict[str, Any]]:
        return []

    def funding_rates(self, market: int, start_ms: int = 0, end_ms: int | None = None,
                      limit: int = 500) -> list[dict[str, int]]:
        return []

    def order_outcome(self, oid: int) -> list[Any] | None:
        return None

    def order_placed(self, oid: int) -> list[Any] | None:
        return None

    def order_history(self, owner: bytes, limit: int, before: int | None = None) -> list[dict[str, Any]]:
        return []

    def order_status_time(self, owner: bytes, height: int, oid: int) -> int | None:
        return None

    def oid_of_cloid(self, owner: bytes, cloid: bytes) -> int | None:
        return None


MAX_FILLS = 2000
MAX_CANDLES = 5000


def _int_field(body: dict[str, Any], name: str, required: bool = True) -> int | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 63:
        raise InfoError(f"{name} must be a non-negative integer")
    return value


def _candles(ex: Exchange, body: dict[str, Any], src: Any) -> list[dict[str, Any]]:
    from node.history import INTERVALS

    req = body.get("req")
    if not isinstance(req, dict):
        raise InfoError("candleSnapshot needs req: {coin, interval, startTime, endTime}")
    coin, interval = req.get("coin"), req.get("interval")
    m = market_of_coin(ex, coin)
    if not isinstance(interval, str) or interval not in INTERVALS:  # a list or map is unhashable
        raise InfoError(f"interval must be one of {', '.join(INTERVALS)}")
    start = _int_field(req, "startTime")
    end = _int_field(req, "endTime", required=False)
    rows = src.candles(m, interval, start or 0, end, MAX_CANDLES)
    return candle_snapshot(ex, str(coin), str(interval), rows)


def _order_status(ex: Exchange, body: dict[str, Any], src: Any) -> dict[str, Any]:
    from node.orderindex import status_view

    user = parse_user(body.get("user"))
    ref = body.get("oid")
    if isinstance(ref, str):  # a cloid, 0x + 16 bytes
        try:
            cloid = bytes_from_hex(ref.removeprefix("0x"))
        except ValueError:
            raise InfoError("oid must be an integer or a 0x cloid") from None
        acct = ex.accounts.get(user)
        live = acct.cloids.get(cloid) if acct is not None else None
        oid = live if live is not None else src.oid_of_cloid(user, cloid)
        if oid is None:
            return {"status": "unknownOid"}
    else:
        oid = _int_field(body, "oid")
    assert oid is not None
    view = status_view(ex, oid, src.order_outcome(oid))
    if view is not None and view.get("owner") not in {address_to_text(a) for a in own_accounts(ex, user)}:
        view = None  # Hyperliquid answers per user
    placed = src.order_placed(oid)
    status_ms = ex.time_ms
    if view is not None and view["status"] not in ("open", "waiting"):
        status_ms = src.order_status_time(user, view["height"], oid) or ex.time_ms
    return order_status(ex, view, status_ms, placed)


def _user_fills(ex: Exchange, body: dict[str, Any], src: Any) -> list[dict[str, Any]]:
    user = parse_user(body.get("user"))
    start = _int_field(body, "startTime", required=False) if body.get("type") == "userFillsByTime" else None
    end = _int_field(body, "endTime", required=False) if start is not None else None
    fills = own_fills(ex, user, lambda holder: src.history_extra(holder, MAX_FILLS, None, start, end, ["fill"])[0])
    return fills[:MAX_FILLS]


MAX_ORDERS = 2000
MAX_LEDGER = 2000


def _time_range(body: dict[str, Any]) -> tuple[int, int | None]:
    start = _int_field(body, "startTime")
    assert start is not None
    return start, _int_field(body, "endTime", required=False)


def _historical_orders(ex: Exchange, body: dict[str, Any], src: Any) -> list[dict[str, Any]]:
    """The account's orders, newest first: open ones (status "open", from the state) then
    finished ones (node/history.py's per-account order outcomes with their placement
    records). A finished order's ``sz`` is what was left: "0" when filled; a cancelled
    order's remainder is not indexed, so it shows its original size."""
    user = parse_user(body.get("user"))
    out: list[tuple[int, dict[str, Any]]] = []
    for o in open_orders(ex, user, frontend=True, src=src):
        out.append((o["oid"], {"order": o, "status": "open", "statusTimestamp": o["timestamp"]}))
    seen = {oid for oid, _ in out}
    for row in (r for holder in own_accounts(ex, user) for r in src.order_history(holder, MAX_ORDERS)):
        oid = row["oid"]
        if oid in seen:
            continue
        rec = src.order_placed(oid)
        market = row.get("market")
        if rec is None or not isinstance(market, int) or not 0 <= market < len(ex.markets):
            continue
        remaining = 0 if row["status"] in ("filled", "triggered") else None
        out.append((oid, {"order": placed_order_json(ex, oid, rec, remaining),
                          "status": hl_status(row["status"], row.get("reason") or ""),
                          "statusTimestamp": row.get("time_ms", 0)}))
    out.sort(key=lambda x: x[0], reverse=True)
    return [o for _, o in out[:MAX_ORDERS]]


def _rate_at(src: Any, market: int, time_ms: int) -> dict[str, int] | None:
    rows = src.funding_rates(market, time_ms, time_ms, 1)
    return rows[0] if rows else None


def _user_funding(ex: Exchange, body: dict[str, Any], src: Any) -> list[dict[str, Any]]:
    """Funding payments oldest first, from the history's ``funding_payment`` entries:
    ``usdc`` received (negative: paid), the interval's ``fundingRate`` (per interval, as
    settled), ``szi`` the position it was paid on (the payment over the interval's funding
    per lot). The mark-to-market PnL a boundary also settles is not funding and is left out."""
    user = parse_user(body.get("user"))
    start, end = _time_range(body)
    entries, _ = src.history(user, MAX_LEDGER, None, start, end, ["funding_payment"])
    qdec = ex.genesis.assets[ex.collateral_asset].decimals
    out = []
    for _h, _s, time_ms, e in reversed(entries):
        market, paid = e[2], e[3]
        if not 0 <= market < len(ex.markets):
            continue
        rate = _rate_at(src, market, time_ms)
        per_lot = rate["per_lot"] if rate else 0
        lots = 0
        if per_lot:
            q, r = divmod(abs(paid), abs(per_lot))
            lots = (q + (1 if 2 * r >= abs(per_lot) else 0)) * (1 if (paid >= 0) == (per_lot >= 0) else -1)
        out.append({"delta": {"type": "funding", "coin": coin_of(ex, market), "usdc": dec(-paid, qdec),
                              "szi": Units(ex, market).sz(lots),
                              "fundingRate": dec(rate["rate_ppb"], 9) if rate else "0",
                              "nSamples": None},
                    "hash": tx_hash_text(None), "time": time_ms})
    return out


def _funding_history(ex: Exchange, body: dict[str, Any], src: Any) -> list[dict[str, Any]]:
    """A perp's funding settlements oldest first (node/history.py's funding index):
    ``fundingRate`` per interval as settled; ``premium`` the rate above the interest term
    (the chain records the settled rate, not the premium samples behind it)."""
    m = market_of_coin(ex, body.get("coin"))
    start, end = _time_range(body)
    interest_ppb = ex.genesis.risk.funding_interest_ppb
    return [{"coin": body["coin"], "fundingRate": dec(r["rate_ppb"], 9),
             "premium": dec(r["rate_ppb"] - interest_ppb, 9), "time": r["time"]}
            for r in src.funding_rates(m, start, end, MAX_LEDGER)]


def _sub_accounts(ex: Exchange, body: dict[str, Any], src: Any) -> list[dict[str, Any]] | None:
    """The master's sub-accounts (state/agents.py), each with its perp and spot state; null
    when it has none, as Hyperliquid answers."""
    master = parse_user(body.get("user"))
    subs = sorted((a for a in ex.subs_of.get(master, ()) if not str(ex.subs[a][1]).startswith(ISOLATED_PREFIX)),
                  key=lambda a: str(ex.subs[a][1]))
    if not subs:
        return None
    return [{"name": ex.subs[a][1], "subAccountUser": address_to_text(a), "master": address_to_text(master),
             "clearinghouseState": clearinghouse_state(ex, a), "spotState": spot_clearinghouse_state(ex, a)}
            for a in subs]


def _user_role(ex: Exchange, body: dict[str, Any], src: Any) -> dict[str, Any]:
    """What an address is: an approved agent, a sub-account, an account (one with a record
    or sub-accounts), or missing."""
    a = parse_user(body.get("user"))
    if a in ex.agents:
        return {"role": "agent", "data": {"user": address_to_text(ex.agents[a][0])}}
    if a in ex.subs:
        return {"role": "subAccount", "data": {"master": address_to_text(ex.subs[a][0])}}
    if a in ex.accounts or a in ex.subs_of:
        return {"role": "user"}
    return {"role": "missing"}


_LEDGER_KINDS = ["deposit", "withdraw", "transfer", "borrow", "repay", "liquidation", "interest"]


def ledger_delta(ex: Exchange, e: Sequence[Any]) -> dict[str, Any] | None:
    """One history entry as a Hyperliquid ledger delta (None: not a ledger movement). The
    collateral asset's amounts are ``usdc``; any other asset's are ``token`` + ``amount``.
    Lending (issue 24) is ``borrowLend``: ``operation`` borrow, repay or interest (hourly,
    node/interest.py; ``amount`` signed: earned > 0, paid < 0, ``rate`` the pool's APR)."""
    assets = ex.genesis.assets
    kind = e[0]

    def amount_fields(asset: int, amount: int) -> dict[str, Any]:
        if not 0 <= asset < len(assets):
            return {"token": str(asset), "amount": str(amount)}
        text = dec(amount, assets[asset].decimals)
        if asset == ex.collateral_asset:
            return {"usdc": text}
        return {"token": assets[asset].symbol, "amount": text}

    if kind == "deposit":
        return {"type": "deposit", **amount_fields(e[2], e[3])}
    if kind == "withdraw":
        return {"type": "withdraw", **amount_fields(e[2], e[3]), "nonce": 0, "fee": "0"}
    if kind == "transfer":
        sender, receiver, asset, amount = e[1], e[2], e[3], e[4]
        related = ex.subs.get(sender, [None])[0] == receiver or ex.subs.get(receiver, [None])[0] == sender
        kind_name = "subAccountTransfer" if related else (
            "internalTransfer" if asset == ex.collateral_asset else "spotTransfer")
        return {"type": kind_name, **amount_fields(asset, amount), "user": address_to_text(sender),
                "destination": address_to_text(receiver), "fee": "0"}
    if kind in ("borrow", "repay"):
        fields = amount_fields(e[2], e[3])
        amount = fields.get("usdc", fields.get("amount"))
        return {"type": "borrowLend", "token": assets[e[2]].symbol if 0 <= e[2] < len(assets) else str(e[2]),
                "operation": kind, "amount": amount, "interestAmount": "0"}
    if kind == "interest":
        asset, amount, rate = e[2], e[3], e[4]
        text = dec(amount, assets[asset].decimals) if 0 <= asset < len(assets) else str(amount)
        return {"type": "borrowLend", "token": assets[asset].symbol if 0 <= asset < len(assets) else str(asset),
                "operation": "interest", "amount": text, "interestAmount": text, "rate": dec(rate, 6)}
    if kind == "liquidation" and len(e) > 4 and e[2] == "start":
        qdec = assets[ex.collateral_asset].decimals
        return {"type": "liquidation", "accountValue": dec(e[3], qdec), "leverageType": "Cross",
                "liquidatedNtlPos": "0", "liquidatedPositions": []}
    return None


def _ledger(ex: Exchange, body: dict[str, Any], src: Any) -> list[dict[str, Any]]:
    """Deposits, withdrawals, transfers, lending (borrows, repays, hourly interest) and
    liquidations, oldest first, each with the hash of its transaction (zeros for a
    block-level entry: interest, liquidation)."""
    user = parse_user(body.get("user"))
    start, end = _time_range(body)
    entries, _ = src.history_extra(user, MAX_LEDGER, None, start, end, _LEDGER_KINDS)
    out = []
    for row in reversed(entries):
        delta = ledger_delta(ex, row[3])
        if delta is not None:
            extra = row[4] if len(row) > 4 else None
            out.append({"time": row[2], "hash": tx_hash_text(extra.tx_hash if extra is not None else None),
                        "delta": delta})
    return out


def referral(ex: Exchange, address: bytes) -> dict[str, Any]:
    """bookchain has no referral program: nobody referred, nothing earned."""
    return {"referredBy": None, "cumVlm": "0", "unclaimedRewards": "0", "claimedRewards": "0",
            "builderRewards": "0", "referrerState": {"stage": "needToTrade", "data": {"required": "0"}},
            "rewardHistory": []}


HANDLERS: dict[str, Callable[[Any, dict[str, Any], Any], Any]] = {
    "meta": lambda ex, b, s: meta(ex),
    "spotMeta": lambda ex, b, s: spot_meta(ex),
    "allMids": lambda ex, b, s: all_mids(ex),
    "l2Book": lambda ex, b, s: l2_book(ex, b.get("coin")),
    "metaAndAssetCtxs": lambda ex, b, s: meta_and_asset_ctxs(ex),
    "spotMetaAndAssetCtxs": lambda ex, b, s: spot_meta_and_asset_ctxs(ex),
    "spotClearinghouseState": lambda ex, b, s: spot_clearinghouse_state(ex, parse_user(b.get("user"))),
    "clearinghouseState": lambda ex, b, s: clearinghouse_state(ex, parse_user(b.get("user"))),
    "openOrders": lambda ex, b, s: open_orders(ex, parse_user(b.get("user")), src=s),
    "frontendOpenOrders": lambda ex, b, s: open_orders(ex, parse_user(b.get("user")), frontend=True, src=s),
    "historicalOrders": _historical_orders,
    "userFunding": _user_funding,
    "fundingHistory": _funding_history,
    "userNonFundingLedgerUpdates": _ledger,
    "subAccounts": _sub_accounts,
    "userRole": _user_role,
    "perpDexs": lambda ex, b, s: [None],  # one perp dex, the chain's own (Hyperliquid lists it as null)
    "referral": lambda ex, b, s: referral(ex, parse_user(b.get("user"))),
    "userFills": _user_fills,
    "userFillsByTime": _user_fills,
    "candleSnapshot": _candles,
    "orderStatus": _order_status,
    "exchangeStatus": lambda ex, b, s: exchange_status(ex),
    "userRateLimit": lambda ex, b, s: (parse_user(b.get("user")), user_rate_limit())[1],
}


def answer(ex: Exchange, body: Any, src: Any = None) -> Any:
    """The ``/info`` answer to a decoded JSON body; InfoError for a request it cannot serve."""
    if not isinstance(body, dict):
        raise InfoError("body must be a JSON object with a type")
    kind = body.get("type")
    handler = HANDLERS.get(kind) if isinstance(kind, str) else None
    if handler is None:
        raise InfoError(f"unknown request type {kind!r}; types: {', '.join(HANDLERS)}")
    return handler(ex, body, src if src is not None else Sources())
