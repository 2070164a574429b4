"""The consensus WAL on disk: append + fsync, torn-tail repair, end-of-height markers.

A bad frame at the end of the file is a torn tail (a crash mid-write): it is cut off. A bad
frame followed by a valid one is damage in the middle (a bit flip, a lost sector), and the
records after it are own votes and proposals that were fsynced and sent: cutting them off
would let the restarted validator sign a conflicting vote, an equivocation of our own
making. So the node refuses to start (``WalDamaged``, exit ``EXIT_WAL_DAMAGED``) and leaves
the file as it is for the operator (docs/operator.md says what to do).

consensus/wal.py owns the record format (length + CRC framed); this file owns the file.
Records of a finished height are useless once its block is stored. The end-of-height
marker is appended as a record, without an fsync, and the file is emptied at a marker only
once it holds ``COMPACT_BYTES`` (CometBFT's WAL keeps ``#ENDHEIGHT`` markers the same way):
a restart reads the records after the last marker, which are the current height's.

Why not empty the file at every marker: truncating a file is a metadata change the
filesystem journals, and it ran once per block on the node's event loop. Measured under
load (strace -T, 10,000 tx/s offered, node 0's main thread): p50 1.7 ms, p99 26 ms per
truncation, against 0.03 ms for a marker's write; and every such journal transaction is one
more that the other files' fsyncs on the disk (the mempool journal's, the stores') queue
behind.

Neither the marker nor a truncation is synced: the driver performs them only after the
block and its certificate are durably stored, and a restarted core uses only the records of
the height it starts (``ConsensusCore.restore`` keys them by height), so records of a
stored height that survive a crash, marker or not, are ignored. The next synced record
(the first vote of the next height) makes the marker durable with it.

A write that fails (a full disk above all) raises ``StorageFailure`` (node/diskfull.py):
the record may be torn on disk, so the vote or proposal it records must not be sent, and
the driver stops before the next action. A short write is finished or fails; it is never
taken for a whole record.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from consensus.wal import WalEndHeight, WalRecord, decode_stream, encode_record, frame_after
from node.diskfull import open_append, write_all, writing

log = logging.getLogger("bookchain.wal")


#: The file is emptied at an end-of-height marker once it holds this many bytes (a few
#: seconds of a loaded chain's proposals); below it the marker is appended.
COMPACT_BYTES = 1 << 20
#: `bookchain node start`: refused to start on a WAL damaged before records that follow.
EXIT_WAL_DAMAGED = 7


class WalDamaged(Exception):
    """The WAL holds a bad frame followed by a valid one: repairing it by truncation could
    make this validator equivocate, so the node does not start (nothing is changed)."""


class WalFile:
    def __init__(self, directory: Path, compact_bytes: int = COMPACT_BYTES) -> None:
        self.path = directory / "wal.log"
        self.fd = open_append(self.path)
        self.compact_bytes = compact_bytes
        self.size = os.fstat(self.fd).st_size

    def read_and_repair(self) -> list[WalRecord]:
        """Records of the last run after its last end-of-height marker; a torn or corrupt
        tail (a crash mid-write) is cut off. ``WalDamaged`` (the file untouched) when a valid
        frame follows the bad one."""
        with open(self.path, "rb") as fh:
            data = fh.read()
        records, clean = decode_stream(data)
        if clean < len(data) and (found := frame_after(data, clean)) is not None:
            what = (f"a valid record at byte {found.offset} follows" if found.verified else
                    f"record-like frames follow from byte {found.offset}, more than the scan checks")
            raise WalDamaged(
                f"the consensus WAL {self.path} is damaged at byte {clean} of {len(data)} and {what}: cutting it there could drop votes this validator sent "
                f"(exit {EXIT_WAL_DAMAGED}); restore the file, or move it aside only accepting the risk of "
                f"double signing (docs/operator.md)")
        if clean < len(data):
            log.warning("WAL: dropping %d bytes of torn tail after %d records", len(data) - clean, len(records))
            with writing(self.path):
                os.ftruncate(self.fd, clean)
                os.fsync(self.fd)
        self.size = clean
        ends = [i for i, r in enumerate(records) if isinstance(r, WalEndHeight)]
        return records[ends[-1] + 1:] if ends else records

    def append(self, record: WalRecord, *, sync: bool = True) -> None:
        """Write ``record`` (fsynced unless ``sync`` is off); a failed write is a
        ``StorageFailure``."""
        with writing(self.path):
            if isinstance(record, WalEndHeight):  # the block is stored: nothing of this height is needed
                if self.size >= self.compact_bytes:
                    os.ftruncate(self.fd, 0)
                    self.size = 0
                    return
                sync = False  # see the module's docstring
            frame = encode_record(record)
            write_all(self.fd, frame)
            self.size += len(frame)
            if sync:
                os.fsync(self.fd)

    def sync(self) -> None:
        """Make every record appended so far durable (the driver calls it on a thread of its
        own, the loop going on meanwhile); a failed fsync is a ``StorageFailure``."""
        with writing(self.path):
            os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)
