"""The canonical codec: one encoding per value, whatever thread encodes it.

``codec.encode`` reuses one msgpack Packer per thread (transactions are decoded, and so
re-encoded for the canonical check, on the verification threads), so these tests pin that
the reused Packer gives exactly ``msgpack.packb``'s bytes, also after a failed pack, and
that decoding a signed transaction derives the same signer as ``address_of``.
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from state.codec import decode, encode
from state.errors import Code, TxError
from state.keys import PrivateKey, address_of
from state.tx import PlaceOrder, Tif, decode_tx, sign_tx

values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1)
    | st.binary(max_size=40) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=6),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_encode_is_packb_and_decode_round_trips(value: Any) -> None:
    raw = encode(value)
    assert raw == msgpack.packb(value, use_bin_type=True)
    assert decode(raw, max_bytes=1 << 16) == value
    assert decode(bytearray(raw), max_bytes=1 << 16) == value


def test_a_failed_pack_leaves_the_next_encoding_clean() -> None:
    with pytest.raises(TypeError):
        encode([1, 2, object()])
    assert encode([1, 2, 3]) == msgpack.packb([1, 2, 3])
    with pytest.raises(TxError) as err:
        decode(msgpack.packb({1: 2}), max_bytes=100)
    assert err.value.code == Code.MALFORMED
    assert encode([b"x", "y"]) == msgpack.packb([b"x", "y"], use_bin_type=True)


def test_threads_encoding_at_once_each_get_their_own_bytes() -> None:
    items = [[i, b"k" * (i % 50), "s" * (i % 7), [i, -i, None, True]] for i in range(2000)]
    expected = [msgpack.packb(v, use_bin_type=True) for v in items]
    failures: list[int] = []

    def work(offset: int) -> None:
        for n in range(3):
            for i in range(offset % 2, len(items), 1 + n % 2):
                if encode(items[i]) != expected[i]:
                    failures.append(i)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_decoded_signer_is_the_address_of_the_key_for_every_signer() -> None:
    keys = [PrivateKey(bytes([i]) * 32) for i in range(1, 40)]
    for k in keys + keys:  # the second pass is served from the pubkey -> address cache
        raw = sign_tx(k, 1_700_000_000_000, PlaceOrder(0, True, 100, 1, Tif.ALO, False, None), "c")
        tx = decode_tx(raw)
        assert tx.signer == address_of(k.pubkey) == k.address
        assert tx.action.tif is Tif.ALO
