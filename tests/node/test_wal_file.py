"""The WAL file: synced records survive a reopen; a restart replays what follows the last
end-of-height marker; the file is emptied at a marker once it holds its bound; a torn tail
is cut, damage followed by a valid record refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from consensus.steps import RoundStep
from consensus.wal import WalEndHeight, WalStep
from node.wal_file import WalDamaged, WalFile


def test_records_survive_reopen_and_a_restart_reads_the_height_after_the_last_marker(tmp_path: Path) -> None:
    wal = WalFile(tmp_path)
    wal.append(WalStep(5, 0, RoundStep.PROPOSE), sync=False)
    wal.append(WalStep(5, 1, RoundStep.PREVOTE))
    wal.close()
    again = WalFile(tmp_path)
    assert again.read_and_repair() == [WalStep(5, 0, RoundStep.PROPOSE), WalStep(5, 1, RoundStep.PREVOTE)]
    size = (tmp_path / "wal.log").stat().st_size
    again.append(WalEndHeight(5))  # below the bound: a marker is appended, the file is not emptied
    assert (tmp_path / "wal.log").stat().st_size > size
    again.append(WalStep(6, 0, RoundStep.PROPOSE))
    again.close()
    assert WalFile(tmp_path).read_and_repair() == [WalStep(6, 0, RoundStep.PROPOSE)]
    ended = WalFile(tmp_path)
    ended.append(WalEndHeight(6))
    ended.close()
    assert WalFile(tmp_path).read_and_repair() == []  # a height's end leaves nothing to replay


def test_the_file_is_emptied_at_a_marker_once_it_holds_the_bound(tmp_path: Path) -> None:
    wal = WalFile(tmp_path, compact_bytes=200)
    height = 1
    while wal.size < 200:
        wal.append(WalStep(height, 0, RoundStep.PROPOSE))
        wal.append(WalEndHeight(height))
        height += 1
        assert (tmp_path / "wal.log").stat().st_size == wal.size
    wal.append(WalStep(height, 0, RoundStep.PREVOTE))
    wal.append(WalEndHeight(height))
    assert (tmp_path / "wal.log").stat().st_size == 0 == wal.size
    wal.append(WalStep(height + 1, 2, RoundStep.PRECOMMIT))
    wal.close()
    assert WalFile(tmp_path).read_and_repair() == [WalStep(height + 1, 2, RoundStep.PRECOMMIT)]


def test_a_torn_tail_after_a_marker_is_cut_and_the_size_follows(tmp_path: Path) -> None:
    wal = WalFile(tmp_path)
    wal.append(WalEndHeight(3))
    wal.append(WalStep(4, 0, RoundStep.PROPOSE))
    wal.close()
    clean = (tmp_path / "wal.log").stat().st_size
    with open(tmp_path / "wal.log", "ab") as fh:
        fh.write(b"\x00\x00\x01\x00torn")
    again = WalFile(tmp_path)
    assert again.read_and_repair() == [WalStep(4, 0, RoundStep.PROPOSE)]
    assert again.size == clean == (tmp_path / "wal.log").stat().st_size


def _three_records(tmp_path: Path) -> tuple[bytes, int]:
    """A WAL file of three synced records; its bytes and where the second one starts."""
    wal = WalFile(tmp_path)
    wal.append(WalStep(4, 0, RoundStep.PROPOSE))
    first = wal.size
    wal.append(WalStep(4, 0, RoundStep.PREVOTE))
    wal.append(WalStep(4, 0, RoundStep.PRECOMMIT))
    wal.close()
    return (tmp_path / "wal.log").read_bytes(), first


def test_damage_before_a_valid_record_refuses_and_leaves_the_file_as_it_is(tmp_path: Path) -> None:
    """A bit flip in a middle record: the records after it were synced (and their votes
    sent), so cutting the file there could make the validator sign twice. Before: the file
    was cut at the flip and the restart read one record."""
    data, first = _three_records(tmp_path)
    damaged = bytearray(data)
    damaged[first + 12] ^= 0x01  # inside the second record's body
    (tmp_path / "wal.log").write_bytes(bytes(damaged))
    wal = WalFile(tmp_path)
    with pytest.raises(WalDamaged, match=f"damaged at byte {first} of {len(data)} and a valid record at byte"):
        wal.read_and_repair()
    wal.close()
    assert (tmp_path / "wal.log").read_bytes() == bytes(damaged)


def test_a_torn_tail_of_zeroes_is_cut(tmp_path: Path) -> None:
    """The last write's sectors lost in a crash (zeroes where a record was): still a torn tail."""
    data, _ = _three_records(tmp_path)
    with open(tmp_path / "wal.log", "ab") as fh:
        fh.write(bytes(4096))
    wal = WalFile(tmp_path)
    assert wal.read_and_repair() == [WalStep(4, 0, step) for step in (RoundStep.PROPOSE, RoundStep.PREVOTE,
                                                                      RoundStep.PRECOMMIT)]
    assert (tmp_path / "wal.log").read_bytes() == data and wal.size == len(data)
