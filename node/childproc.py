"""A worker process of the node, on a ``MessagePipe``: started, watched, stopped.

The node runs work that need not hold its GIL in child processes: libp2p
(node/p2p/process.py) and its clients' HTTP (node/frontend/). Each is started as ``python
-P -m MODULE <fd> <config json>`` with one end of a socketpair; it reports ``["U", ...]``
once it serves or ``["E", reason]`` if it cannot, and stops on ``["X"]``. It dies with
the node (``die_with_parent``) and the node stops if it dies first (``on_failure``): a
node without its network or its clients cannot do its job, and a restart brings both back.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from node.pipe import MessagePipe, PipeBroken

log = logging.getLogger("bookchain.childproc")

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
PR_SET_PDEATHSIG = 1


class ChildProcess:
    """One worker process and the node's end of its pipe. The owner routes every message but
    ``U`` and ``E`` (which this class reads) through ``on_message``."""

    def __init__(self, module: str, what: str, on_message: Callable[[list[Any]], None], *,
                 max_message_bytes: int) -> None:
        self.module = module
        self.max_message_bytes = max_message_bytes
        self.what = what  # "the p2p worker", for messages
        self.on_message = on_message
        self.on_failure: Callable[[str], None] | None = None
        self.on_end: Callable[[str], None] | None = None  # pending requests fail with this reason
        self.proc: asyncio.subprocess.Process | None = None
        self.pipe: MessagePipe | None = None
        self.up_message: list[Any] = []
        self._up: asyncio.Future[str | None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.stopping = False

    async def start(self, config: dict[str, Any]) -> str | None:
        """Start the worker and wait for it to serve: None, or why it did not (it is then
        stopped)."""
        await self.spawn(config)
        return await self.wait_up()

    async def spawn(self, config: dict[str, Any]) -> None:
        """Start the worker process; it loads its code meanwhile (``wait_up`` waits for it to
        serve). A worker that waits for a message of the node's before it serves overlaps
        its start-up with the node's own."""
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._up = loop.create_future()
        try:
            self.pipe = await MessagePipe.connect(ours, self._route, self.max_message_bytes)
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-P", "-m", self.module, str(theirs.fileno()),
                json.dumps({**config, "parent_pid": os.getpid(), "max_message_bytes": self.max_message_bytes}),
                pass_fds=(theirs.fileno(),), stdin=asyncio.subprocess.DEVNULL)
        finally:
            theirs.close()
        self.spawn_task(self._watch())

    async def wait_up(self) -> str | None:
        """Wait for the spawned worker to serve: None, or why it did not (it is then stopped)."""
        assert self._up is not None, "spawn first"
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                failure = await asyncio.shield(self._up)
        except TimeoutError:
            failure = f"{self.what} did not start within {START_TIMEOUT_S:.0f} s"
        if failure is not None:
            await self.stop()
        return failure

    def _route(self, message: list[Any]) -> None:
        kind = message[0]
        if kind in ("U", "E"):
            self.up_message = message
            if self._up is not None and not self._up.done():
                self._up.set_result(None if kind == "U" else str(message[1]))
        else:
            self.on_message(message)

    def spawn_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self) -> None:
        """The worker's exit or the pipe's end, whichever comes first, is the node's concern."""
        assert self.proc is not None and self.pipe is not None
        exited: asyncio.Future[Any] = asyncio.ensure_future(self.proc.wait())
        ended: asyncio.Future[Any] = self.pipe.closed
        await asyncio.wait([exited, ended], return_when=asyncio.FIRST_COMPLETED)
        reason = (f"{self.what} exited with status {self.proc.returncode}" if exited.done()
                  else f"{self.what}'s pipe ended: {self.pipe.closed.result() or 'closed'}")
        if self.on_end is not None:
            self.on_end(reason)
        if self._up is not None and not self._up.done():
            self._up.set_result(reason)
        elif not self.stopping:
            log.critical("%s: the node stops", reason)
            if self.on_failure is not None:
                self.on_failure(reason)

    def post(self, message: list[Any]) -> bool:
        """Send ``message``; False once the worker is gone or stopping."""
        return self.pipe is not None and not self.stopping and self.pipe.try_send(message)

    async def stop(self) -> None:
        """Ask the worker to stop, kill it if it does not within ``STOP_TIMEOUT_S``. Idempotent."""
        if self.stopping:
            return
        self.stopping = True
        proc, pipe = self.proc, self.pipe
        if pipe is not None:
            with contextlib.suppress(PipeBroken):
                pipe.send(["X"])
        if proc is not None and proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                log.warning("%s %d did not stop within %.0f s: killing it", self.what, proc.pid, STOP_TIMEOUT_S)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if pipe is not None:
            pipe.close()
        for task in list(self._tasks):
            task.cancel()
        if self.on_end is not None:
            self.on_end(f"{self.what} stopped")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel for SIGKILL when the node exits; and if it already has (the node was
    killed between the fork and here), exit now."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(0)


async def connect_parent(fd: int, config: dict[str, Any], on_message: Callable[[list[Any]], None]) -> MessagePipe:
    """The worker's end of the pipe its node handed it."""
    return await MessagePipe.connect(socket.socket(fileno=fd), on_message, int(config["max_message_bytes"]))


async def told_to_serve(listen: asyncio.Event, stop: asyncio.Event, pipe: MessagePipe) -> bool:
    """A loaded worker waits for the node's word to serve (``["L"]``: its handlers or its
    server are ready): True once it came, False if the node asked it to stop or went first."""
    told: asyncio.Future[Any] = asyncio.ensure_future(listen.wait())
    stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    await asyncio.wait([told, stopped, pipe.closed], return_when=asyncio.FIRST_COMPLETED)
    go = told.done() and not stopped.done()
    told.cancel()
    stopped.cancel()
    return go


def run_child(argv: list[str], serve: Callable[[int, dict[str, Any]], Coroutine[Any, Any, int]], *,
              libp2p: bool = True) -> None:
    """A worker's ``main``: ``serve(fd, config)`` on uvloop, dying with the node, its log in
    the node's log file, ^C and SIGTERM left to the node (which stops it). ``libp2p``: the
    worker runs libp2p (its logging is set up as the node's is)."""
    fd, config = int(argv[0]), json.loads(argv[1])
    die_with_parent(int(config["parent_pid"]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a ^C reaches the whole group: the node stops us
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from node.main import setup_logging

    setup_logging(Path(config["log_path"]), config.get("log_level", "INFO"), with_libp2p=libp2p)
    try:
        import uvloop

        status = uvloop.run(serve(fd, config))
    except ImportError:  # pragma: no cover - uvloop is a dependency
        status = asyncio.run(serve(fd, config))
    sys.exit(status)
