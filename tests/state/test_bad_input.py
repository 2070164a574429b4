"""Every rejection path returns its stable code and leaves the state exactly as it was."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from state.errors import Code
from state.keys import PrivateKey
from state.tx import (
    Batch,
    Cancel,
    CancelAll,
    Deposit,
    Modify,
    PlaceOrder,
    Tif,
    Withdraw,
    sign_tx,
)
from tests.harness import BRIDGE, BTC, BTC_PERP, BTC_SPOT, CHAIN_ID, USDC, Chain, key

A, B = key(10), key(11)


@pytest.fixture
def chain() -> Chain:
    c = Chain()
    c.fund(A, USDC, 100_000_000)  # $100
    c.fund(A, BTC, 10**8)
    c.fund(B, USDC, 100_000_000)
    c.order(A, BTC_SPOT, False, 60_000, 2)
    c.order(B, BTC_PERP, True, 50_000, 2)
    return c


def order(market: int = BTC_SPOT, is_buy: bool = True, price: int = 50_000, size: int = 2, tif: Tif = Tif.GTC,
          reduce_only: bool = False) -> PlaceOrder:
    return PlaceOrder(market, is_buy, price, size, tif, reduce_only, None)


CASES: list[tuple[str, Callable[[Chain], bytes], Code]] = [
    ("unknown market", lambda c: c.sign(A, order(market=99)), Code.UNKNOWN_MARKET),
    ("zero size", lambda c: c.sign(A, order(size=0)), Code.ZERO_SIZE),
    ("zero price", lambda c: c.sign(A, order(price=0)), Code.PRICE_OUT_OF_RANGE),
    ("price above range", lambda c: c.sign(A, order(price=10**13)), Code.PRICE_OUT_OF_RANGE),
    ("below min notional", lambda c: c.sign(A, order(size=1)), Code.BELOW_MIN_NOTIONAL),
    ("huge notional", lambda c: c.sign(A, order(size=10**11)), Code.AMOUNT_OUT_OF_RANGE),
    ("insufficient balance", lambda c: c.sign(B, order(is_buy=False)), Code.INSUFFICIENT_BALANCE),
    ("insufficient margin", lambda c: c.sign(B, order(market=BTC_PERP, size=1_000)), Code.INSUFFICIENT_MARGIN),
    ("alo would cross", lambda c: c.sign(B, order(price=60_000, tif=Tif.ALO)), Code.ALO_WOULD_CROSS),
    ("ioc nothing to match", lambda c: c.sign(B, order(tif=Tif.IOC)), Code.IOC_NO_FILL),
    ("reduce-only would increase", lambda c: c.sign(A, order(market=BTC_PERP, reduce_only=True)), Code.REDUCE_ONLY_WOULD_INCREASE),
    ("unknown order", lambda c: c.sign(A, Cancel(BTC_SPOT, 12345, None)), Code.UNKNOWN_ORDER),
    ("modify unknown order", lambda c: c.sign(A, Modify(BTC_SPOT, 12345, None, 1, 1)), Code.UNKNOWN_ORDER),
    ("cancel_all unknown market", lambda c: c.sign(A, CancelAll(77)), Code.UNKNOWN_MARKET),
    ("deposit not by bridge", lambda c: c.sign(A, Deposit(A.address, USDC, 5)), Code.UNAUTHORIZED),
    ("deposit unknown asset", lambda c: c.sign(BRIDGE, Deposit(A.address, 9, 5)), Code.UNKNOWN_ASSET),
    ("deposit zero", lambda c: c.sign(BRIDGE, Deposit(A.address, USDC, 0)), Code.AMOUNT_OUT_OF_RANGE),
    ("withdraw too much", lambda c: c.sign(A, Withdraw(USDC, 10**12, b"dest")), Code.INSUFFICIENT_BALANCE),
    ("withdraw locked funds", lambda c: c.sign(A, Withdraw(BTC, 10**8, b"dest")), Code.INSUFFICIENT_BALANCE),
    ("withdraw margin in use", lambda c: c.sign(B, Withdraw(USDC, 100_000_000, b"d")), Code.INSUFFICIENT_MARGIN),
    ("withdraw from nobody", lambda c: c.sign(key(40), Withdraw(USDC, 1, b"d")), Code.INSUFFICIENT_BALANCE),
    ("bad signature", lambda c: c.sign(A, order())[:-1] + b"\x00", Code.BAD_SIGNATURE),
    ("wrong chain", lambda c: sign_tx(A, c.time + 5, order(), "other-chain"), Code.BAD_SIGNATURE),
    ("garbage bytes", lambda c: b"\xc1\xff\x00garbage", Code.MALFORMED),
    ("truncated", lambda c: c.sign(A, order())[:40], Code.MALFORMED),
    ("non-canonical int", lambda c: _noncanonical(c), Code.MALFORMED),
    ("unknown action tag", lambda c: _raw_action(c, [99, 1]), Code.UNKNOWN_TX_TYPE),
    ("extra field", lambda c: _raw_action(c, [5, None, 1]), Code.MALFORMED),
    ("wrong type", lambda c: _raw_action(c, [3, 0, "yes", 1, 1, 0, False, None]), Code.MALFORMED),
    ("float price", lambda c: _raw_action(c, [3, 0, True, 1.5, 1, 0, False, None]), Code.MALFORMED),
    ("oversize", lambda c: b"\x00" * 20_000, Code.OVERSIZE),
    ("nonce outside window", lambda c: c.sign(A, order(), nonce=1), Code.NONCE_OUT_OF_WINDOW),
    ("nested batch", lambda c: _raw_action(c, [7, [[7, [[5, None]]]]]), Code.NESTED_BATCH),
    ("batch too large", lambda c: c.sign(A, Batch(tuple(CancelAll(None) for _ in range(65)))), Code.BATCH_TOO_LARGE),
    ("batch of rejections", lambda c: c.sign(A, Batch((order(size=0), Cancel(0, 999, None)))), Code.ZERO_SIZE),
]


def _raw_action(c: Chain, action: list[Any]) -> bytes:
    from state.codec import encode
    from state.keys import DOMAIN_TX, signing_message

    payload = encode(A.pubkey) + encode(c.time + 7) + encode(action)
    return b"\x94" + payload + encode(A.sign(signing_message(DOMAIN_TX, CHAIN_ID, payload)))


def _noncanonical(c: Chain) -> bytes:
    """A validly signed tx whose pubkey uses a bin16 length prefix instead of bin8."""
    from state.codec import encode
    from state.keys import DOMAIN_TX, signing_message

    payload = b"\xc5\x00\x20" + A.pubkey + encode(c.time + 9) + encode([5, None])
    return b"\x94" + payload + encode(A.sign(signing_message(DOMAIN_TX, CHAIN_ID, payload)))


@pytest.mark.parametrize(("name", "make", "code"), CASES, ids=[c[0] for c in CASES])
def test_rejection_has_code_and_changes_nothing(chain: Chain, name: str, make: Callable[[Chain], bytes], code: Code) -> None:
    raw = make(chain)
    before = chain.sm.state_digest()
    receipt = chain.block(raw).receipts[0]
    assert receipt.code == code, receipt
    assert chain.sm.state_digest() == before


def test_replayed_transaction_is_rejected(chain: Chain) -> None:
    raw = chain.sign(A, order(price=40_000, size=3))
    assert chain.block(raw).receipts[0].code == Code.OK
    before = chain.sm.state_digest()
    assert chain.block(raw).receipts[0].code == Code.NONCE_USED
    assert chain.sm.state_digest() == before


def test_nonce_below_the_kept_window_is_rejected(chain: Chain) -> None:
    k = key(50)
    chain.fund(k, USDC, 10**12)
    base = chain.time
    txs = [chain.sign(k, order(price=10_000 + i, size=10), nonce=base + 10 + i) for i in range(100)]
    assert all(r.code == Code.OK for r in chain.block(*txs).receipts)
    assert chain.block(chain.sign(k, order(price=9_999, size=11), nonce=base + 5)).receipts[0].code == Code.NONCE_TOO_LOW
    assert chain.block(chain.sign(k, order(price=9_999, size=11), nonce=base + 500)).receipts[0].code == Code.OK


def test_a_signer_with_no_history_leaves_no_trace(chain: Chain) -> None:
    stranger = PrivateKey(b"\x77" * 32)
    before = chain.sm.state_digest()
    chain.block(chain.sign(stranger, order()))
    assert stranger.address not in chain.ex.accounts
    assert chain.sm.state_digest() == before


def test_partially_valid_batch_applies_the_valid_parts(chain: Chain) -> None:
    r = chain.run(A, Batch((order(price=40_000, size=3), order(size=0), Cancel(BTC_SPOT, 999, None))))
    assert r.code == Code.OK
    assert [x.code for x in r.results] == [Code.OK, Code.ZERO_SIZE, Code.UNKNOWN_ORDER]
