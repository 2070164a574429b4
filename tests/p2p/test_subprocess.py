"""A peer in a separate process: frames, requests, and a kill -9 / restart cycle."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from node.p2p import CONSENSUS, SYNC, P2PNode
from tests.p2p.helpers import aio, free_port, wait_until

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


class PeerProcess:
    """``tests/p2p/peer_proc.py`` in a subprocess; always killed on exit."""

    def __init__(self, home: Path, port: int) -> None:
        self.home = home
        self.port = port
        self.proc: asyncio.subprocess.Process | None = None
        self.info: dict[str, Any] = {}

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.p2p.peer_proc",
            "--home",
            str(self.home),
            "--listen",
            f"/ip4/127.0.0.1/tcp/{self.port}",
            cwd=REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 20)
        assert line, "peer process exited before it was ready"
        self.info = json.loads(line)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def stop(self) -> int | None:
        """Close stdin (the clean-stop signal); kill if it does not exit in time."""
        if self.proc is None or self.proc.returncode is not None:
            return None if self.proc is None else self.proc.returncode
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            return await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            await self.kill()
            return None

    @property
    def addr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.port}/p2p/{self.info['peer_id']}"


@contextlib.asynccontextmanager
async def peer_process(home: Path, port: int) -> AsyncIterator[PeerProcess]:
    proc = PeerProcess(home, port)
    try:
        await proc.start()
        yield proc
    finally:
        await proc.kill()


@aio(50)
async def test_subprocess_peer_echoes_survives_kill_and_restart(tmp_path: Path) -> None:
    echoes: list[int] = []

    async def on_echo(peer_id: str, frame: bytes) -> None:
        echoes.append(int.from_bytes(frame[:4], "big"))

    port = free_port()
    node = P2PNode(tmp_path / "local")
    node.register(CONSENSUS, on_echo)
    async with peer_process(tmp_path / "remote", port) as remote:
        node.add_peer(remote.addr)
        await node.start()
        try:
            peer_id = remote.info["peer_id"]
            await node.wait_for_peers([peer_id], 10)
            assert await node.request(peer_id, SYNC, b"ping", timeout_s=5) == b"pong:ping"
            for i in range(500):
                node.send(peer_id, CONSENSUS, i.to_bytes(4, "big") + bytes(196))
            await wait_until(lambda: len(echoes) == 500)
            assert echoes == list(range(500))

            await remote.kill()  # no clean shutdown: the TCP connection just dies
            await wait_until(lambda: peer_id not in node.connected_peers())
            for i in range(500, 600):  # queued while the peer is down
                node.send(peer_id, CONSENSUS, i.to_bytes(4, "big") + bytes(196))

            await remote.start()  # same home (key) and port
            assert remote.info["peer_id"] == peer_id
            await node.wait_for_peers([peer_id], 15)
            assert await node.request(peer_id, SYNC, b"again", timeout_s=5) == b"pong:again"
            await wait_until(lambda: len(echoes) >= 600, 15)
            assert echoes[:500] == list(range(500))
            assert sorted(set(echoes[500:])) == list(range(500, 600))
            assert node.metrics.reconnects >= 1
            assert await remote.stop() == 0  # the remote shuts down cleanly too
        finally:
            await node.stop()
