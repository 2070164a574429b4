"""A failed durable write stops the node: the error, the guard around every write, the exit code.

What happens: the first write to the node's data directory that fails (the consensus WAL,
the block store, the state store, the evidence pool, a snapshot; ENOSPC and EDQUOT above
all, but any write error counts) becomes a ``StorageFailure``. The consensus driver stops
at once, in the middle of the action list it was performing, so nothing the core decided
after the failed write (above all the vote whose WAL record did not make it to disk) is
ever sent; the RPC refuses new transactions; the node logs one line naming the path and
the cause ("disk full" for ENOSPC/EDQUOT), closes its stores and exits with
``EXIT_DISK_FULL``. A plain restart once space is back recovers: the WAL's torn tail is cut,
LevelDB drops a torn log record, the handshake re-applies stored blocks the state store
lacks, and block sync fetches the rest from peers (CometBFT does the same on ENOSPC).

Why stop rather than pause and resume by itself: after a failed write, writing again in
the same process is what loses data. LevelDB's log writer counts the bytes of a record it
failed to append as written, so once space returns every later record lands misaligned:
LevelDB accepts and acknowledges those writes, synced ones included, and drops them all
when it next opens the store ("dropping 32768 bytes; Corruption: checksum mismatch" in
its LOG; tests/node/test_diskfull.py shows it). The WAL has the same shape: a torn record
followed by good ones, and the restart keeps only what precedes the tear. And the node's
memory is ahead of its disk: the consensus core holds the vote it signed (the WAL record
that makes it safe to send is what failed), the state machine has applied a block whose
write set never reached the store. Reopening every store and rebuilding the core from
the WAL is exactly what start-up does, and start-up is tested against crashes at every
step of the storage order (tests/e2e/test_crash_points.py), so the restart is the
recovery, and nothing is written between the failure and the exit.

Why the same exit code for every write error: the operator's action is the same (look at
the disk the line names, make it writable, restart), and a supervisor that restarts
crashed nodes must not restart this one in a loop before that.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

EXIT_DISK_FULL = 6  # `bookchain node start`: stopped (or refused to start) on a failed write

_FULL_ERRNOS = frozenset((errno.ENOSPC, errno.EDQUOT))
# LevelDB reports errno only as text (plyvel.IOError carries no errno): strerror's words
_FULL_TEXTS = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT))
PROBE_BYTES = 64 * 1024  # what a start-up probe writes: LevelDB needs about this to open a store


class StorageFailure(Exception):
    """A durable write to ``path`` failed; the node cannot keep what it was about to keep.

    Not an ``OSError`` on purpose: code that handles file-system errors for its own reasons
    (a peer's garbage, a missing optional file) must not swallow this one by accident."""

    __slots__ = ("cause", "path")

    def __init__(self, path: str | os.PathLike[str], cause: BaseException) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = str(path)
        self.cause = cause

    @property
    def disk_full(self) -> bool:
        return is_disk_full(self.cause)

    def describe(self) -> str:
        """One line: what failed, where, and why, without a traceback."""
        what = "disk full" if self.disk_full else "storage write failed"
        return f"{what}: cannot write {self.path} ({_reason(self.cause)})"


def is_disk_full(err: BaseException) -> bool:
    """ENOSPC or EDQUOT, from the OS (``errno``) or from LevelDB (only its message says)."""
    if isinstance(err, OSError) and err.errno in _FULL_ERRNOS:
        return True
    text = _text(err)
    return any(t in text for t in _FULL_TEXTS)


def _text(err: BaseException) -> str:
    """The error's message; plyvel's errors carry LevelDB's status as bytes."""
    if len(err.args) == 1 and isinstance(err.args[0], bytes):
        return err.args[0].decode("utf-8", "replace")
    return str(err)


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror if err.errno is None else f"{errno.errorcode.get(err.errno, err.errno)}: {err.strerror}"
    text = _text(err).strip() or type(err).__name__
    return text.splitlines()[0]


@contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn a failed write under ``path`` into a ``StorageFailure``: an ``OSError``, which
    includes LevelDB's I/O errors (``plyvel.IOError``: a write, a sync, or the background
    compaction whose error LevelDB then returns to every later write). LevelDB's other
    errors (corruption, bad arguments) are not the disk's answer to a write and pass."""
    try:
        yield
    except StorageFailure:
        raise
    except OSError as err:
        raise StorageFailure(path, err) from err


@contextmanager
def opening(path: str | os.PathLike[str]) -> Iterator[None]:
    """Opening a LevelDB store writes (a new log, the manifest, a table recovered from the
    log): a full disk there is a ``StorageFailure``. Any other error passes unchanged for
    its caller, above all the lock of a store another process holds open (replay copies a
    running node's block store when it meets it; a node started twice on one home says so)."""
    try:
        yield
    except OSError as err:
        if is_disk_full(err):
            raise StorageFailure(path, err) from err
        raise


def open_append(path: Path) -> int:
    """An append-only log file under the data directory (created with its directory), as
    a descriptor for ``write_all``; a failure to create it is a ``StorageFailure``."""
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)


def write_atomically(path: Path, data: bytes, mode: int = 0o666) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old file or the new one,
    never half of one: a temporary file beside it (``mode``, less the umask), fsynced,
    renamed over it, then the rename's directory entry fsynced where the file system
    allows. A write that fails (a full disk) removes the temporary file, which would
    otherwise hold the space that is short, and raises ``StorageFailure``."""
    tmp = path.with_name(f".{path.name}.tmp")
    with writing(path):
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            try:
                write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    with contextlib.suppress(OSError):  # the rename's directory entry; not every fs allows it
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written: a nearly full disk may take part of a
    buffer and return a short count, and the next call raises ENOSPC. Ignoring the count
    would fsync a torn record and count it as written."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def must_write_probe(directory: Path) -> None:
    """Refuse to start on a data directory that cannot take a write: create it, write and
    fsync ``PROBE_BYTES`` in a temporary file, remove it. ``StorageFailure`` otherwise."""
    probe = directory / ".write-probe"
    with writing(directory):
        directory.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                write_all(fd, bytes(PROBE_BYTES))
                os.fsync(fd)
            finally:
                os.close(fd)
        finally:
            probe.unlink(missing_ok=True)
