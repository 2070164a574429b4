"""Hyperliquid-signed transactions on chain: signatures made by the Hyperliquid SDK's own
signing functions verify (the signer is the recovered Ethereum address), a tampered action
acts for nobody, and each action lands as the native action it stands for, with Hyperliquid's
number rules enforced exactly."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from state import hltx
from state.eip712 import EthKey, checksum_address
from state.errors import Code, TxError
from state.tx import SCHEME_HL, decode_tx
from tests.harness import BTC_PERP, ETH_SPOT, USDC, Chain, key

signing = pytest.importorskip("hyperliquid.utils.signing", reason="the Hyperliquid SDK is a test extra")
eth_account = pytest.importorskip("eth_account")

ALICE = EthKey(bytes([7]) * 32)
BOB = EthKey(bytes([8]) * 32)
BTC_ASSET = 0  # BTC-PERP is the first perp of Hyperliquid's universe here (meta index 0)
ETH_SPOT_ASSET = 10_001  # spot pairs from 10000: ETH/USDC is the second


def _sdk_wallet(k: EthKey) -> Any:
    return eth_account.Account.from_key(k.secret)


def _sig_json(sig: dict[str, Any]) -> dict[str, Any]:
    return sig


def sdk_l1(k: EthKey, action: dict[str, Any], nonce: int, vault: str | None = None,
           expires_after: int | None = None) -> bytes:
    """The bytes a node builds from what the SDK posts to /exchange for an L1 action."""
    sig = signing.sign_l1_action(_sdk_wallet(k), action, vault, nonce, expires_after, False)
    return hltx.tx_from_request({"action": action, "nonce": nonce, "signature": sig, "vaultAddress": vault,
                                 "expiresAfter": expires_after})


def sdk_usd_send(k: EthKey, destination: bytes, amount: str, nonce: int) -> bytes:
    action = {"destination": "0x" + destination.hex(), "amount": amount, "time": nonce, "type": "usdSend"}
    sig = signing.sign_usd_transfer_action(_sdk_wallet(k), action, False)
    return hltx.tx_from_request({"action": action, "nonce": nonce, "signature": sig})


def order_wire(asset: int, is_buy: bool, px: str, sz: str, tif: str = "Gtc", **extra: Any) -> dict[str, Any]:
    return {"a": asset, "b": is_buy, "p": px, "s": sz, "r": False, "t": {"limit": {"tif": tif}}, **extra}


def order_action(*wires: dict[str, Any], grouping: str = "na") -> dict[str, Any]:
    return {"type": "order", "orders": list(wires), "grouping": grouping}


@pytest.fixture
def chain() -> Chain:
    c = Chain()
    for k in (ALICE, BOB):
        r = c.run(key(1), __import__("state.tx", fromlist=["Deposit"]).Deposit(k.address, USDC, 1_000_000 * 10**6))
        assert r.code == Code.OK, r
    return c


def test_sdk_signature_recovers_the_signer_and_tampering_acts_for_nobody(chain: Chain) -> None:
    raw = sdk_l1(ALICE, order_action(order_wire(BTC_ASSET, True, "59000", "0.01")), chain.time + 1)
    tx = decode_tx(raw)
    assert tx.scheme == SCHEME_HL and tx.signer == ALICE.address
    # one byte of the price changed: the signature now recovers some other address
    tampered = raw.replace(b"59000", b"59001")
    other = decode_tx(tampered)
    assert other.signer != ALICE.address
    r = chain.block(tampered).receipts[0]
    assert r.code == Code.UNKNOWN_ACCOUNT
    assert other.signer not in chain.ex.nonces and other.signer not in chain.ex.accounts  # nothing left behind


def test_sdk_limit_order_rests_with_exact_ticks_and_lots(chain: Chain) -> None:
    r = chain.block(sdk_l1(ALICE, order_action(order_wire(BTC_ASSET, True, "59000", "0.01")), chain.time + 1)).receipts[0]
    assert r.code == Code.OK, r
    assert r.kind == "hl:order"
    oid = r.results[0].oid
    order = chain.ex.books[BTC_PERP].orders[oid]
    assert (order.price, order.size, order.is_buy) == (59_000, 100, True)  # $1 ticks, 0.0001 BTC lots
    assert order.owner == ALICE.address


def test_nonce_is_shared_with_replay_refused(chain: Chain) -> None:
    raw = sdk_l1(ALICE, order_action(order_wire(BTC_ASSET, True, "59000", "0.01")), chain.time + 1)
    assert chain.block(raw).receipts[0].code == Code.OK
    assert chain.block(raw).receipts[0].code == Code.NONCE_USED


@pytest.mark.parametrize("px, sz, code", [
    ("59000.5", "0.01", Code.BAD_DECIMAL),   # 6 significant figures
    ("59000", "0.00001", Code.BAD_DECIMAL),  # finer than szDecimals (4)
    ("5.9e4", "0.01", Code.BAD_DECIMAL),     # not plain decimal text
    ("-1", "0.01", Code.BAD_DECIMAL),
])
def test_prices_and_sizes_off_the_rules_are_refused_and_use_the_nonce(chain: Chain, px: str, sz: str, code: Code) -> None:
    raw = sdk_l1(ALICE, order_action(order_wire(BTC_ASSET, True, px, sz)), chain.time + 1)
    r = chain.block(raw).receipts[0]
    assert r.code == code, r
    assert not chain.ex.books[BTC_PERP].orders
    assert chain.block(raw).receipts[0].code == Code.NONCE_USED


def test_unknown_asset_and_unknown_type(chain: Chain) -> None:
    r = chain.block(sdk_l1(ALICE, order_action(order_wire(7, True, "59000", "0.01")), chain.time + 1)).receipts[0]
    assert r.code == Code.UNKNOWN_MARKET
    with pytest.raises(Exception) as err:
        sdk_l1(ALICE, {"type": "vaultTransfer", "vaultAddress": "0x" + "00" * 20, "isDeposit": True, "usd": 1},
               chain.time + 2)
    assert getattr(err.value, "code", None) == Code.UNKNOWN_TX_TYPE


def test_spot_order_and_cross(chain: Chain) -> None:
    chain.run(key(1), __import__("state.tx", fromlist=["Deposit"]).Deposit(BOB.address, 2, 10 * 10**8))
    bid = chain.block(sdk_l1(ALICE, order_action(order_wire(ETH_SPOT_ASSET, True, "3000.5", "1.5")), chain.time + 1))
    assert bid.receipts[0].code == Code.OK, bid.receipts[0]
    ask = chain.block(sdk_l1(BOB, order_action(order_wire(ETH_SPOT_ASSET, False, "3000.5", "1.5", "Ioc")), chain.time + 1))
    res = ask.receipts[0].results[0]
    assert res.code == Code.OK and res.filled == 1500
    assert not chain.ex.books[ETH_SPOT].orders


def test_usd_send_moves_collateral_and_refuses_mainnet(chain: Chain) -> None:
    before = chain.ex.accounts[BOB.address].balance(USDC)
    r = chain.block(sdk_usd_send(ALICE, BOB.address, "12.5", chain.time + 1)).receipts[0]
    assert r.code == Code.OK, r
    assert chain.ex.accounts[BOB.address].balance(USDC) == before + 12_500_000
    action = {"destination": "0x" + BOB.address.hex(), "amount": "1", "time": chain.time + 2, "type": "usdSend"}
    sig = signing.sign_usd_transfer_action(_sdk_wallet(ALICE), action, True)
    with pytest.raises(Exception) as err:
        decode_tx(hltx.tx_from_request({"action": action, "nonce": chain.time + 2, "signature": sig}))
    assert getattr(err.value, "code", None) == Code.WRONG_CHAIN


def test_agent_trades_for_its_master_and_cannot_send(chain: Chain) -> None:
    agent = EthKey(bytes([9]) * 32)
    nonce = chain.time + 1
    action = {"type": "approveAgent", "agentAddress": checksum_address(agent.address), "agentName": "bot", "nonce": nonce}
    sig = signing.sign_agent(_sdk_wallet(ALICE), action, False)
    r = chain.block(hltx.tx_from_request({"action": action, "nonce": nonce, "signature": sig})).receipts[0]
    assert r.code == Code.OK, r
    r = chain.block(sdk_l1(agent, order_action(order_wire(BTC_ASSET, True, "59000", "0.01")), chain.time + 1)).receipts[0]
    assert r.code == Code.OK, r
    assert chain.ex.books[BTC_PERP].orders[r.results[0].oid].owner == ALICE.address
    r = chain.block(sdk_usd_send(agent, BOB.address, "1", chain.time + 1)).receipts[0]
    assert r.code in (Code.UNAUTHORIZED, Code.UNKNOWN_ACCOUNT)


def test_cancel_by_oid_and_cloid_and_modify(chain: Chain) -> None:
    cloid = "0x" + "ab" * 16
    r = chain.block(sdk_l1(ALICE, order_action(order_wire(BTC_ASSET, True, "59000", "0.01"),
                                               order_wire(BTC_ASSET, True, "58000", "0.02", c=cloid)),
                           chain.time + 1)).receipts[0]
    oid1, oid2 = (x.oid for x in r.results)
    m = {"type": "modify", "oid": oid1, "order": order_wire(BTC_ASSET, True, "59500", "0.02")}
    r = chain.block(sdk_l1(ALICE, m, chain.time + 1)).receipts[0]
    assert r.code == Code.OK, r
    live = [o for o in chain.ex.books[BTC_PERP].orders.values() if o.price == 59_500]
    assert len(live) == 1 and live[0].size == 200
    r = chain.block(sdk_l1(ALICE, {"type": "cancelByCloid", "cancels": [{"asset": BTC_ASSET, "cloid": cloid}]},
                           chain.time + 1)).receipts[0]
    assert r.code == Code.OK, r
    assert oid2 not in chain.ex.books[BTC_PERP].orders
    r = chain.block(sdk_l1(ALICE, {"type": "cancel", "cancels": [{"a": BTC_ASSET, "o": live[0].oid}]},
                           chain.time + 1)).receipts[0]
    assert r.code == Code.OK, r
    assert not chain.ex.books[BTC_PERP].orders


def test_leverage_noop_and_sub_account_vault(chain: Chain) -> None:
    r = chain.block(sdk_l1(ALICE, {"type": "updateLeverage", "asset": BTC_ASSET, "isCross": True, "leverage": 5},
                           chain.time + 1)).receipts[0]
    assert r.code == Code.OK, r
    assert chain.block(sdk_l1(ALICE, {"type": "noop"}, chain.time + 1)).receipts[0].code == Code.OK
    r = chain.block(sdk_l1(ALICE, {"type": "createSubAccount", "name": "desk"}, chain.time + 1)).receipts[0]
    assert r.code == Code.OK, r
    sub = bytes.fromhex(r.results[0].message)
    r = chain.block(sdk_l1(ALICE, {"type": "subAccountTransfer", "subAccountUser": "0x" + sub.hex(),
                                   "isDeposit": True, "usd": 50_000 * 10**6}, chain.time + 1)).receipts[0]
    assert r.code == Code.OK, r
    assert chain.ex.accounts[sub].balance(USDC) == 50_000 * 10**6
    r = chain.block(sdk_l1(ALICE, order_action(order_wire(BTC_ASSET, True, "59000", "0.01")), chain.time + 1,
                           vault="0x" + sub.hex())).receipts[0]
    assert r.code == Code.OK, r
    assert chain.ex.books[BTC_PERP].orders[r.results[0].oid].owner == sub


def test_own_signer_matches_the_sdk_byte_for_byte(chain: Chain) -> None:
    action = order_action(order_wire(BTC_ASSET, True, "59000", "0.01"))
    nonce = chain.time + 1
    mine = hltx.sign_l1(ALICE, action, nonce)
    assert mine == sdk_l1(ALICE, action, nonce)
    assert msgpack.unpackb(msgpack.packb(action)) == action


def test_borrow_lend_borrows_repays_and_switches_lending(chain: Chain) -> None:
    from state.tx import Deposit

    chain.run(key(1), Deposit(BOB.address, 2, 10 * 10**8))  # lenders of ETH
    r = chain.block(sdk_l1(ALICE, {"type": "borrowLend", "operation": "borrow", "token": 2, "amount": "0.5"},
                           chain.time + 1)).receipts[0]
    assert r.code == Code.OK, r
    assert chain.ex.pools.debt(chain.ex.accounts[ALICE.address], 2) >= 50_000_000
    r = chain.block(sdk_l1(ALICE, {"type": "borrowLend", "operation": "repay", "token": 2, "amount": None},
                           chain.time + 1)).receipts[0]
    assert r.code == Code.OK, r
    r = chain.block(sdk_l1(ALICE, {"type": "borrowLend", "operation": "supply", "token": 0, "amount": "5"},
                           chain.time + 1)).receipts[0]
    assert r.code == Code.MALFORMED
    r = chain.block(sdk_l1(ALICE, {"type": "borrowLend", "operation": "withdraw", "token": 0, "amount": None},
                           chain.time + 1)).receipts[0]
    assert r.code == Code.OK, r


def test_approve_agent_without_a_name_as_the_sdk_posts_it(chain: Chain) -> None:
    """The SDK's ``approve_agent()`` signs ``agentName: ""`` then drops the field from the
    action it posts: the signature must still recover the master."""
    agent = EthKey(bytes([10]) * 32)
    nonce = chain.time + 1
    action = {"type": "approveAgent", "agentAddress": checksum_address(agent.address), "agentName": "", "nonce": nonce}
    sig = signing.sign_agent(_sdk_wallet(ALICE), action, False)
    del action["agentName"]
    raw = hltx.tx_from_request({"action": action, "nonce": nonce, "signature": sig})
    assert decode_tx(raw).signer == ALICE.address
    r = chain.block(raw).receipts[0]
    assert r.code == Code.OK, r
    assert chain.ex.agents[agent.address][0] == ALICE.address


def test_an_agent_approval_has_one_spelling(chain: Chain) -> None:
    """EIP-712 signs an address as its 20 bytes, so the SDK's signature over the checksummed
    agentAddress also verified with the address lower- or upper-cased: the same approval
    under other tx hashes (a third party could re-spell a pending one and race it). Only
    the EIP-55 spelling, which the SDK posts, is accepted; the others are MALFORMED."""
    agent = EthKey(bytes([11]) * 32)
    nonce = chain.time + 1
    good = checksum_address(agent.address)
    assert good != good.lower()  # mixed case, as eth_account spells it
    action = {"type": "approveAgent", "agentAddress": good, "agentName": "bot", "nonce": nonce}
    sig = signing.sign_agent(_sdk_wallet(ALICE), action, False)
    for spelling in (good.lower(), "0x" + good[2:].upper(), "0X" + good[2:]):
        respelled = {**action, "agentAddress": spelling}
        with pytest.raises(TxError) as err:
            decode_tx(hltx.tx_from_request({"action": respelled, "nonce": nonce, "signature": sig}))
        assert err.value.code == Code.MALFORMED and "EIP-55" in str(err.value)
    r = chain.block(hltx.tx_from_request({"action": action, "nonce": nonce, "signature": sig})).receipts[0]
    assert r.code == Code.OK, r
    assert chain.ex.agents[agent.address][0] == ALICE.address


def test_an_order_off_the_rules_fails_alone_in_its_batch(chain: Chain) -> None:
    action = order_action(order_wire(BTC_ASSET, True, "59000", "0.01"), order_wire(BTC_ASSET, True, "58000.5", "0.01"),
                          order_wire(7, True, "58000", "0.01"))
    r = chain.block(sdk_l1(ALICE, action, chain.time + 1)).receipts[0]
    assert r.code == Code.OK
    assert [x.code for x in r.results] == [Code.OK, Code.BAD_DECIMAL, Code.UNKNOWN_MARKET]
    assert len(chain.ex.books[BTC_PERP].orders) == 1


def test_one_signature_encoding_on_chain(chain: Chain) -> None:
    """v is 27 or 28 and s is low: the other encodings of the same signature are refused
    (a client's v of 0/1 is normalised before the bytes go on chain)."""
    from state.eip712 import SECP256K1_N

    raw = hltx.sign_l1(ALICE, order_action(order_wire(BTC_ASSET, True, "59000", "0.01")), chain.time + 1)
    sig = raw[-65:]
    low_v = raw[:-1] + bytes([sig[64] - 27])
    high_s = raw[:-65] + sig[:32] + (SECP256K1_N - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big") \
        + bytes([55 - sig[64]])
    for bad in (low_v, high_s):
        with pytest.raises(Exception) as err:
            decode_tx(bad)
        assert getattr(err.value, "code", None) == Code.BAD_SIGNATURE
    body = {"action": order_action(order_wire(BTC_ASSET, True, "59000", "0.01")), "nonce": chain.time + 1,
            "signature": {"r": "0x" + sig[:32].hex(), "s": "0x" + sig[32:64].hex(), "v": sig[64] - 27}}
    assert hltx.tx_from_request(body) == raw


def test_a_modify_of_a_lapsed_order_fails_and_places_nothing(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    """A modify that Hyperliquid would do as a cancel and a new order (here: a new time in
    force) of an order whose dead-man switch is due and not yet swept: the switch runs before
    the account acts, and the modify answers as for an unknown order; no new order rests."""
    from state import lifetimes
    monkeypatch.setattr(lifetimes, "SWEEP_BUDGET", 0)
    r = chain.block(sdk_l1(ALICE, order_action(order_wire(BTC_ASSET, True, "59000", "0.01")), chain.time + 1)).receipts[0]
    oid = r.results[0].oid
    deadline = chain.time + chain.genesis.schedule_cancel_min_ms + 1_000
    r = chain.block(sdk_l1(ALICE, {"type": "scheduleCancel", "time": deadline}, chain.time + 1)).receipts[0]
    assert r.code == Code.OK, r
    chain.time = deadline
    m = {"type": "modify", "oid": oid, "order": order_wire(BTC_ASSET, True, "59500", "0.01", tif="Alo")}
    r = chain.block(sdk_l1(ALICE, m, chain.time + 1)).receipts[0]
    assert [x.code for x in r.results] == [Code.UNKNOWN_ORDER]
    assert not chain.ex.books[BTC_PERP].orders and not chain.ex.accounts[ALICE.address].open_orders
