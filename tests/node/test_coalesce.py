"""Clients' requests that reach ``submit`` in the same turn of the loop are admitted as one
batch (node/coalesce.py), each getting its own answers back in order; a lone request
waits for no company; a failed batch fails every request in it."""

from __future__ import annotations

import asyncio

import pytest

from node.coalesce import SubmitCoalescer


class Admit:
    """Answers each tx with (batch number, tx); records the batches."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.batches: list[list[bytes]] = []
        self.fail = fail

    async def __call__(self, raws: list[bytes]) -> list[tuple[int, bytes]]:
        self.batches.append(list(raws))
        await asyncio.sleep(0)  # as admission does: the loop runs meanwhile
        if self.fail is not None:
            raise self.fail
        return [(len(self.batches), raw) for raw in raws]


def test_requests_of_one_turn_are_admitted_together_and_answered_apart() -> None:
    admit = Admit()

    async def run() -> list[list[tuple[int, bytes]]]:
        c = SubmitCoalescer(admit, max_txs=1000)
        answers = await asyncio.gather(c.submit([b"a"]), c.submit([b"b", b"c"]), c.submit([b"d"]))
        assert (c.batches, c.requests) == (1, 3)
        return answers

    answers = asyncio.run(run())
    assert admit.batches == [[b"a", b"b", b"c", b"d"]]
    assert answers == [[(1, b"a")], [(1, b"b"), (1, b"c")], [(1, b"d")]]


def test_a_lone_request_waits_for_no_company() -> None:
    admit = Admit()

    async def run() -> None:
        c = SubmitCoalescer(admit, max_txs=1000)
        assert await c.submit([b"a"]) == [(1, b"a")]
        assert await c.submit([b"b"]) == [(2, b"b")]  # the next turn's request: a batch of its own

    asyncio.run(run())
    assert admit.batches == [[b"a"], [b"b"]]


def test_a_full_batch_goes_at_once() -> None:
    admit = Admit()

    async def run() -> None:
        c = SubmitCoalescer(admit, max_txs=3)
        first = asyncio.ensure_future(c.submit([b"a", b"b"]))
        second = asyncio.ensure_future(c.submit([b"c", b"d"]))  # reaches 3: this batch goes now
        third = asyncio.ensure_future(c.submit([b"e"]))
        await asyncio.gather(first, second, third)

    asyncio.run(run())
    assert admit.batches == [[b"a", b"b", b"c", b"d"], [b"e"]]


def test_a_fault_fails_only_the_request_that_causes_it() -> None:
    """An exception out of admission (no input should cause one) fails the joined batch;
    its requests are admitted again one by one, and only the poisoned one fails."""
    batches: list[list[bytes]] = []

    async def admit(raws: list[bytes]) -> list[bytes]:
        batches.append(list(raws))
        await asyncio.sleep(0)
        if b"poison" in raws:
            raise ValueError("a bug")
        return raws

    async def run() -> list[BaseException | list[bytes]]:
        c = SubmitCoalescer(admit, max_txs=1000)
        return await asyncio.gather(c.submit([b"a"]), c.submit([b"poison"]), c.submit([b"b", b"c"]),
                                    return_exceptions=True)

    a, poisoned, bc = asyncio.run(run())
    assert a == [b"a"] and bc == [b"b", b"c"] and isinstance(poisoned, ValueError)
    assert batches == [[b"a", b"poison", b"b", b"c"], [b"a"], [b"poison"], [b"b", b"c"]]


def test_a_lone_request_gets_its_own_fault() -> None:
    admit = Admit(fail=OSError("a bug"))

    async def run() -> list[tuple[int, bytes]]:
        return await SubmitCoalescer(admit, max_txs=1000).submit([b"a"])

    with pytest.raises(OSError):
        asyncio.run(run())
    assert admit.batches == [[b"a"]]


def test_a_cancelled_request_leaves_the_others_their_answers() -> None:
    admit = Admit()

    async def run() -> list[tuple[int, bytes]]:
        c = SubmitCoalescer(admit, max_txs=1000)
        gone = asyncio.ensure_future(c.submit([b"a"]))
        kept = asyncio.ensure_future(c.submit([b"b"]))
        await asyncio.sleep(0)  # both wait in the batch now
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        return await kept

    assert asyncio.run(run()) == [(1, b"b")]
    assert admit.batches == [[b"a", b"b"]]  # a cancelled request's txs were admitted all the same


def test_a_short_answer_is_an_error_not_a_misattribution() -> None:
    async def short(raws: list[bytes]) -> list[int]:
        return [0] * (len(raws) - 1)

    async def run() -> list[BaseException | list[int]]:
        c = SubmitCoalescer(short, max_txs=1000)
        return await asyncio.gather(c.submit([b"a"]), c.submit([b"b"]), return_exceptions=True)

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(run()))  # joined, then each alone
