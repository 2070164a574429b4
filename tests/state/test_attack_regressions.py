"""Attacks a randomized campaign found (mutated Hyperliquid actions, extreme values,
restarts at random heights): each test is one exploit, refused now."""

from __future__ import annotations

import pytest

from state import agents, hltx
from state.eip712 import EthKey
from state.errors import Code, TxError
from state.machine import ExecBlock, StateMachine
from state.tx import Cancel, Deposit, PlaceTrigger, SetMarginMode, Withdraw
from tests.harness import BTC_PERP, USDC, Chain, key

ATTACKER = EthKey(bytes([5]) * 32)
VICTIM = key(9)
TRADER = key(33)


def _snapshot_loads(c: Chain) -> None:
    """What a live node's state snapshot holds must give its app hash (node/snapshots.py)."""
    assert c.sm.store.items() == c.ex.snapshot_records()
    StateMachine(c.genesis, None).load(c.ex.snapshot_records(), c.sm.height, c.sm.app_hash, where="a snapshot")


def test_sub_account_transfer_of_a_negative_usd_amount_is_refused() -> None:
    """``usd`` of subAccountTransfer was signed, and a negative one became
    Transfer(victim, -x): the signer took x from any account it named (the native decoder
    refuses a negative amount, the Hyperliquid mapping did not); -2^62 made apply_block raise."""
    c = Chain()
    c.run(key(1), Deposit(ATTACKER.address, USDC, 1))
    c.fund(VICTIM, USDC, 1_000 * 10**6)
    for usd in (-1_000 * 10**6, -(2**62)):
        raw = hltx.sign_l1(ATTACKER, {"type": "subAccountTransfer", "subAccountUser": "0x" + VICTIM.address.hex(),
                                      "isDeposit": True, "usd": usd}, c.time + 1)
        assert c.block(raw).receipts[0].code == Code.AMOUNT_OUT_OF_RANGE
    assert c.balance(VICTIM, USDC) == 1_000 * 10**6
    assert c.ex.accounts[ATTACKER.address].balance(USDC) == 1


def test_hex_with_whitespace_is_not_an_address_or_a_cloid() -> None:
    """bytes.fromhex skips whitespace, so a 42-character "address" with
    spaces decoded to fewer than 20 bytes (a usdSend burned funds into an account no key
    has) and a cloid of spaces to b""."""
    c = Chain()
    c.run(key(1), Deposit(ATTACKER.address, USDC, 10**9))
    for dest in ("0x" + "11" * 19 + "  ", "0x" + " " * 40, "0x" + "11 " * 13 + " "):
        raw = hltx.sign_user(ATTACKER, {"type": "usdSend", "destination": dest, "amount": "5", "time": c.time + 1})
        assert c.block(raw).receipts[0].code == Code.MALFORMED
    order = {"a": 0, "b": True, "p": "50000", "s": "0.01", "r": False, "t": {"limit": {"tif": "Gtc"}}, "c": "0x" + " " * 32}
    raw = hltx.sign_l1(ATTACKER, {"type": "order", "orders": [order], "grouping": "na"}, c.time + 1)
    assert c.block(raw).receipts[0].code == Code.MALFORMED
    assert all(len(a) == 20 for a in c.ex.accounts)


def test_an_account_holding_only_a_trigger_is_stored_as_it_is_held() -> None:
    """adding or removing a trigger did not mark its account, whose record
    exists only while ``is_empty()`` is false (and reads the triggers): the store and memory
    disagreed, and the live node's snapshots were refused for their app hash."""
    c = Chain()
    c.fund(TRADER, USDC, 10_000 * 10**6)
    c.block(c.sign(TRADER, SetMarginMode(BTC_PERP, True)))
    # the isolated account: no funds, one reduce-only trigger
    r = c.block(c.sign(TRADER, PlaceTrigger(BTC_PERP, False, 100, 59_000, 1, True, 0, True, None)))
    assert r.receipts[0].code == Code.OK
    _snapshot_loads(c)

    c = Chain()
    c.fund(TRADER, USDC, 10_000 * 10**6)
    oid = c.block(c.sign(TRADER, PlaceTrigger(BTC_PERP, False, 100, 59_000, 1, True, 0, True, None))).receipts[0].results[0].oid
    assert c.run(TRADER, Withdraw(USDC, 10_000 * 10**6, b"x")).code == Code.OK
    assert c.run(TRADER, Cancel(BTC_PERP, oid, None)).code == Code.OK
    _snapshot_loads(c)
    # and a restart writes what a node that never stopped writes
    f = c.fork()
    blk = ExecBlock(c.sm.height + 1, c.time + 1000, ())
    assert c.sm.apply_block(blk).write_digests == f.sm.apply_block(blk).write_digests


