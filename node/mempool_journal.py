"""The mempool journal: what this node told a client it admitted survives a crash.

Why: an admission answer (code 0 from ``broadcast_tx_sync`` or ``/broadcast_txs``) is a
promise that the chain will see the transaction, and the mempool lives in memory. Without
the journal a kill -9, an OS crash or a full disk lost what the node had admitted and not
yet got into a block: the namespace chaos runs counted 780 and 2,911 such transactions in
100 perturbations, every one on a crash of the node that had admitted it.

How: each client batch the mempool admitted is written as one frame (length, CRC-32, the
msgpack list of raw transactions) at once, before the event loop can run anything that
would propose or gossip it, and fsynced before the answer goes out. Concurrent batches
share an fsync (group commit): one that starts covers every frame written before it, so
the cost is one fsync per round of the event loop, not per request. At start the
node submits what the journal holds again, like any client would: each is verified and
checked against the state again, so what a block committed meanwhile is refused
(duplicate or stale nonce) and the rest is admitted and gossiped.

The file only grows between compactions: after a block, once it passes
``COMPACT_BYTES``, or whenever the mempool has emptied, it is rewritten to hold exactly
the pending transactions (``write_atomically``: a temporary file, fsynced, renamed over
the old one). Never
while an fsync is in flight, which still holds the old descriptor.

A failed write raises ``StorageFailure`` (node/diskfull.py) before anything else saw the
batch: the node stops its driver and gossip, answers the batch as stopping and shuts
down, so nothing it did not journal is acknowledged or sent. A failed fsync (rarer: the
write had found room) stops the node the same way, but by then the batch may have been
proposed or gossiped while the fsync ran: its txs are answered as of unknown outcome
(``NOT_READY``, saying the tx may still commit and to look it up before resending), not as
refused.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgpack

from node.diskfull import open_append, write_all, write_atomically, writing

log = logging.getLogger("bookchain.mempool")

_HEAD = struct.Struct(">II")  # payload length, CRC-32 of the payload
#: a frame longer than this is a corrupt length, not a batch (a client batch is at most a
#: few MB: the RPC's body limit)
MAX_FRAME = 64 << 20
#: rewrite the journal to the pending set once it holds this much
COMPACT_BYTES = 8 << 20


def encode_frame(raws: list[bytes]) -> bytes:
    payload: bytes = msgpack.packb(raws, use_bin_type=True)
    return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload


def decode_frames(data: bytes) -> tuple[list[bytes], int]:
    """The transactions of every whole frame, and the length of the clean prefix: a torn
    or corrupt frame (a crash mid-write) ends the journal there."""
    out: list[bytes] = []
    pos = 0
    while pos + _HEAD.size <= len(data):
        size, crc = _HEAD.unpack_from(data, pos)
        end = pos + _HEAD.size + size
        if size > MAX_FRAME or end > len(data):
            break
        payload = data[pos + _HEAD.size: end]
        if zlib.crc32(payload) != crc:
            break
        try:
            raws = msgpack.unpackb(payload, raw=False)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
            break
        if not isinstance(raws, list) or not all(type(r) is bytes for r in raws):
            break
        out.extend(raws)
        pos = end
    return out, pos


class MempoolJournal:
    """One append-only file under the data directory; see the module docstring."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "journal.bin"
        self.fd = open_append(self.path)
        self.size = os.fstat(self.fd).st_size
        self._written = 0  # frames written
        self._synced = 0  # frames an fsync has covered
        self._sync_task: asyncio.Future[None] | None = None
        # its own thread: behind the loop's default executor, which dispatches signature
        # batches, an fsync waited for them, and the answers' p99 with it
        self._sync_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-sync")

    def read_and_repair(self) -> list[bytes]:
        """The transactions the last run journaled; a torn tail is cut off."""
        with open(self.path, "rb") as fh:
            data = fh.read()
        raws, clean = decode_frames(data)
        if clean < len(data):
            log.warning("mempool journal: dropping %d bytes of torn tail after %d transactions",
                        len(data) - clean, len(raws))
            with writing(self.path):
                os.ftruncate(self.fd, clean)
                os.fsync(self.fd)
        self.size = clean
        return list(dict.fromkeys(raws))  # a tx journaled twice (admitted again after a restart) once

    def write(self, raws: list[bytes]) -> None:
        """Write ``raws`` as one frame, synchronously: called right after the mempool
        admitted them, before the event loop runs anything else, so nothing can propose or
        gossip them before the frame is in the file (a process crash keeps it from here on).
        ``StorageFailure`` if the write fails: the caller stops the node before answering."""
        if not raws:
            return
        frame = encode_frame(raws)
        with writing(self.path):
            write_all(self.fd, frame)
        self.size += len(frame)
        self._written += 1

    async def sync(self) -> None:
        """Return once an fsync covers every frame written so far (an OS crash keeps them
        too). Concurrent callers share fsyncs."""
        mine = self._written
        while self._synced < mine:
            if self._sync_task is None:
                self._sync_task = asyncio.ensure_future(self._sync_once())
            await asyncio.shield(self._sync_task)

    async def _sync_once(self) -> None:
        covered = self._written  # every frame written before this fsync starts
        try:
            await asyncio.get_running_loop().run_in_executor(self._sync_thread, self._fsync)
            self._synced = max(self._synced, covered)
        finally:
            self._sync_task = None

    def _fsync(self) -> None:
        with writing(self.path):
            os.fsync(self.fd)

    def compact(self, pending: Iterable[bytes], *, empty: bool) -> bool:
        """After a block: rewrite the journal to ``pending`` when the mempool has emptied
        (``empty``: truncate) or the file passed ``COMPACT_BYTES``. Skipped while an fsync
        is in flight (it holds the old descriptor) or when nothing would shrink."""
        if self._sync_task is not None or self.size == 0 or not (empty or self.size >= COMPACT_BYTES):
            return False
        with writing(self.path):
            if empty:
                os.ftruncate(self.fd, 0)  # what it held is committed or dropped: no sync needed
                self.size = 0
                return True
            frame = encode_frame(list(pending))
            write_atomically(self.path, frame, mode=0o600)
            old, self.fd = self.fd, open_append(self.path)
            os.close(old)
        self.size = len(frame)
        self._synced = self._written  # the new file is synced whole
        return True

    def close(self) -> None:
        self._sync_thread.shutdown(wait=True)
        os.close(self.fd)
