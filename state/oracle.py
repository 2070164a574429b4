"""The price oracle: validators sign price submissions; the chain takes the median.

A submission is an ``oracle`` transaction (state.tx.OraclePrices) signed with a validator's
key from genesis; anyone else gets NOT_A_VALIDATOR. Each (asset, validator) keeps its last
submission with the block time it arrived. At the end of every block, for each asset, the
submissions younger than ``risk.oracle.staleness_s`` of block time are fresh; with at least
``min_submissions`` of them the oracle price becomes their median (an even count takes the
floor of the mean of the middle two). Stale submissions are deleted. With no fresh
submission the last oracle price stays, and its age is visible as ``oracle_ms``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from state.errors import Code, TxError
from state.prices import median
from state.receipts import ActionResult
from state.tx import OraclePrices

if TYPE_CHECKING:
    from state.exchange import Exchange

MAX_PRICE: Final = 1 << 62


def validator_index(ex: Exchange, pubkey: bytes) -> int:
    for i, v in enumerate(ex.genesis.validators):
        if v.pubkey == pubkey:
            return i
    raise TxError(Code.NOT_A_VALIDATOR, "only a genesis validator may submit oracle prices")


def handle_oracle(ex: Exchange, signer: bytes, pubkey: bytes, a: OraclePrices) -> ActionResult:
    vidx = validator_index(ex, pubkey)
    seen = set()
    for asset, px in a.prices:
        ex.must_asset(asset)
        if asset == ex.collateral_asset:
            raise TxError(Code.UNKNOWN_ASSET, "the collateral asset has no oracle price")
        if asset in seen:
            raise TxError(Code.MALFORMED, f"asset {asset} appears twice")
        seen.add(asset)
        if px == 0 or px > MAX_PRICE:
            raise TxError(Code.PRICE_OUT_OF_RANGE, f"oracle price must be 1..2^62, got {px}")
    for asset, px in a.prices:
        ex.oracle_subs[(asset, vidx)] = [px, ex.time_ms]
        ex.touch_oracle(asset, vidx)
    return ActionResult(Code.OK, status="ok")


def aggregate(ex: Exchange) -> None:
    """Block-end step: expire stale submissions, set each asset's oracle price to the
    median of the fresh ones."""
    risk = ex.genesis.risk
    horizon = ex.time_ms - risk.oracle_staleness_ms
    fresh: dict[int, list[int]] = {}
    for key in sorted(ex.oracle_subs):
        px, ms = ex.oracle_subs[key]
        if ms <= horizon:
            del ex.oracle_subs[key]
            ex.touch_oracle(*key)
        else:
            fresh.setdefault(key[0], []).append(px)
    for asset, prices in sorted(fresh.items()):
        if len(prices) < risk.oracle_min_submissions:
            continue
        px = median(prices)
        pool = ex.pools[asset]
        if px != pool.oracle_px or pool.oracle_ms != ex.time_ms:
            pool.oracle_px, pool.oracle_ms = px, ex.time_ms
            ex.pools.dirty.add(asset)
