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


def test_subscriptions_are_capped_per_address_and_their_counts_return_to_zero() -> None:
    q = WsQuota(max_subscriptions=5, per_address_subscriptions=2)
    assert q.subscribe("10.0.0.1") is None and q.subscribe("10.0.0.1") is None
    refusal = q.subscribe("10.0.0.1")
    assert refusal is not None and "one client address" in refusal and q.subscriptions == 2
    assert q.subscribe("10.0.0.2") is None and q.subscribe(None) is None and q.subscribe(None) is None
    assert q.subscribe("10.0.0.3") is not None and q.subscriptions == 5  # the node's cap
    q.unsubscribe(1, "10.0.0.1")
    assert q.subscribe("10.0.0.1") is None
    q.unsubscribe(2, "10.0.0.1")
    q.unsubscribe(1, "10.0.0.2")
    q.unsubscribe(2, None)
    assert q.subscriptions == 0 and q.subscriptions_by_address == {}
