"""The state tree: a sparse binary Merkle tree over every state record.

Why this structure (README, "App hash"): the app hash must commit to every record so that
one record can be proven against it and a snapshot verified on its own, and a block's cost
must grow with what the block wrote, not with the size of the state. A sparse Merkle tree
keyed by ``sha256(key)`` does both and is *history independent*: its root is a function of
the set of records alone, so a snapshot's records give the root without the log of how
they were written (an append-only QMDB tree hashes less per write but its root depends on
that log, which a snapshot would then have to carry), and a node rebuilds the tree from its
store at start. Leaves sit at the shortest prefix that tells their key apart from every
other key (as in Diem's and Aptos's Jellyfish tree), so a path is ~log2(records) deep.

Definitions (the proof verifier below is the whole specification):

    kh = sha256(key)                         the key's path, bit 0 = the top bit of kh[0]
    vh = sha256(value)
    leaf(kh, vh)  = sha256(0x00 || kh || vh)
    node(l, r)    = sha256(0x01 || l || r)
    EMPTY         = 32 zero bytes
    hash(S, d)    = EMPTY if the set S of records under a prefix of length d is empty,
                    leaf(kh, vh) if S has one record,
                    node(hash(S0, d+1), hash(S1, d+1)) otherwise (S0/S1: bit d is 0/1)
    state_root    = hash(all records, 0)

Updates are copy-on-write: ``update`` returns a new version and leaves the old one intact
(unchanged subtrees are shared), so a node can keep the last few heights for proofs at no
cost but the nodes a block replaced. A block's writes are applied as one sorted batch, so
each tree node on the paths they share is rehashed once per block, not once per write.

This module is the reference. ``state._merkle`` (state/_merkle.c, built at install when a C
compiler is present) computes the same versions ~12x faster; ``backend()`` says which one
runs. Tests compare the two on random and adversarial key sets.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

EMPTY: Final = bytes(32)
MAX_DEPTH: Final = 256  # a path is a 256-bit sha256; two distinct keys part before the end
_sha256 = hashlib.sha256

# A version of the tree. Python backend: None (empty), (hash, kh, vh) for a leaf or
# (hash, left, right, None) for an inner node. C backend: an opaque object.
Version = Any
Item = tuple[bytes, bytes | None]  # (kh, vh), vh None deletes


def key_hash(key: bytes) -> bytes:
    return _sha256(key).digest()


def value_hash(value: bytes) -> bytes:
    return _sha256(value).digest()


def leaf_hash(kh: bytes, vh: bytes) -> bytes:
    return _sha256(b"\x00" + kh + vh).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def bit(kh: bytes, depth: int) -> int:
    return (kh[depth >> 3] >> (7 - (depth & 7))) & 1


Write = tuple[bytes, bytes | None]
Digest = tuple[bytes, bytes]  # (key, sha256(value)[:8], or b"" for a delete)


def hashed_writes(writes: Sequence[Write]) -> list[Item]:
    """A write set as (kh, vh) items sorted by kh: the input ``update`` takes. A key written
    twice keeps its last value."""
    items = {_sha256(k).digest(): (None if v is None else _sha256(v).digest()) for k, v in writes}
    return sorted(items.items())


def hashed_writes_digested(writes: Sequence[Write]) -> tuple[list[Item], tuple[Digest, ...]]:
    """``hashed_writes`` and each write as (key, vh[:8]) in write order, hashing each value once."""
    hashed = [(k, _sha256(k).digest(), None if v is None else _sha256(v).digest()) for k, v in writes]
    items = sorted({kh: vh for _k, kh, vh in hashed}.items())
    return items, tuple((k, b"" if vh is None else vh[:8]) for k, _kh, vh in hashed)


# ---------------------------------------------------------------- Python backend

def _hash_of(node: Version) -> bytes:
    return EMPTY if node is None else node[0]


def _split(items: Sequence[Item], lo: int, hi: int, depth: int) -> int:
    """The first index in items[lo:hi] whose kh has bit ``depth`` set (the items share
    their first ``depth`` bits and are sorted, so those with the bit clear come first)."""
    first = int.from_bytes(items[lo][0], "big")
    shift = 255 - depth
    pivot = (((first >> shift) | 1) << shift).to_bytes(32, "big")
    return bisect_left(items, (pivot,), lo, hi)


def _join(left: Version, right: Version) -> Version:
    if left is None and (right is None or len(right) == 3):
        return right  # a single leaf (or nothing) is its own subtree
    if right is None and len(left) == 3:
        return left
    return (_sha256(b"\x01" + _hash_of(left) + _hash_of(right)).digest(), left, right, None)


def _build(items: Sequence[Item], lo: int, hi: int, depth: int) -> Version:
    """The subtree of the present items in items[lo:hi] (deleted ones skipped)."""
    while lo < hi and items[lo][1] is None:
        lo += 1
    while hi > lo and items[hi - 1][1] is None:
        hi -= 1
    if lo == hi:
        return None
    if hi - lo == 1:
        kh, vh = items[lo]
        assert vh is not None
        return (_sha256(b"\x00" + kh + vh).digest(), kh, vh)
    mid = _split(items, lo, hi, depth)
    return _join(_build(items, lo, mid, depth + 1), _build(items, mid, hi, depth + 1))


def _update(node: Version, items: Sequence[Item], lo: int, hi: int, depth: int) -> Version:
    if lo == hi:
        return node
    if node is None:
        return _build(items, lo, hi, depth)
    if len(node) == 3:  # a leaf in the way: rebuild this subtree from it and the writes
        kh = node[1]
        merged = list(items[lo:hi])
        at = bisect_left(merged, (kh,))
        if at == len(merged) or merged[at][0] != kh:
            merged.insert(at, (kh, node[2]))
        return _build(merged, 0, len(merged), depth)
    mid = _split(items, lo, hi, depth)
    return _join(_update(node[1], items, lo, mid, depth + 1), _update(node[2], items, mid, hi, depth + 1))


def _py_prove(node: Version, kh: bytes) -> tuple[list[bytes], tuple[bytes, bytes] | None]:
    siblings: list[bytes] = []
    depth = 0
    while node is not None and len(node) == 4:
        if bit(kh, depth):
            siblings.append(_hash_of(node[1]))
            node = node[2]
        else:
            siblings.append(_hash_of(node[2]))
            node = node[1]
        depth += 1
    return siblings, (None if node is None else (node[1], node[2]))


class _PyBackend:
    name = "python"

    @staticmethod
    def update(version: Version, items: Sequence[Item]) -> Version:
        return _update(version, items, 0, len(items), 0)

    @staticmethod
    def root(version: Version) -> bytes:
        return _hash_of(version)

    @staticmethod
    def prove(version: Version, kh: bytes) -> tuple[list[bytes], tuple[bytes, bytes] | None]:
        return _py_prove(version, kh)

    @staticmethod
    def hashed_writes(writes: Sequence[Write]) -> list[Item]:
        return hashed_writes(writes)

    @staticmethod
    def hashed_writes_digested(writes: Sequence[Write]) -> tuple[list[Item], tuple[Digest, ...]]:
        return hashed_writes_digested(writes)


class _NativeBackend:
    """``state._merkle`` behind the backend interface."""

    name = "c"

    def __init__(self, module: Any) -> None:
        self.update = module.update
        self.root = module.root
        self.prove = module.prove
        self.hashed_writes = module.hashed_writes

    def hashed_writes_digested(self, writes: Sequence[Write]) -> tuple[Any, tuple[Digest, ...]]:
        batch = self.hashed_writes(writes, True)
        return batch, batch.digests


NATIVE_ABI: Final = 2  # state/_merkle.c's MERKLE_ABI: an extension built from older sources is not used


def _native() -> _NativeBackend | None:
    try:
        from state import _merkle  # type: ignore[attr-defined]
    except ImportError:
        return None
    from state.sha256_native import sha256_functions

    functions = sha256_functions()
    if getattr(_merkle, "ABI", None) != NATIVE_ABI or functions is None or not _merkle.init(*functions):
        return None
    return _NativeBackend(_merkle)


PYTHON: Final = _PyBackend()
_NATIVE = _native()


def backend() -> str:
    """Which implementation computes the tree: "c" or "python"."""
    return "c" if _NATIVE is not None else "python"


def _impl(native: bool | None = None) -> Any:
    if native is None:
        native = _NATIVE is not None
    if native and _NATIVE is None:
        raise RuntimeError("state._merkle is not built")
    return _NATIVE if native else PYTHON


# ---------------------------------------------------------------- the tree

@dataclass(frozen=True, slots=True)
class Proof:
    """Inclusion or absence of one key in the tree whose root the verifier holds.

    ``siblings``: the hashes beside the key's path, from the root down. ``leaf``: what the
    path ends at when that is another key's leaf (an absence proof), as (kh, vh); None when
    it ends at the key's own leaf (inclusion) or at an empty subtree (absence)."""

    siblings: tuple[bytes, ...]
    leaf: tuple[bytes, bytes] | None

    def to_wire(self) -> list[Any]:
        return [list(self.siblings), None if self.leaf is None else list(self.leaf)]

    @staticmethod
    def from_wire(raw: Any) -> Proof:
        """Parse an untrusted proof; raises ValueError on any malformed field."""
        if not isinstance(raw, (list, tuple)) or len(raw) != 2:
            raise ValueError("a proof is [siblings, leaf]")
        siblings, leaf = raw
        if not isinstance(siblings, (list, tuple)) or len(siblings) > MAX_DEPTH:
            raise ValueError(f"a proof has at most {MAX_DEPTH} siblings")
        if not all(isinstance(s, bytes) and len(s) == 32 for s in siblings):
            raise ValueError("a sibling is 32 bytes")
        if leaf is not None:
            if not (isinstance(leaf, (list, tuple)) and len(leaf) == 2
                    and all(isinstance(x, bytes) and len(x) == 32 for x in leaf)):
                raise ValueError("a proof's leaf is [kh, vh] of 32 bytes each")
            leaf = (leaf[0], leaf[1])
        return Proof(tuple(siblings), leaf)


