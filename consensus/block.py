"""Blocks and block headers, their canonical encoding and their hash.

Why the hash covers only the header: the header commits to the transactions through
``txs_root``, so votes and proposals sign 32 bytes however large the block is, and a
light client can check a header without downloading the transactions. The header also
carries ``prev_app_hash`` (the state after the previous block), so a commit certificate
for block h certifies the application state after block h-1.

Equivocation evidence (consensus/evidence.py) is an optional third part of the body: opaque
encoded items, like the transactions, committed to by an ``evidence_root`` that the header
carries only when the block has evidence. A block without evidence encodes (and hashes)
exactly as before evidence existed, so every old block still decodes to the same hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from consensus.errors import decoder
from consensus.fields import (
    HASH_LEN,
    MAX_BLOCK_TXS,
    MAX_PROPOSAL_BYTES,
    MAX_TX_BYTES,
    must_hash,
    must_hash_or_empty,
    must_height,
    must_pubkey,
    must_round,
    must_str,
)
from consensus.merkle import txs_root
from state.codec import decode, encode, must_bytes, must_list, must_uint
from state.errors import Code, TxError

HEADER_FIELDS = 8  # a header with evidence has one more: evidence_root
MAX_BLOCK_EVIDENCE = 16  # items; consensus/evidence.py checks each (MAX_EVIDENCE_PER_BLOCK)
MAX_EVIDENCE_ITEM_BYTES = 1040
#: Bytes of a block's encoding besides its items and their bin headers: the header (its
#: decoder's bound) and three array headers of at most 5 bytes.
_FRAMING_BOUND = 1024 + 15


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """What validators sign (through its hash).

    ``round`` is the round in which the block was first proposed: a block re-proposed in a
    later round (the Tendermint "valid value") keeps its original round, proposer and time.
    """

    chain_id: str
    height: int
    round: int
    time_ms: int
    prev_block_hash: bytes
    prev_app_hash: bytes
    txs_root: bytes
    proposer: bytes
    evidence_root: bytes = b""  # Merkle root of the block's evidence; empty when it has none
    _hash: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hashlib.sha256(encode(self.to_list())).digest())

    @property
    def hash(self) -> bytes:
        """sha256 of the canonical header encoding: the block's identity in votes."""
        return self._hash

    def to_list(self) -> list[Any]:
        items = [
            self.chain_id,
            self.height,
            self.round,
            self.time_ms,
            self.prev_block_hash,
            self.prev_app_hash,
            self.txs_root,
            self.proposer,
        ]
        if self.evidence_root:
            items.append(self.evidence_root)
        return items

    @classmethod
    def from_list(cls, obj: Any) -> BlockHeader:
        items = must_list(obj, "header", max_len=HEADER_FIELDS + 1)
        if len(items) < HEADER_FIELDS:
            raise TxError(Code.MALFORMED, f"header has {len(items)} fields, expected {HEADER_FIELDS}")
        # present only when the block has evidence, so absent and empty never both encode it
        evidence_root = must_hash(items[8], "header.evidence_root") if len(items) > HEADER_FIELDS else b""
        height = must_height(items[1], "header.height")
        prev_block_hash = must_hash_or_empty(items[4], "header.prev_block_hash")
        if (height == 1) != (len(prev_block_hash) == 0):
            raise TxError(Code.MALFORMED, "prev_block_hash is empty exactly at height 1")
        return cls(
            chain_id=must_str(items[0], "header.chain_id"),
            height=height,
            round=must_round(items[2], "header.round"),
            time_ms=must_uint(items[3], "header.time_ms"),
            prev_block_hash=prev_block_hash,
            prev_app_hash=must_hash(items[5], "header.prev_app_hash"),
            txs_root=must_hash(items[6], "header.txs_root"),
            proposer=must_pubkey(items[7], "header.proposer"),
            evidence_root=evidence_root,
        )

    def encode(self) -> bytes:
        return encode(self.to_list())

    @classmethod
    @decoder
    def decode(cls, data: bytes) -> BlockHeader:
        return cls.from_list(decode(data, max_bytes=1024))


