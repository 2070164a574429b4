"""Genesis documents: malformed text fields are refused with a message that names them.

The parser checks field types itself rather than relying on annotations, so the
interpreted and the compiled build refuse exactly the same documents the same way."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from state.genesis import Genesis, make_genesis_doc


def _doc() -> dict[str, Any]:
    return make_genesis_doc(chain_id="bookchain-test", validators=[{"name": "v0", "pubkey": "11" * 32}],
                            bridge_pubkey=b"\x02" * 32)


def test_a_well_formed_document_loads() -> None:
    g = Genesis.from_json(_doc())
    assert g.chain_id == "bookchain-test"
    assert [m.symbol for m in g.markets] == [m["symbol"] for m in _doc()["markets"]]


@pytest.mark.parametrize(("path", "message"), [
    (("chain_id",), "genesis chain_id must be a string, got int"),
    (("assets", 1, "symbol"), "asset symbol must be a string, got int"),
    (("markets", 0, "symbol"), "market symbol must be a string, got int"),
    (("markets", 2, "kind"), "market kind must be a string, got int"),
    (("validators", 0, "name"), "validator name must be a string, got int"),
])
def test_a_number_where_text_belongs_is_refused_by_name(path: tuple[Any, ...], message: str) -> None:
    doc = copy.deepcopy(_doc())
    node: Any = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = 7
    with pytest.raises(ValueError, match=message):
        Genesis.from_json(doc)
