"""The evidence pool: equivocation evidence seen but not yet committed, kept across restarts.

Why persisted: evidence is found while a height is being decided and committed a height or
more later, by whichever validator proposes next. A node that crashes in between would
forget the only proof it had (the equivocator's votes are not in any block), so the pool
lives in ``HOME/data/evidence/pending.bin`` (the encoded items, msgpack), rewritten
atomically (temp file, fsync, rename) at every change; changes are rare (one per
equivocation, one per commit that includes some).

What enters: evidence that passes the stateless check against the validator set and
whose offence no block may carry any more (committed, as the state records it, or older
than the genesis evidence max age: ``ConsensusDriver._committed``). What leaves: evidence a
committed block holds, and evidence that expires. The consensus core keeps its own copy to
propose from; the driver feeds it the pool at start and every new piece (node/driver.py).
Bounded by ``MAX_PENDING``: a validator that equivocates at every height cannot fill a
disk; the oldest heights are kept (they are the ones to commit first).

A rewrite that fails (a full disk) raises ``StorageFailure`` (node/diskfull.py) and leaves
the previous file in place: the temporary file is removed, the rename never happened.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from consensus.errors import MalformedMessage
from consensus.evidence import DuplicateVote
from node.diskfull import write_atomically
from state.codec import decode, encode
from state.errors import TxError

log = logging.getLogger("bookchain.evidence")

MAX_PENDING = 256
#: A peer's evidence more than this many heights below ours is dropped unread (not blamed).
#: Why: every new piece is a rewrite and fsync of the pool file on the event loop, and a
#: validator can sign a conflicting pair for every height the chain ever had, one new
#: offence each: a million-height chain was a million fsyncs on every node's loop, from
#: one validator, and a loop busy with fsyncs is a chain that stops. Honest evidence is
#: found at the current height and committed a few heights later (the pool is gossiped
#: every few seconds meanwhile); the node that found it proposes it itself whatever its
#: age, since block validity does not depend on this bound.
MAX_PEER_EVIDENCE_AGE = 256
FILE = "pending.bin"

Key = tuple[int, bytes, int, int]


class EvidencePool:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._pending: dict[Key, DuplicateVote] = {}
        self._load()

    @property
    def path(self) -> Path:
        return self.dir / FILE

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, key: object) -> bool:
        return key in self._pending

    def pending(self) -> list[DuplicateVote]:
        """Oldest first (height, validator, round, type)."""
        return [self._pending[k] for k in sorted(self._pending)]

    def add(self, evidence: DuplicateVote) -> bool:
        """Keep ``evidence`` (already checked by the caller); False when it was known, the
        pool holds a proof for the same validator and height, or it is full of older evidence."""
        if evidence.key in self._pending:
            return False
        if any(k[0] == evidence.height and k[1] == evidence.validator for k in self._pending):
            # one proof per validator and height is enough to punish it; more (other rounds,
            # other steps) would only let an equivocating validator make every node rewrite
            # and fsync this file once per signed pair
            return False
        if len(self._pending) >= MAX_PENDING:
            newest = max(self._pending)
            if evidence.key > newest:
                return False
            del self._pending[newest]
        self._pending[evidence.key] = evidence
        self._save()
        return True

    def remove(self, keys: Iterable[Key]) -> int:
        """Forget committed evidence; returns how many pieces left the pool."""
        gone = [k for k in keys if self._pending.pop(k, None) is not None]
        if gone:
            self._save()
        return len(gone)

    # ------------------------------------------------------------------ file
    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        try:
            items = decode(raw, max_bytes=64 << 20)
            if not isinstance(items, list):
                raise ValueError("not a list")
            for item in items:
                ev = DuplicateVote.decode(item)
                self._pending[ev.key] = ev
        except (ValueError, TxError, MalformedMessage) as err:
            # A torn or foreign file must not stop the node: evidence is a record, not
            # consensus state. Keep the bad file for a human and start empty.
            bad = self.path.with_suffix(".bad")
            os.replace(self.path, bad)
            self._pending.clear()
            log.warning("evidence pool %s unreadable (%s): moved to %s, starting empty", self.path, err, bad)

    def _save(self) -> None:
        write_atomically(self.path, encode([ev.encode() for ev in self.pending()]))
