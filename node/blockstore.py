"""The block store: blocks, commit certificates, block results and indexes (LevelDB).

Separate from the state store, as in CometBFT. A block and its certificate are written
(synced) before the block is applied; results are written (synced) after execution and
before the state commits, so on restart ``results_height >= state height`` always holds
and the handshake re-applies any stored block the state has not seen.

Besides the full results, each height keeps a compact "commit codes" record: the block's
tx hashes concatenated (32 bytes each, block order) and their receipt codes as big-endian
uint16s. ``/commits`` serves it as is, so a client following every block (the load
generator) costs the node two LevelDB reads per block and no per-transaction work.

Compaction: the store takes ~2 MB/s at 5,000 tx/s (blocks ~680 B, results ~750 B, tx and
fill index entries per tx; fills are now indexed as account history entries, node/history.py), and every node writes the same bytes, so all nodes of a devnet
compact at the same moment. With LevelDB's default snappy compression those compactions
took 0.5-1.8 s of a core each, on four nodes at once, and were the devnet's p99 latency
(5,000/s for a minute: p99 1.1-1.2 s, every spike at a compaction in the nodes' LOG
files). Written uncompressed, the same minute measured p99 0.74 s. The price is disk:
snappy saved about a third (signatures, keys and hashes do not shrink; results do), so a
minute at 5,000/s takes ~118 MB per node instead of ~80. LevelDB records compression per
block, so stores written compressed still open and read.

Every write is guarded (node/diskfull.py): a batch LevelDB refuses (a full disk) raises
``StorageFailure`` naming the store, and the node stops. A refused batch is not applied
(LevelDB drops a torn log record when it reopens), so the store stays at the last height
it acknowledged.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgpack
import plyvel

from node import history, interest, orderindex
from node.codes import pack_codes
from node.diskfull import writing

_BLOCK = b"b"
_CERT = b"c"
_RESULTS = b"r"
_TX = b"t"
_FILL = b"f"
_CODES = b"k"
_ORDER = b"o"  # oid -> [status, reason, height, owner, market] of a finished order (node/orderindex.py)
_CLOID = b"l"  # owner + cloid -> [oid, height] of an order placed with a client order id
_CLOIDS_AT = b"L"  # height -> the _CLOID keys that block wrote (what pruning it deletes)
# b"h" account history, b"O" orders per account, b"C" candles, b"F" funding rates: node/history.py;
# b"P" fill positions: node/fillbook.py; b"T" order placements: node/orderindex.py;
# b"i", b"j" interest itemization: node/interest.py
_META_HEIGHT = b"\xffheight"
_META_RESULTS = b"\xffresults"
_META_BASE = b"\xffbase"
_META_ANCHOR = b"\xffanchor"  # [height, block hash, block time] of a state-sync start


def _h(height: int) -> bytes:
    return struct.pack(">Q", height)


_LOC = struct.Struct(">QI")  # tx index value: (height, index in block)


class BlockStore:
    def __init__(self, path: str) -> None:
        self.path = path
        Path(path).mkdir(parents=True, exist_ok=True)
        # No snappy: see the module docstring, "Compaction". (Opening is guarded by the node,
        # node.diskfull.opening: replay handles a locked store itself.)
        self.db: Any = plyvel.DB(path, create_if_missing=True, compression=None)

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

    def anchor(self) -> tuple[int, bytes, int] | None:
        """Where a node started from a snapshot: (height, block hash, block time)."""
        raw = self.db.get(_META_ANCHOR)
        if raw is None:
            return None
        h, block_hash, time_ms = msgpack.unpackb(raw)
        return h, block_hash, time_ms

    def start_at(self, height: int, block_hash: bytes, time_ms: int) -> None:
        """Make an empty store continue after ``height`` (state sync from a snapshot)."""
        if self.height != 0:
            raise ValueError("only an empty block store can start from a snapshot")
        with writing(self.path), self.db.write_batch(transaction=True, sync=True) as wb:
            wb.put(_META_HEIGHT, height.to_bytes(8, "big"))
            wb.put(_META_RESULTS, height.to_bytes(8, "big"))
            wb.put(_META_BASE, (height + 1).to_bytes(8, "big"))
            wb.put(_META_ANCHOR, msgpack.packb([height, block_hash, time_ms], use_bin_type=True))

    def prune_below(self, keep_from: int) -> int:
        """Delete blocks, certificates, results and their tx/fill index entries below
        ``keep_from``; returns how many heights were pruned. The fill index keys are
        recomputed from each block's results exactly as ``save_results`` wrote them."""
        base = self.base
        top = min(keep_from, self.results_height + 1)
        if top <= base:
            return 0
        from consensus.block import Block
        from state.tx import tx_hash

        with writing(self.path), self.db.write_batch(transaction=True, sync=False) as wb:
            for h in range(base, top):
                raw = self.db.get(_BLOCK + _h(h))
                if raw is not None:
                    for tx in Block.decode(raw).txs:
                        wb.delete(_TX + tx_hash(tx))
                rec = self.results(h)
                if rec is not None:
                    self._prune_order_entries(wb, h, rec, raw)
                    for key in history.history_prune_keys(h, rec[2]):
                        wb.delete(key)
                    for key in interest.prune_keys(self.db, h):
                        wb.delete(key)
                    n = 0
                    for _, event in rec[2]:
                        if event[0] == "fill":
                            maker, taker = event[5], event[6]
                            for address in (maker,) if maker == taker else (maker, taker):
                                wb.delete(_FILL + address + _h(h) + struct.pack(">I", n))
                                n += 1
                for prefix in (_BLOCK, _CERT, _RESULTS, _CODES):
                    wb.delete(prefix + _h(h))
            wb.put(_META_BASE, top.to_bytes(8, "big"))
        return top - base

    def _prune_order_entries(self, wb: Any, h: int, rec: list[Any], raw_block: bytes | None) -> None:
        """Drop the order outcomes and client-order-id entries written at height ``h`` (an
        entry rewritten by a later block says a later height and stays)."""
        from consensus.block import Block
        from state.errors import TxError
        from state.tx import Batch, decode_tx

        oids: set[int] = set()
        for receipt in rec[1]:
            oids.update(res[2] for res in receipt[5] if res[2] is not None)
        for _, event in rec[2]:
            if event[0] == "fill":
                oids.add(event[7])  # maker_oid
            elif event[0] == "cancel" or event[0] == "triggered":
                oids.add(event[2])
        for oid in oids:
            stored = self.order_outcome(oid)
            if stored is not None:
                wb.delete(orderindex.placed_key(oid))  # finished: its placement goes with its block
            if stored is not None and stored[2] == h:
                wb.delete(_ORDER + _h(oid))
        # the per-account order entries of height h: every (owner, oid) the block could
        # have finished (deleting a key never written is harmless)
        owners: set[tuple[bytes, int]] = set()
        for receipt in rec[1]:
            if receipt[3]:
                owners.update((receipt[3], res[2]) for res in receipt[5] if res[2] is not None)
        for _, event in rec[2]:
            if event[0] == "fill":
                owners.add((event[5], event[7]))
            elif event[0] == "cancel":
                owners.add((event[3], event[2]))
            elif event[0] == "triggered":
                owners.update((a, event[2]) for a in event[1:] if isinstance(a, bytes) and len(a) == 20)
        for owner, oid in owners:
            if isinstance(owner, bytes) and isinstance(oid, int):
                wb.delete(history.order_key(owner, h, oid))
        listed = self.db.get(_CLOIDS_AT + _h(h))
        if listed is not None:  # the keys the block wrote, whoever they were for
            wb.delete(_CLOIDS_AT + _h(h))
            for suffix in msgpack.unpackb(listed):
                value = self.db.get(_CLOID + suffix)
                if value is not None and msgpack.unpackb(value)[1] == h:
                    wb.delete(_CLOID + suffix)
            return
        for tx in Block.decode(raw_block).txs if raw_block is not None else ():  # results saved before the list
            try:
                decoded = decode_tx(tx)
            except TxError:
                continue
            items = decoded.action.actions if isinstance(decoded.action, Batch) else (decoded.action,)
            for item in items:
                cloid = getattr(item, "cloid", None)
                if cloid is not None:
                    key = _CLOID + decoded.signer + cloid
                    value = self.db.get(key)
                    if value is not None and msgpack.unpackb(value)[1] == h:
                        wb.delete(key)

    # ------------------------------------------------------------------ blocks
    def save_block(self, height: int, raw_block: bytes, raw_certificate: bytes) -> None:
        if height != self.height + 1:
            raise ValueError(f"block {height} does not follow stored height {self.height}")
        with writing(self.path), self.db.write_batch(transaction=True, sync=True) as wb:
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
    def save_results(self, height: int, results: list[Any] | bytes, tx_hashes: list[bytes],
                     fills: list[tuple[bytes, list[Any] | bytes]], codes: list[int] | None = None,
                     orders: dict[int, list[Any]] | None = None,
                     cloids: list[tuple[bytes, bytes, int]] | None = None,
                     extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
        """Results of block ``height`` (a record or its msgpack bytes), the tx index, the
        per-account fill index (records or their msgpack bytes), with ``codes`` the compact
        commit codes, the order outcome and client-order-id indexes, and ``extra`` puts
        (history, per-account orders and candles: node/history.py), atomically."""
        packer = msgpack.Packer(use_bin_type=True)
        loc = _LOC.pack
        with writing(self.path), self.db.write_batch(transaction=True, sync=True) as wb:
            put = wb.put
            put(_RESULTS + _h(height), results if isinstance(results, bytes) else packer.pack(results))
            for i, h in enumerate(tx_hashes):
                put(_TX + h, loc(height, i))
            suffix = _h(height)
            for n, (address, fill) in enumerate(fills):
                put(_FILL + address + suffix + struct.pack(">I", n),
                    fill if isinstance(fill, bytes) else packer.pack(fill))
            if codes is not None:
                put(_CODES + _h(height), packer.pack([b"".join(tx_hashes), pack_codes(codes)]))
            for oid, outcome in sorted((orders or {}).items()):
                put(_ORDER + _h(oid), packer.pack(outcome))
            for owner, cloid, oid in cloids or ():
                put(_CLOID + owner + cloid, packer.pack([oid, height]))
            if cloids:
                put(_CLOIDS_AT + _h(height), packer.pack([owner + cloid for owner, cloid, _ in cloids]))
            for key, value in extra:
                put(key, value)
            put(_META_RESULTS, height.to_bytes(8, "big"))

    def results(self, height: int) -> list[Any] | None:
        raw = self.results_raw(height)
        return None if raw is None else msgpack.unpackb(raw, raw=False)

    def results_raw(self, height: int) -> bytes | None:
        """The stored msgpack of block ``height``'s results record, undecoded."""
        value: bytes | None = self.db.get(_RESULTS + _h(height))
        return value

    def commit_codes(self, height: int) -> tuple[bytes, bytes] | None:
        """(tx hashes concatenated, receipt codes as big-endian uint16s) of block
        ``height``, in block order; derived from the full results for heights stored
        before the compact record existed."""
        raw = self.db.get(_CODES + _h(height))
        if raw is not None:
            hashes, codes = msgpack.unpackb(raw)
            return hashes, codes
        rec = self.results(height)
        if rec is None:
            return None
        return b"".join(r[0] for r in rec[1]), pack_codes([r[1] for r in rec[1]])

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        raw = self.db.get(_TX + tx_hash)
        if raw is None:
            return None
        if raw[0] == 0x92:  # written before the fixed-width form: msgpack [height, index]
            height, index = msgpack.unpackb(raw)
        else:  # a big-endian height below 2^56 never starts with 0x92
            height, index = _LOC.unpack(raw)
        return height, index

    def order_outcome(self, oid: int) -> list[Any] | None:
        """[status, reason, height, owner, market] of a finished order, or None."""
        raw = self.db.get(_ORDER + _h(oid))
        return None if raw is None else msgpack.unpackb(raw, raw=False)

    def order_status_time(self, owner: bytes, height: int, oid: int) -> int | None:
        """The block time node/history.py recorded with ``owner``'s order outcome at
        ``height``, else the stored block's time, else None."""
        raw = self.db.get(history.order_key(owner, height, oid))
        rec = msgpack.unpackb(raw, raw=False) if raw is not None else None
        if rec is not None and len(rec) > 3:
            return int(rec[3])
        return self.block_time(height)

    def block_time(self, height: int) -> int | None:
        """The time (ms) of stored block ``height``, or None (pruned, or not stored)."""
        from consensus.block import Block

        raw = self.block(height)
        return None if raw is None else int(Block.decode(raw).header.time_ms)

    def history_extra(self, address: bytes, limit: int, before: tuple[int, int] | None = None,
                      start_ms: int | None = None, end_ms: int | None = None, kinds: list[str] | None = None,
                      ) -> tuple[list[tuple[int, int, int, list[Any], history.Extra]], str | None]:
        """``history`` with each entry's tx hash and fill context (node/history.py ``Extra``)."""
        return history.read_history_extra(self.db, address, limit=limit, before=before, start_ms=start_ms,
                                          end_ms=end_ms, kinds=kinds)

    def order_placed(self, oid: int) -> list[Any] | None:
        """The placement record of an order (node/orderindex.py ``placements``), or None."""
        raw = self.db.get(orderindex.placed_key(oid))
        return None if raw is None else msgpack.unpackb(raw, raw=False)

    def funding_rates(self, market: int, start_ms: int = 0, end_ms: int | None = None,
                      limit: int = 500) -> list[dict[str, int]]:
        return history.read_funding(self.db, market, start_ms=start_ms, end_ms=end_ms, limit=limit)

    def oid_of_cloid(self, owner: bytes, cloid: bytes) -> int | None:
        """The oid of the last order ``owner`` placed with ``cloid``, or None."""
        raw = self.db.get(_CLOID + owner + cloid)
        return None if raw is None else int(msgpack.unpackb(raw)[0])

    def fills(self, address: bytes, limit: int) -> list[tuple[int, list[Any]]]:
        """Newest first: (height, fill record). Fills are read from the account history
        (node/history.py); a store written before it existed continues with its own fill
        index entries, all at heights below the history's."""
        entries, _ = history.read_history(self.db, address, limit=limit, kinds=("fill",), max_scan=200_000)
        out: list[tuple[int, list[Any]]] = [(h, event[1:]) for h, _seq, _t, event in entries]
        if len(out) >= limit:
            return out
        prefix = _FILL + address
        it = self.db.iterator(prefix=prefix, reverse=True) if not out else \
            self.db.iterator(start=prefix, stop=prefix + _h(out[-1][0]), reverse=True)
        for key, value in it:
            height = struct.unpack(">Q", key[len(prefix): len(prefix) + 8])[0]
            out.append((height, msgpack.unpackb(value, raw=False)))
            if len(out) >= limit:
                break
        return out

    # ------------------------------------------------------------------ history (node/history.py)
    def get(self, key: bytes) -> bytes | None:
        """A raw read (the candle book's first look at a candle after a start)."""
        value: bytes | None = self.db.get(key)
        return value

    def history(self, address: bytes, limit: int, before: tuple[int, int] | None = None,
                start_ms: int | None = None, end_ms: int | None = None,
                kinds: list[str] | None = None) -> tuple[list[tuple[int, int, int, list[Any]]], str | None]:
        """Newest first: (height, seq, time_ms, event) of ``address``, and the next cursor."""
        return history.read_history(self.db, address, limit=limit, before=before, start_ms=start_ms,
                                    end_ms=end_ms, kinds=kinds)

    def order_history(self, owner: bytes, limit: int, before: int | None = None) -> list[dict[str, Any]]:
        return history.read_orders(self.db, owner, limit=limit, before=before)

    def candles(self, market: int, interval: str, start_ms: int = 0, end_ms: int | None = None,
                limit: int = 500) -> list[dict[str, Any]]:
        return history.read_candles(self.db, market, interval, start_ms=start_ms, end_ms=end_ms, limit=limit)
