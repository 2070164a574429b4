"""A client's batch of transactions signed by keys the chain has never seen is refused before
any signature is checked (counted: the verifier never runs), with the code verification would
give; a known signer's, the bridge's and a validator's are verified as before."""

from __future__ import annotations

import asyncio

import pytest

from node import mempool as mp
from state.errors import Code
from state.keys import PrivateKey
from state.tx import Cancel
from tests.harness import key
from tests.node.test_mempool_admission import setup

A = key(27)


def test_unknown_signers_cost_no_signature_check(monkeypatch: pytest.MonkeyPatch) -> None:
    chain, pool, _ = setup([A])
    checked: list[int] = []
    real = mp.verify_batch

    def counting(raws: list[bytes], chain_id: str, executor: object) -> list[object]:
        checked.append(len(raws))
        return real(raws, chain_id, executor)  # type: ignore[arg-type]

    monkeypatch.setattr(mp, "verify_batch", counting)
    strangers = [chain.sign(PrivateKey.generate(), Cancel(0, 1, None)) for _ in range(50)]
    answers = asyncio.run(pool.add_many(strangers, None, bound=True))
    assert [a.code for a in answers] == [Code.UNKNOWN_ACCOUNT] * 50
    assert sum(checked) == 0 and pool.refused_unknown == 50
    known = asyncio.run(pool.add_many([chain.sign(A, Cancel(0, 1, None))], None, bound=True))
    assert [a.code for a in known] == [Code.OK] and sum(checked) == 1
