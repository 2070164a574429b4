"""What a block's websocket pushes cost the node's event loop, by how many subscriptions it serves.

    python -m bench.ws_push [--accounts 1000] [--block-size 500] [--blocks 5] [--name ws_push]

A block of the state_apply flow (limit orders, cancels, crossing IOCs on 4 markets) is
applied, and its pushes are built as the node builds them, on one core:

- ``/ws`` (node/hlws.py): the block's bundle (``Publisher.bundle``, once), then every
  connection's ``Session.push`` (the texts of its subscriptions, each distinct message
  encoded once per bundle). Connections of 100 subscriptions each: per connection 12 on
  markets (l2Book, trades, bbo on 4 coins, shared by every connection) and 88 on users
  (userFills, orderUpdates, userEvents), each on a different address, as a client wanting
  to cost the node the most would subscribe (any address is accepted);
- ``/websocket`` (native): ``EventBus.publish`` of the block's events as node/execution.py
  publishes them (in the commit path), then the JSON encoding of each queued message (its
  connection's forwarder): subscriptions to ``trades`` on the 4 markets and ``account`` on
  different addresses.

Rows: 1,000 subscriptions; the 10,000 the node now holds at most (``rpc_limits.
max_ws_subscriptions``'s default); the 100,000 that 1,000 connections of 100 each could hold
before that cap. ``share_at_10_bps``: the loop's share a push costs at 10 blocks a second.
Push building now also waits for the read budget (25% of the loop, node/readbudget.py): a
block's push work above it is deferred, and connections whose queues fill are closed,
instead of taking the loop from consensus. libsodium's one-core verify rate from the same
run is the machine's yardstick.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from types import SimpleNamespace
from typing import Any

from bench.common import libsodium_verify_per_s, print_table, write_json
from bench.state_apply import CHAIN, T0, FlowGenerator, make_chain, verify_many
from node import history, hlws
from node.events import EventBus
from node.execution import event_to_list
from node.jsonfmt import event_from_list
from node.wsquota import MAX_WS_SUBSCRIPTIONS
from state.keys import address_to_text
from state.machine import ExecBlock

PER_CONNECTION = 100
COINS = ("BTC", "ETH", "BTC/USDC", "ETH/USDC")
MARKET_KINDS = ("l2Book", "trades", "bbo")
USER_KINDS = ("userFills", "orderUpdates", "userEvents")
SIZES = (1_000, MAX_WS_SUBSCRIPTIONS, 100_000)


def _address(i: int, accounts: list[bytes]) -> bytes:
    """The i-th subscribed address: the flow's traders first (their fills and orders move),
    then addresses nobody trades from (still a subscription every bundle visits)."""
    return accounts[i] if i < len(accounts) else (i + 1).to_bytes(20, "big")


def hl_sessions(node: Any, n_subs: int, accounts: list[bytes]) -> list[hlws.Session]:
    ex = node.sm.ex
    sessions: list[hlws.Session] = []
    user = 0
    while sum(len(s.subs) for s in sessions) < n_subs:
        s = hlws.Session(node)
        raws: list[dict[str, Any]] = [{"type": k, "coin": c} for c in COINS for k in MARKET_KINDS]
        while len(raws) < PER_CONNECTION:
            raws.append({"type": USER_KINDS[user % 3], "user": address_to_text(_address(user // 3, accounts))})
            user += 1
        for raw in raws[: n_subs - sum(len(x.subs) for x in sessions)]:
            sub = hlws.parse_subscription(ex, raw)
            s.subs[sub.ident] = sub
        sessions.append(s)
    return sessions


def native_bus(n_subs: int, accounts: list[bytes], markets: int) -> EventBus:
    bus = EventBus()
    for m in range(min(markets, n_subs)):
        bus.subscribe("trades", m, asyncio.Queue(0))  # unbounded here: the bench counts work, not lag
    for i in range(n_subs - min(markets, n_subs)):
        bus.subscribe("account", address_to_text(_address(i, accounts)), asyncio.Queue(0))
    return bus


def native_push(bus: EventBus, height: int, events: list[Any]) -> tuple[float, float, int]:
    """(publish s, encode s, messages): node/execution.py's publish of the events, then each
    queued message's encoding (node/rpc.py's forwarder)."""
    t = time.perf_counter()
    for _i, e in events:
        ej = event_from_list(e)
        if ej["type"] == "fill":
            bus.publish("trades", ej["market"], {"height": height, **ej})
        for address in history.addresses_of(e):
            bus.publish("account", address_to_text(address), {"height": height, **ej})
    published = time.perf_counter() - t
    t = time.perf_counter()
    sent = 0
    for sub in bus.subs:
        q = sub.queue
        while not q.empty():
            msg = q.get_nowait()
            json.dumps({"topic": msg["topic"], "data": msg["data"]})
            sent += 1
    return published, time.perf_counter() - t, sent


def run(n_accounts: int, block_size: int, n_blocks: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        _genesis, keys, sm = make_chain(n_accounts, d)
        gen = FlowGenerator(keys)
        blocks = [[gen.signed(CHAIN) for _ in range(block_size)] for _ in range(n_blocks + 2)]
        cache = verify_many([r for b in blocks for r in b], CHAIN)
        node = SimpleNamespace(sm=sm)
        accounts = [k.address for k in keys]
        pub = hlws.Publisher()
        applied: list[tuple[int, int, list[bytes], list[Any], list[Any]]] = []
        for i, raws in enumerate(blocks):
            res = sm.apply_block(ExecBlock(sm.height + 1, T0 + 1000 * (i + 1), tuple(raws)), cache)
            if i >= 2:  # two warm-up blocks build resting liquidity
                applied.append((sm.height, sm.ex.time_ms, [r.tx_hash for r in res.receipts],
                                [r.to_list() for r in res.receipts], [[j, event_to_list(e)] for j, e in res.events]))
        rows: dict[str, Any] = {}
        for n in SIZES:
            sessions = hl_sessions(node, n, accounts)
            bus = native_bus(n, accounts, len(sm.ex.markets))
            hl_s: list[float] = []
            bundle_s: list[float] = []
            texts = 0
            pub_s: list[float] = []
            enc_s: list[float] = []
            msgs = 0
            for height, time_ms, hashes, receipts, events in applied:  # the same blocks for every size
                t = time.perf_counter()
                b = pub.bundle(sm.ex, height, time_ms, hashes, receipts, events, None)
                bundle_s.append(time.perf_counter() - t)
                t = time.perf_counter()
                for s in sessions:
                    texts += len(s.push(b))
                hl_s.append(time.perf_counter() - t)
                p, e, m = native_push(bus, height, events)
                pub_s.append(p)
                enc_s.append(e)
                msgs += m
            blocks_n = len(applied)
            hl_ms = 1000 * sum(hl_s) / blocks_n
            native_ms = 1000 * (sum(pub_s) + sum(enc_s)) / blocks_n
            rows[str(n)] = {
                "subscriptions": n, "ws_connections": len(sessions),
                "ws_bundle_ms": 1000 * sum(bundle_s) / blocks_n, "ws_push_ms": hl_ms,
                "ws_texts_per_block": texts / blocks_n,
                "native_publish_ms": 1000 * sum(pub_s) / blocks_n, "native_encode_ms": 1000 * sum(enc_s) / blocks_n,
                "native_messages_per_block": msgs / blocks_n,
                "ws_share_at_10_bps": hl_ms / 100, "native_share_at_10_bps": native_ms / 100,
            }
        events_per_block = sum(len(a[4]) for a in applied) / len(applied)
        sm.close()
    return {"accounts": n_accounts, "block_size": block_size, "blocks": n_blocks,
            "events_per_block": events_per_block, "rows": rows, "cap": MAX_WS_SUBSCRIPTIONS}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--accounts", type=int, default=1000)
    p.add_argument("--block-size", type=int, default=500)
    p.add_argument("--blocks", type=int, default=5)
    p.add_argument("--name", default="ws_push", help="the results file's name (bench/results/NAME.json)")
    args = p.parse_args()
    verify_rate = libsodium_verify_per_s()
    result = run(args.accounts, args.block_size, args.blocks)
    for n, r in result["rows"].items():
        print_table(f"{int(n):,} subscriptions ({r['ws_connections']} /ws connections; {args.block_size} txs, "
                    f"{result['events_per_block']:.0f} events a block)", [
            ("/ws bundle (once a block)", r["ws_bundle_ms"], "ms/block"),
            ("/ws pushes, all connections", r["ws_push_ms"], "ms/block"),
            ("/ws texts", r["ws_texts_per_block"], "per block"),
            ("/websocket publish (commit path)", r["native_publish_ms"], "ms/block"),
            ("/websocket encode (forwarders)", r["native_encode_ms"], "ms/block"),
            ("/websocket messages", r["native_messages_per_block"], "per block"),
            ("/ws loop share at 10 blocks/s", 100 * r["ws_share_at_10_bps"], "%"),
            ("/websocket loop share at 10 blocks/s", 100 * r["native_share_at_10_bps"], "%"),
        ])
    print(f"\nlibsodium verify, one core: {verify_rate:,.0f}/s; subscription cap {result['cap']:,}")
    write_json(args.name, {**result, "libsodium_verify_per_s": verify_rate})


if __name__ == "__main__":
    main()
