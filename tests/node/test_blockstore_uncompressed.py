"""The block store writes its tables uncompressed (node/blockstore.py, "Compaction"): a
compressible block must appear byte for byte in the table files after a compaction, and a
store written with snappy must still open and read."""

from __future__ import annotations

from pathlib import Path

import plyvel

from node.blockstore import BlockStore


def _tables(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.glob("*.ldb")))


def test_blocks_are_stored_uncompressed(tmp_path: Path) -> None:
    block = b"bookchain-block " * 4096  # snappy would shrink this ~20x
    store = BlockStore(str(tmp_path))
    store.save_block(1, block, b"certificate")
    store.db.compact_range()  # memtable -> table files
    assert block in _tables(tmp_path)
    assert store.block(1) == block
    store.close()


def test_a_store_written_with_snappy_still_reads(tmp_path: Path) -> None:
    block = b"bookchain-block " * 4096
    old = BlockStore(str(tmp_path))
    old.close()
    db = plyvel.DB(str(tmp_path), compression="snappy")
    db.put(b"b" + (1).to_bytes(8, "big"), block)
    db.compact_range()
    db.close()
    assert block not in _tables(tmp_path)  # it was compressed
    store = BlockStore(str(tmp_path))
    assert store.block(1) == block
    store.close()
