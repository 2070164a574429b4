"""The batch verifier answers exactly what ``state.keys.verify`` answers, one by one (the
chain's rule, state/sigrule.py), and ``decode_verified_many`` exactly what
``decode_verified`` does (codes included)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node import sigbatch
from node.mempool import verify_raw
from state.errors import Code, TxError
from state.keys import DOMAIN_TX, PrivateKey, signing_message, valid_prefix, verify_each
from state.machine import decode_verified_many
from state.tx import PlaceOrder, SignedTx, Tif, sign_tx
from tests.state.sigvectors import vectors

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


EDGES = vectors(7) + vectors(8)


@pytest.mark.parametrize("edge", EDGES, ids=lambda v: v.name)
def test_edge_vectors_alone_and_among_honest_signatures(edge) -> None:  # type: ignore[no-untyped-def]
    """Alone (the single-signature equation) and at each position of a batch of honest
    signatures (the batch equation, then the per-signature fallback when it fails)."""
    item = (edge.signature, edge.message, edge.pubkey)
    assert sigbatch.verify_many([item]) == [edge.rule]
    honest = [_valid(i, b"m%d" % i) for i in range(9)]
    for position in (0, 4, 9):
        batch = [*honest[:position], item, *honest[position:]]
        assert sigbatch.verify_many(batch) == [True] * position + [edge.rule] + [True] * (9 - position)


def test_a_batch_of_signatures_valid_only_after_the_cofactor_passes_whole() -> None:
    """Signatures with a small-order component in A or R, several per batch: the batch
    equation (not the fallback) has to accept them, so their torsion must cancel under [8]."""
    accepted = [(v.signature, v.message, v.pubkey) for v in EDGES if v.rule]
    honest = [_valid(i, os.urandom(40)) for i in range(20)]
    batch = accepted * 3 + honest + accepted
    assert sigbatch.verify_many(batch) == [True] * len(batch) == verify_each(batch)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(range(len(EDGES))), st.integers(0, 3)), max_size=80))
def test_mixed_batches_match_the_rule(picks: list[tuple[int, int]]) -> None:
    items = []
    for edge_index, honest_count in picks:
        edge = EDGES[edge_index]
        items.append((edge.signature, edge.message, edge.pubkey))
        items.extend(_valid(j, b"%d" % j) for j in range(honest_count))
    expected = [EDGES[e].rule for e, _ in picks]
    got = sigbatch.verify_many(items)
    assert got == verify_each(items)
    position = 0
    for (_, honest_count), want in zip(picks, expected, strict=True):
        assert got[position] is want and all(got[position + 1: position + 1 + honest_count])
        position += 1 + honest_count


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(range(len(EDGES))), st.integers(0, 40)), max_size=6))
def test_valid_prefix_is_the_reference_s_with_and_without_the_extension(picks: list[tuple[int, int]]) -> None:
    """``valid_prefix`` (chunks doubling to 64 with the extension; one at a time, the rule's
    answers cached, without) answers ``state.keys.valid_prefix``: the first invalid item."""
    items = []
    for edge_index, honest_count in picks:
        items.extend(_valid(j, b"p%d" % j) for j in range(honest_count))
        edge = EDGES[edge_index]
        items.append((edge.signature, edge.message, edge.pubkey))
    want = valid_prefix(items)
    assert want == next((i for i, ok in enumerate(verify_each(items)) if not ok), len(items))
    assert sigbatch.valid_prefix(items) == want
    native = sigbatch._NATIVE
    sigbatch._NATIVE = None
    try:
        assert sigbatch.valid_prefix(items) == want
        assert sigbatch.valid_prefix(items) == want  # the rule's cached answers
    finally:
        sigbatch._NATIVE = native


def test_batches_longer_than_one_multiplication() -> None:
    """The native verifier checks 64 signatures per multi-scalar multiplication: a bad
    one in the second chunk must not affect the first or the third."""
    items = [_valid(i, b"long %d" % i) for i in range(200)]
    items[100] = (items[100][0], b"changed", items[100][2])
    expected = [True] * 200
    expected[100] = False
    assert sigbatch.verify_many(items) == expected


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
