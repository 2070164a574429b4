"""Block store: results stored as bytes or records, the compact commit codes, the tx index."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

from node.blockstore import _TX, BlockStore
from node.codes import pack_codes, split_hashes, unpack_codes
from node.wire import BadBody, unpack_tx_list


def test_results_bytes_and_records_are_stored_alike_with_commit_codes(tmp_path: Path) -> None:
    store = BlockStore(str(tmp_path / "b"))
    hashes = [bytes([i]) * 32 for i in range(3)]
    receipts = [[h, code, "", b"", "order", []] for h, code in zip(hashes, (0, 402, 0), strict=True)]
    record = [b"\x01" * 32, receipts, [], [(b"k", b"d")]]
    store.save_results(1, msgpack.packb(record, use_bin_type=True), hashes, [(b"a" * 20, b"\x91\x01")], [0, 402, 0])
    store.save_results(2, record, hashes[:1], [], None)  # as stored before commit codes existed
    assert store.results(1) == store.results(2) == msgpack.unpackb(msgpack.packb(record), raw=False)
    assert store.commit_codes(1) == (b"".join(hashes), pack_codes([0, 402, 0]))
    assert store.commit_codes(2) == (b"".join(hashes), pack_codes([0, 402, 0]))  # derived from the results
    assert store.commit_codes(3) is None
    blob, codes = store.commit_codes(1) or (b"", b"")
    assert split_hashes(blob) == hashes and unpack_codes(codes) == (0, 402, 0)
    assert store.fills(b"a" * 20, 10) == [(1, [1])]
    assert store.tx_location(hashes[0]) == (2, 0) and store.tx_location(hashes[2]) == (1, 2)
    store.db.put(_TX + b"\x09" * 32, msgpack.packb([7, 300]))  # an index entry in the old form
    assert store.tx_location(b"\x09" * 32) == (7, 300)
    store.close()


def test_unpack_tx_list() -> None:
    assert unpack_tx_list(msgpack.packb([b"a", b"bc"]), 5) == [b"a", b"bc"]
    assert unpack_tx_list(msgpack.packb([]), 5) == []
    with pytest.raises(BadBody) as too_many:
        unpack_tx_list(msgpack.packb([b"a"] * 70_000), 5000)
    assert too_many.value.too_many
    for bad in (b"", b"\xc1", msgpack.packb({"a": 1}), msgpack.packb([b"a", "b"]), msgpack.packb([[b"a"]]),
                b"\x92\xc4\x01a", msgpack.packb(b"raw")):
        with pytest.raises(BadBody) as err:
            unpack_tx_list(bad, 5000)
        assert not err.value.too_many
