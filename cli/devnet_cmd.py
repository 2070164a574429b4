"""``bookchain devnet``: a local multi-node chain (up, status, logs, down, load, demo).

Thin click layer over devnet/: parse options, call the module, print a table. All state
lives in the devnet home (default ./devnet-home), so any shell can run ``status`` or
``down`` for a devnet another shell started.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.table import Table

from cli import render
from cli.context import (
    EXIT_REJECTED,
    EXIT_UNREACHABLE,
    Seconds,
    json_option_saying,
    print_json,
    with_scheme,
)
from devnet import ethaccounts
from devnet.genesis import DEFAULT_FUTURE_EXPIRY_S, DEFAULT_NODES, DEFAULT_TRADERS, DevnetSpec
from devnet.manifest import Manifest
from devnet.supervisor import DEFAULT_HOME, DevnetError, Supervisor, tail
from node.client import Client, NodeUnreachable, RpcError
from node.wallet.keystore import EthKeyRecord, KeyStore, KeyStoreError

F = TypeVar("F", bound=Callable[..., Any])


class PlainPath(click.Path):
    """``click.Path`` that refuses a NUL byte as a usage error (``os.stat`` raises ValueError)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if "\x00" in str(value):
            self.fail("a path cannot contain a NUL byte", param, ctx)
        return super().convert(value, param, ctx)


def devnet_home_option(f: F) -> F:
    return click.option("--home", "home", default=DEFAULT_HOME, show_default=True, envvar="BOOKCHAIN_DEVNET_HOME",
                        type=PlainPath(file_okay=False, path_type=Path),
                        help="Devnet directory (node homes, genesis, CLI keys, devnet.json). "
                             "Env: BOOKCHAIN_DEVNET_HOME.")(f)


def _fail(err: Exception) -> click.ClickException:
    return click.ClickException(str(err))


@click.group("devnet")
def devnet() -> None:
    """Run a local N-validator devnet (keys and funded accounts included); status and load
    also reach a `bookchain testnet` whose validators run on other hosts."""


@devnet.command("up")
@devnet_home_option
@click.option("-n", "--nodes", default=DEFAULT_NODES, show_default=True, type=click.IntRange(1, 64),
              help="Number of validators (only for a new devnet).")
@click.option("--traders", default=DEFAULT_TRADERS, show_default=True, type=click.IntRange(0, 10_000),
              help="Funded trader0..N-1 accounts for `devnet load` (only for a new devnet).")
@click.option("--reset", is_flag=True, help="Stop and delete an existing devnet in --home first (its chain is lost).")
@click.option("--timeout", default=60.0, show_default=True, type=Seconds(1, 3600),
              help="Seconds to wait for every node to reach height 2.")
@click.option("--block-time-ms", default=None, type=click.IntRange(0, 60_000),
              help="The longest an idle chain goes without a block (consensus.empty_block_interval_ms, "
                   "default 1000; a transaction starts a block at once) in each config.json (new devnet only).")
@click.option("--future-expiry", "future_expiry", default=DEFAULT_FUTURE_EXPIRY_S, show_default=True,
              type=click.IntRange(0, 10**9), metavar="SECONDS",
              help="BTC-FUT (market 4) expires this many seconds after genesis; 0 leaves it out (new devnet only).")
@click.option("--eth-accounts", "eth_accounts", default=ethaccounts.DEFAULT_ETH_ACCOUNTS, show_default=True,
              type=click.IntRange(0, ethaccounts.MAX_ETH_ACCOUNTS), metavar="N",
              help="Funded Ethereum (secp256k1) test accounts eth0..N-1, the same keys on every devnet, for "
                   "the Hyperliquid SDK and ccxt (new devnet only).")
