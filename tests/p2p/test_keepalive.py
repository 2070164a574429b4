"""Keepalive: the silence rule on a fake clock, the redial back-off, and two real nodes
whose connection goes dead without closing (what a network cut does to TCP)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
import trio
from libp2p.peer.id import ID

from node.p2p import CONSENSUS, Limits, P2PNode
from node.p2p.liveness import Liveness
from node.p2p.peers import Backoff
from tests.p2p.helpers import aio, free_port, wait_until
from tests.p2p.test_node import Recorder, numbered, numbers

# ---------------------------------------------------------------- fake clock


def test_a_peer_is_silent_only_after_the_whole_timeout() -> None:
    live = Liveness(3.0, now=100.0)
    assert not live.expired(102.999)
    assert live.until_expiry(101.0) == pytest.approx(2.0)
    assert live.expired(103.0)
    assert live.silent_for(103.5) == pytest.approx(3.5)


def test_hearing_anything_pushes_the_deadline_and_old_news_does_not_pull_it_back() -> None:
    live = Liveness(3.0, now=0.0)
    live.heard(2.5)
    assert not live.expired(5.0)
    live.heard(1.0)  # a late report of something older changes nothing
    assert live.last_heard == 2.5
    assert live.expired(5.5)


def test_a_new_connection_starts_with_a_clean_record() -> None:
    live = Liveness(3.0, now=0.0)
    assert live.expired(10.0)
    live.restart(10.0)
    assert not live.expired(12.0)
    assert live.until_expiry(12.0) == pytest.approx(1.0)


def test_timeout_zero_turns_the_keepalive_off() -> None:
    live = Liveness(0.0, now=0.0)
    assert not live.enabled
    assert not live.expired(1e9)


def test_redial_backoff_doubles_to_its_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(0.1, 1.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(7)]
    for delay, base in zip(delays, [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0], strict=True):
        assert 0.8 * base <= delay <= 1.2 * base
    assert len({round(d, 6) for d in delays[4:]}) > 1  # jittered, not in lock step
    backoff.reset()
    assert backoff.next_delay() <= 0.12


# ---------------------------------------------------------------- two real nodes


def _tcp_layers(node: P2PNode, peer_id: str) -> list[Any]:
    """The TrioTCPStream objects under ``node``'s connections to ``peer_id``."""
    swarm = node.libp2p_host.get_network()
    found = []
    for conn in swarm.get_connections(ID.from_base58(peer_id)):
        layer: Any = conn
        for _ in range(8):
            if isinstance(getattr(layer, "stream", None), trio.SocketStream):
                found.append(layer)
                break
            layer = next(
                (getattr(layer, n) for n in ("muxed_conn", "secured_conn", "conn", "stream")
                 if getattr(layer, n, None) is not None),
                None,
            )
            if layer is None:
                break
    return found


def blackhole(node: P2PNode, peer_id: str) -> int:
    """Make ``node``'s connections to ``peer_id`` dead but open, like a cut: writes
    vanish, reads never return. Nothing closes; only a keepalive can notice."""

    async def never(n: int | None = None) -> bytes:
        await trio.sleep_forever()
        return b""

    async def vanish(data: bytes) -> None:
        return None

    layers = _tcp_layers(node, peer_id)
    for layer in layers:
        layer.read = never
        layer.write = vanish
    return len(layers)


def _limits() -> Limits:
    return Limits(ping_interval_s=0.1, peer_timeout_s=0.6, backoff_initial_s=0.05, backoff_max_s=0.2)


@pytest.mark.e2e
@aio(40)
async def test_pings_keep_a_healthy_connection_and_count_both_ways(tmp_path: Path) -> None:
    port_a, port_b = free_port(), free_port()
    a = P2PNode(tmp_path / "a", f"/ip4/127.0.0.1/tcp/{port_a}", limits=_limits())
    b = P2PNode(tmp_path / "b", f"/ip4/127.0.0.1/tcp/{port_b}", limits=_limits())
    a.add_peer(f"/ip4/127.0.0.1/tcp/{port_b}/p2p/{b.peer_id}")
    try:
        await a.start()
        await b.start()
        await a.wait_for_peers([b.peer_id])
        await wait_until(lambda: a.metrics.pongs_in >= 10 and b.metrics.pongs_in >= 10, 10)
        assert a.metrics.peer_timeouts == b.metrics.peer_timeouts == 0
        assert a.metrics.reconnects == 0
        assert b.peer_id in a.connected_peers()
    finally:
        await a.stop()
        await b.stop()


