"""``P2PProcess``: libp2p in a worker process behaves as ``P2PNode`` does for the node (order,
requests and their errors, bad frames, peer callbacks), and the worker never outlives it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from node.p2p import CONSENSUS, SYNC, TX, BadFrame, PeerUnavailable, RemoteError, RequestTimeout
from node.p2p.process import P2PProcess
from tests.p2p.helpers import aio, free_port, wait_until

pytestmark = pytest.mark.e2e


class Handlers:
    """One-way frames recorded in arrival order; requests answered, refused or left hanging."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, bytes]] = []
        self.connected: list[str] = []
        self.release = asyncio.Event()  # what a b"hold" frame's handler waits for

    async def on_frame(self, peer: str, frame: bytes) -> None:
        self.on_plain_frame(peer, frame)
        if frame == b"hold":
            await self.release.wait()
            self.frames.append((peer, b"released"))

    def on_plain_frame(self, peer: str, frame: bytes) -> None:
        """A handler that never waits (the node's consensus frames): run without a task."""
        if frame == b"garbage":
            raise BadFrame("not a frame")
        self.frames.append((peer, frame))

    async def on_request(self, peer: str, body: bytes) -> bytes:
        if body == b"fail":
            raise RuntimeError("boom")
        if body == b"hang":
            await asyncio.sleep(60)
        return b"echo:" + body


@contextlib.asynccontextmanager
async def pair(tmp_path: Path) -> AsyncIterator[tuple[list[P2PProcess], list[Handlers]]]:
    ports = [free_port(), free_port()]
    ids = [P2PProcess(str(tmp_path / f"n{i}"), f"/ip4/127.0.0.1/tcp/{ports[i]}").peer_id for i in range(2)]
    nodes, handlers = [], []
    for i in range(2):
        other = 1 - i
        node = P2PProcess(str(tmp_path / f"n{i}"), f"/ip4/127.0.0.1/tcp/{ports[i]}",
                          peers=[f"/ip4/127.0.0.1/tcp/{ports[other]}/p2p/{ids[other]}"])
        h = Handlers()
        node.register(TX, h.on_frame)
        node.register(CONSENSUS, h.on_plain_frame)
        node.register_request(SYNC, h.on_request)
        node.on_peer_connected(h.connected.append)
        nodes.append(node)
        handlers.append(h)
    try:
        for node in nodes:
            await node.start()
        await wait_until(lambda: all(n.connected_peers() for n in nodes), 15)
        yield nodes, handlers
    finally:
        for node in nodes:
            await node.stop()


@aio(90)
async def test_frames_arrive_in_order_and_requests_answer_with_p2pnode_errors(tmp_path: Path) -> None:
    async with pair(tmp_path) as (nodes, handlers):
        a, b = nodes
        assert a.connected_peers() == [b.peer_id]
        await wait_until(lambda: handlers[0].connected and handlers[1].connected, 10)
        for k in range(200):
            a.send(b.peer_id, TX, k.to_bytes(4, "big"))
            a.send(b.peer_id, CONSENSUS, b"vote" + k.to_bytes(4, "big"))  # a plain handler's frames
        await wait_until(lambda: len(handlers[1].frames) == 400, 10)
        tx_frames = [f for p, f in handlers[1].frames if not f.startswith(b"vote")]
        assert tx_frames == [k.to_bytes(4, "big") for k in range(200)]
        votes = [f for p, f in handlers[1].frames if f.startswith(b"vote")]
        assert votes == [b"vote" + k.to_bytes(4, "big") for k in range(200)]
        assert {p for p, _ in handlers[1].frames} == {a.peer_id}

        assert await a.request(b.peer_id, SYNC, b"hello") == b"echo:hello"
        with pytest.raises(RemoteError, match="internal error: RuntimeError"):
            await a.request(b.peer_id, SYNC, b"fail")
        with pytest.raises(RequestTimeout):
            await a.request(b.peer_id, SYNC, b"hang", timeout_s=0.5)
        with pytest.raises(PeerUnavailable):
            await a.request("12D3KooWNotAPeerAtAllNotAPeerAtAllNotAPeerAtAll1", SYNC, b"x")

        # a frame the node's handler calls bad counts against the sender, as in one process
        a.send(b.peer_id, TX, b"garbage")
        a.send(b.peer_id, CONSENSUS, b"garbage")  # from a plain handler too

        def bad_frames(protocol: str) -> int:
            return int(b.metrics_snapshot().get("protocols", {}).get(protocol, {}).get("bad_frames", 0))

        await wait_until(lambda: bad_frames(TX) >= 1 and bad_frames(CONSENSUS) >= 1, 10)


