"""node/proofs.py: which heights the window keeps, and that every kept height proves the
values it had (not the latest ones) against its own state root."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.block import Block
from node.config import StorageConfig
from node.proofs import ProofInconsistent, ProofWindow
from state import records
from state.apphash import app_hash
from state.merkle import StateTree, verify
from tests.node.proofchain import ALICE, ProvingNode


class DictView:
    """A height's records, remembering whether the window released it."""

    def __init__(self, records: dict[bytes, bytes]) -> None:
        self.records = dict(records)
        self.closed = False

    def get(self, key: bytes) -> bytes | None:
        assert not self.closed, "read after close"
        return self.records.get(key)

    def close(self) -> None:
        self.closed = True


def run_blocks(window: ProofWindow, blocks: list[dict[bytes, bytes | None]]) -> tuple[StateTree, list[dict[bytes, bytes]],
                                                                                      list[DictView]]:
    """Apply ``blocks`` (height 1, 2, ...) to a tree, recording every height from 0."""
    tree = StateTree()
    state: dict[bytes, bytes] = {}
    states, views = [dict(state)], [DictView(state)]
    window.record(0, tree, tree.version, views[0])
    for h, writes in enumerate(blocks, start=1):
        tree.apply(sorted(writes.items()))
        for k, v in writes.items():
            if v is None:
                state.pop(k, None)
            else:
                state[k] = v
        states.append(dict(state))
        views.append(DictView(state))
        window.record(h, tree, tree.version, views[-1])
    return tree, states, views


def block(i: int) -> dict[bytes, bytes | None]:
    return {b"a" + bytes([i % 3]): b"v%d" % i, b"o" + bytes([i]): b"order", b"o" + bytes([i - 1]): None}


def test_the_window_keeps_the_latest_and_k_before_it_and_releases_the_rest() -> None:
    window = ProofWindow(3)
    _tree, _states, views = run_blocks(window, [block(i) for i in range(1, 10)])
    assert window.heights() == [6, 7, 8, 9]
    assert [v.closed for v in views] == [True] * 6 + [False] * 4
    assert window.provable() == (6, 8)  # the latest (9) waits for block 10 to certify it
    assert window.provable(lowest_block=9) == (8, 8)  # block 8 pruned: the state after 7 is unprovable
    assert window.provable(lowest_block=10) is None
    assert window.prove(5, b"a\x01") is None and window.prove(10, b"a\x01") is None
    window.close()
    assert all(v.closed for v in views) and len(window) == 0


def test_zero_keeps_only_the_latest_which_is_not_provable() -> None:
    window = ProofWindow(0)
    run_blocks(window, [block(i) for i in range(1, 4)])
    assert window.heights() == [3] and window.provable() is None


def test_a_height_recorded_twice_is_ignored_and_a_gap_restarts_the_window() -> None:
    window = ProofWindow(5)
    tree, _states, _views = run_blocks(window, [block(i) for i in range(1, 4)])
    again = DictView({})
    window.record(3, tree, tree.version, again)
    assert again.closed and window.heights() == [0, 1, 2, 3]
    window.record(10, tree, tree.version, DictView({}))  # a state loaded from a snapshot at 10
    assert window.heights() == [10]


def test_each_height_proves_its_own_values_present_and_absent() -> None:
    window = ProofWindow(10)
    run_blocks(window, [block(i) for i in range(1, 6)])
    for h, key, want in [(2, b"a\x02", b"v2"), (5, b"a\x02", b"v5"), (4, b"o\x04", b"order"),
                         (5, b"o\x04", None), (1, b"zz", None)]:
        proven = window.prove(h, key)
        assert proven is not None and proven.value == want, (h, key)
        assert verify(proven.state_root, key, want, proven.proof)


def test_a_stored_value_the_tree_does_not_hold_is_served_as_absent_and_a_wrong_one_refused() -> None:
    tree = StateTree.of_records([(b"k1", b"one")])
    window = ProofWindow(1)
    window.record(0, tree, tree.version, DictView({b"k1": b"one", records.META_KEY: b"meta"}))
    proven = window.prove(0, records.META_KEY)
    assert proven is not None and proven.value is None
    window.record(1, tree, tree.version, DictView({b"k1": b"tampered"}))
    with pytest.raises(ProofInconsistent):
        window.prove(1, b"k1")


writes_st = st.dictionaries(st.binary(min_size=1, max_size=3), st.one_of(st.none(), st.binary(max_size=4)), max_size=8)


@settings(max_examples=60, deadline=None)
@given(keep=st.integers(0, 6), blocks=st.lists(writes_st, max_size=12))
def test_every_kept_height_proves_exactly_its_records(keep: int, blocks: list[dict[bytes, bytes | None]]) -> None:
    window = ProofWindow(keep)
    _tree, states, _views = run_blocks(window, blocks)
    latest = len(blocks)
    assert window.heights() == list(range(max(0, latest - keep), latest + 1))
    keys = {k for s in states for k in s} | {b"\x00absent"}
    for h in window.heights():
        for key in sorted(keys):
            proven = window.prove(h, key)
            assert proven is not None
            assert proven.value == states[h].get(key)
            assert verify(proven.state_root, key, proven.value, proven.proof)


def test_execution_keeps_leveldb_snapshots_that_match_each_certified_app_hash(tmp_path: Path) -> None:
    """The real path: blocks applied by node/execution.py into a LevelDB store; each kept
    height's root gives the app hash block h+1 carries, and alice's record differs per height."""
    node = ProvingNode(tmp_path, heights=6, keep=3)
    try:
        window = node.execution.proofs
        assert window.heights() == [3, 4, 5, 6] and window.provable(node.blocks.base) == (3, 5)
        key = records.account_key(ALICE.address)
        values = set()
        for h in (3, 4, 5):
            proven = window.prove(h, key)
            assert proven is not None and proven.value is not None
            raw = node.blocks.block(h + 1)
            assert raw is not None
            assert Block.decode(raw).header.prev_app_hash == app_hash(node.sm.genesis_hash, proven.state_root)
            assert verify(proven.state_root, key, proven.value, proven.proof)
            values.add(proven.value)
        assert len(values) == 3  # a deposit every block: the values are the heights' own
        latest = window.prove(6, key)
        assert latest is not None and latest.value == node.sm.store.get(key)  # type: ignore[union-attr]
    finally:
        node.close()


def test_proof_heights_is_a_bounded_storage_option() -> None:
    assert StorageConfig().proof_heights == 20
    for bad in (-1, 10**9, "5"):
        with pytest.raises(ValueError, match="proof_heights"):
            StorageConfig(proof_heights=bad)  # type: ignore[arg-type]
