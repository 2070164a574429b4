"""Genesis: the chain's constants (assets, markets, fees, validators, risk, initial balances).

Human-facing values in the JSON are already integers in each asset's smallest unit, so
nothing here parses decimals. Each market's ``tick_value`` (quote units for one tick on one
lot) is derived once and must be an exact integer: that is what keeps every notional in the
engine an exact integer product ``price_ticks * size_lots * tick_value``.

Risk parameters (the ``risk`` section) are all integers: ratios in parts per million
(``*_ppm``), funding rates in parts per billion (``*_ppb``), amounts in the collateral
asset's smallest unit, times in milliseconds (the oracle staleness in seconds, as the
issue names it). Every field has a default, so a document without a ``risk`` section (or
with only some fields) keeps working; ``make_genesis_doc`` writes the full defaults out.
Prices are "collateral smallest units per whole unit of the asset" (micro-USDC per BTC).

Ranges. Every numeric field is a JSON integer or a decimal string of one (not a bool, not a
float) inside a documented
range, checked here: a document outside them is refused with a ValueError naming the field
when it is parsed, never an OverflowError in a later block. The ranges are what keep every
integer the state machine stores inside msgpack's 64 bits (see ``RISK_RANGES`` and the
checks in ``Genesis.from_json``): balances at most ``MAX_AMOUNT`` per account and asset (the
deposit rule's bound), ``max_price_ticks * tick_size`` at most ``MAX_PRICE`` (the oracle's
absolute bound), funding rates at most 100% per interval.

``initial_oracle_prices`` (``{"BTC": 60000000000, ...}``, optional) are the oracle prices a
chain starts with: a chain starts with reference prices and validators move them
afterwards. An asset with neither an initial nor a validator price has no index and cannot
be margined against, borrowed or sold short (state/prices.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Final

from state.keys import address_from_text
from state.units import MAX_AMOUNT, MAX_ORDER_NOTIONAL, MAX_PRICE, MAX_TIME_MS, PPB, PPM

SPOT: Final = "spot"
PERP: Final = "perp"
FUTURE: Final = "future"  # linear, USDC-settled, dated: positions like a perp's, no funding (state/futures.py)
# market kinds whose trades are positions in ``acct.positions`` (margined, liquidated, ADL'd alike)
DERIVATIVES: Final = (PERP, FUTURE)
DEFAULT_SETTLEMENT_WINDOW_MS: Final = 3_600_000  # a future's settlement TWAP spans the last hour
MAX_SETTLEMENT_WINDOW_MS: Final = 1 << 40

# A market's top price in ticks when its genesis entry names none: 10^7 ticks ($10M per BTC at
# $1 ticks, $1M per ETH at $0.1). Much higher and the position limit at the top price
# (units.MAX_POSITION_VALUE) would allow few lots.
DEFAULT_MAX_PRICE_TICKS: Final = 10**7

# How far from the oracle price a limit or trigger price may be, when a market's genesis entry
# names no ``price_band_ppm``: 20%, wider than any honest quote and narrower than a fat finger.
DEFAULT_PRICE_BAND_PPM: Final = 200_000

# Evidence of an equivocation at height h is valid only in blocks at heights <= h + this
# (CometBFT's ``max_age_num_blocks``), so the state keeps committed offences only that long
# (state/offences.py). The genesis section ``evidence.max_age_blocks``; at most
# MAX_EVIDENCE_MAX_AGE, which bounds the offences the state holds to that many heights'.
DEFAULT_EVIDENCE_MAX_AGE: Final = 100_000
MAX_EVIDENCE_MAX_AGE: Final = 10_000_000

FEE_ACCOUNT: Final = b"\x00" * 19 + b"\x01"
INSURANCE_ACCOUNT: Final = b"\x00" * 19 + b"\x02"


@dataclass(frozen=True, slots=True)
class AssetSpec:
    asset_id: int
    symbol: str
    decimals: int


@dataclass(frozen=True, slots=True)
class MarketSpec:
    market_id: int
    symbol: str
    kind: str  # SPOT, PERP or FUTURE
    base: int  # asset id (for a perp: the underlying, never held as a balance)
    quote: int  # asset id of the settlement asset
    tick_size: int  # quote smallest units per whole base unit per tick
    lot_size: int  # base smallest units per lot
    min_notional: int  # quote smallest units
    tick_value: int  # quote units per tick per lot (derived)
    max_leverage: int  # perps: initial margin = notional / max_leverage
    max_price_ticks: int
    # a limit or trigger price more than this far from the oracle price is refused (ppm of it)
    price_band_ppm: int = DEFAULT_PRICE_BAND_PPM
    expiry_ms: int = 0  # futures: block time at which the market settles (0 for other kinds)
    settlement_window_ms: int = 0  # futures: the oracle TWAP window before expiry (0 for other kinds)

    @property
    def is_derivative(self) -> bool:
        """A perp or a future: fills move a position (not balances), margined and liquidated
        alike. Funding is the perps' alone (``kind == PERP``)."""
        return self.kind in DERIVATIVES


