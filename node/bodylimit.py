"""The byte rate of request bodies, as aiohttp middleware (node/submitlimit.py counts).

Whatever serves a node's clients over HTTP applies it before a body is read: the node's
RPC server (node/rpc.py) when it faces clients itself, its front-end process
(node/frontend/) when that does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from node.clientaddr import client_of
from node.rpcerrors import MAX_BODY, RpcError, byte_refusal, error_response
from node.submitlimit import SubmitLimit
from node.wire import wants_msgpack
from state.errors import Code


def body_rate_middleware(limit: SubmitLimit) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A request body, on any method (every POST: submissions, /info, /exchange; a GET
    or another method that carries one as well), is charged to its client's byte rate
    (node/submitlimit.py) before it is read: over it, 429 ``RATE_LIMITED`` and the body
    is never read. A body must state its length: one without (``Transfer-Encoding:
    chunked``) is refused unread (411 ``MALFORMED``), since its size is known only once
    it has been read, and reading it first is the work the byte rate exists to refuse
    (a client over its rate had every chunked body read in full, up to the 8 MiB cap,
    and one past the cap charged nothing)."""

    @web.middleware
    async def body_rate(request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.method == "POST" or request.body_exists:
            packed = wants_msgpack(request)
            size = request.content_length
            if size is None and request.body_exists:
                return await refuse_unread(request, error_response(
                    411, Code.MALFORMED, "a request body must state its Content-Length", packed=packed))
            # a claimed length beyond the body cap is refused (413) unread: it costs what a full body does
            refusal = limit.refusal(client_of(request), min(size or 0, MAX_BODY))
            if refusal is not None:
                return await refuse_unread(request, error_response(*byte_refusal(refusal), packed=packed))
        else:
            # a request without a body counts the floor (REQUEST_FLOOR bytes): light reads
            # from one client are bounded in number too (~1,000 a second at the defaults)
            refusal = limit.refusal(client_of(request), 0)
            if refusal is not None:
                raise RpcError(*byte_refusal(refusal))
        return await handler(request)

    return body_rate


async def refuse_unread(request: web.Request, resp: web.Response) -> web.Response:
    """Answer ``resp`` and close the connection without reading the request's body:
    aiohttp would otherwise read and drop an unread body after the answer to keep the
    connection, and a client flooding 585 KB bodies had the node's loop reading them."""
    if not request.can_read_body:
        return resp  # no body: the connection can stay
    resp.force_close()  # "Connection: close"
    await resp.prepare(request)
    await resp.write_eof()
    request.protocol.force_close()  # the answer is flushed, then the socket closed
    return resp
