"""State snapshots: a new node starts from a snapshot plus later blocks instead of
replaying from genesis, and an old node can prune blocks below its snapshots.

A snapshot is every state record at one committed height (``Exchange.snapshot_records``),
with the chain id, height, app hash and that block's hash and time, in one msgpack body
framed by a magic line and a sha256 trailer. Trust model (as CometBFT's state sync): the
snapshot's app hash is checked against the chain, because block h+1's header (certified by
>2/3 of the validators) carries the app hash after h; the node halts with an app-hash
mismatch before applying anything on top of a forged snapshot.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import msgpack

MAGIC = b"BOOKCHAIN-SNAPSHOT/1\n"
MAX_SNAPSHOT_BYTES = 4 << 30


class SnapshotError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Snapshot:
    chain_id: str
    height: int
    app_hash: bytes
    block_hash: bytes
    block_time_ms: int
    records: list[tuple[bytes, bytes]]


def encode_snapshot(s: Snapshot) -> bytes:
    body: bytes = msgpack.packb([s.chain_id, s.height, s.app_hash, s.block_hash, s.block_time_ms,
                                 [[k, v] for k, v in s.records]], use_bin_type=True)
    return MAGIC + body + hashlib.sha256(body).digest()


def decode_snapshot(data: bytes) -> Snapshot:
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 32:
        raise SnapshotError("not a bookchain snapshot")
    body, digest = data[len(MAGIC):-32], data[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise SnapshotError("snapshot checksum mismatch (truncated or corrupt)")
    try:
        chain_id, height, app_hash, block_hash, time_ms, records = msgpack.unpackb(body, raw=False)
        return Snapshot(chain_id, height, app_hash, block_hash, time_ms, [(k, v) for k, v in records])
    except (ValueError, TypeError) as err:
        raise SnapshotError(f"malformed snapshot: {err}") from None


def snapshot_path(directory: Path, height: int) -> Path:
    return directory / f"{height:012d}.snap"


def write_snapshot(directory: Path, s: Snapshot) -> Path:
    """Write atomically (temp file, fsync, rename) so a crash never leaves half a snapshot."""
    directory.mkdir(parents=True, exist_ok=True)
    final = snapshot_path(directory, s.height)
    tmp = final.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(encode_snapshot(s))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    return final


def list_snapshots(directory: Path) -> list[int]:
    if not directory.exists():
        return []
    return sorted(int(p.stem) for p in directory.glob("*.snap") if p.stem.isdigit())


def prune_snapshots(directory: Path, keep: int) -> None:
    for h in list_snapshots(directory)[:-keep] if keep > 0 else []:
        snapshot_path(directory, h).unlink(missing_ok=True)


def fetch_snapshot(source: str) -> Snapshot:
    """From a file path, or a node's RPC (``http://host:port`` → its newest snapshot)."""
    if source.startswith(("http://", "https://")):
        import json

        base = source.rstrip("/")
        if "/snapshot" not in base:
            with urllib.request.urlopen(base + "/snapshots", timeout=30) as resp:
                heights = [s["height"] for s in json.load(resp)["snapshots"]]
            if not heights:
                raise SnapshotError(f"{source} offers no snapshot")
            base = f"{base}/snapshot?height={max(heights)}"
        with urllib.request.urlopen(base, timeout=300) as resp:
            data = resp.read(MAX_SNAPSHOT_BYTES + 1)
    else:
        data = Path(source).read_bytes()
    return decode_snapshot(data)


def restore_into(snapshot: Snapshot, chain_id: str, state_dir: Path, blocks_dir: Path) -> None:
    """Seed an empty node home from a snapshot: the state store gets every record with the
    snapshot's height and app hash; the block store continues after that height."""
    from node.blockstore import BlockStore
    from state.store import StateStore

    if snapshot.chain_id != chain_id:
        raise SnapshotError(f"snapshot is for chain {snapshot.chain_id!r}, not {chain_id!r}")
    store = StateStore(str(state_dir))
    try:
        if store.meta() is not None:
            raise SnapshotError("the state store is not empty; state sync needs a fresh node")
        store.commit(list(snapshot.records), snapshot.height, snapshot.app_hash)
    finally:
        store.close()
    blocks = BlockStore(str(blocks_dir))
    try:
        blocks.start_at(snapshot.height, snapshot.block_hash, snapshot.block_time_ms)
    finally:
        blocks.close()
