"""JSON from a node's RPC is untrusted: a body nested deeper than Python's recursion limit
is a refused answer (SnapshotError, None, RpcError, ValueError), not a RecursionError that
ends state sync, replay or the CLI with a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from node.client import RpcError, parse_answer
from node.replay import RpcSource
from node.snapshots import SnapshotError, fetch_snapshot
from node.syncverify import fetch_next_block
from state.errors import Code
from tests.httpstub import http_stub

DEEP = b'{"snapshots": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


class _Deep(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(DEEP)))
        self.end_headers()
        self.wfile.write(DEEP)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def deep_rpc() -> Iterator[str]:
    with http_stub(_Deep) as url:
        yield url


def test_state_sync_refuses_deeply_nested_json(deep_rpc: str) -> None:
    with pytest.raises(SnapshotError) as err:
        fetch_snapshot(deep_rpc)
    assert err.value.code == Code.SNAPSHOT_UNAVAILABLE
    assert fetch_next_block(deep_rpc, 4) is None


def test_replay_source_refuses_deeply_nested_json(deep_rpc: str) -> None:
    with pytest.raises(ValueError):
        RpcSource(deep_rpc).height()


def test_the_client_refuses_deeply_nested_json() -> None:
    with pytest.raises(RpcError):
        parse_answer(200, DEEP)
