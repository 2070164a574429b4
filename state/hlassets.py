"""Hyperliquid's numbering of assets and its decimal rules, over bookchain's markets.

Hyperliquid numbers perps by their index in ``meta.universe`` and spot pairs from 10000 (its
``spotMeta.universe`` index plus 10000). bookchain's universe is its perps, then its dated
futures, each by market id; its spot pairs by market id. Both the node's ``/info`` answers
and the chain's translation of signed actions (state/hlexec.py) use this one numbering, so an
asset id a client read from ``meta`` is the market its signed order lands on.

Prices and sizes arrive as decimal strings. Hyperliquid's rules: a size has at most
``szDecimals`` decimals (those of one lot); a price has at most 5 significant figures unless
it is an integer, and at most ``6 - szDecimals`` decimals (``8 - szDecimals`` on spot). Here
the string must also be an exact number of ticks or lots: nothing is rounded, so the order
that rests is the order that was signed.
"""

from __future__ import annotations

from typing import Final

from state.errors import Code, TxError
from state.exchange import Exchange

SPOT_OFFSET: Final = 10_000
MAX_SIG_FIGS: Final = 5
PERP_MAX_DECIMALS: Final = 6
SPOT_MAX_DECIMALS: Final = 8
MAX_DECIMAL_TEXT: Final = 40


def perp_ids(ex: Exchange) -> list[int]:
    """The perp universe in Hyperliquid's order: perps, then dated futures, by market id."""
    return list(ex.hl_perp_ids)


def spot_ids(ex: Exchange) -> list[int]:
    return list(ex.hl_spot_ids)


def market_of_asset(ex: Exchange, asset: object) -> int:
    """The market a Hyperliquid asset id names, or UNKNOWN_MARKET."""
    if type(asset) is not int or asset < 0:
        raise TxError(Code.UNKNOWN_MARKET, "an asset id is a non-negative integer")
    ids = ex.hl_spot_ids if asset >= SPOT_OFFSET else ex.hl_perp_ids
    index = asset - SPOT_OFFSET if asset >= SPOT_OFFSET else asset
    if index >= len(ids):
        raise TxError(Code.UNKNOWN_MARKET, f"unknown asset {asset}")
    return ids[index]


def asset_of_market(ex: Exchange, market: int) -> int:
    perps = perp_ids(ex)
    if market in perps:
        return perps.index(market)
    return SPOT_OFFSET + spot_ids(ex).index(market)


def parse_decimal(text: object, what: str) -> tuple[int, int]:
    """``"123.4500"`` -> (12345, 2): digits and decimals, trailing zeros dropped. Refuses
    anything but plain non-negative decimal text (no sign, exponent or spaces)."""
    if type(text) is not str or not 0 < len(text) <= MAX_DECIMAL_TEXT:
        raise TxError(Code.BAD_DECIMAL, f"{what} must be a decimal string")
    whole, dot, frac = text.partition(".")
    if not whole.isdigit() or not whole.isascii() or (dot and (not frac.isdigit() or not frac.isascii())):
        raise TxError(Code.BAD_DECIMAL, f"{what} {text!r} is not a plain decimal")
    frac = frac.rstrip("0")
    return int(whole + frac), len(frac)


def _exact(digits: int, places: int, unit_decimals: int, step: int, what: str, text: str) -> int:
    """``digits / 10^places`` whole units as a count of ``step`` smallest units."""
    num = digits * 10**unit_decimals
    den = 10**places * step
    if num % den:
        raise TxError(Code.BAD_DECIMAL, f"{what} {text} is not a whole number of {(what == 'price' and 'ticks') or 'lots'}")
    return int(num // den)


def price_ticks(ex: Exchange, market: int, text: object) -> int:
    """A Hyperliquid price string as ticks of ``market``, under Hyperliquid's rules."""
    spec = ex.markets[market]
    digits, places = parse_decimal(text, "price")
    max_places = (PERP_MAX_DECIMALS if spec.is_derivative else SPOT_MAX_DECIMALS) - ex.hl_sz_decimals[market]
    if places > max(0, max_places):
        raise TxError(Code.BAD_DECIMAL, f"price {text} has more than {max(0, max_places)} decimals")
    if places and len(str(digits).lstrip("0")) > MAX_SIG_FIGS:
        raise TxError(Code.BAD_DECIMAL, f"price {text} has more than {MAX_SIG_FIGS} significant figures")
    ticks = _exact(digits, places, ex.genesis.assets[spec.quote].decimals, spec.tick_size, "price", str(text))
    if ticks > spec.max_price_ticks:
        raise TxError(Code.PRICE_OUT_OF_RANGE, f"price {text} is above the market's maximum")
    return ticks


def size_lots(ex: Exchange, market: int, text: object) -> int:
    """A Hyperliquid size string as lots of ``market``."""
    spec = ex.markets[market]
    digits, places = parse_decimal(text, "size")
    base_dec = ex.genesis.assets[spec.base].decimals
    if places > ex.hl_sz_decimals[market]:
        raise TxError(Code.BAD_DECIMAL, f"size {text} has more than {ex.hl_sz_decimals[market]} decimals")
    lots = _exact(digits, places, base_dec, spec.lot_size, "size", str(text))
    if lots >= 1 << 62:
        raise TxError(Code.AMOUNT_OUT_OF_RANGE, f"size {text} is too large")
    return lots


def asset_amount(ex: Exchange, asset: int, text: object) -> int:
    """A decimal amount of ``asset`` in its smallest units (exact, at most its decimals)."""
    digits, places = parse_decimal(text, "amount")
    decimals = ex.genesis.assets[asset].decimals
    if places > decimals:
        raise TxError(Code.BAD_DECIMAL, f"amount {text} has more than {decimals} decimals")
    amount = digits * 10 ** (decimals - places)
    if amount >= 1 << 62:
        raise TxError(Code.AMOUNT_OUT_OF_RANGE, f"amount {text} is too large")
    return int(amount)
