"""Market orders from the CLI: the slippage bound, the band clamp, and the receipt."""

from __future__ import annotations

import json

import pytest

from node.wallet.txbuild import market_limit_ticks, slippage_ppm
from node.wallet.units import AssetInfo, MarketInfo, UnitError
from tests.cli.conftest import Env

USDC_I, BTC_I = AssetInfo(0, "USDC", 6), AssetInfo(1, "BTC", 8)
BTC_SPOT = MarketInfo(0, "BTC/USDC", "spot", BTC_I, USDC_I, 1_000_000, 10_000)  # $1 ticks
PX = 60_000 * 10**6


def test_slippage_is_an_exact_fraction() -> None:
    assert slippage_ppm("0.05") == 50_000
    assert slippage_ppm("0.000001") == 1
    for bad in ("0", "1", "-0.1", "0.0000001", "five", "nan"):
        with pytest.raises(UnitError):
            slippage_ppm(bad)


def test_market_limit_is_the_reference_moved_against_the_taker() -> None:
    """$60,000 and 5%: a buy's limit is 63,000 ticks, a sell's 57,000. At $60,000.50 the buy
    rounds up (63,000.525 -> 63,001) and the sell down (57,000.475 -> 57,000)."""
    assert market_limit_ticks(BTC_SPOT, True, PX, PX, 200_000, 10**7, 50_000) == 63_000
    assert market_limit_ticks(BTC_SPOT, False, PX, PX, 200_000, 10**7, 50_000) == 57_000
    odd = PX + 500_000
    assert market_limit_ticks(BTC_SPOT, True, odd, PX, 200_000, 10**7, 50_000) == 63_001
    assert market_limit_ticks(BTC_SPOT, False, odd, PX, 200_000, 10**7, 50_000) == 57_000


def test_market_limit_stays_inside_the_band_and_the_range() -> None:
    """A 50% slippage would leave the 20% band: the limit stops at its edge (72,000 / 48,000)."""
    assert market_limit_ticks(BTC_SPOT, True, PX, PX, 200_000, 10**7, 500_000) == 72_000
    assert market_limit_ticks(BTC_SPOT, False, PX, PX, 200_000, 10**7, 500_000) == 48_000
    assert market_limit_ticks(BTC_SPOT, True, PX, PX, 200_000, 65_000, 100_000) == 65_000
    with pytest.raises(UnitError, match="no oracle price"):
        market_limit_ticks(BTC_SPOT, True, 0, 0, 200_000, 10**7, 50_000)


def test_tx_market_fills_and_reports_the_cancelled_remainder(env: Env) -> None:
    sell = env.run("tx", "order", "BTC/USDC", "sell", "--size", "0.01", "--price", "60100", "--key", "alice")
    assert sell.exit_code == 0, sell.output
    res = env.run("tx", "market", "BTC/USDC", "buy", "--size", "0.03", "--key", "bob", "--json")
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)["receipt"]["results"][0]
    assert (r["status"], r["filled"], r["cancelled"], r["avg_price"]) == ("filled", 100, 200, "60100")
    text = env.run("tx", "market", "BTC/USDC", "buy", "--size", "0.01", "--key", "bob")
    assert text.exit_code == 1 and "IOC_NO_FILL" in text.output  # the book is empty now
    again = env.run("tx", "order", "BTC/USDC", "sell", "--size", "0.01", "--price", "60000", "--key", "alice")
    assert again.exit_code == 0
    shown = env.run("tx", "market", "BTC/USDC", "buy", "--size", "0.02", "--slippage", "0.01", "--key", "bob")
    assert shown.exit_code == 0, shown.output
    assert "remainder cancelled 0.01" in shown.output and "60000.00" in shown.output


def test_tx_market_usage_errors(env: Env) -> None:
    assert env.run("tx", "market", "BTC/USDC", "buy", "--size", "0.01", "--slippage", "2", "--key", "bob").exit_code == 2
    assert env.run("tx", "market", "DOGE/USDC", "buy", "--size", "0.01", "--key", "bob").exit_code == 2
