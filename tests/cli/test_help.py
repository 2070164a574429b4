"""Every command answers --help, and every option explains itself."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from cli.main import bookchain


def walk(cmd: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from walk(sub, (*path, name))


COMMANDS = list(walk(bookchain))


def test_the_tree_has_what_the_brief_lists() -> None:
    names = {" ".join(p) for p, _ in COMMANDS}
    for expected in ["keys new", "keys list", "keys show", "keys import", "keys export",
                     "tx deposit", "tx withdraw", "tx order", "tx cancel", "tx cancel-all", "tx modify", "tx batch",
                     "query status", "query block", "query block-results", "query tx", "query book",
                     "query account", "query orders", "query fills", "query markets", "query validators",
                     "node start", "devnet up", "devnet down", "devnet status", "devnet logs", "devnet load",
                     "devnet demo"]:
        assert expected in names


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=[" ".join(p) or "bookchain" for p, _ in COMMANDS])
def test_help(path: tuple[str, ...], cmd: click.Command) -> None:
    res = CliRunner().invoke(bookchain, [*path, "--help"])
    assert res.exit_code == 0, res.output
    assert "Usage:" in res.output
    assert cmd.help, f"{' '.join(path)} has no docstring"
    for p in cmd.params:
        if isinstance(p, click.Option):
            assert p.help, f"option {p.opts} of {' '.join(path)} has no help"


@pytest.mark.parametrize("command", QUERIES := ["status", "block", "block-results", "tx", "book", "account",
                                                 "orders", "fills", "markets", "validators"])
def test_every_query_has_json(command: str) -> None:
    cmd = bookchain.commands["query"].commands[command]  # type: ignore[attr-defined]
    assert any("--json" in p.opts for p in cmd.params)


def test_usage_errors_exit_2() -> None:
    r = CliRunner()
    assert r.invoke(bookchain, ["nosuch"]).exit_code == 2
    assert r.invoke(bookchain, ["tx", "order", "BTC/USDC", "buy"]).exit_code == 2  # missing --size/--price/--key
    assert r.invoke(bookchain, ["tx", "order", "BTC/USDC", "hold", "--size", "1", "--price", "1", "--key", "a"]).exit_code == 2
    assert r.invoke(bookchain, ["query", "book"]).exit_code == 2
