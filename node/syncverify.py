"""What a snapshot must prove before a node applies or serves it.

A snapshot at height h states every record, the app hash after h and the hash of block h.
Two independent facts make it the chain's state, and both are checked:

1. **root**: its records give the app hash it states. ``app_hash = sha256("bookchain/app/2"
   || genesis_hash || root)`` where root is the sparse Merkle tree over the records
   (state/apphash.py, state/merkle.py), so one altered, added or missing record changes it.
   This needs nothing but the snapshot and the genesis (``must_match_records``). The block
   time the snapshot states must be the one the records hold (``must_match_block_time``):
   the node continues from it, and only the records' copy is under the app hash.
2. **certified**: the stated app hash and block hash are the chain's. Block h+1's header
   carries ``prev_app_hash`` (the app hash after h) and ``prev_block_hash`` (block h's
   hash), and its commit certificate, checked against the genesis validator set, proves
   that more than 2/3 of the voting power signed that header (``must_certify_next``). A
   forger who restates the app hash of altered records passes 1 and fails 2; the
   validators never signed it.

Where block h+1 comes from, and what happens until it is checked (the simplest sound
design we found):

- State sync from a node's RPC: restore asks that RPC for block h+1 and checks 1 and 2
  before it writes anything (node/snapshots.py ``restore_into``). The RPC need not be
  trusted: a block it cannot certify refuses the snapshot.
- When block h+1 cannot be had then (a snapshot file, a snapshot of the RPC's newest
  height, an RPC that withholds it), restore checks 1, writes a *pending* marker
  (``data/state_sync.pending``) first and then the state. A node that starts with the
  marker runs p2p and the RPC but not consensus: it neither proposes, votes nor signs
  oracle prices, and its RPC answers every exchange route with 503 ``SNAPSHOT_UNVERIFIED``
  (only /health, /status, /genesis, /validators, /net_info and /metrics answer). It asks
  its peers for block h+1 (``/bookchain/sync/1``) until one has it. A block that does not
  prove itself (``NEXT_BLOCK_UNPROVEN``) is that peer's fault: the next peer is asked. A
  proven block h+1 that disagrees with the snapshot is proof of forgery
  (``SNAPSHOT_NOT_CERTIFIED``): the node halts with one log line, /status says why, and the
  marker stays, so a restart halts again (the operator removes ``data/`` and syncs from
  another source). When block h+1 agrees, the marker is removed and consensus starts; block
  sync then commits h+1 as usual.

The marker is written before the state, so a crash between the two leaves either no state
(state sync runs again) or a marked one; it is removed only after the check passed.
"""

from __future__ import annotations

import bisect
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import msgpack

from consensus.block import Block
from consensus.certificate import CertificateError, CommitCertificate
from consensus.errors import MalformedMessage
from consensus.validators import ValidatorSet
from node import sigbatch
from state import apphash
from state import records as state_records
from state.errors import Code
from state.genesis import Genesis
from state.merkle import StateTree


