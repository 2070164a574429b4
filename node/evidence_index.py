"""Committed equivocation evidence in the block store: what ``/evidence`` serves.

Written in the same synced batch as the block's results (``Execution.apply_and_store`` hands these
puts to ``BlockStore.save_results``), so the index never disagrees with the blocks; a node
re-applying blocks at start-up rewrites the same keys. Two keys per piece:

    b"E" + height(8) + index(2)  -> the encoded evidence (``DuplicateVote``), block order
    b"e" + height(8) + validator(32) + round(4) + type(1) of the equivocation -> commit height

The first lists evidence by the height of the block that committed it; the second finds
one equivocation's commit height. A query, never a rule: a node started from a snapshot
knows only the evidence of blocks it applied itself, so whether a block's evidence repeats
a committed offence is decided by the state (state/offences.py, read by
``NodeApp.validate_block``, the pool's filter and replay), which every node holds alike. Not
pruned with blocks: a piece is ~300 bytes, and the record of who double-signed is the point
of keeping it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from consensus.block import Block
from consensus.errors import MalformedMessage
from consensus.evidence import DuplicateVote

_BY_HEIGHT = b"E"
_BY_KEY = b"e"
_H = struct.Struct(">Q")
_KEY = struct.Struct(">Q32sIB")

Key = tuple[int, bytes, int, int]


def _key_bytes(key: Key) -> bytes:
    height, validator, round_, vote_type = key
    return _BY_KEY + _KEY.pack(height, validator, round_, vote_type)


def decoded(block: Block) -> list[DuplicateVote]:
    """A committed block's evidence (consensus checked it before the block was decided; a
    block synced with a certificate is final either way, and an item that does not decode
    is left out of the index rather than stopping the node)."""
    out: list[DuplicateVote] = []
    for raw in block.evidence:
        try:
            out.append(DuplicateVote.decode(raw))
        except MalformedMessage:
            continue
    return out


def puts(height: int, evidence: list[DuplicateVote]) -> list[tuple[bytes, bytes]]:
    """The index entries of block ``height``'s evidence."""
    out: list[tuple[bytes, bytes]] = []
    for i, ev in enumerate(evidence):
        out.append((_BY_HEIGHT + _H.pack(height) + struct.pack(">H", i), ev.encode()))
        out.append((_key_bytes(ev.key), _H.pack(height)))
    return out


def committed_at(db: Any, key: Key) -> int | None:
    """The height of the block that committed this equivocation, if any did."""
    raw = db.get(_key_bytes(key))
    return None if raw is None else int(_H.unpack(raw)[0])


def committed(db: Any, height: int | None = None, limit: int = 100) -> Iterator[tuple[int, DuplicateVote]]:
    """(commit height, evidence), newest block first; only block ``height`` when given."""
    if height is not None:
        prefix = _BY_HEIGHT + _H.pack(height)
        it = db.iterator(prefix=prefix)
    else:
        it = db.iterator(prefix=_BY_HEIGHT, reverse=True)
    n = 0
    with it:
        for k, v in it:
            if n >= limit:
                return
            n += 1
            yield int(_H.unpack(k[1:9])[0]), DuplicateVote.decode(v)
