"""The price band, and what a receipt says about the part of an order that did not trade.

Hand-computed numbers: BTC's oracle is $60,000 (tests.harness.INITIAL_PRICES), a BTC tick is
$1 and the default band is 20%, so a BTC order's price must lie in 48,000..72,000 ticks.
"""

from __future__ import annotations

from state.errors import Code
from state.genesis import default_markets
from state.tx import Modify, OraclePrices, PlaceOrder, Tif
from tests.harness import BTC, BTC_PERP, BTC_SPOT, ETH_SPOT, USDC, Chain, key, make_genesis

A, B, V = key(20), key(21), key(22)


def _chain(**overrides: object) -> Chain:
    c = Chain(genesis=make_genesis(validators=[{"name": "v0", "pubkey": V.pubkey.hex(), "power": 1}], **overrides))
    for k in (A, B):
        c.fund(k, USDC, 10_000_000 * 10**6)
        c.fund(k, BTC, 100 * 10**8)
    return c


def test_band_edges_are_inclusive_on_both_sides() -> None:
    c = _chain()
    assert c.order(A, BTC_SPOT, True, 48_000, 10).status == "resting"
    assert c.order(A, BTC_SPOT, False, 72_000, 10).status == "resting"
    low = c.order(A, BTC_SPOT, True, 47_999, 10)
    high = c.order(A, BTC_SPOT, False, 72_001, 10)
    assert low.code == high.code == Code.PRICE_OUT_OF_BAND
    assert "48000..72000" in low.message


def test_band_applies_to_perps_and_to_a_modify() -> None:
    c = _chain()
    assert c.order(A, BTC_PERP, False, 72_001, 10).code == Code.PRICE_OUT_OF_BAND
    placed = c.order(A, BTC_PERP, False, 70_000, 10)
    assert placed.status == "resting"
    moved = c.result(A, Modify(BTC_PERP, placed.oid, None, 80_000, 10))
    assert moved.code == Code.PRICE_OUT_OF_BAND
    assert c.ex.books[BTC_PERP].orders[placed.oid].price == 70_000  # the refused modify changed nothing


def test_a_careless_ioc_cannot_sweep_past_the_band() -> None:
    """Asks at 71,000 and (placed under a 50% band, then the band is what the market has) at
    80,000: an IOC buy at the top of the price range is refused outright; one at the band's
    top takes only the 71,000 and cancels the rest."""
    wide = [{**m, "price_band_ppm": 500_000} if m["symbol"] == "BTC/USDC" else m for m in default_markets()]
    c = _chain(markets=wide)
    assert c.order(A, BTC_SPOT, False, 71_000, 10).status == "resting"
    assert c.order(A, BTC_SPOT, False, 80_000, 10).status == "resting"
    assert c.order(B, BTC_SPOT, True, 10**7, 20, tif=Tif.IOC).code == Code.PRICE_OUT_OF_BAND
    r = c.order(B, BTC_SPOT, True, 90_000, 20, tif=Tif.IOC)  # the 50% band's top
    assert (r.status, r.filled, r.cancelled) == ("filled", 20, 0)
    c2 = _chain()
    assert c2.order(A, BTC_SPOT, False, 71_000, 10).status == "resting"
    r = c2.order(B, BTC_SPOT, True, 72_000, 20, tif=Tif.IOC)
    assert (r.status, r.filled, r.cancelled, r.fills[0].price) == ("filled", 10, 10, 71_000)


def test_band_follows_the_oracle() -> None:
    """The oracle moves at most 10% a block: two submissions at $66,000 move it there in one
    block (a 10% move exactly), and the band becomes 52,800..79,200."""
    c = _chain()
    c.block(c.sign(V, OraclePrices(((BTC, 66_000 * 10**6),))))
    assert c.ex.index_px[BTC] == 66_000 * 10**6
    assert c.order(A, BTC_SPOT, False, 79_200, 10).status == "resting"
    assert c.order(A, BTC_SPOT, False, 79_201, 10).code == Code.PRICE_OUT_OF_BAND
    assert c.order(A, BTC_SPOT, True, 52_799, 10).code == Code.PRICE_OUT_OF_BAND


def test_an_asset_without_an_oracle_price_has_no_band() -> None:
    """No initial ETH price: the ETH spot pair has no reference, so no band (and no margin
    value for ETH either: buying it with USDC held is all one can do)."""
    c = _chain(initial_oracle_prices={"BTC": 60_000 * 10**6})
    assert c.ex.index_px[2] == 0
    assert c.order(A, ETH_SPOT, True, 1, 1_000_000).status == "resting"  # 1 tick = $0.10 per ETH


def test_band_is_per_market_in_genesis() -> None:
    tight = [{**m, "price_band_ppm": 10_000} if m["symbol"] == "BTC-PERP" else m for m in default_markets()]
    c = _chain(markets=tight)
    assert c.order(A, BTC_PERP, True, 59_399, 10).code == Code.PRICE_OUT_OF_BAND  # 1% under $60,000
    assert c.order(A, BTC_PERP, True, 59_400, 10).status == "resting"
    assert c.order(A, BTC_SPOT, True, 59_399, 10).status == "resting"  # the spot pair keeps 20%


def test_ioc_receipt_says_the_remainder_was_cancelled() -> None:
    """Asks of 3 lots at 60,000 and 2 at 60,010; an IOC buy of 10 up to 60,010 fills 5 at an
    average of (3 x 60,000 + 2 x 60,010) / 5 = 60,004 and cancels the other 5."""
    c = _chain()
    c.order(A, BTC_SPOT, False, 60_000, 3)
    c.order(A, BTC_SPOT, False, 60_010, 2)
    r = c.order(B, BTC_SPOT, True, 60_010, 10, tif=Tif.IOC)
    assert (r.status, r.filled, r.resting, r.cancelled, r.clipped) == ("filled", 5, 0, 5, 0)
    assert sum(f.price * f.size for f in r.fills) // r.filled == 60_004
    cancels = [e for _, e in c.last.events if type(e).__name__ == "Cancelled"]
    assert [(x.oid, x.remaining, x.reason) for x in cancels] == [(r.oid, 5, "ioc")]


def test_reduce_only_receipt_says_how_much_was_clipped() -> None:
    """Long 4 lots; a reduce-only sell of 10 is cut to 4 at placement (clipped 6) and rests."""
    c = _chain()
    c.order(A, BTC_PERP, False, 60_000, 4)
    assert c.order(B, BTC_PERP, True, 60_000, 4, tif=Tif.IOC).filled == 4
    r = c.order(B, BTC_PERP, False, 61_000, 10, reduce_only=True)
    assert (r.status, r.resting, r.clipped, r.cancelled) == ("resting", 4, 6, 0)
    full = c.result(B, PlaceOrder(BTC_PERP, False, 61_000, 4, Tif.GTC, True, None))
    assert full.clipped == 0
