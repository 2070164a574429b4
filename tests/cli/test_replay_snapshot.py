"""``bookchain replay --from-snapshot``: a verified snapshot, then the blocks after it; a
forged snapshot is refused (exit 4, with its code), an unreadable one or one whose block
h+1 is not there yet cannot be checked (exit 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import bookchain
from node.snapshots import Snapshot, write_snapshot
from tests.node import snapchain
from tests.node.snapchain import forge_bob


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, Snapshot]]:
    home = tmp_path_factory.mktemp("chain") / "n"
    return home, snapchain.build(home)


def replay(home: Path, snap_file: Path | str, out: Path) -> Result:
    return CliRunner().invoke(bookchain, ["replay", "--from", str(home), "--from-snapshot", str(snap_file),
                                          "--home", str(out), "--json"])


def test_replay_from_an_honest_snapshot_file(chain: tuple[Path, dict[int, Snapshot]], tmp_path: Path) -> None:
    home, snaps = chain
    res = replay(home, write_snapshot(tmp_path / "snaps", snaps[3]), tmp_path / "out")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["ok"] and report["snapshot_height"] == 3 and report["replayed"] == 3
    assert report["final_app_hash"] == snaps[6].app_hash.hex()


@pytest.mark.parametrize(("restate", "code"), [(False, "SNAPSHOT_ROOT_MISMATCH"), (True, "SNAPSHOT_NOT_CERTIFIED")])
def test_replay_refuses_a_forged_snapshot_file(chain: tuple[Path, dict[int, Snapshot]], tmp_path: Path,
                                               restate: bool, code: str) -> None:
    home, snaps = chain
    res = replay(home, write_snapshot(tmp_path / "snaps", forge_bob(snaps[3], restate=restate)), tmp_path / "out")
    assert res.exit_code == 4, res.output
    report = json.loads(res.stdout)
    assert not report["ok"] and report["code"] == code and report["divergence_height"] == 3


def test_replay_cannot_check_an_unreadable_snapshot_or_one_without_block_h_plus_1(
        chain: tuple[Path, dict[int, Snapshot]], tmp_path: Path) -> None:
    home, snaps = chain
    junk = tmp_path / "junk.snap"
    junk.write_bytes(b"not a snapshot")
    for source in (tmp_path / "missing.snap", junk, write_snapshot(tmp_path / "snaps", snaps[6])):
        res = replay(home, source, tmp_path / "out")
        assert res.exit_code == 3, res.output
        assert "Traceback" not in res.output


def test_to_must_be_above_the_snapshot(chain: tuple[Path, dict[int, Snapshot]], tmp_path: Path) -> None:
    home, snaps = chain
    snap_file = write_snapshot(tmp_path / "snaps", snaps[3])
    res = CliRunner().invoke(bookchain, ["replay", "--from", str(home), "--from-snapshot", str(snap_file),
                                         "--home", str(tmp_path / "out"), "--to", "3"])
    assert res.exit_code == 2 and "--to" in res.output


def test_replay_needs_a_block_source(tmp_path: Path) -> None:
    res = CliRunner().invoke(bookchain, ["replay", "--home", str(tmp_path / "out")])
    assert res.exit_code == 2 and "--from" in res.output
