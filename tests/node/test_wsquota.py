"""Websocket connections are capped in all and per client address (node/wsquota.py): one
client holding hundreds of connections of 100 subscriptions each halved the block rate."""

from __future__ import annotations

from node.wsquota import WsQuota


def test_one_address_holds_at_most_its_share_and_others_still_get_in() -> None:
    q = WsQuota(max_total=5, per_address=2)
    assert q.enter("10.0.0.1") is None and q.enter("10.0.0.1") is None
    refusal = q.enter("10.0.0.1")
    assert refusal is not None and "this address" in refusal and q.total == 2
    assert q.enter("10.0.0.2") is None and q.enter(None) is None  # another address; an unknown one
    q.leave("10.0.0.1")
    assert q.enter("10.0.0.1") is None  # a slot freed
    assert q.enter("10.0.0.3") is None and q.enter("10.0.0.4") == "too many websocket clients"
    for a in ("10.0.0.1", "10.0.0.1", "10.0.0.2", None, "10.0.0.3"):
        q.leave(a)
    assert q.total == 0 and q.by_address == {}
