"""Fixtures for devnet tests: a fresh devnet directory, and a guard that no process leaks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devnet.manifest import Manifest, load_manifest
from devnet.procs import is_ours_and_alive, stop


@pytest.fixture
def devnet_home(tmp_path: Path) -> Iterator[Path]:
    """A devnet home that is torn down whatever the test did: every recorded process is
    stopped (by its recorded pid only) and the test fails if one was still running."""
    home = tmp_path / "devnet"
    yield home
    m = load_manifest(home) if home.exists() else None
    if m is not None:
        leftover = {n: e for n, e in m.processes.items() if is_ours_and_alive(e)}
        stop(leftover, timeout=5)
        assert not leftover, f"test left processes running: {leftover}"


@contextmanager
def running_devnet(home: Path, *, nodes: int = 1, traders: int = 0) -> Iterator[tuple[Manifest, str]]:
    """``bookchain devnet up`` in ``home`` (a real devnet of node processes), yielding its
    manifest and what ``up`` printed; ``devnet down`` afterwards, and any recorded process
    still alive stopped by its pid."""
    from tests.devnet.test_devnet_e2e import bookchain

    try:
        res = bookchain("devnet", "up", "--home", str(home), "--nodes", str(nodes), "--traders", str(traders),
                        "--timeout", "90")
        assert res.returncode == 0, res.stdout + res.stderr
        m = load_manifest(home)
        assert m is not None
        yield m, res.stdout
    finally:
        down = bookchain("devnet", "down", "--home", str(home))
        m = load_manifest(home) if home.exists() else None
        if m is not None:  # belt and braces: the recorded pids only
            stop({n: e for n, e in m.processes.items() if is_ours_and_alive(e)}, timeout=5)
        assert down.returncode == 0, down.stdout + down.stderr
