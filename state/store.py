"""The LevelDB state store: the durable record the in-memory exchange is a cache of.

A block's whole write set goes in one atomic, synced write batch together with the new
height and app hash, so after any crash the store holds exactly some committed height,
never half of a block. Opening a store reads every record back into an ``Exchange``.
"""

from __future__ import annotations

from typing import Any

import msgpack
import plyvel

from state.records import META_KEY


class StateStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self.db: Any = plyvel.DB(path, create_if_missing=True)

    def meta(self) -> tuple[int, bytes] | None:
        raw = self.db.get(META_KEY)
        if raw is None:
            return None
        height, app_hash = msgpack.unpackb(raw)
        return height, app_hash

    def items(self) -> list[tuple[bytes, bytes]]:
        return [(k, v) for k, v in self.db.iterator() if k != META_KEY]

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self.db.get(key)
        return value

    def commit(self, writes: list[tuple[bytes, bytes | None]], height: int, app_hash: bytes, *, sync: bool = True) -> None:
        with self.db.write_batch(transaction=True, sync=sync) as batch:
            for key, value in writes:
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
            batch.put(META_KEY, msgpack.packb([height, app_hash], use_bin_type=True))

    def sync(self) -> None:
        """fsync the log: every batch written before this one becomes durable. (Rewrites the
        meta record unchanged: a write is what LevelDB syncs.)"""
        meta = self.db.get(META_KEY)
        if meta is not None:
            self.db.put(META_KEY, meta, sync=True)

    def close(self) -> None:
        if not self.db.closed:
            self.db.close()
