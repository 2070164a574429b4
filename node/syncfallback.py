"""A node restored from a snapshot at height h whose peers no longer keep block h+1.

After a restore the node needs block h+1 from its peers: to certify a pending snapshot
(node/syncverify.py) and then to block-sync from there. Peers prune blocks below their last
``retain_blocks``, so a node that restored an older snapshot (or stayed down after the
restore) can find every peer past h+1; it would ask them forever. Instead:

- A peer asked (``/bookchain/sync/1``) for blocks below the lowest it keeps answers with
  that lowest height, an integer, rather than an empty list (which means "not there yet").
  An older node's client takes the integer as no answer, as it took the empty list.
- When, in one round over the connected peers, none gives block h+1, none says "not yet"
  (a peer behind or at h may still commit it), and at least one says it keeps blocks only
  from some height above h+1 (``PeerRound.pruned_from``), block h+1 is gone from the peers.
- The node then falls back to a newer snapshot from ``storage.state_sync_from`` when that
  is a node's RPC whose newest snapshot is recent enough for the peers' blocks to continue
  it (``snapshot height + 1 >= the lowest block a peer keeps``): it stops, discards the
  state and blocks the old restore wrote (``discard_synced_state``), and starts again in
  the same process, which state-syncs from that RPC as a fresh node does (node/main.py).
  A file source, or an RPC without such a snapshot, cannot help: the node logs why and
  keeps asking (a newer snapshot may appear).

Only a node that has applied no block past its snapshot does this (its block store ends at
the snapshot's anchor), so nothing the node could not fetch again is discarded.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from typing import TYPE_CHECKING, Any

from node.diskfull import writing

if TYPE_CHECKING:
    from node.config import NodeConfig

LISTING_TIMEOUT_S = 30


class PeerRound:
    """The answers of one round of block requests for one height: how many gave the
    block, how many said they do not have it yet, and the lowest block each pruning peer
    still keeps."""

    __slots__ = ("got", "kept_from", "waiting")

    def __init__(self) -> None:
        self.got = False
        self.waiting = False
        self.kept_from: list[int] = []

    def answer(self, decoded: Any) -> None:
        """One peer's decoded sync answer: an integer (it keeps blocks only from there on),
        an empty list (not there yet), anything else ignored (the caller judges blocks)."""
        if type(decoded) is int:
            self.kept_from.append(decoded)
        elif decoded == []:
            self.waiting = True

    def pruned_from(self, height: int) -> int | None:
        """The lowest block any peer keeps, when every peer that answered pruned ``height``
        (none gave it, none may still commit it); None otherwise."""
        if self.got or self.waiting or not self.kept_from:
            return None
        lowest = min(self.kept_from)
        return lowest if lowest > height else None


def newest_snapshot_height(rpc_url: str) -> int | None:
    """The height of the newest snapshot a node's RPC offers (``/snapshots``), None when it
    offers none. Raises OSError/ValueError/KeyError/TypeError when it cannot be read."""
    with urllib.request.urlopen(rpc_url.rstrip("/") + "/snapshots", timeout=LISTING_TIMEOUT_S) as resp:
        heights = [s["height"] for s in json.load(resp)["snapshots"]]
    if not all(type(h) is int for h in heights):
        raise ValueError("a snapshot height is not an integer")
    return max(heights) if heights else None


def discard_synced_state(config: NodeConfig) -> None:
    """Remove what a restore wrote (the state store, the block store, the pending marker),
    leaving empty directories, so the next start state-syncs like a fresh node. The WAL,
    evidence, mempool journal and the node's own snapshots stay."""
    with writing(config.home / "data"):
        for d in (config.state_dir, config.blocks_dir):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True, exist_ok=True)
        config.state_sync_pending_path.unlink(missing_ok=True)
