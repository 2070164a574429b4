"""The websocket bus: a publish reaches exactly the subscriptions of its topic and key (or
of the whole topic), a shared queue bounds a connection's memory, and unsubscribing
leaves nothing behind."""

from __future__ import annotations

import asyncio

from node.events import EventBus


def test_publish_reaches_its_key_and_the_whole_topic_once_each() -> None:
    bus = EventBus()
    one, other, every = bus.subscribe("trades", 1), bus.subscribe("trades", 2), bus.subscribe("trades")
    blocks = bus.subscribe("blocks")
    bus.publish("trades", 1, {"px": 5})
    assert one.queue.qsize() == 1 and every.queue.qsize() == 1
    assert other.queue.empty() and blocks.queue.empty()
    assert bus.wants("trades") and not bus.wants("book")
    for s in (one, other, every, blocks):
        bus.unsubscribe(s)
        bus.unsubscribe(s)  # twice: harmless
    assert not bus.subs and not bus.wants("trades") and not bus.wants("blocks")


def test_a_shared_queue_stays_bounded_and_keeps_publication_order() -> None:
    bus = EventBus()
    inbox: asyncio.Queue[dict[str, object]] = asyncio.Queue(3)
    subs = [bus.subscribe("account", f"0x{i:040x}", inbox) for i in range(50)]
    for n in range(10):
        for i in range(50):
            bus.publish("account", f"0x{i:040x}", {"n": n, "i": i})
    assert inbox.qsize() == 3  # the newest three, the rest counted as lagged
    assert [inbox.get_nowait()["data"] for _ in range(3)] == [{"n": 9, "i": i} for i in (47, 48, 49)]
    assert sum(s.lagged for s in subs) == 500 - 3


def test_the_book_topic_publishes_only_the_books_a_block_changed(tmp_path: object) -> None:
    """Through node/execution.py: an order resting on BTC/USDC published every market's
    book (any resting order marked all markets touched). Only the changed book goes out,
    and a block that changes no book publishes none."""
    from pathlib import Path

    from consensus.block import make_block
    from consensus.certificate import CommitCertificate
    from consensus.messages import Vote, VoteType
    from node.blockstore import BlockStore
    from node.config import MempoolConfig
    from node.execution import Execution
    from node.mempool import Mempool
    from state.genesis import Genesis, make_genesis_doc
    from state.keys import PrivateKey, address_to_text
    from state.machine import StateMachine
    from state.tx import PlaceOrder, Tif, sign_tx

    assert isinstance(tmp_path, Path)
    chain, t0 = "book-topic", 1_700_000_000_000
    vals = [PrivateKey(bytes([60 + i]) * 32) for i in range(3)]
    a = PrivateKey(bytes([7]) * 32)
    doc = make_genesis_doc(chain_id=chain, genesis_time_ms=t0, bridge_pubkey=PrivateKey(b"\x01" * 32).pubkey,
                           balances=[{"address": address_to_text(a.address), "asset": "USDC", "amount": 10**12}],
                           validators=[{"name": f"v{i}", "pubkey": k.pubkey.hex(), "power": 1}
                                       for i, k in enumerate(vals)])
    sm = StateMachine.open(Genesis.from_json(doc), None)
    store = BlockStore(str(tmp_path / "blocks"))
    bus = EventBus()
    ex = Execution(sm, store, Mempool(sm, MempoolConfig()), bus, None)
    every, spot_btc = bus.subscribe("book"), bus.subscribe("book", 0)

    def commit(*txs: bytes) -> list[int]:
        h = ex.sm.height + 1
        block = make_block(chain_id=chain, height=h, round=0, time_ms=t0 + 1000 * h, prev_block_hash=ex.last_block_hash,
                           prev_app_hash=ex.sm.app_hash, proposer=vals[0].pubkey, txs=txs)
        ex.commit(block, CommitCertificate.from_votes(
            [Vote.create(v, chain, VoteType.PRECOMMIT, h, 0, block.hash) for v in vals]))
        markets = []
        while not every.queue.empty():
            markets.append(every.queue.get_nowait()["data"]["market"])
        return markets

    try:
        assert commit() == [0, 1, 2, 3]  # the first block a subscriber sees: every book
        spot_btc.queue.get_nowait()
        order = sign_tx(a, t0 + 2, PlaceOrder(0, True, 59_000, 10, Tif.GTC, False, None), chain)
        assert commit(order) == [0]  # BTC/USDC only
        assert spot_btc.queue.get_nowait()["data"]["bids"] == [[59_000, 10, 1]]
        assert commit() == [] and spot_btc.queue.empty()  # nothing changed: nothing published
    finally:
        store.close()