@aio(60)
async def test_a_waiting_handler_does_not_hold_the_frames_behind_it(tmp_path: Path) -> None:
    # The worker hands the node a stream's next frames while an earlier handler still waits
    # (no round trip per frame), and the stream's order of calls is kept.
    async with pair(tmp_path) as (nodes, handlers):
        a, b = nodes
        a.send(b.peer_id, TX, b"hold")
        for k in range(5):
            a.send(b.peer_id, TX, k.to_bytes(4, "big"))
        await wait_until(lambda: len(handlers[1].frames) == 6, 10)
        assert [f for _, f in handlers[1].frames] == [b"hold", *(k.to_bytes(4, "big") for k in range(5))]
        handlers[1].release.set()
        await wait_until(lambda: len(handlers[1].frames) == 7, 10)
        assert handlers[1].frames[-1][1] == b"released"


@aio(60)
async def test_stop_ends_the_worker_and_frees_the_port(tmp_path: Path) -> None:
    port = free_port()
    node = P2PProcess(str(tmp_path / "n"), f"/ip4/127.0.0.1/tcp/{port}")
    await node.start()
    pid = node.metrics_snapshot()["worker_pid"]
    assert pid and _listening(port)
    await node.stop()
    assert not _alive(pid)
    assert not _listening(port)


@aio(60)
async def test_a_taken_port_refuses_the_start(tmp_path: Path) -> None:
    port = free_port()
    first = P2PProcess(str(tmp_path / "a"), f"/ip4/127.0.0.1/tcp/{port}")
    await first.start()
    try:
        second = P2PProcess(str(tmp_path / "b"), f"/ip4/127.0.0.1/tcp/{port}")
        with pytest.raises(OSError, match="p2p on"):
            await second.start()
    finally:
        await first.stop()


@aio(60)
async def test_a_dead_worker_is_reported_to_the_node(tmp_path: Path) -> None:
    node = P2PProcess(str(tmp_path / "n"), f"/ip4/127.0.0.1/tcp/{free_port()}")
    failures: list[str] = []
    node.on_failure = failures.append
    await node.start()
    try:
        os.kill(node.metrics_snapshot()["worker_pid"], signal.SIGKILL)
        await wait_until(lambda: bool(failures), 10)
        assert "worker" in failures[0] or "pipe" in failures[0]
        assert node.broadcast(TX, b"x") == 0
    finally:
        await node.stop()


def test_the_worker_dies_with_a_killed_node(tmp_path: Path) -> None:
    """kill -9 of the node leaves no worker holding the p2p port (a restart must bind it)."""
    port = free_port()
    script = textwrap.dedent(f"""
        import asyncio, sys
        from node.p2p.process import P2PProcess
        async def main():
            node = P2PProcess({str(tmp_path / "n")!r}, "/ip4/127.0.0.1/tcp/{port}")
            await node.start()
            print(node.metrics_snapshot()["worker_pid"], flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        assert _alive(worker)
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker)
        while _listening(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _listening(port)
    finally:
        parent.kill()


def _listening(port: int) -> bool:
    """Is a socket listening on ``port``? Read from /proc/net/tcp{,6} (state 0A), not by
    connecting: a connect to a closed port in the ephemeral range can connect to itself,
    and another process's outgoing socket may hold the same local port."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
