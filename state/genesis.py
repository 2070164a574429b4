"""Genesis: the chain's constants (assets, markets, fees, validators, initial balances).

Human-facing values in the JSON are already integers in each asset's smallest unit, so
nothing here parses decimals. Each market's ``tick_value`` (quote units for one tick on one
lot) is derived once and must be an exact integer: that is what keeps every notional in the
engine an exact integer product ``price_ticks * size_lots * tick_value``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from state.keys import address_from_text

SPOT = "spot"
PERP = "perp"

FEE_ACCOUNT = b"\x00" * 19 + b"\x01"
INSURANCE_ACCOUNT = b"\x00" * 19 + b"\x02"


@dataclass(frozen=True, slots=True)
class AssetSpec:
    asset_id: int
    symbol: str
    decimals: int


@dataclass(frozen=True, slots=True)
class MarketSpec:
    market_id: int
    symbol: str
    kind: str  # SPOT or PERP
    base: int  # asset id (for a perp: the underlying, never held as a balance)
    quote: int  # asset id of the settlement asset
    tick_size: int  # quote smallest units per whole base unit per tick
    lot_size: int  # base smallest units per lot
    min_notional: int  # quote smallest units
    tick_value: int  # quote units per tick per lot (derived)
    max_leverage: int  # perps: initial margin = notional / max_leverage
    max_price_ticks: int


@dataclass(frozen=True, slots=True)
class ValidatorSpec:
    name: str
    pubkey: bytes
    power: int


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    genesis_time_ms: int
    assets: tuple[AssetSpec, ...]
    markets: tuple[MarketSpec, ...]
    maker_fee_ppm: int
    taker_fee_ppm: int
    validators: tuple[ValidatorSpec, ...]
    bridge_authority: bytes
    balances: tuple[tuple[bytes, int, int], ...]  # (address, asset id, amount)
    nonce_past_window_ms: int = 2 * 24 * 3600 * 1000
    nonce_future_window_ms: int = 24 * 3600 * 1000
    max_open_orders_per_account: int = 1000
    max_batch_actions: int = 64
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def max_fee_ppm(self) -> int:
        return max(self.maker_fee_ppm, self.taker_fee_ppm)

    def asset_by_symbol(self, symbol: str) -> AssetSpec:
        for a in self.assets:
            if a.symbol == symbol:
                return a
        raise KeyError(f"unknown asset {symbol!r}")

    def market_by_symbol(self, symbol: str) -> MarketSpec:
        for m in self.markets:
            if m.symbol == symbol:
                return m
        raise KeyError(f"unknown market {symbol!r}")

    def hash(self) -> bytes:
        """Commits to the genesis document; the app hash at height 0."""
        return hashlib.sha256(canonical_json(self.raw)).digest()

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Genesis:
        assets = tuple(
            AssetSpec(i, a["symbol"], int(a["decimals"])) for i, a in enumerate(doc["assets"])
        )
        by_symbol = {a.symbol: a for a in assets}
        markets = []
        for i, m in enumerate(doc["markets"]):
            base, quote = by_symbol[m["base"]], by_symbol[m["quote"]]
            tick_size, lot_size = int(m["tick_size"]), int(m["lot_size"])
            scaled = tick_size * lot_size
            if scaled % (10**base.decimals) != 0 or scaled == 0:
                raise ValueError(f"market {m['symbol']}: tick_size*lot_size must be a multiple of 10^base decimals")
            kind = m["kind"]
            if kind not in (SPOT, PERP):
                raise ValueError(f"market {m['symbol']}: kind must be spot or perp")
            markets.append(
                MarketSpec(
                    market_id=i,
                    symbol=m["symbol"],
                    kind=kind,
                    base=base.asset_id,
                    quote=quote.asset_id,
                    tick_size=tick_size,
                    lot_size=lot_size,
                    min_notional=int(m.get("min_notional", 0)),
                    tick_value=scaled // (10**base.decimals),
                    max_leverage=int(m.get("max_leverage", 1)),
                    max_price_ticks=int(m.get("max_price_ticks", 10**12)),
                )
            )
        validators = tuple(
            ValidatorSpec(v["name"], bytes.fromhex(v["pubkey"]), int(v.get("power", 1)))
            for v in doc.get("validators", [])
        )
        balances = tuple(
            (address_from_text(b["address"]), by_symbol[b["asset"]].asset_id, int(b["amount"]))
            for b in doc.get("balances", [])
        )
        fees = doc.get("fees", {})
        limits = doc.get("limits", {})
        return cls(
            chain_id=doc["chain_id"],
            genesis_time_ms=int(doc.get("genesis_time_ms", 0)),
            assets=assets,
            markets=tuple(markets),
            maker_fee_ppm=int(fees.get("maker_ppm", 100)),
            taker_fee_ppm=int(fees.get("taker_ppm", 350)),
            validators=validators,
            bridge_authority=bytes.fromhex(doc["bridge_authority"]),
            balances=balances,
            nonce_past_window_ms=int(limits.get("nonce_past_window_ms", 2 * 24 * 3600 * 1000)),
            nonce_future_window_ms=int(limits.get("nonce_future_window_ms", 24 * 3600 * 1000)),
            max_open_orders_per_account=int(limits.get("max_open_orders_per_account", 1000)),
            max_batch_actions=int(limits.get("max_batch_actions", 64)),
            raw=doc,
        )

    @classmethod
    def load(cls, path: str) -> Genesis:
        with open(path, encoding="utf-8") as fh:
            return cls.from_json(json.load(fh))


def canonical_json(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def default_markets() -> list[dict[str, Any]]:
    """The devnet's four markets: spot and perp for BTC and ETH, all quoted in USDC."""
    return [
        {"symbol": "BTC/USDC", "kind": SPOT, "base": "BTC", "quote": "USDC", "tick_size": 1_000_000,
         "lot_size": 10_000, "min_notional": 10_000_000},
        {"symbol": "ETH/USDC", "kind": SPOT, "base": "ETH", "quote": "USDC", "tick_size": 100_000,
         "lot_size": 100_000, "min_notional": 10_000_000},
        {"symbol": "BTC-PERP", "kind": PERP, "base": "BTC", "quote": "USDC", "tick_size": 1_000_000,
         "lot_size": 10_000, "min_notional": 10_000_000, "max_leverage": 20},
        {"symbol": "ETH-PERP", "kind": PERP, "base": "ETH", "quote": "USDC", "tick_size": 100_000,
         "lot_size": 100_000, "min_notional": 10_000_000, "max_leverage": 20},
    ]


def default_assets() -> list[dict[str, Any]]:
    return [
        {"symbol": "USDC", "decimals": 6},
        {"symbol": "BTC", "decimals": 8},
        {"symbol": "ETH", "decimals": 8},
    ]


def make_genesis_doc(
    *,
    chain_id: str,
    validators: list[dict[str, Any]],
    bridge_pubkey: bytes,
    balances: list[dict[str, Any]] | None = None,
    genesis_time_ms: int = 0,
) -> dict[str, Any]:
    """A genesis document with the default assets and markets."""
    return {
        "chain_id": chain_id,
        "genesis_time_ms": genesis_time_ms,
        "assets": default_assets(),
        "markets": default_markets(),
        "fees": {"maker_ppm": 100, "taker_ppm": 350},
        "validators": validators,
        "bridge_authority": bridge_pubkey.hex(),
        "balances": balances or [],
        "limits": {},
    }
