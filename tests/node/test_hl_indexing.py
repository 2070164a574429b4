"""The node indexes Hyperliquid-signed orders as it indexes native ones: by the account they
act for (an agent's master, a vault's sub-account), with their cloids, and prunes those
entries with their block."""

from __future__ import annotations

from pathlib import Path

from node import history, orderindex
from node.blockstore import BlockStore
from state import hltx
from state.eip712 import EthKey, checksum_address
from state.tx import Deposit, decode_tx
from tests.harness import USDC, Chain, key
from tests.node.indexing import index_block

USER = EthKey(bytes([21]) * 32)
AGENT = EthKey(bytes([22]) * 32)
CLOID = "0x" + "5a" * 16


def _order(px: str, cloid: str | None = None) -> dict[str, object]:
    wire: dict[str, object] = {"a": 0, "b": True, "p": px, "s": "0.01", "r": False, "t": {"limit": {"tif": "Gtc"}}}
    if cloid:
        wire["c"] = cloid
    return {"type": "order", "orders": [wire], "grouping": "na"}


def test_an_agents_hyperliquid_order_is_indexed_for_its_master_and_pruned(tmp_path: Path) -> None:
    c = Chain()
    store = BlockStore(str(tmp_path / "blocks"))
    candles = history.CandleBook(store.db.get)

    def block(*txs: bytes) -> None:
        r = c.block(*txs)
        index_block(store, candles, c.ex, r, txs, c.ex.time_ms)

    block(c.sign(key(1), Deposit(USER.address, USDC, 10**12)))
    approve = {"type": "approveAgent", "agentAddress": checksum_address(AGENT.address), "agentName": "bot",
               "nonce": c.time + 1}
    block(hltx.sign_user(USER, approve))
    raw = hltx.sign_l1(AGENT, _order("59000", CLOID), c.time + 1)
    block(raw)
    receipt = c.last.receipts[0]
    assert receipt.code == 0, receipt
    oid = receipt.results[0].oid
    cloid = bytes.fromhex(CLOID[2:])
    assert store.oid_of_cloid(USER.address, cloid) == oid  # the master's, not the agent's
    owner, items = orderindex.native_view(c.ex, decode_tx(raw))
    assert owner == USER.address and items[0].price == 59_000
    placed = store.get(orderindex._PLACED + oid.to_bytes(8, "big"))
    assert placed is not None
    height = c.sm.height
    for _ in range(2):
        block()
    store.prune_below(height + 1)
    assert store.oid_of_cloid(USER.address, cloid) is None
