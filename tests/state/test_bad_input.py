"""Every rejection path returns its stable code and changes nothing but the nonce.

"Nothing but the nonce" means: a block holding only the rejected transaction leaves the
same state as an empty block at the same time on a copy of the chain (the per-block steps,
interest, marks and funding samples, run either way), except that a transaction with a
valid signature and a fresh nonce uses that nonce (its signer's nonce record changes), so
its bytes can never be replayed. A transaction that fails decoding, its signature or its
nonce check changes nothing at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from state.errors import Code, TxError
from state.keys import PrivateKey
from state.tx import (
    Batch,
    Borrow,
    Cancel,
    CancelAll,
    Deposit,
    Lend,
    Modify,
    OraclePrices,
    PlaceOrder,
    Repay,
    SetUnwindOrder,
    Tif,
    Transfer,
    Withdraw,
    sign_tx,
)
from tests.harness import (
    BRIDGE,
    BTC,
    BTC_PERP,
    BTC_SPOT,
    CHAIN_ID,
    ETH,
    ETH_PERP,
    ETH_SPOT,
    USDC,
    Chain,
    key,
    make_genesis,
)

NONCE_CODES = {Code.NONCE_USED, Code.NONCE_TOO_LOW, Code.NONCE_OUT_OF_WINDOW}
A, B, C, V = key(10), key(11), key(12), key(13)


@pytest.fixture
def chain() -> Chain:
    c = Chain(genesis=make_genesis(validators=[{"name": "v0", "pubkey": V.pubkey.hex(), "power": 1}]))
    c.fund(A, USDC, 100_000_000)  # $100
    c.fund(A, BTC, 10**8)
    c.fund(B, USDC, 100_000_000)
    c.fund(C, BTC, 10 * 10**8)
    c.order(A, BTC_SPOT, False, 60_000, 2)
    c.order(B, BTC_PERP, True, 50_000, 2)
    assert c.result(B, Lend(USDC, False)).code == Code.OK  # B's USDC stays out of the pool
    assert c.result(C, Borrow(USDC, 75_000_000)).code == Code.OK  # A's $100 in the pool is 75% lent
    assert c.result(C, Withdraw(USDC, 75_000_000, b"out")).code == Code.OK  # nothing idle left
    return c


def order(market: int = BTC_SPOT, is_buy: bool = True, price: int = 50_000, size: int = 2, tif: Tif = Tif.GTC,
          reduce_only: bool = False) -> PlaceOrder:
    return PlaceOrder(market, is_buy, price, size, tif, reduce_only, None)


CASES: list[tuple[str, Callable[[Chain], bytes], Code]] = [
    ("unknown market", lambda c: c.sign(A, order(market=99)), Code.UNKNOWN_MARKET),
    ("zero size", lambda c: c.sign(A, order(size=0)), Code.ZERO_SIZE),
    ("zero price", lambda c: c.sign(A, order(price=0)), Code.PRICE_OUT_OF_RANGE),
    ("price above range", lambda c: c.sign(A, order(price=10**13)), Code.PRICE_OUT_OF_RANGE),
    ("price outside the band", lambda c: c.sign(A, order(price=47_999)), Code.PRICE_OUT_OF_BAND),
    ("below min notional", lambda c: c.sign(A, order(size=1)), Code.BELOW_MIN_NOTIONAL),
    ("huge notional", lambda c: c.sign(A, order(size=10**11)), Code.AMOUNT_OUT_OF_RANGE),
    # B holds $100 and no BTC: selling 0.2 BTC ($10k) short would borrow far beyond its margin
    ("insufficient balance", lambda c: c.sign(B, order(is_buy=False, size=2_000)), Code.INSUFFICIENT_BALANCE),
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
    ("withdraw lent-out supply", lambda c: c.sign(A, Withdraw(USDC, 100_000_000, b"d")), Code.POOL_ILLIQUID),
    ("transfer too much", lambda c: c.sign(A, Transfer(B.address, USDC, 10**12)), Code.INSUFFICIENT_BALANCE),
    ("transfer to oneself", lambda c: c.sign(A, Transfer(A.address, USDC, 1)), Code.MALFORMED),
    ("transfer margin in use", lambda c: c.sign(B, Transfer(C.address, USDC, 100_000_000)), Code.INSUFFICIENT_MARGIN),
    ("short sale with an empty pool", lambda c: c.sign(C, order(market=ETH_SPOT, is_buy=False, price=30_000, size=10)),
     Code.POOL_ILLIQUID),
    ("borrow above the utilization cap", lambda c: c.sign(C, Borrow(USDC, 25_000_000)), Code.UTILIZATION_CAP),
    ("borrow beyond the pool", lambda c: c.sign(C, Borrow(USDC, 30_000_000)), Code.POOL_ILLIQUID),
    # 10 of the pool's 11 BTC: the rate jumps to ~255%/year and 3 days of it exceed B's $100
    ("borrow beyond margin", lambda c: c.sign(B, Borrow(BTC, 10 * 10**8)), Code.INSUFFICIENT_MARGIN),
    ("borrow zero", lambda c: c.sign(C, Borrow(USDC, 0)), Code.AMOUNT_OUT_OF_RANGE),
    ("borrow unknown asset", lambda c: c.sign(C, Borrow(9, 1)), Code.UNKNOWN_ASSET),
    ("borrow by nobody", lambda c: c.sign(key(41), Borrow(USDC, 1)), Code.INSUFFICIENT_MARGIN),
    ("repay without debt", lambda c: c.sign(A, Repay(USDC, 1)), Code.AMOUNT_OUT_OF_RANGE),
    ("repay with nothing idle", lambda c: c.sign(C, Repay(USDC, 1)), Code.INSUFFICIENT_BALANCE),
    ("repay zero", lambda c: c.sign(C, Repay(USDC, 0)), Code.AMOUNT_OUT_OF_RANGE),
    ("lend off beyond pool cash", lambda c: c.sign(A, Lend(USDC, False)), Code.POOL_ILLIQUID),
    ("lend unknown asset", lambda c: c.sign(A, Lend(7, False)), Code.UNKNOWN_ASSET),
    ("oracle by a non-validator", lambda c: c.sign(A, OraclePrices(((BTC, 6 * 10**10),))), Code.NOT_A_VALIDATOR),
    ("oracle zero price", lambda c: c.sign(V, OraclePrices(((BTC, 0),))), Code.PRICE_OUT_OF_RANGE),
    ("oracle for the collateral", lambda c: c.sign(V, OraclePrices(((USDC, 10**6),))), Code.UNKNOWN_ASSET),
    ("oracle unknown asset", lambda c: c.sign(V, OraclePrices(((9, 10**6),))), Code.UNKNOWN_ASSET),
    ("oracle asset twice", lambda c: c.sign(V, OraclePrices(((BTC, 1), (BTC, 2)))), Code.MALFORMED),
    ("oracle with no price", lambda c: _raw_action(c, [13, []]), Code.MALFORMED),
    ("unwind unknown market", lambda c: c.sign(A, SetUnwindOrder((BTC_PERP, 42))), Code.UNKNOWN_MARKET),
    ("unwind market twice", lambda c: c.sign(A, SetUnwindOrder((BTC_PERP, BTC_PERP))), Code.MALFORMED),
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
    assert_rejected_without_effect(chain, raw, code)


def assert_rejected_without_effect(chain: Chain, raw: bytes, code: Code) -> None:
    from state.errors import TxError
    from state.records import nonce_key
    from state.tx import decode_tx

    empty = chain.fork()
    receipt = chain.block(raw).receipts[0]
    assert receipt.code == code, receipt
    empty.block()
    before, after = dict(empty.ex.snapshot_records()), dict(chain.ex.snapshot_records())
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    try:
        tx = decode_tx(raw)
        counted = tx.verify_signature(CHAIN_ID) and code not in NONCE_CODES
    except TxError:
        counted = False
    if not counted:  # decoding, signature or nonce failed: the transaction never counted
        assert changed == set()
        return
    assert changed == {nonce_key(tx.signer)}, "a rejection changes nothing but the nonce it used"
    assert tx.nonce in chain.ex.nonces[tx.signer]


NO_PRICE_CASES = [
    ("borrow with no price", lambda c: c.sign(C, Borrow(ETH, 1))),
    ("short sale with no price", lambda c: c.sign(C, order(market=ETH_SPOT, is_buy=False, price=30_000, size=10))),
    ("perp order with no price", lambda c: c.sign(C, order(market=ETH_PERP, is_buy=True, price=30_000, size=10))),
]


@pytest.mark.parametrize(("name", "make"), NO_PRICE_CASES, ids=[c[0] for c in NO_PRICE_CASES])
def test_no_price_rejection_changes_nothing(name: str, make: Callable[[Chain], bytes]) -> None:
    """ETH with neither an initial nor a validator price has no index: no borrow, short
    sale or perp position on it (state/prices.py)."""
    c = Chain(genesis=make_genesis(initial_oracle_prices={"BTC": 60_000_000_000}))
    c.fund(C, BTC, 10 * 10**8)
    c.fund(C, USDC, 100_000_000_000)
    c.fund(A, ETH, 10 * 10**8)  # a lender: the ETH pool is not empty
    assert_rejected_without_effect(c, make(c), Code.STALE_PRICE)


def test_replayed_transaction_is_rejected(chain: Chain) -> None:
    raw = chain.sign(A, order(price=50_000, size=3))
    assert chain.block(raw).receipts[0].code == Code.OK
    assert_rejected_without_effect(chain, raw, Code.NONCE_USED)


def test_nonce_below_the_kept_window_is_rejected(chain: Chain) -> None:
    k = key(50)
    chain.fund(k, USDC, 10**12)
    base = chain.time
    txs = [chain.sign(k, order(price=50_000 + i, size=10), nonce=base + 10 + i) for i in range(100)]
    assert all(r.code == Code.OK for r in chain.block(*txs).receipts)
    assert chain.block(chain.sign(k, order(price=49_999, size=11), nonce=base + 5)).receipts[0].code == Code.NONCE_TOO_LOW
    assert chain.block(chain.sign(k, order(price=49_999, size=11), nonce=base + 500)).receipts[0].code == Code.OK


def test_kept_nonces_record_is_fixed_width_little_endian_and_restores(chain: Chain) -> None:
    """The kept nonces are stored as 8 little-endian bytes each, ascending; a restart reads
    back exactly the window that rejects a stale nonce."""
    from state import nonces, records

    k = key(51)
    chain.fund(k, USDC, 10**12)
    base = chain.time
    chain.block(*[chain.sign(k, order(price=50_000 + i, size=10), nonce=base + 10 + i) for i in range(105)])
    stored = dict(chain.ex.snapshot_records())[records.nonce_key(k.address)]
    assert stored == b"".join((base + 10 + i).to_bytes(8, "little") for i in range(5, 105))
    assert list(nonces.from_bytes(stored)) == list(chain.ex.nonces[k.address])
    restarted = chain.fork()
    assert restarted.block(restarted.sign(k, order(price=49_999, size=11), nonce=base + 14)).receipts[0].code == Code.NONCE_TOO_LOW
    assert restarted.block(restarted.sign(k, order(price=49_999, size=11), nonce=base + 16)).receipts[0].code == Code.NONCE_USED


def test_a_signer_with_no_history_leaves_no_account(chain: Chain) -> None:
    stranger = PrivateKey(b"\x77" * 32)
    assert_rejected_without_effect(chain, chain.sign(stranger, order()), Code.INSUFFICIENT_BALANCE)
    assert stranger.address not in chain.ex.accounts


def test_a_rejected_withdrawal_cannot_be_replayed_once_it_would_succeed(chain: Chain) -> None:
    """The audit's replay: a Withdraw rejected for want of funds, replayed after a deposit."""
    carol = key(52)
    chain.fund(carol, USDC, 100)
    raw = chain.sign(carol, Withdraw(USDC, 500, b"out"))
    assert chain.block(raw).receipts[0].code == Code.INSUFFICIENT_BALANCE
    chain.fund(carol, USDC, 1_000)
    assert chain.block(raw).receipts[0].code == Code.NONCE_USED
    assert chain.balance(carol, USDC) > 1_000  # the 500 never left (pool rounding takes a unit or two)


