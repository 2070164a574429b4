"""A count of things held in all and per key, each under its cap: what the node's
connection limits keep (node/connlimit.py: HTTP connections per client address; node/wsquota.py:
websocket connections and subscriptions per client address)."""

from __future__ import annotations

from typing import Literal


class KeyedCount:
    """``total`` held, ``by_key`` per key (no zero entries), at most ``max_total`` in all and
    ``per_key`` for one key."""

    __slots__ = ("by_key", "max_total", "per_key", "total")

    def __init__(self, max_total: int, per_key: int) -> None:
        self.max_total = max_total
        self.per_key = per_key
        self.total = 0
        self.by_key: dict[str, int] = {}

    def take(self, key: str) -> Literal["total", "key"] | None:
        """Count one more for ``key`` (None), or say which cap refuses it (nothing counted)."""
        if self.total >= self.max_total:
            return "total"
        held = self.by_key.get(key, 0)
        if held >= self.per_key:
            return "key"
        self.total += 1
        self.by_key[key] = held + 1
        return None

    def give_back(self, key: str, count: int = 1) -> None:
        """``count`` of ``key``'s are gone."""
        self.total = max(0, self.total - count)
        left = self.by_key.get(key, 0) - count
        if left > 0:
            self.by_key[key] = left
        else:
            self.by_key.pop(key, None)
