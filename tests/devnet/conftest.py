"""Fixtures for devnet tests: a fresh devnet directory, and a guard that no process leaks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet.manifest import load_manifest
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
