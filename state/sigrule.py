"""The chain's signature rule, written out in integers: the reference every verifier is
tested against.

A signature ``R || S`` by public key ``A`` on message ``M`` is valid when

- ``S < L`` (the group order), ``A`` and ``R`` are canonical encodings of curve points
  (``y < p``; the sign bit is not set when ``x = 0``), neither has small order, and
- ``[8]([S]B - [k]A - R) = 0`` with ``k = SHA-512(R || A || M) mod L``.

These are libsodium's encoding checks with RFC 8032's cofactored equation (section 5.1.7
allows either equation). Why cofactored: it is the equation a batch of signatures can be
checked against at once, with one multi-scalar multiplication (node/_edcurve.c), which
costs a node about 2-3x less per signature than one libsodium verification each. Every
signature libsodium accepts satisfies it; the only signatures it adds have a small-order
component in ``A`` or ``R`` that no honest signer produces. A rule that checked batches
against libsodium's cofactorless equation would not be deterministic: a crafted signature
would pass or fail depending on the batch's random weights. CometBFT made the same move
(ZIP-215) for the same reason.

``state.keys.verify`` asks libsodium first (fast, and its yes is this rule's yes) and comes
here only for signatures libsodium rejects; this module is plain Python, a few
milliseconds per signature, and never on a node's hot path when the batch verifier is
built.
"""

from __future__ import annotations

import hashlib
from typing import Final

P: Final = 2**255 - 19
L: Final = 2**252 + 27742317777372353535851937790883648493
D: Final = -121665 * pow(121666, P - 2, P) % P
SQRT_M1: Final = pow(2, (P - 1) // 4, P)

Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T): x = X/Z, y = Y/Z, xy = T/Z

IDENTITY: Final[Point] = (0, 1, 1, 0)


def decode_point(encoding: bytes) -> Point | None:
    """The point a 32-byte encoding names, or None when it is not canonical or not on the
    curve (RFC 8032, 5.1.3)."""
    if len(encoding) != 32:
        return None
    y = int.from_bytes(encoding, "little") & ((1 << 255) - 1)
    sign = encoding[31] >> 7
    if y >= P:
        return None
    u = (y * y - 1) % P
    v = (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    vxx = v * x * x % P
    if vxx != u:
        if vxx != (-u) % P:
            return None
        x = x * SQRT_M1 % P
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


def encode_point(point: Point) -> bytes:
    x1, y1, z1, _ = point
    inverse = pow(z1, P - 2, P)
    x, y = x1 * inverse % P, y1 * inverse % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def add(p: Point, q: Point) -> Point:
    """p + q (RFC 8032, 5.1.4; complete on this curve)."""
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * D * t1 * t2 % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def negate(p: Point) -> Point:
    x, y, z, t = p
    return ((-x) % P, y, z, (-t) % P)


def multiply(k: int, p: Point) -> Point:
    """[k]p for k >= 0, by double-and-add from the top bit."""
    result = IDENTITY
    for bit in bin(k)[2:] if k else "":
        result = add(result, result)
        if bit == "1":
            result = add(result, p)
    return result


def is_identity(p: Point) -> bool:
    x, y, z, _ = p
    return x % P == 0 and (y - z) % P == 0


def has_small_order(p: Point) -> bool:
    return is_identity(multiply(8, p))


BASE: Final = decode_point(bytes([0x58]) + bytes([0x66]) * 31)


def verify(pubkey: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is valid for ``message`` and ``pubkey`` under the rule above."""
    if len(pubkey) != 32 or len(signature) != 64 or BASE is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= L:
        return False
    a = decode_point(pubkey)
    if a is None or has_small_order(a):
        return False
    r = decode_point(signature[:32])
    if r is None or has_small_order(r):
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + pubkey + message).digest(), "little") % L
    difference = add(multiply(s, BASE), negate(add(multiply(k, a), r)))
    return is_identity(multiply(8, difference))
