"""An in-process publish/subscribe bus for websocket subscribers.

Each subscriber has a bounded queue; a subscriber that falls behind loses its oldest
messages (and is told so by a ``lagged`` counter) instead of slowing block execution.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

QUEUE_LIMIT = 1000


@dataclass(eq=False)
class Subscription:
    topic: str
    key: Any = None  # market id or address, depending on the topic; None: every key
    # a connection's subscriptions may share one queue: its memory is then bounded per
    # connection, not per subscription, and it gets the messages in publication order
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    lagged: int = 0


class EventBus:
    """Subscriptions indexed by topic and key: a publish visits only the subscriptions that
    match it, not every subscription of every connection."""

    def __init__(self) -> None:
        self.subs: set[Subscription] = set()
        self._index: dict[str, dict[Any, set[Subscription]]] = {}

    def subscribe(self, topic: str, key: Any = None, queue: asyncio.Queue[dict[str, Any]] | None = None) -> Subscription:
        sub = Subscription(topic, key) if queue is None else Subscription(topic, key, queue)
        self.subs.add(sub)
        self._index.setdefault(topic, {}).setdefault(key, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub not in self.subs:
            return
        self.subs.discard(sub)
        by_key = self._index[sub.topic]
        matching = by_key[sub.key]
        matching.discard(sub)
        if not matching:
            del by_key[sub.key]
            if not by_key:
                del self._index[sub.topic]

    def wants(self, topic: str) -> bool:
        return topic in self._index

    def publish(self, topic: str, key: Any, data: dict[str, Any]) -> None:
        by_key = self._index.get(topic)
        if by_key is None:
            return
        item = {"topic": topic, "key": key, "data": data}
        for matching in (by_key.get(key), by_key.get(None) if key is not None else None):
            for sub in matching or ():
                queue = sub.queue
                if queue.full():
                    queue.get_nowait()
                    sub.lagged += 1
                queue.put_nowait(item)
