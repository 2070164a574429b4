"""Committed equivocation offences in the state (state/offences.py): recorded with their
commit height through the write set, pruned once older than the genesis evidence max age,
the same on a node that never stopped and one reopened from its store at any height, and
``apply_block`` never raises on offences consensus would not have passed."""

from __future__ import annotations

import tempfile
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from state import offences, records
from state.genesis import DEFAULT_EVIDENCE_MAX_AGE, MAX_EVIDENCE_MAX_AGE, Genesis, make_genesis_doc
from tests.harness import BRIDGE, Chain, make_genesis

V1, V2, V3 = (bytes([0xA0 + i]) * 32 for i in range(3))


def chain(max_age: int, path: str | None = None) -> Chain:
    return Chain(path, make_genesis(evidence={"max_age_blocks": max_age}))


def stored_offences(c: Chain) -> dict[tuple[int, bytes], int]:
    """The offence records the store holds (Chain checks after each block that they are
    exactly the state in memory)."""
    out = {}
    for key, value in c.ex.snapshot_records():
        if key[:1] == records.OFFENCE:
            out[(int.from_bytes(key[1:9], "big"), key[9:])] = records.decode_record(value)[0]
    return out


def test_offences_are_recorded_with_their_commit_height_and_pruned_at_the_max_age() -> None:
    c = chain(max_age=5)
    c.block()
    c.block()
    r = c.block(offences=((2, V1), (1, V2)))  # height 3
    assert stored_offences(c) == {(1, V2): 3, (2, V1): 3}
    assert offences.committed_at(c.ex, (2, V1)) == 3 and offences.committed_at(c.ex, (2, V2)) is None
    assert {k for k, _ in r.write_digests} >= {records.offence_key(1, V2), records.offence_key(2, V1)}
    c.block()
    c.block()  # height 5: evidence of height 1 is still valid in block 6 (1 + 5)
    assert stored_offences(c) == {(1, V2): 3, (2, V1): 3}
    r = c.block()  # height 6: no block after it may carry height 1's
    assert stored_offences(c) == {(2, V1): 3}
    assert (records.offence_key(1, V2), b"") in r.write_digests  # a deletion in the write set
    c.block()  # height 7
    assert stored_offences(c) == {} and c.ex.offences == {}


def test_a_repeated_or_impossible_offence_does_not_raise_and_keeps_the_first_record() -> None:
    """Consensus never passes these; given them anyway, the block applies, the first
    record stays, and nothing no later block could carry is recorded."""
    c = chain(max_age=5)
    for _ in range(5):
        c.block()
    c.block(offences=((4, V1),))  # height 6
    r = c.block(offences=((4, V1), (4, V1),  # committed at 6, and twice in this block
                          (2, V2),  # 7 - 5: valid here, but no later block may repeat it
                          (1, V2),  # expired
                          (7, V2), (99, V2),  # this block's height or later
                          (5, b"short")))  # not a validator key
    assert r.height == 7
    assert stored_offences(c) == {(4, V1): 6}
    assert not [k for k, _ in r.write_digests if k[:1] == records.OFFENCE]
    c.block(offences=((5, V3), (5, V2)))  # height 8: sorted into the write set
    assert stored_offences(c) == {(4, V1): 6, (5, V2): 8, (5, V3): 8}


def test_an_offence_at_height_zero_or_below_is_not_recorded_and_does_not_raise() -> None:
    """A block low enough that ``height - max_age`` is negative: an offence height of 0 or
    less (no block has it) used to pass the age window and make the record key overflow in
    the write set, so apply_block raised. Consensus decodes evidence heights from 1; an
    ExecBlock built another way must still apply."""
    c = chain(max_age=3)
    r = c.block(offences=((-1, V1), (0, V2), (-(1 << 70), V3)))  # height 1
    assert r.height == 1 and stored_offences(c) == {}
    c.block()
    c.block(offences=((1, V1), (0, V2)))  # height 3
    assert stored_offences(c) == {(1, V1): 3}


def test_a_restart_and_a_snapshot_carry_the_offences_into_the_app_hash(tmp_path: Any) -> None:
    c = chain(max_age=10, path=str(tmp_path / "state"))
    c.block()
    c.block(offences=((1, V1),))
    before = (c.sm.height, c.sm.app_hash, stored_offences(c))
    c.reopen()
    assert (c.sm.height, c.sm.app_hash, stored_offences(c)) == before
    other = chain(max_age=10)
    other.block()
    other.block()  # the same blocks without the offence: another app hash
    assert other.sm.app_hash != c.sm.app_hash
    forked = c.fork()  # what a snapshot restores
    assert offences.committed_at(forked.ex, (1, V1)) == 2


def test_genesis_evidence_max_age() -> None:
    doc = make_genesis_doc(chain_id="g", validators=[], bridge_pubkey=BRIDGE.pubkey)
    assert "evidence" not in doc and Genesis.from_json(doc).evidence_max_age == DEFAULT_EVIDENCE_MAX_AGE == 100_000
    assert Genesis.from_json({**doc, "evidence": {"max_age_blocks": 7}}).evidence_max_age == 7
    for bad in ({"max_age_blocks": 0}, {"max_age_blocks": MAX_EVIDENCE_MAX_AGE + 1}, {"max_age_blocks": 1.5},
                {"max_age": 5}):
        with pytest.raises(ValueError, match="evidence"):
            Genesis.from_json({**doc, "evidence": bad})
    with pytest.raises(ValueError, match="evidence"):
        Genesis.from_json({**doc, "evidence": [5]})


MAX_AGE = 4
# per block: (offence height as a distance below the block, validator index) pairs
block_offences = st.lists(st.tuples(st.integers(1, MAX_AGE + 1), st.integers(0, 2)), max_size=3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(st.lists(st.tuples(block_offences, st.booleans()), min_size=1, max_size=14))
def test_the_offences_state_is_bounded_and_the_same_after_a_reopen_at_any_height(
        blocks: list[tuple[list[tuple[int, int]], bool]]) -> None:
    """A chain whose store is closed and reopened before the blocks drawn so (as a node
    restarted there) has the app hash and the records of one that never stopped, at every
    height; the state holds only offences of the last MAX_AGE - 1 heights, one per
    (height, validator), each with the height of the first block that carried it."""
    validators = (V1, V2, V3)
    with tempfile.TemporaryDirectory() as tmp:
        disk = chain(MAX_AGE, path=tmp + "/state")
        memory = chain(MAX_AGE)
        first: dict[tuple[int, bytes], int] = {}
        for drawn, reopen in blocks:
            height = memory.sm.height + 1
            offs = tuple((height - d, validators[v]) for d, v in drawn if height - d >= 1)
            if reopen:
                disk.reopen()
            disk.block(offences=offs)
            memory.block(offences=offs)
            assert disk.sm.app_hash == memory.sm.app_hash
            assert disk.sm.stored_records() == memory.ex.snapshot_records()
            for h, v in offs:
                if height - MAX_AGE < h and (h, v) not in first:
                    first[(h, v)] = height
            first = {k: at for k, at in first.items() if k[0] > height - MAX_AGE}
            assert stored_offences(memory) == first
            assert all(height - MAX_AGE < h < height for h, _ in first)
        disk.sm.close()
