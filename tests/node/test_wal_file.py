"""The WAL file: synced records survive a reopen; a restart replays what follows the last
end-of-height marker; the file is emptied at a marker once it holds its bound."""

from __future__ import annotations

from pathlib import Path

from consensus.steps import RoundStep
from consensus.wal import WalEndHeight, WalStep
from node.wal_file import WalFile


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
