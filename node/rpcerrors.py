"""The RPC's error answers and the body checks every route shares.

Shared by the node's RPC server (node/rpc.py) and its front-end process
(node/frontend/), which answers the same errors in the same shapes: a JSON (or, for a
msgpack client, msgpack) object ``{"error": {"code", "name", "message"}}`` with a stable
``state.errors.Code``, and never a traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from node.stategate import NodeStopping
from node.submitlimit import NODE_REFUSED as submit_node_refused
from node.submitlimit import REFUSED as submit_refused
from node.wire import packed_response, wants_msgpack
from state.errors import Code
from state.keys import bytes_from_hex

log = logging.getLogger("bookchain.rpc")

MAX_BODY: Final = 8 * 1024 * 1024
MAX_BATCH: Final = 5000
RETRYABLE: Final = (Code.MEMPOOL_FULL, Code.MEMPOOL_BUSY)  # refusals a client retries: HTTP 503


class RpcError(Exception):
    """An error answer; ``extra`` fields join the error object (e.g. /proof's kept range)."""

    def __init__(self, status: int, code: Code, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def error_response(status: int, code: Code, message: str, *, packed: bool = False,
                   extra: dict[str, Any] | None = None) -> web.Response:
    doc = {"error": {"code": int(code), "name": code.name, "message": message, **(extra or {})}}
    return packed_response(doc, status) if packed else web.json_response(doc, status=status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    packed = wants_msgpack(request)
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, Code.OVERSIZE, f"request body exceeds {MAX_BODY} bytes", packed=packed)
    except web.HTTPNotFound:
        return error_response(404, Code.NOT_FOUND, f"no route {request.path}", packed=packed)
    except web.HTTPMethodNotAllowed:
        return error_response(405, Code.METHOD_NOT_ALLOWED, f"{request.method} not allowed on {request.path}", packed=packed)
    except web.HTTPException:
        raise
    except Exception as exc:
        err = as_rpc_error(exc, request.path)
        return error_response(err.status, err.code, err.message, packed=packed, extra=err.extra)


def as_rpc_error(exc: Exception, route: str) -> RpcError:
    """The answer to what a handler of ``route`` raised: its own, if it is an ``RpcError``;
    503 ``NOT_READY`` while the node stops; else a bug, which must not take the node down:
    logged, answered 500 ``INTERNAL_ERROR``. The server's middleware and the node's side of
    its front-end (node/frontend/process.py) answer alike through this."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, NodeStopping):
        return RpcError(503, Code.NOT_READY, "this node is stopping")
    log.error("rpc handler failed on %s", route, exc_info=exc)
    return RpcError(500, Code.INTERNAL_ERROR, "internal error")


def byte_refusal(code: Code) -> tuple[int, Code, str]:
    """(HTTP status, code, message) of a request the byte rate refuses (node/submitlimit.py):
    429 for a client over its own rate, 503 when all clients together are over the node's."""
    if code == Code.RATE_LIMITED:
        return 429, code, submit_refused
    return 503, code, submit_node_refused


async def json_body(request: web.Request) -> dict[str, Any]:
    return json_object(await request.read())


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object, or 400 ``MALFORMED``."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deeply
        raise RpcError(400, Code.MALFORMED, "body is not valid JSON") from None
    if not isinstance(body, dict):
        raise RpcError(400, Code.MALFORMED, "body must be a JSON object")
    return body


def tx_bytes(value: Any) -> bytes:
    """A hex string's transaction bytes, or 400 ``MALFORMED``."""
    if not isinstance(value, str):
        raise RpcError(400, Code.MALFORMED, "tx must be a hex string")
    try:
        return bytes_from_hex(value.removeprefix("0x"))
    except ValueError:
        raise RpcError(400, Code.MALFORMED, "tx must be hex") from None
