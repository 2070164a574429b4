"""State snapshots: a new node starts from a snapshot plus later blocks instead of
replaying from genesis, and an old node can prune blocks below its snapshots.

A snapshot is every state record at one committed height (``Exchange.snapshot_records``,
sorted by key), with the chain id, height, app hash and that block's hash and time, in one
msgpack body framed by a magic line and a sha256 trailer (the trailer catches truncation,
not forgery). Trust model (as CometBFT's state sync; node/syncverify.py says how and
when): the records must give the stated app hash (the root of the state tree), checked
before anything is written, and the stated app hash must be the one block h+1's certified
header carries, checked before anything is written when block h+1 can be had, and in any
case before the node serves exchange state or votes.
"""

from __future__ import annotations

import hashlib
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack

from node import syncverify
from node.diskfull import write_atomically, writing
from node.syncfallback import newest_snapshot_height
from node.syncverify import Anchor, SnapshotError
from state.codec import MAX_I64
from state.errors import Code

if TYPE_CHECKING:
    from state.genesis import Genesis

__all__ = ["MAGIC", "Snapshot", "SnapshotError", "decode_snapshot", "encode_snapshot", "fetch_snapshot",
           "list_snapshots", "prune_snapshots", "restore_into", "snapshot_path", "write_snapshot"]

MAGIC = b"BOOKCHAIN-SNAPSHOT/1\n"
MAX_SNAPSHOT_BYTES = 4 << 30
READ_TIMEOUT_S = 300  # the longest a server may go silent mid-download
READ_CHUNK_BYTES = 1 << 20
DOWNLOAD_DEADLINE_S = 3600  # the whole download (4 GiB at ~1.2 MB/s)


@dataclass(frozen=True, slots=True)
class Snapshot:
    chain_id: str
    height: int
    app_hash: bytes
    block_hash: bytes
    block_time_ms: int
    records: list[tuple[bytes, bytes]]

    @property
    def anchor(self) -> Anchor:
        return Anchor(self.height, self.app_hash, self.block_hash)


def encode_snapshot(s: Snapshot) -> bytes:
    body: bytes = msgpack.packb([s.chain_id, s.height, s.app_hash, s.block_hash, s.block_time_ms,
                                 [[k, v] for k, v in s.records]], use_bin_type=True)
    return MAGIC + body + hashlib.sha256(body).digest()


