"""The RPC server: CometBFT-style chain endpoints, exchange queries, websocket, metrics.

aiohttp on the node's uvloop event loop. Every handler answers JSON; every failure is a
JSON error with a stable code (state.errors.Code) and never takes the server down.
Request bodies are capped (``client_max_size``) and batch sizes are bounded. The two
endpoints a high-rate client lives on, ``POST /broadcast_txs`` and ``GET /commits``, also
speak msgpack (node/wire.py); so do their errors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from consensus.block import Block
from consensus.certificate import CommitCertificate
from node import (
    evidence_index,
    history,
    hlexchange,
    hlws,
    orderindex,
    recordkeys,
    submitbody,
    wsquota,
)
from node.bodylimit import body_rate_middleware
from node.clientaddr import client_key, client_of
from node.codes import split_hashes, unpack_codes
from node.connlimit import ConnLimit
from node.events import Subscription
from node.frontend.header import CLIENT_HEADER
from node.httperrors import JsonErrorRunner
from node.jsonfmt import (
    account_json,
    block_json,
    code_name,
    event_from_list,
    evidence_json,
    fill_from_list,
    num,
    receipt_from_list,
    results_json,
    view_json,
)
from node.readbudget import DEFAULT_BURST_S, DEFAULT_SHARE, OverBudget, ReadBudget
from node.rpcerrors import (
    MAX_BODY,
    RETRYABLE,
    RpcError,
    errors_middleware,
    json_body,
    json_object,
    tx_bytes,
)
from node.stategate import NodeStopping
from node.submitlimit import SubmitLimit
from node.wire import MSGPACK, packed_response, wants_msgpack
from node.wsquota import WsQuota
from state import views
from state.apphash import app_hash
from state.errors import Code
from state.keys import address_from_text, address_to_text, bytes_from_hex
from state.tx import CLOID_LEN

if TYPE_CHECKING:
    from node.config import RpcLimits
    from node.ports import RpcHost

log = logging.getLogger("bookchain.rpc")


class UnknownMarket(LookupError):
    """A market reference that is neither an id nor a symbol of this chain."""

MAX_BLOCK_RANGE = 100
MAX_COMMITS_WAIT_MS = 30_000
MAX_WS_SUBSCRIPTIONS = 100  # per /websocket connection, as /ws (node/hlws.py) caps them
# messages a /websocket connection may have waiting: one per event (a trade, an account's
# event), published together after each block, so a queue that one large block can fill
# (5,000 txs sweeping the book are thousands of fills) would close clients that keep up;
# 10,000 references (~80 KB) is several busy blocks behind
WS_QUEUE = 10_000
MAX_PROOF_KEY = 64  # bytes; state keys are a prefix byte and at most 32 more
# what answers while a synced snapshot awaits block h+1's certificate: the node's own status
OPEN_WHILE_UNVERIFIED = frozenset({"/health", "/status", "/genesis", "/validators", "/net_info", "/metrics"})
#: Routes that read no exchange state, or wait for the state gate themselves right before
#: they do (submissions, websockets, /exchange): the others wait for it in a middleware.
#: /status, /health and /metrics wait too: the height they report is set when a block is
#: applied, before its results are stored, and a client that reads height h must find
#: block h's results (/commits, /block_results) at once.
OWN_GATE = frozenset({"/genesis", "/validators", "/net_info", "/snapshots", "/snapshot", "/commits",
                      "/broadcast_tx_sync", "/broadcast_txs", "/broadcast_tx_commit", "/exchange", "/ws",
                      "/websocket"})


#: GET routes that walk indexes or many blocks: their loop time is charged to the read
#: budget, the client's share and the node's (node/readbudget.py), as /info's is
HEAVY_READS = frozenset({"/blocks", "/history", "/fills", "/orders", "/orders/history", "/candles", "/evidence",
                         "/account", "/triggers"})


def _int_param(request: web.Request, name: str, default: int | None = None, lo: int = 0, hi: int = 1 << 62) -> int:
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise RpcError(400, Code.MALFORMED, f"missing query parameter {name}")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RpcError(400, Code.MALFORMED, f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise RpcError(400, Code.MALFORMED, f"{name} must be in [{lo}, {hi}]")
    return value


def _hex_param(request: web.Request, name: str) -> bytes:
    raw = request.query.get(name, "")
    try:
        return bytes_from_hex(raw.removeprefix("0x"))
    except ValueError:
        raise RpcError(400, Code.MALFORMED, f"{name} must be hex") from None


def _address_param(request: web.Request) -> bytes:
    try:
        return address_from_text(request.query.get("address", ""))
    except ValueError as err:
        raise RpcError(400, Code.MALFORMED, f"address: {err}") from None


def over_budget(err: OverBudget) -> RpcError:
    """A refused read's answer: HTTP 429 with the budget's code (``RATE_LIMITED``: this
    client's share is spent; ``NOT_READY``: the node's is). Both are retryable."""
    return RpcError(429, err.code, str(err))


class RpcServer:
    def __init__(self, rt: RpcHost, limits: RpcLimits | None = None) -> None:
        from node.config import RpcLimits

        self.rt = rt
        limits = limits or RpcLimits()
        exempt = [client_key(a) for a in limits.exempt]  # an exempt IPv6 address exempts its /64, as clients are keyed
        self.runner: web.AppRunner | None = None
        # websocket connections, in all and per client address, and subscriptions (node/wsquota.py)
        self.ws_quota = WsQuota(max_subscriptions=limits.max_ws_subscriptions,
                                per_address_subscriptions=limits.max_ws_subscriptions_per_address)
        # loop time for clients' heavy reads, the node's and each client's (node/readbudget.py)
        pct = limits.client_read_share_pct
        self.read_budget = ReadBudget(client_share=DEFAULT_SHARE * pct / 100, client_burst_s=DEFAULT_BURST_S * pct / 100,
                                      exempt=exempt)
        # request body bytes per client (node/submitlimit.py)
        self.submit_limit = SubmitLimit(limits.client_submit_kib_per_s * 1024, limits.client_submit_burst_kib * 1024,
                                        node_bytes_per_s=limits.node_submit_kib_per_s * 1024,
                                        node_burst=limits.node_submit_burst_kib * 1024, exempt=exempt)
        # open connections per client and in all (node/connlimit.py), counted from start()
        self.conn_limit = ConnLimit(exempt=exempt)
        # the front-end process (node/frontend/) names each request's client in a header: set
        # (by start_internal) only when the server listens to nothing but that process
        self.behind_frontend = False
        self.app = web.Application(client_max_size=MAX_BODY,
                                   middlewares=[self._forwarded_mw, self._count_mw, errors_middleware,
                                                body_rate_middleware(self.submit_limit),
                                                self._sync_gate_mw, self._state_gate_mw])
        r = self.app.router
        for path, handler in [
            ("/health", self.health), ("/status", self.status), ("/validators", self.validators),
            ("/block", self.block), ("/block_results", self.block_results), ("/blocks", self.blocks),
            ("/commits", self.commits), ("/proof", self.proof),
            ("/tx", self.tx), ("/markets", self.markets), ("/assets", self.assets), ("/book", self.book),
            ("/account", self.account), ("/orders", self.orders), ("/triggers", self.triggers),
            ("/fills", self.fills), ("/order_status", self.order_status),
            ("/history", self.history), ("/orders/history", self.orders_history), ("/candles", self.candles),
            ("/evidence", self.evidence), ("/pools", self.pools), ("/funding", self.funding), ("/oracle", self.oracle),
            ("/insurance", self.insurance), ("/can_order", self.can_order), ("/can_withdraw", self.can_withdraw),
            ("/can_borrow", self.can_borrow),
            ("/metrics", self.metrics), ("/websocket", self.websocket), ("/net_info", self.net_info), ("/genesis", self.genesis), ("/snapshots", self.snapshots), ("/snapshot", self.snapshot),
        ]:
            r.add_get(path, self._charged(handler) if path in HEAVY_READS else handler)
        r.add_post("/broadcast_tx_sync", self.broadcast_tx_sync)
        r.add_post("/broadcast_tx_commit", self.broadcast_tx_commit)
        r.add_post("/broadcast_txs", self.broadcast_txs)
        r.add_post("/info", self.hl_info)  # Hyperliquid-compatible reads (node/hlinfo.py)
        r.add_post("/exchange", hlexchange.route(rt))  # Hyperliquid-signed actions (node/hlexchange.py)
        r.add_get("/ws", hlws.route(self))  # Hyperliquid's websocket (node/hlws.py)
        for path, debug in rt.faults.routes():  # fault injection, off unless config.json's "test" enables it
            r.add_post(path, debug)

    async def start(self, host: str, port: int) -> None:
        # parser refusals (a URL over 8190 bytes) in the JSON error shape (node/httperrors.py);
        # an idle connection is closed after IDLE_S (node/connlimit.py)
        self.runner = JsonErrorRunner.for_clients(self.app)
        await self.runner.setup()
        assert self.runner.server is not None  # set by setup()
        self.conn_limit.attach(self.runner.server)
        site = web.TCPSite(self.runner, host, port, backlog=1024, reuse_address=True)
        await site.start()

    async def start_internal(self, path: str) -> None:
        """Serve on a Unix socket at ``path`` that only the node's front-end process
        (node/frontend/) connects to: it holds the clients' connections and names each
        request's client in ``CLIENT_HEADER``, which this server then trusts."""
        self.behind_frontend = True
        self.runner = JsonErrorRunner.for_clients(self.app)
        await self.runner.setup()
        await web.UnixSite(self.runner, path).start()
        os.chmod(path, 0o600)  # the node's user alone may name a client

    async def stop(self) -> None:
        self.rt.execution.release_height_waiters()  # long polls of /commits answer now
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    # ------------------------------------------------------------------ chain
    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "height": self.rt.sm.height})

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(self.rt.status())

    async def validators(self, request: web.Request) -> web.Response:
        vals = [{"name": v.name, "pubkey": v.pubkey.hex(), "power": v.power} for v in self.rt.genesis.validators]
        return web.json_response({"validators": vals, "total_power": sum(v.power for v in self.rt.genesis.validators)})

    def _block_at(self, height: int) -> dict[str, Any]:
        raw_block, raw_cert = self.rt.blocks.block(height), self.rt.blocks.certificate(height)
        if raw_block is None or raw_cert is None:
            raise RpcError(404, Code.NOT_FOUND, f"no block at height {height}")
        return block_json(Block.decode(raw_block), CommitCertificate.decode(raw_cert), raw_block, raw_cert)

    async def block(self, request: web.Request) -> web.Response:
        height = _int_param(request, "height", self.rt.blocks.height, lo=1)
        if height < self.rt.blocks.base:
            raise RpcError(404, Code.NOT_FOUND, f"block {height} was pruned (lowest kept: {self.rt.blocks.base})")
        return web.json_response(self._block_at(height))

    async def blocks(self, request: web.Request) -> web.Response:
        lo = _int_param(request, "from", 1, lo=1)
        hi = min(_int_param(request, "to", lo + MAX_BLOCK_RANGE - 1, lo=lo), lo + MAX_BLOCK_RANGE - 1, self.rt.blocks.height)
        return web.json_response({"blocks": [self._block_at(h) for h in range(lo, hi + 1)]})

    async def evidence(self, request: web.Request) -> web.Response:
        """Committed equivocation evidence, newest block first (``?height=`` one block's;
        ``?limit=``), and the evidence this node holds that no block has committed yet."""
        height = _int_param(request, "height", 0, lo=0) or None
        limit = _int_param(request, "limit", 100, lo=1, hi=1000)
        committed = [{"committed_height": h, **evidence_json(ev)}
                     for h, ev in evidence_index.committed(self.rt.blocks.db, height, limit)]
        pending = [evidence_json(ev) for ev in self.rt.evidence_pool.pending()]
        return web.json_response({"height": self.rt.blocks.height, "evidence": committed, "pending": pending})

    async def block_results(self, request: web.Request) -> web.Response:
        height = _int_param(request, "height", self.rt.blocks.results_height, lo=1)
        record = self.rt.blocks.results(height)
        if record is None:
            raise RpcError(404, Code.NOT_FOUND, f"no results at height {height}")
        return web.json_response(results_json(height, record))

    async def tx(self, request: web.Request) -> web.Response:
        h = _hex_param(request, "hash")
        loc = self.rt.blocks.tx_location(h)
        if loc is None:
            raise RpcError(404, Code.NOT_FOUND, "transaction not found")
        height, index = loc
        return web.json_response({"hash": h.hex(), "height": height, "index": index,
                                  "receipt": self._committed_receipt(h, height, index)})

    def _committed_receipt(self, h: bytes, height: int, index: int) -> dict[str, Any]:
        """The receipt of an indexed tx: receipts are stored in block order, one per tx,
        so only that one is converted (not the whole block's results)."""
        record = self.rt.blocks.results(height)
        assert record is not None
        raw = record[1][index]
        assert raw[0] == h, "tx index and stored receipts disagree"
        return receipt_from_list(raw)

    async def proof(self, request: web.Request) -> web.Response:
        """A record's value at a height with its Merkle proof against that height's state
        root (node/proofs.py): ``key=HEX`` or ``kind=`` + its arguments (node/recordkeys.py).
        ``height`` defaults to the newest provable one (latest - 1): block ``height + 1``'s
        header carries the app hash and its certificate signs it (node/lightclient.py)."""
        q = request.query
        if "key" in q:
            key = _hex_param(request, "key")
            if not 0 < len(key) <= MAX_PROOF_KEY:
                raise RpcError(400, Code.MALFORMED, f"key must be 1..{MAX_PROOF_KEY} bytes of hex")
        elif "kind" in q:
            try:
                key = recordkeys.key_for(self.rt.genesis, q["kind"], q)
            except recordkeys.KeyRefError as err:
                status = 400 if err.code == Code.MALFORMED else 404
                raise RpcError(status, err.code, str(err)) from None
        else:
            raise RpcError(400, Code.MALFORMED, f"name the record with key=HEX or kind= ({', '.join(recordkeys.KINDS)})")
        window = self.rt.execution.proofs
        span = window.provable(self.rt.blocks.base)
        kept = {"provable": None if span is None else {"from": span[0], "to": span[1]}}
        if span is None:
            raise RpcError(404, Code.NOT_READY, "no provable height yet: a height is provable once the next block "
                           f"is committed, and this node keeps {window.keep} (storage.proof_heights)", kept)
        height = _int_param(request, "height", span[1])
        if height > span[1]:
            raise RpcError(404, Code.NOT_READY, f"height {height} is not provable yet (block {height + 1} certifies "
                           f"it); provable heights: {span[0]}..{span[1]}", kept)
        if height < span[0]:
            raise RpcError(404, Code.NOT_FOUND, f"height {height} is no longer kept for proofs; provable heights: "
                           f"{span[0]}..{span[1]}", kept)
        proven = window.prove(height, key)
        assert proven is not None, "a provable height is retained"
        genesis_hash = self.rt.sm.genesis_hash
        wire = proven.proof
        return web.json_response({
            "height": height, "key": key.hex(), "value": None if proven.value is None else proven.value.hex(),
            "proof": {"siblings": [s.hex() for s in wire.siblings],
                      "leaf": None if wire.leaf is None else [x.hex() for x in wire.leaf]},
            "state_root": proven.state_root.hex(), "genesis_hash": genesis_hash.hex(),
            "app_hash": app_hash(genesis_hash, proven.state_root).hex(),
            "certified_by": height + 1, **kept})

    # ------------------------------------------------------------------ submission
    async def broadcast_tx_sync(self, request: web.Request) -> web.Response:
        return submitbody.sync_answer((await self.submit_verdicts(submitbody.sync_txs(await request.read())))[0])

    async def broadcast_txs(self, request: web.Request) -> web.Response:
        packed = request.content_type == MSGPACK
        verdicts = await self.submit_verdicts(submitbody.batch_txs(await request.read(), packed))
        return submitbody.batch_answer(verdicts, packed)

    async def submit_verdicts(self, raws: list[bytes]) -> list[submitbody.Verdict]:
        return [(a.hash, int(a.code), a.message) for a in await self.rt.submit(raws)]

    async def commits(self, request: web.Request) -> web.Response:
        """Which txs each block committed, with their receipt codes: the compact way to follow
        the chain (the load generator's). ``wait_ms`` long-polls for ``from`` to commit."""
        lo = _int_param(request, "from", lo=1)
        hi = _int_param(request, "to", lo + MAX_BLOCK_RANGE - 1, lo=lo)
        wait_ms = _int_param(request, "wait_ms", 0, lo=0, hi=MAX_COMMITS_WAIT_MS)
        blocks = self.rt.blocks
        if lo < blocks.base:
            raise RpcError(404, Code.NOT_FOUND, f"block {lo} was pruned (lowest kept: {blocks.base})")
        if wait_ms and blocks.results_height < lo:
            await self.rt.execution.wait_for_height(lo, wait_ms / 1000)
        latest = blocks.results_height
        out: list[tuple[int, bytes, bytes]] = []
        for h in range(lo, min(hi, lo + MAX_BLOCK_RANGE - 1, latest) + 1):
            found = blocks.commit_codes(h)
            if found is None:
                break
            out.append((h, *found))
        if wants_msgpack(request):
            return packed_response({"latest_height": latest, "blocks": [list(b) for b in out]})
        return web.json_response({"latest_height": latest, "blocks": [
            {"height": h, "txs": [[th.hex(), c] for th, c in zip(split_hashes(hashes), unpack_codes(codes), strict=True)]}
            for h, hashes, codes in out]})

    async def broadcast_tx_commit(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        raw = tx_bytes(body.get("tx"))
        timeout_ms = body.get("timeout_ms", 10_000)
        if not isinstance(timeout_ms, int) or not 0 < timeout_ms <= 120_000:
            raise RpcError(400, Code.MALFORMED, "timeout_ms must be an integer in (0, 120000]")
        from state.tx import tx_hash

        h = tx_hash(raw)
        fut = self.rt.execution.wait_for(h)
        (adm,) = await self.rt.submit([raw])
        if not adm.ok and adm.code != Code.DUPLICATE_TX:
            self.rt.execution.forget_waiter(h, fut)
            return web.json_response({"hash": h.hex(), "code": int(adm.code), "name": adm.code.name,
                                      "message": adm.message, "height": None, "receipt": None},
                                     status=503 if adm.code in RETRYABLE else 200)
        if adm.code == Code.DUPLICATE_TX and (loc := self.rt.blocks.tx_location(h)) is not None:
            self.rt.execution.forget_waiter(h, fut)
            receipt = self._committed_receipt(h, *loc)
            return web.json_response({"hash": h.hex(), "code": receipt["code"], "name": receipt["name"],
                                      "message": receipt["message"], "height": loc[0], "receipt": receipt})
        try:
            height, _index, receipt = await asyncio.wait_for(fut, timeout_ms / 1000)
        except TimeoutError:
            self.rt.execution.forget_waiter(h, fut)
            raise RpcError(504, Code.NOT_READY, f"not committed within {timeout_ms} ms (still in the mempool)") from None
        except NodeStopping:
            raise RpcError(503, Code.NOT_READY, "this node is stopping before it saw the transaction committed; it "
                           "may still be: look it up (/tx) on another node before resubmitting") from None
        return web.json_response({"hash": h.hex(), "code": receipt["code"], "name": receipt["name"],
                                  "message": receipt["message"], "height": height, "receipt": receipt})

    # ------------------------------------------------------------------ exchange
    def _market_id(self, request: web.Request) -> int:
        raw = request.query.get("market", "")
        try:
            return self._market_ref(raw)
        except UnknownMarket as err:
            raise RpcError(404, Code.UNKNOWN_MARKET, str(err)) from None

    def _market_ref(self, ref: Any) -> int:
        """A market id (int or digits) or a symbol (any case), as /book and the websocket take it."""
        markets = self.rt.genesis.markets
        if isinstance(ref, int) and not isinstance(ref, bool) and 0 <= ref < len(markets):
            return ref
        raw = str(ref).strip()
        if raw.isascii() and raw.isdigit() and len(raw) < 10 and int(raw) < len(markets):
            return int(raw)
        for m in markets:
            if m.symbol.lower() == raw.lower():
                return m.market_id
        raise UnknownMarket(f"unknown market {ref!r}; markets: {', '.join(m.symbol for m in markets)}")

    async def markets(self, request: web.Request) -> web.Response:
        return web.json_response({"markets": view_json(views.market_rows(self.rt.sm.ex))})

    async def assets(self, request: web.Request) -> web.Response:
        return web.json_response({"assets": [{"id": a.asset_id, "symbol": a.symbol, "decimals": a.decimals}
                                             for a in self.rt.genesis.assets]})

    async def book(self, request: web.Request) -> web.Response:
        m = self._market_id(request)
        depth = _int_param(request, "depth", 20, lo=1, hi=500)
        book = views.book_view(self.rt.sm.ex, m, depth)
        return web.json_response({"market": m, "height": self.rt.sm.height,
                                  "bids": [[num(p), num(s), n] for p, s, n in book["bids"]],
                                  "asks": [[num(p), num(s), n] for p, s, n in book["asks"]]})

    def _orders_of(self, address: bytes) -> list[dict[str, Any]]:
        return [view_json(o) for o in views.open_orders_view(self.rt.sm.ex, address)]

    async def account(self, request: web.Request) -> web.Response:
        """Balances (signed: negative is borrowed), positions, open orders, the portfolio
        margin summary (equity, initial/maintenance requirement, ratio, liquidation prices),
        and the account's agents, sub-accounts and master."""
        return web.json_response(account_json(self.rt.sm.ex, _address_param(request), self.rt.sm.height))

    async def pools(self, request: web.Request) -> web.Response:
        from state.views import pools_view

        return web.json_response({"height": self.rt.sm.height, "pools": view_json(pools_view(self.rt.sm.ex))})

    async def funding(self, request: web.Request) -> web.Response:
        from state.views import markets_view

        return web.json_response({"height": self.rt.sm.height, "markets": view_json(markets_view(self.rt.sm.ex))})

    async def oracle(self, request: web.Request) -> web.Response:
        from state.views import oracle_view

        return web.json_response({"height": self.rt.sm.height, "assets": view_json(oracle_view(self.rt.sm.ex))})

    async def insurance(self, request: web.Request) -> web.Response:
        from state.views import insurance_view

        return web.json_response({"height": self.rt.sm.height, "insurance": view_json(insurance_view(self.rt.sm.ex))})

    async def can_order(self, request: web.Request) -> web.Response:
        """Dry run of an order through the same checks the write path uses."""
        from state.tx import PlaceOrder, Tif

        q = request.query
        side = q.get("side", "")
        if side not in ("buy", "sell"):
            raise RpcError(400, Code.MALFORMED, "side must be buy or sell")
        tif = {"gtc": Tif.GTC, "ioc": Tif.IOC, "alo": Tif.ALO}.get(q.get("tif", "gtc").lower())
        if tif is None:
            raise RpcError(400, Code.MALFORMED, "tif must be gtc, ioc or alo")
        order = PlaceOrder(self._market_id(request), side == "buy", _int_param(request, "price", lo=0),
                           _int_param(request, "size", lo=0), tif, q.get("reduce_only", "false") == "true", None)
        return web.json_response(views.can_place_order(self.rt.sm.ex, _address_param(request), order))

    async def can_withdraw(self, request: web.Request) -> web.Response:
        address = _address_param(request)
        return web.json_response(views.can_withdraw(self.rt.sm.ex, address, _int_param(request, "asset"),
                                                   _int_param(request, "amount")))

    async def can_borrow(self, request: web.Request) -> web.Response:
        address = _address_param(request)
        return web.json_response(views.can_borrow(self.rt.sm.ex, address, _int_param(request, "asset"),
                                                 _int_param(request, "amount")))

    async def orders(self, request: web.Request) -> web.Response:
        return web.json_response({"orders": self._orders_of(_address_param(request))})

    async def order_status(self, request: web.Request) -> web.Response:
        """One order's status by ``oid``, or by ``address`` and ``cloid`` (hex): open (live
        state), or what became of it (node/orderindex.py); 404 for an order this node never
        saw finish (unknown, or before its kept results)."""
        ex = self.rt.sm.ex
        if "oid" in request.query:
            oid = _int_param(request, "oid", lo=1)
        else:
            address, cloid = _address_param(request), _hex_param(request, "cloid")
            if len(cloid) != CLOID_LEN:
                raise RpcError(400, Code.MALFORMED, f"cloid must be {CLOID_LEN} bytes of hex")
            acct = ex.accounts.get(address)
            live = acct.cloids.get(cloid) if acct is not None else None
            found = live if live is not None else self.rt.blocks.oid_of_cloid(address, cloid)
            if found is None:
                raise RpcError(404, Code.NOT_FOUND, "no order with this cloid for this address")
            oid = found
        view = orderindex.status_view(ex, oid, self.rt.blocks.order_outcome(oid))
        if view is None:
            raise RpcError(404, Code.NOT_FOUND, f"order {oid} is unknown to this node")
        return web.json_response({"height": self.rt.sm.height, "order": view_json(view)})

    async def triggers(self, request: web.Request) -> web.Response:
        """The account's waiting trigger orders (stop / take-profit, state/triggers.py)."""
        return web.json_response({"triggers": [view_json(t) for t in
                                               views.triggers_view(self.rt.sm.ex, _address_param(request))]})

    async def fills(self, request: web.Request) -> web.Response:
        address = _address_param(request)
        limit = _int_param(request, "limit", 100, lo=1, hi=1000)
        return web.json_response({"fills": [{"height": h, **fill_from_list(f)} for h, f in self.rt.blocks.fills(address, limit)]})

    async def history(self, request: web.Request) -> web.Response:
        """An account's indexed events newest first (node/history.py), paged by ``before``
        (the ``next`` cursor of the previous page, ``height:seq``)."""
        address = _address_param(request)
        limit = _int_param(request, "limit", 100, lo=1, hi=1000)
        q = request.query
        before = None
        if "before" in q:
            try:
                before = history.parse_cursor(q["before"])
            except ValueError:
                raise RpcError(400, Code.MALFORMED, "before must be HEIGHT:SEQ (a next cursor)") from None
        kinds = [k.strip() for k in q.get("kinds", "").split(",") if k.strip()] or None
        unknown = sorted(set(kinds or ()) - set(history.KINDS))
        if unknown:
            raise RpcError(400, Code.MALFORMED, f"unknown kinds {unknown}; kinds: {', '.join(history.KINDS)}")
        start = _int_param(request, "start", 0) if "start" in q else None
        end = _int_param(request, "end", 0) if "end" in q else None
        entries, cursor = self.rt.blocks.history(address, limit, before, start, end, kinds)
        return web.json_response({
            "address": address_to_text(address), "base": self.rt.blocks.base,
            "entries": [{"height": h, "seq": s, "time_ms": t, **event_from_list(e)} for h, s, t, e in entries],
            "next": cursor})

    async def orders_history(self, request: web.Request) -> web.Response:
        """An account's finished orders newest first with their final status."""
        address = _address_param(request)
        limit = _int_param(request, "limit", 100, lo=1, hi=1000)
        before = _int_param(request, "before", 0, lo=1) if "before" in request.query else None
        return web.json_response({"address": address_to_text(address),
                                  "orders": self.rt.blocks.order_history(address, limit, before)})

    async def candles(self, request: web.Request) -> web.Response:
        """OHLCV of a market (prices in ticks, volume in lots, quote_volume in quote units)."""
        m = self._market_id(request)
        interval = request.query.get("interval", "1m")
        if interval not in history.INTERVALS:
            raise RpcError(400, Code.MALFORMED, f"interval must be one of {', '.join(history.INTERVALS)}")
        start = _int_param(request, "start", 0)
        end = _int_param(request, "end", 0) if "end" in request.query else None
        limit = _int_param(request, "limit", 500, lo=1, hi=5000)
        rows = self.rt.blocks.candles(m, interval, start, end, limit)
        return web.json_response({"market": m, "interval": interval,
                                  "candles": [{k: num(v) for k, v in c.items()} for c in rows]})

    async def hl_info(self, request: web.Request) -> web.Response:
        """Hyperliquid's ``POST /info`` (node/hlinfo.py): its request types and JSON shapes,
        so its SDKs read a devnet unchanged; 400 for an unknown or malformed request."""
        raw = await request.read()  # its bytes are charged to the byte rate (the middleware)
        return web.Response(body=self.info_answer(raw, client_of(request)), content_type="application/json",
                            charset="utf-8")

    def info_answer(self, raw: bytes, client: str | None) -> bytes:
        """``/info``'s answer to the body ``raw`` as JSON bytes, or ``RpcError``. Parsing is
        loop time like the answer: both are charged to the read budget. Runs without
        suspending: the caller has waited for the state gate."""
        from node.hlinfo import InfoError, answer

        try:
            return self.read_budget.run(
                lambda: json.dumps(answer(self.rt.sm.ex, json_object(raw), self.rt.blocks)).encode(), client)
        except OverBudget as err:
            raise over_budget(err) from None
        except InfoError as err:
            raise RpcError(400, Code.MALFORMED, str(err)) from None

    def _charged(self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                 ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """``handler`` (a heavy native read, ``HEAVY_READS``) with its loop time charged to the
        read budget, the client's share and the node's: refused (429) without running once
        either is spent. The handler does not suspend (it runs between awaits), so the time
        measured is its own."""

        async def charged(request: web.Request) -> web.StreamResponse:
            budget, client = self.read_budget, client_of(request)
            try:
                started = budget.begin(client)
            except OverBudget as err:
                raise over_budget(err) from None
            try:
                return await handler(request)
            finally:
                budget.charge(started, client)

        return charged

    # ------------------------------------------------------------------ ops
    @web.middleware
    async def _forwarded_mw(self, request: web.Request,
                            handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """Behind the front-end process, a request's client is the one it names (its own
        client's address): the per-client limits key on it as on a direct client's."""
        forwarded = request.headers.get(CLIENT_HEADER) if self.behind_frontend else None
        if forwarded:
            request = request.clone(remote=forwarded)
        return await handler(request)

    @web.middleware
    async def _count_mw(self, request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """Counts requests by route (the registered path, so /tx?hash=... is one series and
        unknown paths share "unmatched" instead of minting a series per probe)."""
        info = request.match_info
        route = info.route.resource.canonical if info.route.resource is not None else "unmatched"
        self.rt.metrics.on_request(route)
        return await handler(request)

    @web.middleware
    async def _sync_gate_mw(self, request: web.Request,
                            handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """While the state comes from a snapshot that block h+1 has not certified yet
        (node/syncverify.py), only the node's own status answers: no exchange state, blocks,
        snapshots or submissions, which would all rest on an unproven state."""
        self.refuse_while_unverified(request.path)
        return await handler(request)

    def refuse_while_unverified(self, path: str) -> None:
        """503 ``SNAPSHOT_UNVERIFIED`` for ``path`` while the state is an uncertified snapshot's."""
        pending = self.rt.sync_pending
        if pending is not None and path not in OPEN_WHILE_UNVERIFIED:
            raise RpcError(503, Code.SNAPSHOT_UNVERIFIED,
                           f"this node's state comes from a snapshot at height {pending.height} that block "
                           f"{pending.height + 1} has not certified yet; it serves no exchange state until then")

    @web.middleware
    async def _state_gate_mw(self, request: web.Request,
                             handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """A read of the exchange state waits while a block executes (node/stategate.py).
        The body is read first, so the handler reaches its state read without another
        await (a cached body is returned without suspending), and no block can start
        executing in between."""
        if request.path in OWN_GATE:
            return await handler(request)
        if request.can_read_body:
            await request.read()
        await self.rt.execution.gate.wait_open()
        return await handler(request)

    async def metrics(self, request: web.Request) -> web.Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return web.Response(body=self.rt.metrics_text().encode(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def snapshots(self, request: web.Request) -> web.Response:
        from node.snapshots import list_snapshots, snapshot_path

        d = self.rt.config.snapshots_dir
        return web.json_response({"snapshots": [{"height": h, "bytes": snapshot_path(d, h).stat().st_size}
                                                for h in list_snapshots(d)]})

    async def snapshot(self, request: web.Request) -> web.StreamResponse:
        from node.snapshots import snapshot_path

        height = _int_param(request, "height", lo=1)
        path = snapshot_path(self.rt.config.snapshots_dir, height)
        if not path.exists():
            raise RpcError(404, Code.NOT_FOUND, f"no snapshot at height {height}")
        return web.FileResponse(path, headers={"content-type": "application/octet-stream"})

    async def genesis(self, request: web.Request) -> web.Response:
        return web.json_response({"genesis": self.rt.genesis.raw})

    async def net_info(self, request: web.Request) -> web.Response:
        p2p = self.rt.p2p
        return web.json_response({"listening": self.rt.config.p2p_listen, "peers": sorted(p2p.connected_peers()),
                                  "metrics": p2p.metrics_snapshot()}, dumps=lambda o: json.dumps(o, default=str))

    @property
    def ws_clients(self) -> int:
        """Open websocket connections, /ws and /websocket together (a /metrics gauge)."""
        return self.ws_quota.total

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        ws = await wsquota.accept(self.ws_quota, request)
        if isinstance(ws, tuple):
            raise RpcError(*ws)
        subs: list[Subscription] = []
        seen: set[tuple[str, Any]] = set()
        # one bounded queue for all of the connection's subscriptions: a client that never
        # reads holds at most WS_QUEUE messages, however many topics it subscribed; once
        # it is full the connection is closed (node/wsquota.py drop_lagging)
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(WS_QUEUE)
        budget, client = self.read_budget, client_of(request)
        lagging = False

        async def forward() -> None:
            while True:
                msg = await inbox.get()
                await budget.wait_turn(client)  # encoding pushes is charged as reads are
                await ws.send_str(budget.spend(client, json.dumps, {"topic": msg["topic"], "data": msg["data"]}))

        sender = asyncio.ensure_future(forward())

        def on_lag() -> None:  # the bus found the queue full: stop working for this client
            nonlocal lagging
            if not lagging:
                lagging = True
                sender.cancel()
                wsquota.drop_lagging(self.ws_quota, ws)

        try:
            async for msg in wsquota.charged_messages(ws, self.submit_limit, client, lambda: lagging):
                if msg.type == WSMsgType.BINARY:
                    await ws.send_json({"error": {"code": int(Code.MALFORMED), "name": "MALFORMED",
                                                  "message": "binary frames are not understood: send JSON text"}})
                    continue
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    try:
                        req = json.loads(msg.data)
                    except RecursionError:
                        raise ValueError("the message nests too deeply") from None
                    topic = req["topic"]
                    if req.get("method") != "subscribe" or topic not in ("blocks", "trades", "book", "account"):
                        raise ValueError("unknown method or topic")
                    key: Any = None
                    if topic in ("trades", "book"):
                        key = self._market_ref(req["market"])
                    elif topic == "account":
                        address = req["address"]
                        if not isinstance(address, str):
                            raise TypeError("address must be a 0x address")
                        key = address_to_text(address_from_text(address))
                except LookupError as err:  # UnknownMarket is a LookupError too (before KeyError's case)
                    if isinstance(err, UnknownMarket):
                        await ws.send_json({"error": {"code": int(Code.UNKNOWN_MARKET), "name": "UNKNOWN_MARKET",
                                                      "message": str(err)}})
                    else:
                        await ws.send_json({"error": {"code": int(Code.MALFORMED), "name": "MALFORMED",
                                                      "message": f"missing field {err}"}})
                    continue
                except (ValueError, TypeError) as err:
                    await ws.send_json({"error": {"code": int(Code.MALFORMED), "name": "MALFORMED", "message": str(err)}})
                    continue
                refusal = ("already subscribed" if (topic, key) in seen else
                           f"at most {MAX_WS_SUBSCRIPTIONS} subscriptions per connection"
                           if len(subs) >= MAX_WS_SUBSCRIPTIONS else None)
                if refusal is not None:  # each is an entry every matching publish visits
                    await ws.send_json({"error": {"code": int(Code.MALFORMED), "name": "MALFORMED", "message": refusal}})
                    continue
                full = self.ws_quota.subscribe(client)  # the node's subscriptions, in all and this client's
                if full is not None:
                    await ws.send_json({"error": {"code": int(Code.NOT_READY), "name": "NOT_READY", "message": full}})
                    continue
                seen.add((topic, key))
                subs.append(self.rt.bus.subscribe(topic, key, inbox, on_lag))
                await ws.send_json({"subscribed": topic, "key": key})
        finally:
            sender.cancel()
            for s in subs:
                self.rt.bus.unsubscribe(s)
            self.ws_quota.unsubscribe(len(subs), client)
            self.ws_quota.leave(client)
        return ws


__all__ = ["RpcServer", "code_name"]
