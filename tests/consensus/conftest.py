"""Seed sweeps marked ``slow`` run only when asked for: ``pytest -m slow tests/consensus``
or ``BOOKCHAIN_SLOW=1``; the default run stays fast."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = "slow" in (config.getoption("markexpr") or "") or os.environ.get("BOOKCHAIN_SLOW")
    if wanted:
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow or BOOKCHAIN_SLOW=1")
    for item in items:
        if "slow" in item.keywords and _HERE in Path(str(item.path)).parents:
            item.add_marker(skip)