@dataclass(frozen=True, slots=True)
class AssetRisk:
    """Per-asset margin and lending parameters (ppm; rates are per year)."""

    haircut_im_ppm: int  # collateral value kept for initial margin (BTC 950_000 = 0.95)
    haircut_mm_ppm: int  # ... for maintenance (BTC 975_000)
    shock_im_ppm: int  # S_IM: the price move the initial scenarios span (BTC 5%)
    shock_mm_ppm: int  # S_MM (BTC 3%)
    base_rate_ppm: int  # borrow rate at zero utilization
    slope1_ppm: int  # added linearly up to the optimal utilization
    slope2_ppm: int  # added linearly from the optimal utilization to 100%
    optimal_util_ppm: int  # the kink
    reserve_factor_ppm: int  # share of borrow interest that goes to the insurance fund
    util_cap_ppm: int  # borrows and pool withdrawals stop above this utilization

    @property
    def max_rate_ppm(self) -> int:
        return self.base_rate_ppm + self.slope1_ppm + self.slope2_ppm


ASSET_RISK_DEFAULTS: dict[str, dict[str, int]] = {
    "USDC": {"haircut_im_ppm": 1_000_000, "haircut_mm_ppm": 1_000_000, "shock_im_ppm": 0, "shock_mm_ppm": 0,
             "base_rate_ppm": 0, "slope1_ppm": 40_000, "slope2_ppm": 600_000, "optimal_util_ppm": 900_000,
             "reserve_factor_ppm": 100_000, "util_cap_ppm": 950_000},
    "BTC": {"haircut_im_ppm": 950_000, "haircut_mm_ppm": 975_000, "shock_im_ppm": 50_000, "shock_mm_ppm": 30_000,
            "base_rate_ppm": 0, "slope1_ppm": 40_000, "slope2_ppm": 3_000_000, "optimal_util_ppm": 450_000,
            "reserve_factor_ppm": 200_000, "util_cap_ppm": 950_000},
    "ETH": {"haircut_im_ppm": 950_000, "haircut_mm_ppm": 975_000, "shock_im_ppm": 50_000, "shock_mm_ppm": 30_000,
            "base_rate_ppm": 0, "slope1_ppm": 40_000, "slope2_ppm": 3_000_000, "optimal_util_ppm": 450_000,
            "reserve_factor_ppm": 200_000, "util_cap_ppm": 950_000},
}
# any other asset: a more cautious default
OTHER_ASSET_RISK: dict[str, int] = {
    "haircut_im_ppm": 900_000, "haircut_mm_ppm": 950_000, "shock_im_ppm": 100_000, "shock_mm_ppm": 60_000,
    "base_rate_ppm": 0, "slope1_ppm": 70_000, "slope2_ppm": 3_000_000, "optimal_util_ppm": 450_000,
    "reserve_factor_ppm": 200_000, "util_cap_ppm": 950_000,
}

