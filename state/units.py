"""The shared units and limits of the state machine, in one place.

Rates are parts per million (``PPM``) or per billion (``PPB``); lending indexes are 1e18
fixed point (``state.muldiv.ONE``). The limits bound every integer where it enters the
state (amounts, prices, notionals, positions), so each stored or summed value has a
documented range below 2^63 and every record fits msgpack's 64-bit integers.
"""

from __future__ import annotations

from typing import Final

PPM: Final = 1_000_000
PPB: Final = 1_000_000_000
YEAR_MS: Final = 365 * 24 * 3600 * 1000
DAYS_PER_YEAR: Final = 365

#: the largest balance of one account in one asset, and the chain's custody of an asset
MAX_AMOUNT: Final = 1 << 62
#: the largest price, in collateral units per whole unit of an asset
MAX_PRICE: Final = 1 << 62
#: the largest block time (ms)
MAX_TIME_MS: Final = 1 << 62
#: one order's notional (quote smallest units): keeps every record inside 64 bits
MAX_ORDER_NOTIONAL: Final = 10**15
#: a perp position's notional at its trade prices
MAX_POSITION_NOTIONAL: Final = 10**17
#: a position plus the open orders on one side, valued at the market's top price
MAX_POSITION_VALUE: Final = 1 << 60

#: the liquidation watch's price sources: an asset's index is its id, a perp's mark is
#: PERP_SOURCE + its market id
PERP_SOURCE: Final = 1000


def sz_decimals(lot_size: int, decimals: int) -> int:
    """How many decimals a size has on a market: those of one lot in whole units of an asset
    with ``decimals`` (10_000 sats of BTC -> 0.0001 -> 4). Hyperliquid's ``szDecimals``."""
    text = str(lot_size)
    return max(0, decimals - (len(text) - len(text.rstrip("0")))) if lot_size > 0 else decimals
