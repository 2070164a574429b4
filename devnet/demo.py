"""The scripted demo behind the README's main command: one trade, end to end.

alice rests a BTC/USDC sell, bob buys into it, and the demo reads back what a user would
check: the book, bob's fills, and the block that holds the trade. Both accounts are
funded in genesis, so the demo needs no deposit and runs on a fresh devnet in seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from devnet.manifest import load_manifest
from node.client import Client
from node.wallet.keystore import KeyStore
from node.wallet.nonce import NONCES
from node.wallet.txbuild import order_action
from node.wallet.units import Catalog
from state.tx import sign_tx


class DemoError(Exception):
    """A demo step was rejected; carries the node's answer for printing."""

    def __init__(self, step: str, answer: dict[str, Any]) -> None:
        super().__init__(f"{step} was rejected: {answer.get('name')} {answer.get('message', '')}".strip())
        self.step = step
        self.answer = answer


@dataclass(frozen=True, slots=True)
class DemoResult:
    node_url: str
    market: str
    sell: dict[str, Any]
    buy: dict[str, Any]
    book: dict[str, Any]
    fills: dict[str, Any]
    block: dict[str, Any]
    catalog: Catalog

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node_url, "market": self.market, "sell": self.sell, "buy": self.buy,
                "book": self.book, "fills": self.fills, "block": self.block}


def run_demo(home: str, *, node: str = "0", market: str = "BTC/USDC", price: str = "60000",
             size: str = "0.01", say: Any = print) -> DemoResult:
    m = load_manifest(home)
    if m is None:
        raise FileNotFoundError(f"no devnet in {home} (run `bookchain devnet up` first)")
    url = m.node(node).rpc_url
    client = Client(url, timeout=15.0)
    keys = KeyStore(m.cli_home)
    alice, bob = keys.load("alice"), keys.load("bob")
    chain_id = str(client.status()["chain_id"])
    cat = Catalog.from_rpc(client.assets(), client.markets())
    mk = cat.market(market)
    tag = time.time_ns() // 1_000_000

    def send(step: str, who: Any, action: Any) -> dict[str, Any]:
        raw = sign_tx(who.key, NONCES.next(who.key.pubkey), action, chain_id)
        answer = client.broadcast_tx_commit(raw, 15_000)
        if answer.get("code") != 0:
            raise DemoError(step, answer)
        return answer

    say(f"1. alice ({alice.address_text}) sells {size} {mk.base.symbol} at {price} on {mk.symbol}")
    sell = send("alice's sell", alice, order_action(cat, mk.symbol, "sell", size, price, tif="gtc",
                                                    cloid=f"demo-sell-{tag}"))
    say(f"2. bob ({bob.address_text}) buys {size} {mk.base.symbol} at {price}")
    buy = send("bob's buy", bob, order_action(cat, mk.symbol, "buy", size, price, tif="gtc",
                                              cloid=f"demo-buy-{tag}"))
    book = client.book(mk.id, 10)
    fills = client.fills(bob.address_text, 10)
    block = client.block(int(buy["height"]))
    return DemoResult(url, mk.symbol, sell, buy, book, fills, block, cat)
