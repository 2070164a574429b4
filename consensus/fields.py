"""Field validators and size limits for consensus messages, on top of ``state.codec``.

Why a separate module: every consensus decoder needs the same few checks (a 32-byte hash,
a bounded round number, a short chain id) and the same limits, and a single place for them
keeps the decoders short and the limits consistent between the encoder and the decoder.
"""

from __future__ import annotations

from typing import Any

from state.codec import MAX_I64, encode, must_bytes, must_int, must_uint
from state.errors import Code, TxError
from state.keys import PUBKEY_LEN, SIG_LEN

HASH_LEN = 32
#: Rounds are bounded so that ``base + round * delta`` timeouts and tallies stay small.
MAX_ROUND = (1 << 31) - 1
#: Heights fit an unsigned 63-bit integer (the codec's default ``must_uint`` bound).
MAX_CHAIN_ID_LEN = 64
#: One transaction inside a block; the mempool enforces a much smaller limit.
MAX_TX_BYTES = 1 << 20
#: A block holds at most this many transactions (10,000 of ~150 bytes is the design point).
MAX_BLOCK_TXS = 1 << 16
#: Upper bound of an encoded proposal (it carries the full block).
MAX_PROPOSAL_BYTES = (4 << 20) + 4096
#: The most a proposal's encoding holds besides its block: its array header and its height,
#: round, pol_round, proposer and signature at their widest (a round needs 1 byte below 128
#: and 5 at ``MAX_ROUND``), measured with the codec itself.
PROPOSAL_FIELDS_MAX_BYTES = len(encode([MAX_I64, MAX_ROUND, MAX_ROUND, None, bytes(PUBKEY_LEN), bytes(SIG_LEN)])) - len(
    encode(None))
#: Upper bound of an encoded block that is valid (``ConsensusCore._header_valid``): one
#: that leaves room for the widest proposal fields, so a validator that locked on it can
#: re-propose it at any round and its proposal still decodes at every peer. A block that
#: filled ``MAX_PROPOSAL_BYTES`` in a round-0 proposal grew past it when re-proposed at
#: round 128 or later, and peers counted the honest re-proposer's frame as malformed.
MAX_BLOCK_BYTES = MAX_PROPOSAL_BYTES - PROPOSAL_FIELDS_MAX_BYTES
#: A vote is ~150 bytes; anything much larger is garbage.
MAX_VOTE_BYTES = 512
#: Upper bound of validators in a set, and so of precommits in a certificate.
MAX_VALIDATORS = 10_000
MAX_CERTIFICATE_BYTES = 64 + MAX_VALIDATORS * (PUBKEY_LEN + SIG_LEN + 8)


def must_str(value: Any, name: str, *, max_len: int = MAX_CHAIN_ID_LEN) -> str:
    """A text field of at most ``max_len`` UTF-8 bytes."""
    if type(value) is not str:
        raise TxError(Code.MALFORMED, f"{name} must be a string")
    if len(value.encode()) > max_len:
        raise TxError(Code.MALFORMED, f"{name} is longer than {max_len} bytes")
    return value


def must_hash(value: Any, name: str) -> bytes:
    return must_bytes(value, name, HASH_LEN)


def must_hash_or_empty(value: Any, name: str) -> bytes:
    """A 32-byte hash, or ``b""`` where the protocol means "none" (nil vote, genesis parent)."""
    raw = must_bytes(value, name, max_len=HASH_LEN)
    if len(raw) not in (0, HASH_LEN):
        raise TxError(Code.MALFORMED, f"{name} must be empty or {HASH_LEN} bytes")
    return raw


def must_pubkey(value: Any, name: str) -> bytes:
    return must_bytes(value, name, PUBKEY_LEN)


def must_signature(value: Any, name: str) -> bytes:
    return must_bytes(value, name, SIG_LEN)


def must_round(value: Any, name: str) -> int:
    return must_uint(value, name, hi=MAX_ROUND)


def must_pol_round(value: Any, name: str) -> int:
    """A proof-of-lock round: -1 (none) or a round number."""
    number = must_int(value, name)
    if number < -1 or number > MAX_ROUND:
        raise TxError(Code.MALFORMED, f"{name} must be -1 or a round number")
    return number


def must_height(value: Any, name: str) -> int:
    number = must_uint(value, name)
    if number < 1:
        raise TxError(Code.MALFORMED, f"{name} must be at least 1")
    return number