def verify(root: bytes, key: bytes, value: bytes | None, proof: Proof) -> bool:
    """Whether ``proof`` shows that, in the tree of root ``root``, ``key`` holds ``value``
    (``value`` None: that ``key`` is absent). Pure: the whole trust is in ``root``."""
    kh = key_hash(key)
    depth = len(proof.siblings)
    if depth > MAX_DEPTH:
        return False
    if value is not None:
        if proof.leaf is not None:
            return False
        acc = leaf_hash(kh, value_hash(value))
    elif proof.leaf is None:
        acc = EMPTY
    else:
        other, vh = proof.leaf
        if other == kh:
            return False  # that is the key's own leaf: present, not absent
        if depth and (int.from_bytes(other, "big") ^ int.from_bytes(kh, "big")) >> (256 - depth):
            return False  # the leaf is not on this key's path
        acc = leaf_hash(other, vh)
    for d in range(depth - 1, -1, -1):
        sibling = proof.siblings[d]
        acc = node_hash(sibling, acc) if bit(kh, d) else node_hash(acc, sibling)
    return acc == root


class StateTree:
    """The tree of one state, updated block by block; ``version`` is the current one (an
    immutable value a caller may keep to prove against later)."""

    __slots__ = ("_impl", "version")

    def __init__(self, *, native: bool | None = None) -> None:
        self._impl = _impl(native)
        self.version: Version = None

    @classmethod
    def of_records(cls, records: Sequence[tuple[bytes, bytes]], *, native: bool | None = None) -> StateTree:
        tree = cls(native=native)
        tree.apply(records)
        return tree

    @property
    def root(self) -> bytes:
        root: bytes = self._impl.root(self.version)
        return root

    def apply(self, writes: Sequence[Write]) -> bytes:
        """Apply a write set (None deletes) and return the new root."""
        items = self._impl.hashed_writes(writes)
        if items:
            self.version = self._impl.update(self.version, items)
        return self.root

    def apply_digested(self, writes: Sequence[Write]) -> tuple[bytes, tuple[Digest, ...]]:
        """``apply``, and each write as (key, sha256(value)[:8]) in write order: a block
        result's write digests (state/machine.py), which are the tree's value hashes cut
        short, so a block hashes each value once."""
        items, digests = self._impl.hashed_writes_digested(writes)
        if items:
            self.version = self._impl.update(self.version, items)
        return self.root, digests

    def prove(self, key: bytes, version: Version) -> Proof:
        """A proof for ``key`` in ``version`` (``tree.version`` for the current one)."""
        kh = key_hash(key)
        siblings, leaf = self._impl.prove(version, kh)
        if leaf is not None and leaf[0] == kh:
            leaf = None  # the key's own leaf: the verifier recomputes it from the value
        return Proof(tuple(siblings), leaf)

    def root_of(self, version: Version) -> bytes:
        root: bytes = self._impl.root(version)
        return root
