"""``bookchain node start``: run one node in the foreground from its home directory.

The node itself lives in ``node.main`` (written separately); the CLI only hands it the
home directory, so ``bookchain node start`` and the devnet supervisor start nodes exactly
the same way.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.group("node")
def node() -> None:
    """Run a bookchain node."""


@node.command("start")
@click.option("--home", "home", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Node home directory holding config.json, genesis.json, keys/ and data/ (see node/API.md).")
@click.option("--stderr-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]), default=None,
              help="Also write to stderr only records of this level and above (default: every record "
                   "the log file gets). The log file, HOME/logs/node.log, always has them all.")
def start(home: Path, stderr_level: str | None) -> None:
    """Start the node in the foreground (Ctrl-C or SIGTERM stops it cleanly).

    Example: bookchain node start --home devnet-home/node0
    """
    if not (home / "config.json").is_file():
        raise click.UsageError(f"{home}/config.json not found: is this a node home? "
                               "(`bookchain devnet up` creates homes under ./devnet-home)")
    try:
        from node.main import run
    except ImportError as err:
        raise click.ClickException(f"the node is not available in this install (cannot import node.main: {err})") from None
    run(str(home), stderr_level=stderr_level)
