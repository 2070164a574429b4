"""The binary (msgpack) form of the RPC, for clients that move many transactions.

Why: at thousands of transactions per second the JSON form costs the node and the client
more than the work it carries: every raw tx travels as hex and every answer builds a
dict of four strings per tx. A request with ``Content-Type: application/msgpack`` (for
``POST /broadcast_txs``) or ``Accept: application/msgpack`` (for ``GET /commits``) is
answered in msgpack, errors included (``{"error": {"code", "name", "message"}}`` with
the same HTTP status and ``state.errors.Code`` as the JSON form). Shapes are in
node/API.md.
"""

from __future__ import annotations

from typing import Any

import msgpack
from aiohttp import web

MSGPACK = "application/msgpack"


def wants_msgpack(request: web.BaseRequest) -> bool:
    """The client sent msgpack or asked for it."""
    return request.content_type == MSGPACK or MSGPACK in request.headers.get("Accept", "")


def packed_response(doc: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgpack.packb(doc, use_bin_type=True), status=status, content_type=MSGPACK)


class BadBody(ValueError):
    """A msgpack body that is not a list of transactions; ``too_many`` for an oversize batch."""

    def __init__(self, message: str, *, too_many: bool = False) -> None:
        super().__init__(message)
        self.too_many = too_many


def _array_header_len(body: bytes) -> int | None:
    """The element count a msgpack array header declares, or None if it is no array."""
    if not body:
        return None
    first = body[0]
    if 0x90 <= first <= 0x9F:
        return first & 0x0F
    if first == 0xDC and len(body) >= 3:
        return int.from_bytes(body[1:3], "big")
    if first == 0xDD and len(body) >= 5:
        return int.from_bytes(body[1:5], "big")
    return None


def unpack_tx_list(body: bytes, max_items: int) -> list[bytes]:
    """A msgpack array of at most ``max_items`` raw transactions (bin), else ``BadBody``.

    Only the array and its items are checked here; each tx is then decoded strictly by the
    mempool like any other submission. The count is read off the array header first, so an
    oversize batch is refused before anything is unpacked."""
    declared = _array_header_len(body)
    if declared is None:
        raise BadBody("body must be a msgpack array of transactions (bin)")
    if declared > max_items:
        raise BadBody(f"at most {max_items} transactions per call", too_many=True)
    try:
        txs = msgpack.unpackb(body, raw=False, use_list=True, strict_map_key=True,
                              max_array_len=max_items, max_map_len=0, max_ext_len=0)
    except Exception as err:  # msgpack raises many types on garbage; all mean "malformed"
        raise BadBody(f"body is not msgpack: {type(err).__name__}") from None
    if type(txs) is not list or any(type(tx) is not bytes for tx in txs):
        raise BadBody("body must be a msgpack array of transactions (bin)")
    return txs
