"""Build ``state.tx`` actions from what a person types (no I/O, so it is unit-testable).

Every builder takes the ``Catalog`` read from the node and either returns the exact action
or raises ``UnitError``; ``raw=True`` skips the human conversion and takes ticks, lots and
smallest units as integers, for scripts that already speak the chain's units.
"""

from __future__ import annotations

import hashlib
from typing import Any

from node.wallet.units import MAX_CHAIN_INT, Catalog, MarketInfo, UnitError
from state import tx

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
                 raw: bool = False) -> tx.PlaceOrder:
    m = cat.market(market)
    return tx.PlaceOrder(m.id, side_is_buy(side), price_ticks(m, price, raw), size_lots(m, size, raw),
                      tif_of(tif), reduce_only, parse_cloid(cloid) if cloid else None)


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
    a = cat.asset(asset)
    units = parse_raw_int(amount, f"{a.symbol} amount") if raw else a.to_units(str(amount))
    return tx.Deposit(to, a.id, units)


def _amount(cat: Catalog, asset: str | int, amount: str | int, raw: bool) -> tuple[int, int]:
    a = cat.asset(asset)
    return a.id, parse_raw_int(amount, f"{a.symbol} amount") if raw else a.to_units(str(amount))


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
    a = cat.asset(asset)
    units = parse_raw_int(amount, f"{a.symbol} amount") if raw else a.to_units(str(amount))
    return tx.Withdraw(a.id, units, destination)


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
                                cloid=item.get("cloid"), raw=bool(item.get("raw", raw)))
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
