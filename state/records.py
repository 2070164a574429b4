"""Key layout and record encoding of the state store.

One byte of prefix per record kind keeps kinds in separate, ordered key ranges, so a
restore is one ordered scan and an auditor can read a kind with a prefix iterator.
Values are canonical msgpack arrays (the same codec as transactions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgpack

from state.codec import encode, new_packer

ACCOUNT: Final = b"a"  # address -> balances, positions, lending and unwind settings
ORDER: Final = b"o"  # oid -> resting order
NONCE: Final = b"n"  # address -> kept nonces
MARKET: Final = b"k"  # market id -> last trade, mark, basis EMA, funding index and samples
POOL: Final = b"p"  # asset id -> lending pool (indices, totals), custody, oracle price
ORACLE: Final = b"r"  # asset id + validator index -> last price submission
COUNTERS: Final = b"c"  # order id and priority counters, last block time, funding epoch
WATCH: Final = b"w"  # address -> liquidation-watch arming (state/watch.py)
AGENT: Final = b"g"  # agent address -> [master, valid until (ms, 0: none), approved at (ms), name]
SUB_ACCOUNT: Final = b"u"  # sub-account address -> [master, name]
TRIGGER: Final = b"t"  # oid -> waiting trigger order (state/triggers.py)
OFFENCE: Final = b"e"  # offence height + validator -> [commit height] (state/offences.py)
COUNTERS_KEY: Final = COUNTERS
META_KEY: Final = b"\xffmeta"  # height and app hash of the last commit; not part of the write set


def account_key(address: bytes) -> bytes:
    return ACCOUNT + address


def order_key(oid: int) -> bytes:
    return ORDER + oid.to_bytes(8, "big")


def trigger_key(oid: int) -> bytes:
    return TRIGGER + oid.to_bytes(8, "big")


def nonce_key(address: bytes) -> bytes:
    return NONCE + address


def agent_key(address: bytes) -> bytes:
    return AGENT + address


def sub_account_key(address: bytes) -> bytes:
    return SUB_ACCOUNT + address


def watch_key(address: bytes) -> bytes:
    return WATCH + address


def market_key(market_id: int) -> bytes:
    return MARKET + market_id.to_bytes(2, "big")


def pool_key(asset: int) -> bytes:
    return POOL + asset.to_bytes(2, "big")


def oracle_key(asset: int, validator: int) -> bytes:
    return ORACLE + asset.to_bytes(2, "big") + validator.to_bytes(2, "big")


def offence_key(height: int, validator: bytes) -> bytes:
    """Keyed by the offence's height first: the records a block prunes (one height's) are
    one key range, and the write set's order is (height, validator)."""
    return OFFENCE + height.to_bytes(8, "big") + validator


def parse_key(key: bytes) -> tuple[bytes, bytes]:
    return key[:1], key[1:]


def encode_record(rec: Any) -> bytes:
    """A state record's bytes: the canonical encoding (``codec.encode``)."""
    return encode(rec)


def record_encoder() -> Callable[[Any], bytes]:
    """A private encoder for one batch of records (a block's write set): the same bytes as
    ``encode_record``, without its per-call look-up of the thread's shared Packer. Not to
    be shared between threads (a Packer is not thread-safe)."""
    pack: Callable[[Any], bytes] = new_packer().pack
    return pack


def decode_record(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, use_list=True)
