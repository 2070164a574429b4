"""Client submissions that arrive together are admitted together.

A client that sends one order per request (the Hyperliquid SDK does) costs a node per
request what a batch costs it once: a hand-off of the signature check to the verification
threads and back, a write to the mempool journal, the wait for its fsync, the admission
bookkeeping (docs/performance.md, "Many small requests"). Requests whose handlers reach
``submit`` in the same turn of the event loop (a loaded node reads many connections per
turn) are joined here into one batch for the mempool: one hand-off, one batch signature
check, one journal frame, then each request gets its own transactions' answers back, in
order. Nothing waits for company: the batch goes at the end of the turn that brought its
first request (``loop.call_soon``), so a lone request is admitted as soon as before, and a
batch that reaches ``max_txs`` goes at once.

Joining changes no verdict a request could observe: the mempool judges a batch
transaction by transaction, in order, as it judges consecutive batches (a duplicate of an
earlier transaction in the same batch is refused as one, the admission window and the
signers' shares are counted per transaction). The node stopping or a failed write is
answered per transaction by the runtime, as for a request alone. An exception out of
admission (a fault no input should cause) is not allowed to spread: the joined requests
are admitted again one by one, so only the request that causes it fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Answer = TypeVar("Answer")


class SubmitCoalescer(Generic[Answer]):
    """Joins concurrent ``submit`` calls into calls of ``admit`` with their transactions
    concatenated; ``admit`` must answer once per transaction, in order."""

    __slots__ = ("_admit", "_max_txs", "_running", "_scheduled", "_txs", "_waiting", "batches", "requests")

    def __init__(self, admit: Callable[[list[bytes]], Awaitable[list[Answer]]], max_txs: int) -> None:
        self._admit = admit
        self._max_txs = max_txs
        self._waiting: list[tuple[list[bytes], asyncio.Future[list[Answer]]]] = []
        self._txs = 0
        self._scheduled: asyncio.Handle | None = None
        self._running: set[asyncio.Task[None]] = set()  # strong references until each batch is done
        self.batches = 0  # batches handed to ``admit`` (with ``requests``: how much joining happens)
        self.requests = 0

    async def submit(self, raws: list[bytes]) -> list[Answer]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[Answer]] = loop.create_future()
        self._waiting.append((raws, fut))
        self._txs += len(raws)
        if self._txs >= self._max_txs:
            self._flush()
        elif self._scheduled is None:
            self._scheduled = loop.call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        batch, self._waiting, self._txs = self._waiting, [], 0
        if not batch:
            return
        task = asyncio.ensure_future(self._run(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _admitted(self, raws: list[bytes]) -> list[Answer]:
        """``admit``'s answers, one per transaction (a short list would answer the wrong requests)."""
        answers = await self._admit(raws)
        if len(answers) != len(raws):
            raise RuntimeError(f"admission answered {len(answers)} of {len(raws)} transactions")
        return answers

    async def _run(self, batch: list[tuple[list[bytes], asyncio.Future[list[Answer]]]]) -> None:
        self.batches += 1
        self.requests += len(batch)
        raws = batch[0][0] if len(batch) == 1 else [raw for part, _ in batch for raw in part]
        try:
            answers = await self._admitted(raws)
        except asyncio.CancelledError:  # the loop is closing: so is every joined request
            for _, fut in batch:
                fut.cancel()
            raise
        except Exception as err:
            if len(batch) > 1:  # a fault no input should cause: each request again on its own,
                # so one request's poison cannot fail the others (what the joined batch admitted
                # before it failed is answered as a duplicate, as any resent tx is)
                await self._run_apart(batch)
            elif not batch[0][1].done():
                batch[0][1].set_exception(err)
            return
        start = 0
        for part, fut in batch:
            end = start + len(part)
            if not fut.done():  # its request was cancelled meanwhile: its txs were admitted all the same
                fut.set_result(answers[start:end])
            start = end

    async def _run_apart(self, batch: list[tuple[list[bytes], asyncio.Future[list[Answer]]]]) -> None:
        for part, fut in batch:
            try:
                answers = await self._admitted(part)
            except asyncio.CancelledError:
                for _, f in batch:
                    f.cancel()
                raise
            except Exception as err:
                if not fut.done():
                    fut.set_exception(err)
                continue
            if not fut.done():
                fut.set_result(answers)
