"""The state tree (state/merkle.py and its C twin state/_merkle.c).

The tree is checked against its definition written out a third time here, as directly as
possible (the root of a set of records, recomputed from the set alone), so the incremental
Python reference, the C accelerator and the definition must all agree; proofs must verify
for what is there and for what is not, at every version kept, and fail for anything
altered."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from state import merkle
from state.merkle import EMPTY, Proof, StateTree, verify

BACKENDS = [pytest.param(False, id="python"), pytest.param(
    True, id="c", marks=pytest.mark.skipif(merkle.backend() != "c", reason="state._merkle is not built (no C compiler at install)"))]


def _sha(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def definition_root(records: dict[bytes, bytes]) -> bytes:
    """hash(S, d) exactly as state/merkle.py's docstring defines it."""
    items = sorted((_sha(k), _sha(v)) for k, v in records.items())

    def bit(kh: bytes, d: int) -> int:
        return (kh[d // 8] >> (7 - d % 8)) & 1

    def h(subset: list[tuple[bytes, bytes]], d: int) -> bytes:
        if not subset:
            return EMPTY
        if len(subset) == 1:
            kh, vh = subset[0]
            return _sha(b"\x00", kh, vh)
        return _sha(b"\x01", h([i for i in subset if not bit(i[0], d)], d + 1),
                    h([i for i in subset if bit(i[0], d)], d + 1))

    return h(items, 0)


def _keys_sharing_prefix(bits: int, count: int) -> list[bytes]:
    """Keys whose sha256 agree on their first ``bits`` bits: deep, narrow paths."""
    found: dict[int, list[bytes]] = {}
    i = 0
    while True:
        key = b"adv" + i.to_bytes(4, "big")
        prefix = int.from_bytes(_sha(key)[:4], "big") >> (32 - bits)
        group = found.setdefault(prefix, [])
        group.append(key)
        if len(group) == count:
            return group
        i += 1


DEEP = _keys_sharing_prefix(14, 4)  # four keys in one 14-bit-deep corner of the tree

keys = st.one_of(st.binary(min_size=0, max_size=3), st.sampled_from(DEEP))
values = st.binary(min_size=0, max_size=4)
batches = st.lists(st.lists(st.tuples(keys, st.none() | values), max_size=12), min_size=1, max_size=8)


def _replay(batches_: list[list[tuple[bytes, bytes | None]]]) -> Iterator[dict[bytes, bytes]]:
    state: dict[bytes, bytes] = {}
    for batch in batches_:
        for k, v in batch:
            if v is None:
                state.pop(k, None)
            else:
                state[k] = v
        yield dict(state)


@pytest.mark.parametrize("native", BACKENDS)
@settings(max_examples=150, deadline=None)
@given(batches=batches)
@example(batches=[[(k, b"v") for k in DEEP], [(DEEP[0], None), (DEEP[1], None), (DEEP[2], None)]])
@example(batches=[[(DEEP[0], b"a"), (DEEP[1], b"b")], [(DEEP[1], None)], [(DEEP[0], None)]])
def test_incremental_root_is_the_definition(native: bool, batches: list[list[tuple[bytes, bytes | None]]]) -> None:
    tree = StateTree(native=native)
    for batch, state in zip(batches, _replay(batches), strict=True):
        assert tree.apply(batch) == definition_root(state)
        # History independence: the same records built in one go give the same root.
        assert StateTree.of_records(sorted(state.items()), native=native).root == tree.root


@pytest.mark.skipif(merkle.backend() != "c", reason="state._merkle is not built (no C compiler at install)")
@settings(max_examples=100, deadline=None)
@given(batches=batches, probes=st.lists(keys, max_size=6))
def test_c_and_python_give_the_same_versions_and_proofs(
        batches: list[list[tuple[bytes, bytes | None]]], probes: list[bytes]) -> None:
    c, py = StateTree(native=True), StateTree(native=False)
    for batch in batches:
        assert c.apply(batch) == py.apply(batch)
        for key in probes + [k for k, _ in batch]:
            assert c.prove(key, c.version) == py.prove(key, py.version)


def test_the_small_cases() -> None:
    for native in [False] + ([True] if merkle.backend() == "c" else []):
        tree = StateTree(native=native)
        assert tree.root == EMPTY
        assert verify(EMPTY, b"k", None, tree.prove(b"k", tree.version))
        assert tree.apply([(b"k", b"v")]) == _sha(b"\x00", _sha(b"k"), _sha(b"v"))
        assert tree.prove(b"k", tree.version) == Proof((), None)  # the root is the leaf
        assert tree.apply([(b"k", b"v")]) == tree.root  # rewriting a value changes nothing
        before = tree.root
        assert tree.apply([(b"absent", None)]) == before  # deleting an absent key neither
        assert tree.apply([(b"k", None)]) == EMPTY


@pytest.mark.parametrize("native", BACKENDS)
@settings(max_examples=60, deadline=None)
@given(batches=batches, probes=st.lists(keys, max_size=6))
def test_proofs_at_every_kept_version(native: bool, batches: list[list[tuple[bytes, bytes | None]]],
                                      probes: list[bytes]) -> None:
    """Old versions stay provable after later blocks (copy-on-write), for present and
    absent keys alike, and a proof never says more than it should."""
    tree = StateTree(native=native)
    kept: list[tuple[object, bytes, dict[bytes, bytes]]] = []
    for batch, state in zip(batches, _replay(batches), strict=True):
        tree.apply(batch)
        kept.append((tree.version, tree.root, state))
    for version, root, state in kept:
        for key in set(probes) | set(state) | {k for b in batches for k, _ in b}:
            proof = tree.prove(key, version)
            proof = Proof.from_wire(proof.to_wire())
            value = state.get(key)
            assert verify(root, key, value, proof)
            if value is None:
                assert not verify(root, key, b"", proof)  # absent is not present
            else:
                assert not verify(root, key, None, proof)  # present is not absent
                assert not verify(root, key, value + b"x", proof)
            assert not verify(_sha(root), key, value, proof)  # another root


@pytest.mark.parametrize("native", BACKENDS)
def test_tampered_proofs_fail(native: bool) -> None:
    records = {b"acct/%d" % i: b"balance %d" % i for i in range(200)} | {k: b"deep" for k in DEEP}
    tree = StateTree.of_records(sorted(records.items()), native=native)
    root = tree.root
    absent = [b"nobody", b"acct/999", b"adv" + (10**6).to_bytes(4, "big")]
    cases = [(k, v) for k, v in sorted(records.items())[:20]] + [(k, b"deep") for k in DEEP] \
        + [(k, None) for k in absent]
    for key, value in cases:
        proof = tree.prove(key, tree.version)
        assert verify(root, key, value, proof)
        for d in range(len(proof.siblings)):  # any one sibling altered
            siblings = list(proof.siblings)
            siblings[d] = bytes([siblings[d][0] ^ 1]) + siblings[d][1:]
            assert not verify(root, key, value, Proof(tuple(siblings), proof.leaf))
        assert not verify(root, key, value, Proof(proof.siblings[:-1], proof.leaf))  # truncated
        assert not verify(root, key, value, Proof((*proof.siblings, EMPTY), proof.leaf))  # padded
        if proof.leaf is not None:  # an absence proof that ends at another key's leaf
            other, vh = proof.leaf
            assert not verify(root, key, None, Proof(proof.siblings, (other, _sha(vh))))
            assert not verify(root, key, None, Proof(proof.siblings, (_sha(key), vh)))  # own key
        elif value is None:
            # An absence proof ending at an empty subtree cannot be turned into one that
            # ends at some leaf elsewhere in the tree.
            someone = _sha(b"acct/0")
            assert not verify(root, key, None, Proof(proof.siblings, (someone, _sha(b"balance 0"))))
    # A present key's leaf cannot be passed off as its absence.
    key, value = cases[0]
    proof = tree.prove(key, tree.version)
    assert not verify(root, key, None, Proof(proof.siblings, (_sha(key), _sha(value))))


@pytest.mark.parametrize("native", BACKENDS)
def test_an_absence_that_ends_at_another_leaf(native: bool) -> None:
    tree = StateTree.of_records([(b"only", b"1")], native=native)
    proof = tree.prove(b"other", tree.version)
    assert proof == Proof((), (_sha(b"only"), _sha(b"1")))
    assert verify(tree.root, b"other", None, proof)
    assert not verify(tree.root, b"other", None, Proof((), (_sha(b"only"), _sha(b"2"))))
    assert not verify(tree.root, b"only", None, proof)  # the leaf's own key is present
    two = StateTree.of_records([(k, b"v") for k in DEEP[:2]], native=native)
    proof = two.prove(DEEP[2], two.version)  # shares 14 bits with both: ends deep, at a leaf
    assert len(proof.siblings) >= 14 and verify(two.root, DEEP[2], None, proof)


def test_proofs_from_the_wire_are_checked() -> None:
    good = Proof((bytes(32), b"\x01" * 32), (b"\x02" * 32, b"\x03" * 32))
    assert Proof.from_wire(good.to_wire()) == good
    assert Proof.from_wire([[], None]) == Proof((), None)
    for raw in [None, [], [[]], [[], None, None], "x", [[b"short"], None], [[bytes(33)], None],
                [["00" * 32], None], [[], [bytes(32)]], [[], [bytes(32), bytes(31)]],
                [[], b"\x00" * 64], [[bytes(32)] * (merkle.MAX_DEPTH + 1), None], [None, None],
                [[], [bytes(32), "x"]]]:
        with pytest.raises(ValueError):
            Proof.from_wire(raw)


def test_a_proof_deeper_than_any_path_is_refused() -> None:
    proof = Proof((EMPTY,) * (merkle.MAX_DEPTH + 1), None)
    assert not verify(EMPTY, b"k", None, proof)


def test_the_native_backend_refuses_bad_arguments() -> None:
    if merkle.backend() != "c":
        pytest.skip("state._merkle is not built (no C compiler at install)")
    from state import _merkle  # type: ignore[attr-defined]

    tree = StateTree.of_records([(b"a", b"1")], native=True)
    with pytest.raises(ValueError):
        _merkle.prove(tree.version, b"short")
    with pytest.raises(TypeError):
        _merkle.update(tree.version, [(bytes(32), bytes(32))])  # only its own batches
    with pytest.raises(TypeError):
        _merkle.root(("not", "a", "version"))


@pytest.mark.skipif(merkle.backend() != "c", reason="state._merkle is not built (no C compiler at install)")
def test_large_versions_share_and_release_nodes_correctly() -> None:
    """Trees larger than the C code's release ring (4,096 pending nodes) and update levels
    thousands of nodes wide: dropping a newer version frees only what it held alone, so the
    versions kept still prove and the Python reference agrees with every root."""
    records = {i.to_bytes(4, "big"): i.to_bytes(8, "big") for i in range(20_000)}
    c, py = StateTree(native=True), StateTree(native=False)
    assert c.apply(list(records.items())) == py.apply(list(records.items())) == definition_root(records)
    base = c.version
    for step in range(3):
        writes: list[tuple[bytes, bytes | None]] = [
            (i.to_bytes(4, "big"), None if i % 7 == step else bytes([step]) * 8) for i in range(step, 20_000, 3)]
        writes += [(b"new" + i.to_bytes(4, "big"), b"x") for i in range(step * 1000, step * 1000 + 3000)]
        assert c.apply(writes) == py.apply(writes)
    c.version = None  # the newer versions' nodes are released; base's are kept
    key = (12_345).to_bytes(4, "big")
    proof = c.prove(key, base)
    assert verify(c.root_of(base), key, records[key], proof)
    assert c.root_of(base) == definition_root(records)
    c.version = base
    assert c.apply([(key, b"changed")]) == definition_root({**records, key: b"changed"})
    del base
    c.version = None


@pytest.mark.parametrize("native", BACKENDS)
def test_write_digests_are_the_value_hashes_in_write_order(native: bool) -> None:
    writes: list[tuple[bytes, bytes | None]] = [(b"b", b"2"), (b"a", b"1"), (b"gone", None), (b"a", b"3")]
    root, digests = StateTree(native=native).apply_digested(writes)
    assert root == definition_root({b"a": b"3", b"b": b"2"})
    assert digests == tuple((k, b"" if v is None else _sha(v)[:8]) for k, v in writes)
