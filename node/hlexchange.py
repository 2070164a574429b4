"""Hyperliquid's ``POST /exchange`` (issue 26): signed actions in, Hyperliquid's answers out.

A client of Hyperliquid's API (its Python SDK, ccxt) posts ``{action, nonce, signature,
vaultAddress?, expiresAfter?}``. The node does not translate the signature: the body becomes
a Hyperliquid-signed transaction (state/hltx.py) that travels on chain as it was signed.
Before anything is broadcast, everything a block would refuse at once is refused here, with
the same code: the body's shape, the signature (a signer the chain never saw is
``UNKNOWN_ACCOUNT``: any signature recovers *some* address), the nonce window, and the
action's mapping onto native actions (state/hlexec.py: unknown asset, a price or size off
Hyperliquid's decimal rules). So a client's typo costs no nonce and no block space. What
passes is admitted into the mempool exactly as ``/broadcast_tx_commit`` admits a tx, and the
answer waits for the committed receipt, because Hyperliquid's answer says what happened
(an order rested, filled, or was refused), not merely that it was received.

Answers, in Hyperliquid's shapes (its SDK hands them to the caller; ccxt's
``handle_errors`` and ``create_orders`` read them):

- ``order`` and ``batchModify``: ``{"status": "ok", "response": {"type": "order", "data":
  {"statuses": [...]}}}``, one status per order: ``{"resting": {"oid"}}``, ``{"filled":
  {"totalSz", "avgPx", "oid"}}`` (``cloid`` added when the order has one), ``{"error":
  message}``, ``"waitingForTrigger"`` for a trigger order that waits, ``"waitingForFill"``
  for a TP/SL child whose parent has not filled.
- ``cancel`` / ``cancelByCloid``: ``{"type": "cancel", "data": {"statuses": ["success" |
  {"error": message}]}}``.
- ``createSubAccount``: ``{"type": "createSubAccount", "data": "0x<sub-account>"}``.
- every other action: ``{"type": "default"}``.
- a refused transaction: ``{"status": "err", "response": message, "code": <Code>,
  "name": "<CODE_NAME>"}`` with HTTP 200, as Hyperliquid answers refused actions; a body
  that is not a signable request (bad JSON, unknown action type, missing fields) gets the
  same shape with HTTP 422, Hyperliquid's status for an undeserializable body, plus
  ``msg`` (the SDK's ``ClientError`` reads ``code`` and ``msg`` of a 4xx JSON answer).
- no block within the wait: ``status: err`` with ``NOT_READY``, the tx hash, and the
  warning that it may still land (it is in the mempool). Resending the same body is safe:
  once committed it is answered from its stored receipt, before then it waits again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from aiohttp import web

from node.hlinfo import Units, ratio
from node.jsonfmt import receipt_from_list
from node.mempool import verify_raw
from node.stategate import NodeStopping, StateGate
from state import hlassets, hlexec
from state.errors import Code, TxError
from state.hltx import tx_from_request
from state.machine import decode_verified, must_admit
from state.tx import ActAs, Batch, Cancel, SignedTx, tx_hash

if TYPE_CHECKING:
    from node.mempool import Admission
    from state.exchange import Exchange
    from state.machine import StateMachine

HTTP_UNPROCESSABLE: Final = 422
WAIT_S: Final = 15.0
#: codes of a body no client could have signed: Hyperliquid refuses those as undeserializable
_UNDESERIALIZABLE: Final = frozenset({Code.MALFORMED, Code.UNKNOWN_TX_TYPE})
_CANCEL_TYPES: Final = frozenset({"cancel", "cancelByCloid"})
IOC_MISSED: Final = "Order could not immediately match against any resting orders."
REDUCE_ONLY_MISSED: Final = "Reduce only order would increase position."
CHILD_DROPPED: Final = "The parent order neither rested nor filled: its TP/SL was cancelled."


class Committed(Protocol):
    """What the endpoint reads of the block store (node/blockstore.py)."""

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None: ...

    def results(self, height: int) -> list[Any] | None: ...


class CommitWaiters(Protocol):
    """node/execution.py's commit waiters, and the gate to wait at before reading the state."""

    @property
    def gate(self) -> StateGate: ...

    def wait_for(self, h: bytes) -> asyncio.Future[tuple[int, int, dict[str, Any]]]: ...

    def forget_waiter(self, h: bytes, fut: asyncio.Future[Any]) -> None: ...