def test_a_rejected_post_only_cannot_rest_when_replayed(chain: Chain) -> None:
    b, s = key(53), key(54)
    chain.fund(b, USDC, 10**12)
    chain.fund(s, BTC, 10**8)
    assert chain.order(b, BTC_SPOT, True, 50_000, 10).status == "resting"
    raw = chain.sign(s, PlaceOrder(BTC_SPOT, False, 49_000, 10, Tif.ALO, False, None))
    assert chain.block(raw).receipts[0].code == Code.ALO_WOULD_CROSS
    assert chain.run(b, CancelAll(None)).code == Code.OK
    assert chain.block(raw).receipts[0].code == Code.NONCE_USED
    assert not [o for o in chain.ex.books[BTC_SPOT].orders.values() if o.owner == s.address]


def test_a_size_down_modify_keeps_the_minimum_notional(chain: Chain) -> None:
    """A 2-lot order at 55,000 ($11) modified down to 1 lot ($5.50) is refused, as a new
    1-lot order is."""
    assert chain.order(A, BTC_SPOT, True, 55_000, 2).status == "resting"
    oid = max(chain.ex.books[BTC_SPOT].orders)
    assert chain.result(A, Modify(BTC_SPOT, oid, None, 55_000, 1)).code == Code.BELOW_MIN_NOTIONAL
    assert chain.order(A, BTC_SPOT, True, 55_000, 1).code == Code.BELOW_MIN_NOTIONAL
    assert chain.ex.books[BTC_SPOT].orders[oid].size == 2


def test_partially_valid_batch_applies_the_valid_parts(chain: Chain) -> None:
    r = chain.run(A, Batch((order(price=50_000, size=3), order(size=0), Cancel(BTC_SPOT, 999, None))))
    assert r.code == Code.OK
    assert [x.code for x in r.results] == [Code.OK, Code.ZERO_SIZE, Code.UNKNOWN_ORDER]


def test_admission_keeps_unknown_signers_out_except_deposits_and_prices(chain: Chain) -> None:
    """A key the chain has never seen can only be the bridge depositing or a validator
    submitting prices; anything else it sends is refused at admission (it would be rejected
    in a block and, using a nonce, would still cost a record)."""
    stranger = PrivateKey(b"\x78" * 32)
    with pytest.raises(TxError) as err:
        chain.sm.check_tx(chain.sign(stranger, order()))
    assert err.value.code == Code.UNKNOWN_ACCOUNT
    chain.sm.check_tx(chain.sign(BRIDGE, Deposit(stranger.address, USDC, 10**9)))  # the bridge: admitted
    chain.fund(stranger, USDC, 10**12)
    chain.sm.check_tx(chain.sign(stranger, order()))  # once funded, admitted
