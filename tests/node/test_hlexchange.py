"""Hyperliquid's ``POST /exchange`` (node/hlexchange.py) over HTTP, on a harness chain.

The endpoint runs for real (aiohttp test server, the real mempool's admission); the node
around it is a stand-in whose ``submit`` commits each admitted tx in a block of the harness
chain at once and resolves the commit waiter with the receipt, as node/execution.py does.
Bodies are signed with the Hyperliquid SDK's own signing functions, so each is what the SDK
posts. Refused bodies must be answered with the error shape and change nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node import hlexchange
from node.config import MempoolConfig
from node.jsonfmt import receipt_from_list
from node.mempool import Admission, Mempool
from node.stategate import StateGate
from state.eip712 import EthKey
from state.errors import Code
from state.matching import LAPSE_PENDING
from state.tx import Deposit, tx_hash
from tests.harness import BTC, BTC_PERP, USDC, Chain, key

signing = pytest.importorskip("hyperliquid.utils.signing", reason="the Hyperliquid SDK is a test extra")
eth_account = pytest.importorskip("eth_account")

ALICE = EthKey(bytes([17]) * 32)
BOB = EthKey(bytes([18]) * 32)
STRANGER = EthKey(bytes([19]) * 32)  # never funded
BTC_ASSET = 0  # BTC-PERP: perp universe index 0
BTC_SPOT_ASSET = 10_000  # BTC/USDC: spot index 0


def wallet(k: EthKey) -> Any:
    return eth_account.Account.from_key(k.secret)


def order_wire(asset: int, is_buy: bool, px: str, sz: str, tif: str = "Gtc", reduce_only: bool = False,
               cloid: str | None = None) -> dict[str, Any]:
    w: dict[str, Any] = {"a": asset, "b": is_buy, "p": px, "s": sz, "r": reduce_only, "t": {"limit": {"tif": tif}}}
    if cloid is not None:
        w["c"] = cloid
    return w


def trigger_wire(asset: int, is_buy: bool, trigger_px: str, sz: str, tpsl: str) -> dict[str, Any]:
    return {"a": asset, "b": is_buy, "p": trigger_px, "s": sz, "r": True,
            "t": {"trigger": {"isMarket": True, "triggerPx": trigger_px, "tpsl": tpsl}}}


def orders(*wires: dict[str, Any], grouping: str = "na") -> dict[str, Any]:
    return {"type": "order", "orders": list(wires), "grouping": grouping}


class Waiters:
    """node/execution.py's commit waiters."""

    def __init__(self) -> None:
        self.futs: dict[bytes, list[asyncio.Future[Any]]] = {}
        self.gate = StateGate()

    def wait_for(self, h: bytes) -> asyncio.Future[tuple[int, int, dict[str, Any]]]:
        fut: asyncio.Future[tuple[int, int, dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self.futs.setdefault(h, []).append(fut)
        return fut

    def forget_waiter(self, h: bytes, fut: asyncio.Future[Any]) -> None:
        if fut in self.futs.get(h, []):
            self.futs[h].remove(fut)


class Blocks:
    """The block store's tx index and stored results."""

    def __init__(self) -> None:
        self.where: dict[bytes, tuple[int, int]] = {}
        self.stored: dict[int, list[Any]] = {}

    def tx_location(self, h: bytes) -> tuple[int, int] | None:
        return self.where.get(h)

    def results(self, height: int) -> list[Any] | None:
        return self.stored.get(height)


class Node:
    """A node with a real mempool that commits every admitted tx at once (``commit``) or never."""

    def __init__(self, chain: Chain, commit: bool = True) -> None:
        self.chain, self.sm, self.commit = chain, chain.sm, commit
        self.mempool = Mempool(chain.sm, MempoolConfig())
        self.execution = Waiters()
        self.blocks = Blocks()
        self.submitted: list[bytes] = []

    async def submit(self, raws: list[bytes]) -> list[Admission]:
        adms = [self.mempool.add_sync(r) for r in raws]
        self.submitted += [r for r, a in zip(raws, adms, strict=True) if a.ok]
        if self.commit and any(a.ok for a in adms):
            self.commit_block([r for r, a in zip(raws, adms, strict=True) if a.ok])
        return adms

    def commit_block(self, raws: list[bytes]) -> None:
        res = self.chain.block(*raws)
        lists = [r.to_list() for r in res.receipts]
        self.blocks.stored[res.height] = [res.app_hash, lists, [], []]
        self.mempool.on_committed([r.tx_hash for r in res.receipts], raws, self.chain.time)
        for i, r in enumerate(res.receipts):
            self.blocks.where[r.tx_hash] = (res.height, i)
            for fut in self.execution.futs.pop(r.tx_hash, []):
                fut.set_result((res.height, i, receipt_from_list(lists[i])))


def post(node: Node, body: Any) -> tuple[int, dict[str, Any]]:
    """POST ``body`` (a JSON value, or raw bytes) to the real handler."""

    async def go() -> tuple[int, dict[str, Any]]:
        app = web.Application()
        app.router.add_post("/exchange", hlexchange.route(node))
        async with TestClient(TestServer(app)) as client:
            if isinstance(body, bytes):
                r = await client.post("/exchange", data=body, headers={"Content-Type": "application/json"})
            else:
                r = await client.post("/exchange", json=body)
            return r.status, await r.json()

    return asyncio.run(go())


@pytest.fixture
def node() -> Node:
    c = Chain()
    for k in (ALICE, BOB):
        assert c.run(key(1), Deposit(k.address, USDC, 1_000_000 * 10**6)).code == Code.OK
        assert c.run(key(1), Deposit(k.address, BTC, 10 * 10**8)).code == Code.OK
    return Node(c)


class Signer:
    """Signs bodies as the SDK does, with fresh nonces just past the chain's block time."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.last = 0

    def nonce(self) -> int:
        self.last = max(self.last + 1, self.node.chain.time + 1)
        return self.last

    def l1(self, k: EthKey, action: dict[str, Any], nonce: int | None = None, vault: str | None = None) -> dict[str, Any]:
        n = self.nonce() if nonce is None else nonce
        sig = signing.sign_l1_action(wallet(k), action, vault, n, None, False)
        return {"action": action, "nonce": n, "signature": sig, "vaultAddress": vault, "expiresAfter": None}


@pytest.fixture
def sign(node: Node) -> Signer:
    return Signer(node)


def statuses(doc: dict[str, Any]) -> list[Any]:
    assert doc["status"] == "ok", doc
    return list(doc["response"]["data"]["statuses"])


# ---------------------------------------------------------------------------- orders
def test_resting_then_filled_with_hyperliquid_numbers(node: Node, sign: Signer) -> None:
    cloid = "0x" + "cd" * 16
    status, doc = post(node, sign.l1(ALICE, orders(order_wire(BTC_ASSET, False, "60000", "0.02", cloid=cloid))))
    assert status == 200 and doc["response"]["type"] == "order"
    (rest,) = statuses(doc)
    oid = rest["resting"]["oid"]
    assert rest == {"resting": {"oid": oid, "cloid": cloid}}
    assert node.chain.ex.books[BTC_PERP].orders[oid].owner == ALICE.address
    # bob lifts 0.01 at 60000 and 0.01 more at 60001 from a second ask: avgPx is the exact mean
    post(node, sign.l1(ALICE, orders(order_wire(BTC_ASSET, False, "60001", "0.01"))))
    _, doc = post(node, sign.l1(BOB, orders(order_wire(BTC_ASSET, True, "60001", "0.03", "Ioc"))))
    (fill,) = statuses(doc)
    assert fill["filled"]["totalSz"] == "0.03"
    assert fill["filled"]["avgPx"] == "60000.33333333"
    assert isinstance(fill["filled"]["oid"], int)


def test_one_status_per_order_with_errors_in_place(node: Node, sign: Signer) -> None:
    _, doc = post(node, sign.l1(ALICE, orders(order_wire(BTC_ASSET, True, "59000", "0.01"),
                                              order_wire(BTC_ASSET, True, "59000", "0.0001"),  # below min notional
                                              order_wire(BTC_ASSET, True, "50000", "0.01", "Ioc"))))
    rest, small, ioc = statuses(doc)
    assert "resting" in rest
    assert set(small) == {"error"} and small["error"]
    assert set(ioc) == {"error"} and "match" in ioc["error"]  # an IOC with nothing to cross


def test_trigger_and_tpsl_children_wait(node: Node, sign: Signer) -> None:
    # a position first (bob sells to alice), then a stop-loss on it
    post(node, sign.l1(BOB, orders(order_wire(BTC_ASSET, False, "60000", "0.01"))))
    post(node, sign.l1(ALICE, orders(order_wire(BTC_ASSET, True, "60000", "0.01", "Ioc"))))
    _, doc = post(node, sign.l1(ALICE, orders(trigger_wire(BTC_ASSET, False, "55000", "0.01", "sl"))))
    assert statuses(doc) == ["waitingForTrigger"]
    parent = order_wire(BTC_ASSET, True, "58000", "0.01")
    _, doc = post(node, sign.l1(ALICE, orders(parent, trigger_wire(BTC_ASSET, False, "65000", "0.01", "tp"),
                                              trigger_wire(BTC_ASSET, False, "50000", "0.01", "sl"),
                                              grouping="normalTpsl")))
    first, tp, sl = statuses(doc)
    assert "resting" in first and tp == sl == "waitingForFill"


# ---------------------------------------------------------------------------- cancels and modifies
def test_cancel_by_oid_and_cloid(node: Node, sign: Signer) -> None:
    cloid = "0x" + "ef" * 16
    _, doc = post(node, sign.l1(ALICE, orders(order_wire(BTC_ASSET, True, "59000", "0.01"),
                                              order_wire(BTC_ASSET, True, "58000", "0.01", cloid=cloid))))
    oid = statuses(doc)[0]["resting"]["oid"]
    _, doc = post(node, sign.l1(ALICE, {"type": "cancel", "cancels": [{"a": BTC_ASSET, "o": oid},
                                                                      {"a": BTC_ASSET, "o": 999_999}]}))
    assert doc["response"]["type"] == "cancel"
    ok, missing = statuses(doc)
    assert ok == "success" and "error" in missing
    _, doc = post(node, sign.l1(ALICE, {"type": "cancelByCloid", "cancels": [{"asset": BTC_ASSET, "cloid": cloid}]}))
    assert statuses(doc) == ["success"]
    assert not node.chain.ex.books[BTC_PERP].orders


def test_modify_and_batch_modify(node: Node, sign: Signer) -> None:
    _, doc = post(node, sign.l1(ALICE, orders(order_wire(BTC_ASSET, True, "59000", "0.01"),
                                              order_wire(BTC_ASSET, True, "58000", "0.01"))))
    a, b = (s["resting"]["oid"] for s in statuses(doc))
    _, doc = post(node, sign.l1(ALICE, {"type": "modify", "oid": a, "order": order_wire(BTC_ASSET, True, "59100", "0.02")}))
    assert doc == {"status": "ok", "response": {"type": "default"}}
    book = node.chain.ex.books[BTC_PERP].orders
    assert sorted((o.price, o.size) for o in book.values()) == [(58_000, 100), (59_100, 200)]
    new_a = next(o.oid for o in book.values() if o.price == 59_100)
    # the second modify flips the side: a cancel and a new order, still one status
    _, doc = post(node, sign.l1(ALICE, {"type": "batchModify", "modifies": [
        {"oid": new_a, "order": order_wire(BTC_ASSET, True, "59200", "0.02")},
        {"oid": b, "order": order_wire(BTC_ASSET, False, "61000", "0.01")}]}))
    assert doc["response"]["type"] == "order"
    first, second = statuses(doc)
    assert "resting" in first and "resting" in second
    assert node.chain.ex.books[BTC_PERP].orders[second["resting"]["oid"]].is_buy is False
    _, doc = post(node, sign.l1(ALICE, {"type": "modify", "oid": 999_999,
                                        "order": order_wire(BTC_ASSET, True, "59000", "0.01")}))
    assert doc["status"] == "err" and doc["name"] == "UNKNOWN_ORDER"


# ---------------------------------------------------------------------------- the default answers
def test_default_answers_and_sub_account(node: Node, sign: Signer) -> None:
    _, doc = post(node, sign.l1(ALICE, {"type": "updateLeverage", "asset": BTC_ASSET, "isCross": True, "leverage": 5}))
    assert doc == {"status": "ok", "response": {"type": "default"}}
    _, doc = post(node, sign.l1(ALICE, {"type": "noop"}))
    assert doc == {"status": "ok", "response": {"type": "default"}}
    _, doc = post(node, sign.l1(ALICE, {"type": "scheduleCancel", "time": node.chain.time + 60_000}))
    assert doc == {"status": "ok", "response": {"type": "default"}}
    _, doc = post(node, sign.l1(ALICE, {"type": "createSubAccount", "name": "desk"}))
    assert doc["response"]["type"] == "createSubAccount"
    sub = bytes.fromhex(doc["response"]["data"][2:])
    assert node.chain.ex.subs[sub][0] == ALICE.address
    _, doc = post(node, sign.l1(ALICE, {"type": "createSubAccount", "name": "desk"}))
    assert doc["status"] == "err" and doc["name"] == "SUB_ACCOUNT_EXISTS" and doc["code"] == Code.SUB_ACCOUNT_EXISTS
    n = sign.nonce()
    action = {"type": "usdSend", "destination": "0x" + BOB.address.hex(), "amount": "12.5", "time": n,
              "signatureChainId": "0x66eee", "hyperliquidChain": "Testnet"}
    sig = signing.sign_usd_transfer_action(wallet(ALICE), dict(action), False)
    before = node.chain.ex.accounts[BOB.address].balance(USDC)
    _, doc = post(node, {"action": action, "nonce": n, "signature": sig})
    assert doc == {"status": "ok", "response": {"type": "default"}}
    assert node.chain.ex.accounts[BOB.address].balance(USDC) == before + 12_500_000


# ---------------------------------------------------------------------------- refusals
def _refused(node: Node, body: Any, name: str, http: int = 200) -> dict[str, Any]:
    height, records, sent = node.chain.sm.height, node.chain.ex.snapshot_records(), len(node.submitted)
    status, doc = post(node, body)
    assert status == http, doc
    assert doc["status"] == "err" and doc["name"] == name and doc["code"] == int(Code[name]), doc
    assert isinstance(doc["response"], str) and doc["response"]
    if http >= 400:
        assert doc["msg"] == doc["response"]  # what the SDK's ClientError reads
    assert node.chain.sm.height == height and node.chain.ex.snapshot_records() == records
    assert len(node.submitted) == sent and len(node.mempool) == 0  # never broadcast
    return doc


def test_malformed_bodies_are_422(node: Node, sign: Signer) -> None:
    _refused(node, b"{not json", "MALFORMED", 422)
    _refused(node, [1, 2], "MALFORMED", 422)
    _refused(node, b"[" * 100_000, "MALFORMED", 422)  # nesting past the parser's recursion limit
    body = sign.l1(ALICE, orders(order_wire(BTC_ASSET, True, "59000", "0.01")))
    _refused(node, {**body, "signature": "0xabc"}, "MALFORMED", 422)
    _refused(node, {k: v for k, v in body.items() if k != "nonce"}, "MALFORMED", 422)
    _refused(node, sign.l1(ALICE, {"type": "vaultTransfer", "vaultAddress": "0x" + "00" * 20, "isDeposit": True,
                                   "usd": 1}), "UNKNOWN_TX_TYPE", 422)


def test_wrong_signer_chain_and_nonce_are_refused(node: Node, sign: Signer) -> None:
    body = sign.l1(ALICE, orders(order_wire(BTC_ASSET, True, "59000", "0.01")))
    # the price changed after signing: the signature recovers an address with no account
    tampered = {**body, "action": orders(order_wire(BTC_ASSET, True, "59001", "0.01"))}
    _refused(node, tampered, "UNKNOWN_ACCOUNT")
    _refused(node, sign.l1(STRANGER, orders(order_wire(BTC_ASSET, True, "59000", "0.01"))), "UNKNOWN_ACCOUNT")
    n = sign.nonce()
    action = {"type": "usdSend", "destination": "0x" + BOB.address.hex(), "amount": "1", "time": n}
    mainnet_sig = signing.sign_usd_transfer_action(wallet(ALICE), dict(action), True)
    _refused(node, {"action": {**action, "signatureChainId": "0x66eee", "hyperliquidChain": "Mainnet"},
                    "nonce": n, "signature": mainnet_sig}, "WRONG_CHAIN")
    _, doc = post(node, body)
    assert "resting" in statuses(doc)[0]
    again = sign.l1(ALICE, orders(order_wire(BTC_ASSET, True, "58000", "0.01")), nonce=body["nonce"])
    _refused(node, again, "NONCE_USED")
    _refused(node, sign.l1(ALICE, orders(order_wire(BTC_ASSET, True, "58000", "0.01")), nonce=1), "NONCE_OUT_OF_WINDOW")


def test_bad_asset_and_prices_never_reach_the_mempool(node: Node, sign: Signer) -> None:
    _refused(node, sign.l1(ALICE, orders(order_wire(77, True, "59000", "0.01"))), "UNKNOWN_MARKET")
    _refused(node, sign.l1(ALICE, orders(order_wire(BTC_ASSET, True, "59000.5", "0.01"))), "BAD_DECIMAL")
    _refused(node, sign.l1(ALICE, orders(order_wire(BTC_ASSET, True, "59000", "0.000001"))), "BAD_DECIMAL")
    _refused(node, sign.l1(ALICE, orders(order_wire(BTC_SPOT_ASSET, True, "1e5", "0.01"))), "BAD_DECIMAL")
    assert len(node.mempool) == 0


# ---------------------------------------------------------------------------- waiting
def test_a_timeout_names_the_hash_and_a_repeat_answers_from_the_block(node: Node, sign: Signer) -> None:
    slow = Node(node.chain, commit=False)
    body = sign.l1(ALICE, orders(order_wire(BTC_ASSET, True, "59000", "0.01")))
    prepared = hlexchange.prepare(node.chain.ex, hlexchange.request_tx(body), node.chain.genesis.chain_id)

    async def wait() -> dict[str, Any]:
        return await hlexchange.submit_and_wait(slow, prepared, wait_s=0.05)

    doc = asyncio.run(wait())
    assert doc["status"] == "err" and doc["name"] == "NOT_READY"
    assert doc["hash"][2:] in doc["response"] and "may still land" in doc["response"]
    assert slow.execution.futs == {tx_hash(prepared.raw): []}  # the waiter was forgotten
    slow.commit_block(slow.submitted)  # the block lands later; the client sends the same body again
    _, doc = post(slow, body)
    (rest,) = statuses(doc)
    assert rest["resting"]["oid"] in node.chain.ex.books[BTC_PERP].orders


class BoundNode(Node):
    """A node whose clients' submissions meet the admission window (as the runtime's do) and never commit."""

    def __init__(self, chain: Chain) -> None:
        super().__init__(chain, commit=False)
        self.mempool = Mempool(chain.sm, MempoolConfig(admission_window_ms=1000, admission_floor_txs=2,
                                                       per_signer_min=1, reap_window_ms=0))

    async def submit(self, raws: list[bytes]) -> list[Admission]:
        return [self.mempool.add_sync(r, bound=True) for r in raws]


def test_a_refused_admission_leaves_nothing_in_the_verified_cache(node: Node) -> None:
    """/exchange caches the verified tx before admission; a refusal there (here the
    window's share: MEMPOOL_BUSY) must not leave it cached (~50 KiB each for big actions)."""
    from state import hltx

    bound = BoundNode(node.chain)
    signer = Signer(bound)
    for _ in range(2):  # the window (2 txs) is full before the client posts
        body = signer.l1(ALICE, orders(order_wire(0, True, "60000", "0.0001")))
        assert bound.mempool.add_sync(hltx.tx_from_request(body), bound=True).ok
    codes = []
    for _ in range(5):
        _status, doc = post(bound, signer.l1(ALICE, orders(order_wire(0, True, "60000", "0.0001"))))
        codes.append(doc.get("name") or doc.get("status"))
    assert codes == ["MEMPOOL_BUSY"] * 5, codes
    # only what the mempool holds stays cached: the refused ones are gone
    assert len(bound.mempool.verified) == len(bound.mempool.pending) == 2


def test_an_order_stopped_by_lapsed_orders_says_so() -> None:
    """A GTC that filled nothing and whose remainder was cancelled because lapsed orders the
    block could no longer remove still cross it (state/matching.py ``LAPSE_PENDING``)
    answers with that message, not Hyperliquid's IOC miss."""
    result = {"code": Code.OK, "message": LAPSE_PENDING, "status": "cancelled", "oid": 7, "filled": 0}
    assert hlexchange.order_status(Chain().ex, order_wire(BTC_PERP, False, "59000", "1"), result) == \
        {"error": LAPSE_PENDING}
    ioc = dict(result, message="")
    assert hlexchange.order_status(Chain().ex, order_wire(BTC_PERP, False, "59000", "1", "Ioc"), ioc) == \
        {"error": hlexchange.IOC_MISSED}
