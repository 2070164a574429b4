"""P2PNode end to end, several nodes in one process on one asyncio loop (trio guest mode)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from node.p2p import (
    CONSENSUS,
    SYNC,
    TX,
    BadFrame,
    BanPolicy,
    Limits,
    P2PNode,
    PeerUnavailable,
    RemoteError,
    RequestTimeout,
)
from node.p2p.bridge import TrioBridge
from node.p2p.framing import prefix
from tests.p2p.helpers import aio, free_port, port_is_free, raw_write, wait_until

pytestmark = pytest.mark.e2e


class Recorder:
    """Collects frames per sender; ``wait`` until a total count arrives."""

    def __init__(self) -> None:
        self.frames: dict[str, list[bytes]] = defaultdict(list)
        self.count = 0

    async def __call__(self, peer_id: str, frame: bytes) -> None:
        self.frames[peer_id].append(frame)
        self.count += 1

    async def wait(self, count: int, timeout_s: float = 10.0) -> None:
        await wait_until(lambda: self.count >= count, timeout_s)


class PlainRecorder(Recorder):
    """The same as a plain function, as the node's consensus handler is: nothing to await."""

    def __call__(self, peer_id: str, frame: bytes) -> None:  # type: ignore[override]
        self.frames[peer_id].append(frame)
        self.count += 1


@contextlib.asynccontextmanager
async def mesh(tmp_path: Path, n: int, **kwargs: object) -> AsyncIterator[list[P2PNode]]:
    """``n`` started nodes, each configured with all the others; always stopped."""
    ports = [free_port() for _ in range(n)]
    nodes = [
        P2PNode(tmp_path / f"n{i}", f"/ip4/127.0.0.1/tcp/{ports[i]}", **kwargs)  # type: ignore[arg-type]
        for i in range(n)
    ]
    for i, node in enumerate(nodes):
        for j, other in enumerate(nodes):
            if i != j:
                node.add_peer(f"/ip4/127.0.0.1/tcp/{ports[j]}/p2p/{other.peer_id}")
    try:
        for node in nodes:
            await node.start()
        for node in nodes:
            await node.wait_for_peers([o.peer_id for o in nodes if o is not node], 10)
        yield nodes
    finally:
        for node in nodes:
            await node.stop()


def numbered(i: int, size: int) -> bytes:
    return i.to_bytes(4, "big") + bytes(size - 4)


def numbers(frames: list[bytes]) -> list[int]:
    return [int.from_bytes(f[:4], "big") for f in frames]


@aio(30)
async def test_two_nodes_deliver_small_and_large_frames_in_order(tmp_path: Path) -> None:
    got_a, got_b = Recorder(), PlainRecorder()
    async with mesh(tmp_path, 2) as (a, b):
        a.register(TX, got_a)
        b.register(CONSENSUS, got_b)  # a plain handler: run without awaiting anything
        for i in range(2000):
            assert a.send(b.peer_id, CONSENSUS, numbered(i, 200))
        for i in range(40):
            b.send(a.peer_id, TX, numbered(i, 100_000))
        await got_b.wait(2000)
        await got_a.wait(40)
        assert numbers(got_b.frames[a.peer_id]) == list(range(2000))
        assert numbers(got_a.frames[b.peer_id]) == list(range(40))
        stats = a.metrics.proto(CONSENSUS)
        assert stats.frames_out == 2000 and stats.bytes_out == 2000 * 200
        assert b.metrics.proto(CONSENSUS).frames_in == 2000
        assert b.metrics.proto(TX).bytes_out == 40 * 100_000


@aio(30)
async def test_four_nodes_broadcast_to_everyone_in_order(tmp_path: Path) -> None:
    recorders = [Recorder() for _ in range(4)]
    async with mesh(tmp_path, 4) as nodes:
        for node, recorder in zip(nodes, recorders, strict=True):
            node.register(CONSENSUS, recorder)
        for i in range(200):
            for node in nodes:
                assert node.broadcast(CONSENSUS, numbered(i, 300)) == 3
        for recorder in recorders:
            await recorder.wait(3 * 200)
        for node, recorder in zip(nodes, recorders, strict=True):
            assert set(recorder.frames) == {o.peer_id for o in nodes if o is not node}
            for frames in recorder.frames.values():
                assert numbers(frames) == list(range(200))