RISK_DEFAULTS: dict[str, dict[str, int]] = {
    "margin": {
        "hedge_addon_im_ppm": 10_000,  # 1% of the offset (hedged) notional
        "hedge_addon_mm_ppm": 5_000,
        "size_addon_im_ppm": 1_000,  # add-on fraction at the reference notional, grows with sqrt(notional)
        "size_addon_mm_ppm": 500,
        "size_addon_ref": 1_000_000_000_000,  # $1M in micro-USDC
        "borrow_addon_days_im": 3,  # a few days of interest on every borrow
        "borrow_addon_days_mm": 1,
        # gross borrows (every debt at its index price) at most this share of the account's
        # assets (equity + debt): 80% lets debts reach 4x equity, whatever the net delta
        "max_borrow_ltv_ppm": 800_000,
    },
    "oracle": {
        "staleness_s": 60,  # a validator's price expires after this much block time
        # fresh prices needed to move the oracle; this 1 is a placeholder: the default is
        # oracle_quorum(len(validators)), more than a third of the genesis validators
        "min_submissions": 1,
        "max_move_ppm": 100_000,  # the oracle price moves at most 10% per block (state/oracle.py)
    },
    "mark": {
        "ema_ms": 150_000,  # time constant of the EMA of (impact mid - oracle), in block time
        "band_ppm": 20_000,  # the mark stays within +-2% of the oracle (S_IM - S_MM of BTC and ETH)
        "impact_notional": 10_000_000_000,  # $10k: the depth a side needs to count in the mark
    },
    "funding": {
        "interval_ms": 3_600_000,  # hourly
        "interest_ppb": 12_500,  # 0.00125% per interval (0.01% per 8 h)
        "clamp_ppb": 500_000,  # clamp(interest - premium, +-0.05%)
        "cap_ppb": 40_000_000,  # |rate| <= 4% per interval
        "impact_notional": 10_000_000_000,  # $10k: impact bid/ask depth
    },
    "liquidation": {
        "fraction_ppm": 250_000,  # at most 25% of a leg per block through the book
        "min_notional": 10_000_000_000,  # legs below $10k are unwound whole
        "fee_ppm": 5_000,  # 0.5% of the liquidated notional to the insurance fund
        "backstop_ppm": 666_667,  # equity below 2/3 of maintenance: the insurance fund takes over
    },
}


# [lo, hi] of every risk field: ratios are at most 100% (rates per year at most 1000%),
# funding rates at most 100% per interval, amounts at most MAX_AMOUNT, times at most 2^40 ms
# (34 years). The funding cap bounds each premium sample (state/funding.py), the oracle band
# each block's price move (state/oracle.py).
_PPM: Final = (0, PPM)
_TIME: Final = (1, 1 << 40)
RISK_RANGES: dict[str, dict[str, tuple[int, int]]] = {
    "margin": {
        "hedge_addon_im_ppm": _PPM, "hedge_addon_mm_ppm": _PPM, "size_addon_im_ppm": _PPM,
        "size_addon_mm_ppm": _PPM, "size_addon_ref": (1, MAX_AMOUNT),
        "borrow_addon_days_im": (0, 3650), "borrow_addon_days_mm": (0, 3650),
        "max_borrow_ltv_ppm": (1, PPM - 1),
    },
    "oracle": {"staleness_s": (1, 86_400), "min_submissions": (1, 1000), "max_move_ppm": (1, PPM)},
    "mark": {"ema_ms": _TIME, "band_ppm": (1, PPM), "impact_notional": (1, MAX_ORDER_NOTIONAL)},
    "funding": {
        "interval_ms": _TIME, "interest_ppb": (-PPB, PPB), "clamp_ppb": (0, PPB),
        "cap_ppb": (0, PPB), "impact_notional": (1, MAX_AMOUNT),
    },
    "liquidation": {
        "fraction_ppm": (1, PPM), "min_notional": (0, MAX_AMOUNT), "fee_ppm": _PPM,
        "backstop_ppm": (1, PPM),
    },
}
_RATE: Final = (0, 10 * PPM)
ASSET_RISK_RANGES: dict[str, tuple[int, int]] = {
    "haircut_im_ppm": _PPM, "haircut_mm_ppm": _PPM, "shock_im_ppm": _PPM, "shock_mm_ppm": _PPM,
    "base_rate_ppm": _RATE, "slope1_ppm": _RATE, "slope2_ppm": _RATE, "optimal_util_ppm": _PPM,
    "reserve_factor_ppm": _PPM, "util_cap_ppm": _PPM,
}


