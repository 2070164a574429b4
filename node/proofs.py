"""The heights a node can prove state at: a window of recent state-tree versions and values.

Why a window: the state after block h is provable only once block h+1 (whose header carries
``app_hash(h)``) is committed, so the newest provable height is always one behind the
latest, and a client that asks "at height h" must still get an answer a few blocks later.
The tree (state/merkle.py) is copy-on-write, so keeping the version of each of the last
``K + 1`` heights costs only the tree nodes later blocks replaced; K is ``storage.
proof_heights`` (node/config.py). The window holds at most K + 1 entries, so memory stays
bounded by K.

A proof carries hashes only; the answer also needs the record's bytes as they were at that
height. Those come from a LevelDB snapshot of the state store taken right after the height
was committed: O(1) to take, and it pins (on disk) only the values later blocks overwrote,
again bounded by K. A state machine without a LevelDB store (tests, tools) gets a copy of
its records instead.

Lookups never raise on a bad key: an absent key is an absence proof.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from state.merkle import Proof, StateTree, Version, verify


class ValueView(Protocol):
    """The state's records as they were at one height."""

    def get(self, key: bytes) -> bytes | None: ...

    def close(self) -> None: ...


class _CopiedView:
    """The records of an in-memory state, copied (no store to snapshot)."""

    __slots__ = ("_records",)

    def __init__(self, records: dict[bytes, bytes]) -> None:
        self._records = records

    def get(self, key: bytes) -> bytes | None:
        return self._records.get(key)

    def close(self) -> None:
        self._records = {}


def view_of(sm: Any) -> ValueView:
    """A read view of ``sm``'s committed records now: a LevelDB snapshot of its store, or a
    copy of its records when it has no LevelDB store."""
    db = getattr(sm.store, "db", None)
    if db is not None and hasattr(db, "snapshot"):
        view: ValueView = db.snapshot()
        return view
    return _CopiedView(dict(sm.ex.snapshot_records()))


@dataclass(frozen=True, slots=True)
class Entry:
    """One retained height: the tree and version after it, and its records."""

    height: int
    tree: StateTree
    version: Version
    view: ValueView


@dataclass(frozen=True, slots=True)
class Proven:
    """What the window answers for one key at one height."""

    height: int
    key: bytes
    value: bytes | None
    proof: Proof
    state_root: bytes


class ProofInconsistent(RuntimeError):
    """The stored value and the tree disagree (a bug or a damaged store): never served."""


class ProofWindow:
    """The last ``keep + 1`` committed heights (the latest and the ``keep`` before it, the
    ones a committed block certifies)."""

    __slots__ = ("_entries", "keep")

    def __init__(self, keep: int) -> None:
        if keep < 0:
            raise ValueError("proof_heights must not be negative")
        self.keep = keep
        self._entries: deque[Entry] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def latest(self) -> int | None:
        return self._entries[-1].height if self._entries else None

    def heights(self) -> list[int]:
        return [e.height for e in self._entries]

    def record(self, height: int, tree: StateTree, version: Version, view: ValueView) -> None:
        """Keep ``height``'s version (called after each committed block and once at start).
        A height at or below the latest is ignored (``view`` closed); a gap (a state loaded
        from a snapshot) starts the window afresh."""
        latest = self.latest
        if latest is not None and height <= latest:
            view.close()
            return
        if latest is not None and height != latest + 1:
            self.close()
        self._entries.append(Entry(height, tree, version, view))
        while len(self._entries) > self.keep + 1:
            self._entries.popleft().view.close()

    def provable(self, lowest_block: int = 1) -> tuple[int, int] | None:
        """The heights (lo, hi) a proof can be served for: retained, not the latest (no block
        certifies it yet) and certified by a block the store still holds (``lowest_block``:
        its lowest kept block). None when there is none."""
        if len(self._entries) < 2:
            return None
        lo = max(self._entries[0].height, lowest_block - 1)
        hi = self._entries[-1].height - 1
        return (lo, hi) if lo <= hi else None

    def entry(self, height: int) -> Entry | None:
        if not self._entries:
            return None
        i = height - self._entries[0].height
        if 0 <= i < len(self._entries):
            return self._entries[i]
        return None

    def prove(self, height: int, key: bytes) -> Proven | None:
        """The value of ``key`` at ``height`` with its proof against that height's state
        root; None when the height is not retained."""
        e = self.entry(height)
        if e is None:
            return None
        proof = e.tree.prove(key, e.version)
        root = e.tree.root_of(e.version)
        value = e.view.get(key)
        if not verify(root, key, value, proof):
            if not verify(root, key, None, proof):
                raise ProofInconsistent(f"the record {key.hex()} at height {height} does not match the state tree")
            value = None  # stored but not a state record (the store's meta record)
        return Proven(height, key, value, proof, root)

    def close(self) -> None:
        """Release every view (LevelDB snapshots)."""
        while self._entries:
            self._entries.popleft().view.close()