@json_option_saying("Print the devnet manifest (chain id, nodes, pids, URLs, accounts, Ethereum test keys) as JSON.")
def up(home: Path, nodes: int, traders: int, reset: bool, timeout: float, block_time_ms: int | None,
       future_expiry: int, eth_accounts: int, as_json: bool) -> None:
    """Create (if needed) and start the devnet, wait for height 2, print the nodes.

    Re-running `up` after `down` restarts the same chain from its data directories.
    A new devnet has a dated future, BTC-FUT, expiring --future-expiry seconds after genesis,
    and --eth-accounts funded Ethereum test accounts whose private keys `up` prints (test
    keys: public, the same on every devnet, never to be used anywhere else).

    Example: bookchain devnet up -n 4 --future-expiry 300
    """
    consensus = (("empty_block_interval_ms", block_time_ms),) if block_time_ms is not None else ()
    spec = DevnetSpec(nodes=nodes, traders=traders, consensus=consensus, future_expiry_s=future_expiry,
                      eth_accounts=eth_accounts)
    sup = Supervisor(home)
    say = (lambda _m: None) if as_json else (lambda m: click.echo(m, err=True))
    try:
        m = sup.up(spec, reset=reset, timeout=timeout, progress=say)
    except (DevnetError, FileExistsError) as err:
        raise _fail(err) from None
    if as_json:
        print_json({**m.to_json(), "eth_test_accounts": eth_test_accounts(m)})
        return
    t = Table(title=f"devnet {m.chain_id} in {sup.home}", title_justify="left")
    for col in ("node", "pid", "rpc", "p2p"):
        t.add_column(col)
    for n in m.nodes:
        t.add_row(n.name, str(m.processes[n.name].pid), n.rpc_url, n.p2p_addr)
    render.console().print(t)
    click.echo(f"state machine: {build_line(m)}")
    click.echo(f"\nCLI keys: {m.cli_home} ({', '.join(m.accounts[:4])}{', ...' if len(m.accounts) > 4 else ''}, bridge)")
    click.echo(f"try:  bookchain --home {m.cli_home} --node {m.nodes[0].rpc_url} query account alice")
    click.echo(f"      bookchain devnet demo --home {sup.home}")
    print_eth_accounts(m)


def build_line(m: Manifest) -> str:
    """Which build the nodes run, from node0's /status: the compiled one applies blocks ~3x
    faster, and the README's first command installs it where a C compiler is."""
    try:
        status = Client(m.nodes[0].rpc_url, timeout=5).status()
    except (NodeUnreachable, RpcError):
        return "unknown (node0 did not answer /status)"
    build = status.get("build")
    if build == "mypyc":
        return "compiled (mypyc)"
    return (f"{build} (to compile it: BOOKCHAIN_MYPYC=1 pip install . where a C compiler is; "
            "`pip install -e .` never compiles)")


def eth_test_accounts(m: Manifest) -> list[dict[str, str]]:
    """The devnet's Ethereum test accounts from its CLI keystore: name, address, private key."""
    ks = KeyStore(m.cli_home)
    out = []
    for name in m.eth_accounts:
        try:
            rec = ks.load_any(name)
        except KeyStoreError:
            continue  # removed by hand: nothing to print
        if isinstance(rec, EthKeyRecord):
            out.append({"name": name, "address": rec.address_text, "private_key": rec.secret_hex})
    return out


def print_eth_accounts(m: Manifest) -> None:
    """The Ethereum test accounts as Anvil prints its own, and how to use one from the SDK."""
    accounts = eth_test_accounts(m)
    if not accounts:
        return
    t = Table(title=f"Ethereum test accounts, funded at genesis ({ethaccounts.WARNING})", title_justify="left")
    for col in ("key", "address", "private key"):
        t.add_column(col)
    for a in accounts:
        t.add_row(a["name"], a["address"], a["private_key"])
    click.echo()
    render.console().print(t)
    click.echo("Hyperliquid SDK: " + ethaccounts.sdk_line(accounts[0]["private_key"], m.nodes[0].rpc_url))
    click.echo(f"CLI:  bookchain --home {m.cli_home} --node {m.nodes[0].rpc_url} tx order BTC-PERP buy "
               f"--size 0.01 --price 59000 --key {accounts[0]['name']}")


