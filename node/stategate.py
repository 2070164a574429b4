"""The gate between the execution thread and everything that reads the exchange state.

Why: a committed block is applied, indexed and stored on its own thread
(node/execution.py), so the event loop goes on reading requests, verifying signatures
and answering while it runs, instead of holding every client behind the block. The
state machine's in-memory exchange is mutated in place while that happens, so nothing on
the loop may read it then: a reader would see half a block (a fill's maker side without
its taker side). Every reader of the exchange state awaits ``wait_open`` right before its
synchronous read; with no await between the two, the thread cannot start another block
in between (it only starts from the loop, when consensus commits).

Mempool admission is the one reader that does not wait: it reads only what a block
replaces whole (``state.machine.must_admit``: a signer's kept nonces, a new array each
time, whether an address is known, the block time), each read one atomic step under the
GIL, so a verdict is one the signer would get just before or just after its own
transactions in the executing block. That is admission policy, never consensus (the
block's own checks decide), and it lets a client's submission be answered while a block
executes instead of after it (measured in docs/performance.md).

The gate is closed while a block executes and opened when the loop has taken the
block's results. When execution fails (a full disk, a bug), it is never opened again:
the node is stopping, and ``wait_open`` raises ``NodeStopping`` instead of letting a
reader see the state of a block that was not committed, or hang until shutdown gives up.
"""

from __future__ import annotations

import asyncio


class NodeStopping(Exception):
    """The node stops (a signal, a failed write) before an awaited result was seen here:
    its client gets an answer that says so, not a hang until shutdown gives up on the
    request, and never a state or a commit this node did not store."""


class StateGate:
    """Open: the exchange state is a committed one. Closed: a block is executing."""

    __slots__ = ("_failed", "_open")

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._failed = False

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        if not self._failed:
            self._open.set()

    def fail(self) -> None:
        """Execution failed or the node stops: wake every waiter with ``NodeStopping``."""
        self._failed = True
        self._open.set()

    def must_not_have_failed(self) -> None:
        """For the one reader that does not wait (mempool admission, see the module's
        docstring): raise ``NodeStopping`` once execution failed."""
        if self._failed:
            raise NodeStopping()

    async def wait_open(self) -> None:
        """Return once the state is a committed one; the caller reads it before its next await."""
        while not self._open.is_set():
            await self._open.wait()
        if self._failed:
            raise NodeStopping()
