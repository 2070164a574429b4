"""HTTP clients for the node's RPC contract (node/API.md): one sync, one async.

Why two: the CLI makes a handful of calls and wants no event loop (``urllib`` is enough and
starts fast), while the load generator keeps thousands of requests in flight and needs
aiohttp. Both turn an error answer into ``RpcError`` carrying the registry code name the
node sent, so a script sees the same ``INSUFFICIENT_BALANCE`` the receipt holds, and both
turn "nobody listens there" into ``NodeUnreachable`` so the CLI can exit with its own code.

Answers are returned as the parsed JSON, untouched: ``--json`` output must be exactly what
the node said. ``as_int`` undoes the "big integers travel as strings" convention.

The async client also speaks the msgpack form of ``/broadcast_txs`` and ``/commits``
(node/wire.py): raw bytes instead of hex and compact arrays instead of per-tx dicts, for
callers that move thousands of transactions a second.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import msgpack

DEFAULT_URL = "http://127.0.0.1:26657"
DEFAULT_TIMEOUT_S = 15.0
MAX_BATCH_TXS = 5000
MSGPACK = "application/msgpack"

Json = dict[str, Any]


class RpcError(Exception):
    """The node answered with an error: ``code``/``name`` from ``state.errors.Code``.

    ``code`` is -1 (and ``name`` ``HTTP_<status>``) when the answer carried no error body,
    e.g. a proxy's 502 page.
    """

    def __init__(self, code: int, name: str, message: str, http_status: int) -> None:
        super().__init__(f"{name} ({code}): {message}" if message else f"{name} ({code})")
        self.code = code
        self.name = name
        self.message = message
        self.http_status = http_status


class NodeUnreachable(Exception):
    """No answer at all: refused, DNS failure, reset, or timed out before a status line."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"node at {url} is unreachable: {reason}")
        self.url = url
        self.reason = reason


def as_int(value: Any) -> int:
    """An integer field as sent by the node (numbers above 2^53 arrive as strings)."""
    if isinstance(value, bool):
        raise TypeError("a bool is not an integer field")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value)
    raise TypeError(f"not an integer field: {value!r}")


def tx_hex(tx: bytes | str) -> str:
    """Transactions go over the wire as lower-case hex."""
    return tx.hex() if isinstance(tx, (bytes, bytearray)) else tx.lower().removeprefix("0x")


def error_from_answer(status: int, body: bytes, content_type: str = "") -> RpcError:
    """Build the ``RpcError`` for a non-2xx answer (JSON or msgpack), tolerating bodies
    that are not ours."""
    try:
        doc = msgpack.unpackb(body, raw=False) if content_type == MSGPACK else json.loads(body)
        err = doc["error"]
        return RpcError(int(err["code"]), str(err["name"]), str(err.get("message", "")), status)
    except Exception:  # any undecodable or foreign body: report it as text
        text = body.decode("utf-8", "replace").strip()[:200]
        return RpcError(-1, f"HTTP_{status}", text, status)


class _Answers:
    """How many 2xx answers this process decoded: a tool that fails on an answer's shape
    after reading one says so (``BAD_ANSWER``) rather than calling it its own bug."""

    decoded = 0


def answers_decoded() -> int:
    return _Answers.decoded


def parse_packed_answer(status: int, body: bytes, content_type: str) -> Any:
    """A 2xx msgpack answer, decoded (bin stays bytes), else RpcError."""
    if not 200 <= status < 300:
        raise error_from_answer(status, body, content_type)
    if content_type != MSGPACK:
        raise RpcError(-1, "BAD_ANSWER", f"node sent {content_type or 'no content type'}, not msgpack", status)
    try:
        doc = msgpack.unpackb(body, raw=False)
    except Exception:
        raise RpcError(-1, "BAD_ANSWER", "node sent undecodable msgpack", status) from None
    _Answers.decoded += 1
    return doc


def parse_answer(status: int, body: bytes) -> Json:
    """A 2xx answer's JSON object (every JSON endpoint answers an object), else RpcError."""
    if not 200 <= status < 300:
        raise error_from_answer(status, body)
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
        raise RpcError(-1, "BAD_ANSWER", f"node sent non-JSON: {body[:200]!r}", status) from None
    if not isinstance(doc, dict):
        raise RpcError(-1, "BAD_ANSWER", f"node sent a JSON {type(doc).__name__}, not an object", status)
    _Answers.decoded += 1
    return doc


def _query(params: dict[str, Any]) -> str:
    clean = {k: v for k, v in params.items() if v is not None}
    return ("?" + urllib.parse.urlencode(clean)) if clean else ""


