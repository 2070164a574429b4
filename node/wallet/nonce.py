"""Transaction nonces: millisecond timestamps, strictly increasing per key in a process.

The chain keeps each signer's 100 highest nonces and accepts any unused one inside a time
window (state/nonces.py, Hyperliquid's scheme), so a wall-clock millisecond is a good
nonce and needs no round trip. Two transactions signed in the same millisecond by the
same key would collide, hence ``max(now_ms, last + 1)``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class NonceClock:
    def __init__(self, clock: Callable[[], int] = now_ms) -> None:
        self._clock = clock
        self._last: dict[bytes, int] = {}
        self._lock = threading.Lock()

    def next(self, pubkey: bytes) -> int:
        with self._lock:
            nonce = max(self._clock(), self._last.get(pubkey, 0) + 1)
            self._last[pubkey] = nonce
            return nonce


NONCES = NonceClock()
