"""Shared helpers for benchmarks: result tables and JSON output."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
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


def libsodium_verify_per_s(n: int = 2000, rounds: int = 3) -> float:
    """ed25519 verifications per second on one core through libsodium, best of ``rounds``:
    the yardstick printed beside every figure, since this machine's speed moves ~2x from
    hour to hour and only ratios taken in one run compare."""
    import nacl.bindings as sodium

    items = []
    for i in range(n):
        pk, sk = sodium.crypto_sign_seed_keypair(i.to_bytes(4, "big") * 8)
        message = i.to_bytes(8, "big") * 12
        items.append((pk, sodium.crypto_sign(message, sk)))  # signature || message
    verify = sodium.crypto_sign_open  # as state/keys.py verifies
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for pk, signed in items:
            verify(signed, pk)
        best = min(best, time.perf_counter() - t)
    return n / best


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
