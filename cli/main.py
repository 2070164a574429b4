"""The ``bookchain`` command: one group, one module per concern.

Subcommand modules register here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from cli.context import Ctx, Seconds, translate_errors, with_scheme
from node.client import DEFAULT_URL, answers_decoded
from node.diskfull import StorageFailure
from node.wallet.keystore import HOME_ENV

DEBUG_ENV = "BOOKCHAIN_DEBUG"


class BookchainGroup(click.Group):
    """Maps library errors to exit codes for every subcommand, wherever they are raised.

    An OSError is the file system's answer (exit 1 with its message). A type or lookup
    error once a node has answered is that answer's shape (``BAD_ANSWER``). Last resort: an
    exception nothing else expected is a bug, but a user still gets one line
    naming it (exit 1) instead of a traceback; ``BOOKCHAIN_DEBUG=1`` shows the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return translate_errors(lambda: super(BookchainGroup, self).invoke(ctx))
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit, KeyboardInterrupt):
            raise
        except StorageFailure as err:  # a tool's write (replay's state store, a snapshot) failed
            raise click.ClickException(err.describe()) from None
        except OSError as err:  # the file system said no (missing, too long, read-only, ...): not a bug
            where = f": {err.filename}" if err.filename else ""
            raise click.ClickException(f"{err.strerror or err}{where}") from None
        except Exception as err:
            if os.environ.get(DEBUG_ENV):
                raise
            if answers_decoded() and isinstance(err, (TypeError, AttributeError, LookupError, ValueError)):
                # a field of a node's answer missing or of another type than the command reads
                raise click.ClickException(
                    f"BAD_ANSWER: the node's answer is not what this command reads ({type(err).__name__}: {err}); "
                    f"is --node a bookchain node of this version? ({DEBUG_ENV}=1 shows the traceback)") from None
            raise click.ClickException(
                f"unexpected error {type(err).__name__}: {err} (a bug: please report it; "
                f"{DEBUG_ENV}=1 shows the traceback)") from None


@click.group("bookchain", cls=BookchainGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", default=None, envvar=HOME_ENV, metavar="DIR",
              help="CLI home with keys/ (default $BOOKCHAIN_HOME or ~/.bookchain).")
@click.option("--node", "node_url", default=None, envvar="BOOKCHAIN_NODE", metavar="URL",
              help=f"Node RPC URL (default $BOOKCHAIN_NODE or {DEFAULT_URL}).")
@click.option("--timeout", default=15.0, show_default=True, type=Seconds(0.1, 3600),
              help="Seconds to wait for an RPC answer.")
@click.version_option(package_name="bookchain", prog_name="bookchain")
@click.pass_context
def bookchain(ctx: click.Context, home: str | None, node_url: str | None, timeout: float) -> None:
    """bookchain: keys, transactions, queries, nodes and a local devnet.

    \b
    Exit codes: 0 ok, 1 rejected tx or RPC error (code name printed),
                2 usage error, 3 node unreachable,
                4 replay found a divergence from the chain,
                5 a --verify check failed,
                6 `node start`: the data dir's disk is full (or a write failed).
    """
    obj = ctx.ensure_object(Ctx)
    if home:
        obj.home = Path(home).expanduser()
    if node_url:
        obj.node_url = with_scheme(node_url)
    obj.timeout = timeout


def _register() -> None:
    from cli.devnet_cmd import devnet
    from cli.keys_cmd import keys
    from cli.node_cmd import node
    from cli.query_cmd import query
    from cli.replay import replay
    from cli.testnet_cmd import testnet
    from cli.tx_cmd import tx

    for cmd in (keys, tx, query, node, devnet, testnet, replay):
        bookchain.add_command(cmd)


_register()


def main() -> None:
    bookchain(prog_name="bookchain")


if __name__ == "__main__":
    main()
