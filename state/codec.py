"""Canonical msgpack encoding shared by transactions, blocks, votes and state records.

Why canonical: two honest nodes must hash the same bytes for the same object, and a
transaction must have exactly one valid encoding so that its hash (used for replay
protection, the signature cache and RPC look-ups) cannot be malleated. We get that by
encoding only arrays, ints, bools, None, str and bytes (no maps, no floats, no ext types)
and by rejecting any input whose re-encoding differs from the bytes received: msgpack
always picks the shortest form for ints and lengths, so the round trip is the proof.
"""

from __future__ import annotations

import threading
from typing import Any, Final

import msgpack

from state.errors import Code, TxError

MAX_U64: Final = (1 << 64) - 1
MAX_I64: Final = (1 << 63) - 1
MIN_I64: Final = -(1 << 63)

_local = threading.local()


def _reject_ext(code: int, data: bytes) -> Any:
    raise ValueError("ext types are not part of the bookchain encoding")


def _reject_map(pairs: list[tuple[Any, Any]]) -> Any:
    raise ValueError("maps are not part of the canonical encoding")


def new_packer() -> msgpack.Packer:
    """A Packer with the canonical options: the one place they are set (``encode``'s
    per-thread Packer and a block's record encoder both come from here)."""
    return msgpack.Packer(use_bin_type=True)


def encode(obj: Any) -> bytes:
    """Encode arrays/ints/bytes/str/bool/None; the one encoding every node agrees on.

    One reused Packer per thread: building a Packer per call costs about three times as
    much as packing a transaction, and a Packer is not thread-safe (transactions are
    decoded, and so re-encoded, on the verification threads)."""
    try:
        packer = _local.packer
    except AttributeError:
        packer = _local.packer = new_packer()
    try:
        out: bytes = packer.pack(obj)
    except Exception:
        del _local.packer  # never reuse a Packer that failed half-way through a value
        raise
    return out


def decode(data: bytes, *, max_bytes: int, allow_maps: bool = False) -> Any:
    """Decode ``data`` strictly, raising ``TxError(MALFORMED)`` on anything non-canonical.

    ``allow_maps`` is only for internal records (never for signed payloads): map key order
    is not normalised, so maps cannot be canonical.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TxError(Code.MALFORMED, "payload is not bytes")
    if len(data) > max_bytes:
        raise TxError(Code.OVERSIZE, f"payload of {len(data)} bytes exceeds {max_bytes}")
    if type(data) is not bytes:
        data = bytes(data)
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            ext_hook=_reject_ext,
            object_pairs_hook=None if allow_maps else _reject_map,
        )
    except TxError:
        raise
    except Exception as exc:  # msgpack raises many types on garbage; all mean "malformed"
        raise TxError(Code.MALFORMED, f"undecodable msgpack: {type(exc).__name__}") from None
    if not allow_maps:
        try:
            again = encode(obj)
        except Exception:
            raise TxError(Code.MALFORMED, "unencodable value") from None
        if again != data:
            raise TxError(Code.MALFORMED, "non-canonical encoding")
    return obj


# ----------------------------------------------------------------------------- field checks
# Small, fast validators used by the schema-driven decoders of transactions and messages.


def must_uint(value: Any, name: str, *, hi: int = MAX_I64) -> int:
    if type(value) is not int or value < 0 or value > hi:
        raise TxError(Code.MALFORMED, f"{name} must be an integer in [0, {hi}]")
    return value


def must_int(value: Any, name: str) -> int:
    if type(value) is not int or value < MIN_I64 or value > MAX_I64:
        raise TxError(Code.MALFORMED, f"{name} must be a 64-bit integer")
    return value


def must_bool(value: Any, name: str) -> bool:
    if type(value) is not bool:
        raise TxError(Code.MALFORMED, f"{name} must be a bool")
    return value


def must_bytes(value: Any, name: str, length: int | None = None, *, max_len: int = 1 << 20) -> bytes:
    if type(value) is not bytes:
        raise TxError(Code.MALFORMED, f"{name} must be bytes")
    if length is not None and len(value) != length:
        raise TxError(Code.MALFORMED, f"{name} must be {length} bytes")
    if len(value) > max_len:
        raise TxError(Code.MALFORMED, f"{name} is longer than {max_len} bytes")
    return value


def must_list(value: Any, name: str, *, length: int | None = None, max_len: int = 1 << 16) -> list[Any]:
    if type(value) is not list:
        raise TxError(Code.MALFORMED, f"{name} must be an array")
    if length is not None and len(value) != length:
        raise TxError(Code.MALFORMED, f"{name} must have {length} elements, got {len(value)}")
    if len(value) > max_len:
        raise TxError(Code.MALFORMED, f"{name} has more than {max_len} elements")
    return value