class ExchangeHost(Protocol):
    """What the endpoint uses of a node (node/ports.py ``RpcHost`` has all of it)."""

    @property
    def sm(self) -> StateMachine: ...

    @property
    def blocks(self) -> Committed: ...

    @property
    def execution(self) -> CommitWaiters: ...

    async def submit(self, raws: list[bytes]) -> list[Admission]: ...


class Refusal(Exception):
    """A request answered ``status: err`` (``http`` 422 for an undeserializable body)."""

    def __init__(self, code: Code, message: str, http: int = 200) -> None:
        super().__init__(message)
        self.code, self.message, self.http = code, message, http


def error_body(code: Code, message: str, http: int = 200) -> dict[str, Any]:
    doc: dict[str, Any] = {"status": "err", "response": message, "code": int(code), "name": code.name}
    if http >= 400:
        doc["msg"] = message
    return doc


# ---------------------------------------------------------------------------- before the block
@dataclass(frozen=True, slots=True)
class Prepared:
    """A request's decoded transaction (checked as a block would check it, unless it is
    committed already). ``groups``: for a
    batchModify, how many native actions each modify became (a modify that changes the
    side, tif, reduce-only flag or cloid is a cancel and a new order), to read its results."""

    raw: bytes
    tx: SignedTx
    groups: tuple[int, ...]


def parse_body(text: bytes) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise Refusal(Code.MALFORMED, "Failed to deserialize the JSON body: not valid JSON", HTTP_UNPROCESSABLE) from None


def request_tx(body: Any) -> bytes:
    """The on-chain bytes of a request body (state/hltx.py ``tx_from_request``)."""
    try:
        return tx_from_request(body)
    except TxError as err:
        raise Refusal(err.code, err.message, HTTP_UNPROCESSABLE if err.code in _UNDESERIALIZABLE else 200) from None


def prepare(ex: Exchange, raw: bytes, chain_id: str, *, fresh: bool = True,
            decoded: SignedTx | TxError | None = None) -> Prepared:
    """``raw`` decoded (or ``decoded``, what a verification thread made of it), and
    (``fresh``: not committed yet) dry-run against the committed state ``ex``: the mempool's
    admission and the action's mapping. Raises Refusal with the code a block would give. A
    committed tx is only decoded (its receipt is the answer)."""
    try:
        if isinstance(decoded, TxError):
            raise decoded
        tx = decoded if decoded is not None else decode_verified(raw, chain_id)
        if fresh:
            must_admit(ex, tx, ex.time_ms)  # the mempool's own check: unknown signer, nonce window
    except TxError as err:
        raise Refusal(err.code, err.message) from None
    try:
        native = hlexec.resolve(ex, tx)
    except TxError as err:
        if fresh:
            raise Refusal(err.code, err.message) from None
        native = None
    groups = modify_groups(native) if tx.action.type == "batchModify" and native is not None else ()
    return Prepared(raw, tx, groups)


def modify_groups(native: Any) -> tuple[int, ...]:
    """How many native actions each modify of a resolved batchModify became: 2 for a cancel
    and its new order (the only place a batchModify yields a ``Cancel``), 1 otherwise."""
    if isinstance(native, ActAs):
        native = native.action
    items = native.actions if isinstance(native, Batch) else (native,)
    groups: list[int] = []
    i = 0
    while i < len(items):
        n = 2 if isinstance(items[i], Cancel) else 1
        groups.append(n)
        i += n
    return tuple(groups)


# ---------------------------------------------------------------------------- after the block
def _fills_avg_px(ex: Exchange, market: int, fills: list[dict[str, Any]]) -> str:
    units = Units(ex, market)
    lots = sum(int(f["size"]) for f in fills)
    notional_ticks = sum(int(f["price"]) * int(f["size"]) for f in fills)
    return ratio(notional_ticks * units.tick_size, lots * 10**units.quote_dec)


def _with_cloid(doc: dict[str, Any], wire: dict[str, Any]) -> dict[str, Any]:
    if wire.get("c") is not None:
        doc["cloid"] = wire["c"]
    return doc


