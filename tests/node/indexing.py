"""Index a harness chain's block into a real block store exactly as node/execution.py does:
results, order outcomes, cloids, history and candles."""

from __future__ import annotations

from typing import Any

from node import history, orderindex
from node.blockstore import BlockStore
from node.execution import event_to_list
from state.tx import decode_tx


def index_block(store: BlockStore, candles: history.CandleBook, ex: Any, r: Any, txs: tuple[bytes, ...],
                time_ms: int) -> None:
    verified = {raw: decode_tx(raw) for raw in txs}
    orders = orderindex.outcomes(ex, r.height, r.events, r.receipts)
    cloids = orderindex.cloids(r.receipts, txs, verified)
    events = [[i, event_to_list(e)] for i, e in r.events]
    record = [r.app_hash, [x.to_list() for x in r.receipts], events, []]
    extra = history.block_puts(r.height, time_ms, events, orders, candles, ex.markets)
    store.save_results(r.height, record, [x.tx_hash for x in r.receipts], [], None, orders, cloids, extra)