@pytest.mark.e2e
@aio(40)
async def test_a_peer_whose_frames_keep_arriving_is_not_pinged(tmp_path: Path) -> None:
    """Frames prove the connection as well as pongs do: the side that receives them sends no
    pings while they flow, the other side's pings keep its own watchdog fed, nobody times
    out, and the pings come back once the frames stop."""
    port_a, port_b = free_port(), free_port()
    a = P2PNode(tmp_path / "a", f"/ip4/127.0.0.1/tcp/{port_a}", limits=_limits())
    b = P2PNode(tmp_path / "b", f"/ip4/127.0.0.1/tcp/{port_b}", limits=_limits())
    a.add_peer(f"/ip4/127.0.0.1/tcp/{port_b}/p2p/{b.peer_id}")
    got = Recorder()
    b.register(CONSENSUS, got)
    try:
        await a.start()
        await b.start()
        await a.wait_for_peers([b.peer_id])
        await b.wait_for_peers([a.peer_id])
        a.send(b.peer_id, CONSENSUS, numbered(0, 64))
        await got.wait(1)
        pings_before = b.metrics.pings_out
        for i in range(1, 61):  # 1.2 s of frames, one every 20 ms (a ping interval is 0.1 s)
            a.send(b.peer_id, CONSENSUS, numbered(i, 64))
            await trio_free_sleep(0.02)
        await got.wait(61)
        assert b.metrics.pings_out - pings_before <= 1  # at most one beat before the first frame landed
        assert a.metrics.peer_timeouts == b.metrics.peer_timeouts == 0
        quiet = b.metrics.pings_out
        await wait_until(lambda: b.metrics.pings_out >= quiet + 3, 5)  # silence: b pings again
        assert b.peer_id in a.connected_peers() and a.peer_id in b.connected_peers()
    finally:
        await a.stop()
        await b.stop()


@pytest.mark.e2e
@aio(40)
async def test_a_dead_connection_is_closed_redialed_and_announced(tmp_path: Path) -> None:
    port_a, port_b = free_port(), free_port()
    a = P2PNode(tmp_path / "a", f"/ip4/127.0.0.1/tcp/{port_a}", limits=_limits())
    b = P2PNode(tmp_path / "b", f"/ip4/127.0.0.1/tcp/{port_b}", limits=_limits())
    a.add_peer(f"/ip4/127.0.0.1/tcp/{port_b}/p2p/{b.peer_id}")
    b.add_peer(f"/ip4/127.0.0.1/tcp/{port_a}/p2p/{a.peer_id}")
    got = Recorder()
    b.register(CONSENSUS, got)
    announced: list[str] = []
    a.on_peer_connected(announced.append)
    try:
        await a.start()
        await b.start()
        await a.wait_for_peers([b.peer_id])
        await b.wait_for_peers([a.peer_id])
        await wait_until(lambda: announced == [b.peer_id], 5)
        a.send(b.peer_id, CONSENSUS, numbered(0, 64))
        await got.wait(1)

        assert blackhole(a, b.peer_id) >= 1
        assert blackhole(b, a.peer_id) >= 1
        # Sent into the dead connection: lost with it or delivered after the redial.
        a.send(b.peer_id, CONSENSUS, numbered(1, 64))
        await wait_until(lambda: a.metrics.peer_timeouts >= 1 and b.metrics.peer_timeouts >= 1, 5)
        await wait_until(lambda: a.metrics.reconnects >= 1, 5)
        await a.wait_for_peers([b.peer_id], 5)
        await wait_until(lambda: len(announced) >= 2, 5)
        assert set(announced) == {b.peer_id}

        a.send(b.peer_id, CONSENSUS, numbered(2, 64))
        await wait_until(lambda: 2 in numbers(got.frames[a.peer_id]), 5)
        seen = numbers(got.frames[a.peer_id])
        assert seen == sorted(seen)  # in order across the reconnect
        # The new connection is healthy: pings keep it up past several timeouts.
        timeouts = a.metrics.peer_timeouts
        await trio_free_sleep(1.5)
        assert a.metrics.peer_timeouts == timeouts
        assert b.peer_id in a.connected_peers()
    finally:
        await a.stop()
        await b.stop()


@pytest.mark.e2e
@aio(40)
async def test_timeout_zero_leaves_a_dead_connection_alone(tmp_path: Path) -> None:
    """The control experiment: without the keepalive nothing notices the dead connection."""
    limits = Limits(ping_interval_s=0.1, peer_timeout_s=0.0)
    port_a, port_b = free_port(), free_port()
    a = P2PNode(tmp_path / "a", f"/ip4/127.0.0.1/tcp/{port_a}", limits=limits)
    b = P2PNode(tmp_path / "b", f"/ip4/127.0.0.1/tcp/{port_b}", limits=limits)
    a.add_peer(f"/ip4/127.0.0.1/tcp/{port_b}/p2p/{b.peer_id}")
    try:
        await a.start()
        await b.start()
        await a.wait_for_peers([b.peer_id])
        blackhole(a, b.peer_id)
        blackhole(b, a.peer_id)
        await trio_free_sleep(1.5)
        assert a.metrics.pings_out == 0
        assert a.metrics.peer_timeouts == 0
        assert b.peer_id in a.connected_peers()  # still "connected", and dead
    finally:
        await a.stop()
        await b.stop()


async def trio_free_sleep(seconds: float) -> None:
    """Sleep on the asyncio side (the trio guest keeps running meanwhile)."""
    await asyncio.sleep(seconds)
