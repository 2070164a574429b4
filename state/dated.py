"""Whether a dated market (a future) still takes orders: the check ``matching`` calls.

Apart from state/futures.py (which cancels orders through ``matching`` at expiry) so that
matching can call it without an import cycle (tests/test_packages.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from state.errors import Code, TxError

if TYPE_CHECKING:
    from state.exchange import Exchange
    from state.genesis import MarketSpec


def must_open(ex: Exchange, market: MarketSpec) -> None:
    """Refuse an order (or modify) on a future at or past its expiry, or already settled."""
    if market.expiry_ms and (ex.time_ms >= market.expiry_ms or ex.mstate[market.market_id].settled):
        raise TxError(Code.MARKET_CLOSED, f"market {market.symbol} expired at {market.expiry_ms} ms")
