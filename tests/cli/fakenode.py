"""A single-process stand-in for a node's RPC, backed by the real state machine.

Why: the CLI, the demo and the load generator must be testable before (and independently
of) the real node. This speaks the JSON of node/API.md on 127.0.0.1 (port 0), executes
transactions with ``state.machine.StateMachine`` so receipts, fills and rejections are the
real ones, and produces a block every ``block_ms`` from its mempool. It is not a
reference implementation of the node: no consensus, no persistence, no websocket.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import threading
import time
from types import SimpleNamespace
from typing import Any

import msgpack
from aiohttp import web

from node import history, orderindex
from node.blockstore import BlockStore
from node.codes import pack_codes, split_hashes, unpack_codes
from node.execution import event_to_list
from node.jsonfmt import account_json, receipt_from_list, view_json
from node.readbudget import ReadBudget
from node.rpc import RpcServer
from node.rpcerrors import RpcError
from state import lapse
from state.errors import Code, TxError
from state.genesis import Genesis
from state.keys import address_from_text, address_to_text
from state.machine import ExecBlock, StateMachine
from state.receipts import Receipt
from state.tx import Tif
from state.views import market_rows, markets_view, oracle_view, pools_view, triggers_view

TIF_NAMES = {int(Tif.GTC): "gtc", int(Tif.IOC): "ioc", int(Tif.ALO): "alo"}


def receipt_json(r: Receipt) -> dict[str, Any]:
    """The receipt as the real node renders it (node/jsonfmt.py)."""
    return receipt_from_list(r.to_list())


def error(status: int, code: Code | int, message: str, name: str | None = None) -> web.Response:
    name = name or Code(code).name
    return web.json_response({"error": {"code": int(code), "name": name, "message": message}}, status=status)


def _answer_errors(handler: Any) -> Any:
    """A real RPC handler's RpcError as the node answers it (node/rpc.py errors_middleware)."""
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except RpcError as err:
            return error(err.status, err.code, err.message)
    return wrapped


