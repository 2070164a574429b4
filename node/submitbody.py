"""The bodies and answers of ``POST /broadcast_tx_sync`` and ``POST /broadcast_txs``.

Both are a list of raw transactions in and one ``(hash, code, message)`` per transaction
out; nothing between the two needs the HTTP request. So the node's RPC (node/rpc.py) and
its front-end process (node/frontend/) share this: the front-end parses the body and
builds the answer in its own process, and only the raw transactions and the verdicts
cross to the node.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from aiohttp import web

from node.rpcerrors import MAX_BATCH, RETRYABLE, RpcError, json_object, tx_bytes
from node.wire import BadBody, packed_response, unpack_tx_list
from state.errors import Code

#: a transaction's verdict: its hash, its admission code, the message
Verdict = tuple[bytes, int, str]

SYNC: Final = "/broadcast_tx_sync"
BATCH: Final = "/broadcast_txs"
#: the JSON routes the front-end hands the node as a body (their answers are the node's JSON)
INFO: Final = "/info"
EXCHANGE: Final = "/exchange"


def sync_txs(raw_body: bytes) -> list[bytes]:
    """``/broadcast_tx_sync``'s JSON body ``{"tx": HEX}``: one raw tx, or ``RpcError``."""
    return [tx_bytes(json_object(raw_body).get("tx"))]


def batch_txs(raw_body: bytes, packed: bool) -> list[bytes]:
    """``/broadcast_txs``'s body, JSON ``{"txs": [HEX, ...]}`` or a msgpack array of bin
    (``packed``): at most ``MAX_BATCH`` raw txs, or ``RpcError``."""
    if packed:
        try:
            return unpack_tx_list(raw_body, MAX_BATCH)
        except BadBody as err:
            if err.too_many:
                raise RpcError(413, Code.BATCH_TOO_LARGE, str(err)) from None
            raise RpcError(400, Code.MALFORMED, str(err)) from None
    txs = json_object(raw_body).get("txs")
    if not isinstance(txs, list):
        raise RpcError(400, Code.MALFORMED, "txs must be a list of hex strings")
    if len(txs) > MAX_BATCH:
        raise RpcError(413, Code.BATCH_TOO_LARGE, f"at most {MAX_BATCH} transactions per call")
    return [tx_bytes(t) for t in txs]


def sync_answer(verdict: Verdict) -> web.Response:
    """One tx's answer; HTTP 503 for a refusal the client should retry."""
    tx_hash, code, message = verdict
    name = Code(code)
    return web.json_response({"hash": tx_hash.hex(), "code": code, "name": name.name, "message": message},
                             status=503 if name in RETRYABLE else 200)


def batch_answer(verdicts: Iterable[Verdict], packed: bool) -> web.Response:
    """A batch's answer: ``{"results": [...]}``, one entry per tx in order."""
    if packed:
        return packed_response({"results": [list(v) for v in verdicts]})
    return web.json_response({"results": [{"hash": h.hex(), "code": c, "name": Code(c).name, "message": m}
                                           for h, c, m in verdicts]})
