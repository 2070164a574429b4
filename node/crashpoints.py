"""Crash injection for tests, in the spirit of CometBFT's FAIL_TEST_INDEX.

``BOOKCHAIN_FAIL_AT=<name>[:<n>]`` makes the process exit abruptly (os._exit, no cleanup,
no flush) the n-th time (default 1st) it passes the named point. Points are named where
a crash is interesting for storage order: after the block is saved, after results,
after the state commit, before/after a WAL write.
"""

from __future__ import annotations

import os

_spec = os.environ.get("BOOKCHAIN_FAIL_AT", "")
_name, _, _count = _spec.partition(":")
_remaining = int(_count) if _count else 1
POINTS = ("block_saved", "results_saved", "state_committed", "wal_written", "vote_sent")


def maybe_crash(point: str) -> None:
    global _remaining
    if _name and point == _name:
        _remaining -= 1
        if _remaining <= 0:
            os._exit(97)