# The "orders" section: order-lifetime rules (state/lifetimes.py). Every field has a default,
# so documents without the section parse as before (and keep their hash: the section is not
# written out by make_genesis_doc). Other order rules add their fields to these two dicts.
ORDERS_DEFAULTS: dict[str, int] = {
    "schedule_cancel_min_ms": 5_000,  # a dead-man deadline at least this far past the block time
    "schedule_cancel_per_day": 10,  # dead-man sets or clears per account per UTC day
    "trigger_slippage_ppm": 50_000,  # a market trigger's IOC limit: reference -/+ this (state/triggers.py)
}
ORDERS_RANGES: dict[str, tuple[int, int]] = {
    "schedule_cancel_min_ms": (0, 1 << 40),
    "schedule_cancel_per_day": (1, 1 << 20),
    "trigger_slippage_ppm": (0, PPM - 1),
}


def orders_section(doc: dict[str, Any]) -> dict[str, int]:
    """The "orders" section with defaults filled in and every field range-checked."""
    given = doc.get("orders", {})
    if not isinstance(given, dict):
        raise ValueError("orders: must be an object")
    unknown = set(given) - set(ORDERS_DEFAULTS)
    if unknown:
        raise ValueError(f"orders: unknown fields {sorted(unknown)}")
    return {k: ranged(given.get(k, v), *ORDERS_RANGES[k], f"orders.{k}") for k, v in ORDERS_DEFAULTS.items()}


def evidence_max_age(doc: dict[str, Any]) -> int:
    """The "evidence" section's ``max_age_blocks`` (``DEFAULT_EVIDENCE_MAX_AGE`` when the
    document has no such section: documents written before it keep their meaning and hash)."""
    given = doc.get("evidence", {})
    if not isinstance(given, dict):
        raise ValueError("evidence: must be an object")
    unknown = set(given) - {"max_age_blocks"}
    if unknown:
        raise ValueError(f"evidence: unknown fields {sorted(unknown)}")
    return ranged(given.get("max_age_blocks", DEFAULT_EVIDENCE_MAX_AGE), 1, MAX_EVIDENCE_MAX_AGE,
                  "evidence.max_age_blocks")


def oracle_quorum(validators: int) -> int:
    """The default ``risk.oracle.min_submissions``: floor(n/3)+1 fresh prices of the n genesis
    validators. More than a third, so the f < n/3 faulty validators BFT tolerates cannot move
    the oracle on their own while the honest feeds are silent (stale), which with a quorum of
    1 let a single validator walk the price one band per block. At most n for every n >= 1
    (a chain without validators gets 1: nobody can submit there anyway). It depends on the
    genesis document alone, so every node derives the same value."""
    return validators // 3 + 1


