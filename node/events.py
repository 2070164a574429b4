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
    key: Any = None  # market id or address, depending on the topic
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    lagged: int = 0


class EventBus:
    def __init__(self) -> None:
        self.subs: set[Subscription] = set()

    def subscribe(self, topic: str, key: Any = None) -> Subscription:
        sub = Subscription(topic, key)
        self.subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subs.discard(sub)

    def wants(self, topic: str) -> bool:
        return any(s.topic == topic for s in self.subs)

    def publish(self, topic: str, key: Any, data: dict[str, Any]) -> None:
        for sub in self.subs:
            if sub.topic == topic and (sub.key is None or sub.key == key):
                if sub.queue.full():
                    sub.queue.get_nowait()
                    sub.lagged += 1
                sub.queue.put_nowait({"topic": topic, "key": key, "data": data})
