"""The price oracle: validators sign price submissions; the chain takes the median.

A submission is an ``oracle`` transaction (state.tx.OraclePrices) signed with a validator's
key from genesis; anyone else gets NOT_A_VALIDATOR. Each (asset, validator) keeps its last
submission with the block time it arrived. At the end of every block, for each asset, the
submissions younger than ``risk.oracle.staleness_s`` of block time are fresh; with at least
``min_submissions`` of them (by default floor(n/3)+1 of the n genesis validators,
state/genesis.py ``oracle_quorum``: a third of the validators, the faults BFT tolerates,
cannot move the price alone while the honest feeds are stale) the oracle price becomes their
median (an even count takes the floor of the mean of the middle two). Stale submissions are deleted. With no fresh
submission the last oracle price stays, and its age is visible as ``oracle_ms``.

Ranges. A submission must be in 1..``max_price(asset)``: the smallest top price
(``max_price_ticks * tick_size``) of the asset's markets, at most 2^62 (genesis checks it).
A price no book can quote is a broken feed, so it is refused (PRICE_OUT_OF_RANGE); with it,
every price the engine sees (oracle, book, mark) is at most that top, which bounds the
premium samples, the basis EMA and position values (state/funding.py, state/prices.py).

Move band. Once the asset has an oracle price, a block moves it at most
``risk.oracle.max_move_ppm`` of itself (at least 1 unit): the new price is the median
clamped into ``[old - old*band, old + old*band]``. Clamped rather than rejected: honest
validators following a real crash keep submitting the real price, and the oracle walks there
one band per block without anyone resubmitting (their submissions stay fresh); a validator
(or a quorum) that submits 1 for BTC at $60k moves it 10% in that block, not to 1, so no
premium, mark or liquidation can jump from one block to the next by more than the band.
The first price of an asset is banded against its genesis reference price
(``initial_oracle_prices``), which is the index until then; only an asset without one has
no band (there is nothing to move from).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from state.errors import Code, TxError
from state.prices import compute_index, median
from state.receipts import ActionResult
from state.tx import OraclePrices
from state.units import MAX_PRICE, PPM

if TYPE_CHECKING:
    from state.exchange import Exchange


def max_price(ex: Exchange, asset: int) -> int:
    """The top of the asset's absolute oracle range: the lowest top price of its markets."""
    top = MAX_PRICE
    for m in ex.markets_of_asset.get(asset, ()):
        spec = ex.markets[m]
        top = min(top, spec.max_price_ticks * spec.tick_size)
    return top


def banded(old: int, px: int, band_ppm: int) -> int:
    """``px`` clamped to within ``band_ppm`` of ``old`` (at least one unit either way);
    ``px`` itself when there is no old price yet."""
    if not old:
        return px
    step = max(old * band_ppm // PPM, 1)
    return max(old - step, 1, min(old + step, px))


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
        top = max_price(ex, asset)
        if px == 0 or px > top:
            raise TxError(Code.PRICE_OUT_OF_RANGE, f"oracle price must be 1..{top}, got {px}")
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
        pool = ex.pools[asset]
        old = pool.oracle_px or compute_index(ex, asset)  # the genesis reference before any price
        px = banded(old, median(prices), risk.oracle_max_move_ppm)
        if px != pool.oracle_px or pool.oracle_ms != ex.time_ms:
            pool.oracle_px, pool.oracle_ms = px, ex.time_ms
            ex.tracker.pools.add(asset)
