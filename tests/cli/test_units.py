"""Human prices/sizes/amounts to ticks/lots/units: exact, or an error naming the grid."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.wallet.units import Catalog, UnitError
from state.genesis import Genesis, make_genesis_doc

CAT = Catalog.from_genesis(Genesis.from_json(make_genesis_doc(chain_id="t", validators=[], bridge_pubkey=b"\x01" * 32)))
BTC = CAT.market("BTC/USDC")
ETH = CAT.market("eth/usdc")


def test_lookup_by_symbol_or_id_case_insensitive() -> None:
    assert CAT.market("0") is BTC and CAT.market(0) is BTC and CAT.market("btc/usdc") is BTC
    assert CAT.asset("usdc").decimals == 6 and CAT.asset(1).symbol == "BTC"
    with pytest.raises(UnitError, match=r"unknown market 'DOGE/USDC'.*BTC/USDC"):
        CAT.market("DOGE/USDC")
    with pytest.raises(UnitError, match="unknown asset"):
        CAT.asset("DOGE")


def test_btc_grid() -> None:
    # tick = 1 USDC (tick_size 1e6 at 6 decimals), lot = 0.0001 BTC (1e4 at 8 decimals)
    assert BTC.tick_text == "1" and BTC.lot_text == "0.0001"
    assert BTC.price_to_ticks("60000") == 60_000
    assert BTC.price_to_ticks("60000.000") == 60_000
    assert BTC.size_to_lots("0.25") == 2_500
    assert BTC.size_to_lots("1e-4") == 1
    assert BTC.ticks_to_price(60_000) == "60000" and BTC.lots_to_size(2_500) == "0.25"


def test_eth_grid_has_fractional_ticks() -> None:
    assert ETH.tick_text == "0.1" and ETH.lot_text == "0.001"
    assert ETH.price_to_ticks("3000.5") == 30_005
    assert ETH.ticks_to_price(30_005) == "3000.5"


@pytest.mark.parametrize(("price", "why"), [("60000.5", "tick size 1"), ("1.0000001", "tick size 1")])
def test_off_tick_is_an_error(price: str, why: str) -> None:
    with pytest.raises(UnitError, match=f"not a multiple of the {why}"):
        BTC.price_to_ticks(price)


def test_off_lot_is_an_error() -> None:
    with pytest.raises(UnitError, match=r"lot size 0\.0001"):
        BTC.size_to_lots("0.00015")


@pytest.mark.parametrize("bad", ["abc", "-1", "nan", "inf", "", "1,5"])
def test_not_numbers(bad: str) -> None:
    with pytest.raises(UnitError):
        BTC.price_to_ticks(bad)


def test_amounts() -> None:
    usdc = CAT.asset("USDC")
    assert usdc.to_units("1000.5") == 1_000_500_000
    assert usdc.to_units("1_000") == 1_000_000_000
    assert usdc.from_units(1_000_500_000) == "1000.5"
    with pytest.raises(UnitError, match="smallest unit"):
        usdc.to_units("0.0000001")


def test_large_values_stay_exact() -> None:
    assert CAT.asset("BTC").to_units("92233720368.54775807") == 9_223_372_036_854_775_807


@given(st.integers(min_value=0, max_value=10**15))
def test_ticks_round_trip(ticks: int) -> None:
    assert BTC.price_to_ticks(BTC.ticks_to_price(ticks)) == ticks
    assert ETH.price_to_ticks(ETH.ticks_to_price(ticks)) == ticks
    assert ETH.size_to_lots(ETH.lots_to_size(ticks)) == ticks


def test_catalog_from_rpc_accepts_ids_or_symbols_for_base_quote() -> None:
    assets = {"assets": [{"id": 0, "symbol": "USDC", "decimals": 6}, {"id": 1, "symbol": "BTC", "decimals": 8}]}
    by_id = {"markets": [{"id": 0, "symbol": "BTC/USDC", "kind": "spot", "base": 1, "quote": 0,
                          "tick_size": 1_000_000, "lot_size": "10000"}]}
    by_sym = {"markets": [{**by_id["markets"][0], "base": "BTC", "quote": "USDC"}]}
    for doc in (by_id, by_sym):
        m = Catalog.from_rpc(assets, doc).market("BTC/USDC")
        assert m.base.symbol == "BTC" and m.quote.symbol == "USDC" and m.lot_size == 10_000
