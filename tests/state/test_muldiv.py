"""The word-sized steps of state/muldiv.py (and risk.shock_loss_words) equal the plain
formulas for every int: the compiled build takes them, and its speed must never change a
result. The steps are called directly, so they are checked in either build."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from state import muldiv, risk
from state.build import build_name
from state.muldiv import (
    ONE,
    div_one,
    isqrt,
    isqrt_words,
    mul_div,
    mul_div_square,
    mul_div_square_words,
    mul_div_words,
    mul_one,
    mul_one_ceil,
    mul_one_words,
)

# magnitudes around and far beyond 2**62, both signs
anyint = st.one_of(st.integers(-(10**6), 10**6), st.integers(-(2**70), 2**70), st.integers(-(10**40), 10**40))
positive = st.one_of(st.integers(1, 10**9), st.integers(1, 2**70))
index = st.one_of(st.just(ONE), st.integers(ONE, 5 * ONE), st.integers(1, 10**30))


@given(anyint, anyint, positive)
def test_mul_div_is_the_floor_of_the_product(a: int, b: int, d: int) -> None:
    assert mul_div_words(a, b, d) == mul_div(a, b, d) == a * b // d


@given(anyint, anyint, positive)
def test_mul_div_square_is_the_floor_over_the_square(a: int, b: int, s: int) -> None:
    assert mul_div_square_words(a, b, s) == mul_div_square(a, b, s) == a * b // (s * s)


@given(anyint, index)
def test_index_products(a: int, idx: int) -> None:
    assert mul_one_words(a, idx) == mul_one(a, idx) == a * idx // ONE
    assert mul_one_ceil(a, idx) == -(-a * idx // ONE)
    assert div_one(a, idx) == a * ONE // idx


@given(st.integers(0, 2 * 10**6), anyint, st.integers(0, 2 * 10**6), anyint)
def test_shock_loss_is_the_scenario_loss_of_the_sum(shock: int, pr: int, cut: int, sr: int) -> None:
    expected = risk.scenario_loss(shock * pr + cut * sr)
    assert risk.shock_loss_words(shock, pr, cut, sr) == risk.shock_loss(shock, pr, cut, sr) == expected


@given(st.one_of(st.integers(0, 10**6), st.integers(0, 2**62), st.integers(0, 10**60)))
def test_isqrt_is_maths(n: int) -> None:
    assert isqrt_words(n) == isqrt(n) == math.isqrt(n)


def test_isqrt_around_squares() -> None:
    for r in (1, 2, 3, 10**6, 2**31 - 1, 2**31, 3_037_000_499):
        for n in (r * r - 1, r * r, r * r + 1, (r + 1) ** 2 - 1):
            assert isqrt_words(n) == isqrt(n) == math.isqrt(n)
    with pytest.raises(ValueError):
        isqrt(-1)


def test_the_compiled_build_takes_the_steps() -> None:
    """Interpreted, the plain formulas are faster (CPython multiplies big ints in C; each
    extra step is bytecode); compiled, the steps are (they stay in machine words)."""
    assert (build_name() == "mypyc") == muldiv.WORDS


def test_named_cases() -> None:
    btc, px = 10**8, 60_000 * 10**6  # one BTC at $60,000: the product passes 2**62
    assert risk.value_of(btc, px, 10**8) == 60_000 * 10**6
    assert risk.value_of(-1, px, 10**8) == -600  # a debt's value rounds away from zero
    assert risk.value_of(1, 99, 100) == 0  # a credit's rounds down
    assert mul_one(10**12, ONE + 1) == 10**12  # 10**12 * (1 + 1e-18), floored
    assert mul_one_ceil(10**12, ONE + 1) == 10**12 + 1
    assert risk.shock_loss(50_000, 10**15, 50_000, -(10**15)) == 0  # a perfect offset loses nothing
    assert risk.shock_loss(50_000, 1, 0, 0) == 1  # any loss rounds up to a whole unit
