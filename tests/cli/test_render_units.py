"""Tables and rejection messages in the user's units, readable at 80 columns."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console

import cli.render as render
from cli.messages import humanize, humanize_answer
from node.wallet.units import Catalog
from state.tx import Batch, Borrow, PlaceOrder, Tif, Withdraw

CAT = Catalog.from_rpc(
    {"assets": [{"id": 0, "symbol": "USDC", "decimals": 6}, {"id": 1, "symbol": "BTC", "decimals": 8}]},
    {"markets": [{"id": 0, "symbol": "BTC/USDC", "kind": "spot", "base": 1, "quote": 0, "tick_size": 1_000_000,
                  "lot_size": 100_000},
                 {"id": 2, "symbol": "BTC-PERP", "kind": "perp", "base": 1, "quote": 0, "tick_size": 1_000_000,
                  "lot_size": 100_000}]})
ORDER = PlaceOrder(0, True, 1, 1, Tif.GTC, False, None)


@pytest.fixture
def out80(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    buf = io.StringIO()
    monkeypatch.setattr(render, "console", lambda: Console(file=buf, width=80))
    yield buf


def fits(text: str) -> None:
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "…" not in text, text  # nothing cut


def test_rejection_numbers_become_units() -> None:
    assert humanize("BELOW_MIN_NOTIONAL", "notional 10000 below minimum 10000000", ORDER, CAT) == \
        "notional 0.01 USDC below minimum 10 USDC"
    assert humanize("INSUFFICIENT_MARGIN", "initial margin shortfall 192340140607", ORDER, CAT) == \
        "initial margin shortfall 192340.140607 USDC"
    assert humanize("INSUFFICIENT_BALANCE", "withdraw 150000000, available 100000000", Withdraw(1, 1, b"x"), CAT) == \
        "withdraw 1.5 BTC, available 1 BTC"
    assert humanize("UTILIZATION_CAP", "borrow 5 would take utilization to 960000 ppm, cap 950000",
                    Borrow(1, 5), CAT) == "borrow 0.00000005 BTC would take utilization to 96.00%, cap 95.00%"
    assert humanize("PRICE_OUT_OF_RANGE", "price must be 1..1000000 ticks", ORDER, CAT) == \
        "price must be between 1 and 1000000 USDC"
    assert humanize("INSUFFICIENT_BALANCE", "order needs 250000000 more of asset 1 than the account holds",
                    ORDER, CAT) == "order needs 2.5 BTC more than the account holds"
    # other codes, and no catalog, keep the node's words
    assert humanize("UNKNOWN_ORDER", "order 10000 not found", ORDER, CAT) == "order 10000 not found"
    assert humanize("BELOW_MIN_NOTIONAL", "notional 1 below minimum 2", ORDER, None) == "notional 1 below minimum 2"


def test_batch_results_use_their_own_action() -> None:
    batch = Batch((ORDER, PlaceOrder(2, False, 1, 1, Tif.GTC, False, None)))
    answer: dict[str, Any] = {"code": 502, "name": "BELOW_MIN_NOTIONAL", "message": "notional 1 below minimum 2",
                              "receipt": {"name": "BELOW_MIN_NOTIONAL", "message": "notional 1 below minimum 2",
                                          "results": [{"name": "OK", "message": ""},
                                                      {"name": "BELOW_MIN_NOTIONAL",
                                                       "message": "notional 1 below minimum 2"}]}}
    out = humanize_answer(answer, batch, CAT)
    assert out["receipt"]["results"][1]["message"] == "notional 0.000001 USDC below minimum 0.000002 USDC"
    assert out["message"] == out["receipt"]["message"] == out["receipt"]["results"][1]["message"]
    assert answer["message"] == "notional 1 below minimum 2"  # --json prints the node's answer untouched


def test_account_shows_debts_and_a_readable_margin(out80: io.StringIO) -> None:
    render.print_account({
        "address": "0x" + "ab" * 20, "balances": [{"asset": 0, "symbol": "USDC", "free": 1_000_000_123_456}],
        "positions": [{"market": 2, "size": -150, "entry_notional": 9_000_000_000, "mark": 60_010_000_000,
                       "notional": -9_001_500_000, "unrealized_pnl": -1_500_000, "funding_owed": 12, "realized_pnl": 0}],
        "margin": {"equity": 1_000_000_123_456, "initial": 450_000_000, "maintenance": 225_000_000,
                   "margin_ratio_ppm": 225, "free_collateral": 999_550_123_456, "liquidatable": False,
                   "balances": [{"asset": 0, "balance": 1_000_000_123_456, "idle": 0, "supplied": 1_000_000_123_456,
                                 "borrowed": 0, "auto_lend": True, "price": 1_000_000},
                                {"asset": 1, "balance": -50_000_000, "idle": 0, "supplied": 0, "borrowed": 50_000_000,
                                 "auto_lend": True, "price": 60_000_000_000}],
                   "liquidation_prices": {"1": 123_456_789_000, "2": None}, "unwind_order": [2, 0]}}, CAT)
    text = out80.getvalue()
    fits(text)
    assert "BTC" in text and "-0.5" in text and "0.5" in text  # the borrowed asset and its debt
    assert "{" not in text and "[" not in text and "None" not in text  # no Python reprs
    assert "450 USDC" in text and "123456.789 USDC" in text and "BTC-PERP, BTC/USDC" in text


def test_pools_funding_oracle_fit_80_columns(out80: io.StringIO) -> None:
    render.print_pools({"height": 5, "pools": [
        {"asset": 0, "symbol": "USDC", "supplied": 2_000_000_123_456, "borrowed": 1_500_000_000_000,
         "available": 500_000_123_456, "utilization_ppm": 749_999, "borrow_rate_ppm": 123_456,
         "supply_rate_ppm": 80_000, "utilization_cap_ppm": 950_000, "supply_index": 10**18}]}, CAT)
    render.print_funding({"height": 5, "markets": [
        {"market": 2, "symbol": "BTC-PERP", "kind": "perp", "index_price": 60_000_000_000, "mark_price": 60_010_000_000,
         "last_price_ticks": 60_010, "funding_index": -12_345, "premium_avg_ppb": 15_000,
         "next_funding_ms": 1_796_415_200_000}]}, CAT)
    render.print_oracle({"height": 5, "assets": [
        {"asset": 1, "symbol": "BTC", "price": 60_000_000_000, "time_ms": 1_796_415_200_000,
         "index_price": 60_000_000_000, "submissions": [{}, {}]}]}, CAT)
    text = out80.getvalue()
    fits(text)
    assert "2000000.123456" in text and "75.0%" in text and "12.35%" in text and "cap 95%" in text
    assert "60010" in text and "-12.345" in text and "2026-12-04 20:13:20Z" in text  # mark, funding index, next


def test_markets_show_a_futures_expiry_and_settlement(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    monkeypatch.setattr(render, "console", lambda: Console(file=buf, width=220))
    cat = Catalog.from_rpc(
        {"assets": [{"id": 0, "symbol": "USDC", "decimals": 6}, {"id": 1, "symbol": "BTC", "decimals": 8}]},
        {"markets": [{"id": 0, "symbol": "BTC/USDC", "kind": "spot", "base": 1, "quote": 0, "tick_size": 1_000_000,
                      "lot_size": 10_000},
                     {"id": 1, "symbol": "BTC-FUT", "kind": "future", "base": 1, "quote": 0,
                      "tick_size": 1_000_000, "lot_size": 10_000}]})
    render.print_markets({"markets": [
        {"id": 0, "symbol": "BTC/USDC", "kind": "spot", "base": "BTC", "quote": "USDC", "tick_size": 1_000_000,
         "lot_size": 10_000, "min_notional": 10_000_000, "max_leverage": 1, "last_price": None},
        {"id": 1, "symbol": "BTC-FUT", "kind": "future", "base": "BTC", "quote": "USDC", "tick_size": 1_000_000,
         "lot_size": 10_000, "min_notional": 10_000_000, "max_leverage": 20, "last_price": 60_000,
         "expiry_ms": 1_796_415_200_000, "settlement_window_ms": 60_000, "settled": True,
         "settlement_price": 60_556_000_000}]}, cat)
    text = buf.getvalue()
    assert "expiry (UTC) / settlement" in text and "2026-12-04 20:13:20Z settled at 60556" in text
    buf.truncate(0)
    render.print_markets({"markets": [{"id": 0, "symbol": "BTC/USDC", "kind": "spot"}]}, cat)
    assert "expiry" not in buf.getvalue()  # no futures, no column
