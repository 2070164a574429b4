"""A node that proves state, without processes: a real chain (blocks and commit certificates
from tests/node/test_replay.py's ``build_chain``), applied by the real ``Execution`` into a
LevelDB state store, served by the real ``RpcServer``. ``serve`` runs that app on a port in
a thread of its own, for the CLI (which speaks plain HTTP)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiohttp import web

from node.blockstore import BlockStore
from node.config import MempoolConfig
from node.events import EventBus
from node.execution import Execution
from node.mempool import Mempool
from node.metrics import NodeMetrics
from node.rpc import RpcServer
from state.genesis import Genesis
from state.machine import StateMachine
from tests.node.test_replay import ALICE, VALIDATORS, build_chain

__all__ = ["ALICE", "VALIDATORS", "ProvingNode", "serve"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ProvingNode:
    """``heights`` blocks applied through ``Execution.handshake`` with ``keep`` proof heights
    (block h carrying ``evidence[h]``, encoded ``DuplicateVote``s)."""

    def __init__(self, tmp: Path, heights: int = 6, keep: int = 100,
                 evidence: Mapping[int, tuple[bytes, ...]] | None = None) -> None:
        self.home = tmp / "chain"
        build_chain(self.home, heights=heights, evidence=evidence)
        self.genesis_path = self.home / "genesis.json"
        self.genesis = Genesis.from_json(json.loads(self.genesis_path.read_text()))
        self.blocks = BlockStore(str(self.home / "data" / "blocks"))
        self.sm = StateMachine.open(self.genesis, str(tmp / "state"))
        self.execution = Execution(self.sm, self.blocks, Mempool(self.sm, MempoolConfig()), EventBus(), None,
                                   proof_heights=keep)
        self.execution.handshake()
        self.host = SimpleNamespace(sm=self.sm, blocks=self.blocks, execution=self.execution, genesis=self.genesis,
                                    faults=SimpleNamespace(routes=lambda: []), metrics=NodeMetrics(), bus=EventBus(),
                                    sync_pending=None)
        self.tamper: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None

    def app(self) -> web.Application:
        """A fresh RPC app over this node (an aiohttp app runs on one event loop only)."""
        app = RpcServer(self.host).app
        app.middlewares.append(self._tampering)
        return app

    @web.middleware
    async def _tampering(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A lying node: ``tamper(path, answer)`` rewrites a JSON answer before it is sent."""
        resp = await handler(request)
        if self.tamper is None or not isinstance(resp, web.Response) or resp.status != 200 \
                or not isinstance(resp.body, bytes):
            return resp
        doc = json.loads(resp.body)
        return web.json_response(self.tamper(request.path, doc))

    def close(self) -> None:
        self.execution.proofs.close()
        self.blocks.close()
        self.sm.close()


@contextmanager
def serve(app: web.Application) -> Iterator[str]:
    """``app`` on 127.0.0.1 (a free port) in a thread with its own loop; yields its URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    ready = threading.Event()
    url: list[str] = []

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        url.append(f"http://127.0.0.1:{sockets[0].getsockname()[1]}")
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield url[0]
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