@devnet.command("down")
@devnet_home_option
@click.option("--timeout", default=10.0, show_default=True, type=Seconds(0, 600),
              help="Seconds between SIGTERM and SIGKILL.")
@json_option_saying("Print what happened to each node process as a JSON object.")
def down(home: Path, timeout: float, as_json: bool) -> None:
    """Stop the devnet's node processes (only the pids `up` recorded); safe to repeat.

    Example: bookchain devnet down
    """
    outcome = Supervisor(home).down(timeout)
    if as_json:
        print_json(outcome)
        return
    if not outcome:
        click.echo(f"no devnet processes recorded in {home}")
    for name, what in sorted(outcome.items()):
        click.echo(f"{name}: {what}")


@devnet.command("status")
@devnet_home_option
@json_option_saying("Print the common height, whether app hashes agree and each node's status as JSON.")
def status(home: Path, as_json: bool) -> None:
    """Heights, peers, pids, and whether app hashes agree at the common height.

    Example: bookchain devnet status
    """
    try:
        st = Supervisor(home).status()
    except DevnetError as err:
        raise _fail(err) from None
    running = any(r.alive or r.height is not None for r in st.nodes)
    if as_json:
        print_json({"running": running, "common_height": st.common_height, "hashes_agree": st.hashes_agree,
                    "nodes": [asdict(r) for r in st.nodes]})
    elif not running:
        where = "" if str(home) == DEFAULT_HOME else f" --home {home}"
        click.echo(f"the devnet in {home} is not running ({len(st.nodes)} nodes, none alive); "
                   f"start it with: bookchain devnet up{where}")
    else:
        t = Table(title=f"devnet {home}", title_justify="left")
        for col in ("node", "pid", "alive", "rpc", "height", "peers", f"app hash @ {st.common_height}", "error"):
            t.add_column(col)
        for r in st.nodes:
            t.add_row(r.name, render._s(r.pid), "yes" if r.alive else "[red]no[/red]", r.rpc_url, render._s(r.height),
                      render._s(r.peers), render.short(r.app_hash, 16), render._s(r.error))
        render.console().print(t)
        verdict = {True: "[green]agree[/green]", False: "[red]DIFFER[/red]", None: "n/a (fewer than 2 nodes answered)"}
        render.console().print(f"app hashes at height {st.common_height}: {verdict[st.hashes_agree]}")
    if st.hashes_agree is False:
        raise SystemExit(EXIT_REJECTED)
    if not any(r.height is not None for r in st.nodes):
        raise SystemExit(EXIT_UNREACHABLE)


@devnet.command("logs")
@click.argument("node", metavar="NODE")
@devnet_home_option
@click.option("-n", "--lines", default=50, show_default=True, type=click.IntRange(0, 100_000), help="Lines to show.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option("--stdout", "stdout", is_flag=True,
              help="Show what the node wrote to stdout and stderr instead (its warnings and errors, and "
                   "anything printed before its log started).")
def logs(node: str, home: Path, lines: int, follow: bool, stdout: bool) -> None:
    """Show a node's log (logs/node.log); NODE is a name (node0) or an index (0).

    Example: bookchain devnet logs node0 -n 50
    """
    try:
        path = Supervisor(home).log_file(node, stdout=stdout)
    except DevnetError as err:
        raise _fail(err) from None
    for line in tail(path, lines) if lines else []:
        click.echo(line)
    if not follow:
        return
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            while True:
                chunk = fh.readline()
                if chunk:
                    click.echo(chunk.decode("utf-8", "replace").rstrip("\n"))
                else:
                    time.sleep(0.2)
    except KeyboardInterrupt:
        pass


