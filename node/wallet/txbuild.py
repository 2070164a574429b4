"""Build ``state.tx`` actions from what a person types (no I/O, so it is unit-testable).

Every builder takes the ``Catalog`` read from the node and either returns the exact action
or raises ``UnitError``; ``raw=True`` skips the human conversion and takes ticks, lots and
smallest units as integers, for scripts that already speak the chain's units.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal, InvalidOperation
from typing import Any

from node.wallet.units import MAX_CHAIN_INT, Catalog, MarketInfo, UnitError
from state import tx
from state.keys import PrivateKey

TIFS = {"gtc": tx.Tif.GTC, "ioc": tx.Tif.IOC, "alo": tx.Tif.ALO}
SIDES = {"buy": True, "sell": False}


def parse_raw_int(text: str | int, what: str) -> int:
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        try:
            value = int(str(text).strip().replace("_", ""), 10)
        except ValueError:
            raise UnitError(f"{what} {text!r} is not an integer (--raw takes ticks/lots/units)") from None
    if value < 0:
        raise UnitError(f"{what} {text!r} is negative")
    if value > MAX_CHAIN_INT:
        raise UnitError(f"{what} {text} is out of range: it must be between 0 and {MAX_CHAIN_INT}")
    return value


def price_ticks(m: MarketInfo, price: str | int, raw: bool) -> int:
    return parse_raw_int(price, f"{m.symbol} price (ticks)") if raw else m.price_to_ticks(str(price))


def size_lots(m: MarketInfo, size: str | int, raw: bool) -> int:
    return parse_raw_int(size, f"{m.symbol} size (lots)") if raw else m.size_to_lots(str(size))


def side_is_buy(side: str) -> bool:
    try:
        return SIDES[side.strip().lower()]
    except KeyError:
        raise UnitError(f"side must be buy or sell, got {side!r}") from None


def tif_of(text: str) -> tx.Tif:
    try:
        return TIFS[text.strip().lower()]
    except KeyError:
        raise UnitError(f"tif must be gtc, ioc or alo, got {text!r}") from None


def order_id(oid: str | int | None, cloid: str | None) -> tuple[int | None, bytes | None]:
    """Exactly one of ``oid`` and ``cloid`` names an order."""
    if (oid is None) == (cloid is None):
        raise UnitError("name the order with exactly one of --oid and --cloid")
    if oid is not None:
        return parse_raw_int(oid, "oid"), None
    assert cloid is not None
    return None, parse_cloid(cloid)


def order_action(cat: Catalog, market: str | int, side: str, size: str | int, price: str | int,
                 *, tif: str = "gtc", reduce_only: bool = False, cloid: str | None = None,
                 raw: bool = False, expires_at_ms: int | None = None) -> tx.PlaceOrder:
    """``expires_at_ms`` makes it good-til-time: removed at the first block past that time."""
    m = cat.market(market)
    return tx.PlaceOrder(m.id, side_is_buy(side), price_ticks(m, price, raw), size_lots(m, size, raw),
                      tif_of(tif), reduce_only, parse_cloid(cloid) if cloid else None, expires_at_ms)


def expiry_ms(now_ms: int, in_seconds: int | None = None, at_ms: int | None = None) -> int | None:
    """An absolute expiry (ms) from ``--expires-in SECONDS`` or ``--expires-at MS`` (at most one)."""
    if in_seconds is not None and at_ms is not None:
        raise UnitError("give at most one of --expires-in and --expires-at")
    if at_ms is not None:
        return at_ms
    if in_seconds is not None:
        return now_ms + in_seconds * 1000
    return None


def schedule_cancel_action(time_ms: int | None) -> tx.ScheduleCancel:
    """Arm the dead-man switch at ``time_ms`` (block time, ms), or clear it with None."""
    return tx.ScheduleCancel(time_ms)


def sign(key: PrivateKey, nonce: int, action: Any, chain_id: str, *, expires_after_ms: int | None = None) -> bytes:
    """The signed transaction bytes; with ``expires_after_ms`` the envelope carries it, and a
    block whose time is past it rejects the tx (TX_EXPIRED) without using the nonce."""
    return tx.sign_tx(key, nonce, action, chain_id, expires_after=expires_after_ms)


PPM = 1_000_000
DEFAULT_SLIPPAGE = "0.05"  # 5%, as Hyperliquid's SDK prices its market orders


def slippage_ppm(text: str) -> int:
    """A slippage fraction (``0.05`` is 5%) as an exact number of parts per million in (0, 1e6)."""
    try:
        value = Decimal(text.strip()) * PPM
    except InvalidOperation:
        raise UnitError(f"slippage {text!r} is not a number (0.05 is 5%)") from None
    if value != value.to_integral_value() or not 0 < value < PPM:
        raise UnitError(f"slippage {text!r} must be a fraction between 0 and 1 with at most 6 decimals (0.05 is 5%)")
    return int(value)


def market_limit_ticks(m: MarketInfo, is_buy: bool, reference_px: int, oracle_px: int, band_ppm: int,
                       max_ticks: int, slip_ppm: int) -> int:
    """The limit price (ticks) of a market order: the reference price (a perp's mark, a spot
    pair's oracle price, in quote smallest units per whole base unit) moved ``slip_ppm``
    against the taker, rounded to a tick away from the reference (a buy up, a sell down) and
    kept inside the market's price band around the oracle, which the chain would refuse."""
    if reference_px <= 0 or oracle_px <= 0:
        raise UnitError(f"{m.symbol} has no oracle price yet: place a limit order with a price instead")
    den = PPM * m.tick_size
    if is_buy:
        ticks = -(-reference_px * (PPM + slip_ppm) // den)
        ticks = min(ticks, oracle_px * (PPM + band_ppm) // den, max_ticks)
    else:
        ticks = reference_px * (PPM - slip_ppm) // den
        ticks = max(ticks, -(-oracle_px * max(PPM - band_ppm, 0) // den), 1)
    return ticks


def market_order_action(cat: Catalog, market_row: dict[str, Any], side: str, size: str | int, slippage: str,
                        *, reduce_only: bool = False, cloid: str | None = None, raw: bool = False) -> tx.PlaceOrder:
    """An IOC priced from the node's ``/markets`` row for the market (``reference_price``,
    ``oracle_price``, ``price_band_ppm``, ``max_price_ticks``): whatever does not fill at once,
    within the slippage, is cancelled."""
    m = cat.market(int(market_row["id"]))
    is_buy = side_is_buy(side)
    limit = market_limit_ticks(m, is_buy, int(market_row.get("reference_price") or 0),
                               int(market_row.get("oracle_price") or 0), int(market_row.get("price_band_ppm") or 0),
                               int(market_row.get("max_price_ticks") or MAX_CHAIN_INT), slippage_ppm(slippage))
    return tx.PlaceOrder(m.id, is_buy, limit, size_lots(m, size, raw), tx.Tif.IOC, reduce_only,
                         parse_cloid(cloid) if cloid else None)


def cancel_action(cat: Catalog, market: str | int, oid: str | int | None = None,
                  cloid: str | None = None) -> tx.Cancel:
    m = cat.market(market)
    o, c = order_id(oid, cloid)
    return tx.Cancel(m.id, o, c)


def cancel_all_action(cat: Catalog, market: str | int | None = None) -> tx.CancelAll:
    return tx.CancelAll(None if market is None else cat.market(market).id)


def modify_action(cat: Catalog, market: str | int, price: str | int, size: str | int,
                  oid: str | int | None = None, cloid: str | None = None, raw: bool = False,
                  *, price_is_ticks: bool = False) -> tx.Modify:
    """``price_is_ticks``: the price came from the node (the order's own), not from the user."""
    m = cat.market(market)
    o, c = order_id(oid, cloid)
    return tx.Modify(m.id, o, c, price_ticks(m, price, raw or price_is_ticks), size_lots(m, size, raw))


def trigger_action(cat: Catalog, market: str | int, side: str, size: str | int, trigger: str | int, tpsl: str,
                   *, limit: str | int | None = None, reduce_only: bool = False, cloid: str | None = None,
                   raw: bool = False) -> tx.PlaceTrigger:
    """A stop-loss (``tpsl="sl"``) or take-profit (``"tp"``): a market trigger unless
    ``limit`` is given. Size 0 with ``reduce_only`` is a position TP/SL (the whole position)."""
    m = cat.market(market)
    kind = _tpsl_code(tpsl)
    lim = 0 if limit is None else price_ticks(m, limit, raw)
    lots = 0 if str(size).strip() in ("0", "all") else size_lots(m, size, raw)
    return tx.PlaceTrigger(m.id, side_is_buy(side), lots, price_ticks(m, trigger, raw), kind, limit is None, lim,
                           reduce_only, parse_cloid(cloid) if cloid else None)


def _tpsl_code(text: str) -> int:
    try:
        return {"tp": 0, "sl": 1}[text.strip().lower()]
    except KeyError:
        raise UnitError(f"trigger kind must be tp or sl, got {text!r}") from None


def position_tpsl_action(cat: Catalog, market: str | int, side: str, tp: str | int | None, sl: str | int | None,
                         *, raw: bool = False) -> tx.PlaceGroup:
    """A positionTpsl group: market TP and/or SL on the whole position. ``side`` is the
    closing side (sell for a long)."""
    if tp is None and sl is None:
        raise UnitError("give --tp and/or --sl")
    children = tuple(trigger_action(cat, market, side, 0, price, kind, reduce_only=True, raw=raw)
                     for kind, price in (("tp", tp), ("sl", sl)) if price is not None)
    return tx.PlaceGroup(2, None, children)


def bracket_action(cat: Catalog, parent: tx.PlaceOrder, tp: str | int | None, sl: str | int | None,
                   *, raw: bool = False) -> tx.PlaceGroup:
    """A normalTpsl group: ``parent`` with market TP/SL children on the other side, live as
    far as the parent fills (reduce-only on a perp)."""
    m = cat.market(parent.market)
    perp = m.kind != "spot"
    close = "sell" if parent.is_buy else "buy"
    children = tuple(trigger_action(cat, parent.market, close, 0, price, kind, reduce_only=perp, raw=raw)
                     for kind, price in (("tp", tp), ("sl", sl)) if price is not None)
    return tx.PlaceGroup(1, parent, children)


def modify_trigger_action(cat: Catalog, market: str | int, trigger: str | int, size: str | int,
                          limit: str | int | None = None, oid: str | int | None = None, cloid: str | None = None,
                          raw: bool = False) -> tx.ModifyTrigger:
    m = cat.market(market)
    o, c = order_id(oid, cloid)
    lots = 0 if str(size).strip() in ("0", "all") else size_lots(m, size, raw)
    return tx.ModifyTrigger(m.id, o, c, price_ticks(m, trigger, raw), 0 if limit is None else price_ticks(m, limit, raw),
                            lots)


def deposit_action(cat: Catalog, to: bytes, asset: str | int, amount: str | int, raw: bool = False) -> tx.Deposit:
    return tx.Deposit(to, *_amount(cat, asset, amount, raw))


def transfer_action(cat: Catalog, to: bytes, asset: str | int, amount: str | int, raw: bool = False) -> tx.Transfer:
    return tx.Transfer(to, *_amount(cat, asset, amount, raw))


def _amount(cat: Catalog, asset: str | int, amount: str | int, raw: bool) -> tuple[int, int]:
    a = cat.asset(asset)
    return a.id, parse_raw_int(amount, f"{a.symbol} amount") if raw else a.to_units(str(amount))


def leverage_action(cat: Catalog, market: str | int, leverage: str | int) -> tx.UpdateLeverage:
    text = str(leverage).strip().lower()
    value = 0 if text == "max" else parse_raw_int(text.removesuffix("x"), "leverage")
    return tx.UpdateLeverage(cat.market(market).id, value)


def margin_mode_action(cat: Catalog, market: str | int, mode: str) -> tx.SetMarginMode:
    text = mode.strip().lower()
    if text not in ("isolated", "cross"):
        raise UnitError(f"margin mode must be isolated or cross, got {mode!r}")
    return tx.SetMarginMode(cat.market(market).id, text == "isolated")


def isolated_margin_action(cat: Catalog, market: str | int, amount: str, raw: bool = False) -> tx.UpdateIsolatedMargin:
    """``amount`` of the collateral asset (USDC) into the market's isolated margin; negative: out."""
    m = cat.market(market)
    text = amount.strip()
    sign = -1 if text.startswith("-") else 1
    _, units = _amount(cat, m.quote.id, text.lstrip("+-"), raw)
    return tx.UpdateIsolatedMargin(m.id, sign * units)


def lend_action(cat: Catalog, asset: str | int, enabled: bool) -> tx.Lend:
    return tx.Lend(cat.asset(asset).id, enabled)


def borrow_action(cat: Catalog, asset: str | int, amount: str | int, raw: bool = False) -> tx.Borrow:
    return tx.Borrow(*_amount(cat, asset, amount, raw))


def repay_action(cat: Catalog, asset: str | int, amount: str | int, raw: bool = False) -> tx.Repay:
    return tx.Repay(*_amount(cat, asset, amount, raw))


def unwind_action(cat: Catalog, markets: list[str]) -> tx.SetUnwindOrder:
    return tx.SetUnwindOrder(tuple(cat.market(m).id for m in markets))


def withdraw_action(cat: Catalog, asset: str | int, amount: str | int, destination: bytes,
                    raw: bool = False) -> tx.Withdraw:
    return tx.Withdraw(*_amount(cat, asset, amount, raw), destination)


def parse_destination(text: str) -> bytes:
    """``0x``-hex is taken as bytes (e.g. an address on the other chain); anything else as UTF-8."""
    body = text.strip()
    if body.lower().startswith("0x"):
        try:
            return bytes.fromhex(body[2:])
        except ValueError:
            raise UnitError(f"destination {text!r} starts with 0x but is not hex") from None
    return body.encode()


def batch_item(cat: Catalog, item: dict[str, Any], raw: bool) -> tx.BatchItem:
    """One element of ``tx batch``'s JSON list, keyed by ``type``."""
    if not isinstance(item, dict) or "type" not in item:
        raise UnitError(f"a batch item is an object with a \"type\": {item!r}")
    kind = str(item["type"]).replace("-", "_").lower()
    try:
        if kind == "order":
            return order_action(cat, item["market"], item["side"], item["size"], item["price"],
                                tif=item.get("tif", "gtc"), reduce_only=bool(item.get("reduce_only", False)),
                                cloid=item.get("cloid"), raw=bool(item.get("raw", raw)),
                                expires_at_ms=_opt_ms(item.get("expires_at_ms")))
        if kind == "cancel":
            return cancel_action(cat, item["market"], item.get("oid"), item.get("cloid"))
        if kind == "cancel_all":
            return cancel_all_action(cat, item.get("market"))
        if kind == "modify":
            if "price" not in item and "price_ticks" in item:  # the order's own price, from the node
                return modify_action(cat, item["market"], item["price_ticks"], item["size"], item.get("oid"),
                                     item.get("cloid"), raw=bool(item.get("raw", raw)), price_is_ticks=True)
            return modify_action(cat, item["market"], item["price"], item["size"], item.get("oid"),
                                 item.get("cloid"), raw=bool(item.get("raw", raw)))
    except KeyError as err:
        raise UnitError(f"batch item {item!r} lacks {err.args[0]!r}") from None
    raise UnitError(f"batch item type must be order, cancel, cancel_all or modify, got {item['type']!r}")


def _opt_ms(value: Any) -> int | None:
    """A batch order's optional ``expires_at_ms`` (good-til-time, unix ms)."""
    return None if value is None else parse_raw_int(value, "expires_at_ms")


def batch_action(cat: Catalog, items: list[Any], raw: bool = False) -> tx.Batch:
    if not isinstance(items, list) or not items:
        raise UnitError("a batch is a non-empty JSON list of actions")
    return tx.Batch(tuple(batch_item(cat, it, raw) for it in items))


def parse_cloid(text: str) -> bytes:
    """32 hex digits are taken as the 16-byte cloid; anything else is hashed to 16 bytes,
    so ``--cloid my-order-1`` is stable across runs and cancellable by the same text."""
    body = text.strip()
    raw = body[2:] if body.lower().startswith("0x") else body
    if len(raw) == 32 and all(c in "0123456789abcdefABCDEF" for c in raw):
        return bytes.fromhex(raw)
    return hashlib.sha256(body.encode()).digest()[:16]
