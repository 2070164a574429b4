"""Lending from the CLI: borrow within margin, repay, auto-lend switch, unwind order."""

from __future__ import annotations

from tests.cli.conftest import Env


def test_borrow_is_accepted_and_a_repay_without_debt_is_a_coded_rejection(env: Env) -> None:
    res = env.run("tx", "borrow", "USDC", "1000", "--key", "alice")
    assert res.exit_code == 0, res.output
    assert "OK" in res.output
    # alice supplies USDC, so the drawn USDC nets against her own supply at once (credits
    # repay first): there is no debt left to repay
    res = env.run("tx", "repay", "USDC", "1000", "--key", "alice")
    assert res.exit_code == 1 and "AMOUNT_OUT_OF_RANGE" in res.output


def test_borrowing_beyond_margin_is_rejected_with_its_code(env: Env) -> None:
    res = env.run("tx", "borrow", "USDC", "100000000000", "--key", "bob")
    assert res.exit_code == 1
    assert any(code in res.output for code in ("INSUFFICIENT_MARGIN", "POOL_ILLIQUID", "UTILIZATION_CAP"))
    res = env.run("tx", "borrow", "ETH", "1", "--key", "bob")  # no oracle price for ETH on this node yet
    assert res.exit_code == 1 and "STALE_PRICE" in res.output


def test_lend_switch_and_unwind_order(env: Env) -> None:
    assert env.run("tx", "lend", "USDC", "off", "--key", "alice").exit_code == 0
    assert env.run("tx", "lend", "USDC", "on", "--key", "alice").exit_code == 0
    res = env.run("tx", "set-unwind", "BTC-PERP", "ETH/USDC", "--key", "alice")
    assert res.exit_code == 0, res.output
    assert env.run("tx", "lend", "USDC", "maybe", "--key", "alice").exit_code == 2
