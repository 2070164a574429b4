"""The websocket's userFills and userEvents fills carry the same position context as
/info userFills (startPosition, dir, closedPnl): node/fillbook.py's, handed to the
publisher by node/execution.py."""

from __future__ import annotations

import json
from pathlib import Path

from node import hlws
from node.execution import event_to_list
from node.fillbook import FillBook
from node.hlinfo import user_fills
from state.tx import PlaceOrder, Tif, decode_tx
from tests.harness import BTC_PERP
from tests.node.indexing import index_block
from tests.node.test_hlws import A, B, Node, subscribe, user


class ContextNode(Node):
    def block(self, *txs: bytes) -> hlws.Bundle:
        r = self.c.block(*txs)
        events = [[i, event_to_list(e)] for i, e in r.events]
        fills, _ = FillBook(self.blocks.db.get).block(events, self.c.ex)  # as execution.py computes them
        index_block(self.blocks, self.candles, self.c.ex, r, txs, self.c.ex.time_ms)
        receipts = [x.to_list() for x in r.receipts]
        self.pub.remember(self.c.ex, r.height, self.c.ex.time_ms, txs, {raw: decode_tx(raw) for raw in txs}, receipts)
        return self.pub.bundle(self.c.ex, r.height, self.c.ex.time_ms, [x.tx_hash for x in r.receipts], receipts,
                               events, self.candles, fills)


def test_pushed_fills_say_what_info_says_of_a_closing_fill(tmp_path: Path) -> None:
    node = ContextNode(tmp_path)
    node.order(A, False, 60_000, 2_500)
    node.order(B, True, 60_000, 2_500, Tif.IOC)  # A short 0.25, B long 0.25
    s = hlws.Session(node)
    subscribe(s, {"type": "userFills", "user": user(A)})
    subscribe(s, {"type": "userEvents", "user": user(B)})
    node.order(A, True, 61_000, 1_000)  # A closes 0.1 of the short, B 0.1 of the long
    b = node.block(node.c.sign(B, PlaceOrder(BTC_PERP, False, 61_000, 1_000, Tif.IOC, False, None)))
    pushes = {m["channel"]: m["data"] for m in (json.loads(t) for t in s.push(b))}
    for k, got in ((A, pushes["userFills"]["fills"][0]), (B, pushes["user"]["fills"][0])):
        entries, _ = node.blocks.history_extra(k.address, 1, kinds=["fill"])
        (want,) = user_fills(node.c.ex, k.address, entries)
        assert {f: got[f] for f in ("startPosition", "dir", "closedPnl")} == \
               {f: want[f] for f in ("startPosition", "dir", "closedPnl")}
    assert pushes["userFills"]["fills"][0]["dir"] == "Close Short"
    assert pushes["user"]["fills"][0]["startPosition"] == "0.25"