def test_a_sub_account_transfer_with_a_vault_address_is_refused_not_raised() -> None:
    """subAccountTransfer (isDeposit false) maps to act_as(sub, transfer);
    with vaultAddress the mapping wrapped it in a second act_as, the handlers met an ActAs
    they have no handler for, and apply_block raised KeyError: one signed transaction from
    any account with a sub-account halted the chain."""
    c = Chain()
    c.run(key(1), Deposit(ATTACKER.address, USDC, 10**9))
    assert c.block(hltx.sign_l1(ATTACKER, {"type": "createSubAccount", "name": "e1"}, c.time + 1)).receipts[0].code == Code.OK
    sub = agents.sub_account_address(ATTACKER.address, "e1")
    for action in ({"type": "subAccountTransfer", "subAccountUser": "0x" + sub.hex(), "isDeposit": False, "usd": 1},
                   {"type": "subAccountSpotTransfer", "subAccountUser": "0x" + sub.hex(), "isDeposit": False,
                    "token": "USDC", "amount": "1"}):
        raw = hltx.sign_l1(ATTACKER, action, c.time + 1, vault=sub)
        assert c.block(raw).receipts[0].code == Code.MALFORMED


def test_a_request_whose_action_type_is_not_text_is_malformed() -> None:
    """``action.get("type") in USER_SIGNED`` raised TypeError for a map or
    list there (unhashable): POST /exchange answered 500 instead of a coded refusal."""
    for kind in ({}, [], ["usdSend"]):
        body = {"action": {"type": kind}, "nonce": 1, "signature": {"r": "0x1", "s": "0x1", "v": 27}}
        with pytest.raises(TxError) as err:
            hltx.tx_from_request(body)
        assert err.value.code == Code.MALFORMED


def test_a_user_signed_action_has_one_spelling() -> None:
    """The signature covers the fields, the chain id's value and the type, not their
    spelling or what else the map holds: a third party re-spelling a pending user-signed
    tx (an upper-case or zero-padded signatureChainId, an extra key) got another tx hash
    for the same signer and nonce, racing the original. Only the canonical form decodes."""
    import msgpack

    from state import eip712
    from state.tx import decode_tx

    c = Chain()
    c.run(key(1), Deposit(ATTACKER.address, USDC, 10**9))
    action = {"type": "usdSend", "destination": "0x" + VICTIM.address.hex(), "amount": "5", "time": c.time + 1}
    decode_tx(hltx.sign_user(ATTACKER, action))  # the canonical form

    def respelled(chain_text: str, **extra: object) -> bytes:
        body = {**action, **extra, "signatureChainId": chain_text, "hyperliquidChain": hltx.CHAIN_NAME}
        primary, fields, _ = hltx.USER_SIGNED["usdSend"]
        digest = eip712.user_signed_digest(primary, fields, body, 0x66EEE)  # the same signed message
        return hltx.encode_tx(msgpack.packb(body, use_bin_type=True), action["time"], None, None,
                              ATTACKER.sign_digest(digest))

    for raw in (respelled("0x66EEE"), respelled("0x066eee"), respelled("0x6_6eee"), respelled("0x66eee", memo="x")):
        with pytest.raises(TxError) as err:
            decode_tx(raw)
        assert err.value.code == Code.MALFORMED
