"""Index a harness chain's block into a real block store exactly as node/execution.py does:
results, order outcomes, cloids, history (with fill context and tx hashes), candles, order
placements and interest entries."""

from __future__ import annotations

from typing import Any

from node import history, interest, orderindex
from node.blockstore import BlockStore
from node.execution import event_to_list
from node.fillbook import FillBook
from state.tx import decode_tx


class Books:
    """The node's in-memory index state that outlives a block (node/execution.py keeps the
    same three): candles, fill positions, interest."""

    def __init__(self, store: BlockStore) -> None:
        self.candles = history.CandleBook(store.get)
        self.fillbook = FillBook(store.get)
        self.interest = interest.InterestBook(store.db)


def index_block(store: BlockStore, candles: history.CandleBook, ex: Any, r: Any, txs: tuple[bytes, ...],
                time_ms: int, books: Books | None = None) -> None:
    """Index block ``r`` (already applied to ``ex``). Fill positions and candles are read
    back from the store, so fresh ``Books`` per block index the same; interest entries need
    ``books`` whose ``interest.before_block`` saw the state before the block."""
    books = books or Books(store)
    verified = {raw: decode_tx(raw) for raw in txs}
    orders = orderindex.outcomes(ex, r.height, r.events, r.receipts)
    views = orderindex.block_views(ex, r.receipts, txs, verified)
    cloids = orderindex.cloids(views)
    events = [[i, event_to_list(e)] for i, e in r.events]
    record = [r.app_hash, [x.to_list() for x in r.receipts], events, []]
    hashes = [x.tx_hash for x in r.receipts]
    fills, positions = books.fillbook.block(events, ex)
    extra = history.block_puts(r.height, time_ms, events, orders, candles, ex.markets, hashes=hashes, fills=fills)
    extra += positions
    extra += orderindex.placement_puts(orderindex.placements(ex, time_ms, views))
    if books.interest.hour is not None:  # seeded by the caller
        extra += books.interest.block(ex, r.height, time_ms, r.write_digests)
    store.save_results(r.height, record, [x.tx_hash for x in r.receipts], [], None, orders, cloids, extra)