@aio(30)
async def test_request_response_errors_and_timeouts(tmp_path: Path) -> None:
    async def serve(peer_id: str, request: bytes) -> bytes:
        if request == b"fail":
            raise RuntimeError("boom")
        if request == b"slow":
            await asyncio.sleep(5)
        return b"blocks:" + request

    async with mesh(tmp_path, 2) as (a, b):
        b.register_request(SYNC, serve)
        answers = await asyncio.gather(
            *(a.request(b.peer_id, SYNC, b"%d" % i, timeout_s=5) for i in range(100))
        )
        assert answers == [b"blocks:%d" % i for i in range(100)]
        big = await a.request(b.peer_id, SYNC, b"x" * 3_000_000, timeout_s=5)
        assert len(big) == 3_000_007
        with pytest.raises(RemoteError, match="RuntimeError"):
            await a.request(b.peer_id, SYNC, b"fail", timeout_s=5)
        with pytest.raises(RequestTimeout):
            await a.request(b.peer_id, SYNC, b"slow", timeout_s=0.2)
        with pytest.raises(PeerUnavailable):
            await a.request("12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq", SYNC, b"")
        # The stream survived the failures.
        assert await a.request(b.peer_id, SYNC, b"ok", timeout_s=5) == b"blocks:ok"
        assert b.metrics.proto(SYNC).handler_errors == 1
        assert a.metrics.proto(SYNC).request_timeouts == 1


@aio(40)
async def test_restarted_peer_is_redialed_and_delivery_resumes(tmp_path: Path) -> None:
    port_a, port_b = free_port(), free_port()
    a = P2PNode(tmp_path / "a", f"/ip4/127.0.0.1/tcp/{port_a}")
    b = P2PNode(tmp_path / "b", f"/ip4/127.0.0.1/tcp/{port_b}")
    a.add_peer(f"/ip4/127.0.0.1/tcp/{port_b}/p2p/{b.peer_id}")
    first, second = Recorder(), Recorder()
    b.register(CONSENSUS, first)
    b2: P2PNode | None = None
    try:
        await a.start()
        await b.start()
        await a.wait_for_peers([b.peer_id])
        for i in range(100):
            a.send(b.peer_id, CONSENSUS, numbered(i, 64))
        await first.wait(100)
        await b.stop()
        await wait_until(lambda: b.peer_id not in a.connected_peers())
        # Queued while the peer is down; delivered after it comes back.
        for i in range(100, 150):
            a.send(b.peer_id, CONSENSUS, numbered(i, 64))
        b2 = P2PNode(tmp_path / "b", f"/ip4/127.0.0.1/tcp/{port_b}")  # same key, same port
        assert b2.peer_id == b.peer_id
        b2.register(CONSENSUS, second)
        await b2.start()
        await a.wait_for_peers([b.peer_id], 10)
        for i in range(150, 200):
            a.send(b.peer_id, CONSENSUS, numbered(i, 64))
        await second.wait(100)
        assert numbers(second.frames[a.peer_id]) == list(range(100, 200))
        assert a.metrics.reconnects >= 1
    finally:
        await a.stop()
        await b.stop()
        if b2 is not None:
            await b2.stop()


@aio(40)
async def test_garbage_is_counted_closes_the_stream_and_bans_repeat_offenders(
    tmp_path: Path,
) -> None:
    policy = BanPolicy(bad_frame_limit=3, window_s=60, ban_s=60)
    good = Recorder()

    async def picky(peer_id: str, frame: bytes) -> None:
        if frame.startswith(b"bad"):
            raise BadFrame("undecodable")
        await good(peer_id, frame)

    async with mesh(tmp_path, 2, ban_policy=policy) as (a, b):
        b.register(CONSENSUS, picky)
        b.register_request(SYNC, picky)  # type: ignore[arg-type]
        # 1. A length prefix far above the 8 MB consensus limit.
        assert await raw_write(a, b.peer_id, CONSENSUS, prefix(9 * 1024 * 1024) + b"x")
        # 2. A valid frame the handler cannot decode.
        a.send(b.peer_id, CONSENSUS, b"bad frame")
        await wait_until(lambda: b.metrics.proto(CONSENSUS).bad_frames == 2)
        # The receiver is fine and the sender's session reconnects its stream.
        a.send(b.peer_id, CONSENSUS, b"good")
        await good.wait(1)
        assert b.connected_peers() == [a.peer_id]
        # 3. A malformed request envelope: third strike, A gets banned and dropped.
        assert await raw_write(a, b.peer_id, SYNC, prefix(3) + b"abc")
        await wait_until(lambda: b.is_banned(a.peer_id))
        assert b.metrics.bad_frames_by_peer[a.peer_id] == 3
        assert b.metrics.bans == 1
        await wait_until(lambda: a.peer_id not in b.connected_peers())
        await wait_until(lambda: b.peer_id not in a.connected_peers())
        assert not b.send(a.peer_id, CONSENSUS, b"nope")