def ranged(value: Any, lo: int, hi: int, name: str) -> int:
    """``value`` as an integer in [lo, hi], else a ValueError naming the field. A JSON
    integer or a decimal string of one (large amounts are often written as strings, which
    ``int()`` accepted before the ranges); never a bool or a float (``int(1.5)`` truncates)."""
    if type(value) is str and value.lstrip("-").isdigit() and value.isascii():
        value = int(value)
    if type(value) is not int or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class RiskParams:
    assets: tuple[AssetRisk, ...]  # by asset id
    hedge_addon_im_ppm: int
    hedge_addon_mm_ppm: int
    size_addon_im_ppm: int
    size_addon_mm_ppm: int
    size_addon_ref: int
    borrow_addon_days_im: int
    borrow_addon_days_mm: int
    max_borrow_ltv_ppm: int
    oracle_staleness_ms: int
    oracle_min_submissions: int
    oracle_max_move_ppm: int
    mark_ema_ms: int
    mark_band_ppm: int
    mark_impact_notional: int
    funding_interval_ms: int
    funding_interest_ppb: int
    funding_clamp_ppb: int
    funding_cap_ppb: int
    funding_impact_notional: int
    liq_fraction_ppm: int
    liq_min_notional: int
    liq_fee_ppm: int
    backstop_ppm: int

    @classmethod
    def from_json(cls, doc: dict[str, Any], assets: tuple[AssetSpec, ...], validators: int) -> RiskParams:
        """The risk section of a genesis document for a chain of ``validators`` genesis
        validators (the default oracle quorum is ``oracle_quorum(validators)``)."""
        defaults = {name: dict(values) for name, values in RISK_DEFAULTS.items()}
        defaults["oracle"]["min_submissions"] = oracle_quorum(validators)

        def section(name: str) -> dict[str, int]:
            given = doc.get(name, {})
            unknown = set(given) - set(defaults[name])
            if unknown:
                raise ValueError(f"risk.{name}: unknown fields {sorted(unknown)}")
            return {k: ranged(given.get(k, v), *RISK_RANGES[name][k], f"risk.{name}.{k}")
                    for k, v in defaults[name].items()}

        per_asset = doc.get("assets", {})
        specs = []
        for a in assets:
            base = ASSET_RISK_DEFAULTS.get(a.symbol, OTHER_ASSET_RISK)
            given = per_asset.get(a.symbol, {})
            unknown = set(given) - set(base)
            if unknown:
                raise ValueError(f"risk.assets.{a.symbol}: unknown fields {sorted(unknown)}")
            r = AssetRisk(**{k: ranged(given.get(k, v), *ASSET_RISK_RANGES[k], f"risk.assets.{a.symbol}.{k}")
                             for k, v in base.items()})
            if not (0 < r.haircut_im_ppm <= r.haircut_mm_ppm <= 1_000_000):
                raise ValueError(f"risk.assets.{a.symbol}: need 0 < haircut_im <= haircut_mm <= 1e6")
            if not (0 <= r.shock_mm_ppm <= r.shock_im_ppm <= 1_000_000):
                raise ValueError(f"risk.assets.{a.symbol}: need 0 <= shock_mm <= shock_im <= 1e6")
            if not (0 < r.optimal_util_ppm < 1_000_000) or not (0 < r.util_cap_ppm <= 1_000_000):
                raise ValueError(f"risk.assets.{a.symbol}: utilization parameters out of range")
            if not (0 <= r.reserve_factor_ppm <= 1_000_000):
                raise ValueError(f"risk.assets.{a.symbol}: reserve factor out of range")
            specs.append(r)
        m, o, mk, f, liq = (section(n) for n in ("margin", "oracle", "mark", "funding", "liquidation"))
        if o["min_submissions"] > max(validators, 1):
            raise ValueError(f"risk.oracle.min_submissions ({o['min_submissions']}) exceeds the {validators} "
                             "genesis validators: the oracle price could never move")
        params = cls(
            assets=tuple(specs),
            hedge_addon_im_ppm=m["hedge_addon_im_ppm"], hedge_addon_mm_ppm=m["hedge_addon_mm_ppm"],
            size_addon_im_ppm=m["size_addon_im_ppm"], size_addon_mm_ppm=m["size_addon_mm_ppm"],
            size_addon_ref=m["size_addon_ref"],
            borrow_addon_days_im=m["borrow_addon_days_im"], borrow_addon_days_mm=m["borrow_addon_days_mm"],
            max_borrow_ltv_ppm=m["max_borrow_ltv_ppm"],
            oracle_staleness_ms=o["staleness_s"] * 1000, oracle_min_submissions=o["min_submissions"],
            oracle_max_move_ppm=o["max_move_ppm"],
            mark_ema_ms=mk["ema_ms"], mark_band_ppm=mk["band_ppm"], mark_impact_notional=mk["impact_notional"],
            funding_interval_ms=f["interval_ms"], funding_interest_ppb=f["interest_ppb"],
            funding_clamp_ppb=f["clamp_ppb"], funding_cap_ppb=f["cap_ppb"],
            funding_impact_notional=f["impact_notional"],
            liq_fraction_ppm=liq["fraction_ppm"], liq_min_notional=liq["min_notional"],
            liq_fee_ppm=liq["fee_ppm"], backstop_ppm=liq["backstop_ppm"],
        )
        return params  # every field is inside its RISK_RANGES entry (``section``)


