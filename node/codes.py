"""The compact form of a block's commit codes, shared by the block store, ``/commits`` and
its clients: receipt codes as big-endian uint16s (every ``state.errors.Code`` fits), next
to the block's tx hashes concatenated (32 bytes each, block order)."""

from __future__ import annotations

import struct

HASH_LEN = 32


def pack_codes(codes: list[int]) -> bytes:
    return struct.pack(f">{len(codes)}H", *codes)


def unpack_codes(blob: bytes) -> tuple[int, ...]:
    return struct.unpack(f">{len(blob) // 2}H", blob)


def split_hashes(blob: bytes) -> list[bytes]:
    return [blob[i: i + HASH_LEN] for i in range(0, len(blob), HASH_LEN)]
