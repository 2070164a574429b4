"""A snapshot's height and block time come from an untrusted server: one whose height no
block h+1 can have (or that the block store cannot hold) is refused as malformed before
anything is written, not an OverflowError after the state store was written."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from node.snapshots import Snapshot, SnapshotError, decode_snapshot, encode_snapshot, restore_into
from state.codec import MAX_I64
from state.errors import Code
from state.genesis import Genesis
from tests.node import snapchain


@pytest.fixture(scope="module")
def snaps(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Snapshot]:
    return snapchain.build(tmp_path_factory.mktemp("chain") / "n", 3)


@pytest.mark.parametrize("fields", [{"height": 2**64 - 1}, {"height": 2**63}, {"height": MAX_I64},
                                    {"block_time_ms": -5}, {"block_time_ms": 2**64 - 1}])
def test_out_of_range_snapshot_header_is_refused_before_anything_is_written(
        snaps: dict[int, Snapshot], tmp_path: Path, fields: dict[str, int]) -> None:
    forged = dataclasses.replace(snaps[3], **fields)
    state, blocks, pending = tmp_path / "state", tmp_path / "blocks", tmp_path / "pending"
    state.mkdir()
    with pytest.raises(SnapshotError) as err:
        restore_into(decode_snapshot(encode_snapshot(forged)), Genesis.from_json(snapchain.genesis_doc()),
                     state, blocks, pending)
    assert err.value.code == Code.SNAPSHOT_MALFORMED
    assert not any(state.iterdir()) and not blocks.exists() and not pending.exists()


def test_the_largest_usable_height_still_decodes(snaps: dict[int, Snapshot]) -> None:
    s = dataclasses.replace(snaps[3], height=MAX_I64 - 1)
    assert decode_snapshot(encode_snapshot(s)) == s
