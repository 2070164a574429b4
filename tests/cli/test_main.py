"""`node start` and the guarded `replay` registration."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main as cli_main
from cli.main import bookchain


def test_node_start_needs_a_node_home(tmp_path: Path) -> None:
    res = CliRunner().invoke(bookchain, ["node", "start", "--home", str(tmp_path)])
    assert res.exit_code == 2 and "config.json not found" in res.output
    assert CliRunner().invoke(bookchain, ["node", "start"]).exit_code == 2


def test_node_start_reports_a_missing_node_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"rpc": {}, "p2p": {}}))
    monkeypatch.setitem(sys.modules, "node.main", None)  # makes `from node.main import run` fail
    res = CliRunner().invoke(bookchain, ["node", "start", "--home", str(tmp_path)])
    assert res.exit_code == 1 and "cannot import node.main" in res.output


def test_node_start_hands_the_home_to_node_main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.json").write_text("{}")
    seen: list[str] = []
    fake = type(sys)("node.main")
    fake.run = lambda home, stderr_level: seen.append(home) if stderr_level is None else None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "node.main", fake)
    res = CliRunner().invoke(bookchain, ["node", "start", "--home", str(tmp_path)])
    assert res.exit_code == 0 and seen == [str(tmp_path)]


def test_every_command_is_registered() -> None:
    assert set(bookchain.commands) == {"keys", "tx", "query", "node", "devnet", "testnet", "replay"}
    assert callable(cli_main.main)


def test_node_start_hands_the_stderr_level_to_node_main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.json").write_text("{}")
    seen: list[tuple[str, str]] = []
    fake = type(sys)("node.main")
    fake.run = lambda home, stderr_level: seen.append((home, stderr_level))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "node.main", fake)
    res = CliRunner().invoke(bookchain, ["node", "start", "--home", str(tmp_path), "--stderr-level", "WARNING"])
    assert res.exit_code == 0 and seen == [(str(tmp_path), "WARNING")]
