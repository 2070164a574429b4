"""Exact ``a * b // d`` (and the integer square root) in word-sized steps.

Why this module exists: values here are micro-USDC, prices micro-USDC per whole unit and
lending indexes 18-decimal fixed point, so a product such as ``balance * price`` or
``shares * index`` passes 2**62 long before the result does (one BTC at $60,000 is
``10**8 * 6 * 10**10``; any share count above 4 times an index near 10**18). In the compiled
build (mypyc) an int below 2**62 is a machine word, and an operation whose result leaves
that range falls back to an arbitrary-precision object: a multiply and a divide that way
cost ~2,000 instructions, where the steps below cost a few dozen. They took a fifth of
``apply_block``'s instructions.

Each public function takes the steps (its ``*_words`` twin) in the compiled build and the
plain formula when the module runs interpreted (``WORDS``). The steps are an exact identity
over all Python ints (floor division throughout), so the result never depends on the build
or the magnitudes: inputs beyond the ranges noted simply take the arbitrary-precision path
inside the steps. ``tests/state/test_muldiv.py`` checks each against the plain formula.
"""

from __future__ import annotations

from math import isqrt as _math_isqrt
from types import FunctionType
from typing import Final

ONE: Final = 10**18  # the lending indexes' fixed point (state/lending.py)
HALF: Final = 10**9  # sqrt(ONE): the split for index products


def _probe() -> None:
    """Only its type matters: a plain function when this module runs interpreted."""


# Interpreted, CPython's ints multiply at any size in C and each extra step is a bytecode, so
# the plain formula is the fast one there (the steps made the interpreted build ~17% slower).
# Either way the result is the same number.
WORDS: Final = type(_probe) is not FunctionType


def mul_div(a: int, b: int, d: int) -> int:
    """``a * b // d`` for ``d > 0``."""
    return mul_div_words(a, b, d) if WORDS else a * b // d


def mul_div_square(a: int, b: int, s: int) -> int:
    """``a * b // s**2`` for ``s > 0``."""
    return mul_div_square_words(a, b, s) if WORDS else a * b // (s * s)


def mul_one(a: int, index: int) -> int:
    """``a * index // ONE``: shares times a lending index."""
    return mul_one_words(a, index) if WORDS else a * index // ONE


def mul_one_ceil(a: int, index: int) -> int:
    """``ceil(a * index / ONE)``."""
    return -mul_one(-a, index)


def div_one(a: int, index: int) -> int:
    """``a * ONE // index`` (an amount in shares). An index that never moved (a pool that
    has not lent) is exactly ONE, and the quotient is ``a``; otherwise the plain formula."""
    if index == ONE:
        return a
    return a * ONE // index


def isqrt(n: int) -> int:
    """``math.isqrt(n)`` for ``n >= 0``."""
    return isqrt_words(n) if WORDS else _math_isqrt(n)


# ----------------------------------------------------------------- the word-sized steps
def mul_div_words(a: int, b: int, d: int) -> int:
    """With ``a = q*d + r`` and ``b = bq*d + br`` (0 <= r, br < d), ``a*b = (q*b + r*bq)*d
    + r*br``, so the quotient is ``q*b + r*bq + r*br // d``. Every step is a word when
    |q*b| < 2**61 and d**2 < 2**61 (a balance valued at a price over a decimal unit up to
    10**9)."""
    q = a // d
    r = a - q * d
    bq = b // d
    return q * b + r * bq + r * (b - bq * d) // d


def mul_div_square_words(a: int, b: int, s: int) -> int:
    """With ``a = q*s + r``, ``a * b // s**2`` is ``(q*b + r*b // s) // s`` (nested floors of
    integers). Words while |a * b| / s and s * b are below 2**61, for example a remainder
    below 10**12 times a root below 10**9 with s = 10**6."""
    q = a // s
    return (q * b + (a - q * s) * b // s) // s


def mul_one_words(a: int, index: int) -> int:
    """With both split at 10**9, ``a*index = aq*iq*ONE + (aq*ir + ar*iq)*10**9 + ar*ir``, and
    the quotient is ``aq*iq + (aq*ir + ar*iq + ar*ir // 10**9) // 10**9``. Words while the
    index is below about 4 * ONE and |a| below about 10**18."""
    aq = a // HALF
    ar = a - aq * HALF
    iq = index // HALF
    ir = index - iq * HALF
    return aq * iq + (aq * ir + ar * iq + ar * ir // HALF) // HALF


def isqrt_words(n: int) -> int:
    """Newton's iteration from a power of two at or above the root (it decreases to the
    root and stops there). Compiled, calling ``math.isqrt`` boxes the argument, looks the
    function up in the module's dict and converts back, ~550 instructions per call on the
    size add-on's path, several times these few divisions."""
    if n < 2:
        if n < 0:
            raise ValueError("isqrt() argument must be nonnegative")
        return n
    x = 1 << ((n.bit_length() + 1) >> 1)
    while True:
        y = (x + n // x) >> 1
        if y >= x:
            return x
        x = y