@aio(30)
async def test_stop_releases_the_port_and_leaves_no_tasks(tmp_path: Path) -> None:
    port = free_port()
    other = P2PNode(tmp_path / "other")
    node = P2PNode(tmp_path / "n", f"/ip4/127.0.0.1/tcp/{port}")
    await other.start()
    other.add_peer(f"/ip4/127.0.0.1/tcp/{port}/p2p/{node.peer_id}")
    await node.start()
    await other.wait_for_peers([node.peer_id])
    other.send(node.peer_id, CONSENSUS, b"hello")
    assert not port_is_free(port)
    clash = P2PNode(tmp_path / "clash", f"/ip4/127.0.0.1/tcp/{port}")
    with pytest.raises(OSError):
        await clash.start()
    await node.stop()
    await node.stop()  # idempotent
    assert port_is_free(port)
    again = P2PNode(tmp_path / "n", f"/ip4/127.0.0.1/tcp/{port}")
    await again.start()
    await again.stop()
    await other.stop()
    assert port_is_free(port)
    loop = asyncio.get_running_loop()
    bridge = TrioBridge._by_loop.get(loop)
    assert bridge is not None and not bridge.running
    assert asyncio.all_tasks() == {asyncio.current_task()}


@aio(30)
async def test_full_queue_drops_oldest_and_late_peer_gets_the_newest(tmp_path: Path) -> None:
    port_b = free_port()
    b = P2PNode(tmp_path / "b", f"/ip4/127.0.0.1/tcp/{port_b}")
    a = P2PNode(
        tmp_path / "a",
        peers=[f"/ip4/127.0.0.1/tcp/{port_b}/p2p/{b.peer_id}"],
        limits=Limits(queue_max_frames=10),
    )
    got = Recorder()
    try:
        await a.start()
        for i in range(25):  # b is not up yet: frames wait in a's bounded queue
            assert a.send(b.peer_id, CONSENSUS, numbered(i, 32))
        assert a.metrics.proto(CONSENSUS).dropped_out == 15
        b.register(CONSENSUS, got)  # registering before or after start both work
        await b.start()
        await got.wait(10)
        await asyncio.sleep(0.2)
        assert numbers(got.frames[a.peer_id]) == list(range(15, 25))
        # A handler registered while running is installed immediately.
        late = Recorder()
        b.register(TX, late)
        a.send(b.peer_id, TX, b"late")
        await late.wait(1)
    finally:
        await a.stop()
        await b.stop()


@aio(30)
async def test_raw_tcp_garbage_does_not_hurt_the_listener(tmp_path: Path) -> None:
    got = Recorder()
    async with mesh(tmp_path, 2) as (a, b):
        b.register(CONSENSUS, got)
        port = int(b.listen_addrs[0].split("/tcp/")[1].split("/")[0])
        for payload in (b"\x00" * 10, b"GET / HTTP/1.1\r\n\r\n", bytes(range(256)) * 64):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(payload)
            await writer.drain()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reader.read(), 1)  # b hangs up (or ignores us)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        a.send(b.peer_id, CONSENSUS, b"still alive")
        await got.wait(1)
        assert b.connected_peers() == [a.peer_id]


async def _stalled_flood(
    tmp_path: Path, sender_limits: Limits, stall_s: float
) -> tuple[list[int], int]:
    """200 frames of 200 KB to a receiver whose handler blocks on frame 5 for ``stall_s``
    (one frame in flight: the stalled handler holds its stream)."""
    a = P2PNode(tmp_path / "a", limits=sender_limits)
    b = P2PNode(tmp_path / "b", limits=Limits(inbox_max_frames=2, frames_in_flight=1))
    got: list[int] = []

    async def slow(peer_id: str, frame: bytes) -> None:
        number = int.from_bytes(frame[:4], "big")
        if number == 5 and number not in got:
            await asyncio.sleep(stall_s)
        got.append(number)

    b.register(CONSENSUS, slow)
    try:
        await b.start()
        a.add_peer(b.listen_addrs[0])
        await a.start()
        await a.wait_for_peers([b.peer_id])
        for i in range(200):
            a.send(b.peer_id, CONSENSUS, numbered(i, 200_000))
        await wait_until(lambda: 5 in got and 199 in got and not a.queued()[0], 30)
        await asyncio.sleep(0.1)
        return got, a.metrics.streams_opened
    finally:
        await a.stop()
        await b.stop()


