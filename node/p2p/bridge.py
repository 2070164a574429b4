"""Run trio (py-libp2p) inside the node's asyncio/uvloop loop, on the same thread.

Why guest mode: py-libp2p is written for trio, the rest of the node (RPC, consensus
driver, mempool) for asyncio on uvloop. ``trio.lowlevel.start_guest_run`` lets trio
schedule its tasks as callbacks of the running asyncio loop; only trio's blocking
I/O wait (epoll) runs in a helper thread that trio manages itself. Every trio task
and every asyncio task therefore runs on the one event-loop thread, so the two sides
can share plain Python objects (deques, dicts, counters) without locks, and nobody
pays for a second interpreter thread fighting over the GIL. Measured cost: ~10 %
throughput compared with a pure trio process. The fallback (trio in its own thread
with thread-safe queues) was not needed: libp2p 0.8.1 works in guest mode.

Crossing the boundary:

* asyncio -> trio: ``TrioBridge.run_sync_soon(fn)`` (``TrioToken.run_sync_soon``,
  the one trio entry point documented as callable from outside trio; it also wakes
  trio if it is parked in its I/O wait). ``await bridge.run(async_fn)`` runs a trio
  coroutine as a task and returns its result to asyncio; cancelling the asyncio
  caller cancels the trio task.
* trio -> asyncio: trio tasks run inside asyncio callbacks, so they may resolve
  asyncio futures or append to deques directly; the asyncio side sees the result on
  its next loop iteration. (The reverse is not true: calling ``trio.Event.set()`` from
  asyncio would reschedule a trio task without waking trio's I/O wait, which is why
  that direction always goes through ``run_sync_soon``.)

Only one trio run may exist per thread (and per host loop), so all ``P2PNode``s on
one asyncio loop share one ``TrioBridge``: it is reference counted, started by the
first node's ``start()`` and finished by the last node's ``stop()``.

Rules for code running on the trio side: a task spawned here must not raise (an
exception would tear down the shared nursery and every node with it), so ``spawn``
wraps tasks to log and swallow ``Exception``; and the asyncio loop must not be closed
while a bridge is running (always ``await node.stop()``).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import outcome
import trio

log = logging.getLogger(__name__)

T = TypeVar("T")


class BridgeError(RuntimeError):
    """The trio guest run is not running (not started, finished or crashed)."""


def _resolve(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _reject(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


class TrioBridge:
    """One trio guest run hosted by one asyncio loop, shared by reference count."""

    _by_loop: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TrioBridge]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._users = 0
        self._lock = asyncio.Lock()
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._stop_event: trio.Event | None = None
        self._ready: asyncio.Future[None] | None = None
        self._done: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def acquire(cls) -> TrioBridge:
        """The bridge of the running loop, started if this is its first user."""
        loop = asyncio.get_running_loop()
        bridge = cls._by_loop.get(loop)
        if bridge is None:
            bridge = cls._by_loop[loop] = cls(loop)
        async with bridge._lock:
            if bridge._users == 0:
                await bridge._start()
            bridge._users += 1
        return bridge

    async def release(self) -> None:
        """Drop one reference; the last one finishes the trio run and waits for it."""
        async with self._lock:
            if self._users <= 0:
                return
            self._users -= 1
            if self._users == 0:
                await self._finish()

    @property
    def running(self) -> bool:
        return self._nursery is not None

    @property
    def nursery(self) -> trio.Nursery | None:
        """The bridge's top-level nursery (trio side only), for long-lived services."""
        return self._nursery

    async def _start(self) -> None:
        self._ready = self.loop.create_future()
        self._done = self.loop.create_future()
        loop: Any = self.loop  # call_soon's (callback, *args) signature confuses the stubs
        trio.lowlevel.start_guest_run(
            self._main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            run_sync_soon_not_threadsafe=loop.call_soon,
            done_callback=self._on_done,
            # asyncio (and uvloop) own signal.set_wakeup_fd; trio must not replace it.
            host_uses_signal_set_wakeup_fd=True,
        )
        await self._ready

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop_event = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            assert self._ready is not None
            _resolve(self._ready, None)
            await self._stop_event.wait()
            nursery.cancel_scope.cancel()
        self._nursery = None

    def _on_done(self, result: outcome.Outcome[None]) -> None:
        self._nursery = None
        self._token = None
        if isinstance(result, outcome.Error):
            log.error("trio guest run crashed", exc_info=result.error)
            error: BaseException = BridgeError(f"trio guest run crashed: {result.error!r}")
            if self._ready is not None:
                _reject(self._ready, error)
        if self._ready is not None:
            _reject(self._ready, BridgeError("trio guest run ended before it was ready"))
        if self._done is not None:
            _resolve(self._done, None)

    async def _finish(self) -> None:
        if self._stop_event is not None and self._token is not None:
            self._token.run_sync_soon(self._stop_event.set)
        if self._done is not None:
            await self._done
        self._stop_event = None

    # ------------------------------------------------------------------ crossing

    def run_sync_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Call ``fn(*args)`` on the trio side soon (safe from asyncio, any thread)."""
        token = self._token
        if token is None:
            raise BridgeError("trio bridge is not running")
        try:
            token.run_sync_soon(fn, *args)
        except trio.RunFinishedError:
            raise BridgeError("trio bridge has finished") from None

    def spawn(self, async_fn: Callable[..., Awaitable[object]], *args: Any, name: str) -> None:
        """Start a fire-and-forget trio task in the bridge nursery (errors are logged)."""
        self.run_sync_soon(self._start_soon, async_fn, args, name)

    def _start_soon(
        self, async_fn: Callable[..., Awaitable[object]], args: tuple[Any, ...], name: str
    ) -> None:
        if self._nursery is None:
            log.debug("bridge finished; dropping task %s", name)
            return
        self._nursery.start_soon(guarded, async_fn, args, name, name=name)

    async def run(self, async_fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``async_fn(*args)`` as a trio task and await its result from asyncio."""
        fut: asyncio.Future[T] = self.loop.create_future()
        scopes: list[trio.CancelScope] = []

        async def task() -> None:
            try:
                with trio.CancelScope() as scope:
                    scopes.append(scope)
                    if not fut.done():  # else the asyncio caller gave up already
                        _resolve(fut, await async_fn(*args))
            except Exception as exc:
                _reject(fut, collapse(exc))
            finally:
                _reject(fut, BridgeError("trio task was cancelled"))

        self.run_sync_soon(self._start_task, task, fut)
        try:
            return await fut
        except asyncio.CancelledError:
            if scopes and self._token is not None:
                self.run_sync_soon(scopes[0].cancel)
            raise

    def _start_task(
        self, async_fn: Callable[[], Awaitable[None]], fut: asyncio.Future[Any]
    ) -> None:
        if self._nursery is None:
            _reject(fut, BridgeError("trio bridge has finished"))
            return
        self._nursery.start_soon(async_fn)


def collapse(exc: BaseException) -> BaseException:
    """Unwrap an exception group holding exactly one exception (trio nurseries wrap
    errors raised inside them), so asyncio callers can catch e.g. ``OSError``."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


async def guarded(
    async_fn: Callable[..., Awaitable[object]], args: tuple[Any, ...], name: str
) -> None:
    """Run a trio task so that an ``Exception`` is logged instead of crashing its nursery."""
    try:
        await async_fn(*args)
    except Exception:
        log.exception("p2p task %s failed", name)
