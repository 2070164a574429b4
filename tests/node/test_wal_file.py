"""The WAL file: synced records survive a reopen; the end-of-height marker empties it."""

from __future__ import annotations

from pathlib import Path

from consensus.steps import RoundStep
from consensus.wal import WalEndHeight, WalStep
from node.wal_file import WalFile


def test_records_survive_reopen_and_end_height_empties_the_file(tmp_path: Path) -> None:
    wal = WalFile(tmp_path)
    wal.append(WalStep(5, 0, RoundStep.PROPOSE), sync=False)
    wal.append(WalStep(5, 1, RoundStep.PREVOTE))
    wal.close()
    again = WalFile(tmp_path)
    assert again.read_and_repair() == [WalStep(5, 0, RoundStep.PROPOSE), WalStep(5, 1, RoundStep.PREVOTE)]
    again.append(WalEndHeight(5))
    assert (tmp_path / "wal.log").stat().st_size == 0
    again.append(WalStep(6, 0, RoundStep.PROPOSE))
    again.close()
    assert WalFile(tmp_path).read_and_repair() == [WalStep(6, 0, RoundStep.PROPOSE)]