def default_risk_doc(assets: list[dict[str, Any]] | None = None, *, validators: int = 0) -> dict[str, Any]:
    """The full risk section with every default written out (what ``make_genesis_doc`` uses),
    for a chain of ``validators`` genesis validators: the oracle quorum is written as the
    number it defaults to, so the document states it."""
    symbols = [a["symbol"] for a in (assets or default_assets())]
    doc: dict[str, Any] = {
        "assets": {s: dict(ASSET_RISK_DEFAULTS.get(s, OTHER_ASSET_RISK)) for s in symbols},
        **{name: dict(values) for name, values in RISK_DEFAULTS.items()},
    }
    doc["oracle"]["min_submissions"] = oracle_quorum(validators)
    return doc


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
    risk: RiskParams
    nonce_past_window_ms: int = 2 * 24 * 3600 * 1000
    nonce_future_window_ms: int = 24 * 3600 * 1000
    max_open_orders_per_account: int = 1000
    max_batch_actions: int = 64
    max_agents_per_account: int = 10
    max_sub_accounts: int = 10
    trigger_slippage_ppm: int = 50_000  # a market trigger's IOC limit: reference -/+ this (state/triggers.py)
    initial_oracle_prices: tuple[int, ...] = ()  # by asset id; 0 = none (state/prices.py)
    schedule_cancel_min_ms: int = 5_000  # orders.schedule_cancel_min_ms (state/lifetimes.py)
    schedule_cancel_per_day: int = 10  # orders.schedule_cancel_per_day
    evidence_max_age: int = DEFAULT_EVIDENCE_MAX_AGE  # evidence.max_age_blocks (state/offences.py)
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
            AssetSpec(i, _text(a, "symbol", "asset"), ranged(a["decimals"], 0, 18, f"assets[{i}].decimals"))
            for i, a in enumerate(doc["assets"])
        )
        by_symbol = {a.symbol: a for a in assets}
        markets = []
        for i, m in enumerate(doc["markets"]):
            where = f"market {m.get('symbol', i)}"
            base, quote = by_symbol[m["base"]], by_symbol[m["quote"]]
            tick_size = ranged(m["tick_size"], 1, MAX_PRICE, f"{where}: tick_size")
            lot_size = ranged(m["lot_size"], 1, MAX_AMOUNT, f"{where}: lot_size")
            scaled = tick_size * lot_size
            if scaled % (10**base.decimals) != 0 or scaled == 0:
                raise ValueError(f"market {m['symbol']}: tick_size*lot_size must be a multiple of 10^base decimals")
            if quote.asset_id != 0:
                raise ValueError(f"market {m['symbol']}: every market is quoted in the collateral asset "
                                 f"({assets[0].symbol}), the one margin and PnL settle in")
            kind = _text(m, "kind", "market")
            if kind not in (SPOT, PERP, FUTURE):
                raise ValueError(f"market {m['symbol']}: kind must be spot, perp or future")
            expiry = window = 0
            if kind == FUTURE:
                genesis_ms = ranged(doc.get("genesis_time_ms", 0), 0, MAX_TIME_MS, "genesis_time_ms")
                expiry = ranged(m.get("expiry_ms"), genesis_ms + 1, MAX_TIME_MS,
                                f"{where}: expiry_ms (after genesis_time_ms)")
                window = ranged(m.get("settlement_window_ms", DEFAULT_SETTLEMENT_WINDOW_MS), 1,
                                MAX_SETTLEMENT_WINDOW_MS, f"{where}: settlement_window_ms")
            elif "expiry_ms" in m or "settlement_window_ms" in m:
                raise ValueError(f"{where}: expiry_ms and settlement_window_ms are for futures only")
            # the book's top price is inside the oracle's absolute range (1..MAX_PRICE), so
            # every price the engine sees (book, oracle, mark) is at most MAX_PRICE
            max_ticks = ranged(m.get("max_price_ticks", DEFAULT_MAX_PRICE_TICKS), 1, MAX_PRICE // tick_size,
                               f"{where}: max_price_ticks (max_price_ticks * tick_size <= 2^62)")
            tick_value = scaled // (10**base.decimals)
            if tick_value > MAX_ORDER_NOTIONAL:
                raise ValueError(f"{where}: one tick of one lot is worth more than the largest order")
            markets.append(
                MarketSpec(
                    market_id=i,
                    symbol=_text(m, "symbol", "market"),
                    kind=kind,
                    base=base.asset_id,
                    quote=quote.asset_id,
                    tick_size=tick_size,
                    lot_size=lot_size,
                    min_notional=ranged(m.get("min_notional", 0), 0, MAX_ORDER_NOTIONAL, f"{where}: min_notional"),
                    tick_value=tick_value,
                    max_leverage=ranged(m.get("max_leverage", 1), 1, 1000, f"{where}: max_leverage"),
                    max_price_ticks=max_ticks,
                    price_band_ppm=ranged(m.get("price_band_ppm", DEFAULT_PRICE_BAND_PPM), 1, 1 << 60,
                                          f"{where}: price_band_ppm"),
                    expiry_ms=expiry,
                    settlement_window_ms=window,
                )
            )
        validators = tuple(
            ValidatorSpec(_text(v, "name", "validator"), bytes.fromhex(v["pubkey"]),
                          ranged(v.get("power", 1), 1, 1 << 32, f"validators[{i}].power"))
            for i, v in enumerate(doc.get("validators", []))
        )
        balances = tuple(
            (address_from_text(b["address"]), by_symbol[b["asset"]].asset_id,
             ranged(b["amount"], 0, MAX_AMOUNT, f"balances[{i}].amount"))
            for i, b in enumerate(doc.get("balances", []))
        )
        # the insurance fund's genesis balance, in the collateral asset (see make_genesis_doc)
        seed = ranged(doc.get("insurance_fund", 0), 0, MAX_AMOUNT, "insurance_fund")
        if seed:
            balances += ((INSURANCE_ACCOUNT, 0, seed),)
        held: dict[tuple[bytes, int], int] = {}
        custody: dict[int, int] = {}
        for address, asset, amount in balances:  # one account's balance, as a deposit keeps it
            held[(address, asset)] = total = held.get((address, asset), 0) + amount
            if total > MAX_AMOUNT:
                raise ValueError(f"balances: {address.hex()} holds more than 2^62 of asset {asset}")
            # and all of them: a balance can grow past its deposits only by what others lose,
            # so the chain's custody of an asset bounds every balance of it
            custody[asset] = custody.get(asset, 0) + amount
            if custody[asset] > MAX_AMOUNT:
                raise ValueError(f"balances: more than 2^62 of asset {asset} in total")
        initial = [0] * len(assets)
        for symbol, px in sorted(doc.get("initial_oracle_prices", {}).items()):
            if symbol not in by_symbol or by_symbol[symbol].asset_id == 0:
                raise ValueError(f"initial_oracle_prices: {symbol!r} is not a non-collateral asset")
            initial[by_symbol[symbol].asset_id] = ranged(px, 1, MAX_PRICE, f"initial_oracle_prices.{symbol}")
        fees = doc.get("fees", {})
        limits = doc.get("limits", {})
        orders = orders_section(doc)
        return cls(
            chain_id=_text(doc, "chain_id", "genesis"),
            genesis_time_ms=ranged(doc.get("genesis_time_ms", 0), 0, MAX_TIME_MS, "genesis_time_ms"),
            assets=assets,
            markets=tuple(markets),
            maker_fee_ppm=ranged(fees.get("maker_ppm", 100), 0, PPM, "fees.maker_ppm"),
            taker_fee_ppm=ranged(fees.get("taker_ppm", 350), 0, PPM, "fees.taker_ppm"),
            validators=validators,
            bridge_authority=bytes.fromhex(doc["bridge_authority"]),
            balances=balances,
            nonce_past_window_ms=ranged(limits.get("nonce_past_window_ms", 2 * 24 * 3600 * 1000), 0, 1 << 40,
                                        "limits.nonce_past_window_ms"),
            nonce_future_window_ms=ranged(limits.get("nonce_future_window_ms", 24 * 3600 * 1000), 0, 1 << 40,
                                          "limits.nonce_future_window_ms"),
            max_open_orders_per_account=ranged(limits.get("max_open_orders_per_account", 1000), 1, 1 << 20,
                                               "limits.max_open_orders_per_account"),
            max_batch_actions=ranged(limits.get("max_batch_actions", 64), 1, 256, "limits.max_batch_actions"),
            max_agents_per_account=ranged(limits.get("max_agents_per_account", 10), 0, 1000,
                                          "limits.max_agents_per_account"),
            max_sub_accounts=ranged(limits.get("max_sub_accounts", 10), 0, 1000, "limits.max_sub_accounts"),
            trigger_slippage_ppm=orders["trigger_slippage_ppm"],
            initial_oracle_prices=tuple(initial),
            risk=RiskParams.from_json(doc.get("risk", {}), assets, len(validators)),
            schedule_cancel_min_ms=orders["schedule_cancel_min_ms"],
            schedule_cancel_per_day=orders["schedule_cancel_per_day"],
            evidence_max_age=evidence_max_age(doc),
            raw=doc,
        )

    @classmethod
    def load(cls, path: str) -> Genesis:
        with open(path, encoding="utf-8") as fh:
            return cls.from_json(json.load(fh))


