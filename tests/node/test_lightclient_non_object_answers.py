"""A light client trusts nothing the node sends, including the shape of its JSON: an answer
that is not an object (null, a list, a string, a number) is a ``VerifyError``, not an
AttributeError out of the CLI."""

from __future__ import annotations

from typing import Any

import pytest

from node.lightclient import VerifyError, check_block, check_proof, verify_keys
from state.genesis import Genesis
from tests.node import snapchain


@pytest.mark.parametrize("answer", [None, [], "x", 1, True])
def test_a_proof_answer_that_is_not_an_object_is_refused(answer: Any) -> None:
    genesis = Genesis.from_json(snapchain.genesis_doc())
    with pytest.raises(VerifyError):
        verify_keys(lambda path, query: answer, genesis, [b"k"])


@pytest.mark.parametrize("answer", [None, [], "x", 1])
def test_a_block_answer_that_is_not_an_object_is_refused(answer: Any) -> None:
    genesis = Genesis.from_json(snapchain.genesis_doc())

    def fetch(path: str, query: dict[str, Any]) -> Any:
        return {"height": 0} if path == "/proof" else answer

    with pytest.raises(VerifyError):
        verify_keys(fetch, genesis, [b"k"])
    with pytest.raises(VerifyError):
        check_block(genesis, 1, answer)


def test_check_proof_refuses_a_non_object(tmp_path: Any) -> None:
    genesis = Genesis.from_json(snapchain.genesis_doc())
    with pytest.raises(VerifyError):
        check_proof(genesis, b"k", 0, [], None)  # type: ignore[arg-type]
