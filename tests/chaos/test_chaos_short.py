"""The short chaos suite: every scenario once, seeded, a few seconds of faults each.
The long version is ``python -m bench.chaos_report``."""

from __future__ import annotations

from pathlib import Path

import pytest

from devnet.chaos import SCENARIOS, run_scenario

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_keeps_every_invariant(name: str, tmp_path: Path) -> None:
    result = run_scenario(name, tmp_path, seed=7, seconds=6.0)
    assert result.errors == [], result
    assert result.forks == 0 and result.app_hash_mismatches == 0, result
    assert result.acked > 0 and result.found == result.acked, result
    assert result.replay_ok, result
    if name != "restart_all":  # 3 of 4 validators stay up in every other scenario
        assert result.stall_with_quorum_s < 10, result
