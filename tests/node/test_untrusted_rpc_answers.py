"""A node's RPC is untrusted: a body nested deeper than Python's recursion limit
is a refused answer (SnapshotError, None, RpcError, ValueError), not a RecursionError that
ends state sync, replay or the CLI with a traceback, and a snapshot server that trickles
bytes is given up on."""

from __future__ import annotations

import time
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


class _Trickle(BaseHTTPRequestHandler):
    """A snapshot server that sends a byte at a time, each within any read timeout."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(100_000):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.01)
        except OSError:  # the client gave up
            pass

    def log_message(self, *args: object) -> None:
        pass


def test_state_sync_gives_up_on_a_server_that_trickles(monkeypatch: pytest.MonkeyPatch) -> None:
    """The read timeout bounds each read, not the download: a server sending a byte now
    and then held a state-syncing node forever. The whole download has a deadline."""
    from node import snapshots

    monkeypatch.setattr(snapshots, "DOWNLOAD_DEADLINE_S", 0.3)
    monkeypatch.setattr(snapshots, "READ_CHUNK_BYTES", 1)
    with http_stub(_Trickle) as url, pytest.raises(SnapshotError) as err:
        fetch_snapshot(url + "/snapshot?height=1")
    assert err.value.code == Code.SNAPSHOT_UNAVAILABLE and "too slow" in err.value.message


class _WrongShape(BaseHTTPRequestHandler):
    """A server whose every answer is a JSON object of the wrong field types."""

    def _answer(self) -> None:
        body = b'{"markets": "x", "assets": "x", "latest_height": "x", "height": null, "bids": "x", "asks": 5}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("args", [["query", "markets"], ["query", "block"], ["query", "book", "BTC-PERP"],
                                  ["query", "status"]])
def test_the_cli_calls_a_wrongly_shaped_answer_bad_answer_not_its_bug(args: list[str]) -> None:
    """The CLI read answers of the wrong shape as its own bug ("unexpected error ... (a bug:
    please report it)"); a failure on an answer's fields is the answer's (BAD_ANSWER)."""
    from click.testing import CliRunner

    from cli.main import bookchain

    with http_stub(_WrongShape) as url:
        result = CliRunner().invoke(bookchain, ["--node", url, "--timeout", "5", *args])
    assert result.exit_code in (0, 1), result.output
    assert "a bug" not in result.output and "Traceback" not in result.output
    if result.exit_code:
        assert "BAD_ANSWER" in result.output
