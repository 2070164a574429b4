"""Replay audits an untrusted source: a node home whose stored results record, or an RPC
whose /blocks or /block_results answer, has the wrong shape is a source that cannot be read
(``ValueError``, which the CLI reports), not a TypeError out of ``replay``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
import pytest

from node.blockstore import _RESULTS, BlockStore, _h
from node.replay import DirSource, RpcSource, replay
from tests.node.test_replay import build_chain


@pytest.mark.parametrize("record", [5, [b"x" * 32, [], [], 5], [b"x" * 32, [], [], [5]],
                                    [b"x" * 32, [], [], [[1, 2]]]])
def test_a_malformed_stored_results_record_is_refused(tmp_path: Path, record: Any) -> None:
    home = tmp_path / "home"
    build_chain(home, heights=3)
    store = BlockStore(str(home / "data" / "blocks"))
    try:
        store.db.put(_RESULTS + _h(3),
                     msgpack.packb(record, use_bin_type=True))
    finally:
        store.close()
    src = DirSource(str(home))
    try:
        with pytest.raises(ValueError):
            replay(src, None)
    finally:
        src.close()


@pytest.mark.parametrize("answer", [[], {"blocks": {"a": 1}}, {"blocks": [5]},
                                    {"blocks": [{"height": "1", "raw_block": "", "raw_certificate": ""}]}])
def test_a_malformed_blocks_answer_is_refused(monkeypatch: pytest.MonkeyPatch, answer: Any) -> None:
    src = RpcSource("http://127.0.0.1:9")
    monkeypatch.setattr(src, "_get", lambda path: answer)
    with pytest.raises(ValueError):
        list(src.blocks(1, 1))


@pytest.mark.parametrize("answer", [[], {"app_hash": 5, "write_digests": []}, {"app_hash": "00", "write_digests": 5},
                                    {"app_hash": "00", "write_digests": [[1, 2]]}])
def test_a_malformed_block_results_answer_is_refused(monkeypatch: pytest.MonkeyPatch, answer: Any) -> None:
    src = RpcSource("http://127.0.0.1:9")
    monkeypatch.setattr(src, "_get", lambda path: answer)
    with pytest.raises(ValueError):
        src.result_digests(1)