class FakeNode:
    def __init__(self, genesis: Genesis, *, block_ms: int = 50, moniker: str = "fake0") -> None:
        self.genesis = genesis
        self.sm = StateMachine.open(genesis, None)
        self.block_ms = block_ms
        self.moniker = moniker
        self.mempool: list[bytes] = []
        self.pending_hashes: set[bytes] = set()
        self.blocks: list[dict[str, Any]] = []
        self.results: list[dict[str, Any]] = []
        self.commit_codes: list[tuple[bytes, bytes]] = []  # per height: (hashes, codes) as /commits sends them
        self.tx_index: dict[str, tuple[int, int, dict[str, Any]]] = {}
        self.fills_by_addr: dict[str, list[dict[str, Any]]] = {}
        # the node's real history/order/candle indexes and their real RPC handlers
        self.store = BlockStore(tempfile.mkdtemp(prefix="fakenode-blocks-"))
        self.candle_book = history.CandleBook(self.store.get)
        self.waiters: dict[str, asyncio.Future[tuple[int, dict[str, Any]]]] = {}
        self.reject_admission: dict[str, tuple[Code, str]] = {}  # tests inject mempool refusals
        self.port = 0
        self.requests: list[tuple[str, str]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeNode:
        self._thread = threading.Thread(target=self._run, name="fakenode", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake node did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.run_until_complete(self._main())
        loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        app = web.Application()
        app.middlewares.append(self._log_mw)
        r = app.router
        r.add_get("/health", self.h_health)
        r.add_get("/status", self.h_status)
        r.add_get("/validators", self.h_validators)
        r.add_get("/block", self.h_block)
        r.add_get("/block_results", self.h_block_results)
        r.add_get("/blocks", self.h_blocks)
        r.add_get("/commits", self.h_commits)
        r.add_get("/tx", self.h_tx)
        r.add_post("/broadcast_tx_sync", self.h_sync)
        r.add_post("/broadcast_tx_commit", self.h_commit)
        r.add_post("/broadcast_txs", self.h_txs)
        r.add_get("/markets", self.h_markets)
        r.add_get("/assets", self.h_assets)
        r.add_get("/book", self.h_book)
        r.add_get("/account", self.h_account)
        r.add_get("/orders", self.h_orders)
        r.add_get("/triggers", self.h_triggers)
        r.add_get("/fills", self.h_fills)
        r.add_get("/pools", self.h_pools)
        r.add_get("/funding", self.h_funding)
        r.add_get("/oracle", self.h_oracle)
        real = RpcServer.__new__(RpcServer)
        real.rt = SimpleNamespace(blocks=self.store, sm=self.sm, genesis=self.genesis)  # type: ignore[assignment]
        real.read_budget = ReadBudget()
        for path, handler in (("/history", real.history), ("/orders/history", real.orders_history),
                              ("/candles", real.candles)):
            r.add_get(path, _answer_errors(handler))
        r.add_post("/info", _answer_errors(real.hl_info))  # Hyperliquid-compatible reads (node/hlinfo.py)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        producer = asyncio.create_task(self._produce())
        self._ready.set()
        await self._stop.wait()
        producer.cancel()
        await self._runner.cleanup()
        self.store.close()

    @web.middleware
    async def _log_mw(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        return await handler(request)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ chain
    async def _produce(self) -> None:
        while True:
            await asyncio.sleep(self.block_ms / 1000)
            self.make_block()

    def make_block(self) -> None:
        txs, self.mempool = tuple(self.mempool[:5000]), self.mempool[5000:]
        height = self.sm.height + 1
        t = max(time.time_ns() // 1_000_000, self.sm.time_ms + 1)
        res = self.sm.apply_block(ExecBlock(height, t, txs))
        block_hash = hashlib.sha256(f"block{height}".encode() + b"".join(txs)).hexdigest()
        self.blocks.append({"height": height, "hash": block_hash,
                            "header": {"height": height, "time_ms": t, "app_hash": res.app_hash.hex()},
                            "txs": [tx.hex() for tx in txs], "certificate": {}, "raw_block": "", "raw_certificate": ""})
        receipts = [receipt_json(r) for r in res.receipts]
        self.results.append({"height": height, "app_hash": res.app_hash.hex(), "receipts": receipts,
                             "events": [], "write_digests": []})
        events = [[i, event_to_list(e)] for i, e in res.events]
        orders = orderindex.outcomes(self.sm.ex, height, res.events, res.receipts)
        extra = history.block_puts(height, t, events, orders, self.candle_book, self.sm.ex.markets)
        self.store.save_results(height, [res.app_hash, [], events, []], [], [], None, orders, None, extra)
        self.commit_codes.append((b"".join(r.tx_hash for r in res.receipts),
                                  pack_codes([int(r.code) for r in res.receipts])))
        for i, (raw, rj) in enumerate(zip(txs, receipts, strict=True)):
            h = hashlib.sha256(raw).digest()
            self.pending_hashes.discard(h)
            self.tx_index[h.hex()] = (height, i, rj)
            for r in rj["results"]:
                for f in r["fills"]:
                    for who in {f["maker"], f["taker"]}:
                        self.fills_by_addr.setdefault(who, []).insert(0, {**f, "height": height})
            fut = self.waiters.pop(h.hex(), None)
            if fut is not None and not fut.done():
                fut.set_result((height, rj))

    def admit(self, tx_hex: str) -> tuple[str, Code, str]:
        try:
            raw = bytes.fromhex(tx_hex)
        except ValueError:
            return "", Code.MALFORMED, "tx is not hex"
        h = hashlib.sha256(raw).digest()
        if tx_hex in self.reject_admission:
            code, msg = self.reject_admission[tx_hex]
            return h.hex(), code, msg
        if h in self.pending_hashes or h.hex() in self.tx_index:
            return h.hex(), Code.DUPLICATE_TX, "already known"
        try:
            self.sm.check_tx(raw, now_ms=time.time_ns() // 1_000_000)
        except TxError as err:
            return h.hex(), err.code, err.message
        self.mempool.append(raw)
        self.pending_hashes.add(h)
        return h.hex(), Code.OK, ""

    # ------------------------------------------------------------------ handlers
    def _height_param(self, request: web.Request) -> int | None:
        try:
            h = int(request.query["height"])
        except (KeyError, ValueError):
            return None
        return h if 1 <= h <= len(self.blocks) else None

    async def h_health(self, _r: web.Request) -> web.Response:
        return web.json_response({"ok": True, "height": self.sm.height})

    async def h_status(self, _r: web.Request) -> web.Response:
        last = self.blocks[-1] if self.blocks else None
        return web.json_response({
            "node_id": "12D3KooWFake", "moniker": self.moniker, "chain_id": self.genesis.chain_id,
            "latest_height": self.sm.height, "latest_block_hash": last["hash"] if last else "",
            "latest_app_hash": self.sm.app_hash.hex(), "latest_block_time_ms": self.sm.time_ms,
            "catching_up": False, "validator": None, "peers": [], "mempool_size": len(self.mempool)})

    async def h_validators(self, _r: web.Request) -> web.Response:
        vals = [{"name": v.name, "pubkey": v.pubkey.hex(), "power": v.power} for v in self.genesis.validators]
        return web.json_response({"validators": vals, "total_power": sum(v["power"] for v in vals)})

    async def h_block(self, request: web.Request) -> web.Response:
        h = self._height_param(request)
        if h is None:
            return error(404, Code.NOT_FOUND, "no block at that height")
        return web.json_response(self.blocks[h - 1])

    async def h_block_results(self, request: web.Request) -> web.Response:
        h = self._height_param(request)
        if h is None:
            return error(404, Code.NOT_FOUND, "no block at that height")
        return web.json_response(self.results[h - 1])

    async def h_blocks(self, request: web.Request) -> web.Response:
        a, b = int(request.query["from"]), int(request.query["to"])
        return web.json_response({"blocks": self.blocks[max(0, a - 1):min(b, a + 99)]})

    async def h_tx(self, request: web.Request) -> web.Response:
        found = self.tx_index.get(request.query.get("hash", "").lower())
        if found is None:
            return error(404, Code.NOT_FOUND, "transaction not found")
        height, index, rj = found
        return web.json_response({"hash": rj["tx_hash"], "height": height, "index": index, "receipt": rj})

    async def h_sync(self, request: web.Request) -> web.Response:
        body = await request.json()
        h, code, msg = self.admit(body["tx"])
        return web.json_response({"hash": h, "code": int(code), "name": code.name, "message": msg})

    async def h_commit(self, request: web.Request) -> web.Response:
        body = await request.json()
        h, code, msg = self.admit(body["tx"])
        if code != Code.OK:
            return web.json_response({"hash": h, "code": int(code), "name": code.name, "message": msg,
                                      "height": None, "receipt": None})
        fut: asyncio.Future[tuple[int, dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self.waiters[h] = fut
        try:
            height, rj = await asyncio.wait_for(fut, body.get("timeout_ms", 10_000) / 1000)
        except TimeoutError:
            return error(504, Code.NOT_READY, "not committed in time")
        return web.json_response({"hash": h, "code": rj["code"], "name": rj["name"], "message": rj["message"],
                                  "height": height, "receipt": rj})

    async def h_txs(self, request: web.Request) -> web.Response:
        if request.content_type == "application/msgpack":
            packed = []
            for raw in msgpack.unpackb(await request.read()):
                h, code, msg = self.admit(raw.hex())
                packed.append([bytes.fromhex(h), int(code), msg])
            return web.Response(body=msgpack.packb({"results": packed}), content_type="application/msgpack")
        body = await request.json()
        out = []
        for tx in body["txs"]:
            h, code, msg = self.admit(tx)
            out.append({"hash": h, "code": int(code), "name": code.name, "message": msg})
        return web.json_response({"results": out})

    async def h_commits(self, request: web.Request) -> web.Response:
        lo = int(request.query["from"])
        wait_s = int(request.query.get("wait_ms", 0)) / 1000
        deadline = time.monotonic() + wait_s
        while len(self.blocks) < lo and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        hi = min(int(request.query.get("to", lo + 99)), lo + 99, len(self.blocks))
        rows = [(h, *self.commit_codes[h - 1]) for h in range(lo, hi + 1)]
        if "application/msgpack" in request.headers.get("Accept", ""):
            doc = {"latest_height": len(self.blocks), "blocks": [list(r) for r in rows]}
            return web.Response(body=msgpack.packb(doc), content_type="application/msgpack")
        return web.json_response({"latest_height": len(self.blocks), "blocks": [
            {"height": h, "txs": [[x.hex(), c] for x, c in zip(split_hashes(hs), unpack_codes(cs), strict=True)]}
            for h, hs, cs in rows]})

    async def h_markets(self, _r: web.Request) -> web.Response:
        ms = view_json(market_rows(self.sm.ex))
        return web.json_response({"markets": ms})

    async def h_assets(self, _r: web.Request) -> web.Response:
        return web.json_response({"assets": [{"id": a.asset_id, "symbol": a.symbol, "decimals": a.decimals}
                                             for a in self.genesis.assets]})

    def _market(self, ref: str) -> int | None:
        for m in self.genesis.markets:
            if ref in (m.symbol, str(m.market_id)):
                return m.market_id
        return None

    async def h_book(self, request: web.Request) -> web.Response:
        mid = self._market(request.query.get("market", ""))
        if mid is None:
            return error(404, Code.UNKNOWN_MARKET, "no such market")
        bids, asks = lapse.depth(self.sm.ex, mid, int(request.query.get("depth", 20)))
        return web.json_response({"market": mid, "height": self.sm.height, "bids": [list(b) for b in bids],
                                  "asks": [list(a) for a in asks]})

    def _address(self, request: web.Request) -> bytes | None:
        try:
            return address_from_text(request.query.get("address", ""))
        except ValueError:
            return None

    def _orders(self, address: bytes) -> list[dict[str, Any]]:
        out = []
        for book in self.sm.ex.books.values():
            for o in book.iter_orders():
                if o.owner == address and o.live:
                    out.append({"oid": o.oid, "market": o.market, "side": "buy" if o.is_buy else "sell",
                                "price": o.price, "size": o.size, "orig_size": o.orig_size,
                                "tif": TIF_NAMES.get(int(o.tif), str(o.tif)), "reduce_only": o.reduce_only,
                                "cloid": o.cloid.hex() if o.cloid else None,
                                "expires_at_ms": o.expires_at or None})
        return out

    async def h_account(self, request: web.Request) -> web.Response:
        address = self._address(request)
        if address is None:
            return error(400, Code.MALFORMED, "bad address")
        return web.json_response(account_json(self.sm.ex, address, self.sm.height))

    async def h_pools(self, request: web.Request) -> web.Response:
        return web.json_response({"height": self.sm.height, "pools": view_json(pools_view(self.sm.ex))})

    async def h_funding(self, request: web.Request) -> web.Response:
        return web.json_response({"height": self.sm.height, "markets": view_json(markets_view(self.sm.ex))})

    async def h_oracle(self, request: web.Request) -> web.Response:
        return web.json_response({"height": self.sm.height, "assets": view_json(oracle_view(self.sm.ex))})

    async def h_triggers(self, request: web.Request) -> web.Response:
        address = self._address(request)
        if address is None:
            return error(400, Code.MALFORMED, "bad address")
        return web.json_response({"triggers": view_json(triggers_view(self.sm.ex, address))})

    async def h_orders(self, request: web.Request) -> web.Response:
        address = self._address(request)
        if address is None:
            return error(400, Code.MALFORMED, "bad address")
        return web.json_response({"orders": self._orders(address)})

    async def h_fills(self, request: web.Request) -> web.Response:
        address = self._address(request)
        if address is None:
            return error(400, Code.MALFORMED, "bad address")
        limit = int(request.query.get("limit", 100))
        return web.json_response({"fills": self.fills_by_addr.get(address_to_text(address), [])[:limit]})
