"""The node's order outcome index: what became of an order after it left the state."""

from __future__ import annotations

from pathlib import Path

from node import history, orderindex
from node.blockstore import BlockStore
from state.tx import Cancel, PlaceOrder, Tif
from tests.harness import BTC, BTC_SPOT, USDC, Chain, key
from tests.node.indexing import index_block

A, B = key(30), key(31)
CLOID = bytes(range(16))


class IndexedChain:
    """A harness chain whose every block is indexed into a real block store, as the node
    does it (node/execution.py)."""

    def __init__(self, tmp: Path) -> None:
        self.c = Chain()
        self.store = BlockStore(str(tmp / "blocks"))
        self.candles = history.CandleBook(self.store.db.get)
        for k in (A, B):
            self.c.fund(k, USDC, 10_000_000 * 10**6)
            self.c.fund(k, BTC, 10 * 10**8)

    def block(self, *txs: bytes) -> None:
        r = self.c.block(*txs)
        index_block(self.store, self.candles, self.c.ex, r, txs, self.c.ex.time_ms)

    def order(self, k: object, is_buy: bool, price: int, size: int, tif: Tif = Tif.GTC,
              cloid: bytes | None = None) -> int:
        self.block(self.c.sign(k, PlaceOrder(BTC_SPOT, is_buy, price, size, tif, False, cloid)))  # type: ignore[arg-type]
        oid = self.c.last.receipts[0].results[0].oid
        assert oid is not None
        return oid

    def status(self, oid: int) -> dict[str, object] | None:
        return orderindex.status_view(self.c.ex, oid, self.store.order_outcome(oid))


def test_open_then_cancelled_by_owner_is_found_by_oid_and_cloid(tmp_path: Path) -> None:
    ix = IndexedChain(tmp_path)
    oid = ix.order(A, True, 59_000, 10, cloid=CLOID)
    assert (ix.status(oid) or {})["status"] == "open"
    ix.block(ix.c.sign(A, Cancel(BTC_SPOT, oid, None)))
    st = ix.status(oid) or {}
    assert (st["status"], st["reason"], st["height"]) == ("cancelled", "cancelled", ix.c.sm.height)
    assert ix.store.oid_of_cloid(A.address, CLOID) == oid


def test_maker_filled_in_two_steps_and_taker_filled_whole(tmp_path: Path) -> None:
    ix = IndexedChain(tmp_path)
    maker = ix.order(A, False, 60_000, 10)
    taker1 = ix.order(B, True, 60_000, 4, Tif.IOC)
    assert (ix.status(maker) or {})["status"] == "open"  # 6 lots still rest
    assert (ix.status(taker1) or {})["status"] == "filled"
    ix.order(B, True, 60_000, 6, Tif.IOC)
    assert (ix.status(maker) or {})["status"] == "filled"


def test_ioc_remainder_reads_cancelled_with_its_reason(tmp_path: Path) -> None:
    ix = IndexedChain(tmp_path)
    ix.order(A, False, 60_000, 3)
    taker = ix.order(B, True, 60_000, 10, Tif.IOC)
    st = ix.status(taker) or {}
    assert (st["status"], st["reason"]) == ("cancelled", "ioc")


def test_unknown_order_has_no_status(tmp_path: Path) -> None:
    ix = IndexedChain(tmp_path)
    assert ix.status(12345) is None
    assert ix.store.oid_of_cloid(A.address, CLOID) is None


def test_pruning_drops_the_outcomes_of_pruned_heights_only(tmp_path: Path) -> None:
    """An order cancelled at a pruned height loses its entry; one that finished later keeps
    its own, even if it was placed at a pruned height."""
    ix = IndexedChain(tmp_path)
    early = ix.order(A, True, 59_000, 10)
    late = ix.order(A, True, 58_000, 10)
    ix.block(ix.c.sign(A, Cancel(BTC_SPOT, early, None)))
    cut = ix.c.sm.height + 1
    ix.block(ix.c.sign(A, Cancel(BTC_SPOT, late, None)))
    assert ix.store.prune_below(cut) > 0
    assert ix.store.order_outcome(early) is None
    assert (ix.status(late) or {})["status"] == "cancelled"
