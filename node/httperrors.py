"""Requests aiohttp refuses before any handler runs, answered in the RPC's error shape.

aiohttp's HTTP parser refuses a request line or a header line longer than 8190 bytes (a
URL with a long query), and any request it cannot parse, before the application and its
middlewares see it; its own answer is a plain-text 400 that echoes the offending line. A
client of the RPC reads every error as ``{"error": {"code", "name", "message"}}`` (node/rpc.py),
so the same shape comes back here, with a stable code: ``OVERSIZE`` for a line over the
limit, ``MALFORMED`` for anything else the parser refuses, ``INTERNAL_ERROR`` for a failure
outside every handler. The limit itself stays aiohttp's: a larger request line buys nothing
(every route's parameters are short, and bulk input goes in bodies).

How: ``JsonErrorRunner`` makes the server build ``RequestHandler``s whose ``handle_error``
(aiohttp's hook for exactly these answers) returns the JSON body, after aiohttp's own
checks and logging.
"""

from __future__ import annotations

from typing import Any

from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

from node.connlimit import IDLE_S
from state.errors import Code

#: aiohttp's default ``max_line_size`` and ``max_field_size``: the longest request line or header line.
MAX_LINE_BYTES = 8190


def error_doc(status: int, exc: BaseException | None) -> tuple[int, Code, str]:
    """(HTTP status, code, message) of a request refused before any handler."""
    if isinstance(exc, http_exceptions.LineTooLong):
        return 400, Code.OVERSIZE, (f"the request line or a header line exceeds {MAX_LINE_BYTES} bytes "
                                    "(send long input in a request body)")
    if status >= 500:
        return 500, Code.INTERNAL_ERROR, "internal error"
    detail = "unparsable request" if exc is None else (getattr(exc, "message", "") or type(exc).__name__)
    return status, Code.MALFORMED, f"malformed HTTP request: {str(detail)[:200]}"


class _JsonErrorHandler(RequestHandler):
    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; refuses once a response began
        http_status, code, text = error_doc(status, exc)
        resp = web.json_response({"error": {"code": int(code), "name": code.name, "message": text}},
                                 status=http_status)
        resp.force_close()  # as aiohttp's: the connection's input cannot be trusted past this
        return resp


class _JsonErrorServer(Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class JsonErrorRunner(web.AppRunner):
    """``web.AppRunner`` whose server answers parser refusals in the RPC's JSON shape."""

    @classmethod
    def for_clients(cls, app: web.Application) -> JsonErrorRunner:
        """The runner of a server clients reach (the node's RPC, its front-end, the node's
        server behind it): no access log, the node's own signal handling, an idle connection
        closed after ``IDLE_S`` (node/connlimit.py)."""
        return cls(app, access_log=None, handle_signals=False, keepalive_timeout=IDLE_S)

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        # the application's server with its settings, building our handlers (same layout:
        # the subclass adds only ``__call__``)
        server.__class__ = _JsonErrorServer
        return server
