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


def array_header(data: bytes, p: int = 0, end: int | None = None) -> tuple[int, int] | None:
    """The msgpack array header at ``data[p:end]``: the element count it declares and where
    its first element starts, or None if it is no (complete) array header. Read off the
    bytes, before anything is unpacked (node/mempool_journal.py reads frames by it too)."""
    end = len(data) if end is None else end
    if p >= end:
        return None
    first = data[p]
    if 0x90 <= first <= 0x9F:
        return first & 0x0F, p + 1
    if first == 0xDC and p + 3 <= end:
        return int.from_bytes(data[p + 1:p + 3], "big"), p + 3
    if first == 0xDD and p + 5 <= end:
        return int.from_bytes(data[p + 1:p + 5], "big"), p + 5
    return None


def unpack_tx_list(body: bytes, max_items: int) -> list[bytes]:
    """A msgpack array of at most ``max_items`` raw transactions (bin), else ``BadBody``.

    Only the array and its items are checked here; each tx is then decoded strictly by the
    mempool like any other submission. The count is read off the array header first, so an
    oversize batch is refused before anything is unpacked."""
    header = array_header(body)
    if header is None:
        raise BadBody("body must be a msgpack array of transactions (bin)")
    if header[0] > max_items:
        raise BadBody(f"at most {max_items} transactions per call", too_many=True)
    try:
        txs = msgpack.unpackb(body, raw=False, use_list=True, strict_map_key=True,
                              max_array_len=max_items, max_map_len=0, max_ext_len=0)
    except Exception as err:  # msgpack raises many types on garbage; all mean "malformed"
        raise BadBody(f"body is not msgpack: {type(err).__name__}") from None
    if type(txs) is not list or any(type(tx) is not bytes for tx in txs):
        raise BadBody("body must be a msgpack array of transactions (bin)")
    return txs
