"""What every command shares: where the keys live, which node to talk to, exit codes.

Exit codes are a contract for scripts, so they live in one place:

    0  ok
    1  the node said no: a rejected transaction or an RPC error (its code NAME is printed)
    2  usage error: bad option, unknown key, price off the tick grid (click's own code)
    3  the node is unreachable
    4  ``replay`` found a divergence (the replayed state differs from the chain's)
    5  ``--verify``: the node's answer does not prove itself against the trusted genesis
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from node.client import DEFAULT_URL, Client, NodeUnreachable, RpcError
from node.wallet.keystore import AnyKeyRecord, KeyStore, KeyStoreError, default_home
from node.wallet.units import Catalog, UnitError
from state.keys import address_from_text, address_to_text

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_DIVERGED = 4
EXIT_UNVERIFIED = 5
EXIT_DISK_FULL = 6  # `node start`: a write to the data dir failed (node.diskfull.EXIT_DISK_FULL, the same)
EXIT_WAL_DAMAGED = 7  # `node start`: the consensus WAL is damaged mid-file (node.wal_file.EXIT_WAL_DAMAGED)

NODE_ENV = "BOOKCHAIN_NODE"
F = TypeVar("F", bound=Callable[..., Any])


class Rejected(click.ClickException):
    """The node refused: an error answer or a receipt with a non-OK code."""

    exit_code = EXIT_REJECTED


class Unreachable(click.ClickException):
    exit_code = EXIT_UNREACHABLE


class Unverified(click.ClickException):
    """``--verify``: a proof, certificate or app hash check failed (cli/verify.py)."""

    exit_code = EXIT_UNVERIFIED


@dataclass
class Ctx:
    """Per-invocation settings; subcommand options override the group's."""

    home: Path = field(default_factory=default_home)
    node_url: str = field(default_factory=lambda: with_scheme(os.environ.get(NODE_ENV) or DEFAULT_URL))
    timeout: float = 15.0
    _catalog: Catalog | None = None
    _chain_id: str | None = None

    @property
    def keystore(self) -> KeyStore:
        return KeyStore(self.home)

    def client(self) -> Client:
        return Client(self.node_url, timeout=self.timeout)

    def catalog(self) -> Catalog:
        if self._catalog is None:
            c = self.client()
            self._catalog = Catalog.from_rpc(c.assets(), c.markets())
        return self._catalog

    def chain_id(self) -> str:
        if self._chain_id is None:
            self._chain_id = str(self.client().status()["chain_id"])
        return self._chain_id

    def set_chain_id(self, chain_id: str | None) -> None:
        if chain_id:
            self._chain_id = chain_id

    def key(self, name: str) -> AnyKeyRecord:
        """The key ``name`` of either scheme (tx commands sign with whichever it is)."""
        try:
            return self.keystore.load_any(name)
        except KeyStoreError as err:
            raise click.UsageError(str(err)) from None

    def address(self, ref: str) -> str:
        """``0x`` + 40 hex, or the address of a key in this home."""
        if ref.lower().startswith("0x") or (len(ref) == 40 and _is_hex(ref)):
            try:
                return address_to_text(address_from_text(ref))
            except ValueError:
                raise click.BadParameter(f"{ref!r} is not an address: an address is 0x followed by "
                                         "40 hex digits (0-9, a-f), e.g. 0x" + "ab" * 20) from None
        try:
            return self.keystore.load_any(ref).address_text
        except KeyStoreError as err:
            raise click.BadParameter(f"{ref!r} is neither an address (0x + 40 hex digits) nor a key name: "
                                     f"{err}") from None


class Seconds(click.FloatRange):
    """``click.FloatRange`` that also refuses NaN (which passes every comparison)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        out = super().convert(value, param, ctx)
        if out != out:
            self.fail(f"{value!r} is not a number", param, ctx)
        return out


def with_scheme(url: str) -> str:
    """``127.0.0.1:26657`` means ``http://127.0.0.1:26657``: a node URL without a scheme
    would otherwise fail as "unreachable". A URL that cannot name a node is a usage error."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    problem = _url_problem(text)
    if problem:
        raise click.BadParameter(f"{url!r} is not a node URL ({problem}); expected e.g. http://127.0.0.1:26657",
                                 param_hint="--node")
    return text


def _url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError when out of range or not a number
        host = parts.hostname
        if parts.scheme not in ("http", "https"):
            return "the scheme must be http or https"
        if not host:
            return "no host"
        if not url.isascii():
            return "use ASCII only (punycode for an international host name)"
        host.encode("idna")
    except (ValueError, UnicodeError) as err:
        return str(err) or type(err).__name__
    return None


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def get_ctx() -> Ctx:
    ctx = click.get_current_context()
    obj = ctx.find_object(Ctx)
    if obj is None:
        obj = ctx.ensure_object(Ctx)
    return obj


def _override_home(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(Ctx).home = Path(value).expanduser()


def _override_node(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(Ctx).node_url = with_scheme(value)


def home_option(f: F) -> F:
    """``--home`` accepted on the subcommand too (``bookchain keys list --home X``)."""
    return click.option("--home", "home", default=None, expose_value=False, callback=_override_home,
                        metavar="DIR", help="CLI home holding keys/ (default $BOOKCHAIN_HOME or ~/.bookchain).")(f)


def node_option(f: F) -> F:
    return click.option("--node", "node", default=None, expose_value=False, callback=_override_node,
                        metavar="URL", help="Node RPC URL (default $BOOKCHAIN_NODE or http://127.0.0.1:26657).")(f)


JSON_HELP = "Print the node's JSON answer unchanged instead of a table."


def json_option(f: F, help_text: str = JSON_HELP) -> F:
    return click.option("--json", "as_json", is_flag=True, help=help_text)(f)


def json_option_saying(help_text: str) -> Callable[[F], F]:
    """``--json`` for a command whose JSON is not a node's answer (keys, devnet)."""
    return lambda f: json_option(f, help_text)


def print_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2))


def rpc_failure(err: RpcError) -> Rejected:
    return Rejected(f"{err.name} (code {err.code}, HTTP {err.http_status}): {err.message}")


def unreachable(err: NodeUnreachable) -> Unreachable:
    return Unreachable(f"{err} (is the node running? set --node or $BOOKCHAIN_NODE)")


def translate_errors(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` turning library errors into the CLI's exit codes."""
    try:
        return fn()
    except RpcError as err:
        raise rpc_failure(err) from None
    except NodeUnreachable as err:
        raise unreachable(err) from None
    except (UnitError, KeyStoreError) as err:
        raise click.UsageError(str(err)) from None
