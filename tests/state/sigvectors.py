"""Signatures crafted at the edges of the chain's signature rule (state/sigrule.py), for the
rule's tests and the batch verifier's. Each vector says what the rule answers and what
libsodium's cofactorless check answers, so a test can see the two differ where they must."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

from state import sigrule
from state.sigrule import BASE, IDENTITY, L, P, Point, add, encode_point, multiply

assert BASE is not None


@dataclass(frozen=True, slots=True)
class Vector:
    name: str
    pubkey: bytes
    message: bytes
    signature: bytes
    rule: bool  # what the chain's rule answers
    libsodium: bool  # what libsodium's cofactorless verify answers


@cache
def torsion_point_of_order_8() -> Point:
    """A point of order 8: the torsion part [L]Q of a curve point Q outside the prime-order
    subgroup, found by trying small y in order."""
    for y in range(2, 1000):
        q = sigrule.decode_point(y.to_bytes(32, "little"))
        if q is None:
            continue
        t = multiply(L, q)
        if not sigrule.is_identity(multiply(4, t)):
            return t
    raise AssertionError("no order-8 point among small y")


def _k(r: bytes, a: bytes, message: bytes) -> int:
    return int.from_bytes(hashlib.sha512(r + a + message).digest(), "little") % L


def _sign_with(secret: int, nonce: int, a_point: Point, r_point: Point, message: bytes) -> tuple[bytes, bytes]:
    """(public key, signature) with S = nonce + k * secret for the given A and R points."""
    a, r = encode_point(a_point), encode_point(r_point)
    s = (nonce + _k(r, a, message) * secret) % L
    return a, r + s.to_bytes(32, "little")


def vectors(seed: int = 7) -> list[Vector]:
    assert BASE is not None
    secret = int.from_bytes(hashlib.sha512(b"secret%d" % seed).digest(), "little") % L
    nonce = int.from_bytes(hashlib.sha512(b"nonce%d" % seed).digest(), "little") % L
    t8 = torsion_point_of_order_8()
    a0, r0 = multiply(secret, BASE), multiply(nonce, BASE)
    out: list[Vector] = []
    message = b"bookchain edge %d" % seed

    pk, sig = _sign_with(secret, nonce, a0, r0, message)
    out.append(Vector("honest", pk, message, sig, True, True))

    # A with a torsion component: [S]B - [k]A - R = -[k]T, zero only after the cofactor
    # (unless 8 divides k, then both agree; pick the message so it does not).
    for i in range(64):
        m = message + b"/a%d" % i
        pk, sig = _sign_with(secret, nonce, add(a0, t8), r0, m)
        if _k(sig[:32], pk, m) % 8:
            out.append(Vector("torsion_in_A", pk, m, sig, True, False))
            break

    # R with a torsion component: the difference is -T whatever k is.
    pk, sig = _sign_with(secret, nonce, a0, add(r0, t8), message)
    out.append(Vector("torsion_in_R", pk, message, sig, True, False))

    # R off by a prime-order point: [S]B - [k]A - R = -B, invalid under both equations.
    pk, sig = _sign_with(secret, nonce, a0, add(r0, BASE), message)
    out.append(Vector("wrong_R", pk, message, sig, False, False))

    # S + L encodes the same scalar, not canonically.
    pk, sig = _sign_with(secret, nonce, a0, r0, message)
    s = int.from_bytes(sig[32:], "little") + L
    out.append(Vector("S_not_canonical", pk, message, sig[:32] + s.to_bytes(32, "little"), False, False))

    # A of small order: with R = [nonce]B and S = nonce, [S]B - [k]A - R = -[k]A vanishes
    # under the cofactor whatever k is; the rule rejects the key itself.
    small_a = encode_point(t8)
    r_bytes = encode_point(r0)
    out.append(Vector("A_small_order", small_a, message, r_bytes + nonce.to_bytes(32, "little"), False, False))

    # R of small order (the identity), with S = k * secret so the cofactored equation holds.
    identity = encode_point(IDENTITY)
    pk_bytes = encode_point(a0)
    s = _k(identity, pk_bytes, message) * secret % L
    out.append(Vector("R_small_order", pk_bytes, message, identity + s.to_bytes(32, "little"), False, False))

    # A as y + p (non-canonical encoding of a curve point with y < 19).
    for y in range(0, 19):
        if sigrule.decode_point(y.to_bytes(32, "little")) is not None:
            out.append(Vector("A_not_canonical", (y + P).to_bytes(32, "little"), message, sig, False, False))
            break

    # R not on the curve.
    for y in range(2, 1000):
        if sigrule.decode_point(y.to_bytes(32, "little")) is None:
            out.append(Vector("R_not_on_curve", pk, message, y.to_bytes(32, "little") + sig[32:], False, False))
            break

    # x = 0 with the sign bit set: the non-canonical encoding of the identity (y = 1).
    negative_zero = (1 | (1 << 255)).to_bytes(32, "little")
    out.append(Vector("R_negative_zero", pk, message, negative_zero + sig[32:], False, False))
    return out
