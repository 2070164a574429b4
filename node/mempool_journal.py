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

Reading it back (``read_frames``): a valid frame is a length within ``MAX_FRAME`` whose
payload lies inside the file, is a msgpack array of bins filling the payload exactly, and
matches its CRC-32. A bad frame with no valid frame after it is a torn tail (a crash
mid-write): it is cut off. A bad frame *followed* by valid ones is damage in the middle (a
bit flip, a lost sector), and cutting there would silently drop transactions that were
acknowledged and fsynced after it. So the reader salvages: it scans forward from the bad
offset for the next valid frame and goes on from there. Unlike the consensus WAL (which
refuses to start on such damage, consensus/wal.py), this is safe because the journal's
contents authenticate themselves: whatever a false match inside the damage yields is
submitted again like the rest and refused by the decoder or the signature check. The node
logs the damaged spans, counts them (``damaged_bytes``, ``salvaged_txs`` on /metrics) and
rewrites the file to the valid frames, so the damage does not linger.

The scan's cost is bounded. Candidates are only the offsets 8 bytes before a payload's
first bytes (an array header, then a bin's marker), found by a C-speed search over a
translated copy of the damaged remainder, each pattern's next hit remembered so the
search work is linear in the file however many damaged spans it holds. What a candidate
costs beyond that (the walk over its array, the CRC over its length) is charged to
``SCAN_BUDGET``: random damage costs a small fraction of it (an all-garbage 64 MB file
checksums next to nothing: the array walk refuses garbage within a few elements), but
bytes crafted to look like frames (transactions carry client-chosen bytes) could claim
megabytes each at every other offset. Past the budget the scan gives up and the rest of
the file is dropped, logged as an error: only damage over such crafted bytes gets there.

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
import re
import struct
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import msgpack

from node.diskfull import open_append, write_all, write_atomically, writing
from node.wire import array_header

log = logging.getLogger("bookchain.mempool")

_HEAD = struct.Struct(">II")  # payload length, CRC-32 of the payload
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
#: a frame longer than this is a corrupt length, not a batch (a client batch is at most a
#: few MB: the RPC's body limit)
MAX_FRAME = 64 << 20
#: rewrite the journal to the pending set once it holds this much
COMPACT_BYTES = 8 << 20
#: What the salvage scan may spend, in bytes checksummed (CRC-32 runs at ~1.7 GB/s here):
#: a candidate looked at costs ``_CANDIDATE_COST`` of it, an array element walked
#: ``_STEP_COST`` (about what each costs in Python next to a byte of CRC). Under 1 s of work.
SCAN_BUDGET = 1 << 30
_CANDIDATE_COST = 4096
_STEP_COST = 1024
#: how many damaged spans a log line names (the count and the byte total cover all of them)
_LOGGED_SPANS = 8

# The salvage scan's candidates, on a copy of the bytes translated to classes: "A" a
# fixarray header with 1-15 elements, "C" an array16 header, "D" an array32 header, "B" a
# bin marker (bin8/16/32: a raw transaction). A non-empty batch starts "AB", "C..B" or
# "D....B"; an empty one is never written. A search restarts one byte after each
# candidate, so hits that overlap (a "C" among another's dots) are all found.
_CLASSES = bytes(
    ord("A") if 0x91 <= b <= 0x9F else ord("B") if 0xC4 <= b <= 0xC6
    else ord("C") if b == 0xDC else ord("D") if b == 0xDD else ord(".")
    for b in range(256))
_STARTS = (re.compile(b"AB"), re.compile(b"C..B", re.DOTALL), re.compile(b"D....B", re.DOTALL))


def encode_frame(raws: list[bytes]) -> bytes:
    payload: bytes = msgpack.packb(raws, use_bin_type=True)
    return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload


@dataclass(frozen=True, slots=True)
class Frames:
    """What ``read_frames`` found in a journal's bytes.

    ``raws``: the transactions of every valid frame, in file order. ``spans``: each valid
    frame's [start, end). ``damaged``: the [start, end) of each run of bytes between
    valid frames that no valid frame covers (damage in the middle: salvaged past).
    ``salvaged``: how many of ``raws`` come from frames after the first damaged span.
    ``end``: the end of the last valid frame; the bytes after it are a torn tail, or, when
    ``gave_up``, bytes the scan spent its budget on without finding a frame."""

    raws: list[bytes]
    spans: list[tuple[int, int]]
    damaged: list[tuple[int, int]]
    salvaged: int
    end: int
    gave_up: bool


class _Exhausted(Exception):
    """The salvage scan spent its budget (internal to ``read_frames``)."""


class _Budget:
    """What the salvage scan may still spend (see ``SCAN_BUDGET``)."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left

    def spend(self, cost: int) -> None:
        if cost > self.left:
            self.left = 0
            raise _Exhausted
        self.left -= cost


class _Starts:
    """Where a frame can start, at or after an offset, in increasing order. Remembers each
    pattern's next hit, so a file with many damaged spans is still searched once (queries
    must not go backwards, as ``read_frames``'s do not)."""

    __slots__ = ("base", "classes", "next")

    def __init__(self, data: bytes, base: int) -> None:
        self.base = base  # the classes cover data[base:]
        self.classes = data[base:].translate(_CLASSES)
        self.next = [-1] * len(_STARTS)  # per pattern: its first hit at or after the last query, -1 unknown

    def first(self, pos: int) -> int | None:
        """The first offset >= ``pos`` where a frame's payload can begin, or None."""
        at, best = max(pos - self.base, 0), None
        for i, pattern in enumerate(_STARTS):
            hit = self.next[i]
            if hit != len(self.classes) and hit < at:
                found = pattern.search(self.classes, at)
                hit = self.next[i] = found.start() if found is not None else len(self.classes)
            if hit < len(self.classes) and (best is None or hit < best):
                best = hit
        return None if best is None else self.base + best


def _elements(data: bytes, p: int, end: int, budget: _Budget | None) -> list[tuple[int, int]] | None:
    """The [start, end) of each bin in the msgpack array at ``data[p:end]`` when that is
    exactly an array of bins, else None. Work: one step per element, charged to
    ``budget`` (``_Exhausted`` when it cannot pay for the array's length)."""
    header = array_header(data, p, end)
    if header is None:
        return None
    n, p = header
    if 2 * n > end - p:  # a bin takes at least two bytes
        return None
    limit = n if budget is None else min(n, budget.left // _STEP_COST)
    out: list[tuple[int, int]] = []
    try:
        while len(out) < limit:
            marker = data[p] if p < end else 0
            if marker == 0xC4 and p + 2 <= end:
                size, p = data[p + 1], p + 2
            elif marker == 0xC5 and p + 3 <= end:
                size, p = _U16.unpack_from(data, p + 1)[0], p + 3
            elif marker == 0xC6 and p + 5 <= end:
                size, p = _U32.unpack_from(data, p + 1)[0], p + 5
            else:
                return None
            if p + size > end:
                return None
            out.append((p, p + size))
            p += size
    finally:
        if budget is not None:
            budget.left -= len(out) * _STEP_COST
    if limit < n:
        raise _Exhausted
    return out if p == end else None


def _frame_at(data: bytes, pos: int, budget: _Budget | None) -> tuple[int, list[bytes]] | None:
    """The end and the transactions of the valid frame at ``pos``, or None. Never raises
    on any bytes but ``_Exhausted``, and that only with a ``budget``.

    Two orders, one answer: reading frame after frame (no ``budget``), the CRC runs first
    and msgpack's C decoder gives the batch (a whole-journal read at C speed); a salvage
    candidate (``budget``) is walked first, since a walk refuses garbage in a few steps
    where a CRC would checksum whatever length the garbage claims."""
    if pos + _HEAD.size >= len(data):
        return None
    size, crc = _HEAD.unpack_from(data, pos)
    start, end = pos + _HEAD.size, pos + _HEAD.size + size
    if size == 0 or size > MAX_FRAME or end > len(data):
        return None
    payload = memoryview(data)[start:end]
    if budget is None:
        if zlib.crc32(payload) != crc:
            return None
        return (end, raws) if (raws := _batch(payload)) is not None else None
    spans = _elements(data, start, end, budget)
    if spans is None:
        return None
    budget.spend(size)
    if zlib.crc32(payload) != crc:
        return None
    return end, [data[a:b] for a, b in spans]


def _batch(payload: memoryview) -> list[bytes] | None:
    """The payload as a list of raw transactions (an msgpack array of bins filling it
    exactly: what ``_elements`` accepts), or None."""
    try:
        raws = msgpack.unpackb(payload, raw=False)
    except Exception:  # any bytes: whatever the decoder refuses them with, they are not a batch
        return None
    if not isinstance(raws, list) or not all(type(r) is bytes for r in raws):
        return None
    return raws


def _resync(data: bytes, starts: _Starts, bad: int, budget: _Budget) -> tuple[int, int, list[bytes]] | None:
    """The first valid frame that starts after ``bad`` (where a frame failed): its start,
    end and transactions, or None (what follows ``bad`` is a torn tail). Every offset
    could be it, since the damage may be in the bad frame's own length."""
    pos = bad + 1 + _HEAD.size  # the first payload start of a frame after ``bad``
    while (payload := starts.first(pos)) is not None:
        budget.spend(_CANDIDATE_COST)
        found = _frame_at(data, payload - _HEAD.size, budget)
        if found is not None:
            return payload - _HEAD.size, found[0], found[1]
        pos = payload + 1
    return None


def read_frames(data: bytes, budget: int = SCAN_BUDGET) -> Frames:
    """Every valid frame of a journal's bytes, salvaging past damage (module docstring).
    Pure; never raises on any bytes. ``budget``: what the salvage scan may spend."""
    raws: list[bytes] = []
    spans: list[tuple[int, int]] = []
    damaged: list[tuple[int, int]] = []
    pos, starts, spend, gave_up, salvaged = 0, None, _Budget(budget), False, 0
    while pos < len(data):
        found = _frame_at(data, pos, None)
        if found is not None:
            start, (end, txs) = pos, found
        else:
            starts = starts or _Starts(data, pos)
            try:
                resynced = _resync(data, starts, pos, spend)
            except _Exhausted:
                gave_up = True
                break
            if resynced is None:
                break
            start, end, txs = resynced
            damaged.append((pos, start))
        if damaged:
            salvaged += len(txs)
        raws.extend(txs)
        spans.append((start, end))
        pos = end
    return Frames(raws, spans, damaged, salvaged, pos, gave_up)


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
        #: what ``read_and_repair`` found at start (/metrics): bytes dropped as damage in
        #: the middle or given up on (not a torn tail), and transactions read from valid
        #: frames after such damage
        self.damaged_bytes = 0
        self.salvaged_txs = 0

    def read_and_repair(self) -> list[bytes]:
        """The transactions the last run journaled, each once. A torn tail is cut off;
        damage in the middle is skipped and the file rewritten to its valid frames."""
        with open(self.path, "rb") as fh:
            data = fh.read()
        found = read_frames(data, SCAN_BUDGET)
        lost = len(data) - found.end  # a torn tail, or what the scan gave up on
        if found.damaged:
            skipped = sum(b - a for a, b in found.damaged)
            self.salvaged_txs += found.salvaged
            self.damaged_bytes += skipped
            log.warning("mempool journal: skipping %d damaged spans (%d bytes) at bytes %s%s of %d; salvaged %d "
                        "transactions from the valid frames after them; rewriting the journal to its %d valid "
                        "frames", len(found.damaged), skipped,
                        ", ".join(f"{a}-{b}" for a, b in found.damaged[:_LOGGED_SPANS]),
                        " ..." if len(found.damaged) > _LOGGED_SPANS else "", len(data), found.salvaged,
                        len(found.spans))
        if found.gave_up:
            self.damaged_bytes += lost
            log.error("mempool journal: gave up salvaging the %d bytes after byte %d of %d (the scan spent its "
                      "budget on frame-like bytes): transactions journaled there are dropped",
                      lost, found.end, len(data))
        elif lost:
            log.warning("mempool journal: dropping %d bytes of torn tail after %d transactions",
                        lost, len(found.raws))
        if found.damaged:
            self._replace(b"".join(data[a:b] for a, b in found.spans))
        elif lost:
            with writing(self.path):
                os.ftruncate(self.fd, found.end)
                os.fsync(self.fd)
            self.size = found.end
        return list(dict.fromkeys(found.raws))  # a tx journaled twice (admitted again after a restart) once

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
        if empty:
            with writing(self.path):
                os.ftruncate(self.fd, 0)  # what it held is committed or dropped: no sync needed
            self.size = 0
            return True
        self._replace(encode_frame(list(pending)))
        return True

    def _replace(self, content: bytes) -> None:
        """Replace the file with ``content`` (``write_atomically``: whole, synced) and
        append to the new one from now on. Never while an fsync is in flight."""
        with writing(self.path):
            write_atomically(self.path, content, mode=0o600)
            old, self.fd = self.fd, open_append(self.path)
            os.close(old)
        self.size = len(content)
        self._synced = self._written  # the new file is synced whole

    def close(self) -> None:
        self._sync_thread.shutdown(wait=True)
        os.close(self.fd)