def decode_snapshot(data: bytes) -> Snapshot:
    """Parse untrusted bytes: ``SNAPSHOT_MALFORMED`` unless every field has its type and the
    records are strictly sorted by key (so no key appears twice). Says nothing of trust."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 32:
        raise SnapshotError(Code.SNAPSHOT_MALFORMED, "not a bookchain snapshot")
    body, digest = data[len(MAGIC):-32], data[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise SnapshotError(Code.SNAPSHOT_MALFORMED, "snapshot checksum mismatch (truncated or corrupt)")
    try:
        fields: Any = msgpack.unpackb(body, raw=False, use_list=False)
        chain_id, height, app_hash, block_hash, time_ms, raw_records = fields
        # height h + 1 (the block that certifies it) must be a valid block height, and the
        # block store keeps heights and times as 8-byte integers
        if not (type(chain_id) is str and type(height) is int and 1 <= height < MAX_I64
                and type(time_ms) is int and 0 <= time_ms <= MAX_I64
                and type(app_hash) is bytes and len(app_hash) == 32
                and type(block_hash) is bytes and len(block_hash) == 32 and type(raw_records) is tuple):
            raise ValueError("a header field has the wrong type")
        records: list[tuple[bytes, bytes]] = list(raw_records)
    except (ValueError, TypeError) as err:
        raise SnapshotError(Code.SNAPSHOT_MALFORMED, f"malformed snapshot: {err}") from None
    previous = b""
    for i, record in enumerate(records):
        if not (type(record) is tuple and len(record) == 2 and type(record[0]) is bytes
                and type(record[1]) is bytes and record[0] > previous):
            raise SnapshotError(Code.SNAPSHOT_MALFORMED, f"malformed snapshot: record {i} is not a "
                                "(key, value) pair of bytes in strictly increasing key order")
        previous = record[0]
    return Snapshot(chain_id, height, app_hash, block_hash, time_ms, records)


def snapshot_path(directory: Path, height: int) -> Path:
    return directory / f"{height:012d}.snap"


def write_snapshot(directory: Path, s: Snapshot) -> Path:
    """Write atomically (temp file, fsync, rename) so a crash never leaves half a snapshot.
    A write that fails (a full disk) removes the temporary file, which would otherwise hold
    the space that is short, and raises ``StorageFailure`` (node/diskfull.py)."""
    final = snapshot_path(directory, s.height)
    with writing(final):
        directory.mkdir(parents=True, exist_ok=True)
    write_atomically(final, encode_snapshot(s))
    return final


def list_snapshots(directory: Path) -> list[int]:
    if not directory.exists():
        return []
    return sorted(int(p.stem) for p in directory.glob("*.snap") if p.stem.isdigit())


def prune_snapshots(directory: Path, keep: int) -> None:
    for h in list_snapshots(directory)[:-keep] if keep > 0 else []:
        snapshot_path(directory, h).unlink(missing_ok=True)


def fetch_snapshot(source: str) -> Snapshot:
    """From a file path, or a node's RPC (``http://host:port`` → its newest snapshot).
    Unverified: ``restore_into`` and replay check it (node/syncverify.py)."""
    try:
        data = _read(source)
    except SnapshotError:
        raise
    # URLError and HTTPError are OSErrors; RecursionError: JSON nested too deep to parse
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as err:
        reason = getattr(err, "reason", None) or getattr(err, "strerror", None) or err
        raise SnapshotError(Code.SNAPSHOT_UNAVAILABLE, f"cannot read a snapshot from {source}: {reason}") from None
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise SnapshotError(Code.SNAPSHOT_MALFORMED, f"{source}: a snapshot is at most {MAX_SNAPSHOT_BYTES} bytes")
    return decode_snapshot(data)


def _read(source: str) -> bytes:
    if not source.startswith(("http://", "https://")):
        return Path(source).read_bytes()
    base = source.rstrip("/")
    if "/snapshot" not in base:
        newest = newest_snapshot_height(base)
        if newest is None:
            raise SnapshotError(Code.SNAPSHOT_UNAVAILABLE, f"{source} offers no snapshot")
        base = f"{base}/snapshot?height={newest}"
    deadline = time.monotonic() + DOWNLOAD_DEADLINE_S
    chunks: list[bytes] = []
    size = 0
    with urllib.request.urlopen(base, timeout=READ_TIMEOUT_S) as resp:
        while size <= MAX_SNAPSHOT_BYTES:
            chunk: bytes = resp.read(min(READ_CHUNK_BYTES, MAX_SNAPSHOT_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if time.monotonic() > deadline:  # the timeout bounds each read; a server trickling bytes is bounded here
                raise SnapshotError(Code.SNAPSHOT_UNAVAILABLE, f"{source} sent {size} bytes of the snapshot "
                                    f"in {DOWNLOAD_DEADLINE_S} s and is still sending: too slow")
    return b"".join(chunks)


def restore_into(snapshot: Snapshot, genesis: Genesis, state_dir: Path, blocks_dir: Path, pending_path: Path,
                 next_block: tuple[bytes, bytes] | None = None) -> bool:
    """Seed an empty node home from a snapshot, after checking it: the state store gets every
    record with the snapshot's height and app hash; the block store continues after that height.

    Refused with a ``SnapshotError`` and nothing written: another chain's snapshot, records
    that do not give the stated app hash or hold another block time than the stated one
    (``SNAPSHOT_ROOT_MISMATCH``), and, when
    ``next_block`` (block h+1's raw bytes and certificate) is given, a block that does not
    prove itself or that certifies another app hash. Without ``next_block`` the state is
    written under the pending marker at ``pending_path`` (written first), which keeps the
    node from serving or voting until its peers' block h+1 certifies it (node/syncverify.py).
    Returns whether the snapshot is certified."""
    from node.blockstore import BlockStore
    from state.store import StateStore

    if snapshot.chain_id != genesis.chain_id:
        raise SnapshotError(Code.SNAPSHOT_MALFORMED,
                            f"snapshot is for chain {snapshot.chain_id!r}, not {genesis.chain_id!r}")
    anchor = snapshot.anchor
    syncverify.must_match_records(snapshot.records, anchor, genesis.hash())
    syncverify.must_match_block_time(snapshot.records, snapshot.height, snapshot.block_time_ms, genesis)
    if next_block is not None:
        syncverify.must_certify_next(anchor, *next_block, genesis)
    else:
        _must_load(snapshot, genesis)
    store = StateStore(str(state_dir))
    try:
        if store.meta() is not None:
            raise SnapshotError(Code.SNAPSHOT_UNAVAILABLE, "the state store is not empty; state sync needs a fresh node")
        if next_block is None:
            syncverify.write_pending(pending_path, anchor)
        else:
            syncverify.clear_pending(pending_path)
        store.commit(list(snapshot.records), snapshot.height, snapshot.app_hash)
    finally:
        store.close()
    blocks = BlockStore(str(blocks_dir))
    try:
        blocks.start_at(snapshot.height, snapshot.block_hash, snapshot.block_time_ms)
    finally:
        blocks.close()
    return next_block is not None


def _must_load(snapshot: Snapshot, genesis: Genesis) -> None:
    """Records not yet certified must at least be ones the exchange can load, or a forger
    whose records give their own stated hash could make the node fail at every start."""
    from state.exchange import Exchange

    try:
        Exchange(genesis).load_records(snapshot.records)
    except Exception as err:  # untrusted records into a loader written for our own store
        raise SnapshotError(Code.SNAPSHOT_MALFORMED,
                            f"a snapshot record does not load ({type(err).__name__}: {err})") from None
