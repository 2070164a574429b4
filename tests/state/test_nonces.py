"""The kept-nonce window against a plain model of Hyperliquid's rule."""

from __future__ import annotations

from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

from state import nonces
from state.errors import Code, TxError

T = 1_700_000_000_000
PAST, FUTURE = 2 * 86_400_000, 86_400_000


def model_verdict(used: list[int], nonce: int) -> Code:
    """The rule as stated: unused, above the smallest of the 100 kept once 100 are kept."""
    kept = sorted(used)[-nonces.KEEP:]
    if len(kept) >= nonces.KEEP and nonce <= kept[0]:
        return Code.NONCE_TOO_LOW
    if nonce in kept:
        return Code.NONCE_USED
    return Code.OK


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 400), st.sampled_from([0, 1, 399, 400])), min_size=1, max_size=260))
def test_window_matches_the_model(offsets: list[int]) -> None:
    """Mostly increasing streams with repeats and stragglers take both the append fast path
    and the insertion path; every verdict and the kept window match the model. Recording
    makes a new array and leaves the old one as it was (admission may be reading it)."""
    kept: array[int] | None = None
    used: list[int] = []
    for i, off in enumerate(offsets):
        nonce = T + (i * 3 + off if off % 7 else off)
        try:
            nonces.must_accept(kept or [], nonce, T, PAST, FUTURE)
            got = Code.OK
        except TxError as err:
            got = err.code
        assert got == model_verdict(used, nonce)
        if got == Code.OK:
            before = None if kept is None else list(kept)
            old, kept = kept, nonces.recorded(kept, nonce)
            assert kept is not old and (old is None or list(old) == before)
            used.append(nonce)
        assert kept is not None and list(kept) == sorted(used)[-nonces.KEEP:]
        assert list(nonces.from_bytes(nonces.to_bytes(kept))) == list(kept)
