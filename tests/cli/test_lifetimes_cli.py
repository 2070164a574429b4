"""`bookchain tx` for order lifetimes (state/lifetimes.py) against the fake node, whose
block times are wall-clock milliseconds: good-til-time orders, the dead-man switch, and
``--expires-after`` on the envelope."""

from __future__ import annotations

from typing import Any

from node.wallet.txbuild import expiry_ms, schedule_cancel_action, sign
from node.wallet.units import UnitError
from state.keys import PrivateKey
from state.tx import ScheduleCancel, decode_tx
from tests.cli.conftest import Env


def test_gtt_order_shows_its_expiry(env: Env) -> None:
    res = env.run("tx", "order", "BTC/USDC", "buy", "--size", "0.1", "--price", "59000", "--key", "bob",
                  "--expires-in", "3600")
    assert res.exit_code == 0, res.output
    doc: Any = env.json("query", "orders", "bob")
    (order,) = doc["orders"]
    assert order["expires_at_ms"] is not None and order["expires_at_ms"] > 0
    res = env.run("tx", "order", "BTC/USDC", "buy", "--size", "0.1", "--price", "59000", "--key", "bob",
                  "--expires-at", "1000")
    assert res.exit_code == 1 and "ORDER_EXPIRED" in res.output


def test_schedule_cancel_set_clear_and_too_soon(env: Env) -> None:
    res = env.run("tx", "schedule-cancel", "--in", "60", "--key", "alice")
    assert res.exit_code == 0, res.output
    res = env.run("tx", "schedule-cancel", "--clear", "--key", "alice")
    assert res.exit_code == 0, res.output
    res = env.run("tx", "schedule-cancel", "--in", "1", "--key", "alice")
    assert res.exit_code == 1 and "SCHEDULE_CANCEL_TOO_SOON" in res.output
    res = env.run("tx", "schedule-cancel", "--key", "alice")
    assert res.exit_code == 2  # exactly one of --in and --clear


def test_expires_after_option_applies_in_time(env: Env) -> None:
    res = env.run("tx", "order", "BTC/USDC", "buy", "--size", "0.1", "--price", "59000", "--key", "bob",
                  "--expires-after", "30")
    assert res.exit_code == 0, res.output


def test_builders() -> None:
    assert expiry_ms(1_000, in_seconds=5) == 6_000
    assert expiry_ms(1_000, at_ms=42) == 42
    assert expiry_ms(1_000) is None
    try:
        expiry_ms(1_000, 5, 42)
    except UnitError:
        pass
    else:
        raise AssertionError("both --expires-in and --expires-at accepted")
    assert schedule_cancel_action(None) == ScheduleCancel(None)
    k = PrivateKey(b"\x05" * 32)
    assert decode_tx(sign(k, 1, ScheduleCancel(None), "t", expires_after_ms=9)).expires_after == 9
    assert decode_tx(sign(k, 1, ScheduleCancel(None), "t")).expires_after is None


def test_batch_order_item_takes_expires_at_ms() -> None:
    from node.wallet.txbuild import batch_action
    from tests.cli.test_txbuild import CAT

    b = batch_action(CAT, [{"type": "order", "market": "BTC/USDC", "side": "buy", "size": "0.1", "price": "60000",
                            "expires_at_ms": 123}])
    assert b.actions[0].expires_at_ms == 123  # type: ignore[union-attr]
    b = batch_action(CAT, [{"type": "order", "market": "BTC/USDC", "side": "buy", "size": "0.1", "price": "60000"}])
    assert b.actions[0].expires_at_ms is None  # type: ignore[union-attr]
