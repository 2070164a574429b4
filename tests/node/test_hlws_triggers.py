"""/ws orderUpdates follows trigger orders (stop / take-profit) as /info lists them: "open"
when placed (waiting outside the book), then "canceled" or "triggered". It used to push
nothing for them: the receipt status "waiting" was not a placement, and the cancel of an
order the publisher never described was dropped."""

from __future__ import annotations

import json
from pathlib import Path

from node import hlws
from state.tx import Cancel, PlaceTrigger
from tests.harness import BTC_PERP
from tests.node.test_hlws import A, Node, subscribe, user


def test_a_stop_order_is_pushed_open_then_canceled(tmp_path: Path) -> None:
    node = Node(tmp_path)
    s = hlws.Session(node)
    subscribe(s, {"type": "orderUpdates", "user": user(A)})
    b = node.block(node.c.sign(A, PlaceTrigger(BTC_PERP, False, 100, 58_000, 1, True, 0, False, None)))
    (placed,) = [json.loads(t) for t in s.push(b)]
    (entry,) = placed["data"]
    oid = entry["order"]["oid"]
    assert entry["status"] == "open" and entry["order"]["side"] == "A"
    assert (entry["order"]["limitPx"], entry["order"]["sz"]) == ("58000", "0.01")
    b = node.block(node.c.sign(A, Cancel(BTC_PERP, oid, None)))
    (gone,) = [json.loads(t) for t in s.push(b)]
    assert [(e["order"]["oid"], e["status"]) for e in gone["data"]] == [(oid, "canceled")]
    assert gone["data"][0]["order"]["limitPx"] == "58000"
