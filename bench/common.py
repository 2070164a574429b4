"""Shared helpers for benchmarks: result tables and JSON output."""

from __future__ import annotations

import json
import os
import platform
import resource
from pathlib import Path
from typing import Any

from state.build import build_name

RESULTS = Path(__file__).parent / "results"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process (this one by default), from /proc."""
    with open(f"/proc/{pid}/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def print_table(title: str, rows: list[tuple[str, Any, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n{title}")
    print("-" * (width + 30))
    for name, value, unit in rows:
        shown = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)
        print(f"{name:<{width}}  {shown:>14} {unit}")
    print("-" * (width + 30))


def write_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {**data, "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "build": build_name()}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path}")
    return path