@dataclass(frozen=True, slots=True)
class Block:
    """A header, its transactions (opaque bytes to consensus; the state machine parses them)
    and its evidence (encoded ``DuplicateVote`` items; consensus checks them)."""

    header: BlockHeader
    txs: tuple[bytes, ...]
    evidence: tuple[bytes, ...] = ()
    _body_ok: bool | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def height(self) -> int:
        return self.header.height

    def body_matches(self) -> bool:
        """The header commits to this body: the transactions' Merkle root, and the evidence's
        (empty exactly when there is none). O(len(txs)) hashing (~0.2 s for 65,536 txs), so
        the answer is kept with the block: the node's driver checks a peer's proposal before
        the core does (node/driver.py), and the second check costs nothing."""
        if self._body_ok is None:
            ok = txs_root(self.txs) == self.header.txs_root and self.header.evidence_root == (
                txs_root(self.evidence) if self.evidence else b"")
            object.__setattr__(self, "_body_ok", ok)
            return ok
        return self._body_ok

    def encodes_within(self, limit: int) -> bool:
        """``len(self.encode()) <= limit``, without encoding a block well under it: an item
        costs at most 5 bytes of framing and the header (with the arrays' headers) at most
        ``_FRAMING_BOUND``, so only a block near ``limit`` is encoded (~5 ms at 4 MB)."""
        bound = (_FRAMING_BOUND + sum(map(len, self.txs)) + 5 * len(self.txs)
                 + sum(map(len, self.evidence)) + 5 * len(self.evidence))
        return bound <= limit or len(self.encode()) <= limit

    def to_list(self) -> list[Any]:
        if self.evidence:
            return [self.header.to_list(), list(self.txs), list(self.evidence)]
        return [self.header.to_list(), list(self.txs)]

    @classmethod
    def from_list(cls, obj: Any) -> Block:
        items = must_list(obj, "block", max_len=3)
        if len(items) < 2:
            raise TxError(Code.MALFORMED, "block must be [header, txs] or [header, txs, evidence]")
        header = BlockHeader.from_list(items[0])
        raw_txs = must_list(items[1], "block.txs", max_len=MAX_BLOCK_TXS)
        txs = tuple(must_bytes(tx, "block.tx", max_len=MAX_TX_BYTES) for tx in raw_txs)
        evidence: tuple[bytes, ...] = ()
        if len(items) == 3:
            raw_ev = must_list(items[2], "block.evidence", max_len=MAX_BLOCK_EVIDENCE)
            if not raw_ev:
                raise TxError(Code.MALFORMED, "block.evidence is absent when empty")
            evidence = tuple(must_bytes(e, "block.evidence item", max_len=MAX_EVIDENCE_ITEM_BYTES) for e in raw_ev)
        return cls(header, txs, evidence)

    def encode(self) -> bytes:
        return encode(self.to_list())

    @classmethod
    @decoder
    def decode(cls, data: bytes, *, max_bytes: int = MAX_PROPOSAL_BYTES) -> Block:
        return cls.from_list(decode(data, max_bytes=max_bytes))


def make_block(
    *,
    chain_id: str,
    height: int,
    round: int,
    time_ms: int,
    prev_block_hash: bytes,
    prev_app_hash: bytes,
    proposer: bytes,
    txs: tuple[bytes, ...],
    evidence: tuple[bytes, ...] = (),
) -> Block:
    """Build a block, computing its transactions and evidence roots."""
    if len(prev_app_hash) != HASH_LEN:
        raise ValueError("prev_app_hash must be 32 bytes")
    header = BlockHeader(
        chain_id=chain_id,
        height=height,
        round=round,
        time_ms=time_ms,
        prev_block_hash=prev_block_hash,
        prev_app_hash=prev_app_hash,
        txs_root=txs_root(txs),
        proposer=proposer,
        evidence_root=txs_root(evidence) if evidence else b"",
    )
    return Block(header, txs, evidence)
