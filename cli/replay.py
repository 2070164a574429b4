"""``bookchain replay``: audit a chain by re-executing it from genesis, or from a verified
snapshot (``--from-snapshot``: how a pruned node's chain is audited)."""

from __future__ import annotations

import json
import sys
import urllib.error
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table


@click.command("replay")
@click.option("--from", "source", default=None, metavar="DIR_OR_URL",
              help="A node home directory or a node RPC URL (http://127.0.0.1:26657). Optional with a "
                   "--from-snapshot URL: that node then serves the blocks too.")
@click.option("--from-snapshot", "snapshot_source", default=None, metavar="FILE_OR_URL",
              help="Start from this snapshot (a file, or a node RPC URL: its newest snapshot) instead of "
                   "genesis, once its records give its app hash and block h+1's certificate signs it.")
@click.option("--home", "state_home", required=True, metavar="NEW_DIR",
              help="A new, empty directory for the replayed state (LevelDB).")
@click.option("--to", "to_height", type=click.IntRange(1), default=None, help="Stop after this height.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def replay(source: str | None, snapshot_source: str | None, state_home: str, to_height: int | None,
           as_json: bool) -> None:
    """Re-apply every block from genesis (or from a verified snapshot) into a fresh state,
    checking each commit certificate against the genesis validators and each app hash
    against the chain's.

    With --from-snapshot the snapshot at height h is verified first: its records must give
    the app hash it states (the root of the state tree), and block h+1 from the source,
    whose certificate is checked against the genesis validators, must carry that app hash.
    Then heights h+1.. are replayed as from genesis.

    Exits 0 when every height matches, 4 at the first divergence (the report names the
    height and the differing state keys) or when the snapshot is refused (the report names
    the code), 3 when the source or the snapshot cannot be read (node unreachable, not a
    snapshot, block h+1 not there yet), 2 when --home is not a new, empty directory.

    \b
    Examples:
      bookchain replay --from http://127.0.0.1:26657 --home /tmp/replay
      bookchain replay --from-snapshot node0/data/snapshots/000000000100.snap \\
                       --from http://127.0.0.1:26657 --home /tmp/replay
    """
    from node.replay import open_source
    from node.replay import replay as run_replay
    from node.snapshots import Snapshot, SnapshotError, fetch_snapshot
    from node.syncverify import rpc_base

    console = Console(stderr=True)
    target = Path(state_home)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise click.BadParameter(f"{state_home} already exists and is not an empty directory; "
                                 "replay writes a fresh state: give a new directory", param_hint="--home")
    if snapshot_source is not None and "://" not in snapshot_source and not Path(snapshot_source).exists() \
            and ":" in snapshot_source:
        snapshot_source = "http://" + snapshot_source
    if source is None:
        source = rpc_base(snapshot_source) if snapshot_source is not None else None
        if source is None:
            raise click.BadParameter("give the blocks' source: a node home or RPC URL", param_hint="--from")
    if "://" not in source and not Path(source).exists() and ":" in source:
        source = "http://" + source  # 127.0.0.1:26657 is a URL without its scheme
    snapshot: Snapshot | None = None
    if snapshot_source is not None:
        try:
            snapshot = fetch_snapshot(snapshot_source)
        except SnapshotError as err:
            console.print(f"[red]cannot read the snapshot {snapshot_source}: {err}")
            sys.exit(3)
        if to_height is not None and to_height <= snapshot.height:
            raise click.BadParameter(f"the snapshot is at height {snapshot.height}: --to must be above it",
                                     param_hint="--to")
    try:
        src = open_source(source)
    except Exception as err:
        console.print(f"[red]cannot read {source}: {err}")
        sys.exit(3)
    try:
        with Progress(TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=True, disable=as_json) as bar:
            task = bar.add_task("replay", total=None)

            def progress(h: int, end: int) -> None:
                bar.update(task, completed=h, total=end)

            report = run_replay(src, state_home, to_height, progress, snapshot=snapshot)
    except FileExistsError as err:
        raise click.BadParameter(str(err), param_hint="--home") from None
    except (urllib.error.URLError, OSError, LookupError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        console.print(f"[red]cannot read {source}: {reason}")
        sys.exit(3)
    finally:
        src.close()
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        table = Table(title="replay report", show_header=False)
        for k, v in report.as_dict().items():
            if k == "differing_keys":
                v = "\n".join(v[:20]) + (f"\n… {len(v) - 20} more" if len(v) > 20 else "")
            elif k == "evidence":  # one line per committed equivocation
                v = "\n".join(f"h={e['height']} r={e['round']} {e['type']} by {e['validator'][:16]}… "
                              f"(committed at {e['committed_height']})" for e in v) or "none"
            table.add_row(k, f"{v:.2f}" if isinstance(v, float) else str(v))
        Console().print(table)
    sys.exit(0 if report.ok else 4)