def _text(doc: dict[str, Any], key: str, where: str) -> str:
    """A text field of the genesis document, or a clear error. (The compiled build checks
    annotated types at run time; checking here makes both builds refuse the same documents
    with the same message.)"""
    value = doc[key]
    if type(value) is not str:
        raise ValueError(f"{where} {key} must be a string, got {type(value).__name__}")
    return value


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


def future_market(symbol: str, base: str, expiry_ms: int, window_ms: int = DEFAULT_SETTLEMENT_WINDOW_MS,
                  ) -> dict[str, Any]:
    """A dated future's genesis entry on ``base`` (quoted and settled in USDC), with the
    contract terms of the same-base perp in ``default_markets`` (tick, lot, leverage). Not in
    ``default_markets``: the devnet appends it after the four markets (ids 0..3 stay)."""
    like = next(m for m in default_markets() if m["kind"] == PERP and m["base"] == base)
    return {**like, "symbol": symbol, "kind": FUTURE, "expiry_ms": expiry_ms, "settlement_window_ms": window_ms}


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
    insurance_fund: int = 0,
    initial_oracle_prices: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A genesis document with the default assets and markets.

    ``insurance_fund`` (collateral smallest units) is the insurance fund's genesis balance:
    the fund stands between a liquidation that gaps through its bankruptcy price and the
    lenders (it absorbs the deficit, and the spread of its own forced sales, before anything
    is written off against suppliers), so a chain should not start with it empty. Liquidation
    fees and the positive remainders of backstopped accounts refill it. ``initial_oracle_prices``
    are the reference prices the chain starts from. Both are written only when given, so
    documents without them keep their hash."""
    doc: dict[str, Any] = {
        "chain_id": chain_id,
        "genesis_time_ms": genesis_time_ms,
        "assets": default_assets(),
        "markets": default_markets(),
        "fees": {"maker_ppm": 100, "taker_ppm": 350},
        "validators": validators,
        "bridge_authority": bridge_pubkey.hex(),
        "balances": balances or [],
        "limits": {},
        "risk": default_risk_doc(validators=len(validators)),
    }
    if insurance_fund:
        doc["insurance_fund"] = insurance_fund
    if initial_oracle_prices:
        doc["initial_oracle_prices"] = dict(initial_oracle_prices)
    return doc