def order_status(ex: Exchange, wire: dict[str, Any], result: dict[str, Any], *, child: bool = False,
                 parent_filled: bool = False) -> Any:
    """One order's Hyperliquid status from its action result (node/jsonfmt.py's form)."""
    if result["code"] == Code.IOC_NO_FILL:  # Hyperliquid's words, which clients match on
        return {"error": f"{IOC_MISSED} asset={wire.get('a')}"}
    if result["code"] != Code.OK:
        return {"error": result["message"] or result["name"]}
    status, oid, filled = result["status"], result["oid"], int(result["filled"])
    if status == "waiting":
        return "waitingForFill" if child and not parent_filled else "waitingForTrigger"
    if status == "resting":
        return {"resting": _with_cloid({"oid": oid}, wire)}
    if filled and status in ("filled", "cancelled"):
        market = hlassets.market_of_asset(ex, wire.get("a"))
        return {"filled": _with_cloid({"totalSz": Units(ex, market).sz(filled),
                                       "avgPx": _fills_avg_px(ex, market, result["fills"]), "oid": oid}, wire)}
    if child:
        return {"error": CHILD_DROPPED}
    if status == "cancelled" and result["message"]:  # (a taker stopped by lapsed orders: state/matching.py)
        return {"error": result["message"]}
    if status == "cancelled":  # nothing traded: a reduce-only order with no position left, or an IOC
        return {"error": REDUCE_ONLY_MISSED if wire.get("r") is True else IOC_MISSED}
    return {"error": f"unexpected order status {status!r}"}


def _order_statuses(ex: Exchange, body: dict[str, Any], results: list[dict[str, Any]]) -> list[Any]:
    wires: list[dict[str, Any]] = body["orders"]
    if len(results) != len(wires):  # the action failed as a whole (a group's check): each order says so
        first = results[0] if results else {"message": "refused", "name": "REJECTED"}
        return [{"error": first["message"] or first["name"]} for _ in wires]
    grouping = body.get("grouping", "na")
    if grouping == "normalTpsl":
        parent = order_status(ex, wires[0], results[0])
        filled = isinstance(parent, dict) and "filled" in parent
        return [parent, *(order_status(ex, w, r, child=True, parent_filled=filled)
                          for w, r in zip(wires[1:], results[1:], strict=True))]
    return [order_status(ex, w, r) for w, r in zip(wires, results, strict=True)]


def _modify_statuses(ex: Exchange, body: dict[str, Any], results: list[dict[str, Any]],
                     groups: tuple[int, ...]) -> list[Any]:
    modifies: list[dict[str, Any]] = body["modifies"]
    if sum(groups) != len(results):  # the book moved between the dry run and the block: one each
        groups = tuple(1 for _ in results) if len(results) == len(modifies) else ()
    if not groups:
        first = results[0] if results else {"message": "refused", "name": "REJECTED"}
        return [{"error": first["message"] or first["name"]} for _ in modifies]
    out: list[Any] = []
    at = 0
    for m, n in zip(modifies, groups, strict=True):
        mine = results[at: at + n]
        at += n
        failed = next((r for r in mine if r["code"] != Code.OK), None)
        out.append(order_status(ex, m["order"], failed or mine[-1]))
    return out


def answer(ex: Exchange, prepared: Prepared, receipt: dict[str, Any]) -> dict[str, Any]:
    """Hyperliquid's answer to a committed transaction, from its receipt (node/jsonfmt.py
    ``receipt_from_list``) and the action that was signed."""
    kind = prepared.tx.action.type
    body = prepared.tx.action.body
    results: list[dict[str, Any]] = receipt["results"]
    if receipt["code"] != Code.OK and not results:
        return error_body(Code(receipt["code"]), receipt["message"] or receipt["name"])
    if kind == "order":
        return _ok("order", {"statuses": _order_statuses(ex, body, results)})
    if kind == "batchModify":
        return _ok("order", {"statuses": _modify_statuses(ex, body, results, prepared.groups)})
    if kind in _CANCEL_TYPES:
        return _ok("cancel", {"statuses": ["success" if r["code"] == Code.OK else {"error": r["message"] or r["name"]}
                                           for r in results]})
    failed = next((r for r in results if r["code"] != Code.OK), None)
    if receipt["code"] != Code.OK or failed is not None:
        code, message = (Code(failed["code"]), failed["message"]) if failed else (Code(receipt["code"]), receipt["message"])
        return error_body(code, message or code.name)
    if kind == "createSubAccount":
        return _ok("createSubAccount", "0x" + results[0]["message"])
    return {"status": "ok", "response": {"type": "default"}}


