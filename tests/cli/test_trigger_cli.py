"""Trigger order builders and commands: stop, take-profit, tpsl, modify-trigger, order --tp/--sl."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import bookchain
from node.client import Client
from node.wallet.txbuild import (
    bracket_action,
    modify_trigger_action,
    order_action,
    parse_cloid,
    position_tpsl_action,
    trigger_action,
)
from node.wallet.units import Catalog, UnitError
from state.genesis import Genesis, make_genesis_doc
from state.tx import (
    ModifyTrigger,
    PlaceGroup,
    PlaceOrder,
    PlaceTrigger,
    Tif,
    action_to_list,
    parse_action,
)
from tests.cli.conftest import Env

CAT = Catalog.from_genesis(Genesis.from_json(make_genesis_doc(chain_id="t", validators=[], bridge_pubkey=b"\x01" * 32)))


def test_stop_market_and_take_profit_limit() -> None:
    assert trigger_action(CAT, "BTC-PERP", "sell", "0.1", "57000", "sl", reduce_only=True) == \
        PlaceTrigger(2, False, 1_000, 57_000, 1, True, 0, True, None)
    assert trigger_action(CAT, "BTC/USDC", "sell", "0.5", "66000", "tp", limit="65900", cloid="t1") == \
        PlaceTrigger(0, False, 5_000, 66_000, 0, False, 65_900, False, parse_cloid("t1"))
    with pytest.raises(UnitError):
        trigger_action(CAT, "BTC/USDC", "sell", "0.5", "66000", "xx")


def test_position_tpsl_and_bracket_groups() -> None:
    g = position_tpsl_action(CAT, "BTC-PERP", "sell", "66000", "57000")
    assert g == PlaceGroup(2, None, (PlaceTrigger(2, False, 0, 66_000, 0, True, 0, True, None),
                                     PlaceTrigger(2, False, 0, 57_000, 1, True, 0, True, None)))
    assert parse_action(action_to_list(g)) == g
    parent = order_action(CAT, "BTC-PERP", "buy", "0.1", "60000")
    b = bracket_action(CAT, parent, None, "57000")
    assert b == PlaceGroup(1, PlaceOrder(2, True, 60_000, 1_000, Tif.GTC, False, None),
                           (PlaceTrigger(2, False, 0, 57_000, 1, True, 0, True, None),))
    assert parse_action(action_to_list(b)) == b
    spot = bracket_action(CAT, order_action(CAT, "BTC/USDC", "sell", "0.1", "60000"), "55000", None)
    assert spot.children == (PlaceTrigger(0, True, 0, 55_000, 0, True, 0, False, None),)
    with pytest.raises(UnitError):
        position_tpsl_action(CAT, "BTC-PERP", "sell", None, None)


def test_modify_trigger() -> None:
    assert modify_trigger_action(CAT, "BTC-PERP", "56500", "0.1", oid=12) == ModifyTrigger(2, 12, None, 56_500, 0, 1_000)
    assert modify_trigger_action(CAT, "BTC-PERP", "56500", "0", limit="56000", cloid="c") == \
        ModifyTrigger(2, None, parse_cloid("c"), 56_500, 56_000, 0)


@pytest.mark.parametrize("name", ["stop", "take-profit", "tpsl", "modify-trigger"])
def test_trigger_commands_have_help_with_an_example(name: str) -> None:
    r = CliRunner().invoke(bookchain, ["tx", name, "--help"])
    assert r.exit_code == 0 and "Example" in r.output and "Traceback" not in r.output


def test_order_help_mentions_tp_and_sl() -> None:
    r = CliRunner().invoke(bookchain, ["tx", "order", "--help"])
    assert "--tp" in r.output and "--sl" in r.output


def test_stop_then_query_triggers_then_cancel(env: Env) -> None:
    Client(env.node.url).wait_for_height(2, timeout=5)
    placed = env.run("tx", "stop", "BTC/USDC", "sell", "0.5", "--trigger", "50000", "--cloid", "s1", "--key", "alice")
    assert placed.exit_code == 0, placed.output
    assert "waiting for trigger" in placed.output
    shown = env.run("query", "triggers", "alice")
    assert shown.exit_code == 0 and "50000" in shown.output and "sl" in shown.output, shown.output
    alice = env.keys.load("alice").address_text
    assert env.json("query", "triggers", "alice") == Client(env.node.url).triggers(alice)
    moved = env.run("tx", "modify-trigger", "BTC/USDC", "--cloid", "s1", "--trigger", "49000", "--size", "0.5",
                    "--key", "alice")
    assert moved.exit_code == 0, moved.output
    gone = env.run("tx", "cancel", "BTC/USDC", "--cloid", "s1", "--key", "alice")
    assert gone.exit_code == 0, gone.output
    assert Client(env.node.url).triggers(alice) == {"triggers": []}
