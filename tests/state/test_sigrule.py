"""The chain's signature rule (state/sigrule.py) against libsodium and at its edges."""

from __future__ import annotations

import hashlib

import nacl.bindings as sodium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.exceptions import BadSignatureError

from state import sigrule
from state.keys import PrivateKey, verify
from tests.state.sigvectors import Vector, torsion_point_of_order_8, vectors


def libsodium_verify(pubkey: bytes, message: bytes, signature: bytes) -> bool:
    try:
        sodium.crypto_sign_open(signature + message, pubkey)
    except (BadSignatureError, ValueError):
        return False
    return True


def test_constants() -> None:
    assert sigrule.D == 37095705934669439343138083508754565189542113879843219016388785533085940283555
    assert sigrule.SQRT_M1 * sigrule.SQRT_M1 % sigrule.P == sigrule.P - 1
    assert sigrule.BASE is not None and sigrule.is_identity(sigrule.multiply(sigrule.L, sigrule.BASE))
    assert sigrule.encode_point(sigrule.BASE) == bytes([0x58]) + bytes([0x66]) * 31
    t8 = torsion_point_of_order_8()
    assert sigrule.has_small_order(t8) and not sigrule.is_identity(sigrule.multiply(4, t8))


@settings(max_examples=15, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(max_size=300))
def test_honest_signatures_are_valid_and_encode_like_libsodium(seed: bytes, message: bytes) -> None:
    key = PrivateKey(seed)
    signature = key.sign(message)
    assert sigrule.verify(key.pubkey, message, signature)
    point = sigrule.decode_point(key.pubkey)
    assert point is not None and sigrule.encode_point(point) == key.pubkey
    forged = signature[:40] + bytes([signature[40] ^ 1]) + signature[41:]
    assert not sigrule.verify(key.pubkey, message, forged)
    assert not sigrule.verify(key.pubkey, message + b"x", signature)


@pytest.mark.parametrize("vector", vectors(), ids=lambda v: v.name)
def test_edge_vectors(vector: Vector) -> None:
    assert sigrule.verify(vector.pubkey, vector.message, vector.signature) is vector.rule
    assert libsodium_verify(vector.pubkey, vector.message, vector.signature) is vector.libsodium
    assert verify(vector.pubkey, vector.message, vector.signature) is vector.rule


def test_vectors_cover_both_kinds_of_difference() -> None:
    names = {v.name for v in vectors() if v.rule and not v.libsodium}
    assert names == {"torsion_in_A", "torsion_in_R"}


def test_wrong_lengths_are_invalid() -> None:
    key = PrivateKey(hashlib.sha256(b"k").digest())
    sig = key.sign(b"m")
    assert not sigrule.verify(key.pubkey[:31], b"m", sig)
    assert not sigrule.verify(key.pubkey, b"m", sig[:63])
    assert sigrule.decode_point(b"\x00" * 31) is None
