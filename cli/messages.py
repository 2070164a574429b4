"""Rejection messages in the units the user typed.

The state machine speaks integers (``notional 10000 below minimum 10000000``). The CLI knows
the market or asset of the transaction it signed, so for the codes whose messages carry
amounts it rewrites each number in place: quote amounts and margin figures in the
collateral asset, withdraw/transfer/borrow amounts in the transaction's asset, ppm as percentages.
Anything it does not recognise is left exactly as the node said it.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from typing import Any

from node.wallet.units import AssetInfo, Catalog

Conv = Callable[[int], str]


def _amount(asset: AssetInfo | None) -> Conv | None:
    if asset is None:
        return None
    return lambda n: f"{asset.from_units(n)} {asset.symbol}"


def _pct(n: int) -> str:
    return f"{n / 10_000:.2f}%"


def _collateral(cat: Catalog) -> AssetInfo | None:
    return cat.markets[0].quote if cat.markets else None  # every market is quoted in it


# (pattern, one converter name per group): quote (the market's quote, else the collateral),
# coll (the collateral asset: margin figures), asset (the transaction's asset), ppm
_PATTERNS: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
    (re.compile(r"notional (\d+) below minimum (\d+)"), ("quote", "quote")),
    (re.compile(r"order notional (\d+) exceeds (\d+)"), ("quote", "quote")),
    (re.compile(r"shortfall (\d+)"), ("coll",)),
    (re.compile(r"gross borrows (\d+)"), ("coll",)),
    (re.compile(r"(?:withdraw|transfer) (\d+), available (\d+)"), ("asset", "asset")),
    (re.compile(r"(?:withdraw|borrow|withdrawal|transfer) (\d+) (?:leaves|exceeds|would)"), ("asset",)),
    (re.compile(r"the pool's available (\d+)"), ("asset",)),
    (re.compile(r"the chain's custody (\d+)"), ("asset",)),
    (re.compile(r"utilization to (\d+)(?: ppm)?, cap (\d+)(?: ppm)?"), ("ppm", "ppm")),
]
_PRICE_RANGE = re.compile(r"price must be 1\.\.(\d+) ticks")
_NEEDS_ASSET = re.compile(r"order needs (\d+) more of asset (\d+)")

UNIT_CODES = frozenset({"BELOW_MIN_NOTIONAL", "INSUFFICIENT_MARGIN", "INSUFFICIENT_BALANCE", "AMOUNT_OUT_OF_RANGE",
                        "PRICE_OUT_OF_RANGE", "POOL_ILLIQUID", "UTILIZATION_CAP", "BORROW_LIMIT"})


def humanize(name: str | None, message: str, action: Any, cat: Catalog | None) -> str:
    """``message`` with its integers in units, when ``name`` is a code that carries amounts."""
    if cat is None or not message or name not in UNIT_CODES:
        return message
    market = cat.maybe_market(action.market) if isinstance(getattr(action, "market", None), int) else None
    by_id = {a.id: a for a in cat.assets}
    asset = by_id.get(action.asset) if isinstance(getattr(action, "asset", None), int) else None
    convs: dict[str, Conv | None] = {
        "quote": _amount(market.quote if market else _collateral(cat)),
        "coll": _amount(_collateral(cat)),
        "asset": _amount(asset),
        "ppm": _pct,
    }

    def sub(m: re.Match[str], kinds: tuple[str, ...]) -> str:
        if kinds == ("ppm", "ppm"):  # the unit goes with the number
            return f"utilization to {_pct(int(m.group(1)))}, cap {_pct(int(m.group(2)))}"
        out = m.group(0)
        for i in range(len(kinds), 0, -1):  # right to left, so offsets stay valid
            conv = convs[kinds[i - 1]]
            if conv is not None:
                a, b = m.start(i) - m.start(0), m.end(i) - m.start(0)
                out = out[:a] + conv(int(m.group(i))) + out[b:]
        return out

    text = message
    for pattern, kinds in _PATTERNS:
        text = pattern.sub(functools.partial(sub, kinds=kinds), text)
    if market is not None:
        text = _PRICE_RANGE.sub(lambda m: f"price must be between {market.tick_text} and "
                                          f"{market.ticks_to_price(int(m.group(1)))} {market.quote.symbol}", text)

    def needs(m: re.Match[str]) -> str:
        a = by_id.get(int(m.group(2)))
        return m.group(0) if a is None else f"order needs {a.from_units(int(m.group(1)))} {a.symbol} more"

    return _NEEDS_ASSET.sub(needs, text)


def humanize_answer(answer: dict[str, Any], action: Any, cat: Catalog | None) -> dict[str, Any]:
    """A copy of a broadcast answer with its rejection messages in units (``--json`` keeps
    the node's own text)."""
    if cat is None or not isinstance(answer, dict):
        return answer
    out = copy.deepcopy(answer)
    items = list(getattr(action, "actions", (action,)))
    first = items[0] if len(items) == 1 else None
    receipt = out.get("receipt") if isinstance(out.get("receipt"), dict) else None
    results = (receipt.get("results") or []) if receipt is not None else []
    # a receipt's message is its first rejected result's: the owner is that result's action
    owner = first
    for i, r in enumerate(results):
        if isinstance(r, dict) and r.get("name") not in (None, "OK") and i < len(items):
            owner = items[i]
            break
    if isinstance(out.get("message"), str):
        out["message"] = humanize(out.get("name"), out["message"], owner, cat)
    if receipt is not None:
        if isinstance(receipt.get("message"), str):
            receipt["message"] = humanize(receipt.get("name"), receipt["message"], owner, cat)
        for i, r in enumerate(results):
            if isinstance(r, dict) and isinstance(r.get("message"), str):
                r["message"] = humanize(r.get("name"), r["message"], items[i] if i < len(items) else None, cat)
    return out