class SnapshotError(ValueError):
    """A snapshot refused (or one that cannot be read), with a stable code
    (state/errors.py, 91x) that the node's log line and the CLI show."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Anchor:
    """What a snapshot states about its height h, and all that block h+1 must certify."""

    height: int
    app_hash: bytes
    block_hash: bytes


# ------------------------------------------------------------------ 1. root

def records_app_hash(records: list[tuple[bytes, bytes]], genesis_hash: bytes) -> bytes:
    """The app hash these records give (the tree is built once, from scratch)."""
    return apphash.app_hash(genesis_hash, StateTree.of_records(records).root)


def must_match_records(records: list[tuple[bytes, bytes]], anchor: Anchor, genesis_hash: bytes) -> None:
    computed = records_app_hash(records, genesis_hash)
    if computed != anchor.app_hash:
        raise SnapshotError(Code.SNAPSHOT_ROOT_MISMATCH,
                            f"the snapshot's records at height {anchor.height} give app hash {computed.hex()}, "
                            f"it states {anchor.app_hash.hex()} (altered or damaged records)")


def records_block_time(records: list[tuple[bytes, bytes]], genesis: Genesis) -> int:
    """The time of block h as the records hold it (the counters record, state/exchange.py:
    every block sets it to its header's time), the genesis time when there is none. Raises
    ``SNAPSHOT_MALFORMED`` when the record is not four integers. ``records`` are sorted."""
    at = bisect.bisect_left(records, (state_records.COUNTERS_KEY,))
    if at == len(records) or records[at][0] != state_records.COUNTERS_KEY:
        return genesis.genesis_time_ms
    try:
        rec = state_records.decode_record(records[at][1])
    except (ValueError, TypeError, msgpack.ExtraData) as err:
        raise SnapshotError(Code.SNAPSHOT_MALFORMED, f"the counters record does not decode: {err}") from None
    if not (type(rec) is list and len(rec) == 4 and all(type(x) is int for x in rec)):
        raise SnapshotError(Code.SNAPSHOT_MALFORMED, "the counters record is not four integers")
    time_ms: int = rec[2]
    return time_ms


def must_match_block_time(records: list[tuple[bytes, bytes]], height: int, stated_ms: int, genesis: Genesis) -> None:
    """The block time a snapshot states must be the one its records hold. Why: the node
    continues from the stated time (the next block must be later), and the app hash, the
    only thing the root check and block h+1's certificate cover, commits to the records'
    time, not to the stated one: a snapshot stating a time past the chain's would have the
    node refuse every later block, certificate and all, and never catch up."""
    held = records_block_time(records, genesis)
    if held != stated_ms:
        raise SnapshotError(Code.SNAPSHOT_ROOT_MISMATCH,
                            f"the snapshot states block time {stated_ms} at height {height}, its records "
                            f"hold {held} (an altered header)")


# ------------------------------------------------------------------ 2. certified

def validator_set(genesis: Genesis) -> ValidatorSet:
    return ValidatorSet((v.pubkey, v.power) for v in genesis.validators)


def must_prove_block(raw_block: bytes, raw_cert: bytes, height: int, genesis: Genesis) -> Block:
    """Block ``height`` as fetched, if its certificate proves it: > 2/3 of the genesis
    validators' power precommitted this very header. ``NEXT_BLOCK_UNPROVEN`` otherwise (the
    fault of whoever sent it, not of the snapshot)."""
    try:
        block, cert = Block.decode(raw_block), CommitCertificate.decode(raw_cert)
    except MalformedMessage as err:
        raise SnapshotError(Code.NEXT_BLOCK_UNPROVEN, f"block {height} does not decode: {err}") from None
    if block.height != height or cert.height != height or cert.block_hash != block.hash:
        raise SnapshotError(Code.NEXT_BLOCK_UNPROVEN, f"the certificate does not commit block {height}")
    if block.header.chain_id != genesis.chain_id:
        raise SnapshotError(Code.NEXT_BLOCK_UNPROVEN, f"block {height} is of chain {block.header.chain_id!r}")
    try:
        cert.must_verify(validator_set(genesis), genesis.chain_id, sigbatch.valid_prefix)  # a peer's: C speed
    except CertificateError as err:
        raise SnapshotError(Code.NEXT_BLOCK_UNPROVEN, f"block {height}'s certificate: {err}") from None
    return block


def must_agree(anchor: Anchor, block: Block) -> None:
    """A proven block h+1 against the snapshot: ``SNAPSHOT_NOT_CERTIFIED`` (forgery) unless
    it carries the snapshot's app hash and links to its block hash."""
    header = block.header
    if header.prev_app_hash != anchor.app_hash:
        raise SnapshotError(Code.SNAPSHOT_NOT_CERTIFIED,
                            f"the snapshot states app hash {anchor.app_hash.hex()} after height {anchor.height}, "
                            f"the chain certified {header.prev_app_hash.hex()} (block {block.height})")
    if header.prev_block_hash != anchor.block_hash:
        raise SnapshotError(Code.SNAPSHOT_NOT_CERTIFIED,
                            f"the snapshot states block hash {anchor.block_hash.hex()} at height {anchor.height}, "
                            f"the chain certified {header.prev_block_hash.hex()} (block {block.height})")


def must_certify_next(anchor: Anchor, raw_block: bytes, raw_cert: bytes, genesis: Genesis) -> None:
    must_agree(anchor, must_prove_block(raw_block, raw_cert, anchor.height + 1, genesis))


def fetch_next_block(rpc_url: str, height: int, timeout: float = 30.0) -> tuple[bytes, bytes] | None:
    """Block ``height`` and its certificate from a node's RPC (``/blocks``), or None when that
    node does not have it (yet) or cannot be read: the caller then asks peers. Nothing it
    returns is trusted before ``must_certify_next``."""
    try:
        with urllib.request.urlopen(f"{rpc_url.rstrip('/')}/blocks?from={height}&to={height}",
                                    timeout=timeout) as resp:
            blocks = json.load(resp)["blocks"]
        if not blocks or blocks[0]["height"] != height:
            return None
        return bytes.fromhex(blocks[0]["raw_block"]), bytes.fromhex(blocks[0]["raw_certificate"])
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError, IndexError, RecursionError):
        return None


def rpc_base(source: str) -> str | None:
    """The node RPC a snapshot source names (``http://host:port[/snapshot?...]``), or None for a file."""
    if not source.startswith(("http://", "https://")):
        return None
    return source.split("/snapshot", 1)[0].rstrip("/")


# ------------------------------------------------------------------ the pending marker

def write_pending(path: Path, anchor: Anchor) -> None:
    """Atomically (temp file, fsync, rename): the state about to be written is uncertified."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(msgpack.packb([anchor.height, anchor.app_hash, anchor.block_hash], use_bin_type=True))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_pending(path: Path) -> Anchor | None:
    if not path.exists():
        return None
    try:
        height, app_hash, block_hash = msgpack.unpackb(path.read_bytes(), raw=False)
        if type(height) is not int or not isinstance(app_hash, bytes) or not isinstance(block_hash, bytes):
            raise ValueError("bad field types")
    except (ValueError, TypeError, msgpack.ExtraData) as err:
        # unreadable: keep the node gated rather than guess; the operator resyncs
        raise SnapshotError(Code.SNAPSHOT_MALFORMED, f"{path} is unreadable ({err}): remove the node's "
                            "data/ and state-sync again") from None
    return Anchor(height, app_hash, block_hash)


def clear_pending(path: Path) -> None:
    path.unlink(missing_ok=True)
