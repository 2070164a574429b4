"""Action builders: the exact state.tx actions for human input, or a UnitError."""

from __future__ import annotations

import hashlib

import pytest

from node.wallet.txbuild import (
    batch_action,
    cancel_action,
    cancel_all_action,
    deposit_action,
    modify_action,
    order_action,
    parse_cloid,
    parse_destination,
    withdraw_action,
)
from node.wallet.units import Catalog, UnitError
from state.genesis import Genesis, make_genesis_doc
from state.keys import PrivateKey
from state.tx import Batch, Cancel, CancelAll, Deposit, Modify, PlaceOrder, Tif, decode_tx, sign_tx

CAT = Catalog.from_genesis(Genesis.from_json(make_genesis_doc(chain_id="t", validators=[], bridge_pubkey=b"\x01" * 32)))


def test_cloid_hex_or_hashed_text() -> None:
    assert parse_cloid("00" * 16) == b"\x00" * 16
    assert parse_cloid("0x" + "ab" * 16) == b"\xab" * 16
    assert parse_cloid("my-order-1") == hashlib.sha256(b"my-order-1").digest()[:16]
    assert parse_cloid("my-order-1") == parse_cloid("my-order-1")
    assert len(parse_cloid("ab" * 15)) == 16  # 30 hex digits is text, hashed


def test_order() -> None:
    a = order_action(CAT, "BTC/USDC", "sell", "0.25", "60000", tif="alo", cloid="x")
    assert a == PlaceOrder(0, False, 60_000, 2_500, Tif.ALO, False, parse_cloid("x"))
    raw = order_action(CAT, "2", "buy", "7", "61000", tif="IOC", reduce_only=True, raw=True)
    assert raw == PlaceOrder(2, True, 61_000, 7, Tif.IOC, True, None)
    with pytest.raises(UnitError):
        order_action(CAT, "BTC/USDC", "buy", "0.25", "60000.5")
    with pytest.raises(UnitError, match="not an integer"):
        order_action(CAT, "BTC/USDC", "buy", "0.25", "60000.5", raw=True)
    with pytest.raises(UnitError, match="side"):
        order_action(CAT, "BTC/USDC", "long", "1", "1")


def test_cancel_modify_need_exactly_one_reference() -> None:
    assert cancel_action(CAT, "BTC/USDC", oid="7") == Cancel(0, 7, None)
    assert cancel_action(CAT, "ETH/USDC", cloid="x") == Cancel(1, None, parse_cloid("x"))
    for oid, cloid in ((None, None), ("1", "x")):
        with pytest.raises(UnitError, match="exactly one"):
            cancel_action(CAT, "BTC/USDC", oid=oid, cloid=cloid)
    assert modify_action(CAT, "BTC/USDC", "60001", "0.5", oid=3) == Modify(0, 3, None, 60_001, 5_000)
    assert cancel_all_action(CAT) == CancelAll(None)
    assert cancel_all_action(CAT, "ETH-PERP") == CancelAll(3)


def test_deposit_withdraw_amounts() -> None:
    to = b"\x05" * 20
    assert deposit_action(CAT, to, "USDC", "12.5") == Deposit(to, 0, 12_500_000)
    assert deposit_action(CAT, to, "btc", "5", raw=True) == Deposit(to, 1, 5)
    w = withdraw_action(CAT, "ETH", "0.5", b"dest")
    assert (w.asset, w.amount, w.destination) == (2, 50_000_000, b"dest")
    assert parse_destination("0xabcd") == b"\xab\xcd" and parse_destination("bc1qxyz") == b"bc1qxyz"
    with pytest.raises(UnitError):
        parse_destination("0xnothex")


def test_batch_from_json_signs_and_decodes() -> None:
    items = [
        {"type": "order", "market": "BTC/USDC", "side": "buy", "size": "0.1", "price": "59000", "cloid": "a"},
        {"type": "cancel", "market": "BTC/USDC", "cloid": "a"},
        {"type": "cancel-all"},
        {"type": "modify", "market": "ETH/USDC", "oid": 9, "price": "3000.1", "size": "1"},
    ]
    b = batch_action(CAT, items)
    assert isinstance(b, Batch) and len(b.actions) == 4
    assert b.actions[3] == Modify(1, 9, None, 30_001, 1_000)
    raw = sign_tx(PrivateKey(b"\x02" * 32), 1, b, "t")
    assert decode_tx(raw).action == b
    with pytest.raises(UnitError, match="lacks 'price'"):
        batch_action(CAT, [{"type": "order", "market": "BTC/USDC", "side": "buy", "size": "1"}])
    with pytest.raises(UnitError, match="type must be"):
        batch_action(CAT, [{"type": "deposit"}])
    with pytest.raises(UnitError, match="non-empty"):
        batch_action(CAT, [])