@devnet.command("load")
@devnet_home_option
@click.option("--tps", default=200.0, show_default=True, type=Seconds(0.1, 1_000_000), help="Target submit rate (tx/s).")
@click.option("--seconds", default=10.0, show_default=True, type=Seconds(0.1, 86_400), help="Length of the submit phase.")
@click.option("--accounts", default=None, type=click.IntRange(1), help="Trader accounts to use (default: all in the devnet).")
@click.option("--seed", default=1, show_default=True, help="Seed of the deterministic order flow.")
@click.option("--drain-timeout", default=30.0, show_default=True, type=Seconds(0, 3600),
              help="Seconds to wait for submitted txs to commit after the submit phase.")
@click.option("--json", "json_file", default=None, type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE", help="Also write the report as JSON to FILE ('-' for stdout only).")
@click.option("--node", "node_urls", multiple=True, metavar="URL",
              help="Submit to this node RPC URL instead of the devnet's nodes (repeat for several; "
                   "the first one is followed for commits).")
@click.option("--nodes", "nodes_csv", default=None, metavar="URL,URL",
              help="The same as --node, comma-separated.")
@click.option("--lone/--no-lone", default=True, show_default=True,
              help="One trader sends each of its txs in a request of its own (a lone client beside "
                   "the batches): the answer time of a single submission under this load.")
@click.option("--batch-txs", default=None, type=click.IntRange(1, 10_000), metavar="N",
              help="Transactions per request (default: a tenth of a second of --tps, sent to the nodes in "
                   "turn); small batches are the load of many clients each sending a few orders.")
def load(home: Path, tps: float, seconds: float, accounts: int | None, seed: int, drain_timeout: float,
         json_file: Path | None, node_urls: tuple[str, ...], nodes_csv: str | None, lone: bool,
         batch_txs: int | None) -> None:
    """Pre-sign an order flow, submit it at --tps across all nodes, report tx/s and latency.

    The trader keys and genesis come from --home (a devnet, or a `bookchain testnet --out`
    directory, whose nodes are on their hosts); --node/--nodes send the flow to any RPC URLs
    of that chain instead of the nodes the manifest lists.

    Example: bookchain devnet load --tps 2000 --seconds 20 --nodes http://10.0.0.1:26657,http://10.0.0.2:26657
    """
    from rich.progress import Progress

    from devnet.load import prepare, run_load

    targets = target_urls(node_urls, nodes_csv)

    quiet = json_file is not None and str(json_file) == "-"
    with Progress(transient=True, disable=quiet) as bar:
        count = max(1, round(tps * seconds))
        task = bar.add_task("signing", total=count)
        try:
            plan = prepare(str(home), tps=tps, seconds=seconds, accounts=accounts, seed=seed,
                           progress=lambda done: bar.update(task, completed=done))
        except (FileNotFoundError, ValueError) as err:
            raise _fail(err) from None
        urls = targets or plan.urls
        from node.gctune import tune_for_throughput

        tune_for_throughput()  # the pre-signed flow is long-lived: keep full collections off it
        sub = bar.add_task("submitting", total=count)
        # RpcError / NodeUnreachable reach the root group, which maps them to exit 1 / 3
        report = asyncio.run(run_load(urls, plan.flow, tps=tps, seconds=seconds, accounts=plan.accounts,
                                      drain_timeout=drain_timeout, lone=lone, batch_txs=batch_txs,
                                      progress=lambda done: bar.update(sub, completed=done)))
    doc = report.to_json()
    if json_file is not None:
        if str(json_file) == "-":
            print_json(doc)
            return
        json_file.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    rows = [("target tx/s", doc["target_tps"]), ("submitted", doc["submitted"]), ("admitted", doc["accepted"]),
            ("refused (not lost)", doc["refused"])]
    rows += [(f"  {name}", n) for name, n in doc["refused_by_code"].items()]
    rows += [("committed", doc["committed"]), ("committed ok", doc["committed_ok"]),
             ("uncommitted", doc["uncommitted"]), ("committed tx/s", doc["tx_per_s"]),
             ("ok tx/s", doc["ok_tx_per_s"]), ("p50 ms (admitted)", doc["p50_ms"]), ("p90 ms", doc["p90_ms"]),
             ("p99 ms", doc["p99_ms"]), ("max ms", doc["max_ms"]),
             ("submit answer p50 / p99 / max ms",
              f"{doc['submit_p50_ms']} / {doc['submit_p99_ms']} / {doc['submit_max_ms']}"),
             ("  of which the nodes' own, p50 / p99 ms (bucket bound)",
              f"<= {doc['node_answer_p50_ms']} / <= {doc['node_answer_p99_ms']}"),
             ("nodes' event loop lag, p50 / p99 ms (bucket bound)",
              f"<= {doc['loop_lag_p50_ms']} / <= {doc['loop_lag_p99_ms']}")]
    if doc["lone_requests"]:
        rows += [("lone client: one tx per request, p50 / p99 / max ms",
                  f"{doc['lone_p50_ms']} / {doc['lone_p99_ms']} / {doc['lone_max_ms']} "
                  f"({doc['lone_requests']} requests)")]
    rows += [("blocks", doc["blocks"]), ("heights", f"{doc['first_height']}..{doc['last_height']}"),
             ("duration s", doc["duration_s"]), ("failed in block", sum(doc["failed_in_block_by_code"].values()))]
    rows += [(f"  {name}", n) for name, n in doc["failed_in_block_by_code"].items()]
    rows += [("mix", ", ".join(f"{k} {v}" for k, v in doc["mix"].items()))]
    render.console().print(render.kv_table(f"load: {doc['nodes']} nodes, {doc['accounts']} accounts", rows))
    if json_file is not None:
        click.echo(f"report written to {json_file}")


def target_urls(node_urls: tuple[str, ...], nodes_csv: str | None) -> list[str]:
    """--node URL (repeated) then --nodes A,B: node URLs, a missing scheme meaning http://."""
    raw = [*node_urls, *(u for u in (nodes_csv or "").split(",") if u.strip())]
    return [with_scheme(u.strip()) for u in raw]


@devnet.command("demo")
@devnet_home_option
@click.option("--node", "node", default="0", show_default=True, help="Node (name or index) to talk to.")
@click.option("--market", default="BTC/USDC", show_default=True, help="Market of the demo trade.")
@click.option("--price", default="60000", show_default=True, help="Price of the demo trade (human units).")
@click.option("--size", default="0.01", show_default=True, help="Size of the demo trade (base units).")
@json_option_saying("Print the demo's receipts, book, fills and block as JSON.")
def demo(home: Path, node: str, market: str, price: str, size: str, as_json: bool) -> None:
    """alice rests a sell, bob buys it; print the book, the fills and the block holding them.

    Example: bookchain devnet demo
    """
    from devnet.demo import DemoError, run_demo

    say = (lambda _m: None) if as_json else click.echo
    try:
        res = run_demo(str(home), node=node, market=market, price=price, size=size, say=say)
    except FileNotFoundError as err:
        raise _fail(err) from None
    except KeyError as err:
        raise _fail(Exception(err.args[0])) from None
    except DemoError as err:
        if not as_json:
            render.print_receipt(err.answer, None)
        raise click.ClickException(str(err)) from None
    if as_json:
        print_json(res.to_json())
        return
    mid = res.catalog.market(res.market).id
    c = render.console()
    c.rule("alice's sell")
    render.print_receipt(res.sell, res.catalog, [mid])
    c.rule("bob's buy")
    render.print_receipt(res.buy, res.catalog, [mid])
    c.rule("the book after the trade")
    render.print_book(res.book, res.catalog)
    c.rule("bob's fills")
    render.print_fills(res.fills, res.catalog)
    c.rule(f"block {res.block.get('height')}, which holds bob's buy")
    render.print_block(res.block)
    where = "" if str(home) == "devnet-home" else f" --home {home}"
    c.print(f"\nThe devnet keeps running. Watch it with [bold]bookchain devnet status{where}[/bold] "
            f"(logs: [bold]bookchain devnet logs node0{where}[/bold]); stop it with "
            f"[bold]bookchain devnet down{where}[/bold].")
