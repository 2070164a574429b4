"""The websocket bus: a publish reaches exactly the subscriptions of its topic and key (or
of the whole topic), a shared queue bounds a connection's memory, and unsubscribing
leaves nothing behind."""

from __future__ import annotations

import asyncio

from node.events import EventBus


def test_publish_reaches_its_key_and_the_whole_topic_once_each() -> None:
    bus = EventBus()
    one, other, every = bus.subscribe("trades", 1), bus.subscribe("trades", 2), bus.subscribe("trades")
    blocks = bus.subscribe("blocks")
    bus.publish("trades", 1, {"px": 5})
    assert one.queue.qsize() == 1 and every.queue.qsize() == 1
    assert other.queue.empty() and blocks.queue.empty()
    assert bus.wants("trades") and not bus.wants("book")
    for s in (one, other, every, blocks):
        bus.unsubscribe(s)
        bus.unsubscribe(s)  # twice: harmless
    assert not bus.subs and not bus.wants("trades") and not bus.wants("blocks")


def test_a_shared_queue_stays_bounded_and_keeps_publication_order() -> None:
    bus = EventBus()
    inbox: asyncio.Queue[dict[str, object]] = asyncio.Queue(3)
    subs = [bus.subscribe("account", f"0x{i:040x}", inbox) for i in range(50)]
    for n in range(10):
        for i in range(50):
            bus.publish("account", f"0x{i:040x}", {"n": n, "i": i})
    assert inbox.qsize() == 3  # the newest three, the rest counted as lagged
    assert [inbox.get_nowait()["data"] for _ in range(3)] == [{"n": 9, "i": i} for i in (47, 48, 49)]
    assert sum(s.lagged for s in subs) == 500 - 3