class Client:
    """Blocking client; one instance per node URL. Cheap: no connection is held open."""

    def __init__(self, url: str = DEFAULT_URL, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    # ------------------------------------------------------------------ transport
    def send(self, method: str, path: str, params: dict[str, Any] | None = None,
             body: Any = None, timeout: float | None = None) -> bytes:
        """One HTTP exchange; returns the 2xx body or raises RpcError / NodeUnreachable."""
        url = self.url + path + _query(params or {})
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                return bytes(resp.read())
        except urllib.error.HTTPError as err:
            raise error_from_answer(err.code, err.read()) from None
        except urllib.error.URLError as err:
            raise NodeUnreachable(self.url, str(err.reason)) from None
        except (TimeoutError, ConnectionError) as err:
            raise NodeUnreachable(self.url, f"{type(err).__name__}: {err}") from None

    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                body: Any = None, timeout: float | None = None) -> Json:
        return parse_answer(200, self.send(method, path, params, body, timeout))

    def get(self, path: str, **params: Any) -> Json:
        return self.request("GET", path, params)

    def post(self, path: str, body: Any, timeout: float | None = None) -> Json:
        return self.request("POST", path, body=body, timeout=timeout)

    # ------------------------------------------------------------------ endpoints
    def health(self) -> Json:
        return self.get("/health")

    def status(self) -> Json:
        return self.get("/status")

    def validators(self) -> Json:
        return self.get("/validators")

    def genesis(self) -> Json:
        return self.get("/genesis")

    def net_info(self) -> Json:
        return self.get("/net_info")

    def block(self, height: int) -> Json:
        return self.get("/block", height=height)

    def evidence(self, height: int | None = None, limit: int | None = None) -> Json:
        """Committed equivocation evidence (newest first, or block ``height``'s) and the node's pending."""
        params = {k: v for k, v in (("height", height), ("limit", limit)) if v is not None}
        return self.get("/evidence", **params)

    def block_results(self, height: int) -> Json:
        return self.get("/block_results", height=height)

    def blocks(self, start: int, end: int) -> Json:
        return self.get("/blocks", **{"from": start, "to": end})

    def tx(self, tx_hash: bytes | str) -> Json:
        return self.get("/tx", hash=tx_hex(tx_hash))

    def broadcast_tx_sync(self, tx: bytes | str) -> Json:
        return self.post("/broadcast_tx_sync", {"tx": tx_hex(tx)})

    def broadcast_tx_commit(self, tx: bytes | str, timeout_ms: int = 10_000) -> Json:
        body = {"tx": tx_hex(tx), "timeout_ms": timeout_ms}
        # the HTTP timeout must outlast the node's own commit wait, or we'd report
        # "unreachable" for a node that is merely waiting for the block
        return self.post("/broadcast_tx_commit", body, timeout=timeout_ms / 1000 + self.timeout)

    def broadcast_txs(self, txs: Iterable[bytes | str]) -> Json:
        items = [tx_hex(t) for t in txs]
        if len(items) > MAX_BATCH_TXS:
            raise ValueError(f"/broadcast_txs takes at most {MAX_BATCH_TXS} txs")
        return self.post("/broadcast_txs", {"txs": items})

    def markets(self) -> Json:
        return self.get("/markets")

    def assets(self) -> Json:
        return self.get("/assets")

    def book(self, market: int | str, depth: int = 20) -> Json:
        return self.get("/book", market=market, depth=depth)

    def account(self, address: str) -> Json:
        return self.get("/account", address=address)

    def orders(self, address: str) -> Json:
        return self.get("/orders", address=address)

    def triggers(self, address: str) -> Json:
        return self.get("/triggers", address=address)

    def fills(self, address: str, limit: int = 100) -> Json:
        return self.get("/fills", address=address, limit=limit)

    def history(self, address: str, limit: int = 100, before: str | None = None, kinds: str | None = None,
                start: int | None = None, end: int | None = None) -> Json:
        """An account's events newest first; ``before`` is a previous page's ``next``."""
        params: dict[str, object] = {"address": address, "limit": limit}
        for name, value in (("before", before), ("kinds", kinds), ("start", start), ("end", end)):
            if value is not None:
                params[name] = value
        return self.get("/history", **params)

    def order_history(self, address: str, limit: int = 100, before: int | None = None) -> Json:
        if before is None:
            return self.get("/orders/history", address=address, limit=limit)
        return self.get("/orders/history", address=address, limit=limit, before=before)

    def candles(self, market: str, interval: str = "1m", start: int | None = None, end: int | None = None,
                limit: int = 500) -> Json:
        params: dict[str, object] = {"market": market, "interval": interval, "limit": limit}
        if start is not None:
            params["start"] = start
        if end is not None:
            params["end"] = end
        return self.get("/candles", **params)

    def order_status(self, oid: int | None = None, address: str | None = None, cloid: bytes | None = None) -> Json:
        """By ``oid``, or by ``address`` and ``cloid``."""
        if oid is not None:
            return self.get("/order_status", oid=oid)
        return self.get("/order_status", address=address, cloid=(cloid or b"").hex())

    def metrics(self) -> str:
        """Prometheus text, the one endpoint that is not JSON."""
        return self.send("GET", "/metrics").decode()

    # ------------------------------------------------------------------ helpers
    def wait_for_height(self, height: int, timeout: float = 30.0, interval: float = 0.1) -> Json:
        """Poll ``/status`` until ``latest_height >= height``; return that status.

        A node that is still starting (connection refused) is waited for too; only the
        deadline ends the wait, with a ``TimeoutError`` naming the last height seen.
        """
        deadline = time.monotonic() + timeout
        last: str = "no answer"
        while True:
            try:
                st = self.status()
                if as_int(st.get("latest_height", 0)) >= height:
                    return st
                last = f"height {st.get('latest_height')}"
            except NodeUnreachable as err:
                last = err.reason
            except RpcError as err:
                last = str(err)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.url} did not reach height {height} within {timeout:.0f}s ({last})")
            time.sleep(interval)


