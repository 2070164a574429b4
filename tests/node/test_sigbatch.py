"""The batch verifier answers exactly what ``state.keys.verify`` answers, one by one, and
``decode_verified_many`` exactly what ``decode_verified`` does (codes included)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node import sigbatch
from node.mempool import verify_raw
from state.errors import Code, TxError
from state.keys import DOMAIN_TX, PrivateKey, signing_message, verify_each
from state.machine import decode_verified_many
from state.tx import PlaceOrder, SignedTx, Tif, sign_tx

KEYS = [PrivateKey(bytes([i + 1]) * 32) for i in range(4)]
CHAIN = "sigbatch-test"


def _valid(i: int, message: bytes) -> tuple[bytes, bytes, bytes]:
    key = KEYS[i % len(KEYS)]
    return key.sign(message), message, key.pubkey


def _flip(data: bytes, bit: int) -> bytes:
    if not data:
        return data
    i = (bit // 8) % len(data)
    return data[:i] + bytes([data[i] ^ (1 << (bit % 8))]) + data[i + 1:]


mutations = st.sampled_from(["none", "sig", "msg", "pk", "short_sig", "long_pk", "swap_key", "zero_pk"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.binary(max_size=200), mutations, st.integers(0, 4000)),
                max_size=40))
def test_batch_answers_equal_one_by_one(cases: list[tuple[int, bytes, str, int]]) -> None:
    items = []
    for i, message, mutation, bit in cases:
        sig, msg, pk = _valid(i, message)
        if mutation == "sig":
            sig = _flip(sig, bit)
        elif mutation == "msg":
            msg = _flip(msg, bit) if msg else b"x"
        elif mutation == "pk":
            pk = _flip(pk, bit)
        elif mutation == "short_sig":
            sig = sig[:63]
        elif mutation == "long_pk":
            pk = pk + b"\x00"
        elif mutation == "swap_key":
            pk = KEYS[(i + 1) % len(KEYS)].pubkey
        elif mutation == "zero_pk":
            pk = bytes(32)
        items.append((sig, msg, pk))
    assert sigbatch.verify_many(items) == verify_each(items)


def test_valid_and_invalid_in_one_batch() -> None:
    good = [_valid(i, os.urandom(100)) for i in range(100)]
    bad = [(s, m + b"!", p) for s, m, p in good[:50]]
    assert sigbatch.verify_many(good + bad) == [True] * 100 + [False] * 50
    assert sigbatch.verify_many([]) == []


def test_the_native_batch_refuses_malformed_items_instead_of_crashing() -> None:
    """The C boundary must be memory-safe whatever it is handed (the node only ever hands it
    ``SignedTx.signature_item`` tuples of bytes, which the decoder has length-checked)."""
    if sigbatch.backend() != "batch":
        pytest.skip("node._sigbatch not built on this machine (no C compiler at install)")
    sig, msg, pk = _valid(0, b"hello")
    items = [(sig, msg, pk), (sig, msg), "not a tuple", (bytearray(sig), msg, pk), (sig, msg, pk, b""), (sig, 5, pk),
             (sig[:10], msg, pk), (sig, msg, pk[:31])]
    assert sigbatch.verify_many(items) == [True] + [False] * 7  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sigbatch.verify_many(5)  # type: ignore[arg-type]


def test_native_backend_is_built_where_a_compiler_is() -> None:
    """CI and the development machines have a compiler: the batch verifier must be built
    there (the fallback is for installs without one)."""
    if sigbatch.backend() != "batch":
        pytest.skip("node._sigbatch not built on this machine (no C compiler at install)")
    assert sigbatch.backend() == "batch"


def _order_tx(key: PrivateKey, nonce: int) -> bytes:
    return sign_tx(key, nonce, PlaceOrder(0, True, 100, 1, Tif.GTC, False, None), CHAIN)


def test_decode_verified_many_matches_decode_verified() -> None:
    good = [_order_tx(KEYS[i % 4], 1_000 + i) for i in range(10)]
    forged = good[3][:-10] + bytes(10)  # signature bytes changed
    other_chain = sign_tx(KEYS[0], 5, PlaceOrder(0, True, 100, 1, Tif.GTC, False, None), "another-chain")
    raws = [*good, forged, b"\x93garbage", other_chain, b"", good[0]]
    batch = decode_verified_many(raws, CHAIN, sigbatch.verify_many)
    single = [verify_raw(r, CHAIN) for r in raws]
    assert len(batch) == len(single) == len(raws)
    for b, s in zip(batch, single, strict=True):
        assert type(b) is type(s)
        if isinstance(b, TxError):
            assert isinstance(s, TxError) and (b.code, b.message) == (s.code, s.message)
        else:
            assert isinstance(b, SignedTx) and isinstance(s, SignedTx) and b.hash == s.hash
    codes = [b.code if isinstance(b, TxError) else Code.OK for b in batch]
    assert codes[10] == Code.BAD_SIGNATURE and codes[12] == Code.BAD_SIGNATURE
    assert codes[11] == Code.MALFORMED and codes[:10] == [Code.OK] * 10 and codes[-1] == Code.OK


def test_signature_item_is_what_verify_signature_checks() -> None:
    raw = _order_tx(KEYS[1], 77)
    tx = verify_raw(raw, CHAIN)
    assert isinstance(tx, SignedTx)
    sig, msg, pk = tx.signature_item(CHAIN)
    assert (sig, pk) == (tx.signature, tx.pubkey)
    assert msg == signing_message(DOMAIN_TX, CHAIN, tx.sign_payload())
    assert verify_each([(sig, msg, pk)]) == [tx.verify_signature(CHAIN)] == [True]