def _ok(kind: str, data: Any) -> dict[str, Any]:
    return {"status": "ok", "response": {"type": kind, "data": data}}


# ---------------------------------------------------------------------------- the endpoint
def _committed(blocks: Committed, h: bytes) -> dict[str, Any] | None:
    loc = blocks.tx_location(h)
    if loc is None:
        return None
    record = blocks.results(loc[0])
    return None if record is None else receipt_from_list(record[1][loc[1]])


async def submit_and_wait(host: ExchangeHost, prepared: Prepared, wait_s: float = WAIT_S) -> dict[str, Any]:
    """Admit ``prepared`` as ``/broadcast_tx_commit`` does and answer from its receipt."""
    raw = prepared.raw
    h = tx_hash(raw)
    fut = host.execution.wait_for(h)
    (adm,) = await host.submit([raw])
    if not adm.ok and adm.code != Code.DUPLICATE_TX:
        host.execution.forget_waiter(h, fut)
        # handle() put the verified tx in the mempool's cache so admission would not recover
        # the signer twice; a refused tx must not stay there (~50 KiB for a refused 64-order
        # action, and the cache holds up to VERIFIED_CACHE of them: gigabytes)
        mempool = getattr(host, "mempool", None)
        if mempool is not None and h not in mempool.pending:
            mempool.verified.pop(raw, None)
        return error_body(adm.code, adm.message)
    if adm.code == Code.DUPLICATE_TX and (done := _committed(host.blocks, h)) is not None:
        host.execution.forget_waiter(h, fut)
        await host.execution.gate.wait_open()
        return answer(host.sm.ex, prepared, done)
    try:
        _height, _index, receipt = await asyncio.wait_for(fut, wait_s)
    except TimeoutError:
        host.execution.forget_waiter(h, fut)
        doc = error_body(Code.NOT_READY, f"not committed within {wait_s:g} s; transaction 0x{h.hex()} is in the "
                                         "mempool and may still land (check /tx?hash=)")
        doc["hash"] = "0x" + h.hex()
        return doc
    except NodeStopping:
        doc = error_body(Code.NOT_READY, f"this node is stopping before it saw transaction 0x{h.hex()} committed; "
                                         "it may still be: check /tx?hash= on another node")
        doc["hash"] = "0x" + h.hex()
        return doc
    try:
        await host.execution.gate.wait_open()
    except NodeStopping:
        return error_body(Code.NOT_READY, f"this node is stopping; transaction 0x{h.hex()} committed at height "
                                          f"{_height}: check /tx?hash= on another node")
    return answer(host.sm.ex, prepared, receipt)


async def handle(host: ExchangeHost, request: web.Request) -> web.Response:
    """``POST /exchange``."""
    status, doc = await exchange_answer(host, await request.read())
    return web.json_response(doc, status=status)


async def exchange_answer(host: ExchangeHost, body: bytes) -> tuple[int, dict[str, Any]]:
    """``POST /exchange``'s answer to ``body``: HTTP status and document. Apart from the
    request, so the RPC front-end (node/frontend/) can hand the node the body alone."""
    ex = host.sm.ex
    chain_id = host.sm.genesis.chain_id
    try:
        raw = request_tx(parse_body(body))
        done = _committed(host.blocks, tx_hash(raw))  # a client resending after a timeout
        # recovering the signer (~50 µs) runs on the verification threads, not the event loop
        pool = getattr(host, "verify_pool", None)
        decoded = await asyncio.get_running_loop().run_in_executor(pool, verify_raw, raw, chain_id)
        await host.execution.gate.wait_open()  # prepare reads the state (node/stategate.py)
        prepared = prepare(ex, raw, chain_id, fresh=done is None, decoded=decoded)
    except Refusal as err:
        return err.http, error_body(err.code, err.message, err.http)
    mempool = getattr(host, "mempool", None)
    if mempool is not None:
        mempool.remember(prepared.tx)  # admission finds it verified: never twice
    if done is not None:
        return 200, answer(ex, prepared, done)
    return 200, await submit_and_wait(host, prepared)


def route(host: ExchangeHost) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler node/rpc.py registers on ``POST /exchange``."""

    async def exchange(request: web.Request) -> web.Response:
        return await handle(host, request)

    return exchange
