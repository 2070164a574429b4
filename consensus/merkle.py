"""The transactions root of a block: an RFC 6962 style binary Merkle tree over the txs.

Why a Merkle root and not a flat hash of the list: a light client or an RPC caller can
prove that one transaction is in a block with log2(n) hashes. Leaves and inner nodes are
domain separated (0x00 / 0x01 prefixes) so an inner node can never be passed off as a
transaction. The empty block's root is sha256(b"").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

_LEAF = b"\x00"
_NODE = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(tx: bytes) -> bytes:
    return hashlib.sha256(_LEAF + tx).digest()


def txs_root(txs: Sequence[bytes]) -> bytes:
    """Merkle root of ``txs`` in order (RFC 6962: the split point is the largest power of 2)."""
    if not txs:
        return EMPTY_ROOT
    sha = hashlib.sha256
    level = [sha(_LEAF + tx).digest() for tx in txs]
    # Pairing adjacent nodes level by level and promoting an odd last node unchanged gives
    # the same root as RFC 6962's recursive largest-power-of-two split.
    while len(level) > 1:
        paired = [
            sha(_NODE + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_proof(txs: Sequence[bytes], index: int) -> list[tuple[bool, bytes]]:
    """Sibling hashes from leaf ``index`` to the root; each is (sibling_is_left, hash)."""
    if not 0 <= index < len(txs):
        raise IndexError("transaction index out of range")
    sha = hashlib.sha256
    level = [sha(_LEAF + tx).digest() for tx in txs]
    proof: list[tuple[bool, bytes]] = []
    position = index
    while len(level) > 1:
        sibling = position ^ 1
        if sibling < len(level):
            proof.append((sibling < position, level[sibling]))
        paired = [
            sha(_NODE + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
        position //= 2
    return proof


def verify_inclusion(root: bytes, tx: bytes, proof: Sequence[tuple[bool, bytes]]) -> bool:
    node = leaf_hash(tx)
    for sibling_is_left, sibling in proof:
        pair = sibling + node if sibling_is_left else node + sibling
        node = hashlib.sha256(_NODE + pair).digest()
    return node == root
