"""Human units <-> chain integers, driven by the node's own /markets and /assets.

The chain speaks only integers (prices in ticks, sizes in lots, amounts in smallest units:
DESIGN.md, "Determinism"). People type "60000.5" and "0.25". The conversion is exact
decimal arithmetic, never float, and it refuses instead of rounding: silently rounding a
price to the tick grid would place an order the user did not ask for.

    price (quote per whole base) = ticks * tick_size / 10^quote_decimals
    size  (whole base units)     = lots  * lot_size  / 10^base_decimals
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any, Protocol, TypeVar

from node.client import as_int

# The codec's ceiling for an unsigned field (state.codec.must_uint: [0, 2^63-1]); a larger
# integer would fail to encode, so the CLI refuses it as a usage error naming the range.
MAX_CHAIN_INT = (1 << 63) - 1


class UnitError(ValueError):
    """Input that is not a number, negative, or off the tick/lot/decimal grid."""


def parse_decimal(text: str, what: str) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 60
        try:
            value = Decimal(str(text).strip().replace("_", ""))
        except (InvalidOperation, ValueError):
            raise UnitError(f"{what} {text!r} is not a number") from None
        if not value.is_finite():
            raise UnitError(f"{what} {text!r} is not a finite number")
        if value < 0:
            raise UnitError(f"{what} {text!r} is negative")
        return value


def scale_exact(text: str, numerator: int, denominator: int, what: str, grid: str, unit: str = "") -> int:
    """``text * numerator / denominator`` as an exact integer, else a UnitError naming the grid
    (or the allowed range, in the same units the user typed)."""
    value = parse_decimal(text, what)
    with localcontext() as ctx:
        ctx.prec = 80
        try:
            scaled = value * numerator / denominator
        except ArithmeticError:  # an exponent beyond the decimal context (1e999999999)
            scaled = Decimal(MAX_CHAIN_INT + 1)
        if scaled > MAX_CHAIN_INT:
            top = format_scaled(MAX_CHAIN_INT, denominator, numerator)
            raise UnitError(f"{what} {text} is out of range: it must be between 0 and {top}"
                            + (f" {unit}" if unit else ""))
        if scaled != scaled.to_integral_value() or (value and not scaled):
            raise UnitError(f"{what} {text} is not a multiple of the {grid}")
        return int(scaled)


def format_scaled(units: int, numerator: int, denominator: int) -> str:
    """``units * numerator / denominator`` as a plain decimal string without trailing zeros."""
    with localcontext() as ctx:
        ctx.prec = 80
        value = Decimal(units) * numerator / denominator
        text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


@dataclass(frozen=True, slots=True)
class AssetInfo:
    id: int
    symbol: str
    decimals: int

    def to_units(self, amount: str) -> int:
        return scale_exact(amount, 10**self.decimals, 1, f"{self.symbol} amount",
                           f"smallest unit (10^-{self.decimals})", self.symbol)

    def from_units(self, units: int) -> str:
        return format_scaled(units, 1, 10**self.decimals)


@dataclass(frozen=True, slots=True)
class MarketInfo:
    id: int
    symbol: str
    kind: str
    base: AssetInfo
    quote: AssetInfo
    tick_size: int
    lot_size: int

    @property
    def tick_text(self) -> str:
        return format_scaled(self.tick_size, 1, 10**self.quote.decimals)

    @property
    def lot_text(self) -> str:
        return format_scaled(self.lot_size, 1, 10**self.base.decimals)

    def price_to_ticks(self, price: str) -> int:
        return scale_exact(price, 10**self.quote.decimals, self.tick_size, f"{self.symbol} price",
                           f"tick size {self.tick_text}", f"{self.quote.symbol} per {self.base.symbol}")

    def size_to_lots(self, size: str) -> int:
        return scale_exact(size, 10**self.base.decimals, self.lot_size, f"{self.symbol} size",
                           f"lot size {self.lot_text}", self.base.symbol)

    def ticks_to_price(self, ticks: int) -> str:
        return format_scaled(ticks, self.tick_size, 10**self.quote.decimals)

    def lots_to_size(self, lots: int) -> str:
        return format_scaled(lots, self.lot_size, 10**self.base.decimals)


class Catalog:
    """Markets and assets by id and by symbol (symbols match case-insensitively)."""

    def __init__(self, assets: list[AssetInfo], markets: list[MarketInfo]) -> None:
        self.assets = assets
        self.markets = markets

    @classmethod
    def from_rpc(cls, assets_json: dict[str, Any], markets_json: dict[str, Any]) -> Catalog:
        assets = [AssetInfo(as_int(a["id"]), str(a["symbol"]), as_int(a["decimals"]))
                  for a in assets_json["assets"]]
        by_id = {a.id: a for a in assets}
        by_sym = {a.symbol.upper(): a for a in assets}

        def asset_ref(ref: Any) -> AssetInfo:
            # API.md does not pin whether a market's base/quote is an asset id or a symbol
            if isinstance(ref, int) and not isinstance(ref, bool):
                return by_id[ref]
            if isinstance(ref, str) and ref.isdigit():
                return by_id[int(ref)]
            return by_sym[str(ref).upper()]

        markets = [
            MarketInfo(as_int(m["id"]), str(m["symbol"]), str(m.get("kind", "")),
                       asset_ref(m["base"]), asset_ref(m["quote"]),
                       as_int(m["tick_size"]), as_int(m["lot_size"]))
            for m in markets_json["markets"]
        ]
        return cls(assets, markets)

    @classmethod
    def from_genesis(cls, genesis: Any) -> Catalog:
        """Same catalog from a ``state.genesis.Genesis`` (devnet tools read it off disk)."""
        assets = [AssetInfo(a.asset_id, a.symbol, a.decimals) for a in genesis.assets]
        markets = [MarketInfo(m.market_id, m.symbol, m.kind, assets[m.base], assets[m.quote],
                              m.tick_size, m.lot_size) for m in genesis.markets]
        return cls(assets, markets)

    def market(self, ref: str | int) -> MarketInfo:
        return _by_ref(self.markets, ref, "market")

    def asset(self, ref: str | int) -> AssetInfo:
        return _by_ref(self.assets, ref, "asset")

    def maybe_market(self, market_id: Any) -> MarketInfo | None:
        for m in self.markets:
            if m.id == market_id:
                return m
        return None


class _Named(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def symbol(self) -> str: ...


N = TypeVar("N", bound=_Named)


def _by_ref(items: list[N], ref: str | int, kind: str) -> N:
    """The item whose symbol (any case) or id is ``ref``, else a UnitError listing them."""
    text = str(ref).strip()
    for item in items:
        if item.symbol.upper() == text.upper() or (text.isdigit() and item.id == int(text)):
            return item
    known = ", ".join(f"{item.symbol} ({item.id})" for item in items)
    raise UnitError(f"unknown {kind} {ref!r}; {kind}s: {known}")