@aio(30)
async def test_a_waiting_handler_holds_its_stream_only_past_the_frames_in_flight(tmp_path: Path) -> None:
    # Handlers are called in order; while frame 5's waits, the next frames are still
    # handed over and handled, and once ``frames_in_flight`` wait, the stream waits.
    called: list[int] = []
    done: list[int] = []
    release = asyncio.Event()

    async def waits(peer_id: str, frame: bytes) -> None:
        number = int.from_bytes(frame[:4], "big")
        called.append(number)
        if number == 5 or number >= 10:
            await release.wait()
        done.append(number)

    async with mesh(tmp_path, 2, limits=Limits(frames_in_flight=4)) as (a, b):
        b.register(TX, waits)
        for i in range(20):
            a.send(b.peer_id, TX, numbered(i, 100))
        await wait_until(lambda: len(called) >= 13, 5)
        await asyncio.sleep(0.3)
        # 6-9 handled past the waiting 5; 5, 10, 11, 12 waiting fill the stream's 4: 13 waits
        assert called == list(range(13)) and done == [0, 1, 2, 3, 4, 6, 7, 8, 9]
        release.set()
        await wait_until(lambda: len(done) == 20, 5)
        assert called == list(range(20)) and sorted(done) == list(range(20))


@aio(40)
async def test_frames_in_flight_bound_a_peer_across_its_streams(tmp_path: Path) -> None:
    # A peer whose stream ends (here: it restarts) and who opens another does not get a
    # fresh allowance: the handlers still running for its earlier stream count.
    port_a = free_port()
    b = P2PNode(tmp_path / "b", limits=Limits(frames_in_flight=3))
    called: list[int] = []
    release = asyncio.Event()

    async def waits(peer_id: str, frame: bytes) -> None:
        called.append(int.from_bytes(frame[:4], "big"))
        await release.wait()

    b.register(TX, waits)
    a = a2 = None
    try:
        await b.start()
        a = P2PNode(tmp_path / "a", f"/ip4/127.0.0.1/tcp/{port_a}")
        a.add_peer(b.listen_addrs[0])
        await a.start()
        await a.wait_for_peers([b.peer_id])
        for i in range(2):
            a.send(b.peer_id, TX, numbered(i, 100))
        await wait_until(lambda: len(called) == 2, 5)
        await a.stop()  # its stream ends with both handlers still waiting
        a2 = P2PNode(tmp_path / "a", f"/ip4/127.0.0.1/tcp/{port_a}")  # same key: the same peer
        a2.add_peer(b.listen_addrs[0])
        await a2.start()
        await a2.wait_for_peers([b.peer_id], 10)
        for i in range(2, 5):
            a2.send(b.peer_id, TX, numbered(i, 100))
        await wait_until(lambda: len(called) >= 3, 5)
        await asyncio.sleep(0.5)
        assert called == [0, 1, 2]  # 3 running: frame 3 waits
        release.set()
        await wait_until(lambda: len(called) == 5, 5)
    finally:
        for node in (a, a2, b):
            if node is not None:
                await node.stop()


@aio(40)
async def test_handler_stalling_longer_than_yamux_timeout_loses_nothing(tmp_path: Path) -> None:
    # libp2p's own yamux write would reset the stream after 5 s without window and
    # drop the ~16 MB the receiver had buffered; our writer waits instead.
    got, streams = await _stalled_flood(tmp_path, Limits(), stall_s=6.0)
    assert got == list(range(200))
    assert streams == 1


@aio(30)
async def test_order_survives_a_stream_reset(tmp_path: Path) -> None:
    # With a short stall timeout the sender resets the stream and opens a new one; the
    # receiver must finish the old stream's frames before the new stream's. What was
    # in flight may be lost or repeated, but never reordered.
    got, streams = await _stalled_flood(tmp_path, Limits(stall_timeout_s=0.3), stall_s=1.5)
    assert streams >= 2
    assert got == sorted(got)
    assert got[-1] == 199


@aio(20)
async def test_unusable_listen_address_raises_oserror_and_cleans_up(tmp_path: Path) -> None:
    node = P2PNode(tmp_path, "/ip4/192.0.2.1/tcp/0")  # TEST-NET-1: not on this host
    with pytest.raises(OSError):
        await node.start()
    await node.stop()
    assert asyncio.all_tasks() == {asyncio.current_task()}