class AsyncClient:
    """aiohttp client for many concurrent requests; use as ``async with AsyncClient(url)``.

    Pass ``session`` to share one connection pool between clients of several nodes.
    """

    def __init__(self, url: str = DEFAULT_URL, timeout: float = DEFAULT_TIMEOUT_S,
                 session: Any = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> AsyncClient:
        self._ensure_session()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _ensure_session(self) -> Any:
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                      body: Any = None, timeout: float | None = None) -> Json:
        import aiohttp

        session = self._ensure_session()
        clean = {k: str(v) for k, v in (params or {}).items() if v is not None}
        try:
            async with session.request(
                method, self.url + path, params=clean or None, json=body,
                timeout=aiohttp.ClientTimeout(total=timeout or self.timeout),
            ) as resp:
                data = await resp.read()
                return parse_answer(resp.status, data)
        except aiohttp.ClientConnectionError as err:
            raise NodeUnreachable(self.url, f"{type(err).__name__}: {err}") from None
        except TimeoutError:
            raise NodeUnreachable(self.url, "timed out") from None

    async def request_packed(self, method: str, path: str, params: dict[str, Any] | None = None,
                             body: Any = None, timeout: float | None = None) -> Any:
        """One exchange in msgpack: ``body`` (if any) is sent packed, the answer is unpacked."""
        import aiohttp

        session = self._ensure_session()
        clean = {k: str(v) for k, v in (params or {}).items() if v is not None}
        headers = {"Accept": MSGPACK}
        data = None
        if body is not None:
            data = msgpack.packb(body, use_bin_type=True)
            headers["Content-Type"] = MSGPACK
        try:
            async with session.request(
                method, self.url + path, params=clean or None, data=data, headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout or self.timeout),
            ) as resp:
                answer = await resp.read()
                return parse_packed_answer(resp.status, answer, resp.content_type)
        except aiohttp.ClientConnectionError as err:
            raise NodeUnreachable(self.url, f"{type(err).__name__}: {err}") from None
        except TimeoutError:
            raise NodeUnreachable(self.url, "timed out") from None

    async def get(self, path: str, **params: Any) -> Json:
        return await self.request("GET", path, params)

    async def post(self, path: str, body: Any, timeout: float | None = None) -> Json:
        return await self.request("POST", path, body=body, timeout=timeout)

    async def health(self) -> Json:
        return await self.get("/health")

    async def status(self) -> Json:
        return await self.get("/status")

    async def validators(self) -> Json:
        return await self.get("/validators")

    async def genesis(self) -> Json:
        return await self.get("/genesis")

    async def net_info(self) -> Json:
        return await self.get("/net_info")

    async def block(self, height: int) -> Json:
        return await self.get("/block", height=height)

    async def block_results(self, height: int) -> Json:
        return await self.get("/block_results", height=height)

    async def blocks(self, start: int, end: int) -> Json:
        return await self.get("/blocks", **{"from": start, "to": end})

    async def tx(self, tx_hash: bytes | str) -> Json:
        return await self.get("/tx", hash=tx_hex(tx_hash))

    async def broadcast_tx_sync(self, tx: bytes | str) -> Json:
        return await self.post("/broadcast_tx_sync", {"tx": tx_hex(tx)})

    async def broadcast_tx_commit(self, tx: bytes | str, timeout_ms: int = 10_000) -> Json:
        body = {"tx": tx_hex(tx), "timeout_ms": timeout_ms}
        return await self.post("/broadcast_tx_commit", body, timeout=timeout_ms / 1000 + self.timeout)

    async def broadcast_txs(self, txs: Iterable[bytes | str]) -> Json:
        items = [tx_hex(t) for t in txs]
        if len(items) > MAX_BATCH_TXS:
            raise ValueError(f"/broadcast_txs takes at most {MAX_BATCH_TXS} txs")
        return await self.post("/broadcast_txs", {"txs": items})

    async def broadcast_txs_packed(self, txs: Sequence[bytes]) -> list[tuple[bytes, int, str]]:
        """``/broadcast_txs`` in msgpack: one ``(hash, code, message)`` per tx, in order."""
        if len(txs) > MAX_BATCH_TXS:
            raise ValueError(f"/broadcast_txs takes at most {MAX_BATCH_TXS} txs")
        doc = await self.request_packed("POST", "/broadcast_txs", body=list(txs))
        try:
            return [(h, code, message) for h, code, message in doc["results"]]
        except (KeyError, TypeError, ValueError):
            raise RpcError(-1, "BAD_ANSWER", "unexpected /broadcast_txs answer", 200) from None

    async def commits(self, start: int, end: int | None = None, wait_ms: int = 0) -> Json:
        """``/commits`` (JSON): per height, the committed tx hashes and receipt codes."""
        return await self.get("/commits", **{"from": start, "to": end, "wait_ms": wait_ms or None})

    async def commits_packed(self, start: int, end: int | None = None,
                             wait_ms: int = 0) -> tuple[int, list[tuple[int, bytes, bytes]]]:
        """``/commits`` in msgpack: (latest height with results, [(height, hashes, codes)]),
        hashes 32 bytes each concatenated, codes big-endian uint16s (``unpack_codes``)."""
        doc = await self.request_packed("GET", "/commits", {"from": start, "to": end, "wait_ms": wait_ms or None},
                                        timeout=wait_ms / 1000 + self.timeout)
        try:
            return int(doc["latest_height"]), [(int(h), bytes(hs), bytes(cs)) for h, hs, cs in doc["blocks"]]
        except (KeyError, TypeError, ValueError):
            raise RpcError(-1, "BAD_ANSWER", "unexpected /commits answer", 200) from None

    async def markets(self) -> Json:
        return await self.get("/markets")

    async def assets(self) -> Json:
        return await self.get("/assets")

    async def book(self, market: int | str, depth: int = 20) -> Json:
        return await self.get("/book", market=market, depth=depth)

    async def account(self, address: str) -> Json:
        return await self.get("/account", address=address)

    async def orders(self, address: str) -> Json:
        return await self.get("/orders", address=address)

    async def triggers(self, address: str) -> Json:
        return await self.get("/triggers", address=address)

    async def fills(self, address: str, limit: int = 100) -> Json:
        return await self.get("/fills", address=address, limit=limit)

    async def wait_for_height(self, height: int, timeout: float = 30.0, interval: float = 0.1) -> Json:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            try:
                st = await self.status()
                if as_int(st.get("latest_height", 0)) >= height:
                    return st
                last = f"height {st.get('latest_height')}"
            except NodeUnreachable as err:
                last = err.reason
            except RpcError as err:
                last = str(err)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.url} did not reach height {height} within {timeout:.0f}s ({last})")
            await asyncio.sleep(interval)

    async def subscribe(self, topic: str, **filters: Any) -> AsyncIterator[Json]:
        """Yield the ``{"topic","data"}`` pushes of ``/websocket`` until the socket closes.

        ``filters`` are the topic's keys (``market=ID`` for trades/book, ``address=`` for
        account). The subscription ack is consumed here; an error answer raises RpcError.
        """
        import aiohttp

        session = self._ensure_session()
        ws_url = self.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/websocket"
        try:
            async with session.ws_connect(ws_url, heartbeat=30) as ws:
                await ws.send_json({"method": "subscribe", "topic": topic, **filters})
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                            break
                        continue
                    doc = json.loads(msg.data)
                    if "error" in doc:
                        err = doc["error"]
                        raise RpcError(int(err.get("code", -1)), str(err.get("name", "ERROR")),
                                       str(err.get("message", "")), 200)
                    if "topic" in doc:
                        yield doc
        except aiohttp.ClientConnectionError as err:
            raise NodeUnreachable(self.url, f"{type(err).__name__}: {err}") from None
