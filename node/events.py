"""An in-process publish/subscribe bus for websocket subscribers.

Each subscriber has a bounded queue, so a subscriber that falls behind never slows block
execution. A websocket connection's subscriptions name an ``on_lag`` callback: once their
queue is full the message is not queued and the callback closes the connection (the node
stops working for a client that does not keep up, as Hyperliquid does). A subscription
without one loses its oldest messages instead, counted in ``lagged``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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
    # called (from the publish, which must not block or unsubscribe) each time the queue is full
    on_lag: Callable[[], None] | None = None


class EventBus:
    """Subscriptions indexed by topic and key: a publish visits only the subscriptions that
    match it, not every subscription of every connection."""

    def __init__(self) -> None:
        self.subs: set[Subscription] = set()
        self._index: dict[str, dict[Any, set[Subscription]]] = {}

    def subscribe(self, topic: str, key: Any = None, queue: asyncio.Queue[dict[str, Any]] | None = None,
                  on_lag: Callable[[], None] | None = None) -> Subscription:
        sub = Subscription(topic, key, on_lag=on_lag) if queue is None else Subscription(topic, key, queue, on_lag=on_lag)
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
                    sub.lagged += 1
                    if sub.on_lag is not None:
                        sub.on_lag()
                        continue
                    queue.get_nowait()
                queue.put_nowait(item)
