"""The block store: blocks, commit certificates, block results and indexes (LevelDB).

Separate from the state store, as in CometBFT. A block and its certificate are written
(synced) before the block is applied; results are written (synced) after execution and
before the state commits, so on restart ``results_height >= state height`` always holds
and the handshake re-applies any stored block the state has not seen.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import msgpack
import plyvel

_BLOCK = b"b"
_CERT = b"c"
_RESULTS = b"r"
_TX = b"t"
_FILL = b"f"
_META_HEIGHT = b"\xffheight"
_META_RESULTS = b"\xffresults"
_META_BASE = b"\xffbase"


def _h(height: int) -> bytes:
    return struct.pack(">Q", height)


class BlockStore:
    def __init__(self, path: str) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        self.db: Any = plyvel.DB(path, create_if_missing=True)

    def close(self) -> None:
        if not self.db.closed:
            self.db.close()

    # ------------------------------------------------------------------ heights
    def _meta(self, key: bytes) -> int:
        raw = self.db.get(key)
        return int.from_bytes(raw, "big") if raw else 0

    @property
    def height(self) -> int:
        """Highest block stored (with its certificate)."""
        return self._meta(_META_HEIGHT)

    @property
    def results_height(self) -> int:
        return self._meta(_META_RESULTS)

    @property
    def base(self) -> int:
        """Lowest block still stored (pruning raises it); 1 when nothing was pruned."""
        return max(1, self._meta(_META_BASE))

    # ------------------------------------------------------------------ blocks
    def save_block(self, height: int, raw_block: bytes, raw_certificate: bytes) -> None:
        if height != self.height + 1:
            raise ValueError(f"block {height} does not follow stored height {self.height}")
        with self.db.write_batch(transaction=True, sync=True) as wb:
            wb.put(_BLOCK + _h(height), raw_block)
            wb.put(_CERT + _h(height), raw_certificate)
            wb.put(_META_HEIGHT, height.to_bytes(8, "big"))

    def block(self, height: int) -> bytes | None:
        value: bytes | None = self.db.get(_BLOCK + _h(height))
        return value

    def certificate(self, height: int) -> bytes | None:
        value: bytes | None = self.db.get(_CERT + _h(height))
        return value

    # ------------------------------------------------------------------ results
    def save_results(self, height: int, results: list[Any], tx_hashes: list[bytes],
                     fills: list[tuple[bytes, list[Any]]]) -> None:
        """Results of block ``height``, the tx index and per-account fill index, atomically."""
        with self.db.write_batch(transaction=True, sync=True) as wb:
            wb.put(_RESULTS + _h(height), msgpack.packb(results, use_bin_type=True))
            for i, h in enumerate(tx_hashes):
                wb.put(_TX + h, msgpack.packb([height, i]))
            for n, (address, fill) in enumerate(fills):
                wb.put(_FILL + address + _h(height) + struct.pack(">I", n), msgpack.packb(fill, use_bin_type=True))
            wb.put(_META_RESULTS, height.to_bytes(8, "big"))

    def results(self, height: int) -> list[Any] | None:
        raw = self.db.get(_RESULTS + _h(height))
        return None if raw is None else msgpack.unpackb(raw, raw=False)

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        raw = self.db.get(_TX + tx_hash)
        if raw is None:
            return None
        height, index = msgpack.unpackb(raw)
        return height, index

    def fills(self, address: bytes, limit: int) -> list[tuple[int, list[Any]]]:
        """Newest first: (height, fill record)."""
        out = []
        prefix = _FILL + address
        for key, value in self.db.iterator(prefix=prefix, reverse=True):
            height = struct.unpack(">Q", key[len(prefix): len(prefix) + 8])[0]
            out.append((height, msgpack.unpackb(value, raw=False)))
            if len(out) >= limit:
                break
        return out
