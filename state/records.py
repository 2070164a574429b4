"""Key layout and record encoding of the state store.

One byte of prefix per record kind keeps kinds in separate, ordered key ranges, so a
restore is one ordered scan and an auditor can read a kind with a prefix iterator.
Values are canonical msgpack arrays (the same codec as transactions).
"""

from __future__ import annotations

from typing import Any

import msgpack

ACCOUNT = b"a"
ORDER = b"o"
NONCE = b"n"
MARKET = b"k"
COUNTERS = b"c"
COUNTERS_KEY = COUNTERS
META_KEY = b"\xffmeta"  # height and app hash of the last commit; not part of the write set


def account_key(address: bytes) -> bytes:
    return ACCOUNT + address


def order_key(oid: int) -> bytes:
    return ORDER + oid.to_bytes(8, "big")


def nonce_key(address: bytes) -> bytes:
    return NONCE + address


def market_key(market_id: int) -> bytes:
    return MARKET + market_id.to_bytes(2, "big")


def parse_key(key: bytes) -> tuple[bytes, bytes]:
    return key[:1], key[1:]


def encode_record(rec: Any) -> bytes:
    out: bytes = msgpack.packb(rec, use_bin_type=True)
    return out


def decode_record(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, use_list=True)
